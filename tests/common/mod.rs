//! Test support: a scripted modem on a mock serial port and a deterministic clock.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// A step of a transcript.
#[derive(Debug, Clone)]
pub enum Step {
    /// The stack must write exactly these bytes next.
    Expect(Vec<u8>),
    /// The modem answers with these bytes.
    Reply(Vec<u8>),
}

#[derive(Debug, Default)]
struct Shared {
    steps: VecDeque<Step>,
    rx: VecDeque<u8>,
    pending: Vec<u8>,
    written: Vec<u8>,
    rx_waker: Option<std::task::Waker>,
}

impl Shared {
    fn wake(&mut self) {
        if let Some(w) = self.rx_waker.take() {
            w.wake();
        }
    }
}

/// The modem's side of a transcript test: the stack's writes are checked byte for byte against
/// the script, and the script's replies become readable after the write they follow.
#[derive(Clone, Default)]
pub struct Script(Rc<RefCell<Shared>>);

impl Script {
    pub fn new() -> Self {
        Self::default()
    }
    /// The stack writes `cmd`, the modem answers `reply`.
    pub fn exchange(&self, cmd: &str, reply: &str) -> &Self {
        self.expect(cmd.as_bytes()).reply(reply.as_bytes())
    }
    pub fn expect(&self, bytes: &[u8]) -> &Self {
        self.0.borrow_mut().steps.push_back(Step::Expect(bytes.to_vec()));
        self
    }
    pub fn reply(&self, bytes: &[u8]) -> &Self {
        let mut s = self.0.borrow_mut();
        if s.steps.is_empty() {
            s.rx.extend(bytes.iter().copied());
        } else {
            s.steps.push_back(Step::Reply(bytes.to_vec()));
        }
        self
    }
    /// Bytes the modem sends now (a URC).
    pub fn inject(&self, bytes: &str) {
        self.inject_bytes(bytes.as_bytes());
    }
    pub fn inject_bytes(&self, bytes: &[u8]) {
        let mut s = self.0.borrow_mut();
        s.rx.extend(bytes.iter().copied());
        s.wake();
    }
    /// Everything the stack wrote so far.
    pub fn written(&self) -> Vec<u8> {
        self.0.borrow().written.clone()
    }
    /// Asserts the script ran to its end and nothing unexpected was written.
    pub fn assert_done(&self) {
        let s = self.0.borrow();
        assert!(s.pending.is_empty(), "unexpected bytes written: {:?}", String::from_utf8_lossy(&s.pending));
        assert!(s.steps.is_empty(), "script not finished, next: {:?}", s.steps.front().map(show));
    }
    pub fn serial(&self) -> MockSerial {
        MockSerial(self.clone())
    }
}

fn show(step: &Step) -> String {
    match step {
        Step::Expect(b) => format!("expect {:?}", String::from_utf8_lossy(b)),
        Step::Reply(b) => format!("reply {:?}", String::from_utf8_lossy(b)),
    }
}

/// The stack's serial port in a transcript test.
pub struct MockSerial(Script);

#[derive(Debug)]
pub struct MockError;
impl core::fmt::Display for MockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("mock serial error")
    }
}
impl core::error::Error for MockError {}
impl embedded_io::Error for MockError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}

impl embedded_io::ErrorType for MockSerial {
    type Error = MockError;
}

impl embedded_io::Read for MockSerial {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, MockError> {
        let mut s = self.0.0.borrow_mut();
        let n = buf.len().min(s.rx.len());
        for b in buf.iter_mut().take(n) {
            *b = s.rx.pop_front().unwrap();
        }
        Ok(n)
    }
}

impl embedded_io::ReadReady for MockSerial {
    fn read_ready(&mut self) -> Result<bool, MockError> {
        Ok(!self.0.0.borrow().rx.is_empty())
    }
}

