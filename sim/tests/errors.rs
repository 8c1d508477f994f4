//! Every error path the manual names, plus the field behaviours around them.

mod common;

use std::net::UdpSocket;
use std::time::Duration;

use bg96_sim::{Profile, SimConfig};
use common::*;

const ERR: &str = "\r\nERROR\r\n";

fn geterror(t: &mut T, code: u16, desc: &str) {
    t.cmd("AT+QIGETERROR", format!("\r\n+QIGETERROR: {code},{desc}\r\n\r\nOK\r\n"));
}

#[test]
fn out_of_range_parameters_answer_error_552() {
    let mut t = T::active(Profile::Field);
    for cmd in [
        "AT+QICSGP=0",
        "AT+QICSGP=17",
        "AT+QICSGP=1,4,\"apn\"",
        "AT+QICSGP=1,1,\"apn\",\"u\",\"p\",4",
        "AT+QICSGP=1,1",
        "AT+QIACT=0",
        "AT+QIACT=17",
        "AT+QIACT",
        "AT+QIDEACT=17",
        "AT+QIOPEN=17,0,\"TCP\",\"127.0.0.1\",80,0,0",
        "AT+QIOPEN=1,12,\"TCP\",\"127.0.0.1\",80,0,0",
        "AT+QIOPEN=1,0,\"SCTP\",\"127.0.0.1\",80,0,0",
        "AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",65536,0,0",
        "AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",80,65536,0",
        "AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",80,0,3",
        "AT+QIOPEN=1,0,\"TCP LISTENER\",\"127.0.0.1\",0",
        "AT+QIOPEN=1,0,\"TCP LISTENER\",\"127.0.0.1\",0,2020,2",
        "AT+QIOPEN=1,0,TCP,\"127.0.0.1\",80,0,0",
        "AT+QICLOSE=12",
        "AT+QICLOSE=0,65536",
        "AT+QISTATE=2,0",
        "AT+QISTATE=0,0",
        "AT+QISTATE=1,12",
        "AT+QISEND=12",
        "AT+QIRD=12",
        "AT+QISENDEX=12,\"00\"",
        "AT+QISWTMD=0,3",
        "AT+QPING=1,\"localhost\",0",
        "AT+QPING=1,\"localhost\",256",
        "AT+QPING=1,\"localhost\",4,0",
        "AT+QPING=1,\"localhost\",4,11",
        "AT+QPING=17,\"localhost\"",
        "AT+QNTP=1,\"127.0.0.1\",0",
        "AT+QNTP=1,\"127.0.0.1\",123,2",
        "AT+QIDNSGIP=17,\"localhost\"",
        "AT+QIDNSCFG=1,\"not-an-ip\"",
        "AT+QICFG=\"transpktsize\",0",
        "AT+QICFG=\"transpktsize\",1461",
        "AT+QICFG=\"transwaittm\",21",
        "AT+QICFG=\"dataformat\",2,0",
        "AT+QICFG=\"dataformat\",1",
        "AT+QICFG=\"viewmode\",2",
        "AT+QICFG=\"recvind\",2",
        "AT+QICFG=\"prefix\",\"64:ff9b::\",33",
        "AT+QICFG=\"tcp/retranscfg\",2,600",
        "AT+QICFG=\"tcp/retranscfg\",8,1001",
        "AT+QICFG=\"nosuchoption\",1",
        "AT+QISDE=2",
    ] {
        t.cmd(cmd, ERR);
        geterror(&mut t, 552, "invalid parameters");
    }
}

