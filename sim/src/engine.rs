//! The engine thread (owner of the [`Modem`](crate::modem::Modem)) and the public
//! [`Simulator`] handle.

use std::collections::{HashMap, VecDeque};
use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::config::SimConfig;
use crate::modem::{Action, Ctl, Modem, NetEvent};
use crate::net::{self, Handle};
use crate::pipe::{HostPort, OUT_SOFT_CAP, Shared, lock};
use crate::types::{Direction, InjectPoint, SocketInfo, Stats, WireRecord};

/// Bytes the engine takes from the host queue per iteration.
const BATCH: usize = 4096;

/// Input of the engine thread.
pub(crate) enum Event {
    Net(NetEvent),
    Incoming {
        listener: u64,
        stream: TcpStream,
        peer: SocketAddr,
        local: SocketAddr,
    },
    Control(Ctl),
    Query(Query),
    /// Emit raw bytes now.
    Garbage(Vec<u8>),
    /// Re-check state (the host made room in the output queue).
    Wake,
}

pub(crate) enum Query {
    Sockets(Sender<Vec<SocketInfo>>),
    Contexts(Sender<Vec<u8>>),
}

struct Inner {
    shared: Arc<Shared>,
    engine: Mutex<Option<JoinHandle<()>>>,
    /// Transport threads (TCP listener / PTY bridges).
    transports: Mutex<Vec<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.shared.close();
        if let Some(h) = lock(&self.engine).take() {
            let _ = h.join();
        }
        for h in lock(&self.transports).drain(..) {
            let _ = h.join();
        }
    }
}

/// A running simulated BG96.
///
/// Cheap to clone (`Arc` inside), `Send + Sync`. Dropping the last handle stops the engine
/// and every socket thread and closes all host sockets; [`HostPort`]s then read EOF.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator").finish_non_exhaustive()
    }
}

