//! The shared, sans-I/O engine of both fronts.
//!
//! [`Core`] owns the [`Ingress`] and everything learnt from the modem: the running command and
//! its answer, the socket table, the deferred results (DNS, ping, NTP), the modem's status
//! (rebooted, `APP RDY`, SIM, registration) and counters. It does no I/O and knows no clock:
//! a front writes a command's bytes to the serial port, feeds every byte it reads to
//! [`Core::feed`], and looks at the state. The blocking front does this from a polling loop,
//! the async front from its runner.

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::clock::Instant;
#[cfg(feature = "ntp")]
use crate::commands::NtpTime;
use crate::commands::SimState;
#[cfg(feature = "ping")]
use crate::commands::{PingLine, PingReply, PingSummary};
use crate::error::{Error, ErrorCode};
use crate::fmt::Bytes;
use crate::ingress::{Event, Final, Ingress};
use crate::socket::{SlotState, SocketTable};
use crate::urc::{self, Urc};

/// Capacity of the buffer for a command's information lines.
pub const RESP_CAP: usize = 1024;

/// Where payload goes: the front decides where the bytes of a `+QIRD` answer, of direct-push
/// URCs and of transparent mode are stored.
pub trait DataSink {
    /// Payload of the running `AT+QIRD`, in order.
    fn read(&mut self, data: &[u8]);
    /// Direct-push payload for `connect_id`. `start` is set on the first call of a frame, with
    /// the frame's length and sender. Returns how many bytes were taken; the rest is lost and
    /// counted.
    fn push(&mut self, connect_id: u8, start: Option<(usize, Option<SocketAddr>)>, data: &[u8]) -> usize;
    /// Bytes received in transparent access mode. Returns how many were taken.
    fn transparent(&mut self, data: &[u8]) -> usize;
    /// Room left in the host buffer of a direct-push socket (`None`: no buffer).
    fn push_room(&self, _connect_id: u8) -> Option<usize> {
        None
    }
}

/// A sink that takes nothing (payload arriving with nowhere to go is counted as lost).
pub struct NullSink;

impl DataSink for NullSink {
    fn read(&mut self, _: &[u8]) {}
    fn push(&mut self, _: u8, _: Option<(usize, Option<SocketAddr>)>, _: &[u8]) -> usize {
        0
    }
    fn transparent(&mut self, _: &[u8]) -> usize {
        0
    }
}

/// The special shape of a command's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Information lines and a final result.
    Plain,
    /// `AT+QISEND`: a `> ` prompt, then (after the payload) `SEND OK`/`SEND FAIL`/`ERROR`.
    Send,
    /// `AT+QIRD`: a `+QIRD: <n>` header and `n` bytes of payload.
    Read {
        /// The socket being read.
        connect_id: u8,
    },
    /// `AT+QISWTMD` to buffer or direct push mode: on `OK` the socket's mode changes at once,
    /// so the URCs that follow in the same read are framed by the new mode.
    Switch {
        /// The socket.
        connect_id: u8,
        /// The new mode.
        mode: crate::commands::AccessMode,
    },
    /// `AT+QICLOSE` of a slot in [`SlotState::Closing`]: refused at [`Core::begin`] if the
    /// slot changed hands meanwhile, so a close never hits a new connection on the same id.
    Close(crate::socket::SlotRef),
    /// Answered with `CONNECT` when transparent access mode is entered on `connect_id`.
    Connect {
        /// The socket entering transparent mode (`None` for `ATO`: the last one that left it).
        connect_id: Option<u8>,
    },
}

/// The command in flight.
#[derive(Debug)]
pub struct Pending {
    active: bool,
    prefix: &'static [u8],
    kind: Kind,
    result: Option<Final>,
    aborted: Option<Error>,
    abandoned: bool,
    prompted: bool,
    resp: heapless::Vec<u8, RESP_CAP>,
    overflow: bool,
    /// The `+QIRD` header: payload length and sender.
    pub read_header: Option<(usize, Option<SocketAddr>)>,
    /// Payload bytes of the `+QIRD` answer received so far.
    pub read_got: usize,
}

impl Pending {
    const fn new() -> Self {
        Self {
            active: false,
            prefix: b"",
            kind: Kind::Plain,
            result: None,
            aborted: None,
            abandoned: false,
            prompted: false,
            resp: heapless::Vec::new(),
            overflow: false,
            read_header: None,
            read_got: 0,
        }
    }
}

/// The state of the (single-flight) DNS query.
#[derive(Debug, Clone, Default)]
pub struct DnsState {
    /// A query is running.
    pub pending: bool,
    /// When the running query is given up (its owner may have gone away).
    pub until: Instant,
    /// The result: addresses, or the error code.
    pub result: Option<Result<(), u16>>,
    /// The first IPv4 address received (the one the stack uses; the modem may list more).
    pub ipv4: Option<Ipv4Addr>,
    /// The first IPv6 address received.
    pub ipv6: Option<Ipv6Addr>,
    /// How many addresses the modem announced.
    pub expected: u8,
}

/// Who the running DNS query belongs to (beside [`DnsState`], which stays 32 bytes: one more
/// byte there made the temporaries of building `asynch::Resources` 0.65 KB larger, in the
/// QEMU async firmware's set-up function).
#[derive(Debug, Clone, Copy, Default)]
pub struct DnsOwner {
    /// Counts the queries started: names the running one, so that an owner that goes away
    /// gives up its own query and no other.
    pub ticket: u8,
    /// The running query's owner went away (a cancelled lookup): once its result is in, the
    /// next query can start (the result is never handed to it).
    pub orphaned: bool,
}

impl State {
    /// Whether a new DNS query can start: none is running, or the running one was abandoned
    /// and has ended, or its time (`max_ms`) is up.
    pub fn dns_free(&self, now: Instant, max_ms: u32) -> bool {
        let d = &self.dns;
        !d.pending || (self.dns_owner.orphaned && d.result.is_some()) || d.until.expired(now, max_ms)
    }

    /// Starts DNS query bookkeeping: a new ticket, which is returned.
    pub fn start_dns(&mut self, until: Instant) -> u8 {
        self.dns = DnsState { pending: true, until, ..Default::default() };
        let ticket = self.dns_owner.ticket.wrapping_add(1);
        self.dns_owner = DnsOwner { ticket, orphaned: false };
        ticket
    }

