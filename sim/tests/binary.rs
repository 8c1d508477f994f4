//! Binary payloads: all 256 byte values and AT framing strings pass untouched both ways.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use bg96_sim::Profile;
use common::*;

fn payload() -> Vec<u8> {
    let mut p: Vec<u8> = (0..=255u8).collect();
    p.extend_from_slice(b"\r\nOK\r\n> \r\n+QIURC: \"recv\",0\r\nSEND OK\r\nERROR\r\n+++\r\nNO CARRIER\r\n");
    p.extend((0..=255u8).rev());
    p
}

fn wait_buffered(t: &T, id: u8, n: usize) {
    assert!(
        wait_for(Duration::from_secs(3), || t
            .sim
            .open_sockets()
            .iter()
            .any(|s| s.connect_id == id && s.rx_buffered == n)),
        "buffered {n} bytes"
    );
}

#[test]
fn tcp_buffer_mode_both_ways() {
    let p = payload();
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QISDE=0", "\r\nOK\r\n");
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    t.cmd(&format!("AT+QISEND=0,{}", p.len()), "\r\n> ");
    t.send(&p);
    t.expect("\r\nSEND OK\r\n");
    assert_eq!(read_exact_from(&mut peer, p.len()), p);
    put(&mut peer, &p);
    t.expect("\r\n+QIURC: \"recv\",0\r\n");
    wait_buffered(&t, 0, p.len());
    let mut want = format!("\r\n+QIRD: {}\r\n", p.len()).into_bytes();
    want.extend_from_slice(&p);
    want.extend_from_slice(b"\r\n\r\nOK\r\n");
    t.cmd("AT+QIRD=0,1500", want);
    t.cmd("AT+QIRD=0,1500", "\r\n+QIRD: 0\r\n\r\nOK\r\n");
}

#[test]
fn qisde_echoes_binary_payload() {
    let p = payload();
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QISDE?", "\r\n+QISDE: 1\r\n\r\nOK\r\n");
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    t.cmd(&format!("AT+QISEND=0,{}", p.len()), "\r\n> ");
    t.send(&p);
    let mut want = p.clone();
    want.extend_from_slice(b"\r\nSEND OK\r\n");
    t.expect(want);
    assert_eq!(read_exact_from(&mut peer, p.len()), p);
    // Variable length: everything but Ctrl-Z / ESC is data.
    let v: Vec<u8> = p.iter().copied().filter(|&b| b != 0x1a && b != 0x1b).collect();
    t.cmd("AT+QISEND=0", "\r\n> ");
    t.send(&v);
    t.send([0x1a]);
    let mut want = v.clone();
    want.extend_from_slice(b"\r\nSEND OK\r\n");
    t.expect(want);
    assert_eq!(read_exact_from(&mut peer, v.len()), v);
}

#[test]
fn udp_client_and_service() {
    let p = payload();
    let (peer, pport) = udp_peer();
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QISDE=0", "\r\nOK\r\n");
    t.cmd(&format!("AT+QIOPEN=1,4,\"UDP\",\"127.0.0.1\",{pport},0,0"), "\r\nOK\r\n\r\n+QIOPEN: 4,0\r\n");
    t.cmd(&format!("AT+QISEND=4,{}", p.len()), "\r\n> ");
    t.send(&p);
    t.expect("\r\nSEND OK\r\n");
    let mut buf = [0u8; 2048];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &p[..]);
    peer.send_to(&p, from).unwrap();
    t.expect("\r\n+QIURC: \"recv\",4\r\n");
    let mut want = format!("\r\n+QIRD: {}\r\n", p.len()).into_bytes();
    want.extend_from_slice(&p);
    want.extend_from_slice(b"\r\n\r\nOK\r\n");
    t.cmd("AT+QIRD=4,1500", want);

    let lport = free_port();
    t.cmd(&format!("AT+QIOPEN=1,5,\"UDP SERVICE\",\"127.0.0.1\",0,{lport},0"), "\r\nOK\r\n\r\n+QIOPEN: 5,0\r\n");
    peer.send_to(&p, ("127.0.0.1", lport)).unwrap();
    t.expect("\r\n+QIURC: \"recv\",5\r\n");
    let mut want = format!("\r\n+QIRD: {},\"127.0.0.1\",{pport}\r\n", p.len()).into_bytes();
    want.extend_from_slice(&p);
    want.extend_from_slice(b"\r\n\r\nOK\r\n");
    t.cmd("AT+QIRD=5", want);
}