impl embedded_io::Write for MockSerial {
    fn write(&mut self, buf: &[u8]) -> Result<usize, MockError> {
        let mut s = self.0.0.borrow_mut();
        s.written.extend_from_slice(buf);
        s.pending.extend_from_slice(buf);
        while let Some(Step::Expect(e)) = s.steps.front().cloned() {
            let n = e.len().min(s.pending.len());
            assert_eq!(
                String::from_utf8_lossy(&s.pending[..n]),
                String::from_utf8_lossy(&e[..n]),
                "the stack wrote something the transcript does not expect"
            );
            if s.pending.len() < e.len() {
                break;
            }
            s.pending.drain(..e.len());
            s.steps.pop_front();
            while let Some(Step::Reply(r)) = s.steps.front().cloned() {
                s.rx.extend(r);
                s.steps.pop_front();
            }
            s.wake();
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), MockError> {
        Ok(())
    }
}

impl embedded_io_async::Read for MockSerial {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, MockError> {
        std::future::poll_fn(|cx| {
            let mut s = self.0.0.borrow_mut();
            if s.rx.is_empty() {
                s.rx_waker = Some(cx.waker().clone());
                return std::task::Poll::Pending;
            }
            let n = buf.len().min(s.rx.len());
            for b in buf.iter_mut().take(n) {
                *b = s.rx.pop_front().unwrap();
            }
            std::task::Poll::Ready(Ok(n))
        })
        .await
    }
}

impl embedded_io_async::Write for MockSerial {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, MockError> {
        embedded_io::Write::write(self, buf)
    }
    async fn flush(&mut self) -> Result<(), MockError> {
        Ok(())
    }
}

/// Where every test clock starts: 1.5 s before the stack's 32-bit `clock::Instant` wraps,
/// so that every test's deadlines, back-offs and ACK checks are computed and compared across
/// the wrap.
pub const CLOCK_START_MS: u64 = (1 << 32) - 1_500;

/// Real time through tokio, for async tests.
#[derive(Clone, Copy)]
pub struct TokioClock(pub std::time::Instant);

impl Default for TokioClock {
    fn default() -> Self {
        Self(std::time::Instant::now())
    }
}

impl quectel_bg96::clock::Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        CLOCK_START_MS + self.0.elapsed().as_millis() as u64
    }
}

impl quectel_bg96::clock::AsyncClock for TokioClock {
    async fn wait_until(&self, deadline_ms: u64) {
        let now = quectel_bg96::clock::Clock::now_ms(self);
        if deadline_ms > now {
            tokio::time::sleep(std::time::Duration::from_millis(deadline_ms - now)).await;
        }
    }
}

/// A clock that advances 1 ms each time it is read: timeouts run out after a fixed number of
/// polls, whatever the machine is doing.
pub struct TickClock(Cell<u64>);

impl Default for TickClock {
    fn default() -> Self {
        Self(Cell::new(CLOCK_START_MS))
    }
}

impl quectel_bg96::clock::Clock for TickClock {
    fn now_ms(&self) -> u64 {
        let t = self.0.get() + 1;
        self.0.set(t);
        t
    }
}

/// The commands and answers of the field-profile bring-up of a modem whose firmware has no
/// `recvind`.
pub fn bring_up_steps() -> Vec<(&'static str, String)> {
    [
        ("AT\r", "AT\r\r\nOK\r\n"),
        ("ATE0\r", "ATE0\r\r\nOK\r\n"),
        ("AT+CMEE=1\r", "\r\nOK\r\n"),
        ("AT+QISDE=0\r", "\r\nOK\r\n"),
        ("AT+QURCCFG=\"urcport\",\"uart1\"\r", "\r\nOK\r\n"),
        ("AT+QICFG=\"dataformat\",0,0\r", "\r\nOK\r\n"),
        ("AT+QICFG=\"viewmode\",0\r", "\r\nOK\r\n"),
        ("AT+QGMR\r", "\r\nBG96MAR02A07M1G\r\n\r\nOK\r\n"),
        ("AT+CPIN?\r", "\r\n+CPIN: READY\r\n\r\nOK\r\n"),
        ("AT+CREG?\r", "\r\n+CREG: 0,1\r\n\r\nOK\r\n"),
        ("AT+CEREG?\r", "\r\n+CEREG: 0,1\r\n\r\nOK\r\n"),
        ("AT+QICSGP=1,1,\"internet\",\"\",\"\",0\r", "\r\nOK\r\n"),
        ("AT+QIACT?\r", "\r\nOK\r\n"),
        ("AT+QIACT=1\r", "\r\nOK\r\n"),
        ("AT+QIACT?\r", "\r\n+QIACT: 1,1,1,\"10.0.0.2\"\r\n\r\nOK\r\n"),
        ("AT+QISTATE?\r", "\r\nOK\r\n"),
        ("AT+QICFG=\"recvind\",1\r", "\r\nERROR\r\n"),
    ]
    .into_iter()
    .map(|(c, r)| (c, r.to_string()))
    .collect()
}

/// [`bring_up_steps`], scripted.
pub fn bring_up_script(s: &Script) {
    for (c, r) in bring_up_steps() {
        s.exchange(c, &r);
    }
}

