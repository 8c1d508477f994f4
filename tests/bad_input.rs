//! Bad configuration and bad arguments: overlong APN, user, password and host names, `"` and
//! control characters in strings, port 0, unknown context ids (0, 17), payloads over the
//! limits (UDP > 1460, `send_hex` > 256), zero-length payloads where the BG96 cannot send them,
//! out-of-range settings, operations on handles in the wrong state, and stale handles (their
//! socket was lost to a `pdpdeact` or a reboot and the connectID now belongs to another
//! connection).
//!
//! Every case must give a clear typed error (`InvalidArgument`, `InvalidState`, the reason the
//! socket was lost, ...) and send **nothing** to the modem: checked with the simulator's byte
//! counter (`Stats::bytes_to_modem`) before and after, not just the command list. The stale
//! handle cases also check that the connection that reused the connectID is untouched.

mod common;

use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bg96_sim::{SimConfig, Simulator};
use common::{FastClock, PoliteSerial, sent_commands};
use embedded_io_async::{Read as _, Write as _};
use embedded_nal::{TcpClientStack, TcpFullStack, UdpClientStack, UdpFullStack};
use quectel_bg96::Error;
use quectel_bg96::blocking::{Bg96, SocketHandle, TcpSocket};
use quectel_bg96::commands::{Authentication, ContextType, QicfgSetting, Qicsgp, QirdQuery, QisendQuery, Qistate};
use quectel_bg96::config::Config;

type Modem = Bg96<PoliteSerial<bg96_sim::HostPort>, FastClock>;

const PATIENCE: Duration = Duration::from_secs(10);

fn config() -> Config {
    let mut c = common::config();
    // no background checks: every byte to the modem must come from the call under test
    c.recovery.ack_supervision = false;
    c
}

fn blocking() -> (Simulator, Modem) {
    let (sim, port) = Simulator::spawn(SimConfig::default());
    std::thread::sleep(Duration::from_millis(60));
    let modem = Bg96::new(PoliteSerial(port), FastClock::default(), config());
    modem.bring_up().expect("bring-up");
    (sim, modem)
}

/// Bytes the host sent to the modem so far (after the engine took them).
fn sent_bytes(sim: &Simulator) -> u64 {
    std::thread::sleep(Duration::from_millis(5));
    sim.stats().bytes_to_modem
}

/// `f` fails with `want` and nothing reaches the modem.
#[track_caller]
fn refused<T: Debug>(sim: &Simulator, what: &str, want: Error, f: impl FnOnce() -> Result<T, Error>) {
    let before = sent_bytes(sim);
    let commands = sent_commands(sim).len();
    let got = f();
    assert_eq!(got.as_ref().err(), Some(&want), "{what}: got {got:?}");
    let after = sent_bytes(sim);
    assert_eq!(
        after,
        before,
        "{what}: {} bytes were sent to the modem: {:?}",
        after - before,
        common::commands_since(sim, commands)
    );
}

/// A non-blocking call that must not block.
fn now<T, E>(r: nb::Result<T, E>) -> Result<T, E> {
    match r {
        Ok(v) => Ok(v),
        Err(nb::Error::Other(e)) => Err(e),
        Err(nb::Error::WouldBlock) => panic!("WouldBlock where an immediate answer was due"),
    }
}

