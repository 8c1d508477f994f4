//! The modem logic: a pure state machine fed with host bytes, network events, control
//! messages and the clock. It produces output bytes for the host and actions for the
//! network layer, and never blocks or touches a socket itself.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use crate::at::{self, Bad, Form};
use crate::config::{Profile, SimConfig};
use crate::types::{AccessMode, InjectPoint, ServiceType, SocketInfo, SocketState};

/// Longest command line accepted (longer lines answer `ERROR`).
pub(crate) const MAX_LINE: usize = 2048;
const MAX_SEND: usize = 1460;
const MAX_READ: usize = 1500;
const MAX_URCS: usize = 1024;
const MAX_DGRAMS: usize = 1024;
const MAX_SENDEX: usize = 512;
const MAX_FAULTS: usize = 256;
const NUM_SOCKS: usize = 12;
const NUM_CTX: usize = 16;
const MAX_ACTIVE_CTX: usize = 3;
const CTRL_Z: u8 = 0x1a;
const ESC: u8 = 0x1b;
/// Longest delay accepted from the configuration or the fault API (one day).
const MAX_DELAY: Duration = Duration::from_secs(86_400);
/// 1980-01-06 00:00:00 UTC, where the modem's clock starts.
const CLOCK_EPOCH: i64 = 315_964_800;

/// Something the network layer reports.
#[derive(Debug)]
pub(crate) enum NetEvent {
    /// A client connected / a listener or UDP socket is bound.
    Opened { token: u64, local: SocketAddr },
    /// Opening failed with a BG96 error code.
    OpenFailed { token: u64, code: u16 },
    /// Bytes (TCP) or one datagram (UDP, with its source).
    Data { token: u64, data: Vec<u8>, from: Option<SocketAddr> },
    /// `n` bytes were written to the host socket.
    Written { token: u64, n: usize },
    /// The peer closed or the socket failed.
    Closed { token: u64 },
    /// A listener accepted a connection, parked by the engine under `pending`.
    Incoming { listener: u64, pending: u64, peer: SocketAddr, local: SocketAddr },
    /// Result of an SNTP query: Unix time or an error code.
    Ntp { token: u64, result: Result<i64, u16> },
}

/// Something the network layer must do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    TcpConnect {
        token: u64,
        addr: SocketAddr,
    },
    UdpOpen {
        token: u64,
        remote: SocketAddr,
        local_port: u16,
    },
    TcpListen {
        token: u64,
        port: u16,
    },
    UdpBind {
        token: u64,
        port: u16,
    },
    Adopt {
        pending: u64,
        token: u64,
    },
    Reject {
        pending: u64,
    },
    Send {
        token: u64,
        data: Vec<u8>,
        to: Option<SocketAddr>,
    },
    /// The modem freed `n` bytes of the socket's receive buffer.
    Credit {
        token: u64,
        n: usize,
    },
    Close {
        token: u64,
    },
    Ntp {
        token: u64,
        server: SocketAddr,
    },
}

/// Fault injection and power control.
#[derive(Debug, Clone)]
pub(crate) enum Ctl {
    Reboot,
    ClosePeer(u8),
    PdpDeact(u8),
    SendFailNext(usize),
    Delay(String, Duration),
    Drop(String),
    DropDeferred(String),
    Hang,
    Fail(String, usize, u16),
    Hold(u8, bool),
    Inject(InjectPoint, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum E {
    /// Plain `ERROR` (unknown command, syntax).
    Plain,
    /// `+CME ERROR: <n>` when CMEE is on, else `ERROR`.
    Cme(u16),
    /// A TCP/IP error: recorded for QIGETERROR; `ERROR` (field) or `+CME ERROR` (manual).
    Tcp(u16),
}

enum Outcome {
    Ok(Vec<Vec<u8>>),
    Final(Vec<Vec<u8>>, &'static str),
    Prompt,
    Silent,
}

type R = Result<Outcome, E>;

fn tcp<T>(r: Result<T, Bad>) -> Result<T, E> {
    r.map_err(|_| E::Tcp(552))
}

fn gp<T>(r: Result<T, Bad>) -> Result<T, E> {
    r.map_err(|_| E::Cme(50))
}

fn framed(text: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(text.len() + 4);
    v.extend_from_slice(b"\r\n");
    v.extend_from_slice(text);
    v.extend_from_slice(b"\r\n");
    v
}

fn line(s: String) -> Vec<u8> {
    s.into_bytes()
}

/// Description used by `AT+QIGETERROR` (and `+CME ERROR` text in the manual profile).
pub(crate) fn err_desc(code: u16) -> &'static str {
    match code {
        0 => "operation successful",
        550 => "unknown error",
        551 => "operation blocked",
        552 => "invalid parameters",
        553 => "memory not enough",
        554 => "create socket failed",
        555 => "operation not supported",
        556 => "socket bind failed",
        557 => "socket listen failed",
        558 => "socket write failed",
        559 => "socket read failed",
        560 => "socket accept failed",
        561 => "open pdp context failed",
        562 => "close pdp context failed",
        563 => "socket identity has been used",
        564 => "dns busy",
        565 => "dns parse failed",
        566 => "socket connect failed",
        567 => "socket has been closed",
        568 => "operation busy",
        569 => "operation timeout",
        570 => "pdp context broken down",
        571 => "cancel send",
        572 => "operation not allowed",
        573 => "apn not configured",
        574 => "port busy",
        _ => "unknown error",
    }
}

fn cme_desc(code: u16) -> &'static str {
    match code {
        3 => "operation not allowed",
        4 => "operation not supported",
        50 => "Incorrect parameters",
        _ => err_desc(code),
    }
}

#[derive(Clone)]
struct Ctx {
    ctype: u8,
    apn: String,
    user: String,
    pass: String,
    auth: u8,
    active: bool,
    dns: (String, String),
}

impl Default for Ctx {
    fn default() -> Self {
        Ctx {
            ctype: 1,
            apn: String::new(),
            user: String::new(),
            pass: String::new(),
            auth: 0,
            active: false,
            dns: ("127.0.0.1".to_string(), "0.0.0.0".to_string()),
        }
    }
}

struct Chunk {
    data: Vec<u8>,
    pos: usize,
    from: Option<SocketAddr>,
}

struct Sock {
    token: u64,
    service: ServiceType,
    state: SocketState,
    cid: u8,
    mode: AccessMode,
    remote: Option<SocketAddr>,
    local: Option<SocketAddr>,
    server_id: Option<u8>,
    rx: VecDeque<Chunk>,
    rx_len: usize,
    rx_total: u64,
    rx_read: u64,
    urc_armed: bool,
    tx_total: u64,
    tx_acked: u64,
    /// `hold_acks` fault: the acknowledged count is frozen at this value.
    hold_acks: Option<u64>,
    announced: bool,
    silent: bool,
    open_at: Instant,
    peer_closed: bool,
    closed_urc_pending: bool,
}

impl Sock {
    fn unacked(&self) -> usize {
        (self.tx_total - self.tx_acked) as usize
    }
    fn is_udp(&self) -> bool {
        matches!(self.service, ServiceType::Udp | ServiceType::UdpService)
    }
}

#[derive(Clone, Copy)]
struct Qicfg {
    transpktsize: u32,
    transwaittm: u32,
    send_hex: bool,
    recv_hex: bool,
    viewmode: u32,
    recvind: bool,
    prefix_len: u32,
    max_backoffs: u32,
    max_rto: u32,
}

impl Default for Qicfg {
    fn default() -> Self {
        Qicfg {
            transpktsize: 1024,
            transwaittm: 2,
            send_hex: false,
            recv_hex: false,
            viewmode: 0,
            recvind: false,
            prefix_len: 96,
            max_backoffs: 8,
            max_rto: 600,
        }
    }
}

enum SendKind {
    Var,
    Fixed(usize),
}

struct SendState {
    id: u8,
    token: u64,
    kind: SendKind,
    buf: Vec<u8>,
    to: Option<SocketAddr>,
    hex: bool,
    overflow: bool,
}

/// Selects sockets for `AT+QISTATE`.
type SockFilter = Box<dyn Fn(u8, &Sock) -> bool>;

enum Mode {
    Command,
    Prompt(SendState),
    Data(u8),
    WaitConnect(u8),
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Power {
    Off,
    Starting,
    On,
}

enum Timer {
    Boot(u8),
    Urc { bytes: Vec<u8>, silent: bool, err: Option<u16> },
    Announce { id: u8, token: u64, code: u16 },
    DnsDone { bytes: Vec<u8>, silent: bool, err: u16 },
    NtpDone { bytes: Vec<u8>, silent: bool, err: u16 },
    Ping,
    Escape,
    TpFlush,
}

struct Ping {
    ip: IpAddr,
    reachable: bool,
    total: u32,
    sent: u32,
    times: Vec<u64>,
    timeout: Duration,
    rtt: Duration,
    req_at: Instant,
    silent: bool,
}

struct Ntp {
    token: u64,
    server: String,
    port: u16,
    autoset: bool,
    silent: bool,
    started: Instant,
}

#[derive(Default)]
struct Tp {
    buf: Vec<u8>,
    plus: u8,
    plus_start: Option<Instant>,
    last_rx: Option<Instant>,
    escape_at: Option<Instant>,
    flush_at: Option<Instant>,
}

enum Fault {
    Delay(String, Duration),
    Drop(String),
    DropDeferred(String),
    Fail(String, u16),
    Inject(InjectPoint, String),
}

fn matches_prefix(line_upper: &str, prefix: &str) -> bool {
    line_upper.starts_with(&prefix.to_ascii_uppercase())
}

/// The simulated BG96.
pub(crate) struct Modem {
    cfg: SimConfig,
    power: Power,
    app_ready: bool,
    echo: bool,
    cmee: u8,
    cfun: u8,
    urcport: String,
    reg_n: [u8; 3],
    ifc: (u8, u8),
    line: Vec<u8>,
    line_overflow: bool,
    skip_lf: bool,
    mode: Mode,
    hold: Option<(Instant, Vec<u8>)>,
    contexts: Vec<Ctx>,
    socks: Vec<Option<Sock>>,
    last_error: u16,
    qisde: bool,
    qicfg: Qicfg,
    dns_pending: bool,
    ntp: Option<Ntp>,
    ping: Option<Ping>,
    /// (Instant of setting, Unix time then, time zone in quarter hours)
    clock: (Instant, i64, i32),
    urcs: VecDeque<Vec<u8>>,
    out: Vec<u8>,
    actions: Vec<Action>,
    timers: Vec<(Instant, Timer)>,
    next_token: u64,
    send_fail_next: usize,
    faults: Vec<Fault>,
    last_transparent: Option<(u8, u64)>,
    tp: Tp,
    room: usize,
    wants_room: bool,
    cur_silent: bool,
    /// The `hang` fault: input is ignored until the next reboot.
    hung: bool,
    cmd_names: Vec<String>,
    /// Time of the latest input (for guard times measured from entering data mode).
    now: Instant,
    /// UDP datagrams dropped (buffer full / too many queued).
    pub udp_dropped: u64,
    /// URCs dropped because the queue was full.
    pub urcs_dropped: u64,
}

impl Modem {
    /// A modem that has just been powered on (the boot sequence follows after `boot_delay`).
    pub fn new(mut cfg: SimConfig, now: Instant) -> Modem {
        // Keep every Instant arithmetic far from overflow.
        for d in [&mut cfg.guard_time, &mut cfg.boot_delay, &mut cfg.deferred_delay] {
            *d = (*d).min(MAX_DELAY);
        }
        let mut m = Modem {
            power: Power::Starting,
            app_ready: false,
            echo: true,
            cmee: 0,
            cfun: 1,
            urcport: "uart1".to_string(),
            reg_n: [0; 3],
            ifc: (0, 0),
            line: Vec::new(),
            line_overflow: false,
            skip_lf: false,
            mode: Mode::Command,
            hold: None,
            contexts: vec![Ctx::default(); NUM_CTX],
            socks: (0..NUM_SOCKS).map(|_| None).collect(),
            last_error: 0,
            qisde: true,
            qicfg: Qicfg::default(),
            dns_pending: false,
            ntp: None,
            ping: None,
            clock: (now, CLOCK_EPOCH, 0),
            urcs: VecDeque::new(),
            out: Vec::new(),
            actions: Vec::new(),
            timers: Vec::new(),
            next_token: 1,
            send_fail_next: 0,
            faults: Vec::new(),
            last_transparent: None,
            tp: Tp::default(),
            room: usize::MAX,
            wants_room: false,
            cur_silent: false,
            hung: false,
            cmd_names: Vec::new(),
            now,
            udp_dropped: 0,
            urcs_dropped: 0,
            cfg,
        };
        m.power_on(now);
        m
    }

