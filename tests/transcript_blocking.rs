//! Transcript-exact tests of the blocking stack: every byte the stack writes is checked against
//! the script, so these pin the exact commands of bring-up, TCP, UDP and DNS.

mod common;

use common::{Script, TickClock, bring_up_script, config};
use embedded_nal::{Dns, TcpClientStack, TcpError, TcpErrorKind};

use quectel_bg96::blocking::Bg96;
use quectel_bg96::{Error, ErrorCode};

fn up(s: &Script) -> Bg96<common::MockSerial, TickClock> {
    bring_up_script(s);
    let modem = Bg96::new(s.serial(), TickClock::default(), config());
    let info = modem.bring_up().unwrap();
    assert_eq!(info.revision.0.as_str(), "BG96MAR02A07M1G");
    assert_eq!(info.local_ip, Some("10.0.0.2".parse().unwrap()));
    assert!(!info.recvind);
    s.assert_done();
    modem
}

#[test]
fn bring_up_follows_figure_1() {
    let s = Script::new();
    let _ = up(&s);
}

#[test]
fn bring_up_waits_for_app_rdy_and_closes_stale_sockets() {
    let s = Script::new();
    // the modem is booting: the first AT is lost, RDY arrives; the next AT is answered and
    // APP RDY follows
    s.expect(b"AT\r").reply(b"\r\nRDY\r\n");
    s.expect(b"AT\r").reply(b"\r\nOK\r\n\r\nAPP RDY\r\n");
    // the rest of the field bring-up, with one stale socket in QISTATE
    s.exchange("ATE0\r", "ATE0\r\r\nOK\r\n")
        .exchange("AT+CMEE=1\r", "\r\nOK\r\n")
        .exchange("AT+QISDE=0\r", "\r\nOK\r\n")
        .exchange("AT+QURCCFG=\"urcport\",\"uart1\"\r", "\r\nOK\r\n")
        .exchange("AT+QICFG=\"dataformat\",0,0\r", "\r\nOK\r\n")
        .exchange("AT+QICFG=\"viewmode\",0\r", "\r\nOK\r\n")
        .exchange("AT+QGMR\r", "\r\nBG96MAR02A08M1G\r\n\r\nOK\r\n")
        .exchange("AT+CPIN?\r", "\r\n+CPIN: READY\r\n\r\nOK\r\n")
        .exchange("AT+CREG?\r", "\r\n+CREG: 0,5\r\n\r\nOK\r\n")
        .exchange("AT+CEREG?\r", "\r\n+CEREG: 0,5\r\n\r\nOK\r\n")
        .exchange("AT+QICSGP=1,1,\"internet\",\"\",\"\",0\r", "\r\nOK\r\n")
        .exchange("AT+QIACT?\r", "\r\n+QIACT: 1,1,1,\"10.0.0.7\"\r\n\r\nOK\r\n")
        .exchange("AT+QISTATE?\r", "\r\n+QISTATE: 3,\"TCP\",\"10.1.1.1\",80,4000,2,1,0,0,\"uart1\"\r\n\r\nOK\r\n")
        .exchange("AT+QICLOSE=3\r", "\r\nOK\r\n")
        .exchange("AT+QICFG=\"recvind\",1\r", "\r\nOK\r\n");
    let modem = Bg96::new(s.serial(), TickClock::default(), config());
    let info = modem.bring_up().unwrap();
    s.assert_done();
    assert_eq!(info.local_ip, Some("10.0.0.7".parse().unwrap()), "an active context is not activated again");
    assert_eq!(info.stale_sockets_closed, 1);
    assert!(info.recvind);
}

