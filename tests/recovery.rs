//! Each recovery rule of the manual's Figure 1: the fault is injected in the simulator, and
//! the test checks what the stack did on the wire and what it reported at the API.

mod common;

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bg96_sim::{SimConfig, Simulator};
use common::{FastClock, commands_since, config, sent_commands};
use embedded_nal::{TcpClientStack, TcpError, TcpErrorKind};
use quectel_bg96::blocking::Bg96;
use quectel_bg96::recovery::{PowerControl, RebootPolicy};
use quectel_bg96::{Error, ErrorCode};

type Modem<P = quectel_bg96::recovery::NoPins> = Bg96<bg96_sim::HostPort, FastClock, P>;

fn start(policy: RebootPolicy) -> (Simulator, Modem, FastClock) {
    let (sim, port) = Simulator::spawn(SimConfig::default());
    let clock = FastClock::default();
    let mut c = config();
    c.recovery = policy;
    let modem = Bg96::new(port, clock.clone(), c);
    modem.bring_up().unwrap();
    (sim, modem, clock)
}

fn connect(modem: &Modem, addr: std::net::SocketAddr) -> Result<quectel_bg96::blocking::TcpSocket, Error> {
    let mut stack = modem;
    let mut sock = stack.socket()?;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match stack.connect(&mut sock, addr) {
            Ok(()) => return Ok(sock),
            Err(nb::Error::WouldBlock) => {
                assert!(Instant::now() < deadline, "connect never finished");
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(nb::Error::Other(e)) => {
                stack.close(sock)?;
                return Err(e);
            }
        }
    }
}

fn closed_port() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    drop(l);
    a
}

#[test]
fn no_open_result_in_150_s_closes_the_socket() {
    let (sim, modem, clock) = start(RebootPolicy::default());
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    sim.drop_deferred("AT+QIOPEN");
    let before = sent_commands(&sim).len();
    clock.speed(200);
    let t0 = Instant::now();
    assert_eq!(connect(&modem, peer.local_addr().unwrap()).err(), Some(Error::Timeout));
    clock.speed(1);
    assert!(t0.elapsed() < Duration::from_secs(10));
    let cmds = commands_since(&sim, before);
    assert!(cmds.iter().any(|c| c.starts_with("AT+QIOPEN=1,0")), "{cmds:?}");
    assert!(cmds.contains(&"AT+QICLOSE=0".to_string()), "Figure 1: close after 150 s: {cmds:?}");
    assert_eq!(modem.sockets_in_use(), 0);
    // and the stack goes on
    assert!(connect(&modem, peer.local_addr().unwrap()).is_ok());
}

#[test]
fn five_failed_opens_in_a_row_reactivate_the_context() {
    let (sim, modem, _clock) = start(RebootPolicy::default());
    let dead = closed_port();
    for _ in 0..5 {
        assert_eq!(connect(&modem, dead).err(), Some(Error::Modem(ErrorCode::SocketConnectFailed)));
    }
    assert_eq!(modem.recovery().open_failures, 5);
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let before = sent_commands(&sim).len();
    let sock = connect(&modem, peer.local_addr().unwrap()).unwrap();
    let cmds = commands_since(&sim, before);
    let pos = |p: &str| cmds.iter().position(|c| c.starts_with(p)).unwrap_or_else(|| panic!("{p} missing: {cmds:?}"));
    assert!(pos("AT+QIDEACT=1") < pos("AT+QIACT=1") && pos("AT+QIACT=1") < pos("AT+QIOPEN"), "{cmds:?}");
    assert_eq!(modem.recovery().open_failures, 0);
    let mut stack = &modem;
    stack.close(sock).unwrap();
}