    fn field_like(&self) -> bool {
        self.cfg.profile != Profile::Manual
    }

    fn lenient(&self) -> bool {
        self.cfg.profile == Profile::Lenient
    }

    fn deferred(&self) -> Duration {
        if self.field_like() { self.cfg.deferred_delay } else { Duration::ZERO }
    }

    fn token(&mut self) -> u64 {
        let t = self.next_token;
        self.next_token += 1;
        t
    }

    // ------------------------------------------------------------------ engine interface

    /// Whether the modem takes host bytes now (not while a response is delayed, a
    /// transparent-mode connect is pending, or transparent data cannot be sent).
    pub fn accepts_input(&self) -> bool {
        if self.hold.is_some() {
            return false;
        }
        match &self.mode {
            Mode::WaitConnect(_) => false,
            Mode::Data(id) => match self.sock(*id) {
                Some(s) => s.unacked() < self.cfg.socket_tx_capacity,
                None => true,
            },
            _ => true,
        }
    }

    /// Room in the host-bound queue for data (direct push / transparent).
    pub fn set_room(&mut self, room: usize) {
        self.room = room;
    }

    /// Whether data is held back for lack of room.
    pub fn wants_room(&self) -> bool {
        self.wants_room
    }

    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    pub fn take_command_names(&mut self) -> Vec<String> {
        std::mem::take(&mut self.cmd_names)
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        let t = self.timers.iter().map(|(t, _)| *t).min();
        let h = self.hold.as_ref().map(|(t, _)| *t);
        match (t, h) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Fires due timers and emits whatever may go out now.
    pub fn poll(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if let Some((t, _)) = &self.hold {
            if *t <= now {
                if let Some((_, bytes)) = self.hold.take() {
                    self.out.extend_from_slice(&bytes);
                }
            }
        }
        loop {
            let due = self
                .timers
                .iter()
                .enumerate()
                .filter(|(_, (t, _))| *t <= now)
                .min_by_key(|(_, (t, _))| *t)
                .map(|(i, _)| i);
            let Some(i) = due else { break };
            let (_, timer) = self.timers.remove(i);
            self.fire(now, timer);
        }
        self.pump(now);
    }

    pub fn active_contexts(&self) -> Vec<u8> {
        self.contexts.iter().enumerate().filter(|(_, c)| c.active).map(|(i, _)| i as u8 + 1).collect()
    }

    pub fn sockets(&self) -> Vec<SocketInfo> {
        self.socks
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.as_ref().map(|s| SocketInfo {
                    connect_id: i as u8,
                    service_type: s.service,
                    state: s.state,
                    context_id: s.cid,
                    access_mode: s.mode,
                    local_addr: s.local,
                    remote_addr: s.remote,
                    server_id: s.server_id,
                    rx_buffered: s.rx_len,
                    tx_unacked: s.unacked(),
                })
            })
            .collect()
    }

    // ------------------------------------------------------------------ power

    fn power_on(&mut self, now: Instant) {
        self.power = Power::Starting;
        self.app_ready = false;
        self.timers.push((now + self.cfg.boot_delay, Timer::Boot(0)));
    }

    /// Forgets everything volatile (sockets, contexts' activation, settings).
    fn reset_state(&mut self, now: Instant) {
        for i in 0..NUM_SOCKS {
            self.free_sock(i as u8);
        }
        for c in &mut self.contexts {
            c.active = false;
        }
        self.mode = Mode::Command;
        self.hold = None;
        self.line.clear();
        self.line_overflow = false;
        self.skip_lf = false;
        self.urcs.clear();
        self.timers.clear();
        self.dns_pending = false;
        self.ntp = None;
        self.ping = None;
        self.last_transparent = None;
        self.tp = Tp::default();
        self.echo = self.field_like();
        self.cmee = 0;
        self.cfun = 1;
        self.urcport = "uart1".to_string();
        self.reg_n = [0; 3];
        self.qisde = true;
        self.qicfg = Qicfg::default();
        self.last_error = 0;
        self.clock = (now, CLOCK_EPOCH, 0);
        self.wants_room = false;
    }

    fn reboot(&mut self, now: Instant) {
        self.hung = false;
        self.reset_state(now);
        self.power_on(now);
    }

    // ------------------------------------------------------------------ control

    pub fn control(&mut self, now: Instant, c: Ctl) {
        self.now = self.now.max(now);
        match c {
            Ctl::Reboot => self.reboot(now),
            Ctl::ClosePeer(id) => {
                if let Some(token) = self.sock(id).map(|s| s.token) {
                    self.actions.push(Action::Close { token });
                    self.peer_closed(id);
                }
            }
            Ctl::PdpDeact(cid) => self.pdp_deact(now, cid),
            Ctl::SendFailNext(n) => self.send_fail_next = n,
            Ctl::Delay(p, d) => self.add_fault(Fault::Delay(p, d.min(MAX_DELAY))),
            Ctl::Drop(p) => self.add_fault(Fault::Drop(p)),
            Ctl::DropDeferred(p) => self.add_fault(Fault::DropDeferred(p)),
            Ctl::Hang => self.hung = true,
            Ctl::Fail(p, n, code) => {
                for _ in 0..n.min(1000) {
                    self.add_fault(Fault::Fail(p.clone(), code));
                }
            }
            Ctl::Hold(id, on) => {
                if let Some(s) = self.sock_mut(id) {
                    s.hold_acks = on.then_some(s.tx_acked);
                }
            }
            Ctl::Inject(InjectPoint::Now, text) => self.urc(text.as_bytes()),
            Ctl::Inject(p, text) => self.add_fault(Fault::Inject(p, text)),
        }
        self.pump(now);
    }

    fn add_fault(&mut self, f: Fault) {
        if self.faults.len() < MAX_FAULTS {
            self.faults.push(f);
        }
    }

    /// The network deactivated context `cid`.
    fn pdp_deact(&mut self, now: Instant, cid: u8) {
        let idx = usize::from(cid).wrapping_sub(1);
        if idx >= NUM_CTX || !self.contexts[idx].active {
            return;
        }
        self.contexts[idx].active = false;
        self.kill_context_sockets(now, cid);
        self.urc(format!("+QIURC: \"pdpdeact\",{cid}").as_bytes());
    }

    /// Sockets of a context die with it: host sockets closed, slots left in "closing".
    fn kill_context_sockets(&mut self, now: Instant, cid: u8) {
        for id in 0..NUM_SOCKS as u8 {
            let Some((scid, token, announced)) = self.sock(id).map(|s| (s.cid, s.token, s.announced)) else {
                continue;
            };
            if scid != cid {
                continue;
            }
            self.actions.push(Action::Close { token });
            if !announced {
                let code = 570;
                self.timers.push((now, Timer::Announce { id, token, code }));
                if let Some(s) = self.sock_mut(id) {
                    s.state = SocketState::Closing;
                    s.peer_closed = true;
                }
                continue;
            }
            if let Some(s) = self.sock_mut(id) {
                s.state = SocketState::Closing;
                s.peer_closed = true;
            }
        }
    }

    // ------------------------------------------------------------------ sockets

    fn sock(&self, id: u8) -> Option<&Sock> {
        self.socks.get(usize::from(id)).and_then(|s| s.as_ref())
    }

    fn sock_mut(&mut self, id: u8) -> Option<&mut Sock> {
        self.socks.get_mut(usize::from(id)).and_then(|s| s.as_mut())
    }

    fn by_token(&self, token: u64) -> Option<u8> {
        self.socks.iter().position(|s| s.as_ref().is_some_and(|s| s.token == token)).map(|i| i as u8)
    }

    fn free_sock(&mut self, id: u8) {
        if let Some(slot) = self.socks.get_mut(usize::from(id)) {
            if let Some(s) = slot.take() {
                self.actions.push(Action::Close { token: s.token });
            }
        }
        if let Mode::Data(d) | Mode::WaitConnect(d) = self.mode {
            if d == id {
                self.mode = Mode::Command;
            }
        }
    }

    fn new_sock(
        &mut self,
        now: Instant,
        service: ServiceType,
        cid: u8,
        mode: AccessMode,
        remote: Option<SocketAddr>,
    ) -> Sock {
        Sock {
            token: self.token(),
            service,
            state: SocketState::Opening,
            cid,
            mode,
            remote,
            local: None,
            server_id: None,
            rx: VecDeque::new(),
            rx_len: 0,
            rx_total: 0,
            rx_read: 0,
            urc_armed: true,
            tx_total: 0,
            tx_acked: 0,
            hold_acks: None,
            announced: false,
            silent: self.cur_silent,
            open_at: now,
            peer_closed: false,
            closed_urc_pending: false,
        }
    }

    fn context_usable(&self, cid: u8) -> bool {
        self.lenient()
            || (self.cfun == 1 && self.contexts.get(usize::from(cid).wrapping_sub(1)).is_some_and(|c| c.active))
    }

