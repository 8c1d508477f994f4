//! `UdpStack`: `"UDP"` for connected sockets, `"UDP SERVICE"` for bound ones.
//!
//! What the BG96 can and cannot do here:
//! * A connected socket ([`ConnectedUdp`], `connect`/`connect_from`) is a `"UDP"` service. The
//!   local port can be chosen (`connect_from` with a port) or left to the modem (0).
//! * A bound socket ([`UnconnectedUdp`], `bind_single` and `bind_multiple`) is a
//!   `"UDP SERVICE"` on one local port: it receives from any peer, with each datagram's
//!   sender, and sends to any peer. The modem has one address per context, so the local
//!   address is always the context's: a bind to another address, and a send from another
//!   local address, are [`Error::InvalidArgument`]. `bind_multiple` therefore behaves like
//!   `bind_single` on the same port. A port is required (the modem cannot pick one for a
//!   `"UDP SERVICE"`); for port 0 the stack picks one from 49152 upwards.
//! * A datagram is at most 1460 bytes out (one `AT+QISEND`) and is received whole on a bound
//!   socket; one larger than the caller's buffer is [`Error::Truncated`]. Zero-length datagrams
//!   can be received but not sent (`AT+QISEND` needs 1–1460 bytes).

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use embedded_io_async::Write;

use super::Stack;
use crate::clock::AsyncClock;
use crate::commands::{AccessMode, Host, ServiceType};
use crate::error::{Error, ErrorCode, Result};
use crate::modem::OpenParams;
use crate::socket::SlotRef;

/// A `"UDP"` socket: datagrams to and from one peer.
pub struct ConnectedUdp<'d, W: Write, C: AsyncClock> {
    stack: Stack<'d, W, C>,
    slot: SlotRef,
}

/// A `"UDP SERVICE"` socket: datagrams to and from any peer, on one local port.
pub struct UnconnectedUdp<'d, W: Write, C: AsyncClock> {
    stack: Stack<'d, W, C>,
    slot: SlotRef,
    local: SocketAddr,
}

impl<W: Write, C: AsyncClock> Drop for ConnectedUdp<'_, W, C> {
    fn drop(&mut self) {
        self.stack.release(self.slot);
    }
}

impl<W: Write, C: AsyncClock> Drop for UnconnectedUdp<'_, W, C> {
    fn drop(&mut self) {
        self.stack.release(self.slot);
    }
}

fn datagram_len(data: &[u8]) -> Result<()> {
    if data.is_empty() || data.len() > crate::commands::MAX_SEND {
        return Err(Error::InvalidArgument);
    }
    Ok(())
}

impl<W: Write, C: AsyncClock> embedded_nal_async::ConnectedUdp for ConnectedUdp<'_, W, C> {
    type Error = Error;

    /// One datagram of 1–1460 bytes.
    async fn send(&mut self, data: &[u8]) -> Result<()> {
        datagram_len(data)?;
        self.stack.send_chunk(self.slot, data, None).await.map(|_| ())
    }

    /// The next datagram, at most `buffer.len()` bytes of it (use 1500 to get it whole).
    async fn receive_into(&mut self, buffer: &mut [u8]) -> Result<usize> {
        match self.stack.receive(self.slot, buffer).await? {
            Some((n, _)) => Ok(n),
            None => Err(Error::Closed),
        }
    }
}

impl<W: Write, C: AsyncClock> UnconnectedUdp<'_, W, C> {
    fn check_local(&self, local: SocketAddr) -> Result<()> {
        let ip_ok = local.ip().is_unspecified() || local.ip() == self.local.ip();
        let port_ok = local.port() == 0 || local.port() == self.local.port();
        if ip_ok && port_ok { Ok(()) } else { Err(Error::InvalidArgument) }
    }
}

