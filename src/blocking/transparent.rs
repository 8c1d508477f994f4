//! Transparent access mode for the blocking stack: one connection becomes the serial port's
//! exclusive byte stream.

use embedded_io::{Read, ReadReady, Write};

use super::{Bg96, Dest, Inner, Link, SocketHandle, TcpSocket, serial_error};
use crate::clock::{Clock, Instant};
use crate::commands::{AccessMode, Ato, Command, Qiswtmd, ServiceType};
use crate::core::Kind;
use crate::error::{Error, Result};
use crate::modem;
use crate::recovery::{NoPins, PowerControl};
use crate::socket::SlotRef;

/// A connection in transparent access mode: [`embedded_io::Read`] and [`embedded_io::Write`]
/// carry the connection's bytes with no AT framing at all (the best throughput the modem
/// offers). While it exists every other call of the stack answers [`Error::Busy`].
///
/// [`Transparent::exit`] (also run on drop) leaves with the manual's `+++` sequence: a guard
/// time of silence, `+++`, another guard time, then the modem's `OK`; the connection is in
/// buffer access mode afterwards and works with `send`/`receive` again. Bytes that arrive
/// while the escape runs are kept (up to 64) and delivered by the next `receive`.
///
/// When the peer closes, `read` returns `Ok(0)` once everything was read (the modem's
/// `NO CARRIER`); the connection is then back in command mode and must be closed.
///
/// Transparent mode is in-band by nature: data that contains `\r\nNO CARRIER\r\n` cannot be
/// told from the modem's own result code, and a pause of a guard time, `+++` and another
/// pause written by the application would leave the mode. Use buffer or direct-push mode for
/// untrusted peers.
pub struct Transparent<'a, S: Read + ReadReady + Write, C: Clock, P: PowerControl = NoPins> {
    modem: &'a Bg96<S, C, P>,
    slot: SlotRef,
    last_write: Instant,
    quiet_since: Option<Instant>,
    exited: bool,
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> Bg96<S, C, P> {
    /// Switches a connected TCP socket to transparent access mode (`AT+QISWTMD=<id>,2`, answered
    /// by `CONNECT`).
    ///
    /// [`Error::NotSupported`] without the `transparent` feature.
    pub fn enter_transparent(&self, socket: &TcpSocket) -> Result<Transparent<'_, S, C, P>> {
        AccessMode::Transparent.supported()?;
        let r = socket.slot().ok_or(Error::InvalidState)?;
        self.enter(r, |i| {
            let cmd = Qiswtmd { connect_id: r.connect_id, access_mode: AccessMode::Transparent };
            modem::blocking::command_with(
                &mut i.link,
                &cmd,
                Kind::Connect { connect_id: Some(r.connect_id) },
                cmd.timeout_ms(),
            )
            .map(|_| ())
        })
    }

    /// Returns to transparent access mode with `ATO` on the connection that left it last.
    pub fn resume_transparent(&self, socket: &TcpSocket) -> Result<Transparent<'_, S, C, P>> {
        AccessMode::Transparent.supported()?;
        let r = socket.slot().ok_or(Error::InvalidState)?;
        self.enter(r, |i| {
            if i.core.st.modem.last_transparent != Some(r.connect_id) {
                return Err(Error::InvalidState);
            }
            modem::blocking::command_with(&mut i.link, &Ato, Kind::Connect { connect_id: None }, Ato.timeout_ms())
                .map(|_| ())
        })
    }

    fn enter(
        &self,
        r: SlotRef,
        switch: impl FnOnce(&mut Inner<S, C, P>) -> Result<()>,
    ) -> Result<Transparent<'_, S, C, P>> {
        let last_write = self.with(|i| {
            i.poll()?;
            let slot = i.core.st.sockets.current(r)?;
            if !matches!(slot.service, ServiceType::Tcp | ServiceType::TcpIncoming) {
                return Err(Error::InvalidArgument);
            }
            if slot.peer_closed {
                return Err(Error::Closed);
            }
            i.stores.carry.clear();
            i.stores.carry_owner = Some(r);
            switch(i)?;
            Ok(i.now())
        })?;
        Ok(Transparent { modem: self, slot: r, last_write, quiet_since: None, exited: false })
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> Transparent<'_, S, C, P> {
    /// Leaves transparent access mode with `+++` (or finds it already left because the peer
    /// closed). The connection is in buffer access mode afterwards.
    pub fn exit(mut self) -> Result<()> {
        self.escape()
    }

    fn escape(&mut self) -> Result<()> {
        if self.exited {
            return Ok(());
        }
        self.exited = true;
        let last_write = self.last_write;
        let id = self.slot.connect_id;
        self.modem.with(|i| {
            let guard = i.config.timeouts.guard_time_ms;
            let transparent = |i: &Inner<S, C, P>| i.core.st.modem.transparent == Some(id);
            // silence before the escape
            let quiet_until = last_write.after_ms(crate::recovery::escape_silence_ms(i.config.timeouts.guard_time_ms));
            while transparent(i) && !quiet_until.reached(i.now()) {
                i.pump(Dest::None)?;
            }
            if !transparent(i) {
                return Ok(());
            }
            i.serial.write_all(b"+++").map_err(serial_error)?;
            i.serial.flush().map_err(serial_error)?;
            i.core.ingress_mut().expect_escape(true);
            // the modem answers OK after another guard time of silence
            let deadline = i.now().after_ms(guard.saturating_mul(2).saturating_add(2_000));
            while transparent(i) {
                if deadline.reached(i.now()) {
                    i.core.ingress_mut().expect_escape(false);
                    return Err(Error::Timeout);
                }
                i.pump(Dest::None)?;
            }
            Ok(())
        })
    }

    /// The connection's handle is the same `TcpSocket` as before; this is its connectID.
    pub fn connect_id(&self) -> u8 {
        self.slot.connect_id
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> Drop for Transparent<'_, S, C, P> {
    fn drop(&mut self) {
        if let Err(e) = self.escape() {
            warn!("leaving transparent mode failed: {:?}", e);
        }
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> embedded_io::ErrorType for Transparent<'_, S, C, P> {
    type Error = Error;
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> Read for Transparent<'_, S, C, P> {
    /// Waits for at least one byte; `Ok(0)` once the peer closed and everything was read.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let (slot, quiet) = (self.slot, &mut self.quiet_since);
        loop {
            let done = self.modem.with(|i| -> Result<Option<usize>> {
                if let Some(n) = i.stores.take_carry(slot, buf) {
                    return Ok(Some(n));
                }
                if i.core.st.modem.transparent != Some(slot.connect_id) {
                    return Ok(Some(0));
                }
                let mut pos = 0;
                let got = i.pump(Dest::Transparent(buf, &mut pos))?;
                if pos > 0 {
                    *quiet = None;
                    return Ok(Some(pos));
                }
                // bytes held back as a possible NO CARRIER are data after a quiet spell
                if i.core.ingress().held_len() > 0 {
                    let now = i.now();
                    match *quiet {
                        _ if got => *quiet = Some(now),
                        None => *quiet = Some(now),
                        Some(t) if t.after_ms(i.config.timeouts.transparent_quiet_ms).reached(now) => {
                            *quiet = None;
                            let Link { core, stores, .. } = &mut i.link;
                            core.flush_transparent(stores);
                        }
                        Some(_) => {}
                    }
                }
                Ok(None)
            })?;
            if let Some(n) = done {
                return Ok(n);
            }
        }
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> ReadReady for Transparent<'_, S, C, P> {
    fn read_ready(&mut self) -> Result<bool> {
        let slot = self.slot;
        self.modem.with(|i| {
            if i.stores.carry_owner == Some(slot) && !i.stores.carry.is_empty() {
                return Ok(true);
            }
            i.serial.read_ready().map_err(serial_error)
        })
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> Write for Transparent<'_, S, C, P> {
    /// Writes raw bytes to the connection; [`Error::Closed`] once the modem left transparent
    /// mode (the peer closed).
    fn write(&mut self, buf: &[u8]) -> Result<usize> {
        let id = self.slot.connect_id;
        let now = self.modem.with(|i| {
            if i.core.st.modem.transparent != Some(id) {
                return Err(Error::Closed);
            }
            i.serial.write_all(buf).map_err(serial_error)?;
            Ok(i.now())
        })?;
        self.last_write = now;
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<()> {
        self.modem.with(|i| i.serial.flush().map_err(serial_error))
    }
}
