//! The blocking front: embedded-nal 0.9 traits over the shared engine, for single-threaded
//! firmware with no interrupts, threads or executor.
//!
//! [`Bg96`] owns the serial port and polls it whenever it needs input: while a command runs,
//! and once at the start of every non-blocking call (`connect`, `receive`, `accept`, ...) so
//! that URCs are seen. A `receive` with nothing pending returns `WouldBlock` **without sending
//! anything to the modem**: data is announced by `+QIURC: "recv"` URCs.
//!
//! The traits are implemented for `&Bg96`, so one modem serves several users at once (minimq
//! needs a `TcpClientStack` and, for a named broker, a `Dns`): interior mutability through a
//! `RefCell`, which is fine because everything runs on one thread.
//!
//! # Feeding the stack from a UART interrupt
//!
//! The stack reads through `embedded_io::Read + ReadReady`. To receive in an interrupt
//! instead of polling the UART, let the interrupt push bytes into a queue (for example
//! `heapless::spsc::Queue`) and give the stack a serial type whose `read_ready` says whether
//! the queue has bytes and whose `read` pops them, and whose `Write` writes to the UART. Nothing
//! else changes; the stack never blocks in `read` because it asks `read_ready` first.

use core::cell::RefCell;
use core::net::{IpAddr, SocketAddr};
use core::ops::{Deref, DerefMut};

use embedded_io::{Read, ReadReady, Write};

use crate::channel::{BlockingChannel, ReadInfo, interpret};
use crate::clock::{Clock, Instant};
use crate::commands::{AccessMode, Command, CommandLine, Host, MAX_SEND, Qird, Qisend, ServiceType};
use crate::config::Config;
use crate::core::{Core, DataSink, Kind, State, Stats};
use crate::recovery::{NoPins, PowerControl, RebootPolicy};
use crate::ring::{PushStores, Ring};

mod transparent;
use crate::error::{Error, Result};
use crate::modem::{self, ModemInfo, OpenParams};
use crate::socket::{CONNECT_IDS, SlotRef, SlotState};
use crate::wire::{Discard, Sink};
pub use transparent::Transparent;

/// Smallest buffer for [`Bg96::enable_direct_push`].
pub const MIN_PUSH_BUFFER: usize = 4096;

/// Bytes read from the serial port per poll.
const RX_CHUNK: usize = 32;

/// The BG96 network stack, blocking front. See the [module docs](self).
pub struct Bg96<S, C, P = NoPins> {
    inner: RefCell<Inner<S, C, P>>,
}

/// Where the front keeps what the ingress hands over outside of a `+QIRD` read: direct-push
/// data in the rings the user lent, transparent-mode bytes in a small carry buffer until the
/// transparent stream's next `read`.
struct Stores {
    push: PushStores,
    carry: heapless::Deque<u8, TRANSPARENT_CARRY>,
    /// The connection the carried transparent bytes belong to.
    carry_owner: Option<SlotRef>,
}

impl Stores {
    /// Takes carried transparent-mode bytes of `r` (bytes that arrived while leaving
    /// transparent mode).
    fn take_carry(&mut self, r: SlotRef, out: &mut [u8]) -> Option<usize> {
        if self.carry_owner != Some(r) || self.carry.is_empty() || out.is_empty() {
            return None;
        }
        let mut n = 0;
        for o in out.iter_mut() {
            match self.carry.pop_front() {
                Some(b) => {
                    *o = b;
                    n += 1;
                }
                None => break,
            }
        }
        if self.carry.is_empty() {
            self.carry_owner = None;
        }
        Some(n)
    }
}

/// Transparent-mode bytes that arrive while the stream's reader is not there (e.g. while the
/// escape sequence runs) are kept up to this many (a heapless deque holds at least one: 1
/// without the `transparent` feature, where none arrive).
const TRANSPARENT_CARRY: usize = if cfg!(feature = "transparent") { 64 } else { 1 };

impl DataSink for Stores {
    fn read(&mut self, _: &[u8]) {}
    fn push(&mut self, id: u8, _: Option<(usize, Option<SocketAddr>)>, data: &[u8]) -> usize {
        self.push.push(id, data)
    }
    fn transparent(&mut self, data: &[u8]) -> usize {
        data.iter().take_while(|&&b| self.carry.push_back(b).is_ok()).count()
    }
    fn push_room(&self, id: u8) -> Option<usize> {
        self.push.room(id)
    }
}

/// Where a pump delivers payload: a `+QIRD` answer or transparent-mode bytes go straight into
/// the caller's buffer.
enum Dest<'a> {
    /// Nobody is reading: payload goes to the stores.
    None,
    /// The payload of the running `AT+QIRD`.
    Read(&'a mut [u8], &'a mut usize),
    /// Transparent-mode bytes (what does not fit goes to the carry buffer).
    Transparent(&'a mut [u8], &'a mut usize),
}

/// The sink of a read: payload into the caller's buffer, the rest to the stores.
struct ReadSink<'a> {
    dest: &'a mut [u8],
    pos: usize,
    transparent: bool,
    stores: &'a mut Stores,
}

impl ReadSink<'_> {
    fn copy(&mut self, data: &[u8]) -> usize {
        let end = (self.pos + data.len()).min(self.dest.len());
        let n = end.saturating_sub(self.pos);
        if let (Some(dst), Some(src)) = (self.dest.get_mut(self.pos..end), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos = end;
        n
    }
}

impl DataSink for ReadSink<'_> {
    fn read(&mut self, data: &[u8]) {
        if !self.transparent {
            self.copy(data);
        }
    }
    fn push(&mut self, id: u8, start: Option<(usize, Option<SocketAddr>)>, data: &[u8]) -> usize {
        self.stores.push(id, start, data)
    }
    fn transparent(&mut self, data: &[u8]) -> usize {
        if !self.transparent {
            return self.stores.transparent(data);
        }
        let n = self.copy(data);
        n + self.stores.transparent(data.get(n..).unwrap_or(&[]))
    }
    fn push_room(&self, id: u8) -> Option<usize> {
        self.stores.push_room(id)
    }
}