    /// The owner of DNS query `ticket` goes away before its result came: a result that came
    /// is dropped now, one still to come when it comes.
    pub fn abandon_dns(&mut self, ticket: u8) {
        if self.dns.pending && self.dns_owner.ticket == ticket {
            if self.dns.result.is_some() {
                self.dns.pending = false;
                self.dns.result = None;
            } else {
                self.dns_owner.orphaned = true;
            }
        }
    }
}

/// The state of `AT+QPING`.
#[cfg(feature = "ping")]
#[derive(Debug, Clone, Default)]
pub struct PingState {
    /// A ping is running.
    pub pending: bool,
    /// When the running ping is given up.
    pub until: Instant,
    /// How many requests the ping sends (replies before the summary).
    pub expected: u8,
    /// Replies so far (and failed requests, as codes).
    pub replies: heapless::Vec<Result<PingReply, u16>, 10>,
    /// The final line: statistics or the error code.
    pub done: Option<Result<PingSummary, u16>>,
}

/// The state of `AT+QNTP`.
#[cfg(feature = "ntp")]
#[derive(Debug, Clone, Copy, Default)]
pub struct NtpState {
    /// A synchronisation is running.
    pub pending: bool,
    /// When the running synchronisation is given up.
    pub until: Instant,
    /// The result.
    pub done: Option<Result<NtpTime, u16>>,
}

/// What the modem told us about itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct ModemStatus {
    /// `RDY` was seen since the last bring-up started: the modem (re)booted.
    pub rebooted: bool,
    /// `APP RDY` was seen.
    pub app_ready: bool,
    /// `POWERED DOWN` was seen.
    pub powered_down: bool,
    /// Last `+CPIN` state reported.
    pub sim: Option<SimState>,
    /// Contexts deactivated by the network (`pdpdeact`), bit n = context n.
    pub deactivated_contexts: u32,
    /// The modem echoes `AT+QISEND` payload (`AT+QISDE=1`).
    pub payload_echo: bool,
    /// The connectID in transparent access mode.
    pub transparent: Option<u8>,
    /// The connectID that left transparent access mode last (for `ATO`).
    pub last_transparent: Option<u8>,
    /// Contexts known to be active, bit n = context n.
    pub active_contexts: u32,
    /// `recv` URCs carry lengths (`AT+QICFG="recvind",1` accepted).
    pub recvind: bool,
}

impl ModemStatus {
    /// Whether the context is known to be active.
    pub fn context_active(&self, context_id: u8) -> bool {
        self.active_contexts & 1u32.checked_shl(u32::from(context_id)).unwrap_or(0) != 0
    }

    /// Records that a context is active or not.
    pub fn set_context_active(&mut self, context_id: u8, on: bool) {
        let bit = 1u32.checked_shl(u32::from(context_id)).unwrap_or(0);
        if on {
            self.active_contexts |= bit;
        } else {
            self.active_contexts &= !bit;
        }
    }
}

/// Counters of what went through the ingress.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// URCs handled.
    pub urcs: u32,
    /// Lines that were neither an answer nor a known URC.
    pub unknown_lines: u32,
    /// Lines longer than the line buffer.
    pub line_overflows: u32,
    /// Final results with no command waiting for them.
    pub stray_finals: u32,
    /// `+QIURC: "incoming full"` seen: clients turned away because no connectID was free.
    pub incoming_full: u32,
    /// Direct-push and transparent bytes that found no room in the host buffer.
    pub bytes_lost: u32,
    /// Payload bytes received (`+QIRD`, direct push, transparent).
    pub bytes_received: u32,
}

/// What changed in one call of [`Core::feed`], so an async front wakes only who is concerned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changes {
    /// The running command got its prompt or final result.
    pub command: bool,
    /// Sockets whose state changed (bit n = connectID n).
    pub sockets: u16,
    /// DNS, ping or NTP results arrived.
    pub deferred: bool,
    /// The modem's status changed (reboot, `APP RDY`, context deactivated...).
    pub modem: bool,
    /// Transparent-mode data arrived or transparent mode ended.
    pub transparent: bool,
}

impl Changes {
    /// Whether anything changed.
    pub fn any(&self) -> bool {
        self.command || self.sockets != 0 || self.deferred || self.modem || self.transparent
    }
}

/// Where the bytes of the current length-framed payload go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    None,
    Read,
    /// The rest of a read's payload whose command ended early: dropped.
    Discard,
    Push {
        connect_id: u8,
        first: bool,
        len: usize,
        remote: Option<SocketAddr>,
    },
}

/// Everything the engine knows, apart from the ingress.
pub struct State {
    /// The socket table.
    pub sockets: SocketTable,
    /// The command in flight.
    pub cmd: Pending,
    /// DNS query.
    pub dns: DnsState,
    /// Who the DNS query belongs to.
    pub dns_owner: DnsOwner,
    /// Ping.
    #[cfg(feature = "ping")]
    pub ping: PingState,
    /// NTP.
    #[cfg(feature = "ntp")]
    pub ntp: NtpState,
    /// Modem status.
    pub modem: ModemStatus,
    /// Counters.
    pub stats: Stats,
    /// What recovery has seen.
    pub recovery: crate::recovery::RecoveryState,
    frame: Frame,
    changes: Changes,
}

/// The engine: ingress plus state.
pub struct Core {
    ingress: Ingress,
    /// What the engine knows.
    pub st: State,
}

impl Default for Core {
    fn default() -> Self {
        Self::new()
    }
}

/// What to do with the ingress after an event was handled.
enum After {
    Nothing,
    EnterTransparent,
    Reset,
    PushMask,
}

