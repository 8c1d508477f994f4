//! Every command of the manual, reached through the stack's methods, against the simulator.

mod common;

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use bg96_sim::SimConfig;
use common::{config, sent_commands, sim_modem};
use embedded_nal::TcpClientStack;
use quectel_bg96::commands::{
    CclkRead, ContextType, QicfgName, QicfgQuery, QicfgSetting, QicfgValue, QicsgpQuery, Qistate, SocketState,
};
use quectel_bg96::{Error, ErrorCode};

#[test]
fn contexts_configure_activate_deactivate_and_query() {
    let (_sim, modem) = sim_modem(SimConfig::default(), config());
    let cfg = modem.command(&QicsgpQuery { context_id: 1 }).unwrap();
    assert_eq!((cfg.apn.as_str(), cfg.context_type), ("internet", ContextType::Ipv4));
    let active = modem.contexts().unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].ip, Some("127.0.0.1".parse().unwrap()));
    modem.deactivate_context(1).unwrap();
    assert!(modem.contexts().unwrap().is_empty());
    assert_eq!(modem.activate_context(1).unwrap(), Some("127.0.0.1".parse().unwrap()));
    assert_eq!(modem.contexts().unwrap().len(), 1);
    // a second context: the manual allows three active at once
    modem
        .command(&quectel_bg96::commands::Qicsgp {
            context_id: 2,
            context_type: ContextType::Ipv4,
            apn: "other",
            username: "user",
            password: "secret",
            authentication: quectel_bg96::commands::Authentication::Chap,
        })
        .unwrap();
    modem.activate_context(2).unwrap();
    assert_eq!(modem.contexts().unwrap().len(), 2);
    modem.deactivate_context(2).unwrap();
}

#[test]
fn socket_states_all_per_context_and_per_socket() {
    let (_sim, modem) = sim_modem(SimConfig::default(), config());
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut stack = &modem;
    let mut sock = stack.socket().unwrap();
    nb::block!(stack.connect(&mut sock, peer.local_addr().unwrap())).unwrap();
    let all = modem.command(&Qistate::All).unwrap();
    let ctx = modem.command(&Qistate::Context(1)).unwrap();
    let one = modem.socket_status(&sock).unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all, ctx);
    assert_eq!(all[0], one);
    assert_eq!(one.state, SocketState::Connected);
    assert_eq!(one.remote_port, peer.local_addr().unwrap().port());
    stack.close(sock).unwrap();
    assert!(modem.command(&Qistate::All).unwrap().is_empty(), "empty listing is a bare OK");
}

#[test]
fn last_error_reports_the_manual_code() {
    let (sim, modem) = sim_modem(SimConfig::default(), config());
    sim.fail_next("AT+QIDNSCFG", 1, 552);
    assert_eq!(
        modem.set_dns_servers("8.8.8.8".parse().unwrap(), None),
        Err(Error::Modem(ErrorCode::InvalidParameters))
    );
    let e = modem.last_error().unwrap();
    assert_eq!((e.code, e.error_code()), (552, Some(ErrorCode::InvalidParameters)));
    assert!(e.description.as_str().eq_ignore_ascii_case("invalid parameters"), "{:?}", e.description);
}

#[test]
fn ping_reports_every_reply_and_the_summary() {
    let (_sim, modem) = sim_modem(SimConfig::default(), config());
    let p = modem.ping("localhost", Some(1), Some(3)).unwrap();
    assert_eq!(p.replies.len(), 3);
    for r in &p.replies {
        let r = r.as_ref().unwrap();
        assert_eq!(r.ip, "127.0.0.1".parse::<std::net::IpAddr>().unwrap());
        assert_eq!(r.bytes, 32);
    }
    assert_eq!((p.summary.sent, p.summary.received, p.summary.lost), (3, 3, 0));
    assert!(p.summary.min_ms <= p.summary.avg_ms && p.summary.avg_ms <= p.summary.max_ms);
    assert_eq!(modem.ping("nowhere.invalid", None, None).err(), Some(Error::Modem(ErrorCode::DnsParseFailed)));
    assert!(matches!(modem.ping("localhost", Some(1), Some(11)), Err(Error::InvalidArgument)));
}

#[test]
fn ping_of_an_unreachable_address_times_out_request_by_request() {
    let (_sim, modem) = sim_modem(SimConfig::default(), config());
    // 192.0.2.1 (TEST-NET-1) is not in the simulator's table: every request times out
    assert_eq!(modem.ping("192.0.2.1", Some(1), Some(2)).err(), Some(Error::Modem(ErrorCode::OperationTimeout)));
    // and the next ping works
    assert!(modem.ping("127.0.0.1", Some(1), Some(1)).is_ok());
}

/// A one-shot SNTP server on loopback answering with a fixed time.
fn sntp_server(unix_seconds: u64) -> (u16, std::thread::JoinHandle<()>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = sock.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut req = [0u8; 48];
        if let Ok((_, from)) = sock.recv_from(&mut req) {
            let mut resp = [0u8; 48];
            resp[0] = 0x24; // LI 0, version 4, mode 4 (server)
            resp[1] = 1; // stratum
            resp[24..32].copy_from_slice(&req[40..48]); // originate = client's transmit
            let ntp = unix_seconds + 2_208_988_800;
            for off in [32, 40] {
                resp[off..off + 4].copy_from_slice(&(ntp as u32).to_be_bytes());
            }
            sock.send_to(&resp, from).unwrap();
        }
    });
    (port, h)
}