/// The serial port and the engine, which the shared procedures drive (the
/// [`BlockingChannel`]), and the front's own bookkeeping. The configuration is beside it in
/// [`Inner`], not in it, so that a procedure can take both without copying the configuration.
struct Link<S, C, P> {
    serial: S,
    clock: C,
    pins: P,
    core: Core,
    stores: Stores,
    /// The recovery rules in use: `Config::recovery` as changed by `set_policy`.
    policy: RebootPolicy,
    handles: u8,
    info: Option<ModemInfo>,
    dns_query: Option<DnsQuery>,
}

struct Inner<S, C, P> {
    link: Link<S, C, P>,
    config: Config,
}

impl<S, C, P> Deref for Inner<S, C, P> {
    type Target = Link<S, C, P>;
    fn deref(&self) -> &Link<S, C, P> {
        &self.link
    }
}

impl<S, C, P> DerefMut for Inner<S, C, P> {
    fn deref_mut(&mut self) -> &mut Link<S, C, P> {
        &mut self.link
    }
}

/// Writes a command line to the serial port piece by piece as the command writes it (no copy
/// in between: a UART takes small writes as well as large ones); the first serial error ends
/// the writing and is kept for the caller.
struct SerialSink<'a, S> {
    serial: &'a mut S,
    error: Option<Error>,
}

impl<S: Write> Sink for SerialSink<'_, S> {
    fn put(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            self.error = self.serial.write_all(bytes).map_err(serial_error).err();
        }
    }
}

fn serial_error<E: embedded_io::Error>(e: E) -> Error {
    Error::Serial(e.kind())
}