impl Core {
    /// A fresh engine.
    pub const fn new() -> Self {
        Self {
            ingress: Ingress::new(),
            st: State {
                sockets: SocketTable::new(),
                cmd: Pending::new(),
                dns: DnsState {
                    pending: false,
                    until: Instant::from_ms(0),
                    result: None,
                    ipv4: None,
                    ipv6: None,
                    expected: 0,
                },
                dns_owner: DnsOwner { ticket: 0, orphaned: false },
                #[cfg(feature = "ping")]
                ping: PingState {
                    pending: false,
                    until: Instant::from_ms(0),
                    expected: 4,
                    replies: heapless::Vec::new(),
                    done: None,
                },
                #[cfg(feature = "ntp")]
                ntp: NtpState { pending: false, until: Instant::from_ms(0), done: None },
                modem: ModemStatus {
                    rebooted: false,
                    app_ready: false,
                    powered_down: false,
                    sim: None,
                    deactivated_contexts: 0,
                    payload_echo: false,
                    transparent: None,
                    last_transparent: None,
                    active_contexts: 0,
                    recvind: false,
                },
                stats: Stats {
                    urcs: 0,
                    unknown_lines: 0,
                    line_overflows: 0,
                    stray_finals: 0,
                    incoming_full: 0,
                    bytes_lost: 0,
                    bytes_received: 0,
                },
                recovery: crate::recovery::RecoveryState {
                    open_failures: 0,
                    deactivate_failures: 0,
                    reboots: 0,
                    last_reboot: None,
                    total_reboots: 0,
                    suspect: false,
                    reboot_needed: false,
                    brought_up: false,
                    in_progress: false,
                },
                frame: Frame::None,
                changes: Changes { command: false, sockets: 0, deferred: false, modem: false, transparent: false },
            },
        }
    }

    /// Read access to the ingress (transparent-mode state).
    pub fn ingress(&self) -> &Ingress {
        &self.ingress
    }

    /// Mutable access to the ingress (expectations for the `+++` escape, push modes).
    pub fn ingress_mut(&mut self) -> &mut Ingress {
        &mut self.ingress
    }

    // ----------------------------------------------------------------------------------------
    // Commands

    /// Whether a command is in flight.
    pub fn busy(&self) -> bool {
        self.st.cmd.active
    }

    /// Starts a command: its information lines start with `prefix`, its answer has the shape
    /// `kind`. The front writes the command's bytes after this.
    pub fn begin(&mut self, prefix: &'static [u8], kind: Kind) -> Result<(), Error> {
        if self.st.cmd.active {
            return Err(Error::Busy);
        }
        if let Kind::Close(r) = kind
            && !self
                .st
                .sockets
                .get(r.connect_id)
                .is_some_and(|s| s.generation == r.generation && s.state == SlotState::Closing)
        {
            return Err(Error::Closed);
        }
        let cmd = &mut self.st.cmd;
        cmd.active = true;
        cmd.prefix = prefix;
        cmd.kind = kind;
        cmd.result = None;
        cmd.aborted = None;
        cmd.abandoned = false;
        cmd.prompted = false;
        cmd.resp.clear();
        cmd.overflow = false;
        cmd.read_header = None;
        cmd.read_got = 0;
        self.ingress.expect_prompt(kind == Kind::Send);
        self.ingress.expect_read(matches!(kind, Kind::Read { .. }));
        Ok(())
    }

    /// The send payload of `n` bytes was written: skip its echo if `AT+QISDE=1`.
    pub fn payload_written(&mut self, n: usize) {
        if self.st.modem.payload_echo {
            self.ingress.expect_payload_echo(n);
        }
    }

    /// Whether the running send got its `> ` prompt.
    pub fn prompted(&self) -> bool {
        self.st.cmd.prompted
    }

    /// The final result of the running command, once it arrived; an error if the command
    /// cannot complete (the modem rebooted).
    pub fn result(&self) -> Option<Result<Final, Error>> {
        if let Some(e) = self.st.cmd.aborted {
            return Some(Err(e));
        }
        self.st.cmd.result.map(Ok)
    }

    /// The information lines of the answer (after a final result).
    pub fn response(&self) -> Result<&[u8], Error> {
        if self.st.cmd.overflow { Err(Error::Overflow) } else { Ok(&self.st.cmd.resp) }
    }

    /// Ends the running command (after its result was taken, or on a timeout).
    pub fn end(&mut self) {
        // a read ended in the middle of its payload (a timeout): the rest of that frame is
        // consumed and dropped, never handed to the next command's read
        if self.st.frame == Frame::Read {
            self.st.frame = Frame::Discard;
        }
        self.st.cmd.active = false;
        self.st.cmd.abandoned = false;
        self.ingress.expect_prompt(false);
        self.ingress.expect_read(false);
    }

    /// The caller of the running command went away (an async future was dropped) before the
    /// final result. The command stays in flight until its final result arrives, so that the
    /// answer is not taken for the next command's; then it ends by itself.
    pub fn abandon(&mut self) {
        if !self.st.cmd.active {
            return;
        }
        if self.st.cmd.result.is_some() || self.st.cmd.aborted.is_some() {
            self.end();
        } else {
            self.st.cmd.abandoned = true;
        }
    }

    /// Whether an abandoned command is still waiting for its final result.
    pub fn abandoned(&self) -> bool {
        self.st.cmd.active && self.st.cmd.abandoned
    }

    // ----------------------------------------------------------------------------------------
    // Input

    /// Feeds bytes read from the modem. Every byte is consumed.
    pub fn feed(&mut self, mut input: &[u8], sink: &mut dyn DataSink) -> Changes {
        self.st.changes = Changes::default();
        // the socket table is the one record of which sockets are in direct push mode
        if cfg!(feature = "direct-push") {
            let push_mask = self.st.push_mask();
            self.ingress.set_push_mask(push_mask);
        }
        loop {
            let (n, ev) = self.ingress.advance(input);
            let Some(ev) = ev else {
                if n == 0 {
                    // (0, None) only happens when the input is used up and nothing is pending
                    break;
                }
                input = input.get(n..).unwrap_or(&[]);
                continue;
            };
            let after = self.st.handle(ev, sink);
            match after {
                After::Nothing => {}
                After::EnterTransparent if cfg!(feature = "transparent") => self.ingress.enter_transparent(),
                After::EnterTransparent => {}
                After::Reset => self.ingress.reset(),
                After::PushMask if cfg!(feature = "direct-push") => self.ingress.set_push_mask(self.st.push_mask()),
                After::PushMask => {}
            }
            input = input.get(n..).unwrap_or(&[]);
        }
        if self.st.cmd.abandoned && (self.st.cmd.result.is_some() || self.st.cmd.aborted.is_some()) {
            self.end();
            self.st.changes.command = true;
        }
        self.st.changes
    }

