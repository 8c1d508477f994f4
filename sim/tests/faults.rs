//! Each fault-injection method and its effect on the wire.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use bg96_sim::{InjectPoint, Profile, SocketState};
use common::*;

#[test]
fn close_from_peer_buffer_and_transparent() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    put(&mut peer, b"kept");
    t.expect("\r\n+QIURC: \"recv\",0\r\n");
    assert!(wait_for(Duration::from_secs(2), || t.sim.open_sockets()[0].rx_buffered == 4));
    t.sim.close_from_peer(0);
    t.expect("\r\n+QIURC: \"closed\",0\r\n");
    assert_eq!(peer.read(&mut [0u8; 4]).unwrap(), 0, "host socket shut down");
    t.cmd("AT+QIRD=0", "\r\n+QIRD: 4\r\nkept\r\n\r\nOK\r\n");
    t.cmd("AT+QICLOSE=0", "\r\nOK\r\n");

    t.cmd(&format!("AT+QIOPEN=1,1,\"TCP\",\"127.0.0.1\",{port},0,2"), "\r\nCONNECT\r\n");
    let _peer2 = accept(&l);
    t.sim.close_from_peer(1);
    t.expect("\r\nNO CARRIER\r\n");
    t.cmd("AT", "\r\nOK\r\n");
}

#[test]
fn pdp_deactivate() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    t.sim.pdp_deactivate(1);
    t.expect("\r\n+QIURC: \"pdpdeact\",1\r\n");
    assert_eq!(peer.read(&mut [0u8; 4]).unwrap(), 0);
    t.cmd("AT+QIACT?", "\r\nOK\r\n");
    assert_eq!(t.sim.open_sockets()[0].state, SocketState::Closing);
    t.cmd("AT+QISEND=0", "\r\nERROR\r\n");
    t.cmd("AT+QIDEACT=1", "\r\nOK\r\n");
    assert!(t.sim.open_sockets().is_empty());
    t.cmd("AT+QIACT=1", "\r\nOK\r\n");
    // Unknown or inactive contexts: nothing happens.
    t.sim.pdp_deactivate(7);
    t.sim.pdp_deactivate(0);
    t.cmd("AT", "\r\nOK\r\n");
}

#[test]
fn reboot_loses_all_state() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QICSGP=1,1,\"apn\",\"\",\"\",0", "\r\nOK\r\n");
    t.cmd("AT+QISDE=0", "\r\nOK\r\n");
    t.cmd("AT+QICFG=\"viewmode\",1", "\r\nOK\r\n");
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    t.sim.reboot();
    t.expect(BOOT_FIELD);
    assert_eq!(peer.read(&mut [0u8; 4]).unwrap(), 0);
    assert!(t.sim.open_sockets().is_empty());
    assert!(t.sim.active_contexts().is_empty());
    t.echo = true;
    t.cmd("AT+QISDE?", "\r\n+QISDE: 1\r\n\r\nOK\r\n");
    t.cmd("AT+QICFG=\"viewmode\"", "\r\n+QICFG: \"viewmode\",0\r\n\r\nOK\r\n");
    t.cmd("AT+QIACT?", "\r\nOK\r\n");
    t.cmd("AT+QICSGP=1", "\r\n+QICSGP: 1,\"apn\",\"\",\"\",0\r\n\r\nOK\r\n");
}

#[test]
fn send_fail_next() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QISDE=0", "\r\nOK\r\n");
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    t.sim.send_fail_next(2);
    t.cmd("AT+QISEND=0,2", "\r\n> ");
    t.send("no");
    t.expect("\r\nSEND FAIL\r\n");
    t.cmd("AT+QISENDEX=0,\"6E6F\"", "\r\nSEND FAIL\r\n");
    t.cmd("AT+QISEND=0,3", "\r\n> ");
    t.send("yes");
    t.expect("\r\nSEND OK\r\n");
    assert_eq!(read_exact_from(&mut peer, 3), b"yes");
}

#[test]
fn delay_response() {
    let mut t = T::active(Profile::Field);
    t.sim.delay_response("at+qiact?", Duration::from_millis(300));
    let start = Instant::now();
    t.cmd("AT+QIACT?", "\r\n+QIACT: 1,1,1,\"127.0.0.1\"\r\n\r\nOK\r\n");
    assert!(start.elapsed() >= Duration::from_millis(290));
    // Only the next matching command.
    let start = Instant::now();
    t.cmd("AT+QIACT?", "\r\n+QIACT: 1,1,1,\"127.0.0.1\"\r\n\r\nOK\r\n");
    assert!(start.elapsed() < Duration::from_millis(250));
    // Commands sent meanwhile wait their turn.
    t.sim.delay_response("AT+CMEE", Duration::from_millis(200));
    t.send("AT+CMEE=1\rAT\r");
    t.expect("\r\nOK\r\n\r\nOK\r\n");
}