pub fn config() -> quectel_bg96::config::Config {
    quectel_bg96::config::Config::new("internet").unwrap()
}

/// Real time, for blocking tests against the simulator.
#[derive(Clone, Copy)]
pub struct StdClock(pub std::time::Instant);

impl Default for StdClock {
    fn default() -> Self {
        Self(std::time::Instant::now())
    }
}

impl quectel_bg96::clock::Clock for StdClock {
    fn now_ms(&self) -> u64 {
        CLOCK_START_MS + self.0.elapsed().as_millis() as u64
    }
}

/// A simulator and a brought-up blocking stack on it.
pub fn sim_modem(
    sim_config: bg96_sim::SimConfig,
    config: quectel_bg96::config::Config,
) -> (bg96_sim::Simulator, quectel_bg96::blocking::Bg96<bg96_sim::HostPort, StdClock>) {
    let (sim, port) = bg96_sim::Simulator::spawn(sim_config);
    let modem = quectel_bg96::blocking::Bg96::new(port, StdClock::default(), config);
    modem.bring_up().expect("bring-up");
    (sim, modem)
}

/// Payload made of AT framing and every byte value.
pub fn nasty_payload(len: usize) -> Vec<u8> {
    let pieces: [&[u8]; 5] = [b"\r\nOK\r\n", b"\r\n> ", b"+QIURC: \"closed\",0\r\n", b"RDY\r\n", b"+QIRD: 9999\r\n"];
    let mut v = Vec::with_capacity(len);
    let mut i = 0usize;
    while v.len() < len {
        if i.is_multiple_of(3) {
            v.extend_from_slice(pieces[(i / 3) % pieces.len()]);
        } else {
            v.extend((0..=255u8).take(len - v.len().min(len)));
        }
        i += 1;
    }
    v.truncate(len);
    v
}

/// The async stack's types over the simulator's in-process serial line.
pub type SimStack = quectel_bg96::asynch::Stack<'static, bg96_sim::HostTx, TokioClock>;

/// A simulator and a brought-up async stack on it; the runner runs on the current `LocalSet`.
pub async fn sim_stack(
    sim_config: bg96_sim::SimConfig,
    config: quectel_bg96::config::Config,
) -> (bg96_sim::Simulator, SimStack) {
    let (sim, port) = bg96_sim::Simulator::spawn(sim_config);
    let (rx, tx) = port.split();
    let res: &'static quectel_bg96::asynch::Resources<bg96_sim::HostTx, TokioClock> =
        Box::leak(Box::new(quectel_bg96::asynch::Resources::new(tx, TokioClock::default(), config)));
    let (stack, runner) = quectel_bg96::asynch::new(res, rx);
    tokio::task::spawn_local(async move {
        runner.run().await;
    });
    stack.bring_up().await.expect("bring-up");
    (sim, stack)
}

/// Real time that can be fast-forwarded: the manual's long timeouts (150 s, 40 s, ...) run
/// in a fraction of the time while the simulator keeps its real-time behaviour.
#[derive(Clone, Default)]
pub struct FastClock(std::sync::Arc<std::sync::Mutex<FastState>>);

struct FastState {
    base: u64,
    since: Option<std::time::Instant>,
    factor: u64,
}

impl Default for FastState {
    fn default() -> Self {
        Self { base: CLOCK_START_MS, since: None, factor: 1 }
    }
}

impl FastClock {
    /// Time runs `factor` times faster from now on (1 = real time).
    pub fn speed(&self, factor: u64) {
        let mut s = self.0.lock().unwrap();
        let now = Self::now_locked(&mut s);
        s.base = now;
        s.since = Some(std::time::Instant::now());
        s.factor = factor.max(1);
    }
    fn now_locked(s: &mut FastState) -> u64 {
        let since = *s.since.get_or_insert_with(std::time::Instant::now);
        s.base + since.elapsed().as_millis() as u64 * s.factor.max(1)
    }
}

impl quectel_bg96::clock::Clock for FastClock {
    fn now_ms(&self) -> u64 {
        Self::now_locked(&mut self.0.lock().unwrap())
    }
}