    /// Releases transparent-mode bytes held back as a possible `NO CARRIER` (call when the
    /// line has been quiet for a while).
    pub fn flush_transparent(&mut self, sink: &mut dyn DataSink) -> Changes {
        self.st.changes = Changes::default();
        if let Some(Event::Transparent(d)) = self.ingress.flush_held() {
            let taken = sink.transparent(d);
            self.st.count_transparent(d.len(), taken);
        }
        self.st.changes
    }

    /// Forgets everything about sockets and expectations after a reboot was detected and
    /// handled (bring-up starts from a clean state).
    pub fn acknowledge_reboot(&mut self) {
        self.st.modem.rebooted = false;
        self.st.modem.app_ready = false;
        self.st.modem.payload_echo = false;
        self.st.modem.transparent = None;
        self.st.modem.last_transparent = None;
    }
}

/// Completes a send whose payload cannot be written (CRs: empty lines in command mode).
pub const CR_FILL: [u8; 64] = [b'\r'; 64];

/// Whether `payload`, if the modem took it as command input instead of as the payload of a
/// send, could not run a command: it holds no `AT` (the prefix of a command line) and no `A/`
/// (repeat the last command line), in any letter case. A send whose prompt did not come is
/// completed with such a payload itself (the modem may be waiting for it: the prompt was lost
/// or is late), any other payload with CRs (empty lines to a modem in command mode).
pub fn inert_as_commands(payload: &[u8]) -> bool {
    !payload.windows(2).any(|w| matches!(w, [b'a' | b'A', b't' | b'T' | b'/']))
}

impl State {
    /// Sockets in direct push mode, bit n = connectID n.
    pub fn push_mask(&self) -> u16 {
        self.sockets
            .iter()
            .filter(|(_, s)| s.state != SlotState::Free && s.mode == crate::commands::AccessMode::DirectPush)
            .fold(0, |m, (id, _)| m | (1 << id))
    }

    fn handle(&mut self, ev: Event<'_>, sink: &mut dyn DataSink) -> After {
        match ev {
            Event::Echo => {}
            Event::Prompt => {
                if self.cmd.active && self.cmd.kind == Kind::Send {
                    self.cmd.prompted = true;
                    self.changes.command = true;
                }
            }
            Event::Final(f) => return self.on_final(f),
            Event::Line(line) => return self.on_line(line),
            Event::LineOverflow(head) => {
                self.stats.line_overflows += 1;
                warn!("line longer than {} bytes dropped", crate::ingress::LINE_CAP);
                // the running command lost its answer only if the line starts like one; a
                // command without a prefix (AT+QGMR) finds its short answer among the other
                // lines or fails with Parse
                let prefix = self.cmd.prefix;
                let answer = !prefix.is_empty()
                    && prefix != crate::commands::NO_INFO
                    && head.trim_ascii_start().starts_with(prefix);
                if self.cmd.active && self.cmd.result.is_none() && answer {
                    self.cmd.overflow = true;
                }
            }
            Event::ReadHeader { len, remote } => {
                self.cmd.read_header = Some((len, remote));
                self.frame = Frame::Read;
            }
            Event::PushHeader { connect_id, len, remote } if cfg!(feature = "direct-push") => {
                self.frame = Frame::Push { connect_id, first: true, len, remote };
                if len == 0 {
                    let _ = sink.push(connect_id, Some((0, remote)), &[]);
                    self.frame = Frame::None;
                    self.changes.sockets |= 1 << connect_id;
                }
            }
            Event::Data(d) => self.on_data(d, sink),
            // not produced without the feature
            Event::PushHeader { .. } => {}
            Event::DataEnd => {
                if cfg!(feature = "direct-push")
                    && let Frame::Push { connect_id, .. } = self.frame
                {
                    self.changes.sockets |= 1 << connect_id;
                    // a buffer that cannot take two more full frames: let the modem keep the data
                    if sink.push_room(connect_id).is_some_and(|room| room < 2 * crate::commands::MAX_READ)
                        && let Some(slot) = self.sockets.get_mut(connect_id)
                        && !slot.push_throttle
                    {
                        slot.push_throttle = true;
                        self.changes.modem = true;
                    }
                }
                self.frame = Frame::None;
            }
            Event::Transparent(d) if cfg!(feature = "transparent") => {
                let taken = sink.transparent(d);
                self.count_transparent(d.len(), taken);
            }
            // not produced without the feature
            Event::Transparent(_) => {}
        }
        After::Nothing
    }

    fn count_transparent(&mut self, len: usize, taken: usize) {
        self.stats.bytes_received = self.stats.bytes_received.wrapping_add(len as u32);
        self.stats.bytes_lost = self.stats.bytes_lost.wrapping_add(len.saturating_sub(taken) as u32);
        self.changes.transparent = true;
    }

    fn on_data(&mut self, d: &[u8], sink: &mut dyn DataSink) {
        self.stats.bytes_received = self.stats.bytes_received.wrapping_add(d.len() as u32);
        match &mut self.frame {
            Frame::Read => {
                sink.read(d);
                self.cmd.read_got += d.len();
            }
            Frame::Push { connect_id, first, len, remote } if cfg!(feature = "direct-push") => {
                let start = if *first { Some((*len, *remote)) } else { None };
                *first = false;
                let id = *connect_id;
                let taken = sink.push(id, start, d);
                let lost = d.len().saturating_sub(taken) as u32;
                if lost > 0 {
                    self.stats.bytes_lost = self.stats.bytes_lost.wrapping_add(lost);
                    if let Some(s) = self.sockets.get_mut(id) {
                        s.push_lost = s.push_lost.saturating_add(lost);
                    }
                }
            }
            Frame::Push { .. } | Frame::None | Frame::Discard => {}
        }
    }

