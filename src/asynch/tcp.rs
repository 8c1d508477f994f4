//! `TcpConnect` and the connection type: embedded-io-async `Read` + `Write` over one
//! connectID.

use core::net::SocketAddr;

use embedded_io_async::Write;

use super::Stack;
use crate::clock::AsyncClock;
use crate::commands::{AccessMode, Host, ServiceType};
use crate::error::{Error, Result};
use crate::modem::{self, OpenParams};
use crate::socket::SlotRef;

/// A TCP connection of the async stack. `read` waits for the modem's `recv` URC (it never
/// polls the modem while idle) and returns `Ok(0)` at the end of the stream once everything
/// received was read; `write` sends at most 1460 bytes per call and treats `SEND FAIL` as
/// back-pressure. Dropping the connection closes it: the runner sends `AT+QICLOSE`.
pub struct TcpConnection<'d, W: Write, C: AsyncClock> {
    stack: Stack<'d, W, C>,
    slot: SlotRef,
    remote: SocketAddr,
}

impl<'d, W: Write, C: AsyncClock> TcpConnection<'d, W, C> {
    /// The peer.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The connectID the modem gave the connection.
    pub fn connect_id(&self) -> u8 {
        self.slot.connect_id
    }

    /// How much of what was sent the peer acknowledged (`AT+QISEND=<id>,0`).
    pub async fn send_counters(&self) -> Result<crate::commands::SendCounters> {
        self.check()?;
        self.stack.command(&crate::commands::QisendQuery { connect_id: self.slot.connect_id }).await
    }

    /// How much was received and how much waits in the modem (`AT+QIRD=<id>,0`).
    pub async fn read_counters(&self) -> Result<crate::commands::ReadCounters> {
        self.check()?;
        self.stack.command(&crate::commands::QirdQuery { connect_id: self.slot.connect_id }).await
    }

    /// The modem's view of the connection (`AT+QISTATE=1,<connectID>`).
    pub async fn status(&self) -> Result<crate::commands::SocketStatus> {
        self.check()?;
        let list = self.stack.command(&crate::commands::Qistate::Socket(self.slot.connect_id)).await?;
        list.first().copied().ok_or(Error::Closed)
    }

    /// Sends 1–256 bytes written as hex (`AT+QISENDEX`).
    pub async fn send_hex(&mut self, data: &[u8]) -> Result<()> {
        modem::send_hex(&mut self.stack.channel(), self.slot, data).await
    }

    /// Puts the connection into direct push mode with `buffer` (at least
    /// [`MIN_PUSH_BUFFER`](crate::blocking::MIN_PUSH_BUFFER) bytes); see
    /// [`Bg96::enable_direct_push`](crate::blocking::Bg96::enable_direct_push).
    ///
    /// [`Error::NotSupported`] without the `direct-push` feature.
    pub async fn enable_direct_push(&mut self, buffer: &'static mut [u8]) -> Result<()> {
        AccessMode::DirectPush.supported()?;
        if buffer.len() < crate::blocking::MIN_PUSH_BUFFER {
            return Err(Error::InvalidArgument);
        }
        let id = self.slot.connect_id;
        self.stack.r.with(|s| {
            if s.push.get_mut(id).is_some_and(|ring| !ring.is_empty()) {
                return Err(Error::Busy);
            }
            s.push.install(id, crate::ring::Ring::new(buffer));
            Ok(())
        })?;
        modem::switch_mode(&mut self.stack.channel(), self.slot, AccessMode::DirectPush).await
    }

    /// Switches back to buffer access mode (`AT+QISWTMD=<id>,0`); pushed data is read first.
    pub async fn disable_direct_push(&mut self) -> Result<()> {
        modem::switch_mode(&mut self.stack.channel(), self.slot, AccessMode::Buffer).await
    }

    /// Gives the direct-push buffer back once the connection is in buffer access mode and
    /// everything pushed was read.
    pub fn take_push_buffer(&mut self) -> Option<&'static mut [u8]> {
        let slot = self.slot;
        self.stack.r.with(|s| {
            let in_push = s.core.st.sockets.current(slot).is_ok_and(|sl| sl.mode == AccessMode::DirectPush);
            let empty = s.push.get_mut(slot.connect_id).is_some_and(|ring| ring.is_empty());
            if in_push || !empty { None } else { s.push.remove(slot.connect_id) }
        })
    }

    fn check(&self) -> Result<()> {
        let slot = self.slot;
        self.stack.r.with(|s| s.core.st.sockets.current(slot).map(|_| ()))
    }

    pub(super) fn parts(&self) -> (Stack<'d, W, C>, SlotRef) {
        (self.stack, self.slot)
    }

    /// Closes the connection and waits until the modem closed it (dropping it closes it too,
    /// in the background).
    pub async fn close(self) -> Result<()> {
        let stack = self.stack;
        drop(self);
        stack.r.reclaim().await
    }
}

impl<W: Write, C: AsyncClock> Drop for TcpConnection<'_, W, C> {
    fn drop(&mut self) {
        self.stack.release(self.slot);
    }
}

impl<W: Write, C: AsyncClock> embedded_io_async::ErrorType for TcpConnection<'_, W, C> {
    type Error = Error;
}

impl<W: Write, C: AsyncClock> embedded_io_async::Read for TcpConnection<'_, W, C> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        Ok(self.stack.receive(self.slot, buf).await?.map_or(0, |(n, _)| n))
    }
}

impl<W: Write, C: AsyncClock> embedded_io_async::Write for TcpConnection<'_, W, C> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize> {
        self.stack.send_chunk(self.slot, buf, None).await
    }

    /// Data handed to the modem is on its way: nothing to flush on the host side.
    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}

impl<W: Write, C: AsyncClock> embedded_nal_async::TcpConnect for Stack<'_, W, C> {
    type Error = Error;
    type Connection<'a>
        = TcpConnection<'a, W, C>
    where
        Self: 'a;

    /// Opens a `"TCP"` socket (buffer access mode) and waits for `+QIOPEN` (up to 150 s; on a
    /// timeout the socket is closed, per Figure 1).
    async fn connect<'a>(&'a self, remote: SocketAddr) -> Result<TcpConnection<'a, W, C>> {
        let slot = self
            .open(OpenParams {
                context_id: self.r.config.context_id,
                service_type: ServiceType::Tcp,
                remote: Host::Ip(remote.ip()),
                remote_port: remote.port(),
                local_port: 0,
                access_mode: AccessMode::Buffer,
            })
            .await?;
        Ok(TcpConnection { stack: *self, slot, remote })
    }
}
