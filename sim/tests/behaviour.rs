//! Socket semantics: recv URC rule, recvind, UDP framing, backpressure, access-mode
//! switching, transparent-mode escapes and packetising.

mod common;

use std::io::Read;
use std::net::UdpSocket;
use std::thread::sleep;
use std::time::{Duration, Instant};

use bg96_sim::{AccessMode, Profile, ServiceType, SimConfig, SocketState};
use common::*;

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
fn recv_urc_fires_once_until_drained() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    put(&mut peer, b"aaaa");
    t.expect("\r\n+QIURC: \"recv\",0\r\n");
    put(&mut peer, b"bbbb");
    wait_buffered(&t, 0, 8);
    t.silence(Duration::from_millis(30));
    t.cmd("AT+QIRD=0,3", "\r\n+QIRD: 3\r\naaa\r\n\r\nOK\r\n");
    put(&mut peer, b"cc");
    wait_buffered(&t, 0, 7);
    t.silence(Duration::from_millis(30));
    t.cmd("AT+QIRD=0,0", "\r\n+QIRD: 10,3,7\r\n\r\nOK\r\n");
    t.cmd("AT+QIRD=0", "\r\n+QIRD: 7\r\nabbbbcc\r\n\r\nOK\r\n");
    put(&mut peer, b"d");
    t.expect("\r\n+QIURC: \"recv\",0\r\n");
    t.cmd("AT+QIRD=0,1500", "\r\n+QIRD: 1\r\nd\r\n\r\nOK\r\n");
    // recvind adds the length of the arrival.
    t.cmd("AT+QICFG=\"recvind\"", "\r\n+QICFG: \"recvind\",0\r\n\r\nOK\r\n");
    t.cmd("AT+QICFG=\"recvind\",1", "\r\nOK\r\n");
    put(&mut peer, b"hello");
    t.expect("\r\n+QIURC: \"recv\",0,5\r\n");
    put(&mut peer, b"x");
    wait_buffered(&t, 0, 6);
    t.silence(Duration::from_millis(30));
    t.cmd("AT+QIRD=0,1500", "\r\n+QIRD: 6\r\nhellox\r\n\r\nOK\r\n");
}

#[test]
fn udp_client_reads_one_datagram_at_a_time() {
    let (peer, pport) = udp_peer();
    let mut t = T::active(Profile::Field);
    t.cmd(&format!("AT+QIOPEN=1,0,\"UDP\",\"localhost\",{pport},0,0"), "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n");
    t.cmd("AT+QISDE=0", "\r\nOK\r\n");
    t.cmd("AT+QISEND=0,2", "\r\n> ");
    t.send("hi");
    t.expect("\r\nSEND OK\r\n");
    let mut buf = [0u8; 64];
    let (_, modem) = peer.recv_from(&mut buf).unwrap();
    peer.send_to(b"first", modem).unwrap();
    peer.send_to(b"second", modem).unwrap();
    t.expect("\r\n+QIURC: \"recv\",0\r\n");
    wait_buffered(&t, 0, 11);
    t.cmd("AT+QIRD=0,1500", "\r\n+QIRD: 5\r\nfirst\r\n\r\nOK\r\n");
    // Truncated read: the rest of the datagram stays for the next read.
    t.cmd("AT+QIRD=0,3", "\r\n+QIRD: 3\r\nsec\r\n\r\nOK\r\n");
    t.cmd("AT+QIRD=0,1500", "\r\n+QIRD: 3\r\nond\r\n\r\nOK\r\n");
    t.cmd("AT+QIRD=0,1500", "\r\n+QIRD: 0\r\n\r\nOK\r\n");
    t.cmd("AT+QIRD=0,0", "\r\n+QIRD: 11,11,0\r\n\r\nOK\r\n");
    t.cmd("AT+QISEND=0,0", "\r\n+QISEND: 2,2,0\r\n\r\nOK\r\n");
}