#[test]
fn direct_push_binary() {
    let p = payload();
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.open_tcp(0, port, 1);
    let mut peer = accept(&l);
    put(&mut peer, &p);
    let mut want = format!("\r\n+QIURC: \"recv\",0,{}\r\n", p.len()).into_bytes();
    want.extend_from_slice(&p);
    want.extend_from_slice(b"\r\n");
    t.expect(want);

    let lport = free_port();
    let (u, uport) = udp_peer();
    t.cmd(&format!("AT+QIOPEN=1,1,\"UDP SERVICE\",\"127.0.0.1\",0,{lport},1"), "\r\nOK\r\n\r\n+QIOPEN: 1,0\r\n");
    u.send_to(&p, ("127.0.0.1", lport)).unwrap();
    let mut want = format!("\r\n+QIURC: \"recv\",1,{},\"127.0.0.1\",{uport}\r\n", p.len()).into_bytes();
    want.extend_from_slice(&p);
    want.extend_from_slice(b"\r\n");
    t.expect(want);
}

#[test]
fn transparent_binary_both_ways() {
    let p = payload();
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.cmd(&format!("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",{port},0,2"), "\r\nCONNECT\r\n");
    let mut peer = accept(&l);
    t.send(&p);
    assert_eq!(read_exact_from(&mut peer, p.len()), p);
    put(&mut peer, &p);
    t.expect(&p);
    std::thread::sleep(Duration::from_millis(200));
    t.send("+++");
    t.expect("\r\nOK\r\n");
}

#[test]
fn hex_dataformat_and_viewmode() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QISDE=0", "\r\nOK\r\n");
    t.cmd("AT+QICFG=\"dataformat\"", "\r\n+QICFG: \"dataformat\",0,0\r\n\r\nOK\r\n");
    t.cmd("AT+QICFG=\"dataformat\",1,1", "\r\nOK\r\n");
    t.cmd("AT+QICFG=\"dataformat\"", "\r\n+QICFG: \"dataformat\",1,1\r\n\r\nOK\r\n");
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    t.cmd("AT+QISEND=0,3", "\r\n> ");
    t.send("00ff1A");
    t.expect("\r\nSEND OK\r\n");
    assert_eq!(read_exact_from(&mut peer, 3), [0x00, 0xff, 0x1a]);
    t.cmd("AT+QISEND=0", "\r\n> ");
    t.send("0D0A\x1a");
    t.expect("\r\nSEND OK\r\n");
    assert_eq!(read_exact_from(&mut peer, 2), b"\r\n");
    t.cmd("AT+QISEND=0,1", "\r\n> ");
    t.send("zz");
    t.expect("\r\nERROR\r\n");
    put(&mut peer, &[0x00, 0x0d, 0x0a, 0xfe]);
    t.expect("\r\n+QIURC: \"recv\",0\r\n");
    wait_buffered(&t, 0, 4);
    t.cmd("AT+QIRD=0,2", "\r\n+QIRD: 2\r\n000D\r\n\r\nOK\r\n");
    t.cmd("AT+QICFG=\"viewmode\",1", "\r\nOK\r\n");
    t.cmd("AT+QIRD=0,2", "\r\n+QIRD: 2,0AFE\r\n\r\nOK\r\n");
    t.cmd("AT+QICFG=\"dataformat\",0,0", "\r\nOK\r\n");
    put(&mut peer, b"ab");
    t.expect("\r\n+QIURC: \"recv\",0\r\n");
    wait_buffered(&t, 0, 2);
    t.cmd("AT+QIRD=0", "\r\n+QIRD: 2,ab\r\n\r\nOK\r\n");
    t.cmd("AT+QISWTMD=0,1", "\r\nOK\r\n");
    put(&mut peer, b"cd");
    t.expect("\r\n+QIURC: \"recv\",0,2,cd\r\n");
}

#[test]
fn zero_length_udp_datagram() {
    let lport = free_port();
    let (peer, pport) = udp_peer();
    let mut t = T::active(Profile::Field);
    t.cmd(&format!("AT+QIOPEN=1,2,\"UDP SERVICE\",\"127.0.0.1\",0,{lport},0"), "\r\nOK\r\n\r\n+QIOPEN: 2,0\r\n");
    peer.send_to(b"", ("127.0.0.1", lport)).unwrap();
    t.expect("\r\n+QIURC: \"recv\",2\r\n");
    t.cmd("AT+QIRD=2", format!("\r\n+QIRD: 0,\"127.0.0.1\",{pport}\r\n\r\nOK\r\n"));
    t.cmd("AT+QIRD=2", "\r\n+QIRD: 0\r\n\r\nOK\r\n");
    // An empty variable-length send on a UDP client sends an empty datagram.
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let uport = u.local_addr().unwrap().port();
    t.cmd(&format!("AT+QIOPEN=1,3,\"UDP\",\"127.0.0.1\",{uport},0,0"), "\r\nOK\r\n\r\n+QIOPEN: 3,0\r\n");
    t.cmd("AT+QISEND=3", "\r\n> ");
    t.send("\x1a");
    t.expect("\r\nSEND OK\r\n");
    let (n, _) = u.recv_from(&mut [0u8; 8]).unwrap();
    assert_eq!(n, 0);
}