impl<S, C: Clock, P> Link<S, C, P> {
    /// The clock's time (out of line: the stack reads it in many places, and a clock read
    /// can be a critical section).
    #[inline(never)]
    fn now(&self) -> Instant {
        Instant::now(&self.clock)
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> Link<S, C, P> {
    /// Reads what the serial port has (one chunk) and feeds it to the engine.
    fn pump(&mut self, dest: Dest<'_>) -> Result<bool> {
        if !self.serial.read_ready().map_err(serial_error)? {
            return Ok(false);
        }
        let mut rx = [0u8; RX_CHUNK];
        let n = self.serial.read(&mut rx).map_err(serial_error)?;
        let input = rx.get(..n).unwrap_or(&[]);
        let (dest, pos, transparent) = match dest {
            Dest::None => {
                self.core.feed(input, &mut self.stores);
                return Ok(n > 0);
            }
            Dest::Read(d, p) => (d, p, false),
            Dest::Transparent(d, p) => (d, p, true),
        };
        let mut sink = ReadSink { dest, pos: *pos, transparent, stores: &mut self.stores };
        self.core.feed(input, &mut sink);
        *pos = sink.pos;
        Ok(n > 0)
    }

    fn write_command(&mut self, cmd: &dyn CommandLine) -> Result<()> {
        let mut sink = SerialSink { serial: &mut self.serial, error: None };
        cmd.write_line(&mut sink)?;
        if let Some(e) = sink.error {
            return Err(e);
        }
        self.serial.flush().map_err(serial_error)
    }

    fn start(&mut self, cmd: &dyn CommandLine, kind: Kind) -> Result<()> {
        // check every argument before the first byte goes out: a partial line would
        // corrupt the next command
        cmd.write_line(&mut Discard)?;
        self.core.begin(cmd.prefix(), kind)?;
        if let Err(e) = self.write_command(cmd) {
            self.core.end();
            return Err(e);
        }
        Ok(())
    }

    /// Polls until the running command has its final result, or the deadline.
    fn wait_result(
        &mut self,
        deadline: Instant,
        mut dest: Option<(&mut [u8], &mut usize)>,
    ) -> Result<crate::ingress::Final> {
        loop {
            if let Some(r) = self.core.result() {
                return r;
            }
            if deadline.reached(self.now()) {
                return Err(Error::Timeout);
            }
            let d = match dest.as_mut() {
                Some((d, p)) => Dest::Read(d, p),
                None => Dest::None,
            };
            self.pump(d)?;
        }
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> Inner<S, C, P> {
    /// Processes everything the modem has sent so far, without waiting, and switches
    /// direct-push sockets whose buffer filled up to buffer access mode.
    fn poll(&mut self) -> Result<()> {
        if self.core.st.transparent_id().is_some() {
            return Err(Error::Busy);
        }
        loop {
            // a direct-push buffer filling up is dealt with before more input is read
            if cfg!(feature = "direct-push") && self.core.st.sockets.throttled().is_some() {
                modem::blocking::apply_throttles(&mut self.link)?;
            }
            if !self.pump(Dest::None)? {
                break;
            }
        }
        self.maintain()
    }

    /// Recovery (Figure 1) and ACK supervision, when due. Only after the first bring-up: the
    /// stack does nothing on its own before.
    fn maintain(&mut self) -> Result<()> {
        let rec = self.core.st.recovery;
        if !rec.brought_up || rec.in_progress {
            return Ok(());
        }
        self.recover_if_due()?;
        let now = self.now();
        if self.core.st.sockets.ack_due(now, self.link.policy.ack_interval_ms).is_some() {
            modem::blocking::supervise_acks(&mut self.link)?;
        }
        Ok(())
    }

    /// [`modem::ensure_ready`] when recovery is due and not already running.
    fn recover_if_due(&mut self) -> Result<()> {
        if modem::recovery_due(&self.core.st) && !self.core.st.recovery.in_progress {
            self.recover()?;
        }
        Ok(())
    }

    /// [`modem::ensure_ready`], out of line: recovery is rare, `poll` is not.
    #[cold]
    #[inline(never)]
    fn recover(&mut self) -> Result<()> {
        modem::blocking::ensure_ready(&mut self.link, &self.config)
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> BlockingChannel for Link<S, C, P> {
    fn now(&self) -> Instant {
        Link::now(self)
    }

    fn sleep_ms(&mut self, ms: u32) {
        let deadline = self.now().after_ms(ms);
        while !deadline.reached(self.now()) {
            if self.pump(Dest::None).is_err() {
                break;
            }
        }
    }

    fn exec_line(
        &mut self,
        cmd: &dyn CommandLine,
        kind: Kind,
        timeout_ms: u32,
        parse: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        self.start(cmd, kind)?;
        let deadline = self.now().after_ms(timeout_ms);
        let result = self.wait_result(deadline, None).and_then(interpret).and_then(|()| parse(self.core.response()?));
        self.core.end();
        result
    }

    fn send(&mut self, cmd: &Qisend, data: &[u8]) -> Result<()> {
        self.start(cmd, Kind::Send)?;
        let timeout = cmd.timeout_ms();
        let mut deadline = self.now().after_ms(timeout);
        let mut lost_prompt = false;
        let result = (|| {
            while !self.core.prompted() {
                if let Some(r) = self.core.result() {
                    return r.and_then(interpret).and(Err(Error::Failed));
                }
                if deadline.reached(self.now()) {
                    // the modem may be waiting for the payload even so: complete it, so that
                    // the next command line is not taken for payload (see inert_as_commands)
                    lost_prompt = true;
                    deadline = self.now().after_ms(timeout);
                    break;
                }
                self.pump(Dest::None)?;
            }
            let filler = lost_prompt && !crate::core::inert_as_commands(data);
            if filler {
                // one CR per payload byte (a rare path: byte by byte, no table in flash)
                for _ in data {
                    self.serial.write_all(b"\r").map_err(serial_error)?;
                }
            } else {
                self.serial.write_all(data).map_err(serial_error)?;
            }
            self.serial.flush().map_err(serial_error)?;
            self.core.payload_written(data.len());
            let sent = interpret(self.wait_result(deadline, None)?);
            // CRs went out in place of the payload: it was not sent
            if filler { sent.and(Err(Error::Timeout)) } else { sent }
        })();
        if lost_prompt && result.is_err() {
            // the modem may have sent a part of the payload or filler: the stream is broken
            if let Some(slot) = self.core.st.sockets.get_mut(cmd.connect_id) {
                slot.tx_broken = true;
            }
        }
        self.core.end();
        result
    }

    fn read(&mut self, cmd: &Qird, dest: &mut [u8]) -> Result<ReadInfo> {
        self.start(cmd, Kind::Read { connect_id: cmd.connect_id })?;
        let deadline = self.now().after_ms(cmd.timeout_ms());
        let mut pos = 0;
        let result = self.wait_result(deadline, Some((dest, &mut pos))).and_then(interpret);
        let header = self.core.st.cmd.read_header;
        self.core.end();
        result?;
        let (len, remote) = header.ok_or(Error::Parse)?;
        Ok(ReadInfo { len, copied: pos, remote })
    }

    fn wait_for<T>(&mut self, deadline: Instant, mut f: impl FnMut(&mut State) -> Option<T>) -> Result<T> {
        loop {
            if let Some(v) = f(&mut self.core.st) {
                return Ok(v);
            }
            if deadline.reached(self.now()) {
                return Err(Error::Timeout);
            }
            self.pump(Dest::None)?;
        }
    }

    fn state<R>(&mut self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.core.st)
    }

    fn reclaim(&mut self) -> Result<()> {
        modem::blocking::close_pending(self)
    }

    fn with_power<R>(&mut self, f: impl FnOnce(&mut dyn PowerControl) -> R) -> R {
        f(&mut self.pins)
    }

    fn policy(&mut self) -> RebootPolicy {
        self.policy.clone()
    }
}

impl<S: Read + ReadReady + Write, C: Clock> Bg96<S, C, NoPins> {
    /// A stack over `serial` (the UART to the modem, 115200 8N1 by default), timed by `clock`.
    /// Nothing is sent until [`Bg96::bring_up`].
    pub fn new(serial: S, clock: C, config: Config) -> Self {
        Self::with_pins(serial, clock, config, NoPins)
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> Bg96<S, C, P> {
    /// A stack that can also drive the modem's power key and reset line (see
    /// [`crate::recovery::Pins`]): reboots then work when the modem no longer answers, and
    /// [`Bg96::power_on`] is available.
    pub fn with_pins(serial: S, clock: C, config: Config, pins: P) -> Self {
        Self {
            inner: RefCell::new(Inner {
                link: Link {
                    serial,
                    clock,
                    pins,
                    core: Core::new(),
                    stores: Stores { push: PushStores::new(), carry: heapless::Deque::new(), carry_owner: None },
                    policy: config.recovery.clone(),
                    handles: 0,
                    info: None,
                    dns_query: None,
                },
                config,
            }),
        }
    }

    /// Brings the modem up (the manual's Figure 1): synchronises, switches echo off, checks the
    /// (U)SIM and the registration, configures and activates the context, and closes sockets an
    /// earlier run of the firmware left open.
    pub fn bring_up(&self) -> Result<ModemInfo> {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        let info = modem::blocking::bring_up(&mut inner.link, &inner.config)?;
        inner.info = Some(info.clone());
        Ok(info)
    }

    /// Reboots the modem now (`AT+CFUN=1,1`, or the reset line / power key when it does not
    /// answer) and brings it up again, within the reboot back-off of the
    /// [`RebootPolicy`].
    pub fn reboot(&self) -> Result<ModemInfo> {
        self.with(|i| {
            let info = modem::blocking::reboot(&mut i.link, &i.config)?;
            i.info = Some(info.clone());
            Ok(info)
        })
    }

    /// Switches the modem on with the power key (Figure 1: pressed for 2 s) and waits for
    /// `RDY`; [`Error::NotSupported`] without a power key line. Follow with
    /// [`bring_up`](Self::bring_up).
    pub fn power_on(&self) -> Result<()> {
        self.with(|i| modem::blocking::power_on(&mut i.link, &i.config))
    }

    /// Switches the modem off as Figure 1 says: `AT+QPOWD=1`, `POWERED DOWN`, then 12 s
    /// before the supply is cut (where the board can). Every socket is gone afterwards.
    pub fn power_down(&self) -> Result<()> {
        self.with(|i| modem::blocking::power_down(&mut i.link))
    }

    /// What recovery has seen: failures in a row, reboots, whether a check is pending.
    pub fn recovery(&self) -> crate::recovery::RecoveryState {
        self.with(|i| i.core.st.recovery)
    }

    /// The recovery rules and reboot back-off in use.
    pub fn policy(&self) -> crate::recovery::RebootPolicy {
        self.with(|i| i.policy.clone())
    }

    /// Changes the recovery rules and reboot back-off.
    pub fn set_policy(&self, policy: crate::recovery::RebootPolicy) {
        self.with(|i| {
            i.config.recovery = policy.clone();
            i.link.policy = policy;
        });
    }

    /// What the last bring-up learnt.
    pub fn info(&self) -> Option<ModemInfo> {
        self.inner.borrow().info.clone()
    }

    /// Processes what the modem has sent (URCs) without waiting and without sending anything.
    pub fn poll(&self) -> Result<()> {
        self.inner.borrow_mut().poll()
    }

    /// Runs a typed command that changes nothing the stack keeps track of (see
    /// [`Stateless`](crate::commands::Stateless)) and returns its parsed answer. A bare `ERROR`
    /// of a TCP/IP command is reported with the code from `AT+QIGETERROR`.
    ///
    /// ```no_run
    /// # fn f<S: embedded_io::Read + embedded_io::ReadReady + embedded_io::Write, C: quectel_bg96::clock::Clock>(modem: &quectel_bg96::blocking::Bg96<S, C>) -> quectel_bg96::Result<()> {
    /// use quectel_bg96::commands::{Qistate, QicfgQuery, QicfgName};
    /// let sockets = modem.command(&Qistate::All)?;
    /// let pkt = modem.command(&QicfgQuery(QicfgName::TransPktSize))?;
    /// # Ok(()) }
    /// ```
    pub fn command<Cmd: crate::commands::Stateless>(&self, cmd: &Cmd) -> Result<Cmd::Response> {
        self.run(|i| modem::blocking::command(&mut i.link, cmd))
    }

    /// Runs `f` on the stack when it is free to take a command.
    fn run<R>(&self, f: impl FnOnce(&mut Inner<S, C, P>) -> Result<R>) -> Result<R> {
        self.with(|i| {
            i.poll()?;
            f(i)
        })
    }

    /// Activates a PDP context (`AT+QIACT`, up to 150 s) unless it is active, and returns its
    /// local address.
    pub fn activate_context(&self, context_id: u8) -> Result<Option<IpAddr>> {
        self.run(|i| modem::blocking::activate_context(&mut i.link, context_id))
    }

    /// Deactivates a PDP context (`AT+QIDEACT`, up to 40 s); its sockets are gone afterwards.
    pub fn deactivate_context(&self, context_id: u8) -> Result<()> {
        self.run(|i| modem::blocking::deactivate_context(&mut i.link, context_id))
    }

    /// The active contexts and their addresses (`AT+QIACT?`).
    pub fn contexts(&self) -> Result<crate::commands::ContextStates> {
        self.command(&crate::commands::QiactRead)
    }

    /// Pings `host` (name or address) on the stack's context (`AT+QPING`) and waits for every
    /// reply and the summary. `timeout_s` per request (1–255, default 4), `count` requests
    /// (1–10, default 4). Cargo feature `ping` (default).
    #[cfg(feature = "ping")]
    pub fn ping(&self, host: &str, timeout_s: Option<u8>, count: Option<u8>) -> Result<modem::PingResult> {
        self.run(|i| {
            let cid = i.config.context_id;
            modem::blocking::ping(&mut i.link, cid, Host::from(host), timeout_s, count)
        })
    }

    /// Synchronises the modem's clock with an NTP server (`AT+QNTP`, up to 125 s) and returns
    /// the time it gave. `set_clock` also sets the modem's clock (`AT+CCLK`). Cargo feature
    /// `ntp` (default).
    #[cfg(feature = "ntp")]
    pub fn sync_time(&self, server: &str, port: Option<u16>, set_clock: bool) -> Result<crate::commands::NtpTime> {
        self.run(|i| {
            let cid = i.config.context_id;
            modem::blocking::sync_time(&mut i.link, cid, Host::from(server), port, Some(set_clock))
        })
    }

    /// The DNS servers of the stack's context (`AT+QIDNSCFG=<contextID>`).
    pub fn dns_servers(&self) -> Result<crate::commands::DnsServers> {
        let context_id = self.with(|i| i.config.context_id);
        self.command(&crate::commands::QidnscfgQuery { context_id })
    }

    /// Sets the DNS servers of the stack's context (the modem refuses until it is active).
    pub fn set_dns_servers(&self, primary: IpAddr, secondary: Option<IpAddr>) -> Result<()> {
        let context_id = self.with(|i| i.config.context_id);
        self.command(&crate::commands::Qidnscfg { context_id, primary, secondary }).map(|_| ())
    }

    /// The code and text of the last TCP/IP error (`AT+QIGETERROR`).
    pub fn last_error(&self) -> Result<crate::commands::LastError> {
        self.command(&crate::commands::Qigeterror)
    }

    /// Changes an `AT+QICFG` setting. Hex data formats and view mode 1 are refused
    /// ([`Error::NotSupported`]): the stack reads text data with header and data on separate
    /// lines. Read settings with [`command`](Self::command) and
    /// [`QicfgQuery`](crate::commands::QicfgQuery).
    pub fn configure(&self, setting: crate::commands::QicfgSetting<'_>) -> Result<()> {
        self.run(|i| modem::blocking::configure(&mut i.link, setting))
    }

    /// Payload echo of `AT+QISEND` on or off (`AT+QISDE`); the stack copes with both.
    pub fn set_payload_echo(&self, echo: bool) -> Result<()> {
        self.run(|i| modem::blocking::set_payload_echo(&mut i.link, echo))
    }

    /// How much of what was sent on a socket the peer acknowledged (`AT+QISEND=<id>,0`).
    pub fn send_counters(&self, socket: &impl SocketHandle) -> Result<crate::commands::SendCounters> {
        let connect_id = self.current_id(socket)?;
        self.command(&crate::commands::QisendQuery { connect_id })
    }

    /// How much a socket received and how much of it waits in the modem (`AT+QIRD=<id>,0`).
    pub fn read_counters(&self, socket: &impl SocketHandle) -> Result<crate::commands::ReadCounters> {
        let connect_id = self.current_id(socket)?;
        self.command(&crate::commands::QirdQuery { connect_id })
    }

    /// The modem's view of a socket (`AT+QISTATE=1,<connectID>`).
    pub fn socket_status(&self, socket: &impl SocketHandle) -> Result<crate::commands::SocketStatus> {
        let connect_id = self.current_id(socket)?;
        self.command(&crate::commands::Qistate::Socket(connect_id))?.first().copied().ok_or(Error::Closed)
    }

    /// Sends 1–256 bytes written as hex (`AT+QISENDEX`); `SEND FAIL` is `WouldBlock`.
    pub fn send_hex(&self, socket: &TcpSocket, data: &[u8]) -> nb::Result<(), Error> {
        let r = socket.slot().ok_or(Error::InvalidState)?;
        match self.run(|i| modem::blocking::send_hex(&mut i.link, r, data)) {
            Err(Error::SendFail) => Err(nb::Error::WouldBlock),
            other => other.map_err(nb::Error::Other),
        }
    }

    /// Puts a TCP socket into direct push mode: the modem sends received data inside its URCs
    /// (no `AT+QIRD` round trip) into `buffer` (at least [`MIN_PUSH_BUFFER`] bytes), which
    /// `receive` then reads. When `buffer` can no longer take two whole frames (2 × 1500
    /// bytes), the stack switches the socket back to buffer access mode, so a fast peer's data
    /// waits in the modem instead of the host; `receive` carries on seamlessly.
    ///
    /// The modem cannot be paused per socket: what it pushed before the switch took effect
    /// must fit. With RTS/CTS flow control on the UART (`AT+IFC=2,2`) that is at most a frame
    /// or two; without it, bytes that do not fit are counted and reported once by `receive` as
    /// [`Error::DataLost`].
    ///
    /// [`Error::NotSupported`] without the `direct-push` feature.
    pub fn enable_direct_push(&self, socket: &TcpSocket, buffer: &'static mut [u8]) -> Result<()> {
        AccessMode::DirectPush.supported()?;
        let r = socket.slot().ok_or(Error::InvalidState)?;
        if buffer.len() < MIN_PUSH_BUFFER {
            return Err(Error::InvalidArgument);
        }
        self.run(|i| {
            if i.stores.push.get_mut(r.connect_id).is_some_and(|ring| !ring.is_empty()) {
                return Err(Error::Busy);
            }
            i.stores.push.install(r.connect_id, Ring::new(buffer));
            modem::blocking::switch_mode(&mut i.link, r, AccessMode::DirectPush)
        })
    }

    /// Switches a direct-push socket back to buffer access mode (`AT+QISWTMD=<id>,0`). Data
    /// already pushed is still read first.
    pub fn disable_direct_push(&self, socket: &TcpSocket) -> Result<()> {
        let r = socket.slot().ok_or(Error::InvalidState)?;
        self.run(|i| modem::blocking::switch_mode(&mut i.link, r, AccessMode::Buffer))
    }

    /// Gives back the buffer of [`enable_direct_push`](Self::enable_direct_push) once the
    /// socket is in buffer access mode and everything pushed was read.
    pub fn take_push_buffer(&self, socket: &TcpSocket) -> Option<&'static mut [u8]> {
        let r = socket.slot()?;
        self.with(|i| {
            let in_push = i.core.st.sockets.current(r).is_ok_and(|s| s.mode == AccessMode::DirectPush);
            let empty = i.stores.push.get_mut(r.connect_id).is_some_and(|ring| ring.is_empty());
            if in_push || !empty { None } else { i.stores.push.remove(r.connect_id) }
        })
    }

    fn current_id(&self, socket: &impl SocketHandle) -> Result<u8> {
        let r = socket.slot().ok_or(Error::InvalidState)?;
        self.with(|i| i.core.st.sockets.current(r).map(|_| r.connect_id))
    }

    /// Counters of the ingress.
    pub fn stats(&self) -> Stats {
        self.inner.borrow().core.st.stats
    }

    /// How many connectIDs the modem has in use, as far as the stack knows.
    pub fn sockets_in_use(&self) -> usize {
        self.inner.borrow().core.st.sockets.in_use()
    }

    /// Gives the serial port and the clock back.
    pub fn release(self) -> (S, C) {
        let inner = self.inner.into_inner();
        (inner.link.serial, inner.link.clock)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner<S, C, P>) -> R) -> R {
        f(&mut self.inner.borrow_mut())
    }
}

// ---------------------------------------------------------------------------------------------
// Socket handles

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sock {
    New,
    Bound(u16),
    Connecting {
        slot: SlotRef,
        deadline: Instant,
    },
    Connected(SlotRef),
    /// A `"TCP LISTENER"`.
    Listening(SlotRef),
    /// A `"UDP SERVICE"`.
    Service(SlotRef),
}

/// A TCP socket handle of the blocking stack.
#[derive(Debug)]
pub struct TcpSocket {
    st: Sock,
}

/// A UDP socket handle of the blocking stack.
#[derive(Debug)]
pub struct UdpSocket {
    st: Sock,
}

impl Sock {
    fn slot(&self) -> Option<SlotRef> {
        match *self {
            Sock::Connecting { slot, .. } | Sock::Connected(slot) | Sock::Listening(slot) | Sock::Service(slot) => {
                Some(slot)
            }
            Sock::New | Sock::Bound(_) => None,
        }
    }
}

/// What the stack's per-socket methods take: a TCP or UDP socket handle.
pub trait SocketHandle {
    /// The slot the handle refers to, once the modem has a connectID for it.
    #[doc(hidden)]
    fn slot(&self) -> Option<SlotRef>;

    /// The connectID the modem gave the socket (`None` before `connect`/`listen`/`bind`).
    fn connect_id(&self) -> Option<u8> {
        self.slot().map(|s| s.connect_id)
    }
}

impl SocketHandle for TcpSocket {
    fn slot(&self) -> Option<SlotRef> {
        self.st.slot()
    }
}

impl SocketHandle for UdpSocket {
    fn slot(&self) -> Option<SlotRef> {
        self.st.slot()
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> Inner<S, C, P> {
    fn new_handle(&mut self) -> Result<()> {
        if usize::from(self.handles) >= CONNECT_IDS {
            return Err(Error::NoFreeSocket);
        }
        self.handles += 1;
        Ok(())
    }

    fn drop_handle(&mut self) {
        self.handles = self.handles.saturating_sub(1);
    }

    fn open(&mut self, service_type: ServiceType, remote: SocketAddr, local_port: u16) -> Result<SlotRef> {
        let params = OpenParams {
            context_id: self.config.context_id,
            service_type,
            remote: Host::Ip(remote.ip()),
            remote_port: remote.port(),
            local_port,
            access_mode: AccessMode::Buffer,
        };
        self.recover_if_due()?;
        modem::blocking::start_open(&mut self.link, &params)
    }

    /// Reads once from a connected socket into `buf`; `WouldBlock` without a command when
    /// nothing was announced.
    fn socket_receive(&mut self, r: SlotRef, buf: &mut [u8]) -> nb::Result<(usize, Option<SocketAddr>), Error> {
        self.poll()?;
        let slot = *self.core.st.sockets.current(r)?;
        // what arrived while leaving transparent mode, and what the modem pushed, comes first
        if cfg!(feature = "transparent")
            && let Some(n) = self.stores.take_carry(r, buf)
        {
            return Ok((n, slot.remote));
        }
        if cfg!(feature = "direct-push")
            && let Some(n) = self.stores.push.read(r.connect_id, buf)
        {
            return Ok((n, slot.remote));
        }
        if cfg!(feature = "direct-push") && slot.push_lost > 0 {
            if let Ok(s) = self.core.st.sockets.current_mut(r) {
                s.push_lost = 0;
            }
            return Err(nb::Error::Other(Error::DataLost));
        }
        if !slot.rx_ready || (cfg!(feature = "direct-push") && slot.mode == AccessMode::DirectPush) {
            return Err(if slot.peer_closed { nb::Error::Other(Error::Closed) } else { nb::Error::WouldBlock });
        }
        match modem::blocking::read_socket(&mut self.link, r, buf)? {
            modem::ReadOutcome::Data { len, remote } => Ok((len, remote)),
            modem::ReadOutcome::Empty => Err(nb::Error::WouldBlock),
            modem::ReadOutcome::Closed => Err(nb::Error::Other(Error::Closed)),
        }
    }

    /// Sends all of `data` (in pieces of at most 1460 bytes) unless the modem's buffer fills.
    fn socket_send(&mut self, r: SlotRef, data: &[u8], remote: Option<SocketAddr>) -> nb::Result<usize, Error> {
        self.poll()?;
        let mut sent = 0;
        while sent < data.len() {
            let slot = self.core.st.sockets.current(r)?;
            if slot.peer_closed || slot.tx_broken {
                return Err(nb::Error::Other(Error::Closed));
            }
            let chunk = data.get(sent..).unwrap_or(&[]);
            let chunk = chunk.get(..chunk.len().min(MAX_SEND)).unwrap_or(&[]);
            let cmd = Qisend { connect_id: r.connect_id, len: Some(chunk.len() as u16), remote };
            match BlockingChannel::send(&mut self.link, &cmd, chunk) {
                Ok(()) => {
                    sent += chunk.len();
                    let now = self.now();
                    modem::note_sent(&mut self.link.core.st, r, now, &self.link.policy);
                }
                Err(Error::SendFail) if sent > 0 => return Ok(sent),
                Err(Error::SendFail) => return Err(nb::Error::WouldBlock),
                Err(Error::Failed) => {
                    let e = modem::blocking::last_error(&mut self.link);
                    // ERROR means the socket is gone (field note 11)
                    let e = if matches!(e, Error::Failed) { Error::Closed } else { e };
                    return Err(nb::Error::Other(e));
                }
                Err(e) => return Err(nb::Error::Other(e)),
            }
        }
        Ok(sent)
    }

    fn close(&mut self, st: Sock) -> Result<()> {
        self.drop_handle();
        if cfg!(feature = "direct-push")
            && let Sock::Connected(r) = st
        {
            self.stores.push.remove(r.connect_id);
        }
        let r = match st {
            Sock::Connecting { slot, .. } | Sock::Connected(slot) | Sock::Listening(slot) | Sock::Service(slot) => slot,
            // a failed connect left its connectID to be closed: close it now, not at the next open
            Sock::New | Sock::Bound(_) => return modem::blocking::close_pending(&mut self.link),
        };
        if self.core.st.sockets.current(r).is_err() {
            // gone already (reboot, context deactivated, ACK supervision): what the modem
            // may still hold of it is closed now, not at the next open
            return modem::blocking::close_pending(&mut self.link);
        }
        if cfg!(feature = "server")
            && let Sock::Listening(_) = st
        {
            // connections the modem accepted but nobody took: nobody will, close them too;
            // accepted ones stay open
            for (_, slot) in self.core.st.sockets.iter_mut() {
                if slot.state == SlotState::Incoming && slot.server_id == r.connect_id {
                    slot.release(SlotState::PendingClose, None);
                }
            }
        }
        modem::blocking::close_slot(&mut self.link, r)?;
        modem::blocking::close_pending(&mut self.link)
    }

    /// Opens a server service (`"TCP LISTENER"` or `"UDP SERVICE"`) and waits for `+QIOPEN`.
    fn open_server(&mut self, service_type: ServiceType, local_port: u16) -> Result<SlotRef> {
        service_type.supported()?;
        if local_port == 0 {
            return Err(Error::InvalidArgument);
        }
        let unspecified = SocketAddr::new(IpAddr::V4(core::net::Ipv4Addr::LOCALHOST), 0);
        let slot = self.open(service_type, unspecified, local_port)?;
        modem::blocking::finish_open(&mut self.link, slot)?;
        Ok(slot)
    }

    fn accept(&mut self, listener: SlotRef) -> nb::Result<(SlotRef, SocketAddr), Error> {
        self.poll()?;
        self.core.st.sockets.current(listener)?;
        let found = self
            .core
            .st
            .sockets
            .iter()
            .find(|(_, s)| s.state == SlotState::Incoming && s.server_id == listener.connect_id)
            .map(|(id, s)| (id, s.remote));
        let Some((id, Some(remote))) = found else {
            return Err(nb::Error::WouldBlock);
        };
        self.new_handle()?;
        let slot = self.core.st.sockets.get_mut(id).ok_or(Error::InvalidState)?;
        slot.state = SlotState::Open;
        // the modem may already have announced data or a close for it
        let r = self.core.st.sockets.slot_ref(id).ok_or(Error::InvalidState)?;
        Ok((r, remote))
    }

    fn connect_poll(&mut self, st: &mut Sock) -> nb::Result<(), Error> {
        let Sock::Connecting { slot, deadline } = *st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        self.poll()?;
        match modem::open_result(&mut self.core.st, slot) {
            Some(Ok(())) => {
                *st = Sock::Connected(slot);
                Ok(())
            }
            Some(Err(Error::Modem(crate::ErrorCode::SocketIdentityUsed))) => {
                // the modem still had something on that connectID: the next call closes it and
                // opens again
                *st = Sock::New;
                Err(nb::Error::WouldBlock)
            }
            Some(Err(e)) => {
                *st = Sock::New;
                Err(nb::Error::Other(e))
            }
            None if deadline.expired(self.now(), <crate::commands::Qiopen<'_> as atat::AtatCmd>::MAX_TIMEOUT_MS) => {
                // Figure 1: no +QIOPEN within 150 s, close the connection
                let _ = modem::blocking::close_slot(&mut self.link, slot);
                *st = Sock::New;
                Err(nb::Error::Other(Error::Timeout))
            }
            None => Err(nb::Error::WouldBlock),
        }
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> embedded_nal::TcpClientStack for &Bg96<S, C, P> {
    type TcpSocket = TcpSocket;
    type Error = Error;

    fn socket(&mut self) -> Result<TcpSocket> {
        self.with(|i| i.new_handle())?;
        Ok(TcpSocket { st: Sock::New })
    }

    /// Opens a `"TCP"` socket in buffer access mode. Returns `WouldBlock` until the modem
    /// reports the outcome (`+QIOPEN`); calling it again meanwhile is fine.
    fn connect(&mut self, socket: &mut TcpSocket, remote: SocketAddr) -> nb::Result<(), Error> {
        self.with(|i| match socket.st {
            Sock::New | Sock::Bound(_) => {
                let local = if let Sock::Bound(p) = socket.st { p } else { 0 };
                // what the modem said meanwhile (a pdpdeact, a late +QIOPEN) counts first
                i.poll()?;
                let slot = i.open(ServiceType::Tcp, remote, local)?;
                let deadline = i.now().after_ms(<crate::commands::Qiopen<'_> as atat::AtatCmd>::MAX_TIMEOUT_MS);
                socket.st = Sock::Connecting { slot, deadline };
                i.connect_poll(&mut socket.st)
            }
            Sock::Connecting { .. } => i.connect_poll(&mut socket.st),
            Sock::Connected(_) => Ok(()),
            Sock::Listening(_) | Sock::Service(_) => Err(nb::Error::Other(Error::InvalidState)),
        })
    }

    /// Sends up to all of `buffer` in `AT+QISEND` pieces of at most 1460 bytes. `SEND FAIL`
    /// (the modem's buffer is full) is `WouldBlock`, or a short count if some was sent.
    fn send(&mut self, socket: &mut TcpSocket, buffer: &[u8]) -> nb::Result<usize, Error> {
        let Sock::Connected(r) = socket.st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        self.with(|i| i.socket_send(r, buffer, None))
    }

    /// Reads what the modem holds for the socket. With nothing announced it returns
    /// `WouldBlock` without sending anything to the modem. After the peer closed, the buffered
    /// data is still delivered, then [`Error::Closed`] (`TcpErrorKind::PipeClosed`).
    fn receive(&mut self, socket: &mut TcpSocket, buffer: &mut [u8]) -> nb::Result<usize, Error> {
        let Sock::Connected(r) = socket.st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        self.with(|i| i.socket_receive(r, buffer)).map(|(n, _)| n)
    }

    /// `AT+QICLOSE`, and the connectID is free again.
    fn close(&mut self, socket: TcpSocket) -> Result<()> {
        self.with(|i| i.close(socket.st))
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> embedded_nal::UdpClientStack for &Bg96<S, C, P> {
    type UdpSocket = UdpSocket;
    type Error = Error;

    fn socket(&mut self) -> Result<UdpSocket> {
        self.with(|i| i.new_handle())?;
        Ok(UdpSocket { st: Sock::New })
    }

    /// Opens a `"UDP"` socket to `remote` and waits for the modem's `+QIOPEN`.
    fn connect(&mut self, socket: &mut UdpSocket, remote: SocketAddr) -> Result<()> {
        self.with(|i| {
            if !matches!(socket.st, Sock::New | Sock::Bound(_)) {
                return Err(Error::InvalidState);
            }
            let local = if let Sock::Bound(p) = socket.st { p } else { 0 };
            let slot = i.open(ServiceType::Udp, remote, local)?;
            modem::blocking::finish_open(&mut i.link, slot)?;
            socket.st = Sock::Connected(slot);
            Ok(())
        })
    }

    /// Sends one datagram (at most 1460 bytes: the BG96 cannot send more in one `AT+QISEND`).
    fn send(&mut self, socket: &mut UdpSocket, buffer: &[u8]) -> nb::Result<(), Error> {
        let Sock::Connected(r) = socket.st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        if buffer.len() > MAX_SEND || buffer.is_empty() {
            return Err(nb::Error::Other(Error::InvalidArgument));
        }
        self.with(|i| i.socket_send(r, buffer, None)).map(|_| ())
    }

    /// Reads one datagram and its sender. A bound socket (`"UDP SERVICE"`) gets each datagram
    /// whole; one larger than `buffer` is reported as [`Error::Truncated`] (the part that fits
    /// is in `buffer`; the modem hands a datagram out only once). A `"UDP"` socket reads at
    /// most `buffer.len()` bytes of the next datagram: use 1500 bytes to get whole datagrams.
    fn receive(&mut self, socket: &mut UdpSocket, buffer: &mut [u8]) -> nb::Result<(usize, SocketAddr), Error> {
        let (Sock::Connected(r) | Sock::Service(r)) = socket.st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        let (n, from) = self.with(|i| i.socket_receive(r, buffer))?;
        Ok((n, from.unwrap_or(SocketAddr::new(IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), 0))))
    }

    fn close(&mut self, socket: UdpSocket) -> Result<()> {
        self.with(|i| i.close(socket.st))
    }
}

/// How long a non-blocking `get_host_by_name` waits for its answer.
const DNS_QUERY_MS: u32 = 60_000;

/// State of a DNS query started by a non-blocking `get_host_by_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DnsQuery {
    name_hash: u32,
    deadline: Instant,
}

fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> embedded_nal::Dns for &Bg96<S, C, P> {
    type Error = Error;

    /// Resolves `hostname` with `AT+QIDNSGIP`. The first call starts the query and returns
    /// `WouldBlock`; later calls with the same name return the result. `AddrType::Either`
    /// prefers an IPv4 address (A), then IPv6 (AAAA). An IP address in text form is returned
    /// as is.
    fn get_host_by_name(&mut self, hostname: &str, addr_type: embedded_nal::AddrType) -> nb::Result<IpAddr, Error> {
        if let Some(ip) = crate::wire::parse_ip(hostname.as_bytes()) {
            return Ok(ip);
        }
        self.with(|i| {
            let hash = fnv1a(hostname);
            match i.dns_query {
                None => {
                    let context_id = i.config.context_id;
                    modem::blocking::start_dns(&mut i.link, context_id, hostname)?;
                    i.dns_query = Some(DnsQuery { name_hash: hash, deadline: i.now().after_ms(DNS_QUERY_MS) });
                }
                Some(q) if q.name_hash != hash => {
                    // another name is being resolved: let it finish first (one query at a
                    // time), or run out of time, and drop its answer
                    i.poll()?;
                    let running = i.core.st.dns.pending && i.core.st.dns.result.is_none();
                    if !running || q.deadline.expired(i.now(), DNS_QUERY_MS) {
                        i.core.st.dns.pending = false;
                        i.dns_query = None;
                    }
                    return Err(nb::Error::WouldBlock);
                }
                Some(_) => {}
            }
            i.poll()?;
            match modem::dns_result(&mut i.core.st, &addr_type) {
                Some(r) => {
                    i.dns_query = None;
                    r.map_err(nb::Error::Other)
                }
                None if i.dns_query.is_some_and(|q| q.deadline.expired(i.now(), DNS_QUERY_MS)) => {
                    i.dns_query = None;
                    i.core.st.dns.pending = false;
                    Err(nb::Error::Other(Error::Timeout))
                }
                None => Err(nb::Error::WouldBlock),
            }
        })
    }

    /// The BG96 has no reverse DNS: always [`Error::NotSupported`].
    fn get_host_by_address(&mut self, _addr: IpAddr, _result: &mut [u8]) -> nb::Result<usize, Error> {
        Err(nb::Error::Other(Error::NotSupported))
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> embedded_nal::TcpFullStack for &Bg96<S, C, P> {
    /// Records the local port for [`listen`](embedded_nal::TcpFullStack::listen) (1–65535).
    fn bind(&mut self, socket: &mut TcpSocket, local_port: u16) -> Result<()> {
        if local_port == 0 {
            return Err(Error::InvalidArgument);
        }
        match socket.st {
            Sock::New | Sock::Bound(_) => {
                socket.st = Sock::Bound(local_port);
                Ok(())
            }
            _ => Err(Error::InvalidState),
        }
    }

    /// Opens a `"TCP LISTENER"` on the bound port (buffer access mode, so that accepted
    /// connections are in buffer access mode whichever way the manual's contradiction is read)
    /// and waits for `+QIOPEN`. [`Error::NotSupported`] without the `server` feature.
    fn listen(&mut self, socket: &mut TcpSocket) -> Result<()> {
        let Sock::Bound(port) = socket.st else {
            return Err(Error::InvalidState);
        };
        let slot = self.with(|i| i.open_server(ServiceType::TcpListener, port))?;
        socket.st = Sock::Listening(slot);
        Ok(())
    }

    /// Returns `WouldBlock` until the modem reports `+QIURC: "incoming"` for this listener,
    /// then a connected socket (its own connectID) and the client's address. Clients the modem
    /// turned away because no connectID was free (`"incoming full"`) are counted in
    /// [`Stats::incoming_full`].
    fn accept(&mut self, socket: &mut TcpSocket) -> nb::Result<(TcpSocket, SocketAddr), Error> {
        let Sock::Listening(listener) = socket.st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        let (r, remote) = self.with(|i| i.accept(listener))?;
        Ok((TcpSocket { st: Sock::Connected(r) }, remote))
    }
}

impl<S: Read + ReadReady + Write, C: Clock, P: PowerControl> embedded_nal::UdpFullStack for &Bg96<S, C, P> {
    /// Opens a `"UDP SERVICE"` on `local_port` (1–65535): the socket then receives datagrams
    /// from any peer, each with its sender, and sends with
    /// [`send_to`](embedded_nal::UdpFullStack::send_to). [`Error::NotSupported`] without the
    /// `server` feature.
    fn bind(&mut self, socket: &mut UdpSocket, local_port: u16) -> Result<()> {
        if !matches!(socket.st, Sock::New | Sock::Bound(_)) {
            return Err(Error::InvalidState);
        }
        let slot = self.with(|i| i.open_server(ServiceType::UdpService, local_port))?;
        socket.st = Sock::Service(slot);
        Ok(())
    }

    /// One datagram of at most 1460 bytes to `remote` (`AT+QISEND=<id>,<len>,"<ip>",<port>`).
    /// A zero-length datagram cannot be sent: the BG96's `AT+QISEND` needs 1–1460 bytes.
    fn send_to(&mut self, socket: &mut UdpSocket, remote: SocketAddr, buffer: &[u8]) -> nb::Result<(), Error> {
        let Sock::Service(r) = socket.st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        if buffer.is_empty() || buffer.len() > MAX_SEND || remote.port() == 0 {
            return Err(nb::Error::Other(Error::InvalidArgument));
        }
        self.with(|i| i.socket_send(r, buffer, Some(remote))).map(|_| ())
    }
}
