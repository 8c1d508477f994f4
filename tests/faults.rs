//! The fault matrix: every fault bg96-sim can inject, against every operation, on both fronts.
//!
//! Each `#[test]` is one family of faults on one front (blocking `Bg96`, async `Stack`); it loops
//! over the operations and over the family's variants (which command, which line, which chunk
//! size...). One *case* is one (front, operation, fault) triple and is named like
//! `async / receive / urc after line 2 of AT+QIRD: +QIURC: "closed",<bystander>` in failure
//! messages. A test fails with the list of every failing case, not just the first.
//!
//! # Operations
//! | op | blocking | async |
//! |---|---|---|
//! | bring-up | `Bg96::bring_up` on a fresh modem | `Stack::bring_up` on a fresh modem |
//! | connect | `TcpClientStack::connect` + an echo round trip | `TcpConnect::connect` + an echo round trip |
//! | send | 6000 bytes (5 `AT+QISEND`) to a recording peer | the same with `write` |
//! | receive | 6000 bytes the peer sent, buffered in the modem | the same with `read` |
//! | serve | `TcpFullStack` bind/listen/accept + an echo round trip with an outside client | `UdpStack::bind_single` + 3 datagrams echoed to an outside peer (the async stack has no TCP listener) |
//! | dns | `Dns::get_host_by_name` of a name in the simulator's table | the same, async |
//! | close | `close` of a connection with unread data | `TcpConnection::close` of a connection with unread data |
//!
//! # Invariants checked in every case
//! 1. No panic (a panic anywhere, driver or test, is a failed case).
//! 2. No wait longer than the command's timeout: the stack's clock (a [`FastClock`], fast-
//!    forwarded for the faults that make the stack wait for a timeout) must not advance more
//!    than the operation's budget, which is the sum of the manual's timeouts of the commands it
//!    may legitimately run one after the other; and no call may block for more than
//!    [`PATIENCE`] of real time.
//! 3. Every payload byte delivered exactly once and in order, or a typed error: what arrived
//!    (at the peer, or in the stack's buffers) is always a prefix of what was sent; if the
//!    operation reported success it is all of it. Faults that must not cause any error
//!    (URCs, chunking, garbage, short delays, `SEND FAIL` runs) must complete successfully.
//! 4. No connectID leaked: right after the case the modem has no socket the stack does not
//!    know of; then all 12 can be opened again, the simulator's `open_sockets()` lists exactly
//!    those 12 (same ids) and after closing them, none.
//! 5. The stack is usable afterwards: a fresh connection does an echo round trip, then each of
//!    the 12 does one. A bystander connection that a URC was meant for saw it (a `closed` URC
//!    between two response lines ends it), and one it was not meant for still works.
//! 6. Nothing was taken for a reboot: unless the fault is a reboot, a hang, a lost answer or a
//!    late answer to `AT+QICLOSE` (Figure 1 reboots then), no `AT+CFUN=1,1` and no second
//!    bring-up went out.
//!
//! # The families
//! peer close; `pdpdeact` (before / mid-operation); reboot (before / mid-operation); runs of
//! 1-8 `SEND FAIL`; every command of the operation answered 40 ms late; answered after its
//! timeout; never answered; deferred result never comes; failing with `ERROR`; a URC before,
//! between and after every line of every command's answer; a URC between the final result and
//! the deferred result; stray URCs (for unknown sockets, DNS results nobody asked for, ...);
//! output in k-byte pieces for k = 1..12, 17, 31, 64, 200 (every byte boundary); garbage
//! (noise, bare line ends, unknown lines, a line longer than any buffer) before and during the
//! operation; a peer that stops acknowledging; a hung modem (power-cycled afterwards). Plus a
//! flood of 100 000 URCs and a modem that never stops talking (bounded memory, at the end).
//!
//! # Bugs the matrix found
//! Each is fixed; its minimal reproducer stays at the end of this file as a `regression_*`
//! test whose doc comment tells what went wrong. A newly found bug gets the same: an
//! `#[ignore = "bug: ..."]` reproducer, and `known_bug` skips the matrix cases it explains
//! (listed as "skipped" in the output) until the fix lands.
//!
//! # Not applicable combinations
//! A fault that cannot touch an operation is skipped and listed as "n/a" in the test's output
//! (`--nocapture`): `SEND FAIL` runs only where the operation sends, dropped deferred results only
//! where there is a deferred result (`+QIOPEN`, `dnsgip`), unacknowledged data only for send.
//! URCs between the `+QIRD: <n>` header and its payload are not injected: the payload follows
//! the header by count, a URC inside it cannot exist on a real modem.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bg96_sim::{HostPort, InjectPoint, SimConfig, Simulator};
use common::{FastClock, FastStack, nasty_payload, sim_stack_fast};
use embedded_nal::{AddrType, TcpClientStack, TcpFullStack};
use quectel_bg96::Error;
use quectel_bg96::blocking::{Bg96, SocketHandle, TcpSocket};
use quectel_bg96::clock::Clock;

type Modem = Bg96<common::PoliteSerial<HostPort>, FastClock>;

/// The longest any single call may block in real time before the case counts as hung.
const PATIENCE: Duration = Duration::from_secs(30);
/// How much faster the stack's clock runs while a fault makes it wait for a timeout.
const SPEED: u64 = 100;
/// A name in the simulator's DNS table.
const PEER_NAME: &str = "peer.test";
/// Bytes moved by the send and receive operations (5 `AT+QISEND`, 4+ `AT+QIRD`).
const DATA_LEN: usize = 6000;

// -------------------------------------------------------------------------------------------
// The matrix

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    BringUp,
    Connect,
    Send,
    Receive,
    Serve,
    Dns,
    Close,
}

impl Op {
    const ALL: [Op; 7] = [Op::BringUp, Op::Connect, Op::Send, Op::Receive, Op::Serve, Op::Dns, Op::Close];

    fn name(self) -> &'static str {
        match self {
            Op::BringUp => "bring-up",
            Op::Connect => "connect",
            Op::Send => "send",
            Op::Receive => "receive",
            Op::Serve => "serve",
            Op::Dns => "dns",
            Op::Close => "close",
        }
    }

    /// The commands whose answers the operation depends on: targets of command-level faults.
    fn commands(self) -> &'static [&'static str] {
        match self {
            Op::BringUp => &[
                "ATE",
                "AT+CMEE",
                "AT+QISDE",
                "AT+QURCCFG",
                "AT+QGMR",
                "AT+CPIN?",
                "AT+CREG?",
                "AT+CEREG?",
                "AT+QICSGP",
                "AT+QIACT?",
                "AT+QIACT=",
                "AT+QISTATE",
                "AT+QICFG",
            ],
            Op::Connect | Op::Serve => &["AT+QIOPEN"],
            Op::Send => &["AT+QISEND"],
            Op::Receive => &["AT+QIRD"],
            Op::Dns => &["AT+QIDNSGIP"],
            Op::Close => &["AT+QICLOSE"],
        }
    }

    /// The commands for the faults that cost a whole timeout each (a subset for bring-up).
    fn slow_commands(self) -> &'static [&'static str] {
        match self {
            Op::BringUp => &["ATE", "AT+QGMR", "AT+CPIN?", "AT+QIACT?", "AT+QIACT=", "AT+QISTATE", "AT+QICFG"],
            op => op.commands(),
        }
    }

    /// The longest the operation may take on the stack's clock, in ms: the manual's timeouts of
    /// what it may run one after the other when one answer never comes, plus recovery (an `AT`
    /// check, a bring-up after a reboot).
    fn budget_ms(self) -> u64 {
        const BRING_UP: u64 = 30_000 + 10_000 + 150_000 + 60_000;
        match self {
            Op::BringUp => BRING_UP + 30_000,
            Op::Connect | Op::Serve => 150_000 + 60_000 + 11_000 + BRING_UP,
            Op::Send | Op::Receive => 2 * 60_000 + 11_000 + BRING_UP,
            Op::Dns => 60_000 + 60_000 + 60_000 + BRING_UP,
            Op::Close => 11_000 + 60_000 + BRING_UP,
        }
    }
}

/// What an injected URC says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Urc {
    /// `+QIURC: "closed",<bystander>`: must reach the bystander connection (which then ends).
    ClosedBystander,
    /// `+QIURC: "recv",<bystander>`: spurious, the bystander must keep working.
    RecvBystander,
    /// A line the stack does not know.
    Unknown,
}

impl Urc {
    fn text(self, bystander: Option<u8>) -> String {
        let id = bystander.unwrap_or(11);
        match self {
            Urc::ClosedBystander => format!("+QIURC: \"closed\",{id}"),
            Urc::RecvBystander => format!("+QIURC: \"recv\",{id}"),
            Urc::Unknown => "+QIND: \"csq\",20,99".to_string(),
        }
    }
}