#[test]
fn drop_response_including_the_deferred_result() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.sim.drop_response("AT+QIOPEN");
    t.send(format!("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",{port},0,0\r"));
    let _peer = accept(&l);
    t.silence(Duration::from_millis(100));
    assert_eq!(t.sim.open_sockets()[0].state, SocketState::Connected);
    t.cmd("AT", "\r\nOK\r\n");
    t.sim.drop_response("AT+QIDNSGIP");
    t.send("AT+QIDNSGIP=1,\"localhost\"\r");
    t.silence(Duration::from_millis(100));
    t.cmd(
        "AT+QIDNSGIP=1,\"localhost\"",
        "\r\nOK\r\n\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"127.0.0.1\"\r\n",
    );
}

#[test]
fn inject_urc_at_every_point() {
    let (l, port) = tcp_peer();
    let mut t = T::quiet(fast(Profile::Field));
    t.sim.inject_urc(InjectPoint::Now, "+QIURC: \"pdpdeact\",5");
    t.expect("\r\n+QIURC: \"pdpdeact\",5\r\n");
    t.cmd("AT+QIACT=1", "\r\nOK\r\n");
    t.cmd("AT+QIACT=2", "\r\nOK\r\n");
    t.sim.inject_urc(
        InjectPoint::BetweenLines { command_prefix: "AT+QIACT?".into(), after_line: 1 },
        "+QIURC: \"recv\",3",
    );
    t.cmd(
        "AT+QIACT?",
        "\r\n+QIACT: 1,1,1,\"127.0.0.1\"\r\n\r\n+QIURC: \"recv\",3\r\n+QIACT: 2,1,1,\"127.0.0.1\"\r\n\r\nOK\r\n",
    );
    t.sim.inject_urc(InjectPoint::AfterFinal { command_prefix: "AT+QIOPEN".into() }, "+QIURC: \"closed\",5");
    t.cmd(
        &format!("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",{port},0,0"),
        "\r\nOK\r\n\r\n+QIURC: \"closed\",5\r\n\r\n+QIOPEN: 0,0\r\n",
    );
    let mut peer = accept(&l);
    put(&mut peer, b"DATA");
    t.expect("\r\n+QIURC: \"recv\",0\r\n");
    assert!(wait_for(Duration::from_secs(2), || t.sim.open_sockets()[0].rx_buffered == 4));
    t.sim.inject_urc(
        InjectPoint::BetweenLines { command_prefix: "AT+QIRD".into(), after_line: 1 },
        "+QIURC: \"recv\",1",
    );
    t.cmd("AT+QIRD=0,1500", "\r\n+QIRD: 4\r\n\r\n+QIURC: \"recv\",1\r\nDATA\r\n\r\nOK\r\n");
    // URCs are held while a send prompt is open and come out after the result.
    t.cmd("AT+QISDE=0", "\r\nOK\r\n");
    t.cmd("AT+QISEND=0,2", "\r\n> ");
    t.sim.inject_urc(InjectPoint::Now, "+QIURC: \"recv\",2");
    std::thread::sleep(Duration::from_millis(30));
    t.send("ok");
    t.expect("\r\nSEND OK\r\n\r\n+QIURC: \"recv\",2\r\n");
}

#[test]
fn output_chunking_shows_every_split_point() {
    let mut t = T::quiet(fast(Profile::Field));
    t.sim.set_output_chunking(Some((3, Duration::from_millis(15))));
    let start = Instant::now();
    t.send("ATI\r");
    let want = b"\r\nQuectel\r\nBG96\r\nRevision: BG96MAR02A08M1G\r\n\r\nOK\r\n";
    let mut got = Vec::new();
    let mut reads = Vec::new();
    while got.len() < want.len() {
        let mut b = [0u8; 64];
        let n = t.rx.read(&mut b).unwrap();
        reads.push(n);
        got.extend_from_slice(&b[..n]);
    }
    assert_eq!(esc(&got), esc(want));
    assert!(reads.iter().all(|&n| n <= 3), "{reads:?}");
    let pieces = want.len().div_ceil(3);
    assert!(start.elapsed() >= Duration::from_millis(15) * (pieces as u32 - 1));
    t.sim.set_output_chunking(None);
    t.cmd("AT", "\r\nOK\r\n");
}

#[test]
fn emit_garbage_then_keep_working() {
    let mut t = T::quiet(fast(Profile::Field));
    t.sim.emit_garbage(b"\x00\xff\r\nOK\r\n\xfe");
    t.expect(b"\x00\xff\r\nOK\r\n\xfe");
    t.cmd("AT", "\r\nOK\r\n");
}

#[test]
fn set_baud_paces_output() {
    let mut t = T::quiet(fast(Profile::Field));
    t.sim.set_baud(Some(10_000)); // 1 ms per byte
    let start = Instant::now();
    t.sim.emit_garbage(&[b'x'; 200]);
    t.expect([b'x'; 200]);
    assert!(start.elapsed() >= Duration::from_millis(180), "{:?}", start.elapsed());
    t.sim.set_baud(None);
    let start = Instant::now();
    t.sim.emit_garbage(&[b'y'; 200]);
    t.expect([b'y'; 200]);
    assert!(start.elapsed() < Duration::from_millis(150));
}