    fn resolve(&self, host: &str) -> Option<Vec<IpAddr>> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(vec![ip]);
        }
        self.cfg.resolve(host).filter(|v| !v.is_empty())
    }

    // ------------------------------------------------------------------ network events

    pub fn net_event(&mut self, now: Instant, ev: NetEvent) {
        self.now = self.now.max(now);
        match ev {
            NetEvent::Opened { token, local } => {
                if let Some(id) = self.by_token(token) {
                    let deferred = self.deferred();
                    if let Some(s) = self.sock_mut(id) {
                        if s.state != SocketState::Opening {
                            return;
                        }
                        s.local = Some(local);
                        s.state = match s.service {
                            ServiceType::TcpListener => SocketState::Listening,
                            _ => SocketState::Connected,
                        };
                        let at = (s.open_at + deferred).max(now);
                        self.timers.push((at, Timer::Announce { id, token, code: 0 }));
                    }
                }
            }
            NetEvent::OpenFailed { token, code } => {
                if let Some(id) = self.by_token(token) {
                    let deferred = self.deferred();
                    if let Some(s) = self.sock(id) {
                        let at = (s.open_at + deferred).max(now);
                        self.timers.push((at, Timer::Announce { id, token, code }));
                    }
                }
            }
            NetEvent::Data { token, data, from } => self.on_data(token, data, from),
            NetEvent::Written { token, n } => {
                if let Some(id) = self.by_token(token) {
                    if let Some(s) = self.sock_mut(id) {
                        s.tx_acked = (s.tx_acked + n as u64).min(s.tx_total);
                    }
                }
            }
            NetEvent::Closed { token } => {
                if let Some(id) = self.by_token(token) {
                    self.peer_closed(id);
                }
            }
            NetEvent::Incoming { listener, pending, peer, local } => {
                self.on_incoming(now, listener, pending, peer, local)
            }
            NetEvent::Ntp { token, result } => self.on_ntp(now, token, result),
        }
        self.pump(now);
    }

    fn on_data(&mut self, token: u64, mut data: Vec<u8>, from: Option<SocketAddr>) {
        let Some(id) = self.by_token(token) else {
            return;
        };
        let Some(s) = self.sock_mut(id) else { return };
        if s.is_udp() {
            if s.rx.len() >= MAX_DGRAMS {
                let n = data.len();
                self.udp_dropped += 1;
                self.actions.push(Action::Credit { token, n });
                return;
            }
            if data.len() > MAX_READ {
                let extra = data.len() - MAX_READ;
                data.truncate(MAX_READ);
                self.actions.push(Action::Credit { token, n: extra });
            }
        } else if data.is_empty() {
            return;
        }
        let Some(s) = self.sock_mut(id) else { return };
        let len = data.len();
        s.rx_total += len as u64;
        s.rx_len += len;
        s.rx.push_back(Chunk { data, pos: 0, from });
        if s.announced {
            self.notify_arrival(id, len);
        }
    }

    /// Buffer mode: the "recv" URC fires once until the buffer has been read empty.
    fn notify_arrival(&mut self, id: u8, len: usize) {
        let recvind = self.qicfg.recvind;
        let Some(s) = self.sock_mut(id) else { return };
        if s.mode != AccessMode::Buffer || !s.urc_armed {
            return;
        }
        s.urc_armed = false;
        let text = if recvind { format!("+QIURC: \"recv\",{id},{len}") } else { format!("+QIURC: \"recv\",{id}") };
        self.urc(text.as_bytes());
    }

    fn peer_closed(&mut self, id: u8) {
        let Some(s) = self.sock_mut(id) else { return };
        if s.peer_closed {
            return;
        }
        s.peer_closed = true;
        s.state = SocketState::Closing;
        if !s.announced {
            return;
        }
        match s.mode {
            AccessMode::Buffer => self.urc(format!("+QIURC: \"closed\",{id}").as_bytes()),
            AccessMode::DirectPush => s.closed_urc_pending = true,
            AccessMode::Transparent => {
                // NO CARRIER via pump when the port is in data mode with this socket;
                // otherwise behave like buffer mode.
                if !matches!(self.mode, Mode::Data(d) if d == id) {
                    self.urc(format!("+QIURC: \"closed\",{id}").as_bytes());
                }
            }
        }
    }

    fn on_incoming(&mut self, now: Instant, listener: u64, pending: u64, peer: SocketAddr, local: SocketAddr) {
        let Some(server) = self.by_token(listener) else {
            self.actions.push(Action::Reject { pending });
            return;
        };
        let (cid, mode, ok) = match self.sock(server) {
            Some(s) => (s.cid, s.mode, s.state == SocketState::Listening && s.announced),
            None => (1, AccessMode::Buffer, false),
        };
        if !ok {
            self.actions.push(Action::Reject { pending });
            return;
        }
        let Some(free) = (0..NUM_SOCKS).rev().find(|&i| self.socks[i].is_none()) else {
            self.actions.push(Action::Reject { pending });
            self.urc(b"+QIURC: \"incoming full\"");
            return;
        };
        let mut s = self.new_sock(now, ServiceType::TcpIncoming, cid, mode, Some(peer));
        s.silent = false;
        s.state = SocketState::Connected;
        s.announced = true;
        s.local = Some(local);
        s.server_id = Some(server);
        let token = s.token;
        self.socks[free] = Some(s);
        self.actions.push(Action::Adopt { pending, token });
        self.urc(format!("+QIURC: \"incoming\",{free},{server},\"{}\",{}", peer.ip(), peer.port()).as_bytes());
    }

    fn on_ntp(&mut self, now: Instant, token: u64, result: Result<i64, u16>) {
        let Some(n) = self.ntp.as_ref() else { return };
        if n.token != token {
            return;
        }
        let (autoset, silent, started) = (n.autoset, n.silent, n.started);
        let (bytes, err) = match result {
            Ok(unix) => {
                if autoset {
                    self.clock = (now, unix, self.clock.2);
                }
                let (y, mo, d, h, mi, s) = at::split_time(unix);
                (framed(format!("+QNTP: 0,\"{y:04}/{mo:02}/{d:02},{h:02}:{mi:02}:{s:02}+00\"").as_bytes()), 0)
            }
            Err(code) => (framed(format!("+QNTP: {code}").as_bytes()), code),
        };
        let at = (started + self.deferred()).max(now);
        self.timers.push((at, Timer::NtpDone { bytes, silent, err }));
    }

    // ------------------------------------------------------------------ timers

    fn fire(&mut self, now: Instant, t: Timer) {
        match t {
            Timer::Boot(stage) => self.boot_stage(now, stage),
            Timer::Urc { bytes, silent, err } => {
                if let Some(e) = err {
                    self.last_error = e;
                }
                if !silent {
                    self.urc_raw(bytes);
                }
            }
            Timer::Announce { id, token, code } => self.announce(id, token, code),
            Timer::DnsDone { bytes, silent, err } => {
                self.dns_pending = false;
                self.last_error = err;
                if !silent {
                    self.urc_raw(bytes);
                }
            }
            Timer::NtpDone { bytes, silent, err } => {
                self.ntp = None;
                self.last_error = err;
                if !silent {
                    self.urc_raw(bytes);
                }
            }
            Timer::Ping => self.ping_step(now),
            Timer::Escape => {
                if self.tp.escape_at.is_some_and(|t| t <= now) && self.tp.plus == 3 {
                    self.escape(now);
                } else if (1..3).contains(&self.tp.plus)
                    && self.tp.plus_start.is_some_and(|s| s + self.cfg.guard_time <= now)
                {
                    // An incomplete escape: the held pluses were data after all.
                    if let Mode::Data(id) = self.mode {
                        let n = self.tp.plus;
                        self.tp.plus = 0;
                        for _ in 0..n {
                            self.tp_push(now, id, b'+');
                        }
                    }
                }
            }
            Timer::TpFlush => match self.tp.flush_at {
                Some(t) if t <= now => {
                    self.tp.flush_at = None;
                    self.tp_send();
                }
                Some(t) => self.timers.push((t, Timer::TpFlush)),
                None => {}
            },
        }
    }

    fn boot_stage(&mut self, now: Instant, stage: u8) {
        match stage {
            0 => {
                self.power = Power::On;
                self.echo = self.field_like();
                self.out.extend_from_slice(b"\r\nRDY\r\n");
                if self.field_like() {
                    self.timers.push((now + self.cfg.boot_delay / 2, Timer::Boot(1)));
                } else {
                    self.app_ready = true;
                }
            }
            1 => {
                self.app_ready = true;
                self.urcs.push_back(framed(b"APP RDY"));
                self.timers.push((now + self.cfg.boot_delay / 2, Timer::Boot(2)));
            }
            _ => {
                self.urcs.push_back(framed(b"+CPIN: READY"));
                self.urcs.push_back(framed(b"+QIND: SMS DONE"));
                self.urcs.push_back(framed(b"+QIND: PB DONE"));
            }
        }
    }

    /// Reports the result of an open (`+QIOPEN`, `CONNECT` or `ERROR`).
    fn announce(&mut self, id: u8, token: u64, code: u16) {
        let Some(s) = self.sock(id) else { return };
        if s.token != token || s.announced {
            return;
        }
        let silent = s.silent;
        let transparent = s.mode == AccessMode::Transparent;
        if code != 0 {
            if let Some(slot) = self.socks.get_mut(usize::from(id)) {
                *slot = None;
            }
            self.actions.push(Action::Close { token });
            self.last_error = code;
            if transparent {
                if matches!(self.mode, Mode::WaitConnect(d) if d == id) {
                    self.mode = Mode::Command;
                    let e = self.error_bytes(E::Tcp(code));
                    if !silent {
                        self.out.extend_from_slice(&e);
                    }
                }
            } else if !silent {
                self.urc(format!("+QIOPEN: {id},{code}").as_bytes());
            }
            return;
        }
        self.last_error = 0;
        if let Some(s) = self.sock_mut(id) {
            s.announced = true;
        }
        if transparent {
            if matches!(self.mode, Mode::WaitConnect(d) if d == id) {
                if !silent {
                    self.out.extend_from_slice(b"\r\nCONNECT\r\n");
                }
                self.enter_data(id);
            }
            return;
        }
        if !silent {
            self.urc(format!("+QIOPEN: {id},0").as_bytes());
        }
        // Anything that happened before the open was reported.
        let (len, closed, mode) = match self.sock(id) {
            Some(s) => (s.rx_len, s.peer_closed, s.mode),
            None => return,
        };
        if len > 0 {
            self.notify_arrival(id, len);
        }
        if closed {
            match mode {
                AccessMode::DirectPush => {
                    if let Some(s) = self.sock_mut(id) {
                        s.closed_urc_pending = true;
                    }
                }
                _ => self.urc(format!("+QIURC: \"closed\",{id}").as_bytes()),
            }
        }
    }

    fn enter_data(&mut self, id: u8) {
        let Some(s) = self.sock_mut(id) else { return };
        s.mode = AccessMode::Transparent;
        let token = s.token;
        self.mode = Mode::Data(id);
        self.last_transparent = Some((id, token));
        // The guard time before +++ counts from entering data mode.
        self.tp = Tp { last_rx: Some(self.now), ..Tp::default() };
    }

    // ------------------------------------------------------------------ output pump

    fn urc(&mut self, text: &[u8]) {
        self.urc_raw(framed(text));
    }

    fn urc_raw(&mut self, bytes: Vec<u8>) {
        if !self.urcport.eq_ignore_ascii_case("uart1") {
            return;
        }
        if self.urcs.len() >= MAX_URCS {
            self.urcs_dropped += 1;
            return;
        }
        self.urcs.push_back(bytes);
    }

    fn flush_urcs(&mut self) {
        while let Some(u) = self.urcs.pop_front() {
            self.out.extend_from_slice(&u);
        }
    }

    fn room_now(&self) -> usize {
        self.room.saturating_sub(self.out.len())
    }

    /// Emits queued URCs, pushed data and transparent data when the port allows it.
    fn pump(&mut self, _now: Instant) {
        self.wants_room = false;
        if self.power != Power::On || self.hold.is_some() {
            return;
        }
        match self.mode {
            Mode::Prompt(_) => {}
            Mode::Command | Mode::WaitConnect(_) => {
                self.flush_urcs();
                for id in 0..NUM_SOCKS as u8 {
                    self.push_data(id);
                }
                self.flush_urcs();
            }
            Mode::Data(id) => {
                let mut done = false;
                while let Some(s) = self.socks.get_mut(usize::from(id)).and_then(|s| s.as_mut()) {
                    let Some(front) = s.rx.front_mut() else {
                        done = s.peer_closed;
                        break;
                    };
                    let room = self.room.saturating_sub(self.out.len());
                    if room == 0 {
                        self.wants_room = true;
                        break;
                    }
                    let avail = front.data.len() - front.pos;
                    let n = avail.min(room);
                    self.out.extend_from_slice(&front.data[front.pos..front.pos + n]);
                    front.pos += n;
                    if front.pos >= front.data.len() {
                        s.rx.pop_front();
                    }
                    s.rx_len -= n;
                    s.rx_read += n as u64;
                    let token = s.token;
                    self.actions.push(Action::Credit { token, n });
                }
                if self.sock(id).is_none() {
                    done = true;
                }
                if done {
                    self.tp = Tp::default();
                    self.mode = Mode::Command;
                    self.out.extend_from_slice(b"\r\nNO CARRIER\r\n");
                    self.flush_urcs();
                }
            }
        }
    }

    /// Direct push: one URC per arrival chunk while there is room.
    fn push_data(&mut self, id: u8) {
        let (recv_hex, viewmode) = (self.qicfg.recv_hex, self.qicfg.viewmode);
        loop {
            let room = self.room_now();
            let Some(s) = self.socks.get_mut(usize::from(id)).and_then(|s| s.as_mut()) else {
                return;
            };
            if s.mode != AccessMode::DirectPush || !s.announced {
                return;
            }
            let Some(front) = s.rx.front() else {
                if s.closed_urc_pending {
                    s.closed_urc_pending = false;
                    self.urc(format!("+QIURC: \"closed\",{id}").as_bytes());
                }
                return;
            };
            // one URC carries at most what one AT+QIRD could (1500 bytes), like the modem
            let data = &front.data[front.pos..(front.pos + MAX_READ).min(front.data.len())];
            let need = data.len() * if recv_hex { 2 } else { 1 } + 64;
            if need > room && self.room < usize::MAX && room < self.cfg.host_buffer {
                self.wants_room = true;
                return;
            }
            let mut head = format!("+QIURC: \"recv\",{id},{}", data.len());
            if s.service == ServiceType::UdpService {
                if let Some(f) = front.from {
                    let _ = write!(head, ",\"{}\",{}", f.ip(), f.port());
                }
            }
            let payload = if recv_hex { at::hex_encode(data) } else { data.to_vec() };
            let n = data.len();
            let mut bytes = Vec::with_capacity(payload.len() + head.len() + 8);
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(head.as_bytes());
            bytes.extend_from_slice(if viewmode == 1 { b"," } else { b"\r\n" });
            bytes.extend_from_slice(&payload);
            bytes.extend_from_slice(b"\r\n");
            if let Some(front) = s.rx.front_mut() {
                front.pos += n;
                if front.pos >= front.data.len() {
                    s.rx.pop_front();
                }
            }
            s.rx_len -= n;
            s.rx_read += n as u64;
            let token = s.token;
            self.actions.push(Action::Credit { token, n });
            if self.urcport.eq_ignore_ascii_case("uart1") {
                self.out.extend_from_slice(&bytes);
            }
        }
    }

    // ------------------------------------------------------------------ input

    /// One host byte, delivered at `at`.
    pub fn feed(&mut self, at: Instant, b: u8) {
        self.now = self.now.max(at);
        if self.power != Power::On || self.hung {
            return;
        }
        match self.mode {
            Mode::Command => self.feed_command(at, b),
            Mode::Prompt(_) => self.feed_prompt(at, b),
            Mode::Data(id) => self.feed_data(at, id, b),
            Mode::WaitConnect(_) => {}
        }
    }

    fn feed_command(&mut self, at: Instant, b: u8) {
        if self.skip_lf && b == b'\n' {
            self.skip_lf = false;
            return;
        }
        self.skip_lf = false;
        if self.echo {
            self.out.push(b);
        }
        match b {
            b'\r' => {
                self.skip_lf = true;
                let line = std::mem::take(&mut self.line);
                let overflow = std::mem::replace(&mut self.line_overflow, false);
                self.on_line(at, line, overflow);
            }
            0x08 => {
                self.line.pop();
            }
            _ => {
                if self.line.len() < MAX_LINE {
                    self.line.push(b);
                } else {
                    self.line_overflow = true;
                }
            }
        }
    }

    fn on_line(&mut self, now: Instant, raw: Vec<u8>, overflow: bool) {
        let start = raw.iter().position(|&b| b != b' ' && b != b'\n').unwrap_or(raw.len());
        let mut end = raw.len();
        while end > start && raw[end - 1] == b' ' {
            end -= 1;
        }
        let line = &raw[start..end];
        if line.is_empty() && !overflow {
            return;
        }
        if overflow || line.len() < 2 || !line[..2].eq_ignore_ascii_case(b"AT") {
            self.cmd_names.push("<invalid>".to_string());
            self.out.extend_from_slice(b"\r\nERROR\r\n");
            return;
        }
        let name = command_name(line);
        self.cmd_names.push(name.clone());
        if !self.app_ready {
            self.out.extend_from_slice(b"\r\nERROR\r\n");
            return;
        }
        let upper = String::from_utf8_lossy(line).to_ascii_uppercase();
        let mut delay = None;
        let mut dropped = false;
        let mut deferred_dropped = false;
        let mut fail: Option<u16> = None;
        let mut between: Option<(usize, String)> = None;
        let mut after: Option<String> = None;
        let mut i = 0;
        while i < self.faults.len() {
            let take = match &self.faults[i] {
                Fault::Delay(p, _) => delay.is_none() && matches_prefix(&upper, p),
                Fault::Drop(p) => !dropped && matches_prefix(&upper, p),
                Fault::DropDeferred(p) => !deferred_dropped && matches_prefix(&upper, p),
                Fault::Fail(p, _) => fail.is_none() && matches_prefix(&upper, p),
                Fault::Inject(InjectPoint::BetweenLines { command_prefix, .. }, _) => {
                    between.is_none() && matches_prefix(&upper, command_prefix)
                }
                Fault::Inject(InjectPoint::AfterFinal { command_prefix }, _) => {
                    after.is_none() && matches_prefix(&upper, command_prefix)
                }
                Fault::Inject(InjectPoint::Now, _) => false,
            };
            if !take {
                i += 1;
                continue;
            }
            match self.faults.remove(i) {
                Fault::Delay(_, d) => delay = Some(d),
                Fault::Drop(_) => dropped = true,
                Fault::DropDeferred(_) => deferred_dropped = true,
                Fault::Fail(_, code) => fail = Some(code),
                Fault::Inject(InjectPoint::BetweenLines { after_line, .. }, t) => between = Some((after_line, t)),
                Fault::Inject(_, t) => after = Some(t),
            }
        }
        self.cur_silent = dropped || deferred_dropped;
        let tcpip = is_tcpip(&name);
        let result = match fail {
            Some(code) => Err(E::Tcp(code)),
            None => self.execute(now, line),
        };
        self.cur_silent = false;
        let mut pieces: Vec<Vec<u8>> = match result {
            Ok(o) => {
                if tcpip {
                    self.last_error = 0;
                }
                match o {
                    Outcome::Ok(lines) => render(lines, b"OK"),
                    Outcome::Final(lines, f) => render(lines, f.as_bytes()),
                    Outcome::Prompt => vec![b"\r\n> ".to_vec()],
                    Outcome::Silent => Vec::new(),
                }
            }
            Err(e) => vec![self.error_bytes(e)],
        };
        if let Some((k, t)) = between {
            let k = k.min(pieces.len());
            pieces.insert(k, framed(t.as_bytes()));
        }
        if let Some(t) = after {
            pieces.push(framed(t.as_bytes()));
        }
        if dropped {
            return;
        }
        let bytes = pieces.concat();
        match delay {
            Some(d) => self.hold = Some((now + d, bytes)),
            None => self.out.extend_from_slice(&bytes),
        }
        self.after_command(now);
    }

    /// Side effects that must follow the response (power down, reboot).
    fn after_command(&mut self, _now: Instant) {}

    fn error_bytes(&mut self, e: E) -> Vec<u8> {
        let (code, desc) = match e {
            E::Plain => return framed(b"ERROR"),
            E::Cme(c) => (c, cme_desc(c)),
            E::Tcp(c) => {
                self.last_error = c;
                if self.field_like() {
                    return framed(b"ERROR");
                }
                (c, err_desc(c))
            }
        };
        match self.cmee {
            0 => framed(b"ERROR"),
            1 => framed(format!("+CME ERROR: {code}").as_bytes()),
            _ => framed(format!("+CME ERROR: {desc}").as_bytes()),
        }
    }

    fn feed_prompt(&mut self, _at: Instant, b: u8) {
        let Mode::Prompt(st) = &mut self.mode else {
            return;
        };
        match st.kind {
            SendKind::Var => match b {
                CTRL_Z => self.finish_send(),
                ESC => {
                    self.mode = Mode::Command;
                    self.last_error = 571;
                    self.out.extend_from_slice(b"\r\nSEND FAIL\r\n");
                }
                _ => {
                    let limit = if st.hex { 2 * MAX_SEND } else { MAX_SEND };
                    if st.buf.len() < limit {
                        st.buf.push(b);
                    } else {
                        st.overflow = true;
                    }
                }
            },
            SendKind::Fixed(n) => {
                st.buf.push(b);
                let need = if st.hex { 2 * n } else { n };
                if st.buf.len() >= need {
                    self.finish_send();
                }
            }
        }
    }

    fn finish_send(&mut self) {
        let Mode::Prompt(st) = std::mem::replace(&mut self.mode, Mode::Command) else {
            return;
        };
        if self.qisde {
            self.out.extend_from_slice(&st.buf);
        }
        if st.overflow {
            let e = self.error_bytes(E::Tcp(552));
            self.out.extend_from_slice(&e);
            return;
        }
        let data = if st.hex {
            match at::hex_decode(&st.buf) {
                Some(d) => d,
                None => {
                    let e = self.error_bytes(E::Tcp(552));
                    self.out.extend_from_slice(&e);
                    return;
                }
            }
        } else {
            st.buf
        };
        let r = self.submit(st.id, st.token, data, st.to);
        self.out.extend_from_slice(&r);
    }

    /// Hands data to a socket: `SEND OK`, `SEND FAIL` or an error.
    fn submit(&mut self, id: u8, token: u64, data: Vec<u8>, to: Option<SocketAddr>) -> Vec<u8> {
        let cap = self.cfg.socket_tx_capacity;
        let ok = self.sock(id).is_some_and(|s| s.token == token && s.state == SocketState::Connected);
        if !ok {
            return self.error_bytes(E::Tcp(567));
        }
        if self.send_fail_next > 0 {
            self.send_fail_next -= 1;
            return framed(b"SEND FAIL");
        }
        let Some(s) = self.sock_mut(id) else {
            return framed(b"ERROR");
        };
        if s.unacked() + data.len() > cap {
            return framed(b"SEND FAIL");
        }
        let n = data.len() as u64;
        s.tx_total += n;
        if s.is_udp() {
            s.tx_acked += n;
        }
        if !data.is_empty() || s.is_udp() {
            self.actions.push(Action::Send { token, data, to });
        }
        framed(b"SEND OK")
    }

    fn feed_data(&mut self, at: Instant, id: u8, b: u8) {
        let guard = self.cfg.guard_time;
        if self.tp.plus > 0 {
            let in_window = self.tp.plus_start.is_some_and(|s| at.saturating_duration_since(s) <= guard);
            if b == b'+' && self.tp.plus < 3 && in_window {
                self.tp.plus += 1;
                self.tp.last_rx = Some(at);
                if self.tp.plus == 3 {
                    let t = at + guard;
                    self.tp.escape_at = Some(t);
                    self.timers.push((t, Timer::Escape));
                }
                return;
            }
            let n = self.tp.plus;
            self.tp.plus = 0;
            self.tp.escape_at = None;
            for _ in 0..n {
                self.tp_push(at, id, b'+');
            }
        }
        let silent_before = self.tp.last_rx.is_none_or(|l| at.saturating_duration_since(l) >= guard);
        if b == b'+' && silent_before {
            self.tp.plus = 1;
            self.tp.plus_start = Some(at);
            self.tp.last_rx = Some(at);
            // Releases the pluses as data if the escape is not completed in time.
            self.timers.push((at + guard + Duration::from_millis(1), Timer::Escape));
            return;
        }
        self.tp.last_rx = Some(at);
        self.tp_push(at, id, b);
    }

    fn tp_push(&mut self, at: Instant, _id: u8, b: u8) {
        self.tp.buf.push(b);
        if self.tp.buf.len() >= self.qicfg.transpktsize as usize {
            self.tp.flush_at = None;
            self.tp_send();
        } else {
            // One pending flush timer at most; it re-arms itself if the deadline moved.
            let t = at + Duration::from_millis(100 * u64::from(self.qicfg.transwaittm));
            if self.tp.flush_at.replace(t).is_none() {
                self.timers.push((t, Timer::TpFlush));
            }
        }
    }

    fn tp_send(&mut self) {
        let Mode::Data(id) = self.mode else {
            self.tp.buf.clear();
            return;
        };
        if self.tp.buf.is_empty() {
            return;
        }
        let data = std::mem::take(&mut self.tp.buf);
        let Some(s) = self.sock_mut(id) else { return };
        if s.state != SocketState::Connected {
            return;
        }
        let n = data.len() as u64;
        s.tx_total += n;
        if s.is_udp() {
            s.tx_acked += n;
        }
        let token = s.token;
        self.actions.push(Action::Send { token, data, to: None });
    }

    /// `+++` recognised: leave data mode, socket to buffer mode.
    fn escape(&mut self, _now: Instant) {
        let Mode::Data(id) = self.mode else { return };
        self.tp.plus = 0;
        self.tp.escape_at = None;
        self.tp.flush_at = None;
        self.tp_send();
        self.mode = Mode::Command;
        self.out.extend_from_slice(b"\r\nOK\r\n");
        let Some(s) = self.sock_mut(id) else { return };
        s.mode = AccessMode::Buffer;
        s.urc_armed = true;
        let (len, token, closed) = (s.rx_len, s.token, s.peer_closed);
        self.last_transparent = Some((id, token));
        if len > 0 {
            self.notify_arrival(id, len);
        }
        if closed {
            self.urc(format!("+QIURC: \"closed\",{id}").as_bytes());
        }
    }

    // ------------------------------------------------------------------ commands

    fn execute(&mut self, now: Instant, cmd: &[u8]) -> R {
        let rest = &cmd[2..];
        if rest.is_empty() {
            return Ok(Outcome::Ok(vec![]));
        }
        let tail = &rest[1..];
        match rest[0].to_ascii_uppercase() {
            b'+' => self.extended(now, tail),
            b'E' => match tail {
                b"" | b"0" => {
                    self.echo = false;
                    Ok(Outcome::Ok(vec![]))
                }
                b"1" => {
                    self.echo = true;
                    Ok(Outcome::Ok(vec![]))
                }
                _ => Err(E::Plain),
            },
            b'I' => match tail {
                b"" | b"0" => Ok(Outcome::Ok(vec![
                    b"Quectel".to_vec(),
                    b"BG96".to_vec(),
                    line(format!("Revision: {}", self.cfg.firmware)),
                ])),
                _ => Err(E::Plain),
            },
            b'O' => match tail {
                b"" | b"0" => Ok(self.ato()),
                _ => Err(E::Plain),
            },
            b'Z' | b'V' | b'Q' => match (rest[0].to_ascii_uppercase(), tail) {
                (b'Z', b"" | b"0") | (b'V', b"1") | (b'Q', b"0") => Ok(Outcome::Ok(vec![])),
                _ => Err(E::Plain),
            },
            b'&' => {
                let t = String::from_utf8_lossy(tail).to_ascii_uppercase();
                match t.as_str() {
                    "D" | "D0" | "D1" | "D2" | "F" | "F0" | "W" | "W0" | "C" | "C0" | "C1" => Ok(Outcome::Ok(vec![])),
                    _ => Err(E::Plain),
                }
            }
            _ => self.unknown(cmd),
        }
    }

    fn unknown(&self, line: &[u8]) -> R {
        let is_write = line.contains(&b'=') && !line.ends_with(b"=?");
        if self.lenient() && is_write { Ok(Outcome::Ok(vec![])) } else { Err(E::Plain) }
    }

    fn extended(&mut self, now: Instant, body: &[u8]) -> R {
        let name_len = body.iter().position(|&b| b == b'=' || b == b'?').unwrap_or(body.len());
        let name = String::from_utf8_lossy(&body[..name_len]).to_ascii_uppercase();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(E::Plain);
        }
        let Some(form) = at::parse_form(&body[name_len..], self.lenient()) else {
            return if is_tcpip(&format!("AT+{name}")) { Err(E::Tcp(552)) } else { Err(E::Plain) };
        };
        let mut full = b"AT+".to_vec();
        full.extend_from_slice(body);
        match name.as_str() {
            "CMEE" => self.cmd_cmee(form),
            "CPIN" => match form {
                Form::Read => Ok(Outcome::Ok(vec![b"+CPIN: READY".to_vec()])),
                Form::Test => Ok(Outcome::Ok(vec![])),
                Form::Write(_) => Err(E::Cme(3)),
                Form::Exec => Err(E::Plain),
            },
            "CREG" => self.cmd_reg(form, 0, "CREG"),
            "CGREG" => self.cmd_reg(form, 1, "CGREG"),
            "CEREG" => self.cmd_reg(form, 2, "CEREG"),
            "QGMR" | "GMR" | "CGMR" => match form {
                Form::Exec => Ok(Outcome::Ok(vec![line(self.cfg.firmware.clone())])),
                Form::Test => Ok(Outcome::Ok(vec![])),
                _ => Err(E::Plain),
            },
            "CGMI" | "GMI" => simple_info(form, "Quectel"),
            "CGMM" | "GMM" => simple_info(form, "BG96"),
            "CGSN" | "GSN" => simple_info(form, "866425030000001"),
            "QURCCFG" => self.cmd_qurccfg(form),
            "CFUN" => self.cmd_cfun(now, form),
            "QPOWD" => self.cmd_qpowd(now, form),
            "IFC" => self.cmd_ifc(form),
            "CCLK" => self.cmd_cclk(now, form),
            "QIGETERROR" => match form {
                Form::Exec => Ok(Outcome::Ok(vec![line(format!(
                    "+QIGETERROR: {},{}",
                    self.last_error,
                    err_desc(self.last_error)
                ))])),
                Form::Test => Ok(Outcome::Ok(vec![])),
                _ => Err(E::Plain),
            },
            "QICSGP" => self.cmd_qicsgp(form),
            "QIACT" => self.cmd_qiact(form),
            "QIDEACT" => self.cmd_qideact(now, form),
            "QIOPEN" => self.cmd_qiopen(now, form),
            "QICLOSE" => self.cmd_qiclose(form),
            "QISTATE" => self.cmd_qistate(form),
            "QISEND" => self.cmd_qisend(form),
            "QIRD" => self.cmd_qird(form),
            "QISENDEX" => self.cmd_qisendex(form),
            "QISWTMD" => self.cmd_qiswtmd(form),
            "QPING" => self.cmd_qping(now, form),
            "QNTP" => self.cmd_qntp(now, form),
            "QIDNSCFG" => self.cmd_qidnscfg(form),
            "QIDNSGIP" => self.cmd_qidnsgip(now, form),
            "QICFG" => self.cmd_qicfg(form),
            "QISDE" => match form {
                Form::Test => Ok(Outcome::Ok(vec![b"+QISDE: (0,1)".to_vec()])),
                Form::Read => Ok(Outcome::Ok(vec![line(format!("+QISDE: {}", u8::from(self.qisde)))])),
                Form::Write(a) => {
                    if a.len() != 1 {
                        return Err(E::Tcp(552));
                    }
                    self.qisde = tcp(a.req(0, 0, 1))? == 1;
                    Ok(Outcome::Ok(vec![]))
                }
                Form::Exec => Err(E::Tcp(552)),
            },
            _ => self.unknown(&full),
        }
    }

    fn cmd_cmee(&mut self, form: Form) -> R {
        match form {
            Form::Test => Ok(Outcome::Ok(vec![b"+CMEE: (0-2)".to_vec()])),
            Form::Read => Ok(Outcome::Ok(vec![line(format!("+CMEE: {}", self.cmee))])),
            Form::Write(a) => {
                if a.len() != 1 {
                    return Err(E::Cme(50));
                }
                self.cmee = gp(a.req(0, 0, 2))? as u8;
                Ok(Outcome::Ok(vec![]))
            }
            Form::Exec => {
                self.cmee = 0;
                Ok(Outcome::Ok(vec![]))
            }
        }
    }

    fn cmd_reg(&mut self, form: Form, idx: usize, name: &str) -> R {
        match form {
            Form::Test => Ok(Outcome::Ok(vec![line(format!("+{name}: (0-2)"))])),
            Form::Read => {
                let stat = if self.cfun == 1 { 1 } else { 0 };
                Ok(Outcome::Ok(vec![line(format!("+{name}: {},{stat}", self.reg_n[idx]))]))
            }
            Form::Write(a) => {
                if a.len() != 1 {
                    return Err(E::Cme(50));
                }
                self.reg_n[idx] = gp(a.req(0, 0, 2))? as u8;
                Ok(Outcome::Ok(vec![]))
            }
            Form::Exec => Err(E::Plain),
        }
    }

    fn cmd_qurccfg(&mut self, form: Form) -> R {
        match form {
            Form::Test => Ok(Outcome::Ok(vec![b"+QURCCFG: \"urcport\",(\"usbat\",\"usbmodem\",\"uart1\")".to_vec()])),
            Form::Write(a) => {
                let opt = gp(a.req_str(0))?;
                if !opt.eq_ignore_ascii_case("urcport") || a.len() > 2 {
                    return Err(E::Cme(50));
                }
                match gp(a.string(1))? {
                    None => Ok(Outcome::Ok(vec![line(format!("+QURCCFG: \"urcport\",\"{}\"", self.urcport))])),
                    Some(p) => {
                        let p = p.to_ascii_lowercase();
                        if !["usbat", "usbmodem", "uart1"].contains(&p.as_str()) {
                            return Err(E::Cme(50));
                        }
                        self.urcport = p;
                        Ok(Outcome::Ok(vec![]))
                    }
                }
            }
            _ => Err(E::Plain),
        }
    }

    fn cmd_cfun(&mut self, now: Instant, form: Form) -> R {
        match form {
            Form::Test => Ok(Outcome::Ok(vec![b"+CFUN: (0,1,4),(0-1)".to_vec()])),
            Form::Read => Ok(Outcome::Ok(vec![line(format!("+CFUN: {}", self.cfun))])),
            Form::Write(a) => {
                if a.len() > 2 {
                    return Err(E::Cme(50));
                }
                let fun = gp(a.req(0, 0, 4))?;
                if fun == 2 || fun == 3 {
                    return Err(E::Cme(50));
                }
                let rst = gp(a.opt(1, 0, 1, 0))?;
                if rst == 1 {
                    if fun != 1 {
                        return Err(E::Cme(50));
                    }
                    // OK, pdpdeact for active contexts, then the reboot (field note 15).
                    let mut bytes = framed(b"OK");
                    for cid in self.active_contexts() {
                        bytes.extend_from_slice(&framed(format!("+QIURC: \"pdpdeact\",{cid}").as_bytes()));
                    }
                    self.flush_urcs();
                    self.out.extend_from_slice(&bytes);
                    self.reboot(now);
                    return Ok(Outcome::Silent);
                }
                self.cfun = fun as u8;
                if fun != 1 {
                    for cid in self.active_contexts() {
                        self.pdp_deact(now, cid);
                    }
                }
                Ok(Outcome::Ok(vec![]))
            }
            Form::Exec => Err(E::Plain),
        }
    }

    fn cmd_qpowd(&mut self, now: Instant, form: Form) -> R {
        let normal = match form {
            Form::Test => return Ok(Outcome::Ok(vec![b"+QPOWD: (0,1)".to_vec()])),
            Form::Exec => true,
            Form::Write(a) => {
                if a.len() != 1 {
                    return Err(E::Cme(50));
                }
                gp(a.req(0, 0, 1))? == 1
            }
            Form::Read => return Err(E::Plain),
        };
        self.flush_urcs();
        if normal {
            self.out.extend_from_slice(b"\r\nOK\r\n");
        }
        self.out.extend_from_slice(b"\r\nPOWERED DOWN\r\n");
        self.reset_state(now);
        self.power = Power::Off;
        self.app_ready = false;
        Ok(Outcome::Silent)
    }

    fn cmd_ifc(&mut self, form: Form) -> R {
        match form {
            Form::Test => Ok(Outcome::Ok(vec![b"+IFC: (0,2),(0,2)".to_vec()])),
            Form::Read => Ok(Outcome::Ok(vec![line(format!("+IFC: {},{}", self.ifc.0, self.ifc.1))])),
            Form::Write(a) => {
                if a.len() > 2 {
                    return Err(E::Cme(50));
                }
                let dce = gp(a.req(0, 0, 2))?;
                let dte = gp(a.opt(1, 0, 2, dce))?;
                if dce == 1 || dte == 1 {
                    return Err(E::Cme(50));
                }
                self.ifc = (dce as u8, dte as u8);
                Ok(Outcome::Ok(vec![]))
            }
            Form::Exec => Err(E::Plain),
        }
    }

    fn clock_now(&self, now: Instant) -> i64 {
        self.clock.1 + now.saturating_duration_since(self.clock.0).as_secs() as i64
    }

    fn cmd_cclk(&mut self, now: Instant, form: Form) -> R {
        match form {
            Form::Test => Ok(Outcome::Ok(vec![])),
            Form::Read => {
                let tz = self.clock.2;
                let (y, mo, d, h, mi, s) = at::split_time(self.clock_now(now) + i64::from(tz) * 900);
                let sign = if tz < 0 { '-' } else { '+' };
                Ok(Outcome::Ok(vec![line(format!(
                    "+CCLK: \"{:02}/{mo:02}/{d:02},{h:02}:{mi:02}:{s:02}{sign}{:02}\"",
                    y.rem_euclid(100),
                    tz.abs()
                ))]))
            }
            Form::Write(a) => {
                let s = gp(a.req_str(0))?;
                let (unix, tz) = at::parse_cclk(&s).ok_or(E::Cme(50))?;
                self.clock = (now, unix, tz);
                Ok(Outcome::Ok(vec![]))
            }
            Form::Exec => Err(E::Plain),
        }
    }

    fn cmd_qicsgp(&mut self, form: Form) -> R {
        match form {
            Form::Test => Ok(Outcome::Ok(vec![b"+QICSGP: (1-16),(1-3),<APN>,<username>,<password>,(0-3)".to_vec()])),
            Form::Write(a) => {
                let cid = tcp(a.req(0, 1, 16))? as usize;
                let n = a.len();
                if n == 1 {
                    let c = &self.contexts[cid - 1];
                    return Ok(Outcome::Ok(vec![line(format!(
                        "+QICSGP: {},\"{}\",\"{}\",\"{}\",{}",
                        c.ctype, c.apn, c.user, c.pass, c.auth
                    ))]));
                }
                if !(n == 3 || n == 5 || n == 6) {
                    return Err(E::Tcp(552));
                }
                let ctype = tcp(a.req(1, 1, 3))? as u8;
                let apn = tcp(a.req_str(2))?;
                let (user, pass) =
                    if n >= 5 { (tcp(a.req_str(3))?, tcp(a.req_str(4))?) } else { (String::new(), String::new()) };
                let auth = if n == 6 { tcp(a.req(5, 0, 3))? as u8 } else { 0 };
                if apn.len() > 99 || user.len() > 127 || pass.len() > 127 {
                    return Err(E::Tcp(552));
                }
                let c = &mut self.contexts[cid - 1];
                c.ctype = ctype;
                c.apn = apn;
                c.user = user;
                c.pass = pass;
                c.auth = auth;
                Ok(Outcome::Ok(vec![]))
            }
            _ => Err(E::Tcp(552)),
        }
    }

    fn cmd_qiact(&mut self, form: Form) -> R {
        match form {
            Form::Test => Ok(Outcome::Ok(vec![b"+QIACT: (1-16)".to_vec()])),
            Form::Read => {
                let ip = self.cfg.context_ip;
                let mut lines = Vec::new();
                for (i, c) in self.contexts.iter().enumerate() {
                    if c.active {
                        let t = match (c.ctype, ip) {
                            (3, IpAddr::V4(_)) => 1,
                            (3, IpAddr::V6(_)) => 2,
                            (t, _) => t,
                        };
                        lines.push(line(format!("+QIACT: {},1,{t},\"{ip}\"", i + 1)));
                    }
                }
                Ok(Outcome::Ok(lines))
            }
            Form::Write(a) => {
                if a.len() != 1 {
                    return Err(E::Tcp(552));
                }
                let cid = tcp(a.req(0, 1, 16))? as usize;
                if self.cfun != 1 || self.contexts[cid - 1].active {
                    return Err(E::Tcp(561));
                }
                if self.active_contexts().len() >= MAX_ACTIVE_CTX {
                    return Err(E::Tcp(561));
                }
                self.contexts[cid - 1].active = true;
                Ok(Outcome::Ok(vec![]))
            }
            Form::Exec => Err(E::Tcp(552)),
        }
    }

    fn cmd_qideact(&mut self, now: Instant, form: Form) -> R {
        match form {
            Form::Test => Ok(Outcome::Ok(vec![b"+QIDEACT: (1-16)".to_vec()])),
            Form::Write(a) => {
                if a.len() != 1 {
                    return Err(E::Tcp(552));
                }
                let cid = tcp(a.req(0, 1, 16))? as u8;
                self.contexts[usize::from(cid) - 1].active = false;
                let _ = now;
                for id in 0..NUM_SOCKS as u8 {
                    if self.sock(id).is_some_and(|s| s.cid == cid) {
                        self.free_sock(id);
                    }
                }
                Ok(Outcome::Ok(vec![]))
            }
            _ => Err(E::Tcp(552)),
        }
    }

    /// A deferred `+QIOPEN: <id>,<err>` for a failure detected at once.
    fn defer_open_error(&mut self, now: Instant, id: u8, code: u16, transparent: bool) -> R {
        if transparent {
            return Err(E::Tcp(code));
        }
        let at = now + self.deferred();
        self.timers.push((
            at,
            Timer::Urc {
                bytes: framed(format!("+QIOPEN: {id},{code}").as_bytes()),
                silent: self.cur_silent,
                err: Some(code),
            },
        ));
        Ok(Outcome::Ok(vec![]))
    }

    /// An open that fails after its `OK` (no usable context, an unknown host): like the modem,
    /// the connectID stays taken ("Opening" in `AT+QISTATE`, 563 for another `AT+QIOPEN` on
    /// it) until `+QIOPEN: <id>,<code>` reports the failure and frees it.
    fn defer_open_failure(
        &mut self,
        now: Instant,
        id: u8,
        code: u16,
        (service, cid, mode): (ServiceType, u8, AccessMode),
    ) -> R {
        if mode == AccessMode::Transparent {
            return Err(E::Tcp(code));
        }
        let s = self.new_sock(now, service, cid, mode, None);
        let token = s.token;
        if let Some(slot) = self.socks.get_mut(usize::from(id)) {
            *slot = Some(s);
        }
        self.timers.push((now + self.deferred(), Timer::Announce { id, token, code }));
        Ok(Outcome::Ok(vec![]))
    }

    fn cmd_qiopen(&mut self, now: Instant, form: Form) -> R {
        let a = match form {
            Form::Test => {
                return Ok(Outcome::Ok(vec![
                    b"+QIOPEN: (1-16),(0-11),\"TCP/UDP/TCP LISTENER/UDP SERVICE\",\"<IP_address>/<domain_name>\",<remote_port>,<local_port>,(0-2)".to_vec(),
                ]));
            }
            Form::Write(a) => a,
            _ => return Err(E::Tcp(552)),
        };
        if a.len() < 5 || a.len() > 7 {
            return Err(E::Tcp(552));
        }
        let cid = tcp(a.req(0, 1, 16))? as u8;
        let id = tcp(a.req(1, 0, 11))? as u8;
        let st = tcp(a.req_str(2))?;
        let service = match st.to_ascii_uppercase().as_str() {
            "TCP" => ServiceType::Tcp,
            "UDP" => ServiceType::Udp,
            "TCP LISTENER" => ServiceType::TcpListener,
            "UDP SERVICE" => ServiceType::UdpService,
            _ => return Err(E::Tcp(552)),
        };
        let host = tcp(a.req_str(3))?;
        let rport = tcp(a.req(4, 0, 65535))? as u16;
        let server = matches!(service, ServiceType::TcpListener | ServiceType::UdpService);
        if server && !a.has(5) {
            return Err(E::Tcp(552));
        }
        let lport = tcp(a.opt(5, 0, 65535, 0))? as u16;
        let mode_n = tcp(a.opt(6, 0, 2, 0))?;
        let mode = AccessMode::from_number(mode_n).ok_or(E::Tcp(552))?;
        if server && mode == AccessMode::Transparent {
            return Err(E::Tcp(552));
        }
        if host.len() > 255 {
            return Err(E::Tcp(552));
        }
        let transparent = mode == AccessMode::Transparent;
        if self.sock(id).is_some() {
            return self.defer_open_error(now, id, 563, transparent);
        }
        if !self.context_usable(cid) {
            return self.defer_open_failure(now, id, 561, (service, cid, mode));
        }
        let remote = if server {
            None
        } else {
            match self.resolve(&host) {
                Some(ips) => Some(SocketAddr::new(ips[0], rport)),
                None => return self.defer_open_failure(now, id, 565, (service, cid, mode)),
            }
        };
        let mut s = self.new_sock(now, service, cid, mode, remote);
        if server {
            s.server_id = Some(id);
        }
        let token = s.token;
        self.socks[usize::from(id)] = Some(s);
        let action = match (service, remote) {
            (ServiceType::Tcp, Some(addr)) => Action::TcpConnect { token, addr },
            (ServiceType::Udp, Some(remote)) => Action::UdpOpen { token, remote, local_port: lport },
            (ServiceType::TcpListener, _) => Action::TcpListen { token, port: lport },
            _ => Action::UdpBind { token, port: lport },
        };
        self.actions.push(action);
        if transparent {
            self.mode = Mode::WaitConnect(id);
            return Ok(Outcome::Silent);
        }
        Ok(Outcome::Ok(vec![]))
    }

    fn cmd_qiclose(&mut self, form: Form) -> R {
        match form {
            Form::Test => Ok(Outcome::Ok(vec![b"+QICLOSE: (0-11),(0-65535)".to_vec()])),
            Form::Write(a) => {
                if a.len() > 2 {
                    return Err(E::Tcp(552));
                }
                let id = tcp(a.req(0, 0, 11))? as u8;
                tcp(a.opt(1, 0, 65535, 10))?;
                self.free_sock(id);
                Ok(Outcome::Ok(vec![]))
            }
            _ => Err(E::Tcp(552)),
        }
    }

    fn qistate_line(&self, id: u8, s: &Sock) -> Vec<u8> {
        let (ip, rport) = match s.service {
            ServiceType::TcpListener | ServiceType::UdpService => (self.cfg.context_ip, 0),
            _ => s.remote.map(|r| (r.ip(), r.port())).unwrap_or((self.cfg.context_ip, 0)),
        };
        let lport = s.local.map(|l| l.port()).unwrap_or(0);
        let server = s.server_id.unwrap_or(0);
        let port = if self.field_like() { "uart1" } else { "usbmodem" };
        line(format!(
            "+QISTATE: {id},\"{}\",\"{ip}\",{rport},{lport},{},{},{server},{},\"{port}\"",
            s.service.as_str(),
            s.state.number(),
            s.cid,
            s.mode.number()
        ))
    }

    fn cmd_qistate(&mut self, form: Form) -> R {
        let filter: SockFilter = match form {
            Form::Test => return Ok(Outcome::Ok(vec![])),
            Form::Read | Form::Exec => Box::new(|_, _| true),
            Form::Write(a) => {
                if a.len() != 2 {
                    return Err(E::Tcp(552));
                }
                match tcp(a.req(0, 0, 1))? {
                    0 => {
                        let cid = tcp(a.req(1, 1, 16))? as u8;
                        Box::new(move |_, s: &Sock| s.cid == cid)
                    }
                    _ => {
                        let want = tcp(a.req(1, 0, 11))? as u8;
                        Box::new(move |id, _| id == want)
                    }
                }
            }
        };
        let mut lines = Vec::new();
        for (i, s) in self.socks.iter().enumerate() {
            if let Some(s) = s {
                if filter(i as u8, s) {
                    lines.push(self.qistate_line(i as u8, s));
                }
            }
        }
        Ok(Outcome::Ok(lines))
    }

    fn cmd_qisend(&mut self, form: Form) -> R {
        let a = match form {
            Form::Test => return Ok(Outcome::Ok(vec![b"+QISEND: (0-11),(0-1460)".to_vec()])),
            Form::Write(a) => a,
            _ => return Err(E::Tcp(552)),
        };
        if a.len() > 4 || a.len() == 3 {
            return Err(E::Tcp(552));
        }
        let id = tcp(a.req(0, 0, 11))? as u8;
        let len = tcp(a.num(1))?;
        let Some(s) = self.sock(id) else {
            return Err(E::Tcp(552));
        };
        if s.service == ServiceType::TcpListener {
            return Err(E::Tcp(552));
        }
        if a.len() == 2 && len == Some(0) {
            let acked = s.hold_acks.unwrap_or(s.tx_acked);
            return Ok(Outcome::Ok(vec![line(format!("+QISEND: {},{},{}", s.tx_total, acked, s.tx_total - acked))]));
        }
        match s.state {
            SocketState::Connected => {}
            SocketState::Closing => return Err(E::Tcp(567)),
            _ => return Err(E::Tcp(552)),
        }
        let (kind, to) = if s.service == ServiceType::UdpService {
            if a.len() != 4 {
                return Err(E::Tcp(552));
            }
            let n = tcp(a.req(1, 1, MAX_SEND as u32))? as usize;
            let ip: IpAddr = tcp(a.req_str(2))?.parse().map_err(|_| E::Tcp(552))?;
            let port = tcp(a.req(3, 0, 65535))? as u16;
            (SendKind::Fixed(n), Some(SocketAddr::new(ip, port)))
        } else {
            match a.len() {
                1 => (SendKind::Var, None),
                2 => (SendKind::Fixed(tcp(a.req(1, 1, MAX_SEND as u32))? as usize), None),
                _ => return Err(E::Tcp(552)),
            }
        };
        let token = s.token;
        self.mode =
            Mode::Prompt(SendState { id, token, kind, buf: Vec::new(), to, hex: self.qicfg.send_hex, overflow: false });
        Ok(Outcome::Prompt)
    }

    fn cmd_qisendex(&mut self, form: Form) -> R {
        let a = match form {
            Form::Test => {
                return Ok(Outcome::Ok(vec![b"+QISENDEX: (0-11),<hex_string>".to_vec()]));
            }
            Form::Write(a) => a,
            _ => return Err(E::Tcp(552)),
        };
        if a.len() != 2 {
            return Err(E::Tcp(552));
        }
        let id = tcp(a.req(0, 0, 11))? as u8;
        let hex = tcp(a.string(1))?.unwrap_or_default();
        let Some(s) = self.sock(id) else {
            return Err(E::Tcp(552));
        };
        if matches!(s.service, ServiceType::TcpListener | ServiceType::UdpService) {
            return Err(E::Tcp(552));
        }
        match s.state {
            SocketState::Connected => {}
            SocketState::Closing => return Err(E::Tcp(567)),
            _ => return Err(E::Tcp(552)),
        }
        if hex.is_empty() {
            return Ok(Outcome::Final(vec![], "SEND FAIL"));
        }
        if hex.len() > 2 * MAX_SENDEX {
            return Err(E::Tcp(552));
        }
        let data = at::hex_decode(hex.as_bytes()).ok_or(E::Tcp(552))?;
        let token = s.token;
        let r = self.submit(id, token, data, None);
        // submit() returns framed bytes; translate into an outcome.
        match r.as_slice() {
            b"\r\nSEND OK\r\n" => Ok(Outcome::Final(vec![], "SEND OK")),
            b"\r\nSEND FAIL\r\n" => Ok(Outcome::Final(vec![], "SEND FAIL")),
            _ => Err(E::Tcp(567)),
        }
    }

    fn cmd_qird(&mut self, form: Form) -> R {
        let a = match form {
            Form::Test => return Ok(Outcome::Ok(vec![b"+QIRD: (0-11),(0-1500)".to_vec()])),
            Form::Write(a) => a,
            _ => return Err(E::Tcp(552)),
        };
        if a.len() > 2 {
            return Err(E::Tcp(552));
        }
        let id = tcp(a.req(0, 0, 11))? as u8;
        let len = tcp(a.num(1))?;
        if len.is_some_and(|l| l as usize > MAX_READ) {
            return Err(E::Tcp(552));
        }
        let (recv_hex, viewmode) = (self.qicfg.recv_hex, self.qicfg.viewmode);
        let Some(s) = self.socks.get_mut(usize::from(id)).and_then(|s| s.as_mut()) else {
            return Err(E::Tcp(552));
        };
        if s.service == ServiceType::TcpListener {
            return Err(E::Tcp(552));
        }
        if len == Some(0) {
            return Ok(Outcome::Ok(vec![line(format!("+QIRD: {},{},{}", s.rx_total, s.rx_read, s.rx_len))]));
        }
        let max = len.map(|l| l as usize).unwrap_or(MAX_READ);
        let mut data = Vec::new();
        let mut from = None;
        if s.is_udp() {
            if let Some(front) = s.rx.front_mut() {
                let avail = front.data.len() - front.pos;
                let n = avail.min(max);
                data.extend_from_slice(&front.data[front.pos..front.pos + n]);
                front.pos += n;
                from = front.from;
                if front.pos >= front.data.len() {
                    s.rx.pop_front();
                }
            }
        } else {
            while data.len() < max {
                let Some(front) = s.rx.front_mut() else { break };
                let n = (front.data.len() - front.pos).min(max - data.len());
                data.extend_from_slice(&front.data[front.pos..front.pos + n]);
                front.pos += n;
                if front.pos >= front.data.len() {
                    s.rx.pop_front();
                }
            }
        }
        let n = data.len();
        s.rx_len -= n;
        s.rx_read += n as u64;
        if s.rx_len == 0 {
            s.urc_armed = true;
        }
        let token = s.token;
        let is_service = s.service == ServiceType::UdpService;
        if n > 0 {
            self.actions.push(Action::Credit { token, n });
        }
        let got_datagram = is_service && from.is_some();
        let mut head = format!("+QIRD: {n}");
        if got_datagram {
            if let Some(f) = from {
                let _ = write!(head, ",\"{}\",{}", f.ip(), f.port());
            }
        }
        if n == 0 {
            // No data line at all, also for a zero-length datagram.
            return Ok(Outcome::Ok(vec![line(head)]));
        }
        let payload = if recv_hex { at::hex_encode(&data) } else { data };
        if viewmode == 1 {
            let mut l = head.into_bytes();
            l.push(b',');
            l.extend_from_slice(&payload);
            Ok(Outcome::Ok(vec![l]))
        } else {
            Ok(Outcome::Ok(vec![line(head), payload]))
        }
    }

    fn cmd_qiswtmd(&mut self, form: Form) -> R {
        let a = match form {
            Form::Test => return Ok(Outcome::Ok(vec![b"+QISWTMD: (0-11),(0-2)".to_vec()])),
            Form::Write(a) => a,
            _ => return Err(E::Tcp(552)),
        };
        if a.len() != 2 {
            return Err(E::Tcp(552));
        }
        let id = tcp(a.req(0, 0, 11))? as u8;
        let mode = AccessMode::from_number(tcp(a.req(1, 0, 2))?).ok_or(E::Tcp(552))?;
        let Some(s) = self.sock_mut(id) else {
            return Err(E::Tcp(552));
        };
        if !s.announced {
            return Err(E::Tcp(552));
        }
        match mode {
            AccessMode::Transparent => {
                if !matches!(s.service, ServiceType::Tcp | ServiceType::Udp | ServiceType::TcpIncoming)
                    || s.state != SocketState::Connected
                {
                    return Err(E::Tcp(552));
                }
                self.enter_data(id);
                Ok(Outcome::Final(vec![], "CONNECT"))
            }
            m => {
                s.mode = m;
                if m == AccessMode::Buffer {
                    s.urc_armed = true;
                    let len = s.rx_len;
                    if len > 0 {
                        self.notify_arrival(id, len);
                    }
                }
                Ok(Outcome::Ok(vec![]))
            }
        }
    }

    fn ato(&mut self) -> Outcome {
        let Some((id, token)) = self.last_transparent else {
            return Outcome::Final(vec![], "NO CARRIER");
        };
        let ok = self.sock(id).is_some_and(|s| s.token == token && s.state == SocketState::Connected);
        if !ok {
            return Outcome::Final(vec![], "NO CARRIER");
        }
        self.enter_data(id);
        Outcome::Final(vec![], "CONNECT")
    }

    fn cmd_qping(&mut self, now: Instant, form: Form) -> R {
        let a = match form {
            Form::Test => {
                return Ok(Outcome::Ok(vec![b"+QPING: (1-16),<host>,(1-255),(1-10)".to_vec()]));
            }
            Form::Write(a) => a,
            _ => return Err(E::Tcp(552)),
        };
        if a.len() < 2 || a.len() > 4 {
            return Err(E::Tcp(552));
        }
        let cid = tcp(a.req(0, 1, 16))? as u8;
        let host = tcp(a.req_str(1))?;
        let timeout = tcp(a.opt(2, 1, 255, 4))?;
        let num = tcp(a.opt(3, 1, 10, 4))?;
        if host.is_empty() || host.len() > 255 {
            return Err(E::Tcp(552));
        }
        if self.ping.is_some() {
            return Err(E::Tcp(568));
        }
        if !self.context_usable(cid) {
            return Err(E::Tcp(561));
        }
        let silent = self.cur_silent;
        let Some(ips) = self.resolve(&host) else {
            self.timers
                .push((now + self.deferred(), Timer::Urc { bytes: framed(b"+QPING: 565"), silent, err: Some(565) }));
            return Ok(Outcome::Ok(vec![]));
        };
        let ip = ips[0];
        let reachable =
            ip.is_loopback() || ip == self.cfg.context_ip || self.cfg.dns.iter().any(|(_, v)| v.contains(&ip));
        let rtt = self.deferred().max(Duration::from_millis(1));
        let timeout = Duration::from_secs(u64::from(timeout));
        let first = now + if reachable { rtt } else { timeout };
        self.ping =
            Some(Ping { ip, reachable, total: num, sent: 0, times: Vec::new(), timeout, rtt, req_at: now, silent });
        self.timers.push((first, Timer::Ping));
        Ok(Outcome::Ok(vec![]))
    }

    fn ping_step(&mut self, now: Instant) {
        let Some(p) = self.ping.as_mut() else { return };
        p.sent += 1;
        let text = if p.reachable {
            let ms = now.saturating_duration_since(p.req_at).as_millis() as u64;
            p.times.push(ms);
            format!("+QPING: 0,\"{}\",32,{ms},255", p.ip)
        } else {
            "+QPING: 569".to_string()
        };
        let silent = p.silent;
        let mut bytes = framed(text.as_bytes());
        let mut fin = None;
        if p.sent < p.total {
            p.req_at = now;
            let next = now + if p.reachable { p.rtt } else { p.timeout };
            self.timers.push((next, Timer::Ping));
        } else {
            let rcvd = p.times.len() as u32;
            let summary = if rcvd == 0 {
                fin = Some(569);
                "+QPING: 569".to_string()
            } else {
                fin = Some(0);
                let min = p.times.iter().copied().min().unwrap_or(0);
                let max = p.times.iter().copied().max().unwrap_or(0);
                let avg = p.times.iter().sum::<u64>() / u64::from(rcvd);
                format!("+QPING: 0,{},{rcvd},{},{min},{max},{avg}", p.sent, p.sent - rcvd)
            };
            bytes.extend_from_slice(&framed(summary.as_bytes()));
        }
        if let Some(code) = fin {
            self.ping = None;
            self.last_error = code;
        }
        if !silent {
            self.urc_raw(bytes);
        }
    }

    fn cmd_qntp(&mut self, now: Instant, form: Form) -> R {
        let a = match form {
            Form::Test => {
                return Ok(Outcome::Ok(vec![b"+QNTP: (1-16),<server>,(1-65535),(0,1)".to_vec()]));
            }
            Form::Read => {
                return Ok(Outcome::Ok(match &self.ntp {
                    Some(n) => vec![line(format!("+QNTP: \"{}\",{}", n.server, n.port))],
                    None => vec![],
                }));
            }
            Form::Write(a) => a,
            Form::Exec => return Err(E::Tcp(552)),
        };
        if a.len() < 2 || a.len() > 4 {
            return Err(E::Tcp(552));
        }
        let cid = tcp(a.req(0, 1, 16))? as u8;
        let server = tcp(a.req_str(1))?;
        let port = tcp(a.opt(2, 1, 65535, 123))? as u16;
        let autoset = tcp(a.opt(3, 0, 1, 1))? == 1;
        if server.is_empty() || server.len() > 255 {
            return Err(E::Tcp(552));
        }
        if self.ntp.is_some() {
            return Err(E::Tcp(568));
        }
        if !self.context_usable(cid) {
            return Err(E::Tcp(561));
        }
        let silent = self.cur_silent;
        let token = self.token();
        self.ntp = Some(Ntp { token, server: server.clone(), port, autoset, silent, started: now });
        match self.resolve(&server) {
            Some(ips) => self.actions.push(Action::Ntp { token, server: SocketAddr::new(ips[0], port) }),
            None => self
                .timers
                .push((now + self.deferred(), Timer::NtpDone { bytes: framed(b"+QNTP: 565"), silent, err: 565 })),
        }
        Ok(Outcome::Ok(vec![]))
    }

    fn cmd_qidnscfg(&mut self, form: Form) -> R {
        let a = match form {
            Form::Test => {
                return Ok(Outcome::Ok(vec![b"+QIDNSCFG: (1-16),<pridnsaddr>,<secdnsaddr>".to_vec()]));
            }
            Form::Write(a) => a,
            _ => return Err(E::Tcp(552)),
        };
        if a.len() > 3 {
            return Err(E::Tcp(552));
        }
        let cid = tcp(a.req(0, 1, 16))? as u8;
        if !self.context_usable(cid) {
            return Err(E::Tcp(561));
        }
        let c = &mut self.contexts[usize::from(cid) - 1];
        if a.len() == 1 {
            return Ok(Outcome::Ok(vec![line(format!("+QIDNSCFG: {cid},\"{}\",\"{}\"", c.dns.0, c.dns.1))]));
        }
        let pri = tcp(a.req_str(1))?;
        let sec = tcp(a.string(2))?;
        if pri.parse::<IpAddr>().is_err() {
            return Err(E::Tcp(552));
        }
        if let Some(s) = &sec {
            if s.parse::<IpAddr>().is_err() {
                return Err(E::Tcp(552));
            }
        }
        c.dns.0 = pri;
        if let Some(s) = sec {
            c.dns.1 = s;
        }
        Ok(Outcome::Ok(vec![]))
    }

    fn cmd_qidnsgip(&mut self, now: Instant, form: Form) -> R {
        let a = match form {
            Form::Test => {
                return Ok(Outcome::Ok(vec![b"+QIDNSGIP: (1-16),<hostname>".to_vec()]));
            }
            Form::Write(a) => a,
            _ => return Err(E::Tcp(552)),
        };
        if a.len() != 2 {
            return Err(E::Tcp(552));
        }
        let cid = tcp(a.req(0, 1, 16))? as u8;
        let host = tcp(a.req_str(1))?;
        if host.is_empty() || host.len() > 255 {
            return Err(E::Tcp(552));
        }
        if !self.context_usable(cid) {
            return Err(E::Tcp(561));
        }
        if self.dns_pending {
            return Err(E::Tcp(564));
        }
        self.dns_pending = true;
        let (bytes, err) = match self.resolve(&host) {
            Some(ips) => {
                let mut b = framed(format!("+QIURC: \"dnsgip\",0,{},600", ips.len()).as_bytes());
                for ip in ips {
                    b.extend_from_slice(&framed(format!("+QIURC: \"dnsgip\",\"{ip}\"").as_bytes()));
                }
                (b, 0)
            }
            None => (framed(b"+QIURC: \"dnsgip\",565"), 565),
        };
        self.timers.push((now + self.deferred(), Timer::DnsDone { bytes, silent: self.cur_silent, err }));
        Ok(Outcome::Ok(vec![]))
    }

    fn cmd_qicfg(&mut self, form: Form) -> R {
        let a = match form {
            Form::Test => {
                let mut v = vec![
                    b"+QICFG: \"transpktsize\",(1-1460)".to_vec(),
                    b"+QICFG: \"transwaittm\",(0-20)".to_vec(),
                    b"+QICFG: \"dataformat\",(0,1),(0,1)".to_vec(),
                    b"+QICFG: \"viewmode\",(0,1)".to_vec(),
                ];
                if self.cfg.recvind_supported {
                    v.push(b"+QICFG: \"recvind\",(0,1)".to_vec());
                }
                v.push(b"+QICFG: \"prefix\",<ipv6_prefix>,<prefix_length>".to_vec());
                v.push(b"+QICFG: \"tcp/retranscfg\",(3-20),(5-1000)".to_vec());
                return Ok(Outcome::Ok(v));
            }
            Form::Write(a) => a,
            _ => return Err(E::Tcp(552)),
        };
        let opt = tcp(a.req_str(0))?.to_ascii_lowercase();
        let n = a.len();
        let q = &mut self.qicfg;
        let query = n == 1;
        let reply = |s: String| Ok(Outcome::Ok(vec![line(s)]));
        match opt.as_str() {
            "transpktsize" => {
                if query {
                    return reply(format!("+QICFG: \"transpktsize\",{}", q.transpktsize));
                }
                if n != 2 {
                    return Err(E::Tcp(552));
                }
                q.transpktsize = tcp(a.req(1, 1, 1460))?;
            }
            "transwaittm" => {
                if query {
                    return reply(format!("+QICFG: \"transwaittm\",{}", q.transwaittm));
                }
                if n != 2 {
                    return Err(E::Tcp(552));
                }
                q.transwaittm = tcp(a.req(1, 0, 20))?;
            }
            "dataformat" => {
                if query {
                    return reply(format!("+QICFG: \"dataformat\",{},{}", u8::from(q.send_hex), u8::from(q.recv_hex)));
                }
                if n != 3 {
                    return Err(E::Tcp(552));
                }
                let s = tcp(a.req(1, 0, 1))?;
                let r = tcp(a.req(2, 0, 1))?;
                q.send_hex = s == 1;
                q.recv_hex = r == 1;
            }
            "viewmode" => {
                if query {
                    return reply(format!("+QICFG: \"viewmode\",{}", q.viewmode));
                }
                if n != 2 {
                    return Err(E::Tcp(552));
                }
                q.viewmode = tcp(a.req(1, 0, 1))?;
            }
            "recvind" => {
                if !self.cfg.recvind_supported {
                    return Err(E::Tcp(552));
                }
                if query {
                    return reply(format!("+QICFG: \"recvind\",{}", u8::from(q.recvind)));
                }
                if n != 2 {
                    return Err(E::Tcp(552));
                }
                q.recvind = tcp(a.req(1, 0, 1))? == 1;
            }
            "prefix" => {
                if query {
                    return reply(format!("+QICFG: \"prefix\",\"64:ff9b::\",{}", q.prefix_len));
                }
                if n != 3 {
                    return Err(E::Tcp(552));
                }
                let p = tcp(a.req_str(1))?;
                let l = tcp(a.req(2, 32, 96))?;
                if p.parse::<std::net::Ipv6Addr>().is_err() || ![32, 40, 48, 56, 64, 96].contains(&l) {
                    return Err(E::Tcp(552));
                }
                q.prefix_len = l;
            }
            "tcp/retranscfg" => {
                if query {
                    return reply(format!("+QICFG: \"tcp/retranscfg\",{},{}", q.max_backoffs, q.max_rto));
                }
                if n != 3 {
                    return Err(E::Tcp(552));
                }
                let b = tcp(a.req(1, 3, 20))?;
                let r = tcp(a.req(2, 5, 1000))?;
                q.max_backoffs = b;
                q.max_rto = r;
            }
            _ => {
                if self.cfg.profile == Profile::Lenient {
                    return Ok(Outcome::Ok(vec![]));
                }
                return Err(E::Tcp(552));
            }
        }
        Ok(Outcome::Ok(vec![]))
    }
}

