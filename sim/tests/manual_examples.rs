//! Every example of the manual's chapter 3 as a strict transcript, with the data crossing
//! real loopback sockets to a test peer (the manual's addresses replaced by 127.0.0.1).

mod common;

use std::io::Write;
use std::net::{IpAddr, TcpStream};
use std::thread::sleep;
use std::time::Duration;

use bg96_sim::{Profile, SimConfig};
use common::*;

fn manual() -> T {
    let mut t = T::quiet(fast(Profile::Manual));
    t.cmd("AT+QIACT=1", "\r\nOK\r\n");
    t
}

#[test]
fn ch3_1_configure_activate_deactivate_context() {
    for profile in [Profile::Manual, Profile::Field] {
        let mut t = T::quiet(fast(profile));
        t.cmd("AT+QICSGP=1", "\r\n+QICSGP: 1,\"\",\"\",\"\",0\r\n\r\nOK\r\n");
        t.cmd("AT+QICSGP=1,1,\"UNINET\",\"\",\"\",1", "\r\nOK\r\n");
        t.cmd("AT+QICSGP=1", "\r\n+QICSGP: 1,\"UNINET\",\"\",\"\",1\r\n\r\nOK\r\n");
        t.cmd("AT+QIACT=1", "\r\nOK\r\n");
        t.cmd("AT+QIACT?", "\r\n+QIACT: 1,1,1,\"127.0.0.1\"\r\n\r\nOK\r\n");
        assert_eq!(t.sim.active_contexts(), vec![1]);
        t.cmd("AT+QIDEACT=1", "\r\nOK\r\n");
        t.cmd("AT+QIACT?", "\r\nOK\r\n");
        assert!(t.sim.active_contexts().is_empty());
    }
}

#[test]
fn ch3_2_tcp_client_buffer_mode() {
    let (l, port) = tcp_peer();
    let mut t = manual();
    // 3.2.1
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    let local = peer.peer_addr().unwrap().port();
    t.cmd(
        "AT+QISTATE=1,0",
        format!("\r\n+QISTATE: 0,\"TCP\",\"127.0.0.1\",{port},{local},2,1,0,0,\"usbmodem\"\r\n\r\nOK\r\n"),
    );
    // 3.2.2
    t.cmd("AT+QISEND=0", "\r\n> ");
    t.send("test1\x1a");
    t.expect("test1\r\nSEND OK\r\n");
    assert_eq!(read_exact_from(&mut peer, 5), b"test1");
    t.cmd("AT+QISEND=0,4", "\r\n> ");
    t.send("test");
    t.expect("test\r\nSEND OK\r\n");
    assert_eq!(read_exact_from(&mut peer, 4), b"test");
    sleep(Duration::from_millis(50));
    t.cmd("AT+QISEND=0,0", "\r\n+QISEND: 9,9,0\r\n\r\nOK\r\n");
    t.cmd("AT+QISENDEX=0,\"3132333435\"", "\r\nSEND OK\r\n");
    assert_eq!(read_exact_from(&mut peer, 5), b"12345");
    sleep(Duration::from_millis(50));
    t.cmd("AT+QISEND=0,0", "\r\n+QISEND: 14,14,0\r\n\r\nOK\r\n");
    // 3.2.3
    put(&mut peer, b"test1");
    t.expect("\r\n+QIURC: \"recv\",0\r\n");
    t.cmd("AT+QIRD=0,1500", "\r\n+QIRD: 5\r\ntest1\r\n\r\nOK\r\n");
    t.cmd("AT+QIRD=0,1500", "\r\n+QIRD: 0\r\n\r\nOK\r\n");
    t.cmd("AT+QIRD=0,0", "\r\n+QIRD: 5,5,0\r\n\r\nOK\r\n");
    // 3.2.4
    t.cmd("AT+QICLOSE=0", "\r\nOK\r\n");
    assert_eq!(std::io::Read::read(&mut peer, &mut [0u8; 8]).unwrap(), 0, "peer sees EOF");
    assert!(t.sim.open_sockets().is_empty());
}