impl Simulator {
    fn start(config: SimConfig) -> Simulator {
        let log_file = config.log.as_ref().and_then(|p: &PathBuf| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| log::warn!("bg96-sim: cannot open log {}: {e}", p.display()))
                .ok()
        });
        let shared = Shared::new(config.baud, log_file);
        let sh = shared.clone();
        let engine = thread::Builder::new()
            .name("bg96-engine".to_string())
            .spawn(move || {
                // Whatever happens, the host ports must see the end (EOF), never hang.
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(sh.clone(), config)));
                if r.is_err() {
                    log::error!("bg96-sim: engine thread panicked");
                }
                sh.close();
            })
            .ok();
        if engine.is_none() {
            shared.close();
        }
        Simulator { inner: Arc::new(Inner { shared, engine: Mutex::new(engine), transports: Mutex::new(Vec::new()) }) }
    }

    /// Starts a simulator and returns the host's end of an in-process serial line.
    pub fn spawn(config: SimConfig) -> (Simulator, HostPort) {
        let sim = Simulator::start(config);
        let port = HostPort::new(sim.inner.shared.clone());
        (sim, port)
    }

    /// Serves the serial line over TCP on `addr` (loopback; port 0 picks a free port).
    /// One client at a time; a new client may connect after the previous one left. Output
    /// produced while no client is connected is discarded, like a UART with nobody listening.
    pub fn listen_tcp(config: SimConfig, addr: SocketAddr) -> std::io::Result<(Simulator, SocketAddr)> {
        let listener = std::net::TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let sim = Simulator::start(config);
        let h = crate::transport::serve_tcp(sim.inner.shared.clone(), listener)?;
        lock(&sim.inner.transports).push(h);
        Ok((sim, local))
    }

    /// Serves the serial line on a new pseudo-terminal (raw mode) and returns the path of
    /// its slave side (`/dev/pts/N`) for the program under test to open.
    pub fn pty(config: SimConfig) -> std::io::Result<(Simulator, PathBuf)> {
        let (master, path) = crate::transport::open_pty()?;
        let sim = Simulator::start(config);
        let hs = crate::transport::serve_pty(sim.inner.shared.clone(), master)?;
        lock(&sim.inner.transports).extend(hs);
        Ok((sim, path))
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// Hands a control to the engine and waits until it has taken effect, so that a command
    /// the host sends afterwards sees it (fault injection is deterministic).
    fn control(&self, c: Ctl) {
        self.shared().post(Event::Control(c));
        let (tx, rx) = channel();
        self.shared().post(Event::Query(Query::Contexts(tx)));
        let _ = rx.recv_timeout(Duration::from_secs(2));
    }

    /// Byte and command counters.
    pub fn stats(&self) -> Stats {
        lock(&self.shared().stats).clone()
    }

    /// The in-memory wire log (the most recent 512 KiB of traffic).
    pub fn wire_log(&self) -> Vec<WireRecord> {
        lock(&self.shared().log).records.iter().cloned().collect()
    }

    /// The occupied connectIDs.
    pub fn open_sockets(&self) -> Vec<SocketInfo> {
        let (tx, rx) = channel();
        self.shared().post(Event::Query(Query::Sockets(tx)));
        rx.recv_timeout(Duration::from_secs(2)).unwrap_or_default()
    }

    /// The active PDP contexts.
    pub fn active_contexts(&self) -> Vec<u8> {
        let (tx, rx) = channel();
        self.shared().post(Event::Query(Query::Contexts(tx)));
        rx.recv_timeout(Duration::from_secs(2)).unwrap_or_default()
    }

    /// The remote side closes socket `connect_id`: its host socket is shut down (the test
    /// peer sees EOF) and the modem reports `+QIURC: "closed",<id>` (`NO CARRIER` in
    /// transparent mode). Buffered data stays readable; the slot stays taken until
    /// `AT+QICLOSE`.
    pub fn close_from_peer(&self, connect_id: u8) {
        self.control(Ctl::ClosePeer(connect_id));
    }

    /// The network drops context `context_id`: `+QIURC: "pdpdeact",<cid>`; the context is
    /// inactive and its sockets are dead (host sockets closed, slots in state "closing").
    pub fn pdp_deactivate(&self, context_id: u8) {
        self.control(Ctl::PdpDeact(context_id));
    }

    /// Reboots the modem: every socket is closed, contexts are inactive, settings (echo,
    /// CMEE, QISDE, QICFG, ...) are back to their defaults, and the boot sequence follows
    /// after `boot_delay`. `AT+QICSGP` settings survive (they live in NV on a real modem).
    /// Also the only way to power the modem on again after `AT+QPOWD`.
    pub fn reboot(&self) {
        self.control(Ctl::Reboot);
    }

    /// The next `n` `AT+QISEND`/`AT+QISENDEX` answer `SEND FAIL` (nothing is sent).
    pub fn send_fail_next(&self, n: usize) {
        self.control(Ctl::SendFailNext(n));
    }

    /// The next command starting with `command_prefix` (case-insensitive) is executed at once
    /// but its output is held back for `delay`; the modem takes no further input meanwhile.
    pub fn delay_response(&self, command_prefix: &str, delay: Duration) {
        self.control(Ctl::Delay(command_prefix.to_string(), delay));
    }

    /// The next command starting with `command_prefix` is executed but none of its output,
    /// including a deferred result (`+QIOPEN`, `dnsgip`, `+QPING`, `+QNTP`, `CONNECT`), is sent.
    pub fn drop_response(&self, command_prefix: &str) {
        self.control(Ctl::Drop(command_prefix.to_string()));
    }

    /// The next command starting with `command_prefix` is answered as usual (`OK`), but its
    /// deferred result (`+QIOPEN`, `dnsgip`, `+QPING`, `+QNTP`) never comes.
    pub fn drop_deferred(&self, command_prefix: &str) {
        self.control(Ctl::DropDeferred(command_prefix.to_string()));
    }

    /// The modem hangs: it ignores everything the host sends (and answers nothing) until it is
    /// rebooted ([`Simulator::reboot`], which a test's reset line or power key can call).
    pub fn hang(&self) {
        self.control(Ctl::Hang);
    }

    /// The next `n` commands starting with `command_prefix` fail without being executed: bare
    /// `ERROR` (field profile; `+CME ERROR: <code>` in the manual profile) with `code` in
    /// `AT+QIGETERROR`.
    pub fn fail_next(&self, command_prefix: &str, n: usize, code: u16) {
        self.control(Ctl::Fail(command_prefix.to_string(), n, code));
    }

    /// While `on`, bytes sent on `connect_id` are not counted as acknowledged in
    /// `AT+QISEND=<id>,0` (a peer that stopped acknowledging).
    pub fn hold_acks(&self, connect_id: u8, on: bool) {
        self.control(Ctl::Hold(connect_id, on));
    }

    /// Injects a URC (`text` without CR/LF; it is framed as `\r\n<text>\r\n`).
    pub fn inject_urc(&self, at: InjectPoint, text: &str) {
        self.control(Ctl::Inject(at, text.to_string()));
    }

    /// Splits all further modem output into `k`-byte pieces with a pause between them, so
    /// that the host sees every split point (`None` switches it off).
    pub fn set_output_chunking(&self, chunk: Option<(usize, Duration)>) {
        lock(&self.shared().out).chunking = chunk.map(|(k, d)| (k.max(1), d.min(Duration::from_secs(86_400))));
    }

    /// Sends raw bytes to the host now.
    pub fn emit_garbage(&self, bytes: &[u8]) {
        self.shared().post(Event::Garbage(bytes.to_vec()));
    }

    /// Changes the UART pacing in both directions (`None` = unpaced).
    pub fn set_baud(&self, baud: Option<u32>) {
        lock(&self.shared().out).baud = baud;
        lock(&self.shared().inbox).baud = baud;
    }
}