#[test]
fn tcp_backpressure_keeps_the_modem_buffer_bounded() {
    let (l, port) = tcp_peer();
    let cfg = SimConfig { socket_rx_capacity: 1000, ..fast(Profile::Field) };
    let mut t = T::quiet(cfg);
    t.cmd("AT+QIACT=1", "\r\nOK\r\n");
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    let data: Vec<u8> = (0..60_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let d2 = data.clone();
    let writer = std::thread::spawn(move || put(&mut peer, &d2));
    t.expect("\r\n+QIURC: \"recv\",0\r\n");
    let mut got = Vec::new();
    while got.len() < data.len() {
        sleep(Duration::from_millis(2));
        let s = &t.sim.open_sockets()[0];
        assert!(s.rx_buffered <= 1000, "modem buffer bounded: {}", s.rx_buffered);
        t.send("AT+QIRD=0,1500\r");
        // A recv URC may come first: the buffer was read empty and data arrived again.
        let n: usize = loop {
            let f = t.frame();
            if f == "+QIURC: \"recv\",0" {
                continue;
            }
            break f.strip_prefix("+QIRD: ").unwrap().parse().unwrap();
        };
        if n > 0 {
            got.extend(t.read_n(n));
            t.expect("\r\n");
        }
        t.expect("\r\nOK\r\n");
    }
    assert_eq!(got, data);
    writer.join().unwrap();
}

#[test]
fn udp_datagrams_dropped_when_buffer_full() {
    let lport = free_port();
    let cfg = SimConfig { socket_rx_capacity: 100, ..fast(Profile::Field) };
    let mut t = T::quiet(cfg);
    t.cmd("AT+QIACT=1", "\r\nOK\r\n");
    t.cmd(&format!("AT+QIOPEN=1,2,\"UDP SERVICE\",\"127.0.0.1\",0,{lport},0"), "\r\nOK\r\n\r\n+QIOPEN: 2,0\r\n");
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..5 {
        u.send_to(&[7u8; 60], ("127.0.0.1", lport)).unwrap();
    }
    t.expect("\r\n+QIURC: \"recv\",2\r\n");
    assert!(wait_for(Duration::from_secs(2), || t.sim.stats().udp_datagrams_dropped >= 4));
    assert_eq!(t.sim.open_sockets()[0].rx_buffered, 60);
}

#[test]
fn switching_access_modes() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    put(&mut peer, b"buffered");
    t.expect("\r\n+QIURC: \"recv\",0\r\n");
    wait_buffered(&t, 0, 8);
    // To direct push: buffered data is pushed.
    t.cmd("AT+QISWTMD=0,1", "\r\nOK\r\n\r\n+QIURC: \"recv\",0,8\r\nbuffered\r\n");
    put(&mut peer, b"pushed");
    t.expect("\r\n+QIURC: \"recv\",0,6\r\npushed\r\n");
    // To transparent via QISWTMD, out with +++, back with ATO.
    t.cmd("AT+QISWTMD=0,2", "\r\nCONNECT\r\n");
    put(&mut peer, b"raw");
    t.expect("raw");
    t.send("up");
    assert_eq!(read_exact_from(&mut peer, 2), b"up");
    sleep(Duration::from_millis(200));
    t.send("+++");
    t.expect("\r\nOK\r\n");
    assert_eq!(t.sim.open_sockets()[0].access_mode, AccessMode::Buffer);
    put(&mut peer, b"meanwhile");
    t.expect("\r\n+QIURC: \"recv\",0\r\n");
    wait_buffered(&t, 0, 9);
    t.cmd("ATO", "\r\nCONNECT\r\nmeanwhile");
    sleep(Duration::from_millis(200));
    t.send("+++");
    t.expect("\r\nOK\r\n");
    t.cmd("AT+QISWTMD=0,0", "\r\nOK\r\n");
}

