//! Transparent access mode for the async stack.

use embedded_io_async::Write;

use super::lock::Ticket;
use super::{AsyncChannel, EscapeRequest, Resources, TcpConnection, write_all};
use crate::channel::interpret;
use crate::clock::AsyncClock;
use crate::commands::{AccessMode, Command, Qiswtmd, ServiceType};
use crate::core::Kind;
use crate::error::{Error, Result};
use crate::socket::SlotRef;
use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::mutex::MutexGuard;

/// A connection in transparent access mode: embedded-io-async `Read` and `Write` carry its
/// bytes with no AT framing. It holds the modem's command channel while it exists, so other
/// tasks' commands wait. Leave with [`exit`](TransparentConnection::exit) (the manual's `+++`
/// with guard times); dropping it leaves too, in the background, before anyone else gets the
/// channel. Afterwards the [`TcpConnection`] is in buffer access mode, and bytes that arrived
/// during the escape are its next `read`.
///
/// Transparent mode is in-band: see [`crate::blocking::Transparent`] for what that means for
/// untrusted peers.
pub struct TransparentConnection<'c, 'd, W: Write, C: AsyncClock> {
    conn: &'c mut TcpConnection<'d, W, C>,
    r: &'d Resources<W, C>,
    slot: SlotRef,
    ticket: Option<Ticket<'d, W, C>>,
    tx: Option<MutexGuard<'d, CriticalSectionRawMutex, W>>,
    last_write: u64,
}

impl<'d, W: Write, C: AsyncClock> TcpConnection<'d, W, C> {
    /// Switches the connection to transparent access mode (`AT+QISWTMD=<id>,2`, `CONNECT`).
    ///
    /// [`Error::NotSupported`] without the `transparent` feature.
    pub async fn transparent(&mut self) -> Result<TransparentConnection<'_, 'd, W, C>> {
        AccessMode::Transparent.supported()?;
        let (stack, slot) = self.parts();
        let r = stack.r;
        r.with(|s| {
            let sl = s.core.st.sockets.current(slot)?;
            if !matches!(sl.service, ServiceType::Tcp | ServiceType::TcpIncoming) {
                return Err(Error::InvalidArgument);
            }
            if sl.peer_closed { Err(Error::Closed) } else { Ok(()) }
        })?;
        // the receive buffer of transparent mode is the staging buffer: wait until it is free
        r.until(|s| (s.staging.owner.is_none() || s.staging.owner == Some(slot)).then_some(())).await;
        let ch = AsyncChannel { r, recovery: false, closer: false, dns_ticket: None };
        let (ticket, mut tx) = ch.acquire().await;
        let cmd = Qiswtmd { connect_id: slot.connect_id, access_mode: AccessMode::Transparent };
        let prepare = |s: &mut super::Shared| {
            let st = &mut s.staging;
            if st.owner != Some(slot) {
                (st.pos, st.len) = (0, 0);
            }
            st.owner = Some(slot);
            st.complete = true;
        };
        let timeout = cmd.timeout_ms();
        let started =
            ch.start_with(&mut tx, &cmd, Kind::Connect { connect_id: Some(slot.connect_id) }, timeout, prepare).await;
        let result = match started {
            Ok(()) => ch.finish(r.clock.now_ms() + u64::from(timeout)).await.and_then(interpret),
            Err(e) => Err(e),
        };
        r.with(|s| {
            s.core.end();
            if result.is_err() && s.staging.owner == Some(slot) && s.staging.len == s.staging.pos {
                s.staging.owner = None;
            }
        });
        result?;
        let last_write = r.clock.now_ms();
        Ok(TransparentConnection { conn: self, r, slot, ticket: Some(ticket), tx: Some(tx), last_write })
    }
}

impl<W: Write, C: AsyncClock> TransparentConnection<'_, '_, W, C> {
    fn active(&self) -> bool {
        let id = self.slot.connect_id;
        self.r.with(|s| s.core.st.modem.transparent == Some(id))
    }

    /// Leaves transparent access mode with `+++` and the guard times (or finds it left
    /// already, because the peer closed).
    pub async fn exit(mut self) -> Result<()> {
        let result = self.escape().await;
        self.ticket = None;
        self.tx = None;
        result
    }

