//! Soak: 12 sockets (8 TCP, 4 UDP) moving data both ways through the simulator for a bounded
//! time while random faults are injected, on the async front (12 tasks) and on the blocking
//! front (one loop over 12 sockets). Run longer with `SOAK_SECONDS=<n>` (default 10 s each)
//! and replay a run with `SOAK_SEED=<seed>` (printed at the start); see the figures with
//! `cargo test --test soak -- --nocapture`.
//!
//! # What is counted
//! * **bytes moved**: payload bytes the stack reported sent (up) and payload bytes it delivered
//!   (down). Every TCP connection carries a known byte stream to an echo server and checks
//!   what comes back against it; every UDP datagram is echoed and checked whole.
//! * **faults survived**: every fault injected while the stack kept working. Faults come in two
//!   kinds. *Harmless* ones (output split into k-byte pieces, garbage between lines, stray or
//!   interleaved URCs, short response delays, runs of `SEND FAIL`) must not cause any error.
//!   *Destructive* ones (the peer closes a TCP connection, `pdpdeact`, a modem reboot) end the
//!   connections they hit, by design: each such end is a **connection lost by design** (a typed
//!   error such as `Closed`, `ContextDeactivated`, `Rebooted`), counted under faults survived,
//!   and the bytes still in flight on that connection are not "lost" -- the application was told.
//! * **bytes lost** (must be 0): bytes the stack accepted on a connection that then ended
//!   *without* an error and that never came back, plus every byte that came back different from
//!   what was sent (corrupted, duplicated, reordered), plus UDP datagrams whose echo never came
//!   although no destructive fault touched the socket.
//! * **unexplained errors** (must be 0): errors with no destructive fault in the 2 s before them.
//! * **connectIDs leaked** (must be 0): after everything was closed, connectIDs the modem
//!   still has open, plus those of the 12 that cannot be opened again.
//!
//! Lost answers (`AT+QIOPEN`, `AT+QISEND` never answered) are left to `tests/faults.rs`: each
//! costs a whole command timeout, longer than a soak run.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bg96_sim::{InjectPoint, SimConfig, Simulator};
use common::{FastClock, PoliteSerial, Rng};
use quectel_bg96::Error;

const TCP: usize = 8;
const UDP: usize = 4;
/// A destructive fault explains errors up to this long after it.
const EXPLAINS: Duration = Duration::from_secs(2);

fn seconds() -> u64 {
    std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10)
}

