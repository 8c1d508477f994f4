//! All three access modes on one connection, through the simulator, with a real peer:
//! buffer → direct push → transparent → buffer, every byte intact.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use bg96_sim::SimConfig;
use common::{config, nasty_payload, sim_modem};
use embedded_nal::TcpClientStack;
use quectel_bg96::blocking::{Bg96, SocketHandle, TcpSocket};
use quectel_bg96::commands::AccessMode;

const GUARD: Duration = Duration::from_millis(150);

fn sim_config() -> SimConfig {
    SimConfig { guard_time: GUARD, ..SimConfig::default() }
}

fn modem_config() -> quectel_bg96::config::Config {
    let mut c = config();
    c.timeouts.guard_time_ms = GUARD.as_millis() as u32;
    c
}

/// Receives exactly `n` bytes through the blocking stack.
fn receive_exact<S, C>(mut stack: &Bg96<S, C>, sock: &mut TcpSocket, n: usize) -> Vec<u8>
where
    S: embedded_io::Read + embedded_io::ReadReady + embedded_io::Write,
    C: quectel_bg96::clock::Clock,
{
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.len() < n {
        assert!(Instant::now() < deadline, "timed out after {} of {n} bytes", got.len());
        match stack.receive(sock, &mut buf) {
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(nb::Error::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
            Err(nb::Error::Other(e)) => panic!("receive: {e:?}"),
        }
    }
    got
}

fn send_all<S, C>(mut stack: &Bg96<S, C>, sock: &mut TcpSocket, data: &[u8])
where
    S: embedded_io::Read + embedded_io::ReadReady + embedded_io::Write,
    C: quectel_bg96::clock::Clock,
{
    let mut sent = 0;
    while sent < data.len() {
        match stack.send(sock, &data[sent..]) {
            Ok(n) => sent += n,
            Err(nb::Error::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
            Err(nb::Error::Other(e)) => panic!("send: {e:?}"),
        }
    }
}

#[test]
fn one_connection_through_buffer_push_transparent_buffer() {
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = peer.local_addr().unwrap();
    let (_sim, modem) = sim_modem(sim_config(), modem_config());
    let mut stack = &modem;
    let mut sock = stack.socket().unwrap();
    nb::block!(stack.connect(&mut sock, addr)).unwrap();
    let (mut peer, _) = peer.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10))).unwrap();

    // 1. buffer access mode
    let up = nasty_payload(2000);
    send_all(&modem, &mut sock, &up);
    let mut v = vec![0u8; up.len()];
    peer.read_exact(&mut v).unwrap();
    assert_eq!(v, up);
    let down = nasty_payload(3000);
    peer.write_all(&down).unwrap();
    assert_eq!(receive_exact(&modem, &mut sock, down.len()), down);

    // 2. direct push: data arrives inside the URCs
    let buffer: &'static mut [u8] = Box::leak(vec![0u8; 8192].into_boxed_slice());
    modem.enable_direct_push(&sock, buffer).unwrap();
    assert_eq!(modem.socket_status(&sock).unwrap().access_mode, AccessMode::DirectPush);
    let down = nasty_payload(5000);
    peer.write_all(&down).unwrap();
    assert_eq!(receive_exact(&modem, &mut sock, down.len()), down);
    let up = nasty_payload(1500);
    send_all(&modem, &mut sock, &up);
    let mut v = vec![0u8; up.len()];
    peer.read_exact(&mut v).unwrap();
    assert_eq!(v, up);

    // 3. transparent: raw bytes both ways
    {
        let mut t = modem.enter_transparent(&sock).unwrap();
        let up = nasty_payload(4000);
        embedded_io::Write::write_all(&mut t, &up).unwrap();
        let mut v = vec![0u8; up.len()];
        peer.read_exact(&mut v).unwrap();
        assert_eq!(v, up);
        let down = nasty_payload(4000);
        peer.write_all(&down).unwrap();
        let mut got = vec![0u8; down.len()];
        embedded_io::Read::read_exact(&mut t, &mut got).unwrap();
        assert_eq!(got, down);
        // everything else waits while the connection owns the serial port
        assert_eq!(modem.last_error().unwrap_err(), quectel_bg96::Error::Busy);
        t.exit().unwrap();
    }
    assert_eq!(modem.socket_status(&sock).unwrap().access_mode, AccessMode::Buffer);

    // 4. buffer access mode again
    let down = nasty_payload(2500);
    peer.write_all(&down).unwrap();
    assert_eq!(receive_exact(&modem, &mut sock, down.len()), down);
    let up = nasty_payload(700);
    send_all(&modem, &mut sock, &up);
    let mut v = vec![0u8; up.len()];
    peer.read_exact(&mut v).unwrap();
    assert_eq!(v, up);

    let id = sock.connect_id().unwrap();
    stack.close(sock).unwrap();
    assert_eq!(modem.sockets_in_use(), 0, "connectID {id} released");
}

#[test]
fn a_full_push_buffer_falls_back_to_buffer_mode_without_losing_data() {
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = peer.local_addr().unwrap();
    // a UART with RTS/CTS: the modem holds back what the host does not read
    let (_sim, modem) = sim_modem(SimConfig { host_buffer: 1024, ..SimConfig::default() }, config());
    let mut stack = &modem;
    let mut sock = stack.socket().unwrap();
    nb::block!(stack.connect(&mut sock, addr)).unwrap();
    let (mut peer, _) = peer.accept().unwrap();
    // a small host buffer and a peer that sends much more than fits
    let small: &'static mut [u8] = Box::leak(vec![0u8; 2048].into_boxed_slice());
    assert_eq!(modem.enable_direct_push(&sock, small), Err(quectel_bg96::Error::InvalidArgument));
    let buffer: &'static mut [u8] = Box::leak(vec![0u8; quectel_bg96::blocking::MIN_PUSH_BUFFER].into_boxed_slice());
    modem.enable_direct_push(&sock, buffer).unwrap();
    let down = nasty_payload(40_000);
    let writer = {
        let down = down.clone();
        std::thread::spawn(move || {
            peer.write_all(&down).unwrap();
            peer
        })
    };
    // let the modem push until the host buffer is full before reading anything
    std::thread::sleep(Duration::from_millis(200));
    let got = receive_exact(&modem, &mut sock, down.len());
    assert_eq!(got.len(), down.len());
    assert!(got == down, "every byte, in order");
    assert_eq!(modem.stats().bytes_lost, 0);
    assert_eq!(modem.socket_status(&sock).unwrap().access_mode, AccessMode::Buffer, "fell back to buffer mode");
    assert!(modem.take_push_buffer(&sock).is_some(), "the buffer is given back once empty");
    drop(writer.join().unwrap());
    stack.close(sock).unwrap();
}

#[test]
fn peer_close_in_transparent_mode_ends_the_stream() {
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = peer.local_addr().unwrap();
    let (_sim, modem) = sim_modem(sim_config(), modem_config());
    let mut stack = &modem;
    let mut sock = stack.socket().unwrap();
    nb::block!(stack.connect(&mut sock, addr)).unwrap();
    let (mut peer, _) = peer.accept().unwrap();
    let mut t = modem.enter_transparent(&sock).unwrap();
    peer.write_all(b"last words\r\n").unwrap();
    drop(peer);
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    loop {
        let n = embedded_io::Read::read(&mut t, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"last words\r\n");
    assert!(embedded_io::Write::write(&mut t, b"x").is_err());
    drop(t);
    stack.close(sock).unwrap();
    assert_eq!(modem.sockets_in_use(), 0);
}
