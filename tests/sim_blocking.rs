//! The blocking stack (embedded-nal 0.9) through the simulator, against real peers on loopback:
//! TCP and UDP clients, DNS, peer close, connectID exhaustion, and the server side (TCP
//! listener with parallel std clients, UDP service with several std peers).

mod common;
mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use bg96_sim::{HostPort, SimConfig};
use common::{StdClock, config, sim_modem};
use embedded_nal::{AddrType, Dns, TcpClientStack, TcpError, TcpErrorKind, TcpFullStack, UdpClientStack, UdpFullStack};
use quectel_bg96::Error;
use quectel_bg96::blocking::{Bg96, SocketHandle, TcpSocket};
use support::{PATIENCE, assert_bytes_eq, free_tcp_port, free_udp_port, payload, retry, tcp_echo_server, tcp_server};

type Modem = Bg96<HostPort, StdClock>;

fn modem() -> (bg96_sim::Simulator, Modem) {
    sim_modem(SimConfig::default(), config())
}

fn tcp_connect(modem: &Modem, remote: SocketAddr) -> TcpSocket {
    let mut s = modem;
    let mut sock = TcpClientStack::socket(&mut s).expect("socket");
    retry("connect", || TcpClientStack::connect(&mut s, &mut sock, remote)).expect("connect");
    sock
}

