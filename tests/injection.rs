//! Payload injection: an adversarial peer sends payloads made of AT framing (`\r\nOK\r\n`,
//! `\r\n> `, `+QIURC: "closed",0`, `RDY`, `+QIRD: 9999`, `\r\nNO CARRIER\r\n`, `+QIOPEN: 0,0`,
//! `SEND OK`, `+CME ERROR`, `pdpdeact`, a fake direct-push header...) and all 256 byte values,
//! over TCP (buffer access mode), UDP (a `"UDP"` client and a bound `"UDP SERVICE"`) and direct
//! push, on the blocking and the async front, in both directions. Nothing of it may ever be
//! taken for modem output:
//!
//! * the data arrives byte-exact, in order, once;
//! * the stack's [`Stats`](quectel_bg96::Stats) show no unknown lines, no stray final results,
//!   no overlong lines, and no more URCs than the modem really sent (the `+QIURC: "recv"` lines
//!   the simulator emitted outside of any payload, counted from its wire log);
//! * every socket stays open (send and receive keep working, the simulator agrees), and no
//!   reboot is "detected" (no second bring-up on the wire, recovery state untouched).
//!
//! Transparent access mode is in-band by the manual's design (`NO CARRIER` and the `+++`
//! escape *are* data bytes there), so for it the tests only check that normal data containing
//! AT framing and all byte values passes both ways intact.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use bg96_sim::{SimConfig, Simulator};
use common::{FastClock, PoliteSerial, sent_commands};
use embedded_io_async::Write as _;
use embedded_nal::{TcpClientStack, UdpClientStack, UdpFullStack};
use quectel_bg96::blocking::{Bg96, SocketHandle, TcpSocket};
use quectel_bg96::core::Stats;

type Modem = Bg96<PoliteSerial<bg96_sim::HostPort>, FastClock>;

const PATIENCE: Duration = Duration::from_secs(20);
const GUARD: Duration = Duration::from_millis(150);

/// Pieces of modem output an adversarial peer puts into its data.
const FRAMING: [&[u8]; 22] = [
    b"\r\nOK\r\n",
    b"OK\r\n",
    b"\r\n> ",
    b"> ",
    b"+QIURC: \"closed\",0\r\n",
    b"\r\n+QIURC: \"closed\",1\r\n",
    b"RDY",
    b"\r\nRDY\r\n",
    b"\r\nAPP RDY\r\n",
    b"+QIRD: 9999",
    b"\r\n+QIRD: 9999\r\n",
    b"\r\n+QIRD: 5,\"1.2.3.4\",5\r\n",
    b"\r\nNO CARRIER\r\n",
    b"+QIOPEN: 0,0",
    b"\r\n+QIOPEN: 0,0\r\n",
    b"\r\nSEND OK\r\n",
    b"\r\nSEND FAIL\r\n",
    b"\r\nERROR\r\n",
    b"\r\n+CME ERROR: 550\r\n",
    b"\r\n+QIURC: \"pdpdeact\",1\r\n",
    b"\r\nPOWERED DOWN\r\n",
    b"\r\n+QIURC: \"incoming\",11,0,\"1.2.3.4\",5\r\n",
];

/// A fake direct-push header with its data (the most dangerous thing for direct push mode).
const FAKE_PUSH: &[u8] = b"\r\n+QIURC: \"recv\",0,5\r\nhello\r\n";

/// `len` bytes of AT framing and all 256 byte values (shifted by `seed`); with `push` also
/// fake direct-push headers. Without `push` it contains no `+QIURC: "recv"`, so that the real
/// ones can be counted on the wire.
fn adversarial(len: usize, seed: u8, push: bool) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 300);
    let mut i = 0usize;
    while v.len() < len {
        v.extend_from_slice(FRAMING[(i + seed as usize) % FRAMING.len()]);
        if push && i.is_multiple_of(3) {
            v.extend_from_slice(FAKE_PUSH);
        }
        if i.is_multiple_of(2) {
            v.extend((0..=255u8).map(|b| b.wrapping_add(seed)));
        } else {
            v.extend((0..=255u8).rev());
        }
        i += 1;
    }
    v.truncate(len);
    v
}