fn simple_info(form: Form, text: &str) -> R {
    match form {
        Form::Exec => Ok(Outcome::Ok(vec![text.as_bytes().to_vec()])),
        Form::Test => Ok(Outcome::Ok(vec![])),
        _ => Err(E::Plain),
    }
}

/// Renders information lines and a final result as wire pieces (injection points between).
fn render(lines: Vec<Vec<u8>>, fin: &[u8]) -> Vec<Vec<u8>> {
    let mut v = Vec::with_capacity(lines.len() + 1);
    for (i, l) in lines.into_iter().enumerate() {
        let mut p = Vec::with_capacity(l.len() + 4);
        if i == 0 {
            p.extend_from_slice(b"\r\n");
        }
        p.extend_from_slice(&l);
        p.extend_from_slice(b"\r\n");
        v.push(p);
    }
    v.push(framed(fin));
    v
}

/// `AT+QIOPEN=...` -> `AT+QIOPEN`, `ATE0` -> `ATE`, `AT&D1` -> `AT&D`.
fn command_name(line: &[u8]) -> String {
    let rest = &line[2..];
    let mut name = String::from("AT");
    match rest.first() {
        None => {}
        Some(b'+') => {
            name.push('+');
            for &b in &rest[1..] {
                if b.is_ascii_alphanumeric() {
                    name.push(b.to_ascii_uppercase() as char);
                } else {
                    break;
                }
            }
        }
        Some(b'&') => {
            name.push('&');
            if let Some(c) = rest.get(1) {
                if c.is_ascii_alphabetic() {
                    name.push(c.to_ascii_uppercase() as char);
                }
            }
        }
        Some(c) if c.is_ascii_alphabetic() => name.push(c.to_ascii_uppercase() as char),
        Some(_) => name.push('?'),
    }
    name
}