#[test]
fn ch3_3_tcp_client_transparent_mode() {
    let (l, port) = tcp_peer();
    let mut t = manual();
    // 3.3.1
    t.cmd(&format!("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",{port},0,2"), "\r\nCONNECT\r\n");
    let mut peer = accept(&l);
    // 3.3.2: everything from the COM port goes to the network.
    t.send("hello\r\nOK\r\nAT+QIRD=0\r");
    assert_eq!(read_exact_from(&mut peer, 21), b"hello\r\nOK\r\nAT+QIRD=0\r");
    // 3.3.3: everything from the network comes out raw.
    put(&mut peer, b"Test 1");
    t.expect("Test 1");
    // 3.3.4: +++ with guard times, then close.
    sleep(Duration::from_millis(200));
    t.send("+++");
    t.expect("\r\nOK\r\n");
    t.cmd(
        "AT+QISTATE=1,0",
        format!(
            "\r\n+QISTATE: 0,\"TCP\",\"127.0.0.1\",{port},{},2,1,0,0,\"usbmodem\"\r\n\r\nOK\r\n",
            peer.peer_addr().unwrap().port()
        ),
    );
    t.cmd("AT+QICLOSE=0", "\r\nOK\r\n");
}

#[test]
fn ch3_4_tcp_client_direct_push_mode() {
    let (l, port) = tcp_peer();
    let mut t = manual();
    t.open_tcp(0, port, 1);
    let mut peer = accept(&l);
    let local = peer.peer_addr().unwrap().port();
    t.cmd(
        "AT+QISTATE=1,0",
        format!("\r\n+QISTATE: 0,\"TCP\",\"127.0.0.1\",{port},{local},2,1,0,1,\"usbmodem\"\r\n\r\nOK\r\n"),
    );
    t.cmd("AT+QISEND=0", "\r\n> ");
    t.send("test1\x1a");
    t.expect("test1\r\nSEND OK\r\n");
    t.cmd("AT+QISEND=0,5", "\r\n> ");
    t.send("test2");
    t.expect("test2\r\nSEND OK\r\n");
    assert_eq!(read_exact_from(&mut peer, 10), b"test1test2");
    sleep(Duration::from_millis(50));
    t.cmd("AT+QISEND=0,0", "\r\n+QISEND: 10,10,0\r\n\r\nOK\r\n");
    put(&mut peer, b"test");
    t.expect("\r\n+QIURC: \"recv\",0,4\r\ntest\r\n");
    t.cmd("AT+QICLOSE=0", "\r\nOK\r\n");
}

#[test]
fn ch3_5_tcp_server_buffer_mode() {
    let lport = free_port();
    let mut t = manual();
    t.cmd(&format!("AT+QIOPEN=1,1,\"TCP LISTENER\",\"127.0.0.1\",0,{lport},0"), "\r\nOK\r\n\r\n+QIOPEN: 1,0\r\n");
    t.cmd(
        "AT+QISTATE=0,1",
        format!("\r\n+QISTATE: 1,\"TCP LISTENER\",\"127.0.0.1\",0,{lport},3,1,1,0,\"usbmodem\"\r\n\r\nOK\r\n"),
    );
    let mut client = TcpStream::connect(("127.0.0.1", lport)).unwrap();
    let cport = client.local_addr().unwrap().port();
    t.expect(format!("\r\n+QIURC: \"incoming\",11,1,\"127.0.0.1\",{cport}\r\n"));
    client.write_all(b"test").unwrap();
    t.expect("\r\n+QIURC: \"recv\",11\r\n");
    t.cmd("AT+QIRD=11,1500", "\r\n+QIRD: 4\r\ntest\r\n\r\nOK\r\n");
    t.cmd("AT+QIRD=11,1500", "\r\n+QIRD: 0\r\n\r\nOK\r\n");
    t.cmd("AT+QIRD=11,0", "\r\n+QIRD: 4,4,0\r\n\r\nOK\r\n");
    t.cmd(
        "AT+QISTATE=1,11",
        format!("\r\n+QISTATE: 11,\"TCP INCOMING\",\"127.0.0.1\",{cport},{lport},2,1,1,0,\"usbmodem\"\r\n\r\nOK\r\n"),
    );
    t.cmd("AT+QICLOSE=11", "\r\nOK\r\n");
    t.cmd("AT+QICLOSE=1", "\r\nOK\r\n");
    assert!(t.sim.open_sockets().is_empty());
}

#[test]
fn ch3_6_udp_service() {
    let lport = free_port();
    let (peer, pport) = udp_peer();
    let mut t = manual();
    t.cmd(&format!("AT+QIOPEN=1,2,\"UDP SERVICE\",\"127.0.0.1\",0,{lport},0"), "\r\nOK\r\n\r\n+QIOPEN: 2,0\r\n");
    t.cmd(
        "AT+QISTATE=0,1",
        format!("\r\n+QISTATE: 2,\"UDP SERVICE\",\"127.0.0.1\",0,{lport},2,1,2,0,\"usbmodem\"\r\n\r\nOK\r\n"),
    );
    t.cmd(&format!("AT+QISEND=2,10,\"127.0.0.1\",{pport}"), "\r\n> ");
    t.send("1234567890");
    t.expect("1234567890\r\nSEND OK\r\n");
    let mut buf = [0u8; 64];
    let (n, from) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"1234567890");
    assert_eq!(from.port(), lport);
    peer.send_to(b"AAAA", ("127.0.0.1", lport)).unwrap();
    t.expect("\r\n+QIURC: \"recv\",2\r\n");
    t.cmd("AT+QIRD=2", format!("\r\n+QIRD: 4,\"127.0.0.1\",{pport}\r\nAAAA\r\n\r\nOK\r\n"));
    t.cmd("AT+QIRD=2", "\r\n+QIRD: 0\r\n\r\nOK\r\n");
    t.cmd(&format!("AT+QISEND=2,10,\"127.0.0.1\",{pport}"), "\r\n> ");
    t.send("1234567890");
    t.expect("1234567890\r\nSEND OK\r\n");
    let (n, _) = peer.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"1234567890");
    t.cmd("AT+QICLOSE=2", "\r\nOK\r\n");
}

