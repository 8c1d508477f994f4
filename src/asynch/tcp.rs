//! `TcpConnect` and the connection type: embedded-io-async `Read` + `Write` over one
//! connectID.

use core::net::SocketAddr;

use embedded_io_async::Write;

use super::Stack;
use crate::clock::AsyncClock;
use crate::commands::{AccessMode, Host, ServiceType};
use crate::error::{Error, Result};
use crate::modem::OpenParams;
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