/// The commands the host wrote to the simulated modem, in order (without the final CR).
pub fn sent_commands(sim: &bg96_sim::Simulator) -> Vec<String> {
    let mut bytes = Vec::new();
    for r in sim.wire_log() {
        if r.direction == bg96_sim::Direction::ToModem {
            bytes.extend_from_slice(&r.bytes);
        }
    }
    // a send's payload is followed by the next command without a CR: cut lines at "AT"
    bytes
        .split(|&b| b == b'\r')
        .map(|l| String::from_utf8_lossy(l).to_string())
        .filter_map(|l| l.find("AT").map(|i| l[i..].to_string()))
        .collect()
}

/// The commands sent after the first `n` (what a step of a test caused).
pub fn commands_since(sim: &bg96_sim::Simulator, n: usize) -> Vec<String> {
    sent_commands(sim).into_iter().skip(n).collect()
}

// ---------------------------------------------------------------------------------------------
// Reliability tests (faults.rs, injection.rs, soak.rs, bad_input.rs): shared helpers.

/// The fast-forwardable clock for the async stack too: a wait sleeps in short real-time steps
/// and re-reads the clock, so a change of speed takes effect at once.
impl quectel_bg96::clock::AsyncClock for FastClock {
    async fn wait_until(&self, deadline_ms: u64) {
        loop {
            let (now, factor) = {
                let mut s = self.0.lock().unwrap();
                (Self::now_locked(&mut s), s.factor.max(1))
            };
            if now >= deadline_ms {
                return;
            }
            let real_ms = ((deadline_ms - now) / factor).clamp(1, 5);
            tokio::time::sleep(std::time::Duration::from_millis(real_ms)).await;
        }
    }
}

impl FastClock {
    /// The current speed factor.
    pub fn factor(&self) -> u64 {
        self.0.lock().unwrap().factor.max(1)
    }
}

/// The async stack timed by a [`FastClock`].
pub type FastStack = quectel_bg96::asynch::Stack<'static, bg96_sim::HostTx, FastClock>;

/// A simulator and an async stack timed by `clock` (brought up if `bring_up`); the runner runs
/// on the current `LocalSet`.
pub async fn sim_stack_fast(
    sim_config: bg96_sim::SimConfig,
    config: quectel_bg96::config::Config,
    clock: FastClock,
    bring_up: bool,
) -> (bg96_sim::Simulator, FastStack) {
    let (sim, port) = bg96_sim::Simulator::spawn(sim_config);
    let (rx, tx) = port.split();
    let res: &'static quectel_bg96::asynch::Resources<bg96_sim::HostTx, FastClock> =
        Box::leak(Box::new(quectel_bg96::asynch::Resources::new(tx, clock, config)));
    let (stack, runner) = quectel_bg96::asynch::new(res, rx);
    tokio::task::spawn_local(async move {
        runner.run().await;
    });
    if bring_up {
        stack.bring_up().await.expect("bring-up");
    }
    (sim, stack)
}

/// A TCP echo server on loopback (a thread per connection).
pub fn echo_server() -> std::net::SocketAddr {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// A UDP echo server on loopback.
pub fn udp_echo_server() -> std::net::SocketAddr {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    });
    addr
}

/// A TCP server that accepts every connection and closes it at once (a peer that hangs up).
pub fn closing_server() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    addr
}

/// A UDP port nobody uses right now.
pub fn unused_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A TCP port nobody listens on right now.
pub fn unused_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Resident set size of this process in KiB (Linux; 0 elsewhere).
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// A small seeded PRNG (xorshift64*), so that random tests print their seed and can be re-run.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

/// A serial port for the blocking stack in tests: when nothing is waiting it sleeps a few
/// microseconds in `read_ready`, so the blocking stack's polling loops leave CPU time to the
/// simulator (on a CI machine with two cores, busy polling would slow everything else down).
pub struct PoliteSerial<S>(pub S);

impl<S: embedded_io::ErrorType> embedded_io::ErrorType for PoliteSerial<S> {
    type Error = S::Error;
}

impl<S: embedded_io::Read> embedded_io::Read for PoliteSerial<S> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, S::Error> {
        self.0.read(buf)
    }
}

impl<S: embedded_io::ReadReady> embedded_io::ReadReady for PoliteSerial<S> {
    fn read_ready(&mut self) -> Result<bool, S::Error> {
        let ready = self.0.read_ready()?;
        if !ready {
            std::thread::sleep(std::time::Duration::from_micros(20));
        }
        Ok(ready)
    }
}

impl<S: embedded_io::Write> embedded_io::Write for PoliteSerial<S> {
    fn write(&mut self, buf: &[u8]) -> Result<usize, S::Error> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> Result<(), S::Error> {
        self.0.flush()
    }
}