fn b_wait<T>(what: &str, mut f: impl FnMut() -> nb::Result<T, Error>) -> Result<T, Error> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(nb::Error::Other(e)) => return Err(e),
            Err(nb::Error::WouldBlock) => {
                assert!(Instant::now() < deadline, "{what}: still WouldBlock");
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

fn b_connect(modem: &Modem, addr: SocketAddr) -> TcpSocket {
    let mut st = modem;
    let mut s = TcpClientStack::socket(&mut st).unwrap();
    b_wait("connect", || TcpClientStack::connect(&mut st, &mut s, addr)).expect("connect");
    s
}

fn b_echo(modem: &Modem, s: &mut TcpSocket, data: &[u8]) {
    let mut st = modem;
    let mut sent = 0;
    while sent < data.len() {
        sent += b_wait("send", || TcpClientStack::send(&mut st, s, &data[sent..])).unwrap();
    }
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    while got.len() < data.len() {
        let n = b_wait("receive", || TcpClientStack::receive(&mut st, s, &mut buf)).unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, data);
}

fn bad_strings() -> Vec<(String, &'static str)> {
    vec![
        ("a\"b".into(), "a quote"),
        ("a\rb".into(), "CR"),
        ("a\nb".into(), "LF"),
        ("a\0b".into(), "NUL"),
        ("a\x1bb".into(), "ESC"),
        ("a\x1ab".into(), "Ctrl-Z"),
        ("\"\r\nAT+CFUN=0\r".into(), "an injected command"),
        ("äpn".into(), "non-ASCII"),
    ]
}

// -------------------------------------------------------------------------------------------
// Configuration

#[test]
fn configuration_is_checked_before_anything_is_built() {
    assert!(Config::new(&"a".repeat(100)).is_ok(), "100 bytes is the manual's limit");
    assert_eq!(Config::new(&"a".repeat(101)).err(), Some(Error::InvalidArgument), "overlong APN");
    for (s, what) in bad_strings() {
        assert_eq!(Config::new(&s).err(), Some(Error::InvalidArgument), "APN with {what}");
        let c = Config::new("internet").unwrap();
        assert_eq!(
            c.clone().with_credentials(&s, "pw", Authentication::Pap).err(),
            Some(Error::InvalidArgument),
            "user with {what}"
        );
        assert_eq!(
            c.with_credentials("user", &s, Authentication::Chap).err(),
            Some(Error::InvalidArgument),
            "password with {what}"
        );
    }
    let c = Config::new("internet").unwrap();
    assert!(c.clone().with_credentials(&"u".repeat(127), &"p".repeat(127), Authentication::PapOrChap).is_ok());
    for (user, pass) in [("u".repeat(128), "p".to_string()), ("u".to_string(), "p".repeat(128))] {
        assert_eq!(
            c.clone().with_credentials(&user, &pass, Authentication::Pap).err(),
            Some(Error::InvalidArgument),
            "overlong credentials ({} / {} bytes)",
            user.len(),
            pass.len()
        );
    }
    for cid in [0u8, 17, 255] {
        assert_eq!(c.clone().with_context(cid, ContextType::Ipv4).err(), Some(Error::InvalidArgument), "context {cid}");
    }
    assert!(c.clone().with_context(16, ContextType::Ipv4v6).is_ok());
}

/// A configuration whose public fields were set directly, bypassing the checks: bring-up
/// stops at the offending command and sends none of it.
#[test]
fn bring_up_refuses_a_bad_configuration_without_sending_it() {
    let mut cases: Vec<(String, Config)> = Vec::new();
    for cid in [0u8, 17] {
        let mut c = config();
        c.context_id = cid;
        cases.push((format!("context {cid}"), c));
    }
    let mut c = config();
    c.apn = heapless::String::try_from("bad\"apn").unwrap();
    cases.push(("APN with a quote".into(), c));
    let mut c = config();
    c.password = heapless::String::try_from("pw\r\nAT+CFUN=0").unwrap();
    cases.push(("password with CR LF".into(), c));
    let mut c = config();
    c.urc_port = "uart1\"\r";
    cases.push(("URC port with a quote".into(), c));
    for (what, c) in cases {
        let (sim, port) = Simulator::spawn(SimConfig::default());
        std::thread::sleep(Duration::from_millis(60));
        let modem = Bg96::new(PoliteSerial(port), FastClock::default(), c);
        assert_eq!(modem.bring_up().err(), Some(Error::InvalidArgument), "{what}");
        let cmds = sent_commands(&sim);
        for forbidden in ["AT+QICSGP", "AT+QIACT=", "AT+QURCCFG"] {
            assert!(
                !cmds.iter().any(|c| c.starts_with(forbidden) && (what.contains("URC") || forbidden != "AT+QURCCFG")),
                "{what}: {forbidden} was sent: {cmds:?}"
            );
        }
        // nothing half-written either: every line sent is a complete, known command
        let to_modem: Vec<u8> = sim
            .wire_log()
            .into_iter()
            .filter(|r| r.direction == bg96_sim::Direction::ToModem)
            .flat_map(|r| r.bytes)
            .collect();
        assert!(to_modem.ends_with(b"\r"), "{what}: a partial command line was left on the wire");
        assert!(!to_modem.windows(4).any(|w| w == b"bad\""), "{what}: the bad string went out");
        assert!(!to_modem.windows(9).any(|w| w == b"AT+CFUN=0"), "{what}: an injected command went out");
    }
}

// -------------------------------------------------------------------------------------------
// Blocking front

#[test]
fn blocking_bad_arguments_send_nothing() {
    let (sim, modem) = blocking();
    let mut st = &modem;
    let echo = common::echo_server();

    // names
    for (name, what) in bad_strings().into_iter().chain([("a".repeat(254), "254 bytes"), (String::new(), "empty")]) {
        refused(&sim, &format!("DNS of a name with {what}"), Error::InvalidArgument, || {
            now(embedded_nal::Dns::get_host_by_name(&mut st, &name, embedded_nal::AddrType::Either))
        });
        refused(&sim, &format!("ping of a name with {what}"), Error::InvalidArgument, || {
            modem.ping(&name, Some(4), Some(1))
        });
        refused(&sim, &format!("NTP server with {what}"), Error::InvalidArgument, || {
            modem.sync_time(&name, None, false)
        });
    }
    // an address in text form needs no modem at all
    let before = sent_bytes(&sim);
    assert_eq!(
        now(embedded_nal::Dns::get_host_by_name(&mut st, "10.1.2.3", embedded_nal::AddrType::Either)),
        Ok(IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)))
    );
    assert_eq!(sent_bytes(&sim), before);

    // ping and NTP ranges
    for (t, c, what) in [
        (Some(0), None, "timeout 0"),
        (Some(4), Some(0), "count 0"),
        (Some(4), Some(11), "count 11"),
        (None, Some(3), "count without timeout"),
    ] {
        refused(&sim, &format!("ping with {what}"), Error::InvalidArgument, || modem.ping("localhost", t, c));
    }
    refused(&sim, "NTP port 0", Error::InvalidArgument, || modem.sync_time("localhost", Some(0), false));

    // contexts
    for cid in [0u8, 17, 255] {
        refused(&sim, &format!("activate context {cid}"), Error::InvalidArgument, || modem.activate_context(cid));
    }
    refused(&sim, "deactivate context 17", Error::InvalidArgument, || modem.deactivate_context(17));
    refused(&sim, "QICSGP through command() with a quote in the APN", Error::InvalidArgument, || {
        modem.command(&Qicsgp {
            context_id: 1,
            context_type: ContextType::Ipv4,
            apn: "a\"b",
            username: "",
            password: "",
            authentication: Authentication::None,
        })
    });
    refused(&sim, "QICSGP through command() with context 17", Error::InvalidArgument, || {
        modem.command(&Qicsgp {
            context_id: 17,
            context_type: ContextType::Ipv4,
            apn: "x",
            username: "",
            password: "",
            authentication: Authentication::None,
        })
    });

    // connectIDs out of range in typed commands
    refused(&sim, "QISTATE of connectID 12", Error::InvalidArgument, || modem.command(&Qistate::Socket(12)));
    refused(&sim, "QISEND query of connectID 12", Error::InvalidArgument, || {
        modem.command(&QisendQuery { connect_id: 12 })
    });
    refused(&sim, "QIRD query of connectID 255", Error::InvalidArgument, || {
        modem.command(&QirdQuery { connect_id: 255 })
    });

    // settings out of range
    for (setting, what) in [
        (QicfgSetting::TransPktSize(0), "transpktsize 0"),
        (QicfgSetting::TransPktSize(1461), "transpktsize 1461"),
        (QicfgSetting::TransWaitTm(21), "transwaittm 21"),
        (QicfgSetting::Prefix { prefix: "64:FF9B::", length: 33 }, "prefix length 33"),
        (QicfgSetting::Prefix { prefix: "64:FF9B::\"", length: 96 }, "prefix with a quote"),
        (QicfgSetting::TcpRetransCfg { max_backoffs: 2, max_rto: 600 }, "2 retransmissions"),
        (QicfgSetting::TcpRetransCfg { max_backoffs: 21, max_rto: 600 }, "21 retransmissions"),
        (QicfgSetting::TcpRetransCfg { max_backoffs: 8, max_rto: 4 }, "rto 4"),
        (QicfgSetting::TcpRetransCfg { max_backoffs: 8, max_rto: 1001 }, "rto 1001"),
    ] {
        refused(&sim, &format!("QICFG {what}"), Error::InvalidArgument, || modem.configure(setting));
    }
    for (setting, what) in [
        (QicfgSetting::ViewMode(1), "view mode 1"),
        (QicfgSetting::DataFormat { send_hex: true, recv_hex: false }, "hex data"),
    ] {
        refused(&sim, &format!("QICFG {what}"), Error::NotSupported, || modem.configure(setting));
    }

    // ports
    let mut t = TcpClientStack::socket(&mut st).unwrap();
    refused(&sim, "TCP connect to port 0", Error::InvalidArgument, || {
        now(TcpClientStack::connect(&mut st, &mut t, SocketAddr::from(([127, 0, 0, 1], 0))))
    });
    refused(&sim, "TCP bind to port 0", Error::InvalidArgument, || TcpFullStack::bind(&mut st, &mut t, 0));
    // handles in the wrong state
    let mut buf = [0u8; 16];
    refused(&sim, "send before connect", Error::InvalidState, || now(TcpClientStack::send(&mut st, &mut t, b"x")));
    refused(&sim, "receive before connect", Error::InvalidState, || {
        now(TcpClientStack::receive(&mut st, &mut t, &mut buf))
    });
    refused(&sim, "listen before bind", Error::InvalidState, || TcpFullStack::listen(&mut st, &mut t));
    refused(&sim, "accept on a socket that does not listen", Error::InvalidState, || {
        now(TcpFullStack::accept(&mut st, &mut t)).map(|_| ())
    });
    refused(&sim, "send_hex before connect", Error::InvalidState, || now(modem.send_hex(&t, b"x")));
    refused(&sim, "send counters before connect", Error::InvalidState, || modem.send_counters(&t));
    refused(&sim, "transparent mode before connect", Error::InvalidState, || modem.enter_transparent(&t).map(|_| ()));
    let small: &'static mut [u8] = Box::leak(vec![0u8; 4096].into_boxed_slice());
    refused(&sim, "direct push before connect", Error::InvalidState, || modem.enable_direct_push(&t, small));
    TcpClientStack::close(&mut st, t).unwrap();

    let mut u = UdpClientStack::socket(&mut st).unwrap();
    refused(&sim, "UDP connect to port 0", Error::InvalidArgument, || {
        UdpClientStack::connect(&mut st, &mut u, SocketAddr::from(([127, 0, 0, 1], 0)))
    });
    refused(&sim, "UDP bind to port 0", Error::InvalidArgument, || UdpFullStack::bind(&mut st, &mut u, 0));
    refused(&sim, "UDP send before connect", Error::InvalidState, || now(UdpClientStack::send(&mut st, &mut u, b"x")));
    UdpClientStack::close(&mut st, u).unwrap();

    // payload limits on open sockets
    let mut tcp = b_connect(&modem, echo);
    let short: &'static mut [u8] = Box::leak(vec![0u8; 4095].into_boxed_slice());
    refused(&sim, "direct push with a 4095-byte buffer", Error::InvalidArgument, || {
        modem.enable_direct_push(&tcp, short)
    });
    refused(&sim, "send_hex of 257 bytes", Error::InvalidArgument, || now(modem.send_hex(&tcp, &[0x55; 257])));
    refused(&sim, "send_hex of nothing", Error::InvalidArgument, || now(modem.send_hex(&tcp, &[])));
    let before = sent_bytes(&sim);
    assert_eq!(now(TcpClientStack::send(&mut st, &mut tcp, &[])), Ok(0), "an empty TCP send sends nothing");
    assert_eq!(sent_bytes(&sim), before, "an empty TCP send sent something");
    b_echo(&modem, &mut tcp, b"still fine");
    TcpClientStack::close(&mut st, tcp).unwrap();

    let mut udp = UdpClientStack::socket(&mut st).unwrap();
    UdpClientStack::connect(&mut st, &mut udp, common::udp_echo_server()).unwrap();
    refused(&sim, "UDP datagram of 1461 bytes", Error::InvalidArgument, || {
        now(UdpClientStack::send(&mut st, &mut udp, &[1u8; 1461]))
    });
    refused(&sim, "empty UDP datagram", Error::InvalidArgument, || now(UdpClientStack::send(&mut st, &mut udp, &[])));
    UdpClientStack::close(&mut st, udp).unwrap();

    let mut service = UdpClientStack::socket(&mut st).unwrap();
    UdpFullStack::bind(&mut st, &mut service, common::unused_udp_port()).unwrap();
    let to = SocketAddr::from(([127, 0, 0, 1], 9));
    refused(&sim, "send_to of 1461 bytes", Error::InvalidArgument, || {
        now(UdpFullStack::send_to(&mut st, &mut service, to, &[1u8; 1461]))
    });
    refused(&sim, "empty send_to", Error::InvalidArgument, || {
        now(UdpFullStack::send_to(&mut st, &mut service, to, &[]))
    });
    refused(&sim, "send_to port 0", Error::InvalidArgument, || {
        now(UdpFullStack::send_to(&mut st, &mut service, SocketAddr::from(([127, 0, 0, 1], 0)), b"x"))
    });
    UdpClientStack::close(&mut st, service).unwrap();

    // a thirteenth handle
    let socks: Vec<TcpSocket> = (0..12).map(|_| TcpClientStack::socket(&mut st).unwrap()).collect();
    refused(&sim, "a 13th socket", Error::NoFreeSocket, || TcpClientStack::socket(&mut st));
    for s in socks {
        TcpClientStack::close(&mut st, s).unwrap();
    }
    assert_eq!(sim.open_sockets(), vec![]);
}