#[derive(Clone, Debug)]
enum Fault {
    /// The remote side closes (`close_from_peer`; a peer that hangs up at once for connect).
    PeerClose,
    /// `+QIURC: "pdpdeact",1` before the operation, or after its first progress.
    PdpDeact { mid: bool },
    /// The modem reboots before the operation, or after its first progress.
    Reboot { mid: bool },
    /// The next `n` sends answer `SEND FAIL`.
    SendFail(usize),
    /// The answer of `cmd` is held back for a while (well within the timeout).
    Delay { cmd: &'static str, ms: u64 },
    /// The answer of `cmd` comes only after the stack's timeout ran out.
    Late { cmd: &'static str },
    /// `cmd` runs but its answer never comes.
    Drop { cmd: &'static str },
    /// `cmd` is answered `OK` but its deferred result never comes.
    DropDeferred { cmd: &'static str },
    /// `cmd` fails with `ERROR` (`code` in `AT+QIGETERROR`).
    Fail { cmd: &'static str, code: u16 },
    /// A URC between two lines of `cmd`'s answer (after line `line`, 0 = before the first).
    UrcBetween { cmd: &'static str, line: usize, urc: Urc },
    /// A URC right after `cmd`'s final result (before a deferred result).
    UrcAfterFinal { cmd: &'static str, urc: Urc },
    /// A URC that means nothing now (no such socket, no query running...).
    Stray(&'static str),
    /// All modem output in `k`-byte pieces, `pause_us` apart.
    Chunking { k: usize, pause_us: u64 },
    /// Raw bytes on the line, before the operation or while it runs.
    Garbage { bytes: &'static [u8], during: bool },
    /// The peer stops acknowledging what the operation sends.
    HoldAcks,
    /// The modem stops answering (until it is power-cycled after the operation).
    Hang,
}

impl Fault {
    fn name(&self) -> String {
        match self {
            Fault::PeerClose => "peer close".into(),
            Fault::PdpDeact { mid } => format!("pdpdeact {}", if *mid { "mid-operation" } else { "before" }),
            Fault::Reboot { mid } => format!("reboot {}", if *mid { "mid-operation" } else { "before" }),
            Fault::SendFail(n) => format!("{n} x SEND FAIL"),
            Fault::Delay { cmd, ms } => format!("{cmd} answered {ms} ms late"),
            Fault::Late { cmd } => format!("{cmd} answered after the timeout"),
            Fault::Drop { cmd } => format!("{cmd} never answered"),
            Fault::DropDeferred { cmd } => format!("{cmd}: deferred result never comes"),
            Fault::Fail { cmd, code } => format!("{cmd} fails with ERROR ({code})"),
            Fault::UrcBetween { cmd, line, urc } => format!("urc after line {line} of {cmd}: {}", urc.text(None)),
            Fault::UrcAfterFinal { cmd, urc } => format!("urc after the final result of {cmd}: {}", urc.text(None)),
            Fault::Stray(t) => format!("stray urc {t:?}"),
            Fault::Chunking { k, pause_us } => format!("output in {k}-byte pieces, {pause_us} us apart"),
            Fault::Garbage { bytes, during } => {
                let shown: String = String::from_utf8_lossy(&bytes[..bytes.len().min(12)]).escape_debug().collect();
                format!("garbage {} ({} bytes: {shown:?}...)", if *during { "during" } else { "before" }, bytes.len())
            }
            Fault::HoldAcks => "peer stops acknowledging".into(),
            Fault::Hang => "modem hangs".into(),
        }
    }

    /// Faults after which the operation must have succeeded.
    fn must_succeed(&self, op: Op) -> bool {
        match self {
            Fault::SendFail(_)
            | Fault::Delay { .. }
            | Fault::UrcBetween { .. }
            | Fault::UrcAfterFinal { .. }
            | Fault::Stray(_)
            | Fault::Chunking { .. }
            | Fault::Garbage { .. }
            | Fault::HoldAcks => true,
            Fault::PeerClose => matches!(op, Op::BringUp | Op::Dns | Op::Close),
            _ => false,
        }
    }

    /// Whether the case needs a bystander connection (the target of injected URCs).
    fn bystander(&self, op: Op) -> bool {
        match self {
            Fault::UrcBetween { urc, .. } | Fault::UrcAfterFinal { urc, .. } => *urc != Urc::Unknown,
            Fault::PeerClose => matches!(op, Op::BringUp | Op::Dns),
            _ => false,
        }
    }

    fn urc(&self) -> Option<Urc> {
        match self {
            Fault::UrcBetween { urc, .. } | Fault::UrcAfterFinal { urc, .. } => Some(*urc),
            _ => None,
        }
    }

    /// Whether the stack's clock runs fast during the operation.
    fn fast(&self) -> bool {
        matches!(
            self,
            Fault::Late { .. } | Fault::Drop { .. } | Fault::DropDeferred { .. } | Fault::HoldAcks | Fault::Hang
        )
    }
}

/// The manual's timeout of a command (what the stack waits for it), in ms.
fn timeout_of(cmd: &str) -> u64 {
    match cmd {
        "AT+QIOPEN" | "AT+QIACT=" => 150_000,
        "AT+QICLOSE" => 11_000,
        "AT+CPIN?" => 20_000,
        _ => 60_000,
    }
}

// --- the families: which variants of a fault each operation gets ---------------------------

fn fam_peer_close(_: Op) -> Vec<Fault> {
    vec![Fault::PeerClose]
}

fn fam_pdpdeact(op: Op) -> Vec<Fault> {
    let mut v = vec![Fault::PdpDeact { mid: false }];
    if matches!(op, Op::Send | Op::Receive | Op::Serve) {
        v.push(Fault::PdpDeact { mid: true });
    }
    v
}

fn fam_reboot(op: Op) -> Vec<Fault> {
    let mut v = vec![Fault::Reboot { mid: false }];
    if matches!(op, Op::Send | Op::Receive | Op::Serve) {
        v.push(Fault::Reboot { mid: true });
    }
    v
}

fn fam_send_fail(op: Op) -> Vec<Fault> {
    match op {
        Op::Send => vec![Fault::SendFail(1), Fault::SendFail(3), Fault::SendFail(8)],
        Op::Connect | Op::Serve => vec![Fault::SendFail(2)],
        _ => vec![],
    }
}

fn fam_delay(op: Op) -> Vec<Fault> {
    op.commands().iter().map(|&cmd| Fault::Delay { cmd, ms: 40 }).collect()
}

fn fam_late(op: Op) -> Vec<Fault> {
    op.slow_commands().iter().map(|&cmd| Fault::Late { cmd }).collect()
}

fn fam_drop(op: Op) -> Vec<Fault> {
    op.slow_commands().iter().map(|&cmd| Fault::Drop { cmd }).collect()
}

fn fam_drop_deferred(op: Op) -> Vec<Fault> {
    match op {
        Op::Connect | Op::Serve => vec![Fault::DropDeferred { cmd: "AT+QIOPEN" }],
        Op::Dns => vec![Fault::DropDeferred { cmd: "AT+QIDNSGIP" }],
        _ => vec![],
    }
}

fn fam_fail(op: Op) -> Vec<Fault> {
    op.commands()
        .iter()
        .filter(|&&cmd| cmd != "AT+QICFG") // the recvind probe tolerates ERROR by design
        .map(|&cmd| Fault::Fail { cmd, code: if cmd == "AT+QIOPEN" { 566 } else { 550 } })
        .collect()
}

fn fam_urc_between(op: Op) -> Vec<Fault> {
    let mut v = Vec::new();
    for &cmd in op.commands() {
        for line in 0..=3 {
            if cmd == "AT+QIRD" && line == 1 {
                continue; // inside the payload's framing: cannot happen (see the module docs)
            }
            let urcs: &[Urc] = if op == Op::BringUp {
                &[Urc::Unknown]
            } else if line == 1 {
                &[Urc::ClosedBystander, Urc::Unknown]
            } else {
                &[Urc::ClosedBystander]
            };
            for &urc in urcs {
                v.push(Fault::UrcBetween { cmd, line, urc });
            }
        }
    }
    v
}

fn fam_urc_after_final(op: Op) -> Vec<Fault> {
    let urcs: &[Urc] = if op == Op::BringUp { &[Urc::Unknown] } else { &[Urc::ClosedBystander, Urc::RecvBystander] };
    op.commands().iter().flat_map(|&cmd| urcs.iter().map(move |&urc| Fault::UrcAfterFinal { cmd, urc })).collect()
}

fn fam_stray(_: Op) -> Vec<Fault> {
    vec![
        Fault::Stray("+QIURC: \"recv\",9"),
        Fault::Stray("+QIURC: \"closed\",9"),
        Fault::Stray("+QIOPEN: 9,0"),
        Fault::Stray("+QIURC: \"dnsgip\",0,1,600"),
        Fault::Stray("+QIURC: \"dnsgip\",\"10.9.9.9\""),
        Fault::Stray("+QIURC: \"incoming full\""),
        Fault::Stray("+QIURC: \"pdpdeact\",7"),
        Fault::Stray("+QPING: 0,4,4,0,1,1,1"),
    ]
}

fn fam_chunking(_: Op) -> Vec<Fault> {
    let mut v: Vec<Fault> = (1..=12).map(|k| Fault::Chunking { k, pause_us: if k <= 2 { 0 } else { 30 } }).collect();
    v.extend([17, 31, 64, 200].map(|k| Fault::Chunking { k, pause_us: 100 }));
    v
}

/// Garbage that is not modem output: noise, unknown lines, bare line ends, a line too long
/// for any buffer. (Bytes that spell a result code or URC are modem output by definition.)
const GARBAGE: [&[u8]; 7] = [
    &[0u8; 64],
    &[0xffu8; 64],
    b"\r\n\r\n\n\r\r\r\n",
    b"\r\n+UNKNOWN: 1,2,3\r\n\r\n+QIND: \"csq\",31,99\r\n",
    b"\x1b[0m\x07\x08\x7f~~noise~~",
    b"ATATATAT",
    &[b'x'; 1000],
];

fn fam_garbage(_: Op) -> Vec<Fault> {
    let mut v: Vec<Fault> = GARBAGE.iter().map(|&bytes| Fault::Garbage { bytes, during: false }).collect();
    v.extend([GARBAGE[0], GARBAGE[3], GARBAGE[6]].map(|bytes| Fault::Garbage { bytes, during: true }));
    v
}

fn fam_hold_acks(op: Op) -> Vec<Fault> {
    if op == Op::Send { vec![Fault::HoldAcks] } else { vec![] }
}

fn fam_hang(_: Op) -> Vec<Fault> {
    vec![Fault::Hang]
}

/// Cases that fail because of an open driver bug, each with its own minimal
/// `#[ignore = "bug: ..."]` reproducer at the end of this file; the matrix skips those cases
/// (listing them in its output) so that the suite stays green and every other case still runs.
fn known_bug(_asynch: bool, _op: Op, _f: &Fault) -> Option<&'static str> {
    // none open: every bug the matrix found is fixed (the regression_* tests below)
    None
}

// -------------------------------------------------------------------------------------------
// Shared machinery

fn sim_config() -> SimConfig {
    SimConfig {
        boot_delay: Duration::from_millis(10),
        deferred_delay: Duration::from_millis(5),
        dns: vec![(PEER_NAME.to_string(), vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])],
        ..SimConfig::default()
    }
}

/// One echo server and one hang-up server for the whole test binary.
fn echo() -> SocketAddr {
    static A: OnceLock<SocketAddr> = OnceLock::new();
    *A.get_or_init(common::echo_server)
}

fn hangup() -> SocketAddr {
    static A: OnceLock<SocketAddr> = OnceLock::new();
    *A.get_or_init(common::closing_server)
}

/// What an operation reported.
struct Out {
    result: Result<(), Error>,
    clock_ms: u64,
    note: String,
}

/// Applies the part of a fault that comes before the operation. `own` is the operation's own
/// connectID (when it has one before it starts), `by` the bystander's.
fn arm(f: &Fault, sim: &Simulator, clock: &FastClock, own: Option<u8>, by: Option<u8>) {
    if f.fast() {
        clock.speed(SPEED);
    }
    match f {
        Fault::PeerClose => {
            if own.is_none()
                && let Some(b) = by
            {
                sim.close_from_peer(b)
            }
        }
        Fault::PdpDeact { mid: false } => sim.pdp_deactivate(1),
        Fault::Reboot { mid: false } => sim.reboot(),
        Fault::PdpDeact { mid: true } | Fault::Reboot { mid: true } => {}
        Fault::SendFail(n) => sim.send_fail_next(*n),
        Fault::Delay { cmd, ms } => sim.delay_response(cmd, Duration::from_millis(*ms)),
        Fault::Late { cmd } => sim.delay_response(cmd, Duration::from_millis(timeout_of(cmd) / SPEED + 300)),
        Fault::Drop { cmd } => sim.drop_response(cmd),
        Fault::DropDeferred { cmd } => sim.drop_deferred(cmd),
        Fault::Fail { cmd, code } => sim.fail_next(cmd, 1, *code),
        Fault::UrcBetween { cmd, line, urc } => sim.inject_urc(
            InjectPoint::BetweenLines { command_prefix: cmd.to_string(), after_line: *line },
            &urc.text(by),
        ),
        Fault::UrcAfterFinal { cmd, urc } => {
            sim.inject_urc(InjectPoint::AfterFinal { command_prefix: cmd.to_string() }, &urc.text(by))
        }
        Fault::Stray(t) => sim.inject_urc(InjectPoint::Now, t),
        Fault::Chunking { k, pause_us } => sim.set_output_chunking(Some((*k, Duration::from_micros(*pause_us)))),
        Fault::Garbage { bytes, during: false } => sim.emit_garbage(bytes),
        Fault::Garbage { bytes, during: true } => {
            let sim = sim.clone();
            let bytes: &'static [u8] = bytes;
            std::thread::spawn(move || {
                // three bursts: less than a line's worth of noise without a line end in all
                for _ in 0..3 {
                    std::thread::sleep(Duration::from_millis(1));
                    sim.emit_garbage(bytes);
                }
            });
        }
        Fault::HoldAcks => {
            if let Some(id) = own {
                sim.hold_acks(id, true)
            }
        }
        Fault::Hang => sim.hang(),
    }
}

/// The part of a fault that comes after the operation's first progress.
fn arm_mid(f: &Fault, sim: &Simulator, own: Option<u8>) {
    match f {
        Fault::PdpDeact { mid: true } => sim.pdp_deactivate(1),
        Fault::Reboot { mid: true } => sim.reboot(),
        Fault::PeerClose => {
            if let Some(id) = own {
                sim.close_from_peer(id)
            }
        }
        _ => {}
    }
}

/// Undoes what lasts: speed, chunking, held ACKs, pending `SEND FAIL`s, a hung modem.
fn disarm(f: &Fault, sim: &Simulator, clock: &FastClock, own: Option<u8>) {
    clock.speed(1);
    sim.set_output_chunking(None);
    sim.send_fail_next(0);
    if let (Fault::HoldAcks, Some(id)) = (f, own) {
        sim.hold_acks(id, false);
    }
    if let Fault::Hang = f {
        // the board power-cycles the modem, and it has booted before the stack is used again
        // (a use that races with the boot is regression_first_use_after_a_power_cycle_waits_30_s)
        sim.reboot();
        std::thread::sleep(Duration::from_millis(80));
    }
}

/// How often bring-up (`ATE0`) and a reboot (`AT+CFUN=1,1`) were sent so far.
fn restarts(sim: &Simulator) -> (usize, usize) {
    let cmds = common::sent_commands(sim);
    (cmds.iter().filter(|c| *c == "ATE0").count(), cmds.iter().filter(|c| c.starts_with("AT+CFUN=1,1")).count())
}

/// Only these faults may make the stack reboot the modem or bring it up again; after any other
/// one, a second bring-up means the stack took something for an `RDY` (payload, a late answer).
fn restart_allowed(f: &Fault, op: Op) -> bool {
    op == Op::BringUp
        || matches!(f, Fault::Reboot { .. } | Fault::Hang | Fault::Drop { .. })
        // Figure 1: no answer to AT+QICLOSE within its time: reboot. A late AT+QIOPEN too: the
        // socket is closed when its 150 s run out, and the modem, still silent, does not answer
        // that AT+QICLOSE either (whether the close comes before the late answer is timing)
        || matches!(f, Fault::Late { cmd: "AT+QICLOSE" | "AT+QIOPEN" })
}

#[track_caller]
fn check_no_restart(f: &Fault, op: Op, sim: &Simulator, before: (usize, usize)) {
    if !restart_allowed(f, op) {
        let now = restarts(sim);
        assert_eq!(now.1, before.1, "the stack rebooted the modem (AT+CFUN=1,1)");
        assert_eq!(now.0, before.0, "the stack brought the modem up again: it took something for a reboot");
    }
}

#[track_caller]
fn check_prefix(got: &[u8], sent: &[u8], what: &str) {
    let n = got.len().min(sent.len());
    if got.len() > sent.len() || got[..n] != sent[..n] {
        let at = got.iter().zip(sent).position(|(a, b)| a != b).unwrap_or(n);
        panic!(
            "{what}: {} bytes arrived of {} sent and they are not a prefix of them (first difference at {at}): \
             bytes duplicated, reordered or corrupted",
            got.len(),
            sent.len()
        );
    }
}

fn is_connection_lost(e: &Error) -> bool {
    e.is_connection_lost() || matches!(e, Error::Modem(_))
}

/// Collects the outcome of every case of a test and fails it with the whole list.
#[derive(Default)]
struct Report {
    passed: usize,
    failed: Vec<String>,
    na: Vec<String>,
    skipped: Vec<String>,
    notes: Vec<String>,
}

impl Report {
    fn merge(parts: Vec<Report>) -> Report {
        let mut all = Report::default();
        for p in parts {
            all.passed += p.passed;
            all.failed.extend(p.failed);
            all.na.extend(p.na);
            all.skipped.extend(p.skipped);
            all.notes.extend(p.notes);
        }
        all
    }

    fn finish(self, test: &str) {
        println!(
            "{test}: {} cases passed, {} failed, {} skipped (known bugs), n/a: {:?}",
            self.passed,
            self.failed.len(),
            self.skipped.len(),
            self.na
        );
        for k in &self.skipped {
            println!("  skipped, known bug: {k}");
        }
        for n in &self.notes {
            println!("  {n}");
        }
        assert!(self.failed.is_empty(), "{test}: {} failing cases:\n  {}", self.failed.len(), self.failed.join("\n  "));
    }
}

fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

// -------------------------------------------------------------------------------------------
// Blocking front

struct BEnv {
    sim: Simulator,
    modem: Modem,
    clock: FastClock,
}

fn b_env(bring_up: bool) -> BEnv {
    let (sim, port) = Simulator::spawn(sim_config());
    // let the boot sequence come out first, so the first AT is not lost
    std::thread::sleep(Duration::from_millis(25));
    let clock = FastClock::default();
    let modem = Bg96::new(common::PoliteSerial(port), clock.clone(), common::config());
    if bring_up {
        modem.bring_up().expect("bring-up of a fresh modem");
    }
    BEnv { sim, modem, clock }
}

fn b_wait<T>(what: &str, mut f: impl FnMut() -> nb::Result<T, Error>) -> Result<T, Error> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(nb::Error::Other(e)) => return Err(e),
            Err(nb::Error::WouldBlock) => {
                assert!(Instant::now() < deadline, "{what}: still WouldBlock after {PATIENCE:?} (hung)");
                std::thread::sleep(Duration::from_micros(300));
            }
        }
    }
}

fn b_connect(m: &Modem, addr: SocketAddr) -> Result<TcpSocket, Error> {
    let mut st = m;
    let mut sock = st.socket()?;
    match b_wait("connect", || st.connect(&mut sock, addr)) {
        Ok(()) => Ok(sock),
        Err(e) => {
            let _ = st.close(sock);
            Err(e)
        }
    }
}

/// Sends all of `data`; `mid` runs once after the first piece went out. Returns how much the
/// stack reported sent.
fn b_send(m: &Modem, sock: &mut TcpSocket, data: &[u8], mut mid: impl FnMut()) -> (usize, Result<(), Error>) {
    let mut st = m;
    let mut sent = 0;
    let mut hooked = false;
    while sent < data.len() {
        // at most two AT+QISEND per call, so that a fault can hit the middle of the data
        let end = (sent + 2000).min(data.len());
        match b_wait("send", || st.send(sock, &data[sent..end])) {
            Ok(n) => sent += n,
            Err(e) => return (sent, Err(e)),
        }
        if !hooked {
            hooked = true;
            mid();
        }
    }
    (sent, Ok(()))
}

/// Receives until `n` bytes; `mid` runs once after the first piece arrived.
fn b_recv(m: &Modem, sock: &mut TcpSocket, n: usize, mut mid: impl FnMut()) -> (Vec<u8>, Result<(), Error>) {
    let mut st = m;
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    while got.len() < n {
        match b_wait("receive", || st.receive(sock, &mut buf)) {
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) => return (got, Err(e)),
        }
        if !got.is_empty() {
            mid();
        }
    }
    (got, Ok(()))
}

/// An echo round trip of `len` bytes on a connected socket.
fn b_echo(m: &Modem, sock: &mut TcpSocket, len: usize, seed: u8) -> Result<(), Error> {
    let data: Vec<u8> = nasty_payload(len).iter().map(|b| b.wrapping_add(seed)).collect();
    b_send(m, sock, &data, || {}).1?;
    let (got, r) = b_recv(m, sock, data.len(), || {});
    check_prefix(&got, &data, "echo");
    r
}

/// A connected socket whose peer we hold.
fn b_peer_pair(m: &Modem) -> (TcpSocket, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let sock = b_connect(m, listener.local_addr().unwrap()).expect("precondition: connect");
    let (peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    (sock, peer)
}

/// Reads everything the peer gets, in a thread.
struct PeerReader {
    handle: std::thread::JoinHandle<Vec<u8>>,
    count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    stream: TcpStream,
}

fn drain_peer(mut peer: TcpStream) -> PeerReader {
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stream = peer.try_clone().unwrap();
    let c = count.clone();
    let handle = std::thread::spawn(move || {
        let mut v = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = peer.read(&mut buf) {
            if n == 0 {
                break;
            }
            v.extend_from_slice(&buf[..n]);
            c.store(v.len(), std::sync::atomic::Ordering::SeqCst);
        }
        v
    });
    PeerReader { handle, count, stream }
}

impl PeerReader {
    /// Everything the peer got: waits until at least `at_least` bytes arrived (or 5 s), then
    /// until nothing more comes for 30 ms.
    fn finish(self, at_least: usize) -> Vec<u8> {
        let deadline = Instant::now() + Duration::from_secs(5);
        let get = || self.count.load(std::sync::atomic::Ordering::SeqCst);
        while get() < at_least && Instant::now() < deadline && !self.handle.is_finished() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut last = get();
        loop {
            std::thread::sleep(Duration::from_millis(30));
            let now = get();
            if now == last || self.handle.is_finished() {
                break;
            }
            last = now;
        }
        let _ = self.stream.shutdown(std::net::Shutdown::Read);
        self.handle.join().unwrap()
    }
}

/// Waits until the modem has `n` bytes buffered for `id` (so a peer close cannot lose them).
fn wait_buffered(sim: &Simulator, id: u8, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if sim.open_sockets().iter().any(|s| s.connect_id == id && s.rx_buffered >= n) {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("precondition: the modem never buffered {n} bytes on connectID {id}");
}

/// The measured part of an operation is over: stop its clock and let time run normally for the
/// clean-up (a close at 100x speed would time out while a late answer is still on its way).
/// (With a hung modem the clean-up waits for timeouts too: time keeps running fast then.)
fn halt(clock: &FastClock, stopped: &mut Option<u64>, f: &Fault) {
    if stopped.is_none() {
        *stopped = Some(clock.now_ms());
        if !matches!(f, Fault::Hang) {
            clock.speed(1);
        }
    }
}

fn b_op(env: &BEnv, op: Op, f: &Fault, by: Option<u8>) -> Out {
    let (sim, m, clock) = (&env.sim, &env.modem, &env.clock);
    let mut st = m;
    let t0 = clock.now_ms();
    let mut stopped = None;
    let mut note = String::new();
    let result: Result<(), Error> = match op {
        Op::BringUp => {
            arm(f, sim, clock, None, by);
            m.bring_up().map(|_| ())
        }
        Op::Connect => {
            let target = if matches!(f, Fault::PeerClose) { hangup() } else { echo() };
            arm(f, sim, clock, None, by);
            match b_connect(m, target) {
                Ok(mut sock) => {
                    let r = b_echo(m, &mut sock, 300, 1);
                    halt(clock, &mut stopped, f);
                    let _ = st.close(sock);
                    if matches!(f, Fault::PeerClose) {
                        // the peer hung up: the round trip must end with a lost connection
                        match r {
                            Err(e) if is_connection_lost(&e) => Err(e),
                            other => panic!("echo with a peer that hung up: {other:?}"),
                        }
                    } else {
                        r
                    }
                }
                Err(e) => Err(e),
            }
        }
        Op::Send => {
            let (mut sock, peer) = b_peer_pair(m);
            let id = sock.connect_id();
            let reader = drain_peer(peer);
            let data = nasty_payload(DATA_LEN);
            arm(f, sim, clock, id, by);
            let (sent, r) = b_send(m, &mut sock, &data, || arm_mid(f, sim, id));
            let hold = matches!(f, Fault::HoldAcks);
            let r = if hold && r.is_ok() {
                // Figure 1: unacknowledged data closes the connection after the checks
                let mut buf = [0u8; 64];
                match b_wait("ack supervision", || st.receive(&mut sock, &mut buf)) {
                    Err(Error::Timeout) => Ok(()),
                    other => panic!("unacknowledged data: receive gave {other:?}, expected Timeout"),
                }
            } else {
                r
            };
            halt(clock, &mut stopped, f);
            let _ = st.close(sock);
            if hold {
                sim.hold_acks(id.unwrap_or(0), false);
            }
            let got = reader.finish(sent);
            check_prefix(&got, &data, "peer's bytes");
            assert!(got.len() >= sent, "the stack reported {sent} bytes sent but the peer got {}", got.len());
            if r.is_ok() {
                assert_eq!(got.len(), data.len(), "send reported success but the peer got {} bytes", got.len());
            }
            note = format!("{sent}/{} sent", data.len());
            r
        }
        Op::Receive => {
            let (mut sock, mut peer) = b_peer_pair(m);
            let id = sock.connect_id().unwrap();
            let data = nasty_payload(DATA_LEN);
            peer.write_all(&data).unwrap();
            wait_buffered(sim, id, data.len());
            if matches!(f, Fault::PeerClose) {
                sim.close_from_peer(id);
            }
            arm(f, sim, clock, Some(id), by);
            let (got, mut r) = b_recv(m, &mut sock, data.len(), || arm_mid(f, sim, Some(id)));
            check_prefix(&got, &data, "received bytes");
            if matches!(f, Fault::PeerClose) {
                assert_eq!(got.len(), data.len(), "the peer closed after sending: all of it must be read ({r:?})");
                let mut buf = [0u8; 64];
                r = match b_wait("end of stream", || st.receive(&mut sock, &mut buf)) {
                    Err(e) => Err(e),
                    Ok(n) => panic!("{n} bytes after the end of the stream"),
                };
                assert_eq!(r, Err(Error::Closed), "after the data: Closed");
            }
            note = format!("{}/{} received", got.len(), data.len());
            halt(clock, &mut stopped, f);
            let _ = st.close(sock);
            drop(peer);
            r
        }
        Op::Serve => {
            let port = common::unused_tcp_port();
            arm(f, sim, clock, None, by);
            let mut listener = st.socket().expect("socket");
            let r = (|| {
                st.bind(&mut listener, port)?;
                st.listen(&mut listener)?;
                let client = TcpStream::connect(("127.0.0.1", port)).map_err(|_| Error::Closed)?;
                client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let peer_close = matches!(f, Fault::PeerClose);
                if peer_close {
                    client.shutdown(std::net::Shutdown::Both).unwrap();
                }
                let (mut conn, remote) = b_wait("accept", || st.accept(&mut listener))?;
                assert_eq!(remote.ip(), IpAddr::V4(Ipv4Addr::LOCALHOST));
                let id = conn.connect_id();
                let data = nasty_payload(900);
                let r = (|| {
                    let mut client = client;
                    if !peer_close {
                        client.write_all(&data).unwrap();
                    }
                    let (got, r) = b_recv(m, &mut conn, data.len(), || arm_mid(f, sim, id));
                    check_prefix(&got, &data, "accepted connection");
                    r?;
                    b_send(m, &mut conn, &got, || {}).1?;
                    let mut back = vec![0u8; data.len()];
                    client.read_exact(&mut back).map_err(|_| Error::Closed)?;
                    assert_eq!(back, data, "echo through the accepted connection");
                    Ok(())
                })();
                let _ = st.close(conn);
                r
            })();
            let _ = st.close(listener);
            r
        }
        Op::Dns => {
            arm(f, sim, clock, None, by);
            match b_wait("dns", || embedded_nal::Dns::get_host_by_name(&mut st, PEER_NAME, AddrType::IPv4)) {
                Ok(ip) => {
                    assert_eq!(ip, IpAddr::V4(Ipv4Addr::LOCALHOST), "resolved address");
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Op::Close => {
            let mut sock = b_connect(m, echo()).expect("precondition: connect");
            let id = sock.connect_id().unwrap();
            // unread data waits in the modem
            b_send(m, &mut sock, b"unread data", || {}).1.expect("precondition: send");
            wait_buffered(sim, id, 11);
            if matches!(f, Fault::PeerClose) {
                sim.close_from_peer(id);
            }
            arm(f, sim, clock, Some(id), by);
            st.close(sock)
        }
    };
    Out { result, clock_ms: stopped.unwrap_or_else(|| clock.now_ms()) - t0, note }
}

/// Invariants 4 and 5: all 12 connectIDs open again (and the modem agrees), an echo on each,
/// all closed again (and the modem agrees).
fn b_check_twelve(env: &BEnv) {
    let (sim, m) = (&env.sim, &env.modem);
    let mut st = m;
    let _ = m.poll();
    let modem_open = sim.open_sockets();
    assert!(
        modem_open.len() <= m.sockets_in_use(),
        "connectID leaked: the modem has {:?} open, the stack knows of {}",
        modem_open.iter().map(|s| s.connect_id).collect::<Vec<_>>(),
        m.sockets_in_use()
    );
    // a fresh connection and an echo round trip
    let mut one = b_connect(m, echo()).unwrap_or_else(|e| panic!("after the fault: connect: {e:?}"));
    b_echo(m, &mut one, 200, 3).unwrap_or_else(|e| panic!("after the fault: echo: {e:?}"));
    st.close(one).expect("after the fault: close");
    // all twelve at once
    let mut socks: Vec<TcpSocket> =
        (0..12).map(|i| st.socket().unwrap_or_else(|e| panic!("socket {i}: {e:?}"))).collect();
    // start all twelve opens, then wait for them
    let mut done = [false; 12];
    let deadline = Instant::now() + PATIENCE;
    while done.iter().any(|d| !d) {
        for (i, s) in socks.iter_mut().enumerate() {
            if done[i] {
                continue;
            }
            match st.connect(s, echo()) {
                Ok(()) => done[i] = true,
                Err(nb::Error::WouldBlock) => {}
                Err(nb::Error::Other(e)) => panic!("after the fault: connection {i} of 12 failed: {e:?}"),
            }
        }
        assert!(Instant::now() < deadline, "after the fault: 12 connections not open after {PATIENCE:?}");
        std::thread::sleep(Duration::from_micros(300));
    }
    let mut ids: Vec<u8> = socks.iter().map(|s| s.connect_id().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, (0..12).collect::<Vec<u8>>(), "all 12 connectIDs in use");
    let mut at_modem: Vec<u8> = sim.open_sockets().iter().map(|s| s.connect_id).collect();
    at_modem.sort();
    assert_eq!(at_modem, ids, "the modem's open connectIDs");
    for (i, s) in socks.iter_mut().enumerate() {
        b_echo(m, s, 40, i as u8).unwrap_or_else(|e| panic!("after the fault: echo on connection {i}: {e:?}"));
    }
    for s in socks {
        st.close(s).expect("close after the fault");
    }
    assert_eq!(m.sockets_in_use(), 0, "the stack still counts connectIDs in use");
    assert_eq!(sim.open_sockets(), vec![], "the modem still has connectIDs open");
}

/// One case: the operation under the fault, then every invariant.
fn b_case(env: &BEnv, op: Op, f: &Fault) -> String {
    let (sim, m, clock) = (&env.sim, &env.modem, &env.clock);
    let mut st = m;
    let mut bystander = f.bystander(op).then(|| b_connect(m, echo()).expect("precondition: bystander"));
    let by = bystander.as_ref().and_then(|s| s.connect_id());
    let restarts_before = restarts(sim);
    let real = Instant::now();
    let out = b_op(env, op, f, by);
    let real = real.elapsed();
    disarm(f, sim, clock, None);
    assert!(
        out.clock_ms <= op.budget_ms(),
        "waited {} ms on the stack's clock, more than the operation's budget of {} ms",
        out.clock_ms,
        op.budget_ms()
    );
    if f.must_succeed(op) {
        assert_eq!(out.result, Ok(()), "this fault must not make the operation fail");
    }
    if let Err(e) = &out.result {
        assert!(!matches!(e, Error::InvalidState | Error::Busy), "not a typed consequence of the fault: {e:?}");
    }
    // the bystander saw what was meant for it, and nothing else
    if let Some(mut b) = bystander.take() {
        let closed_expected = matches!(f, Fault::PeerClose) || f.urc() == Some(Urc::ClosedBystander);
        if closed_expected {
            let mut buf = [0u8; 16];
            let r = b_wait("bystander end of stream", || st.receive(&mut b, &mut buf));
            assert!(matches!(r, Err(Error::Closed)), "the bystander's \"closed\" URC was lost: receive gave {r:?}");
        } else {
            b_echo(m, &mut b, 64, 7).unwrap_or_else(|e| panic!("bystander echo: {e:?}"));
        }
        let _ = st.close(b);
    }
    // one use of the stack, then nothing may have restarted
    let _ = m.poll();
    let _ = m.contexts();
    check_no_restart(f, op, sim, restarts_before);
    if op == Op::BringUp && out.result.is_err() {
        m.bring_up().unwrap_or_else(|e| panic!("bring-up again after a failed one: {e:?}"));
    }
    b_check_twelve(env);
    format!("{:?} in {} ms (stack clock), {:?} real {}", out.result, out.clock_ms, real, out.note)
}

fn blocking_family(test: &str, family: fn(Op) -> Vec<Fault>) {
    let t0 = Instant::now();
    // the operations run side by side (each on its own simulator): most of the time is waiting
    let parts: Vec<Report> = std::thread::scope(|scope| {
        let handles: Vec<_> = Op::ALL.into_iter().map(|op| scope.spawn(move || blocking_op(op, family(op)))).collect();
        handles.into_iter().map(|h| h.join().expect("the case runner itself panicked")).collect()
    });
    println!("{test}: {:?}", t0.elapsed());
    Report::merge(parts).finish(test);
}

fn blocking_op(op: Op, faults: Vec<Fault>) -> Report {
    let mut report = Report::default();
    if faults.is_empty() {
        report.na.push(op.name().into());
        return report;
    }
    let mut env: Option<BEnv> = None;
    for f in faults {
        let name = format!("blocking / {} / {}", op.name(), f.name());
        if let Some(bug) = known_bug(false, op, &f) {
            report.skipped.push(format!("{name} (see {bug})"));
            continue;
        }
        let r = catch_unwind(AssertUnwindSafe(|| {
            if op == Op::BringUp {
                env = Some(b_env(f.bystander(op)));
            } else if env.is_none() {
                env = Some(b_env(true));
            }
            b_case(env.as_ref().unwrap(), op, &f)
        }));
        match r {
            Ok(desc) => {
                report.passed += 1;
                report.notes.push(format!("{name}: {desc}"));
            }
            Err(p) => {
                report.failed.push(format!("{name}: {}", panic_text(p)));
                env = None;
            }
        }
    }
    report
}

// -------------------------------------------------------------------------------------------
// Async front

use embedded_io_async::{Read as _, Write as _};
use embedded_nal_async::{TcpConnect, UdpStack, UnconnectedUdp};

type Conn = quectel_bg96::asynch::TcpConnection<'static, bg96_sim::HostTx, FastClock>;

#[derive(Clone)]
struct AEnv {
    sim: Simulator,
    stack: &'static FastStack,
    clock: FastClock,
}

async fn a_env(bring_up: bool) -> AEnv {
    let clock = FastClock::default();
    let (sim, stack) = sim_stack_fast(sim_config(), common::config(), clock.clone(), false).await;
    // let the boot sequence come out first, so the first AT is not lost
    tokio::time::sleep(Duration::from_millis(25)).await;
    if bring_up {
        stack.bring_up().await.expect("bring-up of a fresh modem");
    }
    AEnv { sim, stack: Box::leak(Box::new(stack)), clock }
}

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, f).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no result after {PATIENCE:?} (hung)"),
    }
}

async fn a_send(conn: &mut Conn, data: &[u8], mut mid: impl FnMut()) -> (usize, Result<(), Error>) {
    let mut sent = 0;
    while sent < data.len() {
        match within("write", conn.write(&data[sent..])).await {
            Ok(0) => return (sent, Err(Error::Closed)),
            Ok(n) => sent += n,
            Err(e) => return (sent, Err(e)),
        }
        mid();
    }
    (sent, Ok(()))
}

/// Reads until `n` bytes; `Err(Closed)` for an early end of stream.
async fn a_recv(conn: &mut Conn, n: usize, mut mid: impl FnMut()) -> (Vec<u8>, Result<(), Error>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1500];
    while got.len() < n {
        match within("read", conn.read(&mut buf)).await {
            Ok(0) => return (got, Err(Error::Closed)),
            Ok(k) => got.extend_from_slice(&buf[..k]),
            Err(e) => return (got, Err(e)),
        }
        mid();
    }
    (got, Ok(()))
}

async fn a_echo(conn: &mut Conn, len: usize, seed: u8) -> Result<(), Error> {
    let data: Vec<u8> = nasty_payload(len).iter().map(|b| b.wrapping_add(seed)).collect();
    a_send(conn, &data, || {}).await.1?;
    let (got, r) = a_recv(conn, data.len(), || {}).await;
    check_prefix(&got, &data, "echo");
    r
}

async fn a_connect(stack: &'static FastStack, addr: SocketAddr) -> Result<Conn, Error> {
    within("connect", TcpConnect::connect(stack, addr)).await
}

async fn a_peer_pair(stack: &'static FastStack) -> (Conn, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let conn = a_connect(stack, listener.local_addr().unwrap()).await.expect("precondition: connect");
    let (peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    (conn, peer)
}

async fn a_wait_buffered(sim: &Simulator, id: u8, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if sim.open_sockets().iter().any(|s| s.connect_id == id && s.rx_buffered >= n) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("precondition: the modem never buffered {n} bytes on connectID {id}");
}

async fn a_op(env: &AEnv, op: Op, f: &Fault, by: Option<u8>) -> Out {
    let (sim, stack, clock) = (&env.sim, env.stack, &env.clock);
    let t0 = clock.now_ms();
    let mut stopped = None;
    let mut note = String::new();
    let result: Result<(), Error> = match op {
        Op::BringUp => {
            arm(f, sim, clock, None, by);
            within("bring-up", stack.bring_up()).await.map(|_| ())
        }
        Op::Connect => {
            let target = if matches!(f, Fault::PeerClose) { hangup() } else { echo() };
            arm(f, sim, clock, None, by);
            match a_connect(stack, target).await {
                Ok(mut conn) => {
                    let r = a_echo(&mut conn, 300, 1).await;
                    halt(clock, &mut stopped, f);
                    drop(conn);
                    if matches!(f, Fault::PeerClose) {
                        match r {
                            Err(e) if is_connection_lost(&e) => Err(e),
                            other => panic!("echo with a peer that hung up: {other:?}"),
                        }
                    } else {
                        r
                    }
                }
                Err(e) => Err(e),
            }
        }
        Op::Send => {
            let (mut conn, peer) = a_peer_pair(stack).await;
            let id = conn.connect_id();
            let reader = drain_peer(peer);
            let data = nasty_payload(DATA_LEN);
            arm(f, sim, clock, Some(id), by);
            let mut hooked = false;
            let (sent, r) = a_send(&mut conn, &data, || {
                if !hooked {
                    hooked = true;
                    arm_mid(f, sim, Some(id));
                }
            })
            .await;
            let hold = matches!(f, Fault::HoldAcks);
            let r = if hold && r.is_ok() {
                let mut buf = [0u8; 64];
                match within("ack supervision", conn.read(&mut buf)).await {
                    Err(Error::Timeout) => Ok(()),
                    other => panic!("unacknowledged data: read gave {other:?}, expected Timeout"),
                }
            } else {
                r
            };
            if hold {
                sim.hold_acks(id, false);
            }
            halt(clock, &mut stopped, f);
            let _ = within("close", conn.close()).await;
            let got = tokio::task::spawn_blocking(move || reader.finish(sent)).await.unwrap();
            check_prefix(&got, &data, "peer's bytes");
            assert!(got.len() >= sent, "the stack reported {sent} bytes sent but the peer got {}", got.len());
            if r.is_ok() {
                assert_eq!(got.len(), data.len(), "write reported success but the peer got {} bytes", got.len());
            }
            note = format!("{sent}/{} sent", data.len());
            r
        }
        Op::Receive => {
            let (mut conn, mut peer) = a_peer_pair(stack).await;
            let id = conn.connect_id();
            let data = nasty_payload(DATA_LEN);
            peer.write_all(&data).unwrap();
            a_wait_buffered(sim, id, data.len()).await;
            if matches!(f, Fault::PeerClose) {
                sim.close_from_peer(id);
            }
            arm(f, sim, clock, Some(id), by);
            let mut hooked = false;
            let (got, mut r) = a_recv(&mut conn, data.len(), || {
                if !hooked {
                    hooked = true;
                    arm_mid(f, sim, Some(id));
                }
            })
            .await;
            check_prefix(&got, &data, "received bytes");
            if matches!(f, Fault::PeerClose) {
                assert_eq!(got.len(), data.len(), "the peer closed after sending: all of it must be read ({r:?})");
                let mut buf = [0u8; 64];
                r = match within("end of stream", conn.read(&mut buf)).await {
                    Ok(0) => Err(Error::Closed),
                    other => panic!("after the data: {other:?}, expected the end of the stream"),
                };
            }
            note = format!("{}/{} received", got.len(), data.len());
            halt(clock, &mut stopped, f);
            let _ = within("close", conn.close()).await;
            drop(peer);
            r
        }
        Op::Serve => {
            let port = common::unused_udp_port();
            arm(f, sim, clock, None, by);
            let r: Result<(), Error> = async {
                let (local, mut sock) =
                    within("bind", stack.bind_single(SocketAddr::from(([0, 0, 0, 0], port)))).await?;
                let id = sim
                    .open_sockets()
                    .iter()
                    .find(|s| s.local_addr.map(|a| a.port()) == Some(port))
                    .map(|s| s.connect_id);
                let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
                peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let service = SocketAddr::from(([127, 0, 0, 1], port));
                let r = async {
                    for (i, len) in [1usize, 700, 1460].into_iter().enumerate() {
                        let d: Vec<u8> = nasty_payload(len).iter().map(|b| b.wrapping_add(i as u8)).collect();
                        peer.send_to(&d, service).unwrap();
                        let mut buf = [0u8; 1500];
                        let (n, to, from) = within("receive_into", sock.receive_into(&mut buf)).await?;
                        if i == 0 {
                            arm_mid(f, sim, id);
                        }
                        assert_eq!(to, local);
                        assert_eq!(from, peer.local_addr().unwrap(), "sender");
                        assert_eq!(&buf[..n], &d[..], "datagram {i}");
                        within("send", sock.send(local, from, &buf[..n])).await?;
                        let mut back = [0u8; 1500];
                        let (k, _) = peer.recv_from(&mut back).map_err(|_| Error::Closed)?;
                        assert_eq!(&back[..k], &d[..], "echoed datagram {i}");
                    }
                    Ok::<(), Error>(())
                }
                .await;
                drop(sock);
                r
            }
            .await;
            r
        }
        Op::Dns => {
            arm(f, sim, clock, None, by);
            match within(
                "dns",
                embedded_nal_async::Dns::get_host_by_name(stack, PEER_NAME, embedded_nal_async::AddrType::IPv4),
            )
            .await
            {
                Ok(ip) => {
                    assert_eq!(ip, IpAddr::V4(Ipv4Addr::LOCALHOST), "resolved address");
                    Ok(())
                }
                Err(e) => Err(e),
            }
        }
        Op::Close => {
            let mut conn = a_connect(stack, echo()).await.expect("precondition: connect");
            let id = conn.connect_id();
            a_send(&mut conn, b"unread data", || {}).await.1.expect("precondition: write");
            a_wait_buffered(sim, id, 11).await;
            if matches!(f, Fault::PeerClose) {
                sim.close_from_peer(id);
            }
            arm(f, sim, clock, Some(id), by);
            within("close", conn.close()).await
        }
    };
    Out { result, clock_ms: stopped.unwrap_or_else(|| clock.now_ms()) - t0, note }
}

async fn a_check_twelve(env: &AEnv) {
    let (sim, stack) = (&env.sim, env.stack);
    // dropped connections are closed by the runner: wait for it
    let _ = within("flush_closes", stack.flush_closes()).await;
    let modem_open = sim.open_sockets();
    assert!(
        modem_open.len() <= stack.sockets_in_use(),
        "connectID leaked: the modem has {:?} open, the stack knows of {}",
        modem_open.iter().map(|s| s.connect_id).collect::<Vec<_>>(),
        stack.sockets_in_use()
    );
    // a fresh connection and an echo round trip
    let mut one = a_connect(stack, echo()).await.unwrap_or_else(|e| panic!("after the fault: connect: {e:?}"));
    a_echo(&mut one, 200, 3).await.unwrap_or_else(|e| panic!("after the fault: echo: {e:?}"));
    within("close", one.close()).await.expect("after the fault: close");
    // all twelve at once, from twelve tasks
    let tasks: Vec<_> =
        (0..12).map(|i| tokio::task::spawn_local(async move { (i, a_connect(stack, echo()).await) })).collect();
    let mut conns = Vec::new();
    for t in tasks {
        let (i, r) = t.await.unwrap();
        conns.push(r.unwrap_or_else(|e| panic!("after the fault: connection {i} of 12 failed: {e:?}")));
    }
    let mut ids: Vec<u8> = conns.iter().map(|c| c.connect_id()).collect();
    ids.sort();
    assert_eq!(ids, (0..12).collect::<Vec<u8>>(), "all 12 connectIDs in use");
    let mut at_modem: Vec<u8> = sim.open_sockets().iter().map(|s| s.connect_id).collect();
    at_modem.sort();
    assert_eq!(at_modem, ids, "the modem's open connectIDs");
    for (i, c) in conns.iter_mut().enumerate() {
        a_echo(c, 40, i as u8).await.unwrap_or_else(|e| panic!("after the fault: echo on connection {i}: {e:?}"));
    }
    for c in conns {
        within("close", c.close()).await.expect("close after the fault");
    }
    assert_eq!(stack.sockets_in_use(), 0, "the stack still counts connectIDs in use");
    assert_eq!(sim.open_sockets(), vec![], "the modem still has connectIDs open");
}

async fn a_case(env: AEnv, op: Op, f: Fault) -> String {
    let (sim, stack, clock) = (&env.sim, env.stack, &env.clock);
    let mut bystander =
        if f.bystander(op) { Some(a_connect(stack, echo()).await.expect("precondition: bystander")) } else { None };
    let by = bystander.as_ref().map(|c| c.connect_id());
    let restarts_before = restarts(sim);
    let real = Instant::now();
    let out = a_op(&env, op, &f, by).await;
    let real = real.elapsed();
    disarm(&f, sim, clock, None);
    assert!(
        out.clock_ms <= op.budget_ms(),
        "waited {} ms on the stack's clock, more than the operation's budget of {} ms",
        out.clock_ms,
        op.budget_ms()
    );
    if f.must_succeed(op) {
        assert_eq!(out.result, Ok(()), "this fault must not make the operation fail");
    }
    if let Err(e) = &out.result {
        assert!(!matches!(e, Error::InvalidState | Error::Busy), "not a typed consequence of the fault: {e:?}");
    }
    if let Some(mut b) = bystander.take() {
        let closed_expected = matches!(f, Fault::PeerClose) || f.urc() == Some(Urc::ClosedBystander);
        if closed_expected {
            let mut buf = [0u8; 16];
            let r = within("bystander end of stream", b.read(&mut buf)).await;
            assert!(matches!(r, Ok(0)), "the bystander's \"closed\" URC was lost: read gave {r:?}");
        } else {
            a_echo(&mut b, 64, 7).await.unwrap_or_else(|e| panic!("bystander echo: {e:?}"));
        }
        drop(b);
    }
    let _ = within("contexts", stack.contexts()).await;
    check_no_restart(&f, op, sim, restarts_before);
    if op == Op::BringUp && out.result.is_err() {
        within("bring-up", stack.bring_up())
            .await
            .unwrap_or_else(|e| panic!("bring-up again after a failed one: {e:?}"));
    }
    a_check_twelve(&env).await;
    format!("{:?} in {} ms (stack clock), {:?} real {}", out.result, out.clock_ms, real, out.note)
}

fn async_family(test: &str, family: fn(Op) -> Vec<Fault>) {
    let t0 = Instant::now();
    let parts: Vec<Report> = std::thread::scope(|scope| {
        let handles: Vec<_> = Op::ALL.into_iter().map(|op| scope.spawn(move || async_op(op, family(op)))).collect();
        handles.into_iter().map(|h| h.join().expect("the case runner itself panicked")).collect()
    });
    println!("{test}: {:?}", t0.elapsed());
    Report::merge(parts).finish(test);
}

fn async_op(op: Op, faults: Vec<Fault>) -> Report {
    let mut report = Report::default();
    if faults.is_empty() {
        report.na.push(op.name().into());
        return report;
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let mut env: Option<AEnv> = None;
        for f in faults {
            let name = format!("async / {} / {}", op.name(), f.name());
            if let Some(bug) = known_bug(true, op, &f) {
                report.skipped.push(format!("{name} (see {bug})"));
                continue;
            }
            let fresh = op == Op::BringUp || env.is_none();
            let prev = env.clone();
            let bystander = f.bystander(op);
            let task = tokio::task::spawn_local(async move {
                let env = match prev {
                    Some(e) if !fresh => e,
                    _ => a_env(op != Op::BringUp || bystander).await,
                };
                let desc = a_case(env.clone(), op, f).await;
                (env, desc)
            });
            match task.await {
                Ok((e, desc)) => {
                    report.passed += 1;
                    report.notes.push(format!("{name}: {desc}"));
                    env = Some(e);
                }
                Err(j) => {
                    let text = if j.is_panic() { panic_text(j.into_panic()) } else { "cancelled".into() };
                    report.failed.push(format!("{name}: {text}"));
                    env = None;
                }
            }
        }
    });
    drop(local);
    drop(rt);
    report
}

// -------------------------------------------------------------------------------------------
// The tests: one per fault family and front.

macro_rules! matrix {
    ($($blocking:ident, $asynch:ident => $family:ident;)*) => {
        $(
            #[test]
            fn $blocking() {
                blocking_family(stringify!($blocking), $family);
            }
            #[test]
            fn $asynch() {
                async_family(stringify!($asynch), $family);
            }
        )*
    };
}

matrix! {
    blocking_peer_close, async_peer_close => fam_peer_close;
    blocking_pdpdeact, async_pdpdeact => fam_pdpdeact;
    blocking_reboot, async_reboot => fam_reboot;
    blocking_send_fail, async_send_fail => fam_send_fail;
    blocking_delayed_response, async_delayed_response => fam_delay;
    blocking_late_response, async_late_response => fam_late;
    blocking_dropped_response, async_dropped_response => fam_drop;
    blocking_dropped_deferred_result, async_dropped_deferred_result => fam_drop_deferred;
    blocking_failed_command, async_failed_command => fam_fail;
    blocking_urc_between_lines, async_urc_between_lines => fam_urc_between;
    blocking_urc_after_final, async_urc_after_final => fam_urc_after_final;
    blocking_stray_urcs, async_stray_urcs => fam_stray;
    blocking_chunked_output, async_chunked_output => fam_chunking;
    blocking_garbage, async_garbage => fam_garbage;
    blocking_unacknowledged_data, async_unacknowledged_data => fam_hold_acks;
    blocking_hung_modem, async_hung_modem => fam_hang;
}

// -------------------------------------------------------------------------------------------
// Reproducers of the bugs the matrix found, each the smallest test that showed one. All are
// fixed; the doc comments describe the bug as found and what the test now holds the stack to.

fn repro_modem(policy: Option<quectel_bg96::recovery::RebootPolicy>) -> (Simulator, Modem, FastClock) {
    let (sim, port) = Simulator::spawn(sim_config());
    std::thread::sleep(Duration::from_millis(25));
    let clock = FastClock::default();
    let mut config = common::config();
    if let Some(p) = policy {
        config.recovery = p;
    }
    let modem = Bg96::new(common::PoliteSerial(port), clock.clone(), config);
    modem.bring_up().expect("bring-up");
    (sim, modem, clock)
}

/// A noise line longer than the line buffer (384 bytes) makes whatever command is running
/// fail with `Overflow`, even `AT+QIOPEN`, which has no information lines at all (so the
/// overlong line cannot be part of its answer). On the wire: 1000 bytes of noise, then
/// `\r\nOK\r\n` and `+QIOPEN: 0,0` -- the stack returns `Err(Overflow)` from `connect` (and
/// the connection it did open is closed again later). Expected: the overlong line is counted
/// (`Stats::line_overflows`) and dropped; a command fails with `Overflow` only if the lost line
/// could have been its answer (it starts with the command's prefix).
#[test]
fn regression_overlong_noise_line_fails_the_running_command() {
    let (sim, modem, _clock) = repro_modem(None);
    sim.emit_garbage(&[b'x'; 1000]);
    let r = b_connect(&modem, echo());
    assert_eq!(modem.stats().line_overflows, 1);
    let mut sock = r.expect("connect after a line of noise");
    b_echo(&modem, &mut sock, 10, 0).unwrap();
}

/// `AT+QIOPEN` that gets no answer at all: after its timeout the stack frees the connectID
/// without `AT+QICLOSE`, but the modem did open the socket. The connectID stays open at the
/// modem (a leak the stack does not know of) until the stack picks that id again; then the
/// modem answers `+QIOPEN: 0,563` (in use) and that connect fails with
/// `Modem(SocketIdentityUsed)` instead of using another id. Expected: a timed-out
/// `AT+QIOPEN` leaves the slot to be closed (`AT+QICLOSE`, as Figure 1 does for a missing
/// `+QIOPEN`), and a deferred 563 is retried on another connectID like an immediate one.
#[test]
fn regression_unanswered_qiopen_leaks_the_connect_id() {
    let (sim, modem, clock) = repro_modem(None);
    sim.drop_response("AT+QIOPEN");
    clock.speed(SPEED);
    assert_eq!(b_connect(&modem, echo()).err(), Some(Error::Timeout));
    clock.speed(1);
    modem.poll().unwrap();
    let open: Vec<u8> = sim.open_sockets().iter().map(|s| s.connect_id).collect();
    let known = modem.sockets_in_use();
    let second = b_connect(&modem, echo());
    assert!(open.len() <= known, "connectID leaked: the modem has {open:?} open, the stack knows of {known}");
    second.expect("the next connect");
}

/// A `pdpdeact` the stack has not read yet when `connect` starts: `AT+QIOPEN` goes out for a
/// dead context (the blocking `connect` does not process pending input first), its socket is
/// given up when the URC is read (`ContextDeactivated`, fine), and `AT+QICLOSE` frees the id at
/// once. The next connect re-activates the context and reuses connectID 0 -- and the late
/// `+QIOPEN: 0,561` of the first attempt arrives and is taken as its result:
/// `Err(Modem(OpenPdpContextFailed))`, although the modem then reports `+QIOPEN: 0,0` for it.
/// Expected: a connectID whose `+QIOPEN` is still outstanding is not reused until that result
/// came (or its 150 s ran out, or `AT+QICLOSE` succeeded); and operations look at pending URCs
/// before they send. (bg96-sim used to send that late result even after the `AT+QICLOSE`; it
/// now keeps the connectID "Opening" until the result and sends none after a close, like a
/// refused connect.)
#[test]
fn regression_stale_qiopen_result_is_taken_for_the_reused_connect_id() {
    let (sim, modem, _clock) = repro_modem(None);
    sim.pdp_deactivate(1);
    let first = b_connect(&modem, echo());
    assert!(matches!(first, Err(Error::ContextDeactivated(1)) | Ok(_)), "{:?}", first.as_ref().err());
    if let Ok(s) = first {
        let mut st = &modem;
        st.close(s).unwrap();
    }
    let mut sock = b_connect(&modem, echo()).expect("connect after the context came back");
    b_echo(&modem, &mut sock, 10, 0).unwrap();
}

/// `AT+QISEND=0,5` whose `> ` prompt never comes (the modem is waiting for the payload all
/// the same). Found by the matrix: the stack used to carry on as if the modem were in command
/// mode, so its next command line (`AT+QICLOSE=0\r`) became payload and the connectID leaked.
/// Now a payload that cannot run a command (no `AT`, no `A/`) completes the send itself: the
/// peer gets exactly `hello` once and the send succeeds when `SEND OK` follows.
#[test]
fn regression_lost_send_prompt_is_completed_with_an_inert_payload() {
    let (sim, modem, clock) = repro_modem(None);
    let (mut sock, peer) = b_peer_pair(&modem);
    let reader = drain_peer(peer);
    sim.drop_response("AT+QISEND");
    clock.speed(SPEED);
    let (_, r) = b_send(&modem, &mut sock, b"hello", || {});
    clock.speed(1);
    assert_eq!(r, Ok(()), "the modem took the payload and answered SEND OK");
    let mut st = &modem;
    st.close(sock).unwrap();
    let got = reader.finish(0);
    assert_eq!(got, b"hello", "the peer gets the payload exactly once");
    modem.poll().unwrap();
    assert_eq!(sim.open_sockets().len(), modem.sockets_in_use(), "connectID leaked at the modem");
}

/// The same lost prompt with a payload that would be a command line if the modem were in
/// command mode (`AT+QPOWD`): it is never written blind. CRs complete the send instead, the
/// send fails with `Timeout`, the connection is given up (further sends fail), and closing it
/// releases the connectID at the modem.
#[test]
fn regression_lost_send_prompt_never_writes_a_command_like_payload() {
    let (sim, modem, clock) = repro_modem(None);
    let (mut sock, peer) = b_peer_pair(&modem);
    let reader = drain_peer(peer);
    sim.drop_response("AT+QISEND");
    clock.speed(SPEED);
    let (_, r) = b_send(&modem, &mut sock, b"x\rAT+QPOWD=1\r", || {});
    clock.speed(1);
    assert_eq!(r, Err(Error::Timeout));
    let mut st = &modem;
    assert!(st.send(&mut sock, b"more").is_err(), "a send after a broken one must fail");
    st.close(sock).unwrap();
    let got = reader.finish(0);
    assert!(got.iter().all(|&b| b == b'\r'), "only filler may reach the peer, got {:?}", String::from_utf8_lossy(&got));
    assert_eq!(sim.stats().command_counts.get("AT+QPOWD").copied().unwrap_or(0), 0, "the payload ran as a command");
    modem.poll().unwrap();
    assert_eq!(sim.open_sockets().len(), modem.sockets_in_use(), "connectID leaked at the modem");
    let mut sock = b_connect(&modem, echo()).expect("connect after the broken send");
    b_echo(&modem, &mut sock, 10, 0).unwrap();
}

/// Figure 1 ACK supervision gives a connection up (`Timeout`) and queues its close; `close()`
/// of the handle then returns `Ok` without sending `AT+QICLOSE` (the slot is no longer the
/// handle's), so the connection stays open at the modem, and the peer never sees the end of
/// it, until some later `connect` happens to reclaim pending slots. Expected: `close()` (or
/// the supervision itself) closes it at the modem.
#[test]
fn regression_close_after_ack_timeout_leaves_the_connection_open() {
    let policy = quectel_bg96::recovery::RebootPolicy { ack_interval_ms: 50, ack_checks: 3, ..Default::default() };
    let (sim, modem, _clock) = repro_modem(Some(policy));
    let (mut sock, _peer) = b_peer_pair(&modem);
    let id = sock.connect_id().unwrap();
    sim.hold_acks(id, true);
    b_send(&modem, &mut sock, b"hello", || {}).1.unwrap();
    let mut st = &modem;
    let mut buf = [0u8; 8];
    assert_eq!(b_wait("supervision", || st.receive(&mut sock, &mut buf)), Err(Error::Timeout));
    st.close(sock).unwrap();
    assert_eq!(sim.open_sockets(), vec![], "the connection is still open at the modem after close()");
}

/// The modem hangs and is power-cycled; the first use of the stack after that races with the
/// boot: the `AT` check (Figure 1: a command went unanswered) is cut short by the modem's
/// `RDY`, the stack concludes it must reboot the modem, sends `AT+CFUN=1,1` (answered `ERROR`:
/// the modem is before `APP RDY`), and then waits the whole sync time (30 s) for a `RDY` that
/// cannot come (nothing rebooted) before bringing the modem up. Same on the async front.
/// Expected: an `RDY` seen during the check means the modem is alive and just booted: bring it
/// up; and a failed `AT+CFUN=1,1` without reset lines does not wait for a reboot.
#[test]
fn regression_first_use_after_a_power_cycle_waits_30_s() {
    let (sim, modem, clock) = repro_modem(None);
    sim.hang();
    clock.speed(SPEED);
    assert_eq!(b_connect(&modem, echo()).err(), Some(Error::Timeout));
    clock.speed(1);
    sim.reboot(); // the board's watchdog power-cycles the modem
    let t0 = Instant::now();
    let contexts = modem.contexts();
    assert!(t0.elapsed() < Duration::from_secs(5), "the first use after the power cycle took {:?}", t0.elapsed());
    assert_eq!(contexts.map(|c| c.len()), Ok(1));
}

/// Runs an async reproducer on a fresh runtime.
fn run_async<F: std::future::Future<Output = ()>>(f: F) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    tokio::task::LocalSet::new().block_on(&rt, f);
}

/// Async: after a `pdpdeact`, several tasks connect at once. Each one sees the context down
/// and re-activates it itself: three `AT+QIDEACT=1`, three `AT+QIACT?`, three `AT+QIACT=1` --
/// the second and third `AT+QIACT=1` answer `ERROR` (the context is active by then) and those
/// connects fail with `Failed` (whose `AT+QIGETERROR` even says 0, see the next bug). Worse,
/// a late `AT+QIDEACT` can deactivate the context another task has just activated. Expected:
/// the re-activation runs once (like bring-up, under `exclusively`), the others wait for it.
#[test]
fn regression_async_concurrent_reactivation_after_pdpdeact() {
    run_async(async {
        let env = a_env(true).await;
        env.sim.pdp_deactivate(1);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let stack = env.stack;
        let tasks: Vec<_> =
            (0..3).map(|_| tokio::task::spawn_local(async move { a_connect(stack, echo()).await.map(drop) })).collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), Ok(()), "connect {i}");
        }
    });
}