#[test]
fn plus_plus_plus_needs_guard_times() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QICFG=\"transwaittm\",0", "\r\nOK\r\n");
    t.cmd(&format!("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",{port},0,2"), "\r\nCONNECT\r\n");
    let mut peer = accept(&l);
    // No silence before: data.
    t.send("a+++");
    assert_eq!(read_exact_from(&mut peer, 4), b"a+++");
    // Silence before but a byte right after: data (the held pluses included).
    sleep(Duration::from_millis(200));
    t.send("+++b");
    assert_eq!(read_exact_from(&mut peer, 4), b"+++b");
    // Four pluses: data.
    sleep(Duration::from_millis(200));
    t.send("++++");
    assert_eq!(read_exact_from(&mut peer, 4), b"++++");
    // Pluses too far apart: data.
    sleep(Duration::from_millis(200));
    t.send("+");
    sleep(Duration::from_millis(250));
    t.send("++");
    assert_eq!(read_exact_from(&mut peer, 3), b"+++");
    t.silence(Duration::from_millis(200));
    sleep(Duration::from_millis(200));
    let start = Instant::now();
    t.send("+++");
    t.expect("\r\nOK\r\n");
    assert!(start.elapsed() >= Duration::from_millis(140), "guard time after +++");
}

#[test]
fn transparent_packetising_over_udp() {
    let (peer, pport) = udp_peer();
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QICFG=\"transpktsize\",4", "\r\nOK\r\n");
    t.cmd("AT+QICFG=\"transpktsize\"", "\r\n+QICFG: \"transpktsize\",4\r\n\r\nOK\r\n");
    t.cmd("AT+QICFG=\"transwaittm\",1", "\r\nOK\r\n");
    t.cmd(&format!("AT+QIOPEN=1,0,\"UDP\",\"127.0.0.1\",{pport},0,2"), "\r\nCONNECT\r\n");
    t.send("abcdefghij");
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    for _ in 0..3 {
        let (n, _) = peer.recv_from(&mut buf).unwrap();
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    assert_eq!(got, ["abcd", "efgh", "ij"]);
}

#[test]
fn peer_close_in_transparent_mode_is_no_carrier() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.cmd(&format!("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",{port},0,2"), "\r\nCONNECT\r\n");
    let mut peer = accept(&l);
    put(&mut peer, b"last words");
    drop(peer);
    t.expect("last words\r\nNO CARRIER\r\n");
    t.cmd("ATO", "\r\nNO CARRIER\r\n");
    let s = &t.sim.open_sockets()[0];
    assert_eq!(s.state, SocketState::Closing);
    t.cmd("AT+QICLOSE=0", "\r\nOK\r\n");
}

#[test]
fn peer_close_in_direct_push_after_data() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.open_tcp(0, port, 1);
    let mut peer = accept(&l);
    put(&mut peer, b"data");
    drop(peer);
    t.expect("\r\n+QIURC: \"recv\",0,4\r\ndata\r\n\r\n+QIURC: \"closed\",0\r\n");
}

#[test]
fn incoming_connections_take_the_listener_access_mode() {
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QIOPEN=1,3,\"TCP LISTENER\",\"127.0.0.1\",0,0,1", "\r\nOK\r\n\r\n+QIOPEN: 3,0\r\n");
    let lport = t.sim.open_sockets()[0].local_addr.unwrap().port();
    let mut c = std::net::TcpStream::connect(("127.0.0.1", lport)).unwrap();
    let cport = c.local_addr().unwrap().port();
    t.expect(format!("\r\n+QIURC: \"incoming\",11,3,\"127.0.0.1\",{cport}\r\n"));
    put(&mut c, b"push");
    t.expect("\r\n+QIURC: \"recv\",11,4\r\npush\r\n");
    let c2 = std::net::TcpStream::connect(("127.0.0.1", lport)).unwrap();
    let cport2 = c2.local_addr().unwrap().port();
    t.expect(format!("\r\n+QIURC: \"incoming\",10,3,\"127.0.0.1\",{cport2}\r\n"));
    let socks = t.sim.open_sockets();
    let inc = socks.iter().find(|s| s.connect_id == 11).unwrap();
    assert_eq!(inc.service_type, ServiceType::TcpIncoming);
    assert_eq!(inc.server_id, Some(3));
    assert_eq!(inc.access_mode, AccessMode::DirectPush);
    // Sending back to the client.
    t.cmd("AT+QISDE=0", "\r\nOK\r\n");
    t.cmd("AT+QISEND=11,4", "\r\n> ");
    t.send("back");
    t.expect("\r\nSEND OK\r\n");
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    assert_eq!(read_exact_from(&mut c, 4), b"back");
    // Closing the listener leaves accepted connections alone.
    t.cmd("AT+QICLOSE=3", "\r\nOK\r\n");
    assert_eq!(t.sim.open_sockets().len(), 2);
}