/// Transparent mode: the same without the sequences that are in-band there.
fn transparent_data(len: usize, seed: u8) -> Vec<u8> {
    let mut v = Vec::with_capacity(len + 300);
    let mut i = 0usize;
    while v.len() < len {
        let piece = FRAMING[(i + seed as usize) % FRAMING.len()];
        if !piece.windows(10).any(|w| w == b"NO CARRIER") {
            v.extend_from_slice(piece);
        }
        v.extend((0..=255u8).map(|b| b.wrapping_add(seed).wrapping_add(i as u8)));
        i += 1;
    }
    v.truncate(len);
    v
}

#[track_caller]
fn assert_exact(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        panic!("{what}: got {} bytes, want {}; first difference at byte {at}", got.len(), want.len());
    }
}

/// `+QIURC: "recv"` lines the simulator sent outside of any payload: payload only travels in
/// `+QIRD` answers (buffer mode) and after direct-push headers, both framed by count, so the
/// wire log is walked with the same framing. (Used with payloads that contain no `"recv"`.)
fn recv_urcs_on_wire(sim: &Simulator) -> usize {
    let mut bytes = Vec::new();
    for r in sim.wire_log() {
        if r.direction == bg96_sim::Direction::FromModem {
            bytes.extend_from_slice(&r.bytes);
        }
    }
    let needle = b"+QIURC: \"recv\"";
    bytes.windows(needle.len()).filter(|w| w == needle).count()
}

/// What must not change while hostile data goes through.
struct Watch {
    stats: Stats,
    ate0: usize,
    recv_urcs: usize,
}

impl Watch {
    fn new(stats: Stats, sim: &Simulator) -> Self {
        let ate0 = sent_commands(sim).iter().filter(|c| *c == "ATE0").count();
        Watch { stats, ate0, recv_urcs: recv_urcs_on_wire(sim) }
    }

    /// `count_urcs`: the payload had no `"recv"` text, so URCs can be counted exactly.
    #[track_caller]
    fn check(&self, now: Stats, sim: &Simulator, count_urcs: bool, what: &str) {
        let d = |a: u32, b: u32| a.wrapping_sub(b);
        assert_eq!(d(now.unknown_lines, self.stats.unknown_lines), 0, "{what}: payload taken for unknown lines");
        assert_eq!(d(now.stray_finals, self.stats.stray_finals), 0, "{what}: payload taken for final results");
        assert_eq!(d(now.line_overflows, self.stats.line_overflows), 0, "{what}: payload taken for a line");
        assert_eq!(d(now.incoming_full, self.stats.incoming_full), 0, "{what}: payload taken for a URC");
        assert_eq!(now.bytes_lost, self.stats.bytes_lost, "{what}: bytes lost");
        if count_urcs {
            let real = recv_urcs_on_wire(sim) - self.recv_urcs;
            let seen = d(now.urcs, self.stats.urcs) as usize;
            assert!(
                seen <= real,
                "{what}: the stack handled {seen} URCs, the modem sent {real}: payload taken for URCs"
            );
        }
        let ate0 = sent_commands(sim).iter().filter(|c| *c == "ATE0").count();
        assert_eq!(ate0, self.ate0, "{what}: a reboot was 'detected' (bring-up ran again)");
    }
}

// -------------------------------------------------------------------------------------------
// Blocking front

fn blocking(sim_config: SimConfig) -> (Simulator, Modem) {
    let (sim, port) = Simulator::spawn(sim_config);
    std::thread::sleep(Duration::from_millis(60));
    let mut c = common::config();
    c.timeouts.guard_time_ms = GUARD.as_millis() as u32;
    let modem = Bg96::new(PoliteSerial(port), FastClock::default(), c);
    modem.bring_up().expect("bring-up");
    (sim, modem)
}