#[test]
fn qiopen_on_used_connect_id_reports_563() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.open_tcp(0, port, 0);
    let _peer = accept(&l);
    t.cmd(&format!("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",{port},0,0"), "\r\nOK\r\n\r\n+QIOPEN: 0,563\r\n");
    geterror(&mut t, 563, "socket identity has been used");
    // Transparent access mode reports failures as ERROR.
    t.cmd(&format!("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",{port},0,2"), ERR);
    geterror(&mut t, 563, "socket identity has been used");
    assert_eq!(t.sim.open_sockets().len(), 1);
}

#[test]
fn connection_refused_reports_566_and_frees_the_slot() {
    let port = free_port();
    let mut t = T::active(Profile::Field);
    t.cmd(&format!("AT+QIOPEN=1,3,\"TCP\",\"127.0.0.1\",{port},0,0"), "\r\nOK\r\n\r\n+QIOPEN: 3,566\r\n");
    geterror(&mut t, 566, "socket connect failed");
    t.cmd("AT+QISTATE", "\r\nOK\r\n");
    t.cmd(&format!("AT+QIOPEN=1,3,\"TCP\",\"127.0.0.1\",{port},0,2"), ERR);
    geterror(&mut t, 566, "socket connect failed");
}

#[test]
fn dns_failure_565() {
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QIOPEN=1,0,\"TCP\",\"no.such.host\",80,0,0", "\r\nOK\r\n\r\n+QIOPEN: 0,565\r\n");
    t.cmd("AT+QIDNSGIP=1,\"no.such.host\"", "\r\nOK\r\n\r\n+QIURC: \"dnsgip\",565\r\n");
    geterror(&mut t, 565, "dns parse failed");
    t.cmd("AT+QPING=1,\"no.such.host\"", "\r\nOK\r\n\r\n+QPING: 565\r\n");
    t.cmd("AT+QNTP=1,\"no.such.host\"", "\r\nOK\r\n\r\n+QNTP: 565\r\n");
}

#[test]
fn dns_is_single_flight_564() {
    let mut t = T::active(Profile::Field);
    t.send("AT+QIDNSGIP=1,\"localhost\"\rAT+QIDNSGIP=1,\"localhost\"\r");
    t.expect("\r\nOK\r\n\r\nERROR\r\n");
    t.expect("\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"127.0.0.1\"\r\n");
    // The error of the second command was recorded, then the result of the first (0).
    geterror(&mut t, 0, "operation successful");
}

#[test]
fn fourth_context_and_reactivation_fail() {
    let mut t = T::quiet(fast(Profile::Field));
    for cid in 1..=3 {
        t.cmd(&format!("AT+QIACT={cid}"), "\r\nOK\r\n");
    }
    t.cmd("AT+QIACT=4", ERR);
    geterror(&mut t, 561, "open pdp context failed");
    t.cmd("AT+QIACT=2", ERR);
    assert_eq!(t.sim.active_contexts(), vec![1, 2, 3]);
    t.cmd(
        "AT+QIACT?",
        "\r\n+QIACT: 1,1,1,\"127.0.0.1\"\r\n+QIACT: 2,1,1,\"127.0.0.1\"\r\n+QIACT: 3,1,1,\"127.0.0.1\"\r\n\r\nOK\r\n",
    );
    t.cmd("AT+QIDEACT=2", "\r\nOK\r\n");
    t.cmd("AT+QIACT=4", "\r\nOK\r\n");
    t.cmd("AT+QIDEACT=16", "\r\nOK\r\n");
}

#[test]
fn commands_needing_an_active_context() {
    let mut t = T::quiet(fast(Profile::Field));
    t.cmd("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",80,0,0", "\r\nOK\r\n\r\n+QIOPEN: 0,561\r\n");
    t.cmd("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",80,0,2", ERR);
    t.cmd("AT+QIDNSCFG=1", ERR);
    t.cmd("AT+QIDNSCFG=1,\"8.8.8.8\"", ERR);
    t.cmd("AT+QIDNSGIP=1,\"localhost\"", ERR);
    t.cmd("AT+QPING=1,\"localhost\"", ERR);
    t.cmd("AT+QNTP=1,\"127.0.0.1\"", ERR);
    geterror(&mut t, 561, "open pdp context failed");
    t.cmd("AT+QIACT=1", "\r\nOK\r\n");
    t.cmd("AT+QIDNSCFG=1", "\r\n+QIDNSCFG: 1,\"127.0.0.1\",\"0.0.0.0\"\r\n\r\nOK\r\n");
    t.cmd("AT+QIDNSCFG=1,\"8.8.8.8\",\"1.1.1.1\"", "\r\nOK\r\n");
    t.cmd("AT+QIDNSCFG=1", "\r\n+QIDNSCFG: 1,\"8.8.8.8\",\"1.1.1.1\"\r\n\r\nOK\r\n");
}

#[test]
fn unknown_socket_errors() {
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QISEND=5", ERR);
    t.cmd("AT+QISEND=5,10", ERR);
    t.cmd("AT+QISEND=5,0", ERR);
    t.cmd("AT+QIRD=5", ERR);
    t.cmd("AT+QIRD=5,0", ERR);
    t.cmd("AT+QISENDEX=5,\"41\"", ERR);
    t.cmd("AT+QISWTMD=5,0", ERR);
    t.cmd("AT+QISTATE=1,5", "\r\nOK\r\n");
    // Closing a socket that is not open: OK, as real modems do.
    t.cmd("AT+QICLOSE=5", "\r\nOK\r\n");
}

#[test]
fn send_on_closed_socket_and_read_after_close() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    put(&mut peer, b"bye");
    drop(peer);
    t.expect("\r\n+QIURC: \"recv\",0\r\n\r\n+QIURC: \"closed\",0\r\n");
    t.cmd("AT+QISEND=0", ERR);
    geterror(&mut t, 567, "socket has been closed");
    t.cmd("AT+QISENDEX=0,\"41\"", ERR);
    // Buffered data stays readable; the slot stays taken until QICLOSE.
    t.cmd("AT+QIRD=0,1500", "\r\n+QIRD: 3\r\nbye\r\n\r\nOK\r\n");
    t.cmd(
        "AT+QISTATE=1,0",
        format!(
            "\r\n+QISTATE: 0,\"TCP\",\"127.0.0.1\",{port},{},4,1,0,0,\"uart1\"\r\n\r\nOK\r\n",
            t.sim.open_sockets()[0].local_addr.unwrap().port()
        ),
    );
    t.cmd("AT+QISEND=0,0", "\r\n+QISEND: 0,0,0\r\n\r\nOK\r\n");
    t.cmd("AT+QICLOSE=0", "\r\nOK\r\n");
    t.cmd("AT+QISTATE", "\r\nOK\r\n");
}

#[test]
fn send_buffer_full_send_fail() {
    let (l, port) = tcp_peer();
    let cfg = SimConfig { socket_tx_capacity: 100, ..fast(Profile::Field) };
    let mut t = T::quiet(cfg);
    t.cmd("AT+QIACT=1", "\r\nOK\r\n");
    t.cmd("AT+QISDE=0", "\r\nOK\r\n");
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    t.cmd("AT+QISEND=0,200", "\r\n> ");
    t.send([b'x'; 200]);
    t.expect("\r\nSEND FAIL\r\n");
    t.cmd("AT+QISEND=0,100", "\r\n> ");
    t.send([b'y'; 100]);
    t.expect("\r\nSEND OK\r\n");
    assert_eq!(read_exact_from(&mut peer, 100), vec![b'y'; 100]);
    assert!(wait_for(Duration::from_secs(2), || t.sim.open_sockets()[0].tx_unacked == 0));
}

#[test]
fn send_length_limits() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.open_tcp(0, port, 0);
    let _peer = accept(&l);
    t.cmd("AT+QISEND=0,1461", ERR);
    t.cmd("AT+QIRD=0,1501", ERR);
    t.cmd(&format!("AT+QISENDEX=0,\"{}\"", "00".repeat(513)), ERR);
    t.cmd("AT+QISENDEX=0,\"123\"", ERR);
    t.cmd("AT+QISENDEX=0,\"zz\"", ERR);
    t.cmd("AT+QISENDEX=0,\"\"", "\r\nSEND FAIL\r\n");
    t.cmd("AT+QISEND=0,10,\"127.0.0.1\",80", ERR);
    // Variable length: more than 1460 bytes before Ctrl-Z is an error, nothing is sent.
    t.cmd("AT+QISDE=0", "\r\nOK\r\n");
    t.cmd("AT+QISEND=0", "\r\n> ");
    t.send(vec![b'a'; 1500]);
    t.send("\x1a");
    t.expect(ERR);
    assert_eq!(t.sim.open_sockets()[0].tx_unacked, 0);
    t.cmd("AT+QISEND=0,0", "\r\n+QISEND: 0,0,0\r\n\r\nOK\r\n");
}

#[test]
fn esc_cancels_a_send() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    t.cmd("AT+QISEND=0", "\r\n> ");
    t.send("never\x1b");
    t.expect("\r\nSEND FAIL\r\n");
    geterror(&mut t, 571, "cancel send");
    t.cmd("AT+QISEND=0,0", "\r\n+QISEND: 0,0,0\r\n\r\nOK\r\n");
    peer.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    assert!(std::io::Read::read(&mut peer, &mut [0u8; 8]).is_err(), "nothing was sent");
}

#[test]
fn udp_service_send_needs_address() {
    let lport = free_port();
    let mut t = T::active(Profile::Field);
    t.cmd(&format!("AT+QIOPEN=1,2,\"UDP SERVICE\",\"127.0.0.1\",0,{lport},0"), "\r\nOK\r\n\r\n+QIOPEN: 2,0\r\n");
    t.cmd("AT+QISEND=2", ERR);
    t.cmd("AT+QISEND=2,5", ERR);
    t.cmd("AT+QISEND=2,5,\"localhost\",80", ERR);
    t.cmd("AT+QISENDEX=2,\"41\"", ERR);
    t.cmd("AT+QISWTMD=2,2", ERR);
}

#[test]
fn listener_errors() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut t = T::active(Profile::Field);
    t.cmd(&format!("AT+QIOPEN=1,1,\"TCP LISTENER\",\"127.0.0.1\",0,{port},0"), "\r\nOK\r\n\r\n+QIOPEN: 1,574\r\n");
    geterror(&mut t, 574, "port busy");
    t.cmd("AT+QIOPEN=1,1,\"TCP LISTENER\",\"127.0.0.1\",0,0,0", "\r\nOK\r\n\r\n+QIOPEN: 1,0\r\n");
    t.cmd("AT+QIRD=1", ERR);
    t.cmd("AT+QISEND=1", ERR);
    t.cmd("AT+QISEND=1,0", ERR);
    t.cmd("AT+QISWTMD=1,2", ERR);
}