fn parse_ping(line: &str) -> Vec<u64> {
    line.trim_start_matches("+QPING: ")
        .split(',')
        .map(|f| f.trim_matches('"').parse::<u64>().unwrap_or(u64::MAX))
        .collect()
}

#[test]
fn ch3_7_ping() {
    let ip: IpAddr = "61.135.169.125".parse().unwrap();
    let cfg = SimConfig { dns: vec![("www.baidu.com".into(), vec![ip])], ..fast(Profile::Manual) };
    let mut t = T::quiet(cfg);
    t.cmd("AT+QIACT=1", "\r\nOK\r\n");
    t.cmd("AT+QPING=1,\"www.baidu.com\"", "\r\nOK\r\n");
    for _ in 0..4 {
        let l = t.read_until(b",255\r\n");
        let s = String::from_utf8(l).unwrap();
        assert!(s.starts_with("\r\n+QPING: 0,\"61.135.169.125\",32,"), "{s:?}");
    }
    let fin = t.frame();
    let v = parse_ping(&fin);
    assert_eq!(&v[..4], &[0, 4, 4, 0], "{fin}");
    assert!(v[4] <= v[6] && v[6] <= v[5], "min <= avg <= max: {fin}");
    t.silence(Duration::from_millis(30));
}

#[test]
fn ch3_8_ntp_and_cclk() {
    let (server, addr) = ntp_server(1_376_910_610); // 2013-08-19 11:10:10 UTC
    let mut t = manual();
    t.cmd(&format!("AT+QNTP=1,\"127.0.0.1\",{}", addr.port()), "\r\nOK\r\n\r\n+QNTP: 0,\"2013/08/19,11:10:10+00\"\r\n");
    t.cmd("AT+CCLK?", "\r\n+CCLK: \"13/08/19,11:10:10+00\"\r\n\r\nOK\r\n");
    server.join().unwrap();
}

#[test]
fn ch3_9_last_error_code() {
    for profile in [Profile::Manual, Profile::Field] {
        let mut t = T::quiet(fast(profile));
        t.cmd("AT+QIACT=1", "\r\nOK\r\n");
        t.cmd("AT+QIOPEN=1,\"TCP\",\"220.180.239.212\",8009,0,1", "\r\nERROR\r\n");
        t.cmd("AT+QIGETERROR", "\r\n+QIGETERROR: 552,invalid parameters\r\n\r\nOK\r\n");
    }
}