fn b_wait<T, E: std::fmt::Debug>(what: &str, mut f: impl FnMut() -> nb::Result<T, E>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match f() {
            Ok(v) => return v,
            Err(nb::Error::Other(e)) => panic!("{what}: {e:?}"),
            Err(nb::Error::WouldBlock) => {
                assert!(Instant::now() < deadline, "{what}: still WouldBlock after {PATIENCE:?}");
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

fn b_tcp_pair(modem: &Modem) -> (TcpSocket, TcpStream) {
    let mut st = modem;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sock = TcpClientStack::socket(&mut st).unwrap();
    b_wait("connect", || TcpClientStack::connect(&mut st, &mut sock, listener.local_addr().unwrap()));
    let (peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(PATIENCE)).unwrap();
    (sock, peer)
}

fn b_receive(modem: &Modem, sock: &mut TcpSocket, n: usize) -> Vec<u8> {
    let mut st = modem;
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    while got.len() < n {
        let k = b_wait("receive", || TcpClientStack::receive(&mut st, sock, &mut buf));
        got.extend_from_slice(&buf[..k]);
    }
    got
}

fn b_send(modem: &Modem, sock: &mut TcpSocket, data: &[u8]) {
    let mut st = modem;
    let mut sent = 0;
    while sent < data.len() {
        sent += b_wait("send", || TcpClientStack::send(&mut st, sock, &data[sent..]));
    }
}

/// The socket still works both ways and the modem still has it open.
fn b_still_open(sim: &Simulator, modem: &Modem, sock: &mut TcpSocket, peer: &mut TcpStream) {
    b_send(modem, sock, b"still there?");
    let mut v = [0u8; 12];
    peer.read_exact(&mut v).unwrap();
    assert_eq!(&v, b"still there?");
    peer.write_all(b"yes").unwrap();
    assert_eq!(b_receive(modem, sock, 3), b"yes");
    let id = sock.connect_id().unwrap();
    assert!(sim.open_sockets().iter().any(|s| s.connect_id == id), "the modem closed connectID {id}");
}

#[test]
fn blocking_tcp_buffer_mode() {
    let (sim, modem) = blocking(SimConfig::default());
    let (mut sock, mut peer) = b_tcp_pair(&modem);
    let watch = Watch::new(modem.stats(), &sim);
    // down: the peer's hostile bytes, in pieces of every size
    let down = adversarial(40_000, 0, false);
    let writer = {
        let mut p = peer.try_clone().unwrap();
        let d = down.clone();
        std::thread::spawn(move || {
            for (i, piece) in d.chunks(997).enumerate() {
                p.write_all(piece).unwrap();
                if i % 7 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    let got = b_receive(&modem, &mut sock, down.len());
    writer.join().unwrap();
    assert_exact(&got, &down, "TCP down");
    // up: the stack sends them
    let up = adversarial(30_000, 7, false);
    b_send(&modem, &mut sock, &up);
    let mut v = vec![0u8; up.len()];
    peer.read_exact(&mut v).unwrap();
    assert_exact(&v, &up, "TCP up");
    watch.check(modem.stats(), &sim, true, "TCP");
    b_still_open(&sim, &modem, &mut sock, &mut peer);
    let mut st = &modem;
    TcpClientStack::close(&mut st, sock).unwrap();
    assert_eq!(modem.recovery().total_reboots, 0);
}

#[test]
fn blocking_udp_client() {
    let (sim, modem) = blocking(SimConfig::default());
    let echo = common::udp_echo_server();
    let mut st = &modem;
    let mut sock = UdpClientStack::socket(&mut st).unwrap();
    UdpClientStack::connect(&mut st, &mut sock, echo).unwrap();
    let watch = Watch::new(modem.stats(), &sim);
    let mut buf = [0u8; 1500];
    for (i, len) in [1usize, 2, 5, 6, 20, 255, 256, 257, 700, 1000, 1459, 1460].into_iter().enumerate() {
        let d = adversarial(len, i as u8, false);
        b_wait("udp send", || UdpClientStack::send(&mut st, &mut sock, &d));
        let (n, from) = b_wait("udp receive", || UdpClientStack::receive(&mut st, &mut sock, &mut buf));
        assert_eq!(from, echo);
        assert_exact(&buf[..n], &d, &format!("datagram {i} ({len} bytes)"));
    }
    watch.check(modem.stats(), &sim, true, "UDP client");
    assert_eq!(sim.open_sockets().len(), 1);
    UdpClientStack::close(&mut st, sock).unwrap();
}

#[test]
fn blocking_udp_service() {
    let (sim, modem) = blocking(SimConfig::default());
    let port = common::unused_udp_port();
    let mut st = &modem;
    let mut sock = UdpClientStack::socket(&mut st).unwrap();
    UdpFullStack::bind(&mut st, &mut sock, port).unwrap();
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    peer.set_read_timeout(Some(PATIENCE)).unwrap();
    let service = SocketAddr::from(([127, 0, 0, 1], port));
    let watch = Watch::new(modem.stats(), &sim);
    let mut buf = [0u8; 1500];
    for (i, len) in [1usize, 7, 100, 513, 1024, 1460].into_iter().enumerate() {
        let d = adversarial(len, 3 + i as u8, false);
        peer.send_to(&d, service).unwrap();
        let (n, from) = b_wait("service receive", || UdpClientStack::receive(&mut st, &mut sock, &mut buf));
        assert_eq!(from, peer.local_addr().unwrap(), "sender");
        assert_exact(&buf[..n], &d, &format!("datagram {i} ({len} bytes)"));
        let reply = adversarial(len, 100 + i as u8, false);
        b_wait("send_to", || UdpFullStack::send_to(&mut st, &mut sock, from, &reply));
        let mut back = [0u8; 1500];
        let (k, src) = peer.recv_from(&mut back).unwrap();
        assert_eq!(src, service);
        assert_exact(&back[..k], &reply, &format!("reply {i}"));
    }
    watch.check(modem.stats(), &sim, true, "UDP service");
    assert_eq!(sim.open_sockets().len(), 1);
    UdpClientStack::close(&mut st, sock).unwrap();
}

#[test]
fn blocking_direct_push() {
    let (sim, modem) = blocking(SimConfig::default());
    let (mut sock, mut peer) = b_tcp_pair(&modem);
    let buffer: &'static mut [u8] = Box::leak(vec![0u8; 65536].into_boxed_slice());
    modem.enable_direct_push(&sock, buffer).unwrap();
    let watch = Watch::new(modem.stats(), &sim);
    let down = adversarial(30_000, 1, true);
    for piece in down.chunks(1200) {
        peer.write_all(piece).unwrap();
    }
    let got = b_receive(&modem, &mut sock, down.len());
    assert_exact(&got, &down, "direct push down");
    let up = adversarial(10_000, 9, true);
    b_send(&modem, &mut sock, &up);
    let mut v = vec![0u8; up.len()];
    peer.read_exact(&mut v).unwrap();
    assert_exact(&v, &up, "direct push up");
    watch.check(modem.stats(), &sim, false, "direct push");
    assert_eq!(modem.socket_status(&sock).unwrap().access_mode, quectel_bg96::commands::AccessMode::DirectPush);
    b_still_open(&sim, &modem, &mut sock, &mut peer);
    let mut st = &modem;
    TcpClientStack::close(&mut st, sock).unwrap();
}

#[test]
fn blocking_transparent_data_passes() {
    let (sim, modem) = blocking(SimConfig { guard_time: GUARD, ..SimConfig::default() });
    let (mut sock, mut peer) = b_tcp_pair(&modem);
    {
        let mut t = modem.enter_transparent(&sock).unwrap();
        let up = transparent_data(20_000, 2);
        embedded_io::Write::write_all(&mut t, &up).unwrap();
        let mut v = vec![0u8; up.len()];
        peer.read_exact(&mut v).unwrap();
        assert_exact(&v, &up, "transparent up");
        let down = transparent_data(20_000, 5);
        peer.write_all(&down).unwrap();
        let mut got = vec![0u8; down.len()];
        embedded_io::Read::read_exact(&mut t, &mut got).unwrap();
        assert_exact(&got, &down, "transparent down");
        t.exit().unwrap();
    }
    b_still_open(&sim, &modem, &mut sock, &mut peer);
    let mut st = &modem;
    TcpClientStack::close(&mut st, sock).unwrap();
}

// -------------------------------------------------------------------------------------------
// Async front

type Conn = quectel_bg96::asynch::TcpConnection<'static, bg96_sim::HostTx, FastClock>;

fn run<F: std::future::Future<Output = ()>>(f: F) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, async {
        tokio::time::timeout(PATIENCE * 3, f).await.expect("test timed out");
    });
}

async fn asynch(sim_config: SimConfig) -> (Simulator, &'static common::FastStack) {
    let mut c = common::config();
    c.timeouts.guard_time_ms = GUARD.as_millis() as u32;
    let (sim, stack) = common::sim_stack_fast(sim_config, c, FastClock::default(), false).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    stack.bring_up().await.expect("bring-up");
    (sim, Box::leak(Box::new(stack)))
}

async fn a_tcp_pair(stack: &'static common::FastStack) -> (Conn, TcpStream) {
    use embedded_nal_async::TcpConnect;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let conn = stack.connect(listener.local_addr().unwrap()).await.unwrap();
    let (peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(PATIENCE)).unwrap();
    (conn, peer)
}

async fn a_read_exact<R: embedded_io_async::Read>(r: &mut R, n: usize) -> Vec<u8>
where
    R::Error: std::fmt::Debug,
{
    let mut v = vec![0u8; n];
    let mut got = 0;
    while got < n {
        let k = tokio::time::timeout(PATIENCE, r.read(&mut v[got..])).await.expect("read timed out").unwrap();
        assert!(k > 0, "end of stream after {got} of {n}");
        got += k;
    }
    v
}

async fn a_still_open(sim: &Simulator, conn: &mut Conn, peer: &mut TcpStream) {
    conn.write_all(b"still there?").await.unwrap();
    let mut v = [0u8; 12];
    peer.read_exact(&mut v).unwrap();
    assert_eq!(&v, b"still there?");
    peer.write_all(b"yes").unwrap();
    assert_eq!(a_read_exact(conn, 3).await, b"yes");
    let id = conn.connect_id();
    assert!(sim.open_sockets().iter().any(|s| s.connect_id == id), "the modem closed connectID {id}");
}

#[test]
fn async_tcp_buffer_mode() {
    run(async {
        let (sim, stack) = asynch(SimConfig::default()).await;
        let (mut conn, mut peer) = a_tcp_pair(stack).await;
        let watch = Watch::new(stack.stats(), &sim);
        let down = adversarial(40_000, 0, false);
        let writer = {
            let mut p = peer.try_clone().unwrap();
            let d = down.clone();
            std::thread::spawn(move || {
                for piece in d.chunks(997) {
                    p.write_all(piece).unwrap();
                }
            })
        };
        let got = a_read_exact(&mut conn, down.len()).await;
        writer.join().unwrap();
        assert_exact(&got, &down, "TCP down");
        let up = adversarial(30_000, 7, false);
        conn.write_all(&up).await.unwrap();
        let mut v = vec![0u8; up.len()];
        peer.read_exact(&mut v).unwrap();
        assert_exact(&v, &up, "TCP up");
        watch.check(stack.stats(), &sim, true, "TCP");
        a_still_open(&sim, &mut conn, &mut peer).await;
        conn.close().await.unwrap();
        assert_eq!(stack.recovery().total_reboots, 0);
    });
}

#[test]
fn async_udp_client() {
    use embedded_nal_async::{ConnectedUdp, UdpStack};
    run(async {
        let (sim, stack) = asynch(SimConfig::default()).await;
        let echo = common::udp_echo_server();
        let (_, mut sock) = stack.connect(echo).await.unwrap();
        let watch = Watch::new(stack.stats(), &sim);
        let mut buf = [0u8; 1500];
        for (i, len) in [1usize, 2, 5, 6, 20, 255, 256, 257, 700, 1000, 1459, 1460].into_iter().enumerate() {
            let d = adversarial(len, i as u8, false);
            sock.send(&d).await.unwrap();
            let n = tokio::time::timeout(PATIENCE, sock.receive_into(&mut buf)).await.unwrap().unwrap();
            assert_exact(&buf[..n], &d, &format!("datagram {i} ({len} bytes)"));
        }
        watch.check(stack.stats(), &sim, true, "UDP client");
        assert_eq!(sim.open_sockets().len(), 1);
        drop(sock);
        stack.flush_closes().await.unwrap();
    });
}

#[test]
fn async_udp_service() {
    use embedded_nal_async::{UdpStack, UnconnectedUdp};
    run(async {
        let (sim, stack) = asynch(SimConfig::default()).await;
        let port = common::unused_udp_port();
        let (local, mut sock) = stack.bind_single(SocketAddr::from(([0, 0, 0, 0], port))).await.unwrap();
        let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
        peer.set_read_timeout(Some(PATIENCE)).unwrap();
        let service = SocketAddr::from(([127, 0, 0, 1], port));
        let watch = Watch::new(stack.stats(), &sim);
        let mut buf = [0u8; 1500];
        for (i, len) in [1usize, 7, 100, 513, 1024, 1460].into_iter().enumerate() {
            let d = adversarial(len, 3 + i as u8, false);
            peer.send_to(&d, service).unwrap();
            let (n, _, from) = tokio::time::timeout(PATIENCE, sock.receive_into(&mut buf)).await.unwrap().unwrap();
            assert_eq!(from, peer.local_addr().unwrap(), "sender");
            assert_exact(&buf[..n], &d, &format!("datagram {i} ({len} bytes)"));
            let reply = adversarial(len, 100 + i as u8, false);
            sock.send(local, from, &reply).await.unwrap();
            let mut back = [0u8; 1500];
            let (k, src) = peer.recv_from(&mut back).unwrap();
            assert_eq!(src, service);
            assert_exact(&back[..k], &reply, &format!("reply {i}"));
        }
        watch.check(stack.stats(), &sim, true, "UDP service");
        assert_eq!(sim.open_sockets().len(), 1);
        drop(sock);
        stack.flush_closes().await.unwrap();
    });
}

#[test]
fn async_direct_push() {
    run(async {
        let (sim, stack) = asynch(SimConfig::default()).await;
        let (mut conn, mut peer) = a_tcp_pair(stack).await;
        let buffer: &'static mut [u8] = Box::leak(vec![0u8; 65536].into_boxed_slice());
        conn.enable_direct_push(buffer).await.unwrap();
        let watch = Watch::new(stack.stats(), &sim);
        let down = adversarial(30_000, 1, true);
        for piece in down.chunks(1200) {
            peer.write_all(piece).unwrap();
        }
        let got = a_read_exact(&mut conn, down.len()).await;
        assert_exact(&got, &down, "direct push down");
        let up = adversarial(10_000, 9, true);
        conn.write_all(&up).await.unwrap();
        let mut v = vec![0u8; up.len()];
        peer.read_exact(&mut v).unwrap();
        assert_exact(&v, &up, "direct push up");
        watch.check(stack.stats(), &sim, false, "direct push");
        assert_eq!(conn.status().await.unwrap().access_mode, quectel_bg96::commands::AccessMode::DirectPush);
        a_still_open(&sim, &mut conn, &mut peer).await;
        conn.close().await.unwrap();
    });
}

#[test]
fn async_transparent_data_passes() {
    run(async {
        let (sim, stack) = asynch(SimConfig { guard_time: GUARD, ..SimConfig::default() }).await;
        let (mut conn, mut peer) = a_tcp_pair(stack).await;
        {
            let mut t = conn.transparent().await.unwrap();
            let up = transparent_data(20_000, 2);
            t.write_all(&up).await.unwrap();
            let mut v = vec![0u8; up.len()];
            peer.read_exact(&mut v).unwrap();
            assert_exact(&v, &up, "transparent up");
            let down = transparent_data(20_000, 5);
            peer.write_all(&down).unwrap();
            let got = a_read_exact(&mut t, down.len()).await;
            assert_exact(&got, &down, "transparent down");
            t.exit().await.unwrap();
        }
        a_still_open(&sim, &mut conn, &mut peer).await;
        conn.close().await.unwrap();
    });
}