#[test]
fn ato_without_transparent_history_is_no_carrier() {
    let mut t = T::active(Profile::Field);
    t.cmd("ATO", "\r\nNO CARRIER\r\n");
    t.cmd("ATO0", "\r\nNO CARRIER\r\n");
}

#[test]
fn recvind_absent_on_old_firmware() {
    let cfg = SimConfig { recvind_supported: false, firmware: "BG96MAR02A07M1G".into(), ..fast(Profile::Field) };
    let mut t = T::quiet(cfg);
    t.cmd("AT+QICFG=\"recvind\"", ERR);
    t.cmd("AT+QICFG=\"recvind\",1", ERR);
    t.cmd("AT+QGMR", "\r\nBG96MAR02A07M1G\r\n\r\nOK\r\n");
}

#[test]
fn ntp_timeout_569() {
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let mut t = T::active(Profile::Field);
    t.cmd(&format!("AT+QNTP=1,\"127.0.0.1\",{port}"), "\r\nOK\r\n");
    t.cmd("AT+QNTP?", format!("\r\n+QNTP: \"127.0.0.1\",{port}\r\n\r\nOK\r\n"));
    t.cmd(&format!("AT+QNTP=1,\"127.0.0.1\",{port}"), ERR);
    t.expect("\r\n+QNTP: 569\r\n");
    geterror(&mut t, 569, "operation timeout");
    t.cmd("AT+QNTP?", "\r\nOK\r\n");
}