#[test]
fn ntp_synchronises_and_sets_the_clock() {
    let (_sim, modem) = sim_modem(SimConfig::default(), config());
    // 2024-03-05 06:07:08 UTC
    let (port, server) = sntp_server(1_709_618_828);
    let t = modem.sync_time("127.0.0.1", Some(port), true).unwrap();
    server.join().unwrap();
    assert_eq!((t.year, t.month, t.day, t.hour, t.minute, t.second), (2024, 3, 5, 6, 7, 8));
    let cclk = modem.command(&CclkRead).unwrap();
    assert!(cclk.0.starts_with("24/03/05,06:07"), "auto-set clock: {}", cclk.0.as_str());
    // no server answers: the manual's timeout code
    let dead = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    assert_eq!(modem.sync_time("127.0.0.1", Some(dead), false).err(), Some(Error::Modem(ErrorCode::OperationTimeout)));
}

#[test]
fn dns_servers_get_and_set() {
    let (_sim, modem) = sim_modem(SimConfig::default(), config());
    let before = modem.dns_servers().unwrap();
    assert!(before.primary.is_some());
    modem.set_dns_servers("8.8.8.8".parse().unwrap(), Some("1.1.1.1".parse().unwrap())).unwrap();
    let after = modem.dns_servers().unwrap();
    assert_eq!(after.primary, Some("8.8.8.8".parse().unwrap()));
    assert_eq!(after.secondary, Some("1.1.1.1".parse().unwrap()));
}

#[test]
fn every_qicfg_option_set_and_read_back() {
    let (_sim, modem) = sim_modem(SimConfig::default(), config());
    let cases = [
        (QicfgSetting::TransPktSize(512), QicfgName::TransPktSize, QicfgValue::TransPktSize(512)),
        (QicfgSetting::TransWaitTm(5), QicfgName::TransWaitTm, QicfgValue::TransWaitTm(5)),
        (
            QicfgSetting::DataFormat { send_hex: false, recv_hex: false },
            QicfgName::DataFormat,
            QicfgValue::DataFormat { send_hex: false, recv_hex: false },
        ),
        (QicfgSetting::ViewMode(0), QicfgName::ViewMode, QicfgValue::ViewMode(0)),
        (QicfgSetting::RecvInd(false), QicfgName::RecvInd, QicfgValue::RecvInd(false)),
        (
            QicfgSetting::TcpRetransCfg { max_backoffs: 10, max_rto: 300 },
            QicfgName::TcpRetransCfg,
            QicfgValue::TcpRetransCfg { max_backoffs: 10, max_rto: 300 },
        ),
    ];
    for (set, name, want) in cases {
        modem.configure(set).unwrap();
        assert_eq!(modem.command(&QicfgQuery(name)).unwrap(), want, "{name:?}");
    }
    modem.configure(QicfgSetting::Prefix { prefix: "64:FF9B::", length: 96 }).unwrap();
    match modem.command(&QicfgQuery(QicfgName::Prefix)).unwrap() {
        QicfgValue::Prefix(Some((p, 96))) => assert!(p.eq_ignore_ascii_case("64:FF9B::"), "{p}"),
        other => panic!("{other:?}"),
    }
    // settings that would change the framing the stack reads are refused, nothing is sent
    let n = modem.stats().urcs;
    assert_eq!(modem.configure(QicfgSetting::DataFormat { send_hex: true, recv_hex: false }), Err(Error::NotSupported));
    assert_eq!(modem.configure(QicfgSetting::ViewMode(1)), Err(Error::NotSupported));
    assert_eq!(modem.configure(QicfgSetting::TransPktSize(0)), Err(Error::InvalidArgument));
    assert_eq!(modem.stats().urcs, n);
}

#[test]
fn payload_echo_hex_send_and_the_counters() {
    let (sim, modem) = sim_modem(SimConfig::default(), config());
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut stack = &modem;
    let mut sock = stack.socket().unwrap();
    nb::block!(stack.connect(&mut sock, peer.local_addr().unwrap())).unwrap();
    let (mut conn, _) = peer.accept().unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    // with payload echo on, the echoed bytes are skipped, not taken for modem output
    modem.set_payload_echo(true).unwrap();
    assert_eq!(stack.send(&mut sock, b"\r\nSEND FAIL\r\nOK\r\n"), Ok(17));
    modem.set_payload_echo(false).unwrap();
    assert!(sent_commands(&sim).contains(&"AT+QISDE=1".to_string()));
    nb::block!(modem.send_hex(&sock, &[0x00, 0xff, b'\r', b'\n'])).unwrap();
    let mut got = [0u8; 21];
    conn.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"\r\nSEND FAIL\r\nOK\r\n\x00\xff\r\n");
    assert!(sent_commands(&sim).contains(&"AT+QISENDEX=0,\"00FF0D0A\"".to_string()));
    let sc = modem.send_counters(&sock).unwrap();
    assert_eq!((sc.total, sc.acked, sc.unacked), (21, 21, 0));
    std::io::Write::write_all(&mut conn, b"12345").unwrap();
    let t0 = Instant::now();
    while modem.read_counters(&sock).unwrap().total < 5 {
        assert!(t0.elapsed() < Duration::from_secs(5));
    }
    let rc = modem.read_counters(&sock).unwrap();
    assert_eq!((rc.total, rc.read, rc.unread), (5, 0, 5));
    let mut buf = [0u8; 8];
    assert_eq!(nb::block!(stack.receive(&mut sock, &mut buf)), Ok(5));
    let rc = modem.read_counters(&sock).unwrap();
    assert_eq!((rc.read, rc.unread), (5, 0));
    stack.close(sock).unwrap();
}