#[test]
fn twelve_stale_ipv6_sockets_are_listed_one_by_one_when_qistate_overflows() {
    let s = Script::new();
    let line = |id: u8| {
        format!(
            "+QISTATE: {id},\"TCP LISTENER\",\"2001:0DB8:0000:0000:0000:0000:0000:00{id:02}\",0,{},3,1,{id},0,\"uart1\"\r\n",
            40000 + u32::from(id)
        )
    };
    let all: String = (0..12).map(line).collect();
    assert!(all.len() > 1024, "the answer must not fit the response buffer");
    let mut steps = common::bring_up_steps();
    let qistate = steps.iter().position(|(c, _)| *c == "AT+QISTATE?\r").unwrap();
    steps[qistate].1 = format!("\r\n{all}\r\nOK\r\n");
    let tail = steps.split_off(qistate + 1);
    for (c, r) in &steps {
        s.exchange(c, r);
    }
    for id in 0..12 {
        s.exchange(&format!("AT+QISTATE=1,{id}\r"), &format!("\r\n{}\r\nOK\r\n", line(id)));
    }
    for id in 0..12 {
        s.exchange(&format!("AT+QICLOSE={id}\r"), "\r\nOK\r\n");
    }
    for (c, r) in &tail {
        s.exchange(c, r);
    }
    let modem = Bg96::new(s.serial(), TickClock::default(), config());
    let info = modem.bring_up().unwrap();
    s.assert_done();
    assert_eq!(info.stale_sockets_closed, 12);
}