/// Async: `AT+QIGETERROR` after a bare `ERROR` is a separate turn of the command channel, so
/// another task's command can run in between and the code read is that other command's
/// (typically 0, "operation successful"): the failed operation reports `Failed` (or `Closed`
/// for a send) instead of the manual's code. Here a DNS lookup fails with 565 while another
/// task reads `AT+QIACT?`; the lookup must report `Modem(DnsParseFailed)`. Expected: the
/// failing command and its `AT+QIGETERROR` hold the channel together.
#[test]
fn regression_async_qigeterror_reads_another_commands_code() {
    run_async(async {
        let env = a_env(true).await;
        let stack = env.stack;
        env.sim.fail_next("AT+QIDNSGIP", 1, 565);
        let busy = tokio::task::spawn_local(async move {
            for _ in 0..20 {
                let _ = stack.contexts().await;
            }
        });
        tokio::task::yield_now().await;
        let r = embedded_nal_async::Dns::get_host_by_name(stack, PEER_NAME, embedded_nal_async::AddrType::IPv4).await;
        busy.await.unwrap();
        assert_eq!(r, Err(Error::Modem(quectel_bg96::ErrorCode::DnsParseFailed)));
    });
}

/// Async: a `+QIURC: "recv",9` for a socket the stack does not know (left open by an earlier
/// run of the host, before an MCU reset) queues a close of connectID 9; bring-up then frees
/// the slot, and the runner's `AT+QICLOSE=9`, still waiting for its turn, goes out after a new
/// connection has taken connectID 9 -- and when it completes, `close_slot` frees whatever is in
/// slot 9 now: the new connection's handle is stale, its `+QIOPEN: 9,0` finds the slot free,
/// the runner closes it again, and that connect fails with `Closed`. Expected: a queued close
/// only acts on the generation of the slot it was queued for (and bring-up does not free
/// slots whose close is queued, or cancels the close).
#[test]
fn regression_async_queued_close_kills_the_connection_that_reused_the_id() {
    run_async(async {
        let env = a_env(false).await;
        env.sim.inject_urc(InjectPoint::Now, "+QIURC: \"recv\",9");
        env.stack.bring_up().await.unwrap();
        let stack = env.stack;
        let tasks: Vec<_> = (0..12)
            .map(|_| tokio::task::spawn_local(async move { a_connect(stack, echo()).await.map(std::mem::forget) }))
            .collect();
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap(), Ok(()), "connect {i}");
        }
    });
}