/// The engine loop: one thread owns the modem.
fn run(shared: Arc<Shared>, config: SimConfig) {
    let rx_cap = config.socket_rx_capacity.max(1);
    let connect_timeout = config.connect_timeout;
    let ntp_timeout = config.ntp_timeout.min(Duration::from_secs(86_400));
    let host_buffer = config.host_buffer.max(64);
    let mut modem = Modem::new(config, Instant::now());
    let mut handles: HashMap<u64, Handle> = HashMap::new();
    let mut parked: HashMap<u64, TcpStream> = HashMap::new();
    let mut next_parked: u64 = 1;
    let mut pending_in: VecDeque<(Instant, u8)> = VecDeque::new();

    loop {
        let now = Instant::now();
        // 1. Collect input.
        let (events, wake_async, next_in_due) = {
            let mut ib = lock(&shared.inbox);
            if shared.is_closed() {
                break;
            }
            let events: Vec<Event> = ib.events.drain(..).collect();
            let next_in_due;
            if pending_in.is_empty() && modem.accepts_input() {
                next_in_due = ib.take_due(now, BATCH, &mut pending_in);
            } else if !ib.host.is_empty() {
                next_in_due = Some(now);
            } else {
                next_in_due = None;
            }
            let wake_async = ib.async_wake_at.is_some_and(|t| t <= now);
            if wake_async {
                ib.async_wake_at = None;
            }
            (events, wake_async, next_in_due)
        };
        if !pending_in.is_empty() {
            let w = lock(&shared.inbox).writer_waker.take();
            if let Some(w) = w {
                w.wake();
            }
            shared.in_room_cv.notify_all();
        }
        if wake_async {
            let w = lock(&shared.out).waker.take();
            if let Some(w) = w {
                w.wake();
            }
        }
        modem.set_room(host_buffer.saturating_sub(shared.out_len()));

        // 2. Process. The host's bytes first: they arrived before the network and control
        // events were collected, and the modem's AT parser sees a command as it arrives (a
        // data push that a network event triggers must not overtake an `AT+QISWTMD` that is
        // already on the line).
        let mut fed = Vec::new();
        feed_pending(&mut modem, &mut pending_in, &mut fed);
        for ev in events {
            match ev {
                Event::Net(ne) => modem.net_event(now, ne),
                Event::Incoming { listener, stream, peer, local } => {
                    let pending = next_parked;
                    next_parked += 1;
                    parked.insert(pending, stream);
                    modem.net_event(now, NetEvent::Incoming { listener, pending, peer, local });
                }
                Event::Control(c) => modem.control(now, c),
                Event::Query(Query::Sockets(tx)) => {
                    let _ = tx.send(modem.sockets());
                }
                Event::Query(Query::Contexts(tx)) => {
                    let _ = tx.send(modem.active_contexts());
                }
                Event::Garbage(bytes) => {
                    let out = modem.take_output();
                    shared.push_output(&out);
                    shared.push_output(&bytes);
                }
                Event::Wake => {}
            }
        }
        // (and what an event let the modem accept again, e.g. the end of a connect)
        feed_pending(&mut modem, &mut pending_in, &mut fed);
        if !fed.is_empty() {
            shared.record(Direction::ToModem, &fed, now);
            lock(&shared.stats).bytes_to_modem += fed.len() as u64;
        }
        modem.poll(Instant::now());

        // 3. Output and actions.
        let out = modem.take_output();
        let names = modem.take_command_names();
        {
            let mut st = lock(&shared.stats);
            st.commands += names.len() as u64;
            for n in names {
                *st.command_counts.entry(n).or_insert(0) += 1;
            }
            st.udp_datagrams_dropped += std::mem::take(&mut modem.udp_dropped);
            st.urcs_dropped += std::mem::take(&mut modem.urcs_dropped);
        }
        // Counters first, so that a host that has seen a response sees it counted.
        shared.push_output(&out);
        for a in modem.take_actions() {
            execute(&shared, a, &mut handles, &mut parked, rx_cap, connect_timeout, ntp_timeout);
        }
        if modem.wants_room() {
            let mut o = lock(&shared.out);
            o.room_wanted = true;
            if o.len < OUT_SOFT_CAP / 2 {
                // Room appeared meanwhile: go round again.
                drop(o);
                continue;
            }
        }

        // 4. Sleep until something is due.
        let mut deadline = modem.next_deadline();
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                deadline = Some(deadline.map_or(t, |d: Instant| d.min(t)));
            }
        };
        if !pending_in.is_empty() && modem.accepts_input() {
            consider(Some(Instant::now()));
        }
        if modem.accepts_input() {
            consider(next_in_due);
        }
        let ib = lock(&shared.inbox);
        if shared.is_closed() {
            break;
        }
        consider(ib.async_wake_at);
        if !ib.events.is_empty() {
            continue;
        }
        if modem.accepts_input() && pending_in.is_empty() && !ib.host.is_empty() {
            // New host bytes arrived since we looked; their due time decides.
            let bt = crate::pipe::byte_time(ib.baud);
            if bt.is_zero() {
                continue;
            }
            consider(Some(ib.in_line_time + bt));
        }
        let now = Instant::now();
        match deadline {
            Some(d) if d <= now => continue,
            Some(d) => {
                drop(shared.inbox_cv.wait_timeout(ib, d - now));
            }
            None => {
                drop(shared.inbox_cv.wait(ib));
            }
        }
    }
    for (_, h) in handles.drain() {
        h.close(false);
    }
    for (_, s) in parked.drain() {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
}