    fn on_final(&mut self, f: Final) -> After {
        if !self.cmd.active || self.cmd.result.is_some() {
            // `NO CARRIER`/`OK` ending transparent mode arrive with no command in flight
            if let Some(id) = self.transparent_id() {
                if matches!(f, Final::NoCarrier | Final::Ok) {
                    self.leave_transparent(id, matches!(f, Final::NoCarrier));
                    return After::Nothing;
                }
            }
            self.stats.stray_finals += 1;
            debug!("final result with no command in flight: {:?}", f);
            return After::Nothing;
        }
        if let Some(id) = self.transparent_id()
            && matches!(f, Final::NoCarrier | Final::Ok)
        {
            self.leave_transparent(id, matches!(f, Final::NoCarrier));
        }
        self.cmd.result = Some(f);
        self.changes.command = true;
        if let (Final::Ok, Kind::Switch { connect_id, mode }) = (f, self.cmd.kind) {
            if let Some(s) = self.sockets.get_mut(connect_id) {
                s.mode = mode;
            }
            self.changes.sockets |= 1u16.checked_shl(u32::from(connect_id)).unwrap_or(0);
            return After::PushMask;
        }
        if cfg!(feature = "transparent") && matches!(f, Final::Connect) {
            if let Kind::Connect { connect_id } = self.cmd.kind {
                let id = connect_id.or(self.modem.last_transparent);
                if let Some(id) = id {
                    self.modem.transparent = Some(id);
                    if let Some(s) = self.sockets.get_mut(id) {
                        s.mode = crate::commands::AccessMode::Transparent;
                    }
                    self.changes.transparent = true;
                    return After::EnterTransparent;
                }
            }
        }
        After::Nothing
    }

    /// The connection in transparent mode (never one without the `transparent` feature).
    pub fn transparent_id(&self) -> Option<u8> {
        if cfg!(feature = "transparent") { self.modem.transparent } else { None }
    }

    fn leave_transparent(&mut self, id: u8, peer_closed: bool) {
        self.modem.transparent = None;
        self.modem.last_transparent = Some(id);
        if let Some(s) = self.sockets.get_mut(id) {
            s.mode = crate::commands::AccessMode::Buffer;
            if peer_closed {
                s.peer_closed = true;
            }
        }
        self.changes.transparent = true;
        self.changes.sockets |= 1 << id;
    }

    fn on_line(&mut self, line: &[u8]) -> After {
        let cmd = &mut self.cmd;
        if cmd.active && cmd.result.is_none() && cmd.aborted.is_none() {
            let is_response =
                if cmd.prefix.is_empty() { urc::parse(line).is_none() } else { line.starts_with(cmd.prefix) };
            if is_response {
                if cmd.resp.extend_from_slice(line).is_err() || cmd.resp.extend_from_slice(b"\r\n").is_err() {
                    cmd.overflow = true;
                }
                return After::Nothing;
            }
        }
        match urc::parse(line) {
            Some(Urc::Ready) => {
                self.stats.urcs += 1;
                self.on_reboot();
                return After::Reset;
            }
            Some(u) => {
                self.stats.urcs += 1;
                self.on_urc(u);
            }
            None => {
                self.stats.unknown_lines += 1;
                debug!("unsolicited line ignored: {}", Bytes(line));
            }
        }
        After::Nothing
    }

    fn on_urc(&mut self, u: Urc<'_>) {
        trace!("urc {:?}", u);
        match u {
            Urc::Recv { connect_id, len } => {
                if let Some(s) = self.sockets.get_mut(connect_id) {
                    if s.state == SlotState::Free {
                        // data for a socket we do not know: a leftover of an earlier run
                        s.state = SlotState::PendingClose;
                    }
                    s.rx_ready = true;
                    s.rx_events = s.rx_events.wrapping_add(1);
                    if let Some(len) = len {
                        s.rx_known = s.rx_known.max(len as u32);
                    }
                    self.changes.sockets |= 1 << connect_id;
                }
            }
            Urc::Closed { connect_id } => {
                if let Some(s) = self.sockets.get_mut(connect_id) {
                    match s.state {
                        SlotState::Free => s.state = SlotState::PendingClose,
                        SlotState::Opening if s.open_result.is_none() => {
                            s.open_result = Some(ErrorCode::SocketConnectFailed.code());
                        }
                        _ => {}
                    }
                    s.peer_closed = true;
                    s.rx_ready = true;
                    s.rx_events = s.rx_events.wrapping_add(1);
                    self.changes.sockets |= 1 << connect_id;
                }
            }
            Urc::Incoming { connect_id, server_id, remote } if cfg!(feature = "server") => {
                if let Some(s) = self.sockets.get_mut(connect_id) {
                    if s.state != SlotState::Free && s.state != SlotState::PendingClose {
                        warn!("modem reused connectID {} for an incoming connection", connect_id);
                        s.release(SlotState::Free, Some(Error::Closed));
                    }
                    let mode = self.sockets.get(server_id).map(|l| l.mode).unwrap_or_default();
                    let context = self.sockets.get(server_id).map(|l| l.context_id).unwrap_or(1);
                    if let Some(s) = self.sockets.get_mut(connect_id) {
                        s.occupy(SlotState::Incoming, crate::commands::ServiceType::TcpIncoming, mode, context);
                        s.server_id = server_id;
                        s.remote = Some(remote);
                    }
                    self.changes.sockets |= (1 << connect_id) | (1u16.checked_shl(u32::from(server_id)).unwrap_or(0));
                }
            }
            Urc::IncomingFull if cfg!(feature = "server") => {
                self.stats.incoming_full += 1;
                warn!("incoming connection refused by the modem: no free connectID");
                self.changes.sockets |= 0x0fff;
            }
            // the parser gives neither without the feature
            Urc::Incoming { .. } | Urc::IncomingFull => {}
            Urc::PdpDeact { context_id } => {
                self.modem.deactivated_contexts |= 1u32.checked_shl(u32::from(context_id)).unwrap_or(0);
                self.modem.set_context_active(context_id, false);
                for (id, s) in self.sockets.iter_mut() {
                    if s.state != SlotState::Free && s.context_id == context_id {
                        s.release(SlotState::PendingClose, Some(Error::ContextDeactivated(context_id)));
                        self.changes.sockets |= 1 << id;
                    }
                }
                self.changes.modem = true;
            }
            Urc::DnsResult { err, count, .. } => {
                if self.dns.pending && self.dns.result.is_none() {
                    if err != 0 {
                        self.dns.result = Some(Err(err));
                    } else if count == 0 {
                        self.dns.result = Some(Ok(()));
                    } else {
                        self.dns.expected = count;
                        (self.dns.ipv4, self.dns.ipv6) = (None, None);
                    }
                    self.changes.deferred = true;
                }
            }
            Urc::DnsAddress(ip) => {
                if self.dns.pending && self.dns.result.is_none() && self.dns.expected > 0 {
                    match ip {
                        Some(IpAddr::V4(a)) => self.dns.ipv4 = self.dns.ipv4.or(Some(a)),
                        Some(IpAddr::V6(a)) => self.dns.ipv6 = self.dns.ipv6.or(Some(a)),
                        None => {}
                    }
                    self.dns.expected -= 1;
                    if self.dns.expected == 0 {
                        self.dns.result = Some(Ok(()));
                    }
                    self.changes.deferred = true;
                }
            }
            Urc::Open { connect_id, err } => {
                if let Some(s) = self.sockets.get_mut(connect_id) {
                    if s.stale_open.is_some() && (s.state != SlotState::Opening || s.open_result.is_none()) {
                        // the late result of an attempt given up earlier
                        s.stale_open = None;
                        if err == 0 && s.state == SlotState::Free {
                            s.state = SlotState::PendingClose;
                        }
                    } else if s.state == SlotState::Opening && s.open_result.is_none() {
                        s.open_result = Some(err);
                        if err == 0 {
                            s.state = SlotState::Open;
                        }
                    } else if err == 0 && s.state == SlotState::Free {
                        // opened on an id we did not ask for (field note 13): close it
                        s.state = SlotState::PendingClose;
                    }
                    self.changes.sockets |= 1 << connect_id;
                }
            }
            #[cfg(feature = "ping")]
            Urc::Ping(line) => {
                if self.ping.pending && self.ping.done.is_none() {
                    match line {
                        PingLine::Reply(r) => {
                            let _ = self.ping.replies.push(Ok(r));
                        }
                        PingLine::Summary(s) => self.ping.done = Some(Ok(s)),
                        // a timed-out request, unless every request has been answered: then
                        // it is the final result
                        PingLine::Code(569) if self.ping.replies.len() < usize::from(self.ping.expected) => {
                            let _ = self.ping.replies.push(Err(569));
                        }
                        PingLine::Code(c) => self.ping.done = Some(Err(c)),
                    }
                    self.changes.deferred = true;
                }
            }
            #[cfg(feature = "ntp")]
            Urc::Ntp { err, time } => {
                if self.ntp.pending && self.ntp.done.is_none() {
                    self.ntp.done = Some(match (err, time) {
                        (0, Some(t)) => Ok(t),
                        (0, None) => Err(ErrorCode::Unknown.code()),
                        (e, _) => Err(e),
                    });
                    self.changes.deferred = true;
                }
            }
            Urc::Ready => self.on_reboot(),
            Urc::AppReady => {
                self.modem.app_ready = true;
                self.changes.modem = true;
            }
            Urc::PoweredDown => {
                self.modem.powered_down = true;
                self.changes.modem = true;
            }
            Urc::Sim(state) => {
                self.modem.sim = Some(state);
                self.changes.modem = true;
            }
            Urc::Qind(_) | Urc::Registration { .. } => {}
        }
    }