/// A handle whose socket was lost (`pdpdeact`, reboot) while its connectID went to a new
/// connection: every use of the old handle fails with the reason and sends nothing, closing it
/// does not close the new connection.
#[test]
fn blocking_stale_handles_do_not_touch_the_connection_that_reused_the_id() {
    let echo = common::echo_server();
    for fault in ["pdpdeact", "reboot"] {
        let (sim, modem) = blocking();
        let mut st = &modem;
        let mut old = b_connect(&modem, echo);
        let id = old.connect_id().unwrap();
        let reason = if fault == "pdpdeact" {
            sim.pdp_deactivate(1);
            Error::ContextDeactivated(1)
        } else {
            sim.reboot();
            Error::Rebooted
        };
        let mut buf = [0u8; 16];
        assert_eq!(b_wait("receive", || TcpClientStack::receive(&mut st, &mut old, &mut buf)), Err(reason), "{fault}");
        // the stack comes back and a new connection takes the same connectID
        let mut new = b_connect(&modem, echo);
        assert_eq!(new.connect_id(), Some(id), "{fault}: the test needs the id reused");
        refused(&sim, &format!("{fault}: send on the stale handle"), reason, || {
            now(TcpClientStack::send(&mut st, &mut old, b"must not reach the new connection"))
        });
        refused(&sim, &format!("{fault}: receive on the stale handle"), reason, || {
            now(TcpClientStack::receive(&mut st, &mut old, &mut buf))
        });
        refused(&sim, &format!("{fault}: send_hex on the stale handle"), reason, || now(modem.send_hex(&old, b"x")));
        refused(&sim, &format!("{fault}: counters of the stale handle"), reason, || modem.send_counters(&old));
        refused(&sim, &format!("{fault}: status of the stale handle"), reason, || modem.socket_status(&old));
        refused(&sim, &format!("{fault}: transparent mode on the stale handle"), reason, || {
            modem.enter_transparent(&old).map(|_| ())
        });
        let before = sent_bytes(&sim);
        TcpClientStack::close(&mut st, old).unwrap();
        assert_eq!(sent_bytes(&sim), before, "{fault}: closing the stale handle sent something");
        assert!(sim.open_sockets().iter().any(|s| s.connect_id == id), "{fault}: the new connection was closed");
        b_echo(&modem, &mut new, b"the new connection is intact");
        TcpClientStack::close(&mut st, new).unwrap();
        assert_eq!(sim.open_sockets(), vec![]);
    }
}