fn is_tcpip(name: &str) -> bool {
    matches!(
        name,
        "AT+QICSGP"
            | "AT+QIACT"
            | "AT+QIDEACT"
            | "AT+QIOPEN"
            | "AT+QICLOSE"
            | "AT+QISTATE"
            | "AT+QISEND"
            | "AT+QIRD"
            | "AT+QISENDEX"
            | "AT+QISWTMD"
            | "AT+QPING"
            | "AT+QNTP"
            | "AT+QIDNSCFG"
            | "AT+QIDNSGIP"
            | "AT+QICFG"
            | "AT+QISDE"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A booted manual-profile modem (echo off, no boot noise) at `t0`.
    fn modem() -> (Modem, Instant) {
        let t0 = Instant::now();
        let cfg =
            SimConfig { profile: Profile::Manual, boot_delay: ms(10), guard_time: ms(1000), ..SimConfig::default() };
        let mut m = Modem::new(cfg, t0);
        m.poll(t0 + ms(10));
        assert_eq!(m.take_output(), b"\r\nRDY\r\n");
        (m, t0 + ms(10))
    }

    fn feed(m: &mut Modem, at: Instant, s: &[u8]) -> Vec<u8> {
        for &b in s {
            m.feed(at, b);
        }
        m.poll(at);
        m.take_output()
    }

    fn addr(p: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p)
    }

    #[test]
    fn qiopen_connect_and_buffer_mode_recv() {
        let (mut m, t) = modem();
        assert_eq!(feed(&mut m, t, b"AT+QIACT=1\r"), b"\r\nOK\r\n");
        let out = feed(&mut m, t, b"AT+QIOPEN=1,0,\"TCP\",\"localhost\",80,0,0\r");
        assert_eq!(out, b"\r\nOK\r\n");
        let acts = m.take_actions();
        let [Action::TcpConnect { token, addr: a }] = acts.as_slice() else { panic!("{acts:?}") };
        assert_eq!(*a, addr(80));
        let token = *token;
        m.net_event(t, NetEvent::Opened { token, local: addr(5000) });
        m.poll(t);
        assert_eq!(m.take_output(), b"\r\n+QIOPEN: 0,0\r\n");
        for chunk in [&b"ab"[..], b"cd"] {
            m.net_event(t, NetEvent::Data { token, data: chunk.to_vec(), from: None });
        }
        assert_eq!(m.take_output(), b"\r\n+QIURC: \"recv\",0\r\n");
        let out = feed(&mut m, t, b"AT+QIRD=0,3\r");
        assert_eq!(out, b"\r\n+QIRD: 3\r\nabc\r\n\r\nOK\r\n");
        assert_eq!(m.take_actions(), vec![Action::Credit { token, n: 3 }]);
        m.net_event(t, NetEvent::Closed { token });
        assert_eq!(m.take_output(), b"\r\n+QIURC: \"closed\",0\r\n");
        assert_eq!(feed(&mut m, t, b"AT+QIRD=0\r"), b"\r\n+QIRD: 1\r\nd\r\n\r\nOK\r\n");
    }

    #[test]
    fn escape_needs_a_guard_time_on_both_sides() {
        let (mut m, t) = modem();
        feed(&mut m, t, b"AT+QIACT=1\r");
        feed(&mut m, t, b"AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",80,0,2\r");
        let token = match m.take_actions().as_slice() {
            [Action::TcpConnect { token, .. }] => *token,
            a => panic!("{a:?}"),
        };
        assert!(!m.accepts_input());
        m.net_event(t, NetEvent::Opened { token, local: addr(5000) });
        m.poll(t);
        assert_eq!(m.take_output(), b"\r\nCONNECT\r\n");
        // Too early after CONNECT: data.
        let t1 = t + ms(500);
        feed(&mut m, t1, b"+++");
        m.poll(t1 + ms(1500));
        assert!(m.take_output().is_empty());
        let sent: Vec<u8> = m
            .take_actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Send { data, .. } => Some(data),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(sent, b"+++");
        // After a second of silence: escape once another second passes without input.
        let t2 = t1 + ms(2600);
        feed(&mut m, t2, b"+++");
        m.poll(t2 + ms(999));
        assert!(m.take_output().is_empty());
        m.poll(t2 + ms(1000));
        assert_eq!(m.take_output(), b"\r\nOK\r\n");
        assert_eq!(feed(&mut m, t2 + ms(1001), b"ATO\r"), b"\r\nCONNECT\r\n");
    }

    #[test]
    fn deferred_results_wait_for_the_deferred_delay() {
        let t0 = Instant::now();
        let cfg = SimConfig { boot_delay: ms(10), deferred_delay: ms(100), ..SimConfig::default() };
        let mut m = Modem::new(cfg, t0);
        for i in 0..4 {
            m.poll(t0 + ms(10 + 5 * i));
        }
        assert!(m.take_output().ends_with(b"+QIND: PB DONE\r\n"));
        let t = t0 + ms(50);
        assert_eq!(feed(&mut m, t, b"ATE0\r"), b"ATE0\r\r\nOK\r\n");
        feed(&mut m, t, b"AT+QIACT=1\r");
        assert_eq!(feed(&mut m, t, b"AT+QIDNSGIP=1,\"localhost\"\r"), b"\r\nOK\r\n");
        m.poll(t + ms(99));
        assert!(m.take_output().is_empty());
        assert_eq!(m.next_deadline(), Some(t + ms(100)));
        m.poll(t + ms(100));
        assert_eq!(m.take_output(), b"\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"127.0.0.1\"\r\n");
    }
}