#[test]
fn three_failed_deactivations_reboot_the_modem() {
    let (sim, modem, _clock) = start(RebootPolicy::default());
    sim.fail_next("AT+QIDEACT", 3, 562);
    for n in 1..=3 {
        assert_eq!(modem.deactivate_context(1), Err(Error::Modem(ErrorCode::ClosePdpContextFailed)));
        assert_eq!(modem.recovery().deactivate_failures, n);
    }
    assert!(modem.recovery().reboot_needed);
    let before = sent_commands(&sim).len();
    // the next use reboots first
    let contexts = modem.contexts().unwrap();
    let cmds = commands_since(&sim, before);
    assert_eq!(cmds.first().map(String::as_str), Some("AT+CFUN=1,1"), "{cmds:?}");
    assert!(cmds.iter().any(|c| c == "ATE0") && cmds.iter().any(|c| c == "AT+QIACT=1"), "bring-up again: {cmds:?}");
    assert_eq!(contexts.len(), 1);
    let r = modem.recovery();
    assert_eq!((r.total_reboots, r.reboot_needed, r.deactivate_failures), (1, false, 0));
}

#[test]
fn an_unanswered_deactivation_reboots_the_modem() {
    let (sim, modem, clock) = start(RebootPolicy::default());
    sim.drop_response("AT+QIDEACT");
    clock.speed(500);
    assert_eq!(modem.deactivate_context(1), Err(Error::Timeout));
    clock.speed(1);
    assert!(modem.recovery().reboot_needed, "Figure 1: no answer to AT+QIDEACT in 40 s");
    let before = sent_commands(&sim).len();
    modem.contexts().unwrap();
    assert_eq!(commands_since(&sim, before).first().map(String::as_str), Some("AT+CFUN=1,1"));
}

#[test]
fn a_silent_command_is_checked_with_at_before_the_next_use() {
    let (sim, modem, clock) = start(RebootPolicy::default());
    sim.drop_response("AT+QISTATE");
    clock.speed(200);
    assert_eq!(modem.command(&quectel_bg96::commands::Qistate::All).err(), Some(Error::Timeout));
    clock.speed(1);
    assert!(modem.recovery().suspect);
    let before = sent_commands(&sim).len();
    modem.contexts().unwrap();
    let cmds = commands_since(&sim, before);
    assert_eq!(cmds, ["AT", "AT+QIACT?"], "one AT check, no reboot");
    assert!(!modem.recovery().suspect);
}