    async fn escape(&mut self) -> Result<()> {
        let (r, id, last_write) = (self.r, self.slot.connect_id, self.last_write);
        let Some(tx) = self.tx.as_mut() else {
            return Ok(());
        };
        leave(r, &mut **tx, id, last_write).await
    }

    /// The underlying connection's connectID.
    pub fn connect_id(&self) -> u8 {
        self.conn.connect_id()
    }
}

/// The `+++` escape: silence, `+++`, silence, `OK`.
async fn leave<W: Write, C: AsyncClock>(r: &Resources<W, C>, tx: &mut W, id: u8, last_write: u64) -> Result<()> {
    let guard = u64::from(r.config.timeouts.guard_time_ms);
    let transparent = |r: &Resources<W, C>| r.with(|s| s.core.st.modem.transparent == Some(id));
    if !transparent(r) {
        return Ok(());
    }
    let quiet_from = last_write + u64::from(crate::recovery::escape_silence_ms(r.config.timeouts.guard_time_ms));
    let gone = r.until(|s| (s.core.st.modem.transparent != Some(id)).then_some(()));
    if let Either::First(()) = select(gone, r.clock.wait_until(quiet_from)).await {
        return Ok(());
    }
    write_all(tx, b"+++").await?;
    r.with(|s| s.core.ingress_mut().expect_escape(true));
    let deadline = r.clock.now_ms() + 2 * guard + 2_000;
    let gone = r.until(|s| (s.core.st.modem.transparent != Some(id)).then_some(()));
    match select(gone, r.clock.wait_until(deadline)).await {
        Either::First(()) => Ok(()),
        Either::Second(()) => {
            r.with(|s| s.core.ingress_mut().expect_escape(false));
            Err(Error::Timeout)
        }
    }
}

/// The runner's part of dropping a transparent connection without `exit`: leave transparent
/// mode, then give the command channel (kept since the drop) to the next task.
pub(super) async fn escape_for_dropped<W: Write, C: AsyncClock>(r: &Resources<W, C>, req: EscapeRequest) {
    {
        let mut tx = r.tx.lock().await;
        if let Err(e) = leave(r, &mut tx, req.slot.connect_id, req.last_write).await {
            warn!("leaving transparent mode after a drop failed: {:?}", e);
        }
    }
    r.with(|s| {
        s.lock.release();
        s.wakers.wake();
    });
}

impl<W: Write, C: AsyncClock> Drop for TransparentConnection<'_, '_, W, C> {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket.take() else {
            return;
        };
        // keep the command channel until the runner has left transparent mode
        ticket.keep();
        self.tx = None;
        let req = EscapeRequest { slot: self.slot, last_write: self.last_write };
        self.r.with(|s| s.escape = Some(req));
        self.r.housekeeping.signal(());
    }
}

impl<W: Write, C: AsyncClock> embedded_io_async::ErrorType for TransparentConnection<'_, '_, W, C> {
    type Error = Error;
}

impl<W: Write, C: AsyncClock> embedded_io_async::Read for TransparentConnection<'_, '_, W, C> {
    /// Waits for bytes; `Ok(0)` once the peer closed and everything was read.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let (r, slot) = (self.r, self.slot);
        let n = r
            .until(|s| {
                if let Some(n) = s.take_carried(slot, buf) {
                    return Some(n);
                }
                (s.core.st.modem.transparent != Some(slot.connect_id)).then_some(0)
            })
            .await;
        Ok(n)
    }
}

impl<W: Write, C: AsyncClock> embedded_io_async::Write for TransparentConnection<'_, '_, W, C> {
    /// Writes raw bytes; [`Error::Closed`] once the modem left transparent mode.
    async fn write(&mut self, buf: &[u8]) -> Result<usize> {
        if !self.active() {
            return Err(Error::Closed);
        }
        let tx = self.tx.as_mut().ok_or(Error::Closed)?;
        write_all(&mut **tx, buf).await?;
        self.last_write = self.r.clock.now_ms();
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}