    fn on_reboot(&mut self) {
        info!("modem (re)booted: RDY");
        self.modem.rebooted = true;
        self.modem.app_ready = false;
        self.modem.powered_down = false;
        self.modem.transparent = None;
        self.modem.last_transparent = None;
        self.modem.active_contexts = 0;
        self.modem.deactivated_contexts = 0;
        for (id, s) in self.sockets.iter_mut() {
            if s.state != SlotState::Free {
                s.release(SlotState::Free, Some(Error::Rebooted));
                self.changes.sockets |= 1 << id;
            }
            s.stale_open = None;
        }
        if self.cmd.active && self.cmd.result.is_none() {
            self.cmd.aborted = Some(Error::Rebooted);
            self.changes.command = true;
        }
        if self.dns.pending && self.dns.result.is_none() {
            self.dns.result = Some(Err(ErrorCode::Unknown.code()));
        }
        #[cfg(feature = "ping")]
        if self.ping.pending && self.ping.done.is_none() {
            self.ping.done = Some(Err(ErrorCode::Unknown.code()));
        }
        #[cfg(feature = "ntp")]
        if self.ntp.pending && self.ntp.done.is_none() {
            self.ntp.done = Some(Err(ErrorCode::Unknown.code()));
        }
        self.changes.modem = true;
        self.changes.deferred = true;
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::commands::AccessMode;
    use std::vec::Vec;

    #[derive(Default)]
    struct VecSink {
        read: Vec<u8>,
        push: Vec<(u8, Vec<u8>)>,
        transparent: Vec<u8>,
    }
    impl DataSink for VecSink {
        fn read(&mut self, d: &[u8]) {
            self.read.extend_from_slice(d);
        }
        fn push(&mut self, id: u8, start: Option<(usize, Option<SocketAddr>)>, d: &[u8]) -> usize {
            if start.is_some() {
                self.push.push((id, Vec::new()));
            }
            if let Some(last) = self.push.last_mut() {
                last.1.extend_from_slice(d);
            }
            d.len()
        }
        fn transparent(&mut self, d: &[u8]) -> usize {
            self.transparent.extend_from_slice(d);
            d.len()
        }
    }

    fn feed_split(core: &mut Core, sink: &mut VecSink, bytes: &[u8]) {
        for chunk in bytes.chunks(3) {
            core.feed(chunk, sink);
        }
    }

    #[test]
    fn response_lines_and_urcs_are_told_apart() {
        let mut core = Core::new();
        let mut sink = VecSink::default();
        core.begin(b"+QIACT:", Kind::Plain).unwrap();
        feed_split(
            &mut core,
            &mut sink,
            b"\r\n+QIACT: 1,1,1,\"10.7.157.1\"\r\n\r\n+QIURC: \"recv\",3\r\n\r\n+QIACT: 2,1,1,\"10.7.157.2\"\r\n\r\nOK\r\n",
        );
        assert_eq!(core.result(), Some(Ok(Final::Ok)));
        assert_eq!(core.response().unwrap(), b"+QIACT: 1,1,1,\"10.7.157.1\"\r\n+QIACT: 2,1,1,\"10.7.157.2\"\r\n");
        assert!(core.st.sockets.get(3).unwrap().rx_ready);
        core.end();
    }

    #[test]
    fn only_payload_that_cannot_run_a_command_is_inert() {
        assert!(inert_as_commands(b"hello"));
        assert!(inert_as_commands(b"\r\nOK\r\n> +QIURC: \"closed\",0\r\n"));
        assert!(inert_as_commands(b"A\rT\r"));
        assert!(inert_as_commands(b""));
        for bad in [&b"AT\r"[..], b"xat+qpowd\r", b"aT", b"At", b"A/", b"da/"] {
            assert!(!inert_as_commands(bad), "{bad:?}");
        }
    }

    #[test]
    fn an_overlong_line_fails_only_the_command_it_could_answer() {
        let noise = [b'x'; 1000];
        let mut long_answer = Vec::from(&b"+QIACT: 1,1,1,\""[..]);
        long_answer.extend_from_slice(&noise);
        for (prefix, line, fails) in [
            (&b"+QIACT:"[..], &long_answer[..], true),
            (&b"+QIACT:"[..], &noise[..], false),
            (crate::commands::NO_INFO, &long_answer[..], false),
            (&b""[..], &noise[..], false),
        ] {
            let mut core = Core::new();
            let mut sink = VecSink::default();
            core.begin(prefix, Kind::Plain).unwrap();
            let mut input = Vec::from(&b"\r\n"[..]);
            input.extend_from_slice(line);
            input.extend_from_slice(b"\r\n\r\nBG96MAR02A07M1G\r\n\r\nOK\r\n");
            feed_split(&mut core, &mut sink, &input);
            assert_eq!(core.result(), Some(Ok(Final::Ok)));
            assert_eq!(core.response().is_err(), fails, "prefix {:?}", core::str::from_utf8(prefix));
            assert_eq!(core.st.stats.line_overflows, 1);
            core.end();
        }
    }

    #[test]
    fn deferred_open_result_after_ok_in_the_same_read() {
        let mut core = Core::new();
        let mut sink = VecSink::default();
        core.st.sockets.get_mut(0).unwrap().occupy(
            SlotState::Opening,
            crate::commands::ServiceType::Tcp,
            AccessMode::Buffer,
            1,
        );
        core.begin(crate::commands::NO_INFO, Kind::Plain).unwrap();
        let ch = core.feed(b"\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n", &mut sink);
        assert!(ch.command);
        assert_eq!(ch.sockets, 1);
        assert_eq!(core.result(), Some(Ok(Final::Ok)));
        let s = core.st.sockets.get(0).unwrap();
        assert_eq!((s.state, s.open_result), (SlotState::Open, Some(0)));
    }

    #[test]
    fn qird_payload_goes_to_the_sink_by_count() {
        let mut core = Core::new();
        let mut sink = VecSink::default();
        core.begin(b"+QIRD:", Kind::Read { connect_id: 0 }).unwrap();
        feed_split(&mut core, &mut sink, b"\r\n+QIRD: 10\r\n\r\nOK\r\n> RDY\r\n\r\nOK\r\n");
        assert_eq!(core.result(), Some(Ok(Final::Ok)));
        assert_eq!(sink.read, b"\r\nOK\r\n> RD");
        assert_eq!(core.st.cmd.read_header, Some((10, None)));
        assert!(!core.st.modem.rebooted, "payload must not be taken for RDY");
    }

    #[test]
    #[cfg(feature = "direct-push")]
    fn direct_push_and_loss_accounting() {
        struct Small(usize);
        impl DataSink for Small {
            fn read(&mut self, _: &[u8]) {}
            fn push(&mut self, _: u8, _: Option<(usize, Option<SocketAddr>)>, d: &[u8]) -> usize {
                let n = d.len().min(self.0);
                self.0 -= n;
                n
            }
            fn transparent(&mut self, _: &[u8]) -> usize {
                0
            }
        }
        let mut core = Core::new();
        core.st.sockets.get_mut(4).unwrap().occupy(
            SlotState::Open,
            crate::commands::ServiceType::Tcp,
            AccessMode::DirectPush,
            1,
        );
        let mut sink = Small(3);
        core.feed(b"\r\n+QIURC: \"recv\",4,5\r\nhello", &mut sink);
        assert_eq!(core.st.stats.bytes_lost, 2);
        assert_eq!(core.st.sockets.get(4).unwrap().push_lost, 2);
    }

    #[test]
    fn reboot_fails_the_command_and_frees_sockets() {
        let mut core = Core::new();
        let mut sink = VecSink::default();
        core.st.sockets.get_mut(2).unwrap().occupy(
            SlotState::Open,
            crate::commands::ServiceType::Tcp,
            AccessMode::Buffer,
            1,
        );
        let r = core.st.sockets.slot_ref(2).unwrap();
        core.begin(b"+QISTATE:", Kind::Plain).unwrap();
        let ch = core.feed(b"\r\nRDY\r\n", &mut sink);
        assert!(ch.modem && ch.command);
        assert_eq!(core.result(), Some(Err(Error::Rebooted)));
        assert_eq!(core.st.sockets.current(r).err(), Some(Error::Rebooted));
        assert_eq!(core.st.sockets.in_use(), 0);
    }

    #[test]
    fn pdpdeact_kills_the_sockets_of_that_context_only() {
        let mut core = Core::new();
        let mut sink = VecSink::default();
        core.st.sockets.get_mut(0).unwrap().occupy(
            SlotState::Open,
            crate::commands::ServiceType::Tcp,
            AccessMode::Buffer,
            1,
        );
        core.st.sockets.get_mut(1).unwrap().occupy(
            SlotState::Open,
            crate::commands::ServiceType::Tcp,
            AccessMode::Buffer,
            2,
        );
        let r0 = core.st.sockets.slot_ref(0).unwrap();
        let r1 = core.st.sockets.slot_ref(1).unwrap();
        core.feed(b"\r\n+QIURC: \"pdpdeact\",1\r\n", &mut sink);
        assert_eq!(core.st.sockets.current(r0).err(), Some(Error::ContextDeactivated(1)));
        assert!(core.st.sockets.current(r1).is_ok());
        assert_eq!(core.st.sockets.pending_close(), Some(0));
    }

    #[test]
    fn dns_result_collects_all_addresses_and_drops_late_lines() {
        let mut core = Core::new();
        let mut sink = VecSink::default();
        core.feed(b"\r\n+QIURC: \"dnsgip\",\"9.9.9.9\"\r\n", &mut sink);
        assert!(core.st.dns.result.is_none());
        core.st.dns.pending = true;
        core.feed(b"\r\n+QIURC: \"dnsgip\",0,2,600\r\n\r\n+QIURC: \"dnsgip\",\"1.2.3.4\"\r\n", &mut sink);
        assert!(core.st.dns.result.is_none());
        // an IPv6 line counts towards the announced two also where it is not parsed
        core.feed(b"\r\n+QIURC: \"dnsgip\",\"::1\"\r\n", &mut sink);
        assert_eq!(core.st.dns.result, Some(Ok(())));
        assert_eq!(core.st.dns.ipv4, Some(core::net::Ipv4Addr::new(1, 2, 3, 4)));
        let v6 = if cfg!(feature = "ipv6") { Some(core::net::Ipv6Addr::LOCALHOST) } else { None };
        assert_eq!(core.st.dns.ipv6, v6);
    }

    #[test]
    fn an_abandoned_dns_query_is_freed_by_its_result_and_only_by_its_owner() {
        let mut core = Core::new();
        let mut sink = VecSink::default();
        let ticket = core.st.start_dns(Instant::from_ms(500));
        // another owner's ticket changes nothing
        core.st.abandon_dns(ticket.wrapping_sub(1));
        assert!(core.st.dns.pending && !core.st.dns_owner.orphaned);
        // abandoned before the answer: the answer frees the query and is dropped
        core.st.abandon_dns(ticket);
        assert!(core.st.dns.pending && core.st.dns_owner.orphaned);
        let now = Instant::from_ms(0);
        assert!(!core.st.dns_free(now, 1000));
        core.feed(b"\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"1.2.3.4\"\r\n", &mut sink);
        assert!(core.st.dns_free(now, 1000));
        // abandoned after the answer came: freed at once
        let ticket = core.st.start_dns(Instant::from_ms(500));
        core.feed(b"\r\n+QIURC: \"dnsgip\",565\r\n", &mut sink);
        assert_eq!(core.st.dns.result, Some(Err(565)));
        core.st.abandon_dns(ticket);
        assert!(!core.st.dns.pending);
        assert_eq!(core.st.dns.result, None);
    }

    #[test]
    fn a_failed_read_expects_no_header_afterwards() {
        // found by fuzzing: ERROR ends the read; a later +QIRD line is not a data header
        let mut core = Core::new();
        let mut sink = VecSink::default();
        core.begin(b"+QIRD:", Kind::Read { connect_id: 0 }).unwrap();
        core.feed(b"\r\nERROR\r\n\r\n+QIRD: 5\r\nhello\r\n\r\nOK\r\n", &mut sink);
        assert!(sink.read.is_empty());
        assert_eq!(core.st.cmd.read_header, None);
        assert_eq!(core.result(), Some(Ok(Final::Error)));
    }

    #[test]
    fn a_read_ended_mid_payload_drops_the_rest_of_its_frame() {
        let mut core = Core::new();
        let mut sink = VecSink::default();
        core.begin(b"+QIRD:", Kind::Read { connect_id: 0 }).unwrap();
        core.feed(b"\r\n+QIRD: 10\r\nabc", &mut sink);
        core.end(); // timeout
        core.begin(b"+QIRD:", Kind::Read { connect_id: 1 }).unwrap();
        core.feed(b"defghij\r\n\r\nOK\r\n", &mut sink);
        assert_eq!(sink.read, b"abc", "the next read gets nothing of the old frame");
        assert_eq!(core.result(), Some(Ok(Final::Ok)), "and the stream is in step again");
    }

    #[test]
    fn a_garbled_length_does_not_swallow_the_stream() {
        let mut core = Core::new();
        let mut sink = VecSink::default();
        core.begin(b"+QIRD:", Kind::Read { connect_id: 0 }).unwrap();
        core.feed(b"\r\n+QIRD: 4294967295\r\n\r\nOK\r\n", &mut sink);
        assert_eq!(core.result(), Some(Ok(Final::Ok)));
    }

    #[test]
    #[cfg(feature = "direct-push")]
    fn switching_to_buffer_mode_reframes_the_urcs_of_the_same_read() {
        let mut core = Core::new();
        let mut sink = VecSink::default();
        core.st.sockets.get_mut(1).unwrap().occupy(
            SlotState::Open,
            crate::commands::ServiceType::Tcp,
            AccessMode::DirectPush,
            1,
        );
        core.begin(crate::commands::NO_INFO, Kind::Switch { connect_id: 1, mode: AccessMode::Buffer }).unwrap();
        // a push URC sent before the switch, the OK, then a buffer-mode URC with recvind
        core.feed(
            b"\r\n+QIURC: \"recv\",1,2\r\nab\r\nOK\r\n\r\n+QIURC: \"recv\",1,7\r\n\r\n+QIURC: \"closed\",1\r\n",
            &mut sink,
        );
        assert_eq!(sink.push, [(1, b"ab".to_vec())]);
        let slot = core.st.sockets.get(1).unwrap();
        assert_eq!(slot.mode, AccessMode::Buffer);
        assert_eq!((slot.rx_ready, slot.rx_known, slot.peer_closed), (true, 7, true));
    }

    #[test]
    #[cfg(feature = "transparent")]
    fn transparent_mode_via_connect_and_no_carrier() {
        let mut core = Core::new();
        let mut sink = VecSink::default();
        core.st.sockets.get_mut(0).unwrap().occupy(
            SlotState::Open,
            crate::commands::ServiceType::Tcp,
            AccessMode::Buffer,
            1,
        );
        core.begin(crate::commands::NO_INFO, Kind::Connect { connect_id: Some(0) }).unwrap();
        core.feed(b"\r\nCONNECT\r\nraw\r\nOK\r\nbytes", &mut sink);
        assert_eq!(core.result(), Some(Ok(Final::Connect)));
        core.end();
        assert_eq!(core.st.modem.transparent, Some(0));
        core.feed(b"\r\nNO CARRIER\r\n", &mut sink);
        assert_eq!(sink.transparent, b"raw\r\nOK\r\nbytes");
        assert_eq!(core.st.modem.transparent, None);
        assert!(core.st.sockets.get(0).unwrap().peer_closed);
    }
}