// -------------------------------------------------------------------------------------------
// Bounded memory: a URC flood and a modem that never stops talking.
//
// How "cannot grow" is checked: the driver is `no_std` without `alloc`; everything it keeps is
// in fixed-size `heapless` buffers inside `Bg96` / `Resources` (line buffer 384 bytes, response
// buffer 1 KiB, 12 socket slots, a 1500-byte staging buffer, 24 wakers), so its memory is
// fixed when the stack is created and no input can make it allocate. These tests check the
// consequences under 100 000 URCs and an endless stream of lines: the stack keeps answering
// within its timeouts, its counters account for every line, and (as a smoke check of the
// whole process) the resident set does not grow by more than a few MiB.

/// `n` lines of URC flood: spurious `recv` URCs for the open connection `id`, unknown lines,
/// known URCs that change nothing.
fn flood_lines(id: u8, n: usize) -> Vec<u8> {
    let kinds: [String; 4] = [
        format!("\r\n+QIURC: \"recv\",{id}\r\n"),
        "\r\n+QIND: \"csq\",20,99\r\n".to_string(),
        format!("\r\n+UNKNOWN: {}\r\n", "z".repeat(200)),
        "\r\n+QIURC: \"dnsgip\",0,1,600\r\n".to_string(),
    ];
    let mut v = Vec::new();
    for i in 0..n {
        v.extend_from_slice(kinds[i % kinds.len()].as_bytes());
    }
    v
}