#[test]
fn tcp_connect_send_receive_close() {
    let s = Script::new();
    let modem = up(&s);
    let mut stack = &modem;
    let mut sock = stack.socket().unwrap();
    s.exchange("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",8009,0,0\r", "\r\nOK\r\n");
    let remote = "127.0.0.1:8009".parse().unwrap();
    assert_eq!(stack.connect(&mut sock, remote), Err(nb::Error::WouldBlock));
    assert_eq!(stack.connect(&mut sock, remote), Err(nb::Error::WouldBlock), "repeated connect is fine");
    s.inject("\r\n+QIOPEN: 0,0\r\n");
    assert_eq!(stack.connect(&mut sock, remote), Ok(()));

    s.exchange("AT+QISEND=0,5\r", "\r\n> ").exchange("hello", "\r\nSEND OK\r\n");
    assert_eq!(stack.send(&mut sock, b"hello"), Ok(5));

    // nothing announced: WouldBlock, and nothing is sent to the modem
    let before = s.written().len();
    let mut buf = [0u8; 1500];
    assert_eq!(stack.receive(&mut sock, &mut buf), Err(nb::Error::WouldBlock));
    assert_eq!(s.written().len(), before);

    s.inject("\r\n+QIURC: \"recv\",0\r\n");
    s.exchange("AT+QIRD=0,1500\r", "\r\n+QIRD: 9\r\nOK\r\n> RDY\r\n\r\nOK\r\n");
    assert_eq!(stack.receive(&mut sock, &mut buf), Ok(9));
    assert_eq!(&buf[..9], b"OK\r\n> RDY");
    // the short read drained the modem's buffer: WouldBlock without a command
    assert_eq!(stack.receive(&mut sock, &mut buf), Err(nb::Error::WouldBlock));

    s.exchange("AT+QICLOSE=0\r", "\r\nOK\r\n");
    stack.close(sock).unwrap();
    s.assert_done();
    assert_eq!(modem.sockets_in_use(), 0);
}

#[test]
fn send_is_chunked_to_1460_and_send_fail_is_would_block() {
    let s = Script::new();
    let modem = up(&s);
    let mut stack = &modem;
    let mut sock = stack.socket().unwrap();
    s.exchange("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",80,0,0\r", "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n");
    stack.connect(&mut sock, "127.0.0.1:80".parse().unwrap()).unwrap();
    let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
    s.exchange("AT+QISEND=0,1460\r", "\r\n> ").expect(&data[..1460]).reply(b"\r\nSEND OK\r\n");
    s.exchange("AT+QISEND=0,1460\r", "\r\n> ").expect(&data[1460..2920]).reply(b"\r\nSEND OK\r\n");
    s.exchange("AT+QISEND=0,80\r", "\r\n> ").expect(&data[2920..]).reply(b"\r\nSEND FAIL\r\n");
    assert_eq!(stack.send(&mut sock, &data), Ok(2920), "partial count when the buffer fills");
    s.exchange("AT+QISEND=0,80\r", "\r\n> ").expect(&data[2920..]).reply(b"\r\nSEND FAIL\r\n");
    assert_eq!(stack.send(&mut sock, &data[2920..]), Err(nb::Error::WouldBlock));
    s.assert_done();
}

#[test]
fn peer_close_drains_then_pipe_closed() {
    let s = Script::new();
    let modem = up(&s);
    let mut stack = &modem;
    let mut sock = stack.socket().unwrap();
    s.exchange("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",80,0,0\r", "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n");
    stack.connect(&mut sock, "127.0.0.1:80".parse().unwrap()).unwrap();
    s.inject("\r\n+QIURC: \"recv\",0\r\n\r\n+QIURC: \"closed\",0\r\n");
    let mut buf = [0u8; 4];
    s.exchange("AT+QIRD=0,4\r", "\r\n+QIRD: 4\r\nabcd\r\n\r\nOK\r\n");
    assert_eq!(stack.receive(&mut sock, &mut buf), Ok(4));
    s.exchange("AT+QIRD=0,4\r", "\r\n+QIRD: 2\r\nef\r\n\r\nOK\r\n");
    assert_eq!(stack.receive(&mut sock, &mut buf), Ok(2));
    let err = stack.receive(&mut sock, &mut buf).unwrap_err();
    match err {
        nb::Error::Other(e) => assert_eq!(e.kind(), TcpErrorKind::PipeClosed),
        nb::Error::WouldBlock => panic!("must report the close"),
    }
    assert!(matches!(stack.send(&mut sock, b"x"), Err(nb::Error::Other(Error::Closed))));
    s.exchange("AT+QICLOSE=0\r", "\r\nOK\r\n");
    stack.close(sock).unwrap();
    s.assert_done();
}

#[test]
fn urc_between_qird_lines_is_not_lost() {
    let s = Script::new();
    let modem = up(&s);
    let mut stack = &modem;
    let mut sock = stack.socket().unwrap();
    s.exchange("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",80,0,0\r", "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n");
    stack.connect(&mut sock, "127.0.0.1:80".parse().unwrap()).unwrap();
    s.inject("\r\n+QIURC: \"recv\",0\r\n");
    let mut buf = [0u8; 100];
    // new data arrives while the read drains the buffer: its URC sits inside the answer
    s.exchange("AT+QIRD=0,100\r", "\r\n+QIRD: 3\r\nabc\r\n\r\n+QIURC: \"recv\",0\r\n\r\nOK\r\n");
    assert_eq!(stack.receive(&mut sock, &mut buf), Ok(3));
    s.exchange("AT+QIRD=0,100\r", "\r\n+QIRD: 2\r\nde\r\n\r\nOK\r\n");
    assert_eq!(stack.receive(&mut sock, &mut buf), Ok(2), "the second URC must not be forgotten");
    s.assert_done();
}

#[test]
fn open_failure_is_reported_with_the_manual_code_and_the_id_is_freed() {
    let s = Script::new();
    let modem = up(&s);
    let mut stack = &modem;
    let mut sock = stack.socket().unwrap();
    s.exchange("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",81,0,0\r", "\r\nOK\r\n\r\n+QIOPEN: 0,566\r\n");
    assert_eq!(
        stack.connect(&mut sock, "127.0.0.1:81".parse().unwrap()),
        Err(nb::Error::Other(Error::Modem(ErrorCode::SocketConnectFailed)))
    );
    // the failed id is closed before it is used again (field practice)
    s.exchange("AT+QICLOSE=0\r", "\r\nOK\r\n");
    s.exchange("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",81,0,0\r", "\r\nERROR\r\n");
    s.exchange("AT+QIGETERROR\r", "\r\n+QIGETERROR: 552,invalid parameters\r\n\r\nOK\r\n");
    assert_eq!(
        stack.connect(&mut sock, "127.0.0.1:81".parse().unwrap()),
        Err(nb::Error::Other(Error::Modem(ErrorCode::InvalidParameters)))
    );
    s.assert_done();
    assert_eq!(modem.sockets_in_use(), 0);
}

/// A connect given up before its `+QIOPEN` came: once `AT+QICLOSE` succeeded, the modem has
/// no socket on that connectID whose result could still come, so the next connect uses it
/// again and takes the next `+QIOPEN` for it as its own.
#[test]
fn a_connect_closed_while_opening_frees_its_connect_id_at_once() {
    let s = Script::new();
    let modem = up(&s);
    let mut stack = &modem;
    let remote = "127.0.0.1:8009".parse().unwrap();
    let mut first = stack.socket().unwrap();
    s.exchange("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",8009,0,0\r", "\r\nOK\r\n");
    assert_eq!(stack.connect(&mut first, remote), Err(nb::Error::WouldBlock));
    s.exchange("AT+QICLOSE=0\r", "\r\nOK\r\n");
    stack.close(first).unwrap();
    assert_eq!(modem.sockets_in_use(), 0);

    let mut second = stack.socket().unwrap();
    s.exchange("AT+QIOPEN=1,0,\"TCP\",\"127.0.0.1\",8009,0,0\r", "\r\nOK\r\n");
    assert_eq!(stack.connect(&mut second, remote), Err(nb::Error::WouldBlock));
    s.inject("\r\n+QIOPEN: 0,0\r\n");
    assert_eq!(stack.connect(&mut second, remote), Ok(()));
    s.exchange("AT+QICLOSE=0\r", "\r\nOK\r\n");
    stack.close(second).unwrap();
    s.assert_done();
}

#[test]
fn thirteenth_socket_is_a_clear_error() {
    let s = Script::new();
    let modem = up(&s);
    let mut stack = &modem;
    let socks: Vec<_> = (0..12).map(|_| TcpClientStack::socket(&mut stack).unwrap()).collect();
    assert_eq!(TcpClientStack::socket(&mut stack).unwrap_err(), Error::NoFreeSocket);
    for sock in socks {
        stack.close(sock).unwrap();
    }
    assert!(TcpClientStack::socket(&mut stack).is_ok());
}

#[test]
fn udp_connect_send_receive() {
    let s = Script::new();
    let modem = up(&s);
    let mut stack = &modem;
    let mut sock = embedded_nal::UdpClientStack::socket(&mut stack).unwrap();
    s.exchange("AT+QIOPEN=1,0,\"UDP\",\"127.0.0.1\",5353,0,0\r", "\r\nOK\r\n");
    s.reply(b"\r\n+QIOPEN: 0,0\r\n");
    embedded_nal::UdpClientStack::connect(&mut stack, &mut sock, "127.0.0.1:5353".parse().unwrap()).unwrap();
    s.exchange("AT+QISEND=0,3\r", "\r\n> ").exchange("abc", "\r\nSEND OK\r\n");
    embedded_nal::UdpClientStack::send(&mut stack, &mut sock, b"abc").unwrap();
    assert!(matches!(
        embedded_nal::UdpClientStack::send(&mut stack, &mut sock, &[0u8; 1461]),
        Err(nb::Error::Other(Error::InvalidArgument))
    ));
    s.inject("\r\n+QIURC: \"recv\",0\r\n");
    let mut buf = [0u8; 1500];
    s.exchange("AT+QIRD=0,1500\r", "\r\n+QIRD: 3\r\nxyz\r\n\r\nOK\r\n");
    let (n, from) = embedded_nal::UdpClientStack::receive(&mut stack, &mut sock, &mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"xyz"[..], "127.0.0.1:5353".parse().unwrap()));
    // a datagram socket may hold more datagrams: read until the modem says 0
    s.exchange("AT+QIRD=0,1500\r", "\r\n+QIRD: 0\r\n\r\nOK\r\n");
    assert_eq!(embedded_nal::UdpClientStack::receive(&mut stack, &mut sock, &mut buf), Err(nb::Error::WouldBlock));
    assert_eq!(embedded_nal::UdpClientStack::receive(&mut stack, &mut sock, &mut buf), Err(nb::Error::WouldBlock));
    s.exchange("AT+QICLOSE=0\r", "\r\nOK\r\n");
    embedded_nal::UdpClientStack::close(&mut stack, sock).unwrap();
    s.assert_done();
}

#[test]
fn dns_is_non_blocking_and_honours_addr_type() {
    let s = Script::new();
    let modem = up(&s);
    let mut stack = &modem;
    s.exchange("AT+QIDNSGIP=1,\"broker.local\"\r", "\r\nOK\r\n");
    assert_eq!(stack.get_host_by_name("broker.local", embedded_nal::AddrType::Either), Err(nb::Error::WouldBlock));
    s.inject("\r\n+QIURC: \"dnsgip\",0,2,600\r\n\r\n+QIURC: \"dnsgip\",\"2001:DB8:0:0:0:0:0:1\"\r\n");
    s.inject("\r\n+QIURC: \"dnsgip\",\"192.0.2.7\"\r\n");
    assert_eq!(
        stack.get_host_by_name("broker.local", embedded_nal::AddrType::Either),
        Ok("192.0.2.7".parse().unwrap())
    );
    s.exchange(
        "AT+QIDNSGIP=1,\"v6.local\"\r",
        "\r\nOK\r\n\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"192.0.2.8\"\r\n",
    );
    assert_eq!(
        stack.get_host_by_name("v6.local", embedded_nal::AddrType::IPv6),
        Err(nb::Error::Other(Error::NotFound))
    );
    s.exchange("AT+QIDNSGIP=1,\"nx.local\"\r", "\r\nOK\r\n\r\n+QIURC: \"dnsgip\",565\r\n");
    assert_eq!(
        stack.get_host_by_name("nx.local", embedded_nal::AddrType::IPv4),
        Err(nb::Error::Other(Error::Modem(ErrorCode::DnsParseFailed)))
    );
    assert_eq!(stack.get_host_by_name("10.1.2.3", embedded_nal::AddrType::IPv4), Ok("10.1.2.3".parse().unwrap()));
    let mut out = [0u8; 64];
    assert_eq!(
        stack.get_host_by_address("10.1.2.3".parse().unwrap(), &mut out),
        Err(nb::Error::Other(Error::NotSupported))
    );
    s.assert_done();
}

#[test]
fn a_lookup_of_another_name_waits_for_the_running_query_but_not_forever() {
    let s = Script::new();
    let modem = up(&s);
    let mut stack = &modem;
    s.exchange("AT+QIDNSGIP=1,\"first.local\"\r", "\r\nOK\r\n");
    assert_eq!(stack.get_host_by_name("first.local", embedded_nal::AddrType::Either), Err(nb::Error::WouldBlock));
    // the modem never answers the first query: the next name waits out its 60 s, then goes ahead
    s.exchange(
        "AT+QIDNSGIP=1,\"second.local\"\r",
        "\r\nOK\r\n\r\n+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"192.0.2.9\"\r\n",
    );
    let mut polls = 0u32;
    let ip = loop {
        match stack.get_host_by_name("second.local", embedded_nal::AddrType::Either) {
            Err(nb::Error::WouldBlock) => {
                polls += 1;
                assert!(polls < 500_000, "the lookup never went ahead");
            }
            other => break other,
        }
    };
    assert_eq!(ip, Ok("192.0.2.9".parse().unwrap()));
    // the test clock advances 1 ms per reading: the first query had its time
    assert!(polls > 5_000, "went ahead after {polls} polls");
    s.assert_done();
}

#[test]
fn bad_arguments_never_reach_the_modem() {
    let s = Script::new();
    let modem = up(&s);
    let mut stack = &modem;
    let mut sock = stack.socket().unwrap();
    assert!(matches!(
        stack.connect(&mut sock, "127.0.0.1:0".parse().unwrap()),
        Err(nb::Error::Other(Error::InvalidArgument))
    ));
    assert!(matches!(
        stack.get_host_by_name("bad\"name", embedded_nal::AddrType::IPv4),
        Err(nb::Error::Other(Error::InvalidArgument))
    ));
    s.assert_done();
    assert_eq!(modem.sockets_in_use(), 0);
}

#[test]
fn tcp_listener_accept_and_close_keeps_accepted_connections() {
    use embedded_nal::TcpFullStack;
    let s = Script::new();
    let modem = up(&s);
    let mut stack = &modem;
    let mut listener = stack.socket().unwrap();
    assert_eq!(stack.bind(&mut listener, 0), Err(Error::InvalidArgument));
    stack.bind(&mut listener, 2020).unwrap();
    s.exchange("AT+QIOPEN=1,0,\"TCP LISTENER\",\"127.0.0.1\",0,2020,0\r", "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n");
    stack.listen(&mut listener).unwrap();
    assert!(matches!(stack.accept(&mut listener), Err(nb::Error::WouldBlock)));
    s.inject("\r\n+QIURC: \"incoming\",11,0,\"172.31.242.222\",54091\r\n");
    s.inject("\r\n+QIURC: \"incoming\",10,0,\"172.31.242.223\",54092\r\n\r\n+QIURC: \"recv\",11\r\n");
    let (mut conn, from) = stack.accept(&mut listener).unwrap();
    assert_eq!(from, "172.31.242.223:54092".parse().unwrap());
    let (mut conn11, from11) = stack.accept(&mut listener).unwrap();
    assert_eq!(from11, "172.31.242.222:54091".parse().unwrap());
    let mut buf = [0u8; 64];
    s.exchange("AT+QIRD=11,64\r", "\r\n+QIRD: 4\r\ntest\r\n\r\nOK\r\n");
    assert_eq!(stack.receive(&mut conn11, &mut buf), Ok(4));
    s.exchange("AT+QISEND=10,2\r", "\r\n> ").exchange("hi", "\r\nSEND OK\r\n");
    assert_eq!(stack.send(&mut conn, b"hi"), Ok(2));
    // one more client that nobody accepts, then the listener closes: only that one goes with it
    s.inject("\r\n+QIURC: \"incoming\",9,0,\"172.31.242.224\",54093\r\n");
    modem.poll().unwrap();
    s.exchange("AT+QICLOSE=0\r", "\r\nOK\r\n").exchange("AT+QICLOSE=9\r", "\r\nOK\r\n");
    stack.close(listener).unwrap();
    s.exchange("AT+QISEND=10,2\r", "\r\n> ").exchange("ok", "\r\nSEND OK\r\n");
    assert_eq!(stack.send(&mut conn, b"ok"), Ok(2), "accepted connections outlive their listener");
    s.exchange("AT+QICLOSE=10\r", "\r\nOK\r\n").exchange("AT+QICLOSE=11\r", "\r\nOK\r\n");
    stack.close(conn).unwrap();
    stack.close(conn11).unwrap();
    s.inject("\r\n+QIURC: \"incoming full\"\r\n");
    modem.poll().unwrap();
    assert_eq!(modem.stats().incoming_full, 1);
    s.assert_done();
    assert_eq!(modem.sockets_in_use(), 0);
}

#[test]
fn udp_service_send_to_and_receive_with_senders() {
    use embedded_nal::UdpFullStack;
    let s = Script::new();
    let modem = up(&s);
    let mut stack = &modem;
    let mut sock = embedded_nal::UdpClientStack::socket(&mut stack).unwrap();
    s.exchange("AT+QIOPEN=1,0,\"UDP SERVICE\",\"127.0.0.1\",0,3030,0\r", "\r\nOK\r\n\r\n+QIOPEN: 0,0\r\n");
    UdpFullStack::bind(&mut stack, &mut sock, 3030).unwrap();
    let peer = "10.7.89.10:6969".parse().unwrap();
    s.exchange("AT+QISEND=0,10,\"10.7.89.10\",6969\r", "\r\n> ").exchange("1234567890", "\r\nSEND OK\r\n");
    stack.send_to(&mut sock, peer, b"1234567890").unwrap();
    assert!(matches!(stack.send_to(&mut sock, peer, b""), Err(nb::Error::Other(Error::InvalidArgument))));
    s.inject("\r\n+QIURC: \"recv\",0\r\n");
    let mut buf = [0u8; 8];
    s.exchange("AT+QIRD=0\r", "\r\n+QIRD: 4,\"10.7.76.34\",7687\r\nAAAA\r\n\r\nOK\r\n");
    let (n, from) = embedded_nal::UdpClientStack::receive(&mut stack, &mut sock, &mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"AAAA"[..], "10.7.76.34:7687".parse().unwrap()));
    // a zero-length datagram is a datagram
    s.exchange("AT+QIRD=0\r", "\r\n+QIRD: 0,\"10.7.76.35\",7688\r\n\r\n\r\nOK\r\n");
    let (n, from) = embedded_nal::UdpClientStack::receive(&mut stack, &mut sock, &mut buf).unwrap();
    assert_eq!((n, from), (0, "10.7.76.35:7688".parse().unwrap()));
    // too big for the buffer: reported, not silently cut
    s.exchange("AT+QIRD=0\r", "\r\n+QIRD: 10,\"10.7.76.34\",7687\r\n0123456789\r\n\r\nOK\r\n");
    assert_eq!(
        embedded_nal::UdpClientStack::receive(&mut stack, &mut sock, &mut buf),
        Err(nb::Error::Other(Error::Truncated { len: 10 }))
    );
    s.exchange("AT+QIRD=0\r", "\r\n+QIRD: 0\r\n\r\nOK\r\n");
    assert_eq!(embedded_nal::UdpClientStack::receive(&mut stack, &mut sock, &mut buf), Err(nb::Error::WouldBlock));
    s.exchange("AT+QICLOSE=0\r", "\r\nOK\r\n");
    embedded_nal::UdpClientStack::close(&mut stack, sock).unwrap();
    s.assert_done();
}

/// A serial port whose writes fail while `broken` is set; counts the failed writes.
struct FlakySerial {
    inner: common::MockSerial,
    broken: std::rc::Rc<std::cell::Cell<bool>>,
    failed_writes: std::rc::Rc<std::cell::Cell<usize>>,
}

impl embedded_io::ErrorType for FlakySerial {
    type Error = common::MockError;
}
impl embedded_io::Read for FlakySerial {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, common::MockError> {
        self.inner.read(buf)
    }
}
impl embedded_io::ReadReady for FlakySerial {
    fn read_ready(&mut self) -> Result<bool, common::MockError> {
        self.inner.read_ready()
    }
}
impl embedded_io::Write for FlakySerial {
    fn write(&mut self, buf: &[u8]) -> Result<usize, common::MockError> {
        if self.broken.get() {
            self.failed_writes.set(self.failed_writes.get() + 1);
            return Err(common::MockError);
        }
        self.inner.write(buf)
    }
    fn flush(&mut self) -> Result<(), common::MockError> {
        self.inner.flush()
    }
}

#[test]
fn a_serial_write_error_ends_the_line_and_the_stack_stays_usable() {
    let s = Script::new();
    bring_up_script(&s);
    let broken = std::rc::Rc::new(std::cell::Cell::new(false));
    let failed_writes = std::rc::Rc::new(std::cell::Cell::new(0));
    let serial = FlakySerial { inner: s.serial(), broken: broken.clone(), failed_writes: failed_writes.clone() };
    let modem = Bg96::new(serial, TickClock::default(), config());
    modem.bring_up().unwrap();
    s.assert_done();

    // the line (36 bytes) is longer than one piece the stack writes (32): the first failed
    // write ends it, nothing after it is tried, and the error is the serial port's
    broken.set(true);
    let dns = |a: &str| a.parse().unwrap();
    let r = modem.set_dns_servers(dns("8.8.8.8"), Some(dns("8.8.4.4")));
    assert_eq!(r, Err(Error::Serial(embedded_io::ErrorKind::Other)));
    assert_eq!(failed_writes.get(), 1);

    // the port works again: so does the stack, with the whole line
    broken.set(false);
    s.exchange("AT+QIDNSCFG=1,\"8.8.8.8\",\"8.8.4.4\"\r", "\r\nOK\r\n");
    modem.set_dns_servers(dns("8.8.8.8"), Some(dns("8.8.4.4"))).unwrap();
    s.assert_done();
}