#[test]
fn ping_unreachable_times_out() {
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QPING=1,\"192.0.2.1\",1,1", "\r\nOK\r\n");
    t.cmd("AT+QPING=1,\"192.0.2.1\",1,1", ERR);
    t.expect("\r\n+QPING: 569\r\n\r\n+QPING: 569\r\n");
    geterror(&mut t, 569, "operation timeout");
}

#[test]
fn incoming_full() {
    let mut t = T::active(Profile::Field);
    t.cmd("AT+QIOPEN=1,0,\"TCP LISTENER\",\"127.0.0.1\",0,0,0", "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n");
    let lport = t.sim.open_sockets()[0].local_addr.unwrap().port();
    for id in 1..=11 {
        t.cmd(
            &format!("AT+QIOPEN=1,{id},\"UDP SERVICE\",\"127.0.0.1\",0,0,0"),
            format!("\r\nOK\r\n\r\n+QIOPEN: {id},0\r\n"),
        );
    }
    let mut c = std::net::TcpStream::connect(("127.0.0.1", lport)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    t.expect("\r\n+QIURC: \"incoming full\"\r\n");
    // The client's connection is closed.
    let r = std::io::Read::read(&mut c, &mut [0u8; 4]);
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    t.cmd("AT+QICLOSE=5", "\r\nOK\r\n");
    let c2 = std::net::TcpStream::connect(("127.0.0.1", lport)).unwrap();
    let p2 = c2.local_addr().unwrap().port();
    t.expect(format!("\r\n+QIURC: \"incoming\",5,0,\"127.0.0.1\",{p2}\r\n"));
}

#[test]
fn a_failing_open_holds_its_connect_id_until_the_failure_is_reported() {
    let cfg = SimConfig { deferred_delay: Duration::from_millis(300), ..fast(Profile::Field) };
    let mut t = T::quiet(cfg);
    // no active context: the open fails with 561, after its OK
    t.cmd("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",80,0,0", "\r\nOK\r\n");
    // meanwhile connectID 0 is opening ...
    t.send("AT+QISTATE=1,0\r");
    let state = t.frame();
    assert!(state.starts_with("+QISTATE: 0,\"TCP\","), "{state}");
    assert!(state.ends_with(",1,1,0,0,\"uart1\""), "state 1 (opening) on context 1: {state}");
    t.expect("\r\nOK\r\n");
    // ... and taken for another open
    t.cmd("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",80,0,0", "\r\nOK\r\n");
    t.expect("\r\n+QIOPEN: 0,561\r\n");
    t.expect("\r\n+QIOPEN: 0,563\r\n");
    geterror(&mut t, 563, "socket identity has been used");
    // the failure freed it
    t.cmd("AT+QISTATE=1,0", "\r\nOK\r\n");
}