const FLOOD: usize = 100_000;
const FLOOD_BATCH: usize = 2_500;

/// Streams unknown lines without pause from a thread until `stop`.
fn endless_talker(sim: Simulator, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let line = b"\r\n+QIND: \"csq\",20,99\r\n\r\n+CHATTY: never stops talking\r\n".repeat(20);
        let mut sent = 0u64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            sim.emit_garbage(&line);
            sent += 40;
            std::thread::sleep(Duration::from_millis(2));
        }
        sent
    })
}

#[test]
fn blocking_urc_flood_and_endless_talker_cannot_grow_anything() {
    let env = b_env(true);
    let (sim, m) = (&env.sim, &env.modem);
    let mut sock = b_connect(m, echo()).unwrap();
    let id = sock.connect_id().unwrap();
    let rss0 = common::rss_kib();
    let before = m.stats();
    let t0 = Instant::now();
    for batch in 0..FLOOD / FLOOD_BATCH {
        sim.emit_garbage(&flood_lines(id, FLOOD_BATCH));
        let t = Instant::now();
        b_echo(m, &mut sock, 100, batch as u8).unwrap_or_else(|e| panic!("echo during the flood: {e:?}"));
        assert!(t.elapsed() < Duration::from_secs(5), "batch {batch}: an echo took {:?}", t.elapsed());
    }
    let flood_time = t0.elapsed();
    m.poll().unwrap();
    let after = m.stats();
    let handled = (after.urcs - before.urcs) + (after.unknown_lines - before.unknown_lines);
    assert!(handled as usize >= FLOOD, "only {handled} of {FLOOD} flood lines accounted for");
    assert_eq!(after.line_overflows, before.line_overflows);
    // a modem that never stops talking
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let talker = endless_talker(sim.clone(), stop.clone());
    let mut st = m;
    let talking = Instant::now();
    for round in 0.. {
        if round >= 20 && talking.elapsed() > Duration::from_secs(1) {
            break;
        }
        let t = Instant::now();
        b_echo(m, &mut sock, 500, round as u8).unwrap_or_else(|e| panic!("echo while the modem talks: {e:?}"));
        let ip = b_wait("dns", || embedded_nal::Dns::get_host_by_name(&mut st, PEER_NAME, AddrType::IPv4));
        assert_eq!(ip, Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(t.elapsed() < Duration::from_secs(5), "round {round} took {:?}", t.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let chatter = talker.join().unwrap();
    st.close(sock).unwrap();
    let rss1 = common::rss_kib();
    println!(
        "blocking flood: {FLOOD} URC lines in {flood_time:?}, {chatter} lines of chatter; stats {:?}; RSS {rss0} -> {rss1} KiB",
        m.stats()
    );
    assert!(rss1.saturating_sub(rss0) < 64 * 1024, "the process grew by {} KiB", rss1 - rss0);
    b_check_twelve(&env);
}

#[test]
fn async_urc_flood_and_endless_talker_cannot_grow_anything() {
    run_async(async {
        let env = a_env(true).await;
        let (sim, stack) = (env.sim.clone(), env.stack);
        let mut conn = a_connect(stack, echo()).await.unwrap();
        let id = conn.connect_id();
        let rss0 = common::rss_kib();
        let before = stack.stats();
        let t0 = Instant::now();
        for batch in 0..FLOOD / FLOOD_BATCH {
            sim.emit_garbage(&flood_lines(id, FLOOD_BATCH));
            let t = Instant::now();
            a_echo(&mut conn, 100, batch as u8).await.unwrap_or_else(|e| panic!("echo during the flood: {e:?}"));
            assert!(t.elapsed() < Duration::from_secs(5), "batch {batch}: an echo took {:?}", t.elapsed());
        }
        let flood_time = t0.elapsed();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let after = stack.stats();
        let handled = (after.urcs - before.urcs) + (after.unknown_lines - before.unknown_lines);
        assert!(handled as usize >= FLOOD, "only {handled} of {FLOOD} flood lines accounted for");
        assert_eq!(after.line_overflows, before.line_overflows);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let talker = endless_talker(sim.clone(), stop.clone());
        let talking = Instant::now();
        for round in 0.. {
            if round >= 20 && talking.elapsed() > Duration::from_secs(1) {
                break;
            }
            let t = Instant::now();
            a_echo(&mut conn, 500, round as u8).await.unwrap_or_else(|e| panic!("echo while the modem talks: {e:?}"));
            let ip = within(
                "dns",
                embedded_nal_async::Dns::get_host_by_name(stack, PEER_NAME, embedded_nal_async::AddrType::IPv4),
            )
            .await;
            assert_eq!(ip, Ok(IpAddr::V4(Ipv4Addr::LOCALHOST)));
            assert!(t.elapsed() < Duration::from_secs(5), "round {round} took {:?}", t.elapsed());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let chatter = tokio::task::spawn_blocking(move || talker.join().unwrap()).await.unwrap();
        within("close", conn.close()).await.unwrap();
        let rss1 = common::rss_kib();
        println!(
            "async flood: {FLOOD} URC lines in {flood_time:?}, {chatter} lines of chatter; stats {:?}; RSS {rss0} -> {rss1} KiB",
            stack.stats()
        );
        assert!(rss1.saturating_sub(rss0) < 64 * 1024, "the process grew by {} KiB", rss1 - rss0);
        a_check_twelve(&env).await;
    });
}

/// The stack's own memory is fixed when it is created: its size, whatever goes through it.
#[test]
fn the_stacks_are_fixed_size() {
    let blocking = std::mem::size_of::<Bg96<HostPort, FastClock>>();
    let resources = std::mem::size_of::<quectel_bg96::asynch::Resources<bg96_sim::HostTx, FastClock>>();
    println!("Bg96: {blocking} bytes, asynch::Resources: {resources} bytes (all state, no heap)");
    assert!(blocking < 16 * 1024 && resources < 16 * 1024);
}