// -------------------------------------------------------------------------------------------
// Async front

fn run<F: std::future::Future<Output = ()>>(f: F) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, async {
        tokio::time::timeout(PATIENCE * 3, f).await.expect("test timed out");
    });
}

async fn asynch() -> (Simulator, &'static common::FastStack) {
    let (sim, stack) = common::sim_stack_fast(SimConfig::default(), config(), FastClock::default(), false).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    stack.bring_up().await.expect("bring-up");
    (sim, Box::leak(Box::new(stack)))
}

/// Async variant of [`refused`].
async fn a_refused<T: Debug>(
    sim: &Simulator,
    what: &str,
    want: Error,
    f: impl std::future::Future<Output = Result<T, Error>>,
) {
    tokio::time::sleep(Duration::from_millis(5)).await;
    let before = sim.stats().bytes_to_modem;
    let got = f.await;
    assert_eq!(got.as_ref().err(), Some(&want), "{what}: got {got:?}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let after = sim.stats().bytes_to_modem;
    assert_eq!(after, before, "{what}: {} bytes were sent to the modem", after - before);
}

#[test]
fn async_bad_arguments_send_nothing() {
    use embedded_nal_async::{ConnectedUdp, Dns, TcpConnect, UdpStack, UnconnectedUdp};
    run(async {
        let (sim, stack) = asynch().await;
        let echo = common::echo_server();
        for (name, what) in bad_strings().into_iter().chain([("a".repeat(254), "254 bytes"), (String::new(), "empty")])
        {
            a_refused(&sim, &format!("DNS of a name with {what}"), Error::InvalidArgument, async {
                stack.get_host_by_name(&name, embedded_nal_async::AddrType::Either).await
            })
            .await;
            a_refused(
                &sim,
                &format!("ping of a name with {what}"),
                Error::InvalidArgument,
                stack.ping(&name, Some(4), Some(1)),
            )
            .await;
            a_refused(
                &sim,
                &format!("NTP server with {what}"),
                Error::InvalidArgument,
                stack.sync_time(&name, None, false),
            )
            .await;
        }
        for cid in [0u8, 17] {
            a_refused(&sim, &format!("activate context {cid}"), Error::InvalidArgument, stack.activate_context(cid))
                .await;
        }
        a_refused(&sim, "deactivate context 17", Error::InvalidArgument, stack.deactivate_context(17)).await;
        a_refused(&sim, "QISTATE of connectID 12", Error::InvalidArgument, stack.command(&Qistate::Socket(12))).await;
        a_refused(&sim, "QICFG transpktsize 0", Error::InvalidArgument, stack.configure(QicfgSetting::TransPktSize(0)))
            .await;
        a_refused(&sim, "QICFG view mode 1", Error::NotSupported, stack.configure(QicfgSetting::ViewMode(1))).await;

        let zero = SocketAddr::from(([127, 0, 0, 1], 0));
        a_refused(&sim, "TCP connect to port 0", Error::InvalidArgument, async {
            TcpConnect::connect(stack, zero).await.map(drop)
        })
        .await;
        a_refused(&sim, "UDP connect to port 0", Error::InvalidArgument, async {
            UdpStack::connect(stack, zero).await.map(drop)
        })
        .await;
        a_refused(&sim, "UDP bind to another address than the modem's", Error::InvalidArgument, async {
            stack.bind_single(SocketAddr::from(([10, 9, 8, 7], 5000))).await.map(drop)
        })
        .await;

        let mut conn = TcpConnect::connect(stack, echo).await.unwrap();
        a_refused(&sim, "send_hex of 257 bytes", Error::InvalidArgument, conn.send_hex(&[0x55; 257])).await;
        a_refused(&sim, "send_hex of nothing", Error::InvalidArgument, conn.send_hex(&[])).await;
        let short: &'static mut [u8] = Box::leak(vec![0u8; 4095].into_boxed_slice());
        a_refused(&sim, "direct push with a 4095-byte buffer", Error::InvalidArgument, conn.enable_direct_push(short))
            .await;
        let before = sim.stats().bytes_to_modem;
        assert_eq!(conn.write(&[]).await, Ok(0), "an empty write");
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert_eq!(sim.stats().bytes_to_modem, before, "an empty write sent something");
        conn.write_all(b"fine").await.unwrap();
        let mut b = [0u8; 4];
        let mut got = 0;
        while got < 4 {
            got += conn.read(&mut b[got..]).await.unwrap();
        }
        assert_eq!(&b, b"fine");
        conn.close().await.unwrap();

        let (_, mut udp) = UdpStack::connect(stack, common::udp_echo_server()).await.unwrap();
        a_refused(&sim, "UDP datagram of 1461 bytes", Error::InvalidArgument, udp.send(&[1u8; 1461])).await;
        a_refused(&sim, "empty UDP datagram", Error::InvalidArgument, udp.send(&[])).await;
        drop(udp);

        let (local, mut service) =
            stack.bind_single(SocketAddr::from(([0, 0, 0, 0], common::unused_udp_port()))).await.unwrap();
        let to = SocketAddr::from(([127, 0, 0, 1], 9));
        a_refused(&sim, "send of 1461 bytes", Error::InvalidArgument, service.send(local, to, &[1u8; 1461])).await;
        a_refused(&sim, "empty send", Error::InvalidArgument, service.send(local, to, &[])).await;
        a_refused(&sim, "send to port 0", Error::InvalidArgument, service.send(local, zero, b"x")).await;
        let other = SocketAddr::from(([10, 0, 0, 1], local.port()));
        a_refused(&sim, "send from another local address", Error::InvalidArgument, service.send(other, to, b"x")).await;
        drop(service);
        stack.flush_closes().await.unwrap();
        assert_eq!(sim.open_sockets(), vec![]);
    });
}

#[test]
fn async_stale_handles_do_not_touch_the_connection_that_reused_the_id() {
    use embedded_nal_async::TcpConnect;
    for fault in ["pdpdeact", "reboot"] {
        run(async {
            let (sim, stack) = asynch().await;
            let echo = common::echo_server();
            let mut old = stack.connect(echo).await.unwrap();
            let id = old.connect_id();
            if fault == "pdpdeact" {
                sim.pdp_deactivate(1);
            } else {
                sim.reboot();
            }
            let mut buf = [0u8; 16];
            let r = tokio::time::timeout(PATIENCE, old.read(&mut buf)).await.expect("read on the lost socket");
            assert!(matches!(r, Err(Error::ContextDeactivated(1)) | Err(Error::Rebooted)), "{fault}: {r:?}");
            let reason = r.unwrap_err();
            // once the modem is back, a new connection takes the same connectID
            let deadline = Instant::now() + PATIENCE;
            let mut new = loop {
                match stack.connect(echo).await {
                    Ok(c) => break c,
                    Err(e) => {
                        assert!(Instant::now() < deadline, "{fault}: no new connection: {e:?}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            };
            assert_eq!(new.connect_id(), id, "{fault}: the test needs the id reused");
            a_refused(&sim, &format!("{fault}: write on the stale connection"), reason, old.write(b"must not arrive"))
                .await;
            a_refused(&sim, &format!("{fault}: read on the stale connection"), reason, old.read(&mut buf)).await;
            a_refused(&sim, &format!("{fault}: send_hex on the stale connection"), reason, old.send_hex(b"x")).await;
            a_refused(&sim, &format!("{fault}: status of the stale connection"), reason, old.status()).await;
            tokio::time::sleep(Duration::from_millis(5)).await;
            let before = sim.stats().bytes_to_modem;
            drop(old);
            stack.flush_closes().await.unwrap();
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(sim.stats().bytes_to_modem, before, "{fault}: dropping the stale connection sent something");
            assert!(sim.open_sockets().iter().any(|s| s.connect_id == id), "{fault}: the new connection was closed");
            new.write_all(b"intact").await.unwrap();
            let mut b = [0u8; 6];
            let mut got = 0;
            while got < 6 {
                got += new.read(&mut b[got..]).await.unwrap();
            }
            assert_eq!(&b, b"intact");
            new.close().await.unwrap();
            assert_eq!(sim.open_sockets(), vec![]);
        });
    }
}

/// Found here: `activate_context(0)` (or 17) sent `AT+QIACT?` before it found out that the
/// context id is out of range. Now the id is checked before anything is sent, as everywhere
/// else.
#[test]
fn regression_activate_context_with_a_bad_id_queries_the_modem() {
    let (sim, modem) = blocking();
    refused(&sim, "activate context 0", Error::InvalidArgument, || modem.activate_context(0));
    refused(&sim, "activate context 17", Error::InvalidArgument, || modem.activate_context(17));
}

/// Found here: a refused `deactivate_context(0)` (`InvalidArgument`, nothing sent) was counted
/// as a failed `AT+QIDEACT` for Figure 1's "3 failed deactivations: reboot" rule, so three such
/// calls rebooted the modem. Now only failures of a deactivation the modem was asked for count.
#[test]
fn regression_deactivate_context_with_a_bad_id_counts_towards_a_reboot() {
    let (sim, modem) = blocking();
    for _ in 0..3 {
        refused(&sim, "deactivate context 0", Error::InvalidArgument, || modem.deactivate_context(0));
    }
    let n = sent_commands(&sim).len();
    modem.contexts().unwrap();
    let cmds = common::commands_since(&sim, n);
    assert_eq!(cmds, ["AT+QIACT?"], "the modem was rebooted for three refused calls");
}