#[test]
fn unacknowledged_data_closes_the_connection_after_the_checks() {
    let policy = RebootPolicy { ack_interval_ms: 100, ack_checks: 3, ..RebootPolicy::default() };
    let (sim, modem, _clock) = start(policy);
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sock = connect(&modem, peer.local_addr().unwrap()).unwrap();
    let (_conn, _) = peer.accept().unwrap();
    let mut stack = &modem;
    // acknowledged data: one check, then quiet
    assert_eq!(stack.send(&mut sock, b"hello"), Ok(5));
    let before = sent_commands(&sim).len();
    let mut buf = [0u8; 16];
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(600) {
        let _ = stack.receive(&mut sock, &mut buf);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(commands_since(&sim, before), ["AT+QISEND=0,0"], "one check once acked");
    // now the peer stops acknowledging
    sim.hold_acks(0, true);
    assert_eq!(stack.send(&mut sock, b"lost?"), Ok(5));
    let before = sent_commands(&sim).len();
    let t0 = Instant::now();
    let err = loop {
        assert!(t0.elapsed() < Duration::from_secs(5), "connection never closed");
        match stack.receive(&mut sock, &mut buf) {
            Err(nb::Error::Other(e)) => break e,
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    assert_eq!(err, Error::Timeout);
    let cmds = commands_since(&sim, before);
    assert_eq!(cmds.iter().filter(|c| *c == "AT+QISEND=0,0").count(), 3, "{cmds:?}");
    // the connectID is given back
    stack.close(sock).unwrap();
    let t0 = Instant::now();
    while modem.sockets_in_use() > 0 && t0.elapsed() < Duration::from_secs(2) {
        let _ = connect(&modem, peer.local_addr().unwrap()).map(|s| stack.close(s));
    }
    assert!(sent_commands(&sim).contains(&"AT+QICLOSE=0".to_string()));
}

#[test]
fn pdpdeact_kills_the_sockets_and_the_context_comes_back_on_next_use() {
    let (sim, modem, _clock) = start(RebootPolicy::default());
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sock = connect(&modem, peer.local_addr().unwrap()).unwrap();
    sim.pdp_deactivate(1);
    let mut stack = &modem;
    let mut buf = [0u8; 8];
    let t0 = Instant::now();
    let err = loop {
        assert!(t0.elapsed() < Duration::from_secs(5));
        match stack.receive(&mut sock, &mut buf) {
            Err(nb::Error::Other(e)) => break e,
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    };
    assert_eq!(err, Error::ContextDeactivated(1));
    assert_eq!(err.kind(), TcpErrorKind::PipeClosed, "minimq reconnects on PipeClosed");
    stack.close(sock).unwrap();
    let before = sent_commands(&sim).len();
    let sock = connect(&modem, peer.local_addr().unwrap()).unwrap();
    let cmds = commands_since(&sim, before);
    let pos = |p: &str| cmds.iter().position(|c| c.starts_with(p)).unwrap_or_else(|| panic!("{p} missing: {cmds:?}"));
    assert!(pos("AT+QIDEACT=1") < pos("AT+QIACT?") && pos("AT+QIACT=1") < pos("AT+QIOPEN"), "{cmds:?}");
    stack.close(sock).unwrap();
}

#[test]
fn an_unsolicited_rdy_loses_the_sockets_and_bring_up_runs_again() {
    let (sim, modem, _clock) = start(RebootPolicy::default());
    let peer = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut sock = connect(&modem, peer.local_addr().unwrap()).unwrap();
    sim.reboot();
    let mut stack = &modem;
    let mut buf = [0u8; 8];
    let t0 = Instant::now();
    let err = loop {
        assert!(t0.elapsed() < Duration::from_secs(10));
        match stack.receive(&mut sock, &mut buf) {
            Err(nb::Error::Other(e)) => break e,
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    assert_eq!(err, Error::Rebooted);
    assert_eq!(err.kind(), TcpErrorKind::PipeClosed);
    stack.close(sock).unwrap();
    // the stack brought the modem up again by itself
    let cmds = sent_commands(&sim);
    assert_eq!(cmds.iter().filter(|c| *c == "AT+QIACT=1").count(), 2, "{cmds:?}");
    assert_eq!(modem.recovery().total_reboots, 0, "the modem rebooted by itself: not one of ours");
    let sock = connect(&modem, peer.local_addr().unwrap()).unwrap();
    stack.close(sock).unwrap();
}

#[test]
fn reboots_follow_the_backoff_policy() {
    let policy = RebootPolicy { immediate_reboots: 1, backoff_s: [60, 120, 180], ..RebootPolicy::default() };
    let (sim, modem, clock) = start(policy.clone());
    assert_eq!(modem.policy(), policy);
    modem.reboot().unwrap();
    let Err(Error::RebootBackoff { retry_in_s }) = modem.reboot() else { panic!("the second reboot must wait") };
    assert!((59..=60).contains(&retry_in_s), "{retry_in_s}");
    // an hour later the series starts again
    clock.speed(10_000);
    std::thread::sleep(Duration::from_millis(400));
    clock.speed(1);
    let before = sent_commands(&sim).len();
    modem.reboot().unwrap();
    assert_eq!(commands_since(&sim, before).first().map(String::as_str), Some("AT+CFUN=1,1"));
    assert_eq!(modem.recovery().total_reboots, 2);
    // the policy can be changed
    modem.set_policy(RebootPolicy { immediate_reboots: 5, ..policy });
    modem.reboot().unwrap();
}

#[test]
fn a_new_series_still_waits_out_the_backoff_since_the_last_reboot() {
    // no immediate reboots: every reboot waits 2 h after the one before, whichever series
    let policy = RebootPolicy { immediate_reboots: 0, backoff_s: [7_200; 3], ..RebootPolicy::default() };
    let (_sim, modem, clock) = start(policy);
    modem.reboot().unwrap();
    // 1.5 h later the series is over, but the 2 h since the last reboot are not
    clock.speed(10_000);
    std::thread::sleep(Duration::from_millis(540));
    clock.speed(1);
    let Err(Error::RebootBackoff { retry_in_s }) = modem.reboot() else { panic!("the reboot must wait") };
    assert!((1_200..=2_400).contains(&retry_in_s), "{retry_in_s}");
    // and once they are, it reboots
    clock.speed(10_000);
    std::thread::sleep(Duration::from_millis(400));
    clock.speed(1);
    modem.reboot().unwrap();
    assert_eq!(modem.recovery().total_reboots, 2);
}

/// Power lines for tests: pressing the key (or asserting reset) "powers" the simulated modem.
#[derive(Clone, Default)]
struct TestPins {
    log: Arc<Mutex<Vec<(Instant, &'static str)>>>,
    sim: Arc<Mutex<Option<Simulator>>>,
    reset: bool,
}

impl PowerControl for TestPins {
    fn has_reset(&self) -> bool {
        self.reset
    }
    fn has_power_key(&self) -> bool {
        true
    }
    fn set_power_key(&mut self, pressed: bool) {
        self.log.lock().unwrap().push((Instant::now(), if pressed { "key down" } else { "key up" }));
        if !pressed && let Some(sim) = self.sim.lock().unwrap().as_ref() {
            sim.reboot();
        }
    }
    fn set_reset(&mut self, asserted: bool) {
        self.log.lock().unwrap().push((Instant::now(), if asserted { "reset on" } else { "reset off" }));
        if !asserted && let Some(sim) = self.sim.lock().unwrap().as_ref() {
            sim.reboot();
        }
    }
    fn set_supply(&mut self, on: bool) {
        self.log.lock().unwrap().push((Instant::now(), if on { "supply on" } else { "supply off" }));
    }
}

fn start_with_pins(pins: TestPins) -> (Simulator, Modem<TestPins>, FastClock) {
    let (sim, port) = Simulator::spawn(SimConfig::default());
    *pins.sim.lock().unwrap() = Some(sim.clone());
    let clock = FastClock::default();
    let modem = Bg96::with_pins(port, clock.clone(), config(), pins);
    modem.bring_up().unwrap();
    (sim, modem, clock)
}

#[test]
fn power_down_waits_12_s_before_the_supply_is_cut_and_power_on_pulses_the_key() {
    let pins = TestPins::default();
    let log = pins.log.clone();
    let (sim, modem, clock) = start_with_pins(pins);
    clock.speed(100);
    let t0 = Instant::now();
    modem.power_down().unwrap();
    clock.speed(1);
    assert!(sent_commands(&sim).contains(&"AT+QPOWD=1".to_string()));
    let cut = log.lock().unwrap().iter().find(|(_, e)| *e == "supply off").map(|(t, _)| *t).expect("supply cut");
    assert!(cut - t0 >= Duration::from_millis(12_000 / 100 - 5), "12 s (scaled) after POWERED DOWN");
    // switch it on again: the key is held for 2 s, then RDY
    clock.speed(20);
    modem.power_on().unwrap();
    clock.speed(1);
    let events: Vec<&str> = log.lock().unwrap().iter().map(|(_, e)| *e).collect();
    assert!(events.ends_with(&["supply on", "key down", "key up"]), "{events:?}");
    modem.bring_up().unwrap();
}

#[test]
fn a_hung_modem_is_rebooted_with_the_reset_line() {
    let pins = TestPins { reset: true, ..TestPins::default() };
    let log = pins.log.clone();
    let (sim, modem, clock) = start_with_pins(pins);
    sim.hang();
    clock.speed(50);
    modem.reboot().unwrap();
    clock.speed(1);
    let events: Vec<&str> = log.lock().unwrap().iter().map(|(_, e)| *e).collect();
    assert_eq!(events, ["reset on", "reset off"], "AT+CFUN=1,1 went unanswered: the reset line");
    assert!(modem.contexts().is_ok());
}