#[test]
fn qistate_listings() {
    let (l, port) = tcp_peer();
    let mut t = T::quiet(fast(Profile::Field));
    t.cmd("AT+QISTATE?", "\r\nOK\r\n");
    t.cmd("AT+QISTATE", "\r\nOK\r\n");
    t.cmd("AT+QISTATE=?", "\r\nOK\r\n");
    t.cmd("AT+QIACT=1", "\r\nOK\r\n");
    t.cmd("AT+QIACT=2", "\r\nOK\r\n");
    t.open_tcp(0, port, 0);
    let peer = accept(&l);
    let lp = peer.peer_addr().unwrap().port();
    t.cmd("AT+QIOPEN=2,1,\"UDP SERVICE\",\"127.0.0.1\",0,0,0", "\r\nOK\r\n\r\n+QIOPEN: 1,0\r\n");
    let up = t.sim.open_sockets()[1].local_addr.unwrap().port();
    let l0 = format!("+QISTATE: 0,\"TCP\",\"127.0.0.1\",{port},{lp},2,1,0,0,\"uart1\"");
    let l1 = format!("+QISTATE: 1,\"UDP SERVICE\",\"127.0.0.1\",0,{up},2,2,1,0,\"uart1\"");
    t.cmd("AT+QISTATE?", format!("\r\n{l0}\r\n{l1}\r\n\r\nOK\r\n"));
    t.cmd("AT+QISTATE=0,2", format!("\r\n{l1}\r\n\r\nOK\r\n"));
    t.cmd("AT+QISTATE=0,3", "\r\nOK\r\n");
    t.cmd("AT+QISTATE=1,0", format!("\r\n{l0}\r\n\r\nOK\r\n"));
    // Deactivating a context closes its sockets.
    t.cmd("AT+QIDEACT=1", "\r\nOK\r\n");
    t.cmd("AT+QISTATE", format!("\r\n{l1}\r\n\r\nOK\r\n"));
    let mut peer = peer;
    assert_eq!(peer.read(&mut [0u8; 4]).unwrap(), 0);
}

#[test]
fn dnsgip_lists_every_address() {
    let cfg = SimConfig {
        dns: vec![("multi.test".into(), vec!["127.0.0.2".parse().unwrap(), "::1".parse().unwrap()])],
        ..fast(Profile::Field)
    };
    let mut t = T::quiet(cfg);
    t.cmd("AT+QIACT=1", "\r\nOK\r\n");
    t.cmd(
        "AT+QIDNSGIP=1,\"MULTI.test\"",
        "\r\nOK\r\n\r\n+QIURC: \"dnsgip\",0,2,600\r\n\r\n+QIURC: \"dnsgip\",\"127.0.0.2\"\r\n\r\n+QIURC: \"dnsgip\",\"::1\"\r\n",
    );
    t.cmd(
        "AT+QIDNSGIP=1,\"localhost\"",
        "\r\nOK\r\n\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"127.0.0.1\"\r\n",
    );
}

#[test]
fn early_data_follows_the_open_result() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    let h = std::thread::spawn(move || {
        let mut s = accept(&l);
        put(&mut s, b"banner");
        s
    });
    t.cmd(
        &format!("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",{port},0,0"),
        "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n\r\n+QIURC: \"recv\",0\r\n",
    );
    let _s = h.join().unwrap();
    wait_buffered(&t, 0, 6);
    t.cmd("AT+QIRD=0", "\r\n+QIRD: 6\r\nbanner\r\n\r\nOK\r\n");
}

#[test]
fn ping_honours_pingnum_and_qping_test_form() {
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QPING=?", "\r\n+QPING: (1-16),<host>,(1-255),(1-10)\r\n\r\nOK\r\n");
    t.cmd("AT+QPING=1,\"127.0.0.1\",1,2", "\r\nOK\r\n");
    for _ in 0..2 {
        let f = t.frame();
        assert!(f.starts_with("+QPING: 0,\"127.0.0.1\",32,") && f.ends_with(",255"), "{f}");
    }
    let f = t.frame();
    assert!(f.starts_with("+QPING: 0,2,2,0,"), "{f}");
}