fn seed(front: &str) -> u64 {
    let s = std::env::var("SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    println!("soak ({front}): seed {s} (replay with SOAK_SEED={s}), {} s", seconds());
    s
}

fn sim_config() -> SimConfig {
    SimConfig {
        boot_delay: Duration::from_millis(20),
        deferred_delay: Duration::from_millis(5),
        ..SimConfig::default()
    }
}

/// The byte stream of one TCP session: AT framing and all byte values, shifted per session.
struct Stream {
    pattern: Arc<Vec<u8>>,
    session: u64,
}

impl Stream {
    fn bytes(&self, offset: u64, len: usize) -> Vec<u8> {
        let p = &self.pattern;
        (0..len as u64).map(|i| p[((offset + i + self.session * 131) % p.len() as u64) as usize]).collect()
    }
}

/// Counters shared by the workers and the fault injector.
#[derive(Default)]
struct Tally {
    up: AtomicU64,
    down: AtomicU64,
    lost: AtomicU64,
    harmless: AtomicU64,
    destructive: AtomicU64,
    lost_by_design: AtomicU64,
    unexplained: Mutex<Vec<String>>,
    destructive_at: Mutex<Vec<Instant>>,
    sessions: AtomicU64,
}

impl Tally {
    fn explained(&self, since: Instant) -> bool {
        let now = Instant::now();
        self.destructive_at
            .lock()
            .unwrap()
            .iter()
            .any(|&t| t + EXPLAINS >= since && t <= now + Duration::from_millis(50))
    }

    /// A session or an attempt ended with `e`; `since` is when it started.
    fn error(&self, what: &str, e: Error, since: Instant) {
        if self.explained(since) {
            self.lost_by_design.fetch_add(1, Ordering::Relaxed);
        } else {
            self.unexplained.lock().unwrap().push(format!("{what}: {e:?}"));
        }
    }

    fn report(&self, front: &str, elapsed: Duration, leaked: usize) {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let up = self.up.load(Ordering::Relaxed);
        let down = self.down.load(Ordering::Relaxed);
        println!("soak ({front}) after {:.1} s on 12 sockets ({TCP} TCP, {UDP} UDP):", elapsed.as_secs_f64());
        println!("  bytes moved:        {up} up ({:.2} MiB), {down} down ({:.2} MiB)", mib(up), mib(down));
        println!("  sessions:           {}", self.sessions.load(Ordering::Relaxed));
        println!(
            "  faults survived:    {} ({} harmless, {} destructive; {} connections lost by design with a typed error)",
            self.harmless.load(Ordering::Relaxed) + self.destructive.load(Ordering::Relaxed),
            self.harmless.load(Ordering::Relaxed),
            self.destructive.load(Ordering::Relaxed),
            self.lost_by_design.load(Ordering::Relaxed)
        );
        println!("  bytes lost:         {}", self.lost.load(Ordering::Relaxed));
        println!("  unexplained errors: {}", self.unexplained.lock().unwrap().len());
        println!("  connectIDs leaked:  {leaked}");
    }
}

/// Injects random faults until `stop`; every one is counted.
fn injector(sim: Simulator, mut rng: Rng, stop: Arc<AtomicBool>, tally: Arc<Tally>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let harmless_urcs = [
            "+QIND: \"csq\",20,99",
            "+QIURC: \"recv\",11",
            "+QIURC: \"dnsgip\",0,1,600",
            "+QIURC: \"incoming full\"",
            "+CPIN: READY",
            "+QIND: SMS DONE",
        ];
        // the last one: a line of noise longer than the stack's line buffer (384 bytes)
        let garbage: [&[u8]; 6] =
            [&[0u8; 40], &[0xffu8; 40], b"\r\n\r\n\n\r", b"\r\n+UNKNOWN: 1\r\n", b"\x1b[0m~~noise~~", &[b'x'; 1000]];
        let mut last_destructive = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20 + rng.below(100)));
            if last_destructive.elapsed() > Duration::from_millis(1500 + rng.below(1000)) {
                last_destructive = Instant::now();
                tally.destructive_at.lock().unwrap().push(Instant::now());
                match rng.below(4) {
                    0 | 1 => {
                        let tcp: Vec<u8> = sim
                            .open_sockets()
                            .iter()
                            .filter(|s| s.service_type == bg96_sim::ServiceType::Tcp)
                            .map(|s| s.connect_id)
                            .collect();
                        if tcp.is_empty() {
                            continue;
                        }
                        sim.close_from_peer(tcp[rng.below(tcp.len() as u64) as usize]);
                    }
                    2 => sim.pdp_deactivate(1),
                    _ => sim.reboot(),
                }
                tally.destructive.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            match rng.below(7) {
                0 => {
                    let k = 1 + rng.below(64) as usize;
                    sim.set_output_chunking(Some((k, Duration::from_micros(rng.below(50)))));
                    std::thread::sleep(Duration::from_millis(50 + rng.below(200)));
                    sim.set_output_chunking(None);
                }
                1 => sim.emit_garbage(garbage[rng.below(garbage.len() as u64) as usize]),
                2 => sim.inject_urc(InjectPoint::Now, harmless_urcs[rng.below(harmless_urcs.len() as u64) as usize]),
                3 => {
                    let cmd = ["AT+QIRD", "AT+QISEND", "AT+QIOPEN", "AT+QICLOSE"][rng.below(4) as usize];
                    let urc = harmless_urcs[rng.below(harmless_urcs.len() as u64) as usize];
                    if rng.chance(50) {
                        let after_line = [0, 2, 3][rng.below(3) as usize];
                        sim.inject_urc(InjectPoint::BetweenLines { command_prefix: cmd.into(), after_line }, urc);
                    } else {
                        sim.inject_urc(InjectPoint::AfterFinal { command_prefix: cmd.into() }, urc);
                    }
                }
                4 => sim.send_fail_next(1 + rng.below(3) as usize),
                5 => {
                    let cmd = ["AT+QIRD", "AT+QISEND", "AT+QIOPEN", "AT+QICLOSE"][rng.below(4) as usize];
                    sim.delay_response(cmd, Duration::from_millis(5 + rng.below(50)));
                }
                _ => sim.inject_urc(InjectPoint::Now, "+QIURC: \"recv\",11"),
            }
            tally.harmless.fetch_add(1, Ordering::Relaxed);
        }
        sim.set_output_chunking(None);
        sim.send_fail_next(0);
    })
}