impl<W: Write, C: AsyncClock> embedded_nal_async::UnconnectedUdp for UnconnectedUdp<'_, W, C> {
    type Error = Error;

    /// One datagram of 1–1460 bytes to `remote`; `local` must be this socket's address (or
    /// unspecified).
    async fn send(&mut self, local: SocketAddr, remote: SocketAddr, data: &[u8]) -> Result<()> {
        self.check_local(local)?;
        datagram_len(data)?;
        if remote.port() == 0 {
            return Err(Error::InvalidArgument);
        }
        self.stack.send_chunk(self.slot, data, Some(remote)).await.map(|_| ())
    }

    /// The next datagram, whole, with this socket's address and the sender's.
    async fn receive_into(&mut self, buffer: &mut [u8]) -> Result<(usize, SocketAddr, SocketAddr)> {
        match self.stack.receive(self.slot, buffer).await? {
            Some((n, Some(from))) => Ok((n, self.local, from)),
            Some((_, None)) => Err(Error::Parse),
            None => Err(Error::Closed),
        }
    }
}

impl<'d, W: Write, C: AsyncClock> Stack<'d, W, C> {
    async fn bind(&self, local: SocketAddr) -> Result<UnconnectedUdp<'d, W, C>> {
        let own = self.local_ip().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if !local.ip().is_unspecified() && local.ip() != own {
            return Err(Error::InvalidArgument);
        }
        // port 0: a port the stack does not use; if something else at the modem holds it, the next
        let mut tries = if local.port() == 0 { 4 } else { 1 };
        loop {
            let port = if local.port() == 0 { self.pick_port() } else { local.port() };
            let opened = self
                .open(OpenParams {
                    context_id: self.r.config.context_id,
                    service_type: ServiceType::UdpService,
                    remote: Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                    remote_port: 0,
                    local_port: port,
                    access_mode: AccessMode::Buffer,
                })
                .await;
            tries -= 1;
            match opened {
                Ok(slot) => return Ok(UnconnectedUdp { stack: *self, slot, local: SocketAddr::new(own, port) }),
                Err(Error::Modem(ErrorCode::PortBusy | ErrorCode::SocketBindFailed)) if tries > 0 => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl<'d, W: Write, C: AsyncClock> embedded_nal_async::UdpStack for Stack<'d, W, C> {
    type Error = Error;
    type Connected = ConnectedUdp<'d, W, C>;
    type UniquelyBound = UnconnectedUdp<'d, W, C>;
    type MultiplyBound = UnconnectedUdp<'d, W, C>;

    /// A `"UDP"` socket to `remote`, from `local`'s port (0: the modem picks).
    async fn connect_from(
        &self,
        local: SocketAddr,
        remote: SocketAddr,
    ) -> Result<(SocketAddr, ConnectedUdp<'d, W, C>)> {
        let own = self.local_ip().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if !local.ip().is_unspecified() && local.ip() != own {
            return Err(Error::InvalidArgument);
        }
        let slot = self
            .open(OpenParams {
                context_id: self.r.config.context_id,
                service_type: ServiceType::Udp,
                remote: Host::Ip(remote.ip()),
                remote_port: remote.port(),
                local_port: local.port(),
                access_mode: AccessMode::Buffer,
            })
            .await?;
        Ok((SocketAddr::new(own, local.port()), ConnectedUdp { stack: *self, slot }))
    }

    /// A `"UDP SERVICE"` on `local`'s port ([`Error::NotSupported`] without the `server`
    /// feature).
    async fn bind_single(&self, local: SocketAddr) -> Result<(SocketAddr, UnconnectedUdp<'d, W, C>)> {
        let sock = self.bind(local).await?;
        Ok((sock.local, sock))
    }

    /// The same as [`bind_single`](embedded_nal_async::UdpStack::bind_single): the modem has
    /// one address per context.
    async fn bind_multiple(&self, local: SocketAddr) -> Result<UnconnectedUdp<'d, W, C>> {
        self.bind(local).await
    }
}