/// Feeds the modem the host's bytes that are due, while it accepts input.
fn feed_pending(modem: &mut Modem, pending_in: &mut VecDeque<(Instant, u8)>, fed: &mut Vec<u8>) {
    while let Some(&(t, b)) = pending_in.front() {
        if !modem.accepts_input() {
            break;
        }
        pending_in.pop_front();
        fed.push(b);
        modem.feed(t, b);
    }
}

fn execute(
    shared: &Arc<Shared>,
    a: Action,
    handles: &mut HashMap<u64, Handle>,
    parked: &mut HashMap<u64, TcpStream>,
    rx_cap: usize,
    connect_timeout: Duration,
    ntp_timeout: Duration,
) {
    match a {
        Action::TcpConnect { token, addr } => {
            let h = net::tcp_connect(shared, token, addr, rx_cap, connect_timeout);
            handles.insert(token, h);
        }
        Action::UdpOpen { token, remote, local_port } => {
            if let Some(h) = net::udp_open(shared, token, Some(remote), local_port, rx_cap) {
                handles.insert(token, h);
            }
        }
        Action::UdpBind { token, port } => {
            if let Some(h) = net::udp_open(shared, token, None, port, rx_cap) {
                handles.insert(token, h);
            }
        }
        Action::TcpListen { token, port } => {
            if let Some(h) = net::tcp_listen(shared, token, port) {
                handles.insert(token, h);
            }
        }
        Action::Adopt { pending, token } => {
            if let Some(stream) = parked.remove(&pending) {
                match net::tcp_adopt(shared, token, stream, rx_cap) {
                    Some(h) => {
                        handles.insert(token, h);
                    }
                    None => shared.post(Event::Net(NetEvent::Closed { token })),
                }
            }
        }
        Action::Reject { pending } => {
            if let Some(s) = parked.remove(&pending) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
        Action::Send { token, data, to } => {
            if let Some(h) = handles.get(&token) {
                h.send(data, to);
            }
        }
        Action::Credit { token, n } => {
            if let Some(h) = handles.get(&token) {
                h.credit(n);
            }
        }
        Action::Close { token } => {
            if let Some(h) = handles.remove(&token) {
                h.close(true);
            }
        }
        Action::Ntp { token, server } => net::ntp_query(shared, token, server, ntp_timeout),
    }
}