/// Sends `data` and reads the echo, interleaved (the peer's echo must be read while sending,
/// or both sides stall once the buffers are full); checks it byte for byte.
fn echo_through(modem: &Modem, sock: &mut TcpSocket, data: &[u8]) {
    let mut s = modem;
    let (mut sent, mut got) = (0, Vec::with_capacity(data.len()));
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + PATIENCE;
    while got.len() < data.len() {
        assert!(Instant::now() < deadline, "echo of {} bytes: sent {sent}, got {} back", data.len(), got.len());
        let mut progress = false;
        if sent < data.len() {
            let end = (sent + 4096).min(data.len());
            match TcpClientStack::send(&mut s, sock, &data[sent..end]) {
                Ok(n) => {
                    sent += n;
                    progress = n > 0;
                }
                Err(nb::Error::WouldBlock) => {}
                Err(nb::Error::Other(e)) => panic!("send after {sent} bytes: {e:?}"),
            }
        }
        match TcpClientStack::receive(&mut s, sock, &mut buf) {
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                progress |= n > 0;
            }
            Err(nb::Error::WouldBlock) => {}
            Err(nb::Error::Other(e)) => panic!("receive after {} bytes: {e:?}", got.len()),
        }
        if !progress {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    assert_bytes_eq(&got, data, &format!("echo of {} bytes", data.len()));
}

/// Reads until the stack reports the end of the connection; returns the data and the error.
fn read_to_close(modem: &Modem, sock: &mut TcpSocket, chunk: usize) -> (Vec<u8>, Error) {
    let mut s = modem;
    let mut got = Vec::new();
    let mut buf = vec![0u8; chunk];
    let deadline = Instant::now() + PATIENCE;
    loop {
        assert!(Instant::now() < deadline, "no end of stream after {} bytes", got.len());
        match TcpClientStack::receive(&mut s, sock, &mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(nb::Error::WouldBlock) => std::thread::sleep(Duration::from_micros(200)),
            Err(nb::Error::Other(e)) => return (got, e),
        }
    }
}

fn assert_no_sockets(sim: &bg96_sim::Simulator, modem: &Modem) {
    assert_eq!(modem.sockets_in_use(), 0, "the stack still counts connectIDs in use");
    assert_eq!(sim.open_sockets(), vec![], "the modem still has connectIDs open");
}

#[test]
fn tcp_echo_of_payloads_from_1_byte_to_64_kib() {
    let (sim, modem) = modem();
    let echo = tcp_echo_server();
    let mut sock = tcp_connect(&modem, echo);

    // the framing strings on their own, then every byte value, then growing payloads
    let mut all_bytes: Vec<u8> = (0..=255u8).collect();
    all_bytes.extend((0..=255u8).rev());
    let special: [&[u8]; 7] =
        [b"OK\r\n", b"\r\n> ", b"+QIURC: \"closed\",0", b"\r\nOK\r\n", b">", b"\r\n", b"+QIURC: \"closed\",0\r\n"];
    for data in special {
        echo_through(&modem, &mut sock, data);
    }
    echo_through(&modem, &mut sock, &all_bytes);
    for (i, len) in [1usize, 2, 5, 255, 256, 1459, 1460, 1461, 1500, 1501, 2920, 4097, 16_384, 40_000, 65_536]
        .into_iter()
        .enumerate()
    {
        echo_through(&modem, &mut sock, &payload(len, i as u8));
    }
    let mut s = &modem;
    TcpClientStack::close(&mut s, sock).unwrap();
    assert_no_sockets(&sim, &modem);
}

#[test]
fn tcp_echo_of_64_kib_on_a_fresh_connection_each_time() {
    let (sim, modem) = modem();
    let echo = tcp_echo_server();
    for seed in 0..3 {
        let mut sock = tcp_connect(&modem, echo);
        echo_through(&modem, &mut sock, &payload(65_536, seed));
        TcpClientStack::close(&mut &modem, sock).unwrap();
    }
    assert_no_sockets(&sim, &modem);
}

#[test]
fn udp_echo_through_a_connected_socket() {
    let (sim, modem) = modem();
    let echo = support::udp_echo_server();
    let mut s = &modem;
    let mut sock = UdpClientStack::socket(&mut s).unwrap();
    UdpClientStack::connect(&mut s, &mut sock, echo).unwrap();
    let mut buf = [0u8; 1500];
    let mut datagrams: Vec<Vec<u8>> =
        vec![b"OK\r\n".to_vec(), b"\r\n> ".to_vec(), b"+QIURC: \"closed\",0".to_vec(), (0..=255u8).collect()];
    datagrams.extend([1usize, 2, 100, 1000, 1459, 1460].iter().enumerate().map(|(i, &n)| payload(n, i as u8)));
    for d in &datagrams {
        retry("udp send", || UdpClientStack::send(&mut s, &mut sock, d)).unwrap();
        let (n, from) = retry("udp receive", || UdpClientStack::receive(&mut s, &mut sock, &mut buf)).unwrap();
        assert_eq!(from, echo, "sender of the echo");
        assert_bytes_eq(&buf[..n], d, &format!("datagram of {} bytes", d.len()));
    }
    // several in flight: each comes back as one datagram, in order on loopback
    for d in &datagrams[4..] {
        retry("udp send", || UdpClientStack::send(&mut s, &mut sock, d)).unwrap();
    }
    for d in &datagrams[4..] {
        let (n, _) = retry("udp receive", || UdpClientStack::receive(&mut s, &mut sock, &mut buf)).unwrap();
        assert_bytes_eq(&buf[..n], d, "datagram in a burst");
    }
    // the BG96 sends 1-1460 bytes per AT+QISEND: anything else is refused before the modem
    assert_eq!(UdpClientStack::send(&mut s, &mut sock, &[0u8; 1461]), Err(nb::Error::Other(Error::InvalidArgument)));
    UdpClientStack::close(&mut s, sock).unwrap();
    assert_no_sockets(&sim, &modem);
}

#[test]
fn dns_names_from_the_simulators_table() {
    let v4 = Ipv4Addr::new(127, 0, 0, 1);
    let other_v4 = Ipv4Addr::new(10, 1, 2, 3);
    let sim_config = SimConfig {
        dns: vec![
            ("broker.test".into(), vec![IpAddr::V4(v4)]),
            ("dual.test".into(), vec![IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V4(other_v4)]),
            ("v6only.test".into(), vec![IpAddr::V6(Ipv6Addr::LOCALHOST)]),
        ],
        ..SimConfig::default()
    };
    let (_sim, modem) = sim_modem(sim_config, config());
    let mut s = &modem;
    let mut lookup = |name: &str, t: AddrType| retry(name, || s.get_host_by_name(name, t.clone()));

    assert_eq!(lookup("broker.test", AddrType::IPv4), Ok(IpAddr::V4(v4)));
    assert_eq!(lookup("broker.test", AddrType::Either), Ok(IpAddr::V4(v4)));
    assert_eq!(lookup("BROKER.test", AddrType::Either), Ok(IpAddr::V4(v4)), "names are case-insensitive");
    assert_eq!(lookup("broker.test", AddrType::IPv6), Err(Error::NotFound));
    assert_eq!(lookup("localhost", AddrType::IPv4), Ok(IpAddr::V4(v4)));
    // Either prefers the A record even when the AAAA record comes first
    assert_eq!(lookup("dual.test", AddrType::Either), Ok(IpAddr::V4(other_v4)));
    assert_eq!(lookup("dual.test", AddrType::IPv6), Ok(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(lookup("v6only.test", AddrType::Either), Ok(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    assert_eq!(lookup("v6only.test", AddrType::IPv4), Err(Error::NotFound));
    let unknown = lookup("nowhere.test", AddrType::Either).unwrap_err();
    assert_eq!(unknown, Error::Modem(quectel_bg96::ErrorCode::DnsParseFailed), "{unknown}");
    // addresses in text form need no query
    assert_eq!(lookup("10.9.8.7", AddrType::Either), Ok(IpAddr::V4(Ipv4Addr::new(10, 9, 8, 7))));
    // the stack works on after a failed lookup
    assert_eq!(lookup("broker.test", AddrType::IPv4), Ok(IpAddr::V4(v4)));
    let mut out = [0u8; 64];
    assert_eq!(s.get_host_by_address(IpAddr::V4(v4), &mut out), Err(nb::Error::Other(Error::NotSupported)));
}

#[test]
fn peer_close_mid_stream_delivers_everything_then_pipe_closed() {
    let (sim, modem) = modem();
    let data = payload(20_000, 7);
    let sent = data.clone();
    // the peer writes 20 000 bytes and closes at once, while the stack is still reading
    let server = tcp_server(move |mut stream| {
        stream.write_all(&sent).unwrap();
        stream.shutdown(Shutdown::Both).unwrap();
    });
    let mut sock = tcp_connect(&modem, server);
    let (got, err) = read_to_close(&modem, &mut sock, 700);
    assert_bytes_eq(&got, &data, "data before the close");
    assert_eq!(err, Error::Closed);
    assert_eq!(err.kind(), TcpErrorKind::PipeClosed);
    // it stays closed
    let mut s = &modem;
    let again = TcpClientStack::receive(&mut s, &mut sock, &mut [0u8; 16]);
    assert!(matches!(again, Err(nb::Error::Other(e)) if e.kind() == TcpErrorKind::PipeClosed), "{again:?}");
    let send = TcpClientStack::send(&mut s, &mut sock, b"late");
    assert!(matches!(send, Err(nb::Error::Other(e)) if e.kind() == TcpErrorKind::PipeClosed), "{send:?}");
    TcpClientStack::close(&mut s, sock).unwrap();
    assert_no_sockets(&sim, &modem);
}

#[test]
fn close_injected_by_the_modem_keeps_buffered_data() {
    let (sim, modem) = modem();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sock = tcp_connect(&modem, listener.local_addr().unwrap());
    let id = sock.connect_id().unwrap();
    let (mut peer, _) = listener.accept().unwrap();
    let data = payload(5000, 3);
    peer.write_all(&data).unwrap();
    // wait until the modem holds all of it, then the network closes the connection
    let deadline = Instant::now() + PATIENCE;
    while sim.open_sockets().iter().find(|s| s.connect_id == id).map(|s| s.rx_buffered) != Some(data.len()) {
        assert!(Instant::now() < deadline, "data never reached the modem");
        std::thread::sleep(Duration::from_millis(1));
    }
    sim.close_from_peer(id);
    let (got, err) = read_to_close(&modem, &mut sock, 1500);
    assert_bytes_eq(&got, &data, "data buffered before the close");
    assert_eq!(err.kind(), TcpErrorKind::PipeClosed, "{err:?}");
    TcpClientStack::close(&mut &modem, sock).unwrap();
    assert_no_sockets(&sim, &modem);
}

#[test]
fn peer_closing_while_the_stack_sends_is_pipe_closed() {
    let (sim, modem) = modem();
    // the peer reads a little and goes away
    let server = tcp_server(|mut stream| {
        let mut buf = [0u8; 1000];
        let _ = stream.read_exact(&mut buf);
        drop(stream);
    });
    let mut sock = tcp_connect(&modem, server);
    let mut s = &modem;
    let data = payload(1460, 1);
    let deadline = Instant::now() + PATIENCE;
    let err = loop {
        assert!(Instant::now() < deadline, "sending never failed after the peer left");
        match TcpClientStack::send(&mut s, &mut sock, &data) {
            Ok(_) | Err(nb::Error::WouldBlock) => std::thread::sleep(Duration::from_millis(2)),
            Err(nb::Error::Other(e)) => break e,
        }
    };
    assert_eq!(err.kind(), TcpErrorKind::PipeClosed, "{err:?}");
    TcpClientStack::close(&mut s, sock).unwrap();
    assert_no_sockets(&sim, &modem);
}

#[test]
fn twelve_sockets_at_once_then_no_free_socket_then_all_twelve_again() {
    let (sim, modem) = modem();
    let echo = tcp_echo_server();
    let udp_echo = support::udp_echo_server();
    let mut s = &modem;
    for round in 0..2 {
        let mut tcp: Vec<TcpSocket> = (0..12).map(|_| tcp_connect(&modem, echo)).collect();
        let mut ids: Vec<u8> = tcp.iter().map(|t| t.connect_id().unwrap()).collect();
        ids.sort();
        assert_eq!(ids, (0..12).collect::<Vec<u8>>(), "round {round}: every connectID in use once");
        assert_eq!(sim.open_sockets().len(), 12);
        // the 13th, TCP or UDP, is a clear error and sends nothing to the modem
        let commands = sim.stats().commands;
        assert_eq!(TcpClientStack::socket(&mut s).unwrap_err(), Error::NoFreeSocket);
        assert_eq!(UdpClientStack::socket(&mut s).unwrap_err(), Error::NoFreeSocket);
        assert_eq!(sim.stats().commands, commands);
        // all twelve work at once
        for (i, sock) in tcp.iter_mut().enumerate() {
            echo_through(&modem, sock, &payload(100 + i, i as u8));
        }
        for sock in tcp {
            TcpClientStack::close(&mut s, sock).unwrap();
        }
        assert_no_sockets(&sim, &modem);
    }
    // UDP and TCP share the twelve
    let mut udp = Vec::new();
    for _ in 0..6 {
        let mut u = UdpClientStack::socket(&mut s).unwrap();
        UdpClientStack::connect(&mut s, &mut u, udp_echo).unwrap();
        udp.push(u);
    }
    let tcp: Vec<TcpSocket> = (0..6).map(|_| tcp_connect(&modem, echo)).collect();
    assert_eq!(UdpClientStack::socket(&mut s).unwrap_err(), Error::NoFreeSocket);
    for u in udp {
        UdpClientStack::close(&mut s, u).unwrap();
    }
    for t in tcp {
        TcpClientStack::close(&mut s, t).unwrap();
    }
    assert_no_sockets(&sim, &modem);
}

#[test]
fn a_refused_connect_leaks_no_connect_id() {
    let (sim, modem) = modem();
    let echo = tcp_echo_server();
    let mut s = &modem;
    // a refused connection (nobody listens) is an error
    let mut sock = TcpClientStack::socket(&mut s).unwrap();
    let err = retry("refused connect", || TcpClientStack::connect(&mut s, &mut sock, refused_addr()));
    assert_eq!(err, Err(Error::Modem(quectel_bg96::ErrorCode::SocketConnectFailed)));
    assert_eq!(err.unwrap_err().kind(), TcpErrorKind::Other);
    TcpClientStack::close(&mut s, sock).unwrap();
    // handles that were never connected count until closed
    let handles: Vec<TcpSocket> = (0..12).map(|_| TcpClientStack::socket(&mut s).unwrap()).collect();
    assert_eq!(TcpClientStack::socket(&mut s).unwrap_err(), Error::NoFreeSocket);
    for h in handles {
        TcpClientStack::close(&mut s, h).unwrap();
    }
    // all twelve connectIDs can be used again
    let socks: Vec<TcpSocket> = (0..12).map(|_| tcp_connect(&modem, echo)).collect();
    for sock in socks {
        TcpClientStack::close(&mut s, sock).unwrap();
    }
    assert_no_sockets(&sim, &modem);
}

/// A loopback address where nobody listens.
fn refused_addr() -> SocketAddr {
    ([127, 0, 0, 1], free_tcp_port()).into()
}

/// Found here: after a refused connect the stack marks the connectID "to be closed" (the manual
/// recommends `AT+QICLOSE` after a failed `+QIOPEN`), but `close` on that socket returned
/// without sending it, so the connectID stayed counted in `sockets_in_use`.
#[test]
fn regression_close_after_refused_connect_frees_the_connect_id() {
    let (sim, modem) = modem();
    let mut s = &modem;
    let mut sock = TcpClientStack::socket(&mut s).unwrap();
    let err = retry("refused connect", || TcpClientStack::connect(&mut s, &mut sock, refused_addr()));
    assert!(err.is_err());
    TcpClientStack::close(&mut s, sock).unwrap();
    assert_no_sockets(&sim, &modem);
}

// ---------------------------------------------------------------------------------------------
// Server side

/// What one std client does against the stack's listener.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Closer {
    /// The client closes after it got its answer; the stack sees PipeClosed.
    Client,
    /// The stack closes after answering; the client sees the end of the stream.
    Stack,
}

#[test]
fn listener_serves_parallel_std_clients_closing_from_either_side() {
    let (sim, modem) = modem();
    let mut s = &modem;
    let port = free_tcp_port();
    let mut listener = TcpClientStack::socket(&mut s).unwrap();
    TcpFullStack::bind(&mut s, &mut listener, port).unwrap();
    TcpFullStack::listen(&mut s, &mut listener).unwrap();

    // each client sends a request of its own size and content, and gets it back reversed
    const CLIENTS: usize = 6;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.set_read_timeout(Some(PATIENCE)).unwrap();
                let local = c.local_addr().unwrap();
                let request = payload(3000 + 1000 * i, i as u8);
                c.write_all(&(request.len() as u32).to_be_bytes()).unwrap();
                c.write_all(&request).unwrap();
                let mut answer = vec![0u8; request.len()];
                c.read_exact(&mut answer).unwrap();
                let want: Vec<u8> = request.iter().rev().copied().collect();
                assert_bytes_eq(&answer, &want, &format!("answer to client {i}"));
                let closer = if i % 2 == 0 { Closer::Client } else { Closer::Stack };
                if closer == Closer::Stack {
                    // the stack closes: the end of the stream, nothing more
                    let mut rest = Vec::new();
                    c.read_to_end(&mut rest).unwrap();
                    assert!(rest.is_empty(), "client {i}: {} bytes after the answer", rest.len());
                }
                (local, closer)
            })
        })
        .collect();

    struct Conn {
        sock: TcpSocket,
        remote: SocketAddr,
        inbox: Vec<u8>,
        answered: bool,
    }
    let mut conns: Vec<Conn> = Vec::new();
    let mut done: Vec<(SocketAddr, Closer)> = Vec::new();
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + PATIENCE;
    while done.len() < CLIENTS {
        assert!(Instant::now() < deadline, "served {} of {CLIENTS} clients", done.len());
        match TcpFullStack::accept(&mut s, &mut listener) {
            Ok((sock, remote)) => conns.push(Conn { sock, remote, inbox: Vec::new(), answered: false }),
            Err(nb::Error::WouldBlock) => {}
            Err(nb::Error::Other(e)) => panic!("accept: {e:?}"),
        }
        let mut i = 0;
        while i < conns.len() {
            let c = &mut conns[i];
            match TcpClientStack::receive(&mut s, &mut c.sock, &mut buf) {
                Ok(n) => c.inbox.extend_from_slice(&buf[..n]),
                Err(nb::Error::WouldBlock) => {}
                Err(nb::Error::Other(e)) => {
                    // the client closed after its answer
                    assert_eq!(e.kind(), TcpErrorKind::PipeClosed, "{e:?}");
                    assert!(c.answered, "client {} closed before its answer", c.remote);
                    let c = conns.remove(i);
                    TcpClientStack::close(&mut s, c.sock).unwrap();
                    done.push((c.remote, Closer::Client));
                    continue;
                }
            }
            if !c.answered && c.inbox.len() >= 4 {
                let len = u32::from_be_bytes(c.inbox[..4].try_into().unwrap()) as usize;
                if c.inbox.len() == 4 + len {
                    let answer: Vec<u8> = c.inbox[4..].iter().rev().copied().collect();
                    let mut sent = 0;
                    while sent < answer.len() {
                        match TcpClientStack::send(&mut s, &mut c.sock, &answer[sent..]) {
                            Ok(n) => sent += n,
                            Err(nb::Error::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
                            Err(nb::Error::Other(e)) => panic!("answer to {}: {e:?}", c.remote),
                        }
                    }
                    c.answered = true;
                    // odd clients (by request size) wait for the stack to close
                    let odd = (len - 3000) / 1000 % 2 == 1;
                    if odd {
                        let c = conns.remove(i);
                        TcpClientStack::close(&mut s, c.sock).unwrap();
                        done.push((c.remote, Closer::Stack));
                        continue;
                    }
                }
            }
            i += 1;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let mut seen: Vec<(SocketAddr, Closer)> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    seen.sort_by_key(|(a, _)| *a);
    done.sort_by_key(|(a, _)| *a);
    assert_eq!(done, seen, "accept's remote addresses and who closed");

    // closing the listener leaves the modem with nothing open
    TcpClientStack::close(&mut s, listener).unwrap();
    assert_no_sockets(&sim, &modem);
}

#[test]
fn closing_the_listener_keeps_accepted_connections() {
    let (sim, modem) = modem();
    let mut s = &modem;
    let port = free_tcp_port();
    let mut listener = TcpClientStack::socket(&mut s).unwrap();
    TcpFullStack::bind(&mut s, &mut listener, port).unwrap();
    TcpFullStack::listen(&mut s, &mut listener).unwrap();
    let mut client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let (mut conn, remote) = retry("accept", || TcpFullStack::accept(&mut s, &mut listener)).unwrap();
    assert_eq!(remote, client.local_addr().unwrap());
    TcpClientStack::close(&mut s, listener).unwrap();
    assert_eq!(sim.open_sockets().len(), 1, "only the accepted connection is left");
    client.write_all(b"still there?").unwrap();
    let mut buf = [0u8; 64];
    let n = retry("receive", || TcpClientStack::receive(&mut s, &mut conn, &mut buf)).unwrap();
    assert_eq!(&buf[..n], b"still there?");
    retry("send", || TcpClientStack::send(&mut s, &mut conn, b"yes")).unwrap();
    let mut answer = [0u8; 3];
    client.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"yes");
    TcpClientStack::close(&mut s, conn).unwrap();
    assert_no_sockets(&sim, &modem);
}

#[test]
fn incoming_connection_with_no_free_connect_id_is_turned_away_and_counted() {
    let (sim, modem) = modem();
    let echo = tcp_echo_server();
    let mut s = &modem;
    let port = free_tcp_port();
    let mut listener = TcpClientStack::socket(&mut s).unwrap();
    TcpFullStack::bind(&mut s, &mut listener, port).unwrap();
    TcpFullStack::listen(&mut s, &mut listener).unwrap();
    // listener + 10 clients + 1 accepted connection = 12 connectIDs
    let clients: Vec<TcpSocket> = (0..10).map(|_| tcp_connect(&modem, echo)).collect();
    let _first = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (accepted, _) = retry("accept", || TcpFullStack::accept(&mut s, &mut listener)).unwrap();
    assert_eq!(sim.open_sockets().len(), 12);
    // the 13th: the modem turns the client away
    let mut turned_away = TcpStream::connect(("127.0.0.1", port)).unwrap();
    turned_away.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut buf = [0u8; 8];
    let n = turned_away.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the turned-away client is closed");
    let deadline = Instant::now() + PATIENCE;
    while modem.stats().incoming_full == 0 {
        assert!(Instant::now() < deadline, "\"incoming full\" never counted");
        modem.poll().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(modem.stats().incoming_full, 1);
    assert!(matches!(TcpFullStack::accept(&mut s, &mut listener), Err(nb::Error::WouldBlock)));
    for c in clients {
        TcpClientStack::close(&mut s, c).unwrap();
    }
    TcpClientStack::close(&mut s, accepted).unwrap();
    TcpClientStack::close(&mut s, listener).unwrap();
    assert_no_sockets(&sim, &modem);
}

#[test]
fn udp_service_gets_datagrams_from_several_peers_and_replies_to_each() {
    let (sim, modem) = modem();
    let mut s = &modem;
    let port = free_udp_port();
    let mut service = UdpClientStack::socket(&mut s).unwrap();
    UdpFullStack::bind(&mut s, &mut service, port).unwrap();
    let service_addr = SocketAddr::from(([127, 0, 0, 1], port));

    const PEERS: usize = 4;
    const EACH: usize = 3;
    let peers: Vec<UdpSocket> = (0..PEERS)
        .map(|_| {
            let p = UdpSocket::bind("127.0.0.1:0").unwrap();
            p.set_read_timeout(Some(PATIENCE)).unwrap();
            p
        })
        .collect();
    let datagram = |peer: usize, k: usize| {
        let mut d = format!("peer {peer} #{k} ").into_bytes();
        d.extend(payload(10 + 300 * k + peer, (peer * EACH + k) as u8));
        d
    };
    for k in 0..EACH {
        for (i, p) in peers.iter().enumerate() {
            p.send_to(&datagram(i, k), service_addr).unwrap();
        }
    }
    let mut buf = [0u8; 1500];
    let mut received = Vec::new();
    for _ in 0..PEERS * EACH {
        let (n, from) = retry("service receive", || UdpClientStack::receive(&mut s, &mut service, &mut buf)).unwrap();
        let d = buf[..n].to_vec();
        let peer = peers.iter().position(|p| p.local_addr().unwrap() == from).unwrap_or_else(|| {
            panic!("datagram from {from}, which is not a peer: {:?}", String::from_utf8_lossy(&d[..20.min(n)]))
        });
        let k = received.iter().filter(|(p, _)| *p == peer).count();
        assert_bytes_eq(&d, &datagram(peer, k), &format!("datagram {k} of peer {peer}"));
        received.push((peer, k));
        // the reply goes to the sender
        let mut reply = b"re: ".to_vec();
        reply.extend_from_slice(&d);
        retry("send_to", || UdpFullStack::send_to(&mut s, &mut service, from, &reply)).unwrap();
    }
    for (i, p) in peers.iter().enumerate() {
        for k in 0..EACH {
            let mut b = [0u8; 1600];
            let (n, from) = p.recv_from(&mut b).unwrap();
            assert_eq!(from, service_addr, "the reply comes from the service's port");
            let mut want = b"re: ".to_vec();
            want.extend(datagram(i, k));
            assert_bytes_eq(&b[..n], &want, &format!("reply {k} to peer {i}"));
        }
    }
    // a datagram larger than the buffer is reported, not silently cut
    peers[0].send_to(&payload(600, 1), service_addr).unwrap();
    let mut small = [0u8; 100];
    let r = retry("truncated receive", || UdpClientStack::receive(&mut s, &mut service, &mut small));
    assert_eq!(r.unwrap_err(), Error::Truncated { len: 600 });
    assert_eq!(&small[..], &payload(600, 1)[..100]);
    // zero-length datagrams arrive as such, and the service is in step afterwards
    peers[2].send_to(b"", service_addr).unwrap();
    let (n, from) = retry("empty receive", || UdpClientStack::receive(&mut s, &mut service, &mut buf)).unwrap();
    assert_eq!((n, from), (0, peers[2].local_addr().unwrap()));
    peers[1].send_to(b"after", service_addr).unwrap();
    let (n, from) = retry("receive", || UdpClientStack::receive(&mut s, &mut service, &mut buf)).unwrap();
    assert_eq!((&buf[..n], from), (&b"after"[..], peers[1].local_addr().unwrap()));
    UdpClientStack::close(&mut s, service).unwrap();
    assert_no_sockets(&sim, &modem);
}

#[test]
fn receive_with_nothing_pending_sends_nothing_to_the_modem() {
    let (sim, modem) = modem();
    let echo = tcp_echo_server();
    let udp_echo = support::udp_echo_server();
    let mut s = &modem;
    let mut tcp = tcp_connect(&modem, echo);
    let mut udp = UdpClientStack::socket(&mut s).unwrap();
    UdpClientStack::connect(&mut s, &mut udp, udp_echo).unwrap();
    echo_through(&modem, &mut tcp, b"warm up");
    let commands = sim.stats().commands;
    let mut buf = [0u8; 64];
    for _ in 0..200 {
        assert_eq!(TcpClientStack::receive(&mut s, &mut tcp, &mut buf), Err(nb::Error::WouldBlock));
        assert_eq!(UdpClientStack::receive(&mut s, &mut udp, &mut buf), Err(nb::Error::WouldBlock));
    }
    assert_eq!(sim.stats().commands, commands, "receive polled the modem");
    TcpClientStack::close(&mut s, tcp).unwrap();
    UdpClientStack::close(&mut s, udp).unwrap();
    assert_no_sockets(&sim, &modem);
}

#[test]
fn binding_a_busy_port_is_an_error_and_leaks_nothing() {
    let (sim, modem) = modem();
    let mut s = &modem;
    // ports the host already uses: the simulated modem's listeners are real sockets
    let tcp_busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let udp_busy = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut listener = TcpClientStack::socket(&mut s).unwrap();
    TcpFullStack::bind(&mut s, &mut listener, tcp_busy.local_addr().unwrap().port()).unwrap();
    let err = TcpFullStack::listen(&mut s, &mut listener).unwrap_err();
    assert!(matches!(err, Error::Modem(_)), "{err:?}");
    TcpClientStack::close(&mut s, listener).unwrap();
    let mut service = UdpClientStack::socket(&mut s).unwrap();
    let err = UdpFullStack::bind(&mut s, &mut service, udp_busy.local_addr().unwrap().port()).unwrap_err();
    assert!(matches!(err, Error::Modem(_)), "{err:?}");
    UdpClientStack::close(&mut s, service).unwrap();
    // every connectID can still be used
    let echo = tcp_echo_server();
    let all: Vec<TcpSocket> = (0..12).map(|_| tcp_connect(&modem, echo)).collect();
    for sock in all {
        TcpClientStack::close(&mut s, sock).unwrap();
    }
    assert_no_sockets(&sim, &modem);
}