// -------------------------------------------------------------------------------------------
// Async front

type Stack = &'static common::FastStack;

async fn tcp_worker(stack: Stack, echo: SocketAddr, i: usize, mut rng: Rng, until: Instant, tally: Arc<Tally>) {
    use embedded_io_async::{Read, Write};
    use embedded_nal_async::TcpConnect;
    let pattern = Arc::new(common::nasty_payload(4099));
    let mut session = i as u64 * 1000;
    while Instant::now() < until {
        session += 1;
        let start = Instant::now();
        let mut conn = match stack.connect(echo).await {
            Ok(c) => c,
            Err(e) => {
                tally.error(&format!("tcp {i}: connect"), e, start);
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        tally.sessions.fetch_add(1, Ordering::Relaxed);
        let stream = Stream { pattern: pattern.clone(), session };
        let mut offset = 0u64;
        let mut ended: Option<Error> = None;
        'session: while Instant::now() < until && rng.below(40) != 0 {
            let len = 1 + rng.below(6000) as usize;
            let data = stream.bytes(offset, len);
            if let Err(e) = conn.write_all(&data).await {
                ended = Some(e);
                break;
            }
            tally.up.fetch_add(len as u64, Ordering::Relaxed);
            let mut got = 0;
            let mut buf = [0u8; 1500];
            while got < len {
                match tokio::time::timeout(Duration::from_secs(15), conn.read(&mut buf)).await {
                    Err(_) => {
                        tally.lost.fetch_add((len - got) as u64, Ordering::Relaxed);
                        tally.unexplained.lock().unwrap().push(format!("tcp {i}: echo never came ({got}/{len})"));
                        break 'session;
                    }
                    Ok(Ok(0)) => {
                        ended = Some(Error::Closed);
                        break 'session;
                    }
                    Ok(Ok(n)) => {
                        let want = &data[got..got + n];
                        let bad = buf[..n].iter().zip(want).filter(|(a, b)| a != b).count();
                        if bad > 0 {
                            tally.lost.fetch_add(bad as u64, Ordering::Relaxed);
                            tally.unexplained.lock().unwrap().push(format!("tcp {i}: {bad} corrupted bytes"));
                        }
                        got += n;
                        tally.down.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Ok(Err(e)) => {
                        ended = Some(e);
                        break 'session;
                    }
                }
            }
            offset += len as u64;
        }
        match ended {
            Some(e) => tally.error(&format!("tcp {i}"), e, start),
            None => {
                let _ = conn.close().await;
                continue;
            }
        }
        drop(conn);
    }
}

async fn udp_worker(stack: Stack, echo: SocketAddr, i: usize, mut rng: Rng, until: Instant, tally: Arc<Tally>) {
    use embedded_nal_async::{ConnectedUdp, UdpStack};
    let pattern = common::nasty_payload(4099);
    while Instant::now() < until {
        let start = Instant::now();
        let mut sock = match stack.connect(echo).await {
            Ok((_, s)) => s,
            Err(e) => {
                tally.error(&format!("udp {i}: connect"), e, start);
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        tally.sessions.fetch_add(1, Ordering::Relaxed);
        let mut seq = 0u64;
        while Instant::now() < until && rng.below(60) != 0 {
            seq += 1;
            let len = 1 + rng.below(1460) as usize;
            let off = rng.below(pattern.len() as u64) as usize;
            let mut d: Vec<u8> = (0..len).map(|k| pattern[(off + k) % pattern.len()]).collect();
            d[..len.min(8)].copy_from_slice(&seq.to_be_bytes()[..len.min(8)]);
            let sent_at = Instant::now();
            if let Err(e) = sock.send(&d).await {
                tally.error(&format!("udp {i}: send"), e, start);
                break;
            }
            tally.up.fetch_add(len as u64, Ordering::Relaxed);
            let mut buf = [0u8; 1500];
            match tokio::time::timeout(Duration::from_secs(5), sock.receive_into(&mut buf)).await {
                Ok(Ok(n)) => {
                    tally.down.fetch_add(n as u64, Ordering::Relaxed);
                    if buf[..n] != d[..] {
                        tally.lost.fetch_add(len as u64, Ordering::Relaxed);
                        tally.unexplained.lock().unwrap().push(format!("udp {i}: datagram {seq} came back different"));
                    }
                }
                Ok(Err(e)) => {
                    tally.error(&format!("udp {i}: receive"), e, start);
                    break;
                }
                Err(_) => {
                    if tally.explained(sent_at) {
                        tally.lost_by_design.fetch_add(1, Ordering::Relaxed);
                    } else {
                        tally.lost.fetch_add(len as u64, Ordering::Relaxed);
                        tally.unexplained.lock().unwrap().push(format!("udp {i}: datagram {seq} never came back"));
                    }
                    break;
                }
            }
        }
        drop(sock);
    }
}

/// After the run: nothing open anywhere, and all 12 connectIDs can be opened again.
async fn a_leaks(sim: &Simulator, stack: Stack, echo: SocketAddr) -> usize {
    use embedded_nal_async::TcpConnect;
    let _ = tokio::time::timeout(Duration::from_secs(20), stack.flush_closes()).await;
    let mut leaked = sim.open_sockets().len().max(stack.sockets_in_use());
    let mut conns = Vec::new();
    for _ in 0..12 {
        let mut attempt = 0;
        loop {
            match stack.connect(echo).await {
                Ok(c) => {
                    conns.push(c);
                    break;
                }
                Err(_) if attempt < 3 => attempt += 1,
                Err(e) => {
                    println!("  reopening after the soak: {e:?}");
                    break;
                }
            }
        }
    }
    leaked = leaked.max(12 - conns.len());
    for c in conns {
        let _ = c.close().await;
    }
    let _ = stack.flush_closes().await;
    leaked.max(sim.open_sockets().len())
}

#[test]
fn soak_async() {
    let seed = seed("async");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, async move {
        let mut rng = Rng::new(seed);
        let (sim, stack) = common::sim_stack_fast(sim_config(), common::config(), FastClock::default(), false).await;
        tokio::time::sleep(Duration::from_millis(60)).await;
        stack.bring_up().await.expect("bring-up");
        let stack: Stack = Box::leak(Box::new(stack));
        let echo = common::echo_server();
        let udp_echo = common::udp_echo_server();
        let tally = Arc::new(Tally::default());
        let t0 = Instant::now();
        let until = t0 + Duration::from_secs(seconds());
        let stop = Arc::new(AtomicBool::new(false));
        let inj = injector(sim.clone(), Rng::new(rng.next_u64()), stop.clone(), tally.clone());
        let mut tasks = Vec::new();
        for i in 0..TCP {
            tasks.push(tokio::task::spawn_local(tcp_worker(
                stack,
                echo,
                i,
                Rng::new(rng.next_u64()),
                until,
                tally.clone(),
            )));
        }
        for i in 0..UDP {
            tasks.push(tokio::task::spawn_local(udp_worker(
                stack,
                udp_echo,
                i,
                Rng::new(rng.next_u64()),
                until,
                tally.clone(),
            )));
        }
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(seconds() + 60), t).await.expect("a worker hung").unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || inj.join().unwrap()).await.unwrap();
        // let a reboot injected last finish
        tokio::time::sleep(Duration::from_millis(200)).await;
        let leaked = a_leaks(&sim, stack, echo).await;
        check(&tally, "async", t0.elapsed(), leaked);
    });
}

fn check(tally: &Tally, front: &str, elapsed: Duration, leaked: usize) {
    tally.report(front, elapsed, leaked);
    for u in tally.unexplained.lock().unwrap().iter().take(20) {
        println!("  unexplained: {u}");
    }
    assert_eq!(tally.lost.load(Ordering::Relaxed), 0, "bytes lost");
    assert_eq!(leaked, 0, "connectIDs leaked");
    assert!(tally.unexplained.lock().unwrap().is_empty(), "errors no fault explains");
    assert!(tally.up.load(Ordering::Relaxed) > 0 && tally.down.load(Ordering::Relaxed) > 0, "nothing moved");
}

// -------------------------------------------------------------------------------------------
// Blocking front: one loop serves all 12 sockets, round robin, without blocking on any.

use embedded_nal::{TcpClientStack, UdpClientStack};
use quectel_bg96::blocking::{Bg96, TcpSocket, UdpSocket};

type Modem = Bg96<PoliteSerial<bg96_sim::HostPort>, FastClock>;

enum Sock {
    Idle { since: Instant },
    Tcp { s: TcpSocket, stream: Stream, offset: u64, pending: Vec<u8>, got: usize, start: Instant, rounds: u32 },
    Udp { s: UdpSocket, pending: Vec<u8>, sent_at: Instant, start: Instant, rounds: u32 },
}

#[test]
fn soak_blocking() {
    let seed = seed("blocking");
    let mut rng = Rng::new(seed);
    let (sim, port) = Simulator::spawn(sim_config());
    std::thread::sleep(Duration::from_millis(60));
    let modem: Modem = Bg96::new(PoliteSerial(port), FastClock::default(), common::config());
    modem.bring_up().expect("bring-up");
    let echo = common::echo_server();
    let udp_echo = common::udp_echo_server();
    let tally = Arc::new(Tally::default());
    let pattern = Arc::new(common::nasty_payload(4099));
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(seconds());
    let stop = Arc::new(AtomicBool::new(false));
    let inj = injector(sim.clone(), Rng::new(rng.next_u64()), stop.clone(), tally.clone());
    let mut st = &modem;
    let mut socks: Vec<Sock> = (0..12).map(|_| Sock::Idle { since: Instant::now() }).collect();
    let mut session = 0u64;
    let mut buf = [0u8; 1500];
    while Instant::now() < until {
        for (i, slot) in socks.iter_mut().enumerate() {
            let tcp = i < TCP;
            let state = std::mem::replace(slot, Sock::Idle { since: Instant::now() });
            *slot = match state {
                Sock::Idle { since } if since.elapsed() < Duration::from_millis(10) => Sock::Idle { since },
                Sock::Idle { .. } if tcp => {
                    let start = Instant::now();
                    let mut s = TcpClientStack::socket(&mut st).unwrap();
                    let r = loop {
                        match TcpClientStack::connect(&mut st, &mut s, echo) {
                            Ok(()) => break Ok(()),
                            Err(nb::Error::WouldBlock) => {
                                assert!(start.elapsed() < Duration::from_secs(200), "connect hung");
                                std::thread::sleep(Duration::from_micros(200));
                            }
                            Err(nb::Error::Other(e)) => break Err(e),
                        }
                    };
                    match r {
                        Ok(()) => {
                            session += 1;
                            tally.sessions.fetch_add(1, Ordering::Relaxed);
                            let stream = Stream { pattern: pattern.clone(), session };
                            Sock::Tcp { s, stream, offset: 0, pending: Vec::new(), got: 0, start, rounds: 0 }
                        }
                        Err(e) => {
                            let _ = TcpClientStack::close(&mut st, s);
                            tally.error(&format!("tcp {i}: connect"), e, start);
                            Sock::Idle { since: Instant::now() }
                        }
                    }
                }
                Sock::Idle { .. } => {
                    let start = Instant::now();
                    let mut s = UdpClientStack::socket(&mut st).unwrap();
                    match UdpClientStack::connect(&mut st, &mut s, udp_echo) {
                        Ok(()) => {
                            tally.sessions.fetch_add(1, Ordering::Relaxed);
                            Sock::Udp { s, pending: Vec::new(), sent_at: Instant::now(), start, rounds: 0 }
                        }
                        Err(e) => {
                            let _ = UdpClientStack::close(&mut st, s);
                            tally.error(&format!("udp {i}: connect"), e, start);
                            Sock::Idle { since: Instant::now() }
                        }
                    }
                }
                Sock::Tcp { mut s, stream, mut offset, mut pending, mut got, start, mut rounds } => {
                    let mut fail: Option<Error> = None;
                    if got >= pending.len() {
                        // next round (or the end of the session)
                        if rounds > 0 && rng.below(30) == 0 {
                            let _ = TcpClientStack::close(&mut st, s);
                            *slot = Sock::Idle { since: Instant::now() };
                            continue;
                        }
                        rounds += 1;
                        let len = 1 + rng.below(4000) as usize;
                        pending = stream.bytes(offset, len);
                        offset += len as u64;
                        got = 0;
                        let mut sent = 0;
                        let t = Instant::now();
                        while sent < len && fail.is_none() {
                            match TcpClientStack::send(&mut st, &mut s, &pending[sent..]) {
                                Ok(n) => sent += n,
                                Err(nb::Error::WouldBlock) => {
                                    assert!(t.elapsed() < Duration::from_secs(120), "send hung");
                                    std::thread::sleep(Duration::from_micros(200));
                                }
                                Err(nb::Error::Other(e)) => fail = Some(e),
                            }
                        }
                        tally.up.fetch_add(sent as u64, Ordering::Relaxed);
                    } else {
                        match TcpClientStack::receive(&mut st, &mut s, &mut buf) {
                            Ok(n) => {
                                let want = &pending[got..(got + n).min(pending.len())];
                                let bad = buf[..n].iter().zip(want).filter(|(a, b)| a != b).count()
                                    + n.saturating_sub(want.len());
                                if bad > 0 {
                                    tally.lost.fetch_add(bad as u64, Ordering::Relaxed);
                                    tally.unexplained.lock().unwrap().push(format!("tcp {i}: {bad} corrupted bytes"));
                                }
                                got += n;
                                tally.down.fetch_add(n as u64, Ordering::Relaxed);
                            }
                            Err(nb::Error::WouldBlock) => {}
                            Err(nb::Error::Other(e)) => fail = Some(e),
                        }
                    }
                    match fail {
                        Some(e) => {
                            let _ = TcpClientStack::close(&mut st, s);
                            tally.error(&format!("tcp {i}"), e, start);
                            Sock::Idle { since: Instant::now() }
                        }
                        None => Sock::Tcp { s, stream, offset, pending, got, start, rounds },
                    }
                }
                Sock::Udp { mut s, mut pending, mut sent_at, start, mut rounds } => {
                    let mut fail: Option<Error> = None;
                    if pending.is_empty() {
                        if rounds > 0 && rng.below(60) == 0 {
                            let _ = UdpClientStack::close(&mut st, s);
                            *slot = Sock::Idle { since: Instant::now() };
                            continue;
                        }
                        rounds += 1;
                        let len = 1 + rng.below(1460) as usize;
                        let off = rng.below(pattern.len() as u64) as usize;
                        pending = (0..len).map(|k| pattern[(off + k) % pattern.len()]).collect();
                        pending[..len.min(4)].copy_from_slice(&rounds.to_be_bytes()[..len.min(4)]);
                        sent_at = Instant::now();
                        loop {
                            match UdpClientStack::send(&mut st, &mut s, &pending) {
                                Ok(()) => {
                                    tally.up.fetch_add(len as u64, Ordering::Relaxed);
                                    break;
                                }
                                Err(nb::Error::WouldBlock) => std::thread::sleep(Duration::from_micros(200)),
                                Err(nb::Error::Other(e)) => {
                                    fail = Some(e);
                                    break;
                                }
                            }
                        }
                    } else {
                        match UdpClientStack::receive(&mut st, &mut s, &mut buf) {
                            Ok((n, _)) => {
                                tally.down.fetch_add(n as u64, Ordering::Relaxed);
                                if buf[..n] != pending[..] {
                                    tally.lost.fetch_add(pending.len() as u64, Ordering::Relaxed);
                                    tally
                                        .unexplained
                                        .lock()
                                        .unwrap()
                                        .push(format!("udp {i}: datagram came back different"));
                                }
                                pending.clear();
                            }
                            Err(nb::Error::WouldBlock) if sent_at.elapsed() > Duration::from_secs(5) => {
                                if tally.explained(sent_at) {
                                    tally.lost_by_design.fetch_add(1, Ordering::Relaxed);
                                } else {
                                    tally.lost.fetch_add(pending.len() as u64, Ordering::Relaxed);
                                    tally
                                        .unexplained
                                        .lock()
                                        .unwrap()
                                        .push(format!("udp {i}: datagram never came back"));
                                }
                                let _ = UdpClientStack::close(&mut st, s);
                                *slot = Sock::Idle { since: Instant::now() };
                                continue;
                            }
                            Err(nb::Error::WouldBlock) => {}
                            Err(nb::Error::Other(e)) => fail = Some(e),
                        }
                    }
                    match fail {
                        Some(e) => {
                            let _ = UdpClientStack::close(&mut st, s);
                            tally.error(&format!("udp {i}"), e, start);
                            Sock::Idle { since: Instant::now() }
                        }
                        None => Sock::Udp { s, pending, sent_at, start, rounds },
                    }
                }
            };
        }
    }
    // finish the TCP sessions: every byte sent must come back
    let drain_until = Instant::now() + Duration::from_secs(20);
    for (i, slot) in socks.iter_mut().enumerate() {
        let state = std::mem::replace(slot, Sock::Idle { since: Instant::now() });
        match state {
            Sock::Tcp { mut s, pending, mut got, start, .. } => {
                while got < pending.len() {
                    match TcpClientStack::receive(&mut st, &mut s, &mut buf) {
                        Ok(n) => {
                            let want = &pending[got..(got + n).min(pending.len())];
                            let bad = buf[..n].iter().zip(want).filter(|(a, b)| a != b).count();
                            if bad > 0 {
                                tally.lost.fetch_add(bad as u64, Ordering::Relaxed);
                            }
                            got += n;
                            tally.down.fetch_add(n as u64, Ordering::Relaxed);
                        }
                        Err(nb::Error::WouldBlock) if Instant::now() < drain_until => {
                            std::thread::sleep(Duration::from_micros(200))
                        }
                        Err(nb::Error::WouldBlock) => {
                            tally.lost.fetch_add((pending.len() - got) as u64, Ordering::Relaxed);
                            tally.unexplained.lock().unwrap().push(format!("tcp {i}: echo never came"));
                            break;
                        }
                        Err(nb::Error::Other(e)) => {
                            tally.error(&format!("tcp {i}"), e, start);
                            break;
                        }
                    }
                }
                let _ = TcpClientStack::close(&mut st, s);
            }
            Sock::Udp { s, .. } => {
                let _ = UdpClientStack::close(&mut st, s);
            }
            Sock::Idle { .. } => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    inj.join().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    // leaks: nothing open, and all 12 again
    let _ = modem.poll();
    let mut socks = Vec::new();
    for _ in 0..12 {
        let mut s = TcpClientStack::socket(&mut st).unwrap();
        let t = Instant::now();
        let mut ok = false;
        for _attempt in 0..3 {
            match loop {
                match TcpClientStack::connect(&mut st, &mut s, echo) {
                    Err(nb::Error::WouldBlock) if t.elapsed() < Duration::from_secs(60) => {
                        std::thread::sleep(Duration::from_micros(200))
                    }
                    other => break other,
                }
            } {
                Ok(()) => {
                    ok = true;
                    break;
                }
                Err(e) => println!("  reopening after the soak: {e:?}"),
            }
        }
        if ok {
            socks.push(s);
        } else {
            let _ = TcpClientStack::close(&mut st, s);
        }
    }
    let reopened = socks.len();
    for s in socks {
        let _ = TcpClientStack::close(&mut st, s);
    }
    let leaked = (12 - reopened).max(sim.open_sockets().len()).max(modem.sockets_in_use());
    check(&tally, "blocking", t0.elapsed(), leaked);
}
