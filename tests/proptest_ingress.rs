//! Property tests of the byte ingress (issue 7).
//!
//! A generator builds *valid* modem output: final results, information lines with and without
//! command echo, URCs of every kind, `+QIRD` answers (TCP and `"UDP SERVICE"` forms, empty reads,
//! errors) whose payloads are made of AT framing and arbitrary bytes, sends with their prompt
//! (with and without the space, with payload echo), direct-push frames for the sockets marked
//! push and `"UDP SERVICE"` pushes, and transparent sessions ended by `NO CARRIER` or by the
//! escape's `OK`. The engine's expectations are set where the engine sets them (before each
//! command's answer). Each part of the output carries the events it must produce.
//!
//! * The output, fed whole, split at random points, and fed byte by byte, yields exactly the
//!   expected events (adjacent payload chunks merged), also with URCs inserted at random line
//!   boundaries.
//! * URCs inserted at line boundaries come out as URC lines and leave every payload, header and
//!   final result as it was.
//! * The payload of every `+QIRD` answer and direct-push frame reaches the engine's sink
//!   byte-exact, for all 256 byte values, however the input is split.
//!
//! The runs use a fixed seed (`DEFAULT_SEED`) so that the suite is reproducible; set
//! `PROPTEST_RNG_SEED=<u64>` to draw other inputs.

use std::net::{IpAddr, SocketAddr};

use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed};
use quectel_bg96::commands::{AccessMode, ServiceType};
use quectel_bg96::core::{Core, DataSink, Kind};
use quectel_bg96::ingress::{Event, Final, Ingress};
use quectel_bg96::socket::SlotState;
use quectel_bg96::urc;

// ---------------------------------------------------------------------------------------------
// Events

/// An owned copy of an [`Event`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Line(Vec<u8>),
    Echo,
    Final(Final),
    Prompt,
    ReadHeader(usize, Option<SocketAddr>),
    PushHeader(u8, usize, Option<SocketAddr>),
    Data(Vec<u8>),
    DataEnd,
    Transparent(Vec<u8>),
    LineOverflow,
}

fn own(e: &Event<'_>) -> Ev {
    match *e {
        Event::Line(l) => Ev::Line(l.to_vec()),
        Event::Echo => Ev::Echo,
        Event::Final(f) => Ev::Final(f),
        Event::Prompt => Ev::Prompt,
        Event::ReadHeader { len, remote } => Ev::ReadHeader(len, remote),
        Event::PushHeader { connect_id, len, remote } => Ev::PushHeader(connect_id, len, remote),
        Event::Data(d) => Ev::Data(d.to_vec()),
        Event::DataEnd => Ev::DataEnd,
        Event::Transparent(d) => Ev::Transparent(d.to_vec()),
        Event::LineOverflow(_) => Ev::LineOverflow,
    }
}

/// Appends `ev`, merging adjacent `Data` and adjacent `Transparent` chunks and dropping empty
/// ones: the result does not depend on where the input was split.
fn push_normalised(out: &mut Vec<Ev>, ev: Ev) {
    match (ev, out.last_mut()) {
        (Ev::Data(d) | Ev::Transparent(d), _) if d.is_empty() => {}
        (Ev::Data(d), Some(Ev::Data(prev))) => prev.extend_from_slice(&d),
        (Ev::Transparent(d), Some(Ev::Transparent(prev))) => prev.extend_from_slice(&d),
        (ev, _) => out.push(ev),
    }
}

// ---------------------------------------------------------------------------------------------
// Modem output with the events it must produce

/// What the engine tells the ingress before a command's answer arrives.
#[derive(Debug, Clone, Copy)]
enum Op {
    Prompt,
    Read,
    PayloadEcho(usize),
    PushMask(u16),
    Transparent,
    Escape,
}

/// A piece of output that nothing can interrupt, with its events.
#[derive(Debug, Clone)]
struct Atom {
    bytes: Vec<u8>,
    events: Vec<Ev>,
    /// Whether a URC may arrive just before it (at a line boundary, not in payload, echo or
    /// transparent data).
    urc_before: bool,
}

/// The answer to one command: the engine's expectations, then the output.
#[derive(Debug, Clone)]
struct Seg {
    ops: Vec<Op>,
    atoms: Vec<Atom>,
}

#[derive(Debug, Clone)]
struct Session {
    segs: Vec<Seg>,
}

fn atom(bytes: impl Into<Vec<u8>>, events: Vec<Ev>) -> Atom {
    Atom { bytes: bytes.into(), events, urc_before: true }
}

fn line(text: &str) -> Atom {
    atom(format!("\r\n{text}\r\n"), vec![Ev::Line(text.as_bytes().to_vec())])
}

fn final_atom(text: &str, f: Final) -> Atom {
    atom(format!("\r\n{text}\r\n"), vec![Ev::Final(f)])
}

/// The modem echoing a command line (echo on): `<cmd>\r`, completed by the next line's CRLF.
fn echo_atom(cmd: &str) -> Atom {
    atom(format!("{cmd}\r"), vec![Ev::Echo])
}

impl Session {
    /// The bytes, and the operations to apply before the byte at each position.
    fn stream(&self) -> (Vec<u8>, Vec<(usize, Op)>) {
        let mut bytes = Vec::new();
        let mut ops = Vec::new();
        for seg in &self.segs {
            ops.extend(seg.ops.iter().map(|&op| (bytes.len(), op)));
            for a in &seg.atoms {
                bytes.extend_from_slice(&a.bytes);
            }
        }
        (bytes, ops)
    }

    fn expected(&self) -> Vec<Ev> {
        let mut out = Vec::new();
        for ev in self.segs.iter().flat_map(|s| &s.atoms).flat_map(|a| &a.events) {
            push_normalised(&mut out, ev.clone());
        }
        out
    }

    /// Where a URC may be inserted: before the atom `(seg, atom)`; `(segs.len(), 0)` is the end.
    fn urc_slots(&self) -> Vec<(usize, usize)> {
        let mut slots: Vec<(usize, usize)> = self
            .segs
            .iter()
            .enumerate()
            .flat_map(|(s, seg)| seg.atoms.iter().enumerate().filter(|(_, a)| a.urc_before).map(move |(a, _)| (s, a)))
            .collect();
        slots.push((self.segs.len(), 0));
        slots
    }

    /// A copy with `urcs` inserted, each before the slot chosen by its index.
    fn with_urcs(&self, urcs: &[(prop::sample::Index, String)]) -> (Session, Vec<String>) {
        let slots = self.urc_slots();
        let mut chosen: Vec<((usize, usize), &String)> = urcs.iter().map(|(i, u)| (*i.get(&slots), u)).collect();
        // insert from the back so that earlier positions stay valid; equal slots keep their order
        chosen.sort_by_key(|(slot, _)| *slot);
        let inserted: Vec<String> = chosen.iter().map(|(_, u)| (*u).clone()).collect();
        let mut out = self.clone();
        out.segs.push(Seg { ops: vec![], atoms: vec![] });
        for ((s, a), u) in chosen.into_iter().rev() {
            out.segs[s].atoms.insert(a, line(u));
        }
        (out, inserted)
    }
}

// ---------------------------------------------------------------------------------------------
// Feeding

fn apply(ing: &mut Ingress, op: Op) {
    match op {
        Op::Prompt => ing.expect_prompt(true),
        Op::Read => ing.expect_read(true),
        Op::PayloadEcho(n) => ing.expect_payload_echo(n),
        Op::PushMask(m) => ing.set_push_mask(m),
        Op::Transparent => ing.enter_transparent(),
        Op::Escape => ing.expect_escape(true),
    }
}

fn feed(ing: &mut Ingress, mut input: &[u8], out: &mut Vec<Ev>) {
    let mut idle = 0;
    loop {
        let (n, ev) = ing.advance(input);
        input = &input[n..];
        match ev {
            None if n == 0 => break,
            None => {}
            Some(e) => push_normalised(out, own(&e)),
        }
        idle = if n == 0 { idle + 1 } else { 0 };
        assert!(idle < 4, "the ingress does not make progress");
    }
    assert!(input.is_empty(), "{} bytes not consumed", input.len());
}

/// Feeds `bytes` cut at `cuts` (and where operations apply) and returns the events.
fn run(bytes: &[u8], ops: &[(usize, Op)], cuts: &[usize]) -> Vec<Ev> {
    let mut bounds: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).chain(ops.iter().map(|&(p, _)| p)).collect();
    bounds.push(bytes.len());
    bounds.sort_unstable();
    bounds.dedup();
    let mut ing = Ingress::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut next_op = 0;
    for end in bounds {
        while let Some(&(p, op)) = ops.get(next_op)
            && p <= pos
        {
            apply(&mut ing, op);
            next_op += 1;
        }
        feed(&mut ing, &bytes[pos..end], &mut out);
        pos = end;
    }
    out
}

fn bytewise(bytes: &[u8], ops: &[(usize, Op)]) -> Vec<Ev> {
    let cuts: Vec<usize> = (0..bytes.len()).collect();
    run(bytes, ops, &cuts)
}

// ---------------------------------------------------------------------------------------------
// Generators

fn ipv4() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 4]>().prop_map(IpAddr::from)
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![4 => ipv4(), 1 => any::<[u16; 8]>().prop_map(IpAddr::from)]
}

/// An address as the BG96 prints it (IPv6 in full, upper case).
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => v6.segments().iter().map(|s| format!("{s:X}")).collect::<Vec<_>>().join(":"),
    }
}

/// Payload made of AT framing and arbitrary bytes, at most 1460 bytes (within what one
/// `+QIRD` answer or push URC carries).
fn payload(max_parts: usize) -> impl Strategy<Value = Vec<u8>> {
    let part = prop_oneof![
        Just(b"\r\n".to_vec()),
        Just(b"\r\nOK\r\n".to_vec()),
        Just(b"\r\nERROR\r\n".to_vec()),
        Just(b"\r\n> ".to_vec()),
        Just(b"> ".to_vec()),
        Just(b"+QIURC: \"closed\",0\r\n".to_vec()),
        Just(b"\r\n+QIURC: \"recv\",1,4\r\n".to_vec()),
        Just(b"RDY\r\n".to_vec()),
        Just(b"+QIRD: 9999\r\n".to_vec()),
        Just(b"\r\nNO CARRIER\r\n".to_vec()),
        Just(b"AT+QIRD=0\r".to_vec()),
        Just((0..=255u8).collect::<Vec<u8>>()),
        prop::collection::vec(any::<u8>(), 0..48),
    ];
    prop::collection::vec(part, 0..max_parts).prop_map(|parts| {
        let mut p = parts.concat();
        p.truncate(1460);
        p
    })
}

/// A URC of any kind. Buffer-mode `recv` URCs with a length name sockets outside `push`.
fn urc_text(push: u16) -> impl Strategy<Value = String> {
    let id = 0..12u8;
    let not_push: Vec<u8> = (0..12).filter(|i| push & (1 << i) == 0).collect();
    let recv_len = if not_push.is_empty() {
        Just("+QIURC: \"recv\",0".to_string()).boxed()
    } else {
        (prop::sample::select(not_push.clone()), 0..1501u32)
            .prop_map(|(i, n)| format!("+QIURC: \"recv\",{i},{n}"))
            .boxed()
    };
    // an incoming connection takes over its connectID (a push socket's framing would change)
    let incoming = if not_push.is_empty() {
        Just("+QIURC: \"incoming full\"".to_string()).boxed()
    } else {
        (prop::sample::select(not_push), id.clone(), ip(), any::<u16>())
            .prop_map(|(i, s, a, p)| format!("+QIURC: \"incoming\",{i},{s},\"{}\",{p}", ip_text(a)))
            .boxed()
    };
    prop_oneof![
        id.clone().prop_map(|i| format!("+QIURC: \"recv\",{i}")),
        recv_len,
        id.clone().prop_map(|i| format!("+QIURC: \"closed\",{i}")),
        incoming,
        Just("+QIURC: \"incoming full\"".to_string()),
        (1..17u8).prop_map(|c| format!("+QIURC: \"pdpdeact\",{c}")),
        (0..2u16, 0..9u8, any::<u32>()).prop_map(|(e, n, t)| format!("+QIURC: \"dnsgip\",{},{n},{t}", e * 565)),
        ip().prop_map(|a| format!("+QIURC: \"dnsgip\",\"{}\"", ip_text(a))),
        (id.clone(), prop_oneof![Just(0u16), 550..575u16]).prop_map(|(i, e)| format!("+QIOPEN: {i},{e}")),
        (ipv4(), 1..10000u32, 0..256u32).prop_map(|(a, t, l)| format!("+QPING: 0,\"{a}\",32,{t},{l}")),
        (1..11u8, 0..1000u32).prop_map(|(n, t)| format!("+QPING: 0,{n},{n},0,{t},{t},{t}")),
        Just("+QPING: 569".to_string()),
        Just("+QNTP: 0,\"2013/08/19,11:10:10+32\"".to_string()),
        Just("+QNTP: 561".to_string()),
        prop::sample::select(vec!["RDY", "APP RDY", "POWERED DOWN", "+CPIN: READY", "+CPIN: SIM PIN"])
            .prop_map(str::to_string),
        prop::sample::select(vec!["SMS DONE", "PB DONE"]).prop_map(|s| format!("+QIND: {s}")),
        (prop::sample::select(vec!["+CREG", "+CGREG", "+CEREG"]), 0..6u8).prop_map(|(p, s)| format!("{p}: {s}")),
    ]
}

fn any_final() -> impl Strategy<Value = Atom> {
    prop_oneof![
        4 => Just(final_atom("OK", Final::Ok)),
        1 => Just(final_atom("ERROR", Final::Error)),
        1 => (0..1000u16).prop_map(|n| final_atom(&format!("+CME ERROR: {n}"), Final::CmeError(n))),
        1 => (0..1000u16).prop_map(|n| final_atom(&format!("+CMS ERROR: {n}"), Final::CmsError(n))),
        1 => Just(final_atom("+CME ERROR: SIM not inserted", Final::CmeError(0))),
        1 => Just(final_atom("NO CARRIER", Final::NoCarrier)),
    ]
}

/// A command with information lines (echoed or not) and its final result.
fn info_command() -> impl Strategy<Value = Vec<Seg>> {
    let info = prop_oneof![
        (1..17u8, ip()).prop_map(|(c, a)| format!("+QIACT: {c},1,1,\"{}\"", ip_text(a))),
        (0..12u8, ip(), any::<u16>(), any::<u16>())
            .prop_map(|(i, a, r, l)| format!("+QISTATE: {i},\"TCP\",\"{}\",{r},{l},2,1,0,0,\"usbmodem\"", ip_text(a))),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| format!("+QISEND: {a},{b},0")),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| format!("+QIRD: {a},{b},0")),
        Just("+QIGETERROR: 552, invalid parameters".to_string()),
        Just("Quectel".to_string()),
        Just("Revision: BG96MAR02A07M1G".to_string()),
        Just("+CCLK: \"13/08/19,11:10:57+32\"".to_string()),
        Just("+QICFG: \"recvind\",0".to_string()),
        Just("+QICSGP: 1,\"UNINET\",\"\",\"\",1".to_string()),
    ];
    (any::<bool>(), prop::collection::vec(info, 0..4), any_final()).prop_map(|(echo, lines, fin)| {
        let mut atoms = Vec::new();
        if echo {
            atoms.push(echo_atom("AT+QIACT?"));
        }
        atoms.extend(lines.iter().map(|l| line(l)));
        atoms.push(fin);
        vec![Seg { ops: vec![], atoms }]
    })
}

/// `AT+QIRD`: header, payload by count, `OK`; or an error instead.
fn read_command() -> impl Strategy<Value = Vec<Seg>> {
    let answer = (payload(6), prop::option::of((ip(), any::<u16>()))).prop_map(|(data, remote)| {
        let mut head = format!("\r\n+QIRD: {}", data.len());
        if let Some((a, p)) = remote {
            head += &format!(",\"{}\",{p}", ip_text(a));
        }
        head += "\r\n";
        let remote = remote.map(|(a, p)| SocketAddr::new(a, p));
        let mut events = vec![Ev::ReadHeader(data.len(), remote)];
        if !data.is_empty() {
            events.extend([Ev::Data(data.clone()), Ev::DataEnd]);
        }
        let bytes = [head.as_bytes(), &data, b"\r\n"].concat();
        vec![atom(bytes, events), final_atom("OK", Final::Ok)]
    });
    let failed = prop_oneof![
        Just(vec![final_atom("ERROR", Final::Error)]),
        Just(vec![final_atom("+CME ERROR: 550", Final::CmeError(550))])
    ];
    (any::<bool>(), prop_oneof![4 => answer, 1 => failed]).prop_map(|(echo, answer)| {
        let mut atoms = Vec::new();
        if echo {
            atoms.push(echo_atom("AT+QIRD=0,1500"));
        }
        atoms.extend(answer);
        vec![Seg { ops: vec![Op::Read], atoms }]
    })
}

/// `AT+QISEND`: the prompt (with or without its space), the payload's echo if `AT+QISDE=1`, the
/// result; or an error instead of the prompt.
fn send_command() -> impl Strategy<Value = Vec<Seg>> {
    let result = prop_oneof![
        3 => Just(final_atom("SEND OK", Final::SendOk)),
        1 => Just(final_atom("SEND FAIL", Final::SendFail)),
        1 => Just(final_atom("ERROR", Final::Error)),
    ];
    (any::<bool>(), any::<bool>(), prop::option::of(payload(4)), result, 0..6u8).prop_map(
        |(echo, space, payload_echo, result, refused)| {
            let mut first = Seg { ops: vec![Op::Prompt], atoms: vec![] };
            if echo {
                first.atoms.push(echo_atom("AT+QISEND=0,5"));
            }
            if refused == 0 {
                first.atoms.push(final_atom("ERROR", Final::Error));
                return vec![first];
            }
            first.atoms.push(atom(if space { &b"\r\n> "[..] } else { b"\r\n>" }, vec![Ev::Prompt]));
            let mut second = Seg { ops: vec![], atoms: vec![] };
            if let Some(data) = payload_echo.filter(|d| !d.is_empty()) {
                second.ops.push(Op::PayloadEcho(data.len()));
                second.atoms.push(Atom { bytes: data, events: vec![Ev::Echo], urc_before: false });
            }
            second.atoms.push(result);
            vec![first, second]
        },
    )
}

/// A direct-push frame: for a socket marked push, or a `"UDP SERVICE"` push with the sender.
fn push_frame(push: u16) -> impl Strategy<Value = Vec<Seg>> {
    let ids: Vec<u8> = (0..12).filter(|i| push & (1 << i) != 0).collect();
    let sender = if ids.is_empty() {
        (ip(), any::<u16>()).prop_map(Some).boxed()
    } else {
        prop::option::of((ip(), any::<u16>())).boxed()
    };
    let id = if ids.is_empty() { (0..12u8).boxed() } else { prop::sample::select(ids).boxed() };
    (id, 0..12u8, sender, payload(6)).prop_map(|(id, any_id, sender, data)| {
        let (id, remote) = match sender {
            Some((a, p)) => (any_id, Some((a, p))),
            None => (id, None),
        };
        let mut head = format!("\r\n+QIURC: \"recv\",{id},{}", data.len());
        if let Some((a, p)) = remote {
            head += &format!(",\"{}\",{p}", ip_text(a));
        }
        head += "\r\n";
        let remote = remote.map(|(a, p)| SocketAddr::new(a, p));
        let mut events = vec![Ev::PushHeader(id, data.len(), remote)];
        if !data.is_empty() {
            events.extend([Ev::Data(data.clone()), Ev::DataEnd]);
        }
        vec![Seg { ops: vec![], atoms: vec![atom([head.as_bytes(), &data].concat(), events)] }]
    })
}

const NO_CARRIER: &[u8] = b"\r\nNO CARRIER\r\n";
const ESCAPE_OK: &[u8] = b"\r\nOK\r\n";

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `CONNECT`, raw data, then `NO CARRIER` (or the escape's `OK`).
fn transparent_session() -> impl Strategy<Value = Vec<Seg>> {
    (payload(6), any::<bool>(), any::<bool>()).prop_map(|(data, escape, by_ok)| {
        let by_ok = escape && by_ok;
        let end: &[u8] = if by_ok { ESCAPE_OK } else { NO_CARRIER };
        // the data may hold anything but a terminator (which would be one)
        let mut data = data;
        loop {
            let joined = [&data[..], end].concat();
            let first = [find(&joined, NO_CARRIER), if escape { find(&joined, ESCAPE_OK) } else { None }]
                .into_iter()
                .flatten()
                .min();
            if first == Some(data.len()) {
                break;
            }
            data.remove(first.unwrap_or(0));
        }
        let mut ops = vec![Op::Transparent];
        if escape {
            ops.push(Op::Escape);
        }
        let connect = Seg { ops: vec![], atoms: vec![final_atom("CONNECT", Final::Connect)] };
        let data_atom = Atom { events: vec![Ev::Transparent(data.clone())], bytes: data, urc_before: false };
        let f = if by_ok { Final::Ok } else { Final::NoCarrier };
        let end_atom = Atom { bytes: end.to_vec(), events: vec![Ev::Final(f)], urc_before: false };
        vec![connect, Seg { ops, atoms: vec![data_atom, end_atom] }]
    })
}

fn item(push: u16) -> impl Strategy<Value = Vec<Seg>> {
    prop_oneof![
        3 => urc_text(push).prop_map(|u| vec![Seg { ops: vec![], atoms: vec![line(&u)] }]),
        3 => info_command(),
        3 => read_command(),
        2 => send_command(),
        2 => push_frame(push),
        1 => transparent_session(),
        1 => any_final().prop_map(|f| vec![Seg { ops: vec![], atoms: vec![f] }]),
    ]
}

fn session() -> impl Strategy<Value = Session> {
    (0..0x1000u16).prop_flat_map(|push| {
        prop::collection::vec(item(push), 1..10).prop_map(move |items| {
            let mut segs = vec![Seg { ops: vec![Op::PushMask(push)], atoms: vec![] }];
            segs.extend(items.into_iter().flatten());
            Session { segs }
        })
    })
}

fn session_with_urcs() -> impl Strategy<Value = (Session, Session, Vec<String>)> {
    session().prop_flat_map(|s| {
        let push = match s.segs[0].ops[0] {
            Op::PushMask(m) => m,
            _ => 0,
        };
        prop::collection::vec((any::<prop::sample::Index>(), urc_text(push)), 0..8).prop_map(move |urcs| {
            let (with, inserted) = s.with_urcs(&urcs);
            (s.clone(), with, inserted)
        })
    })
}

/// A URC that changes nothing the engine frames by (no reboot, no context loss).
fn harmless_urc(push: u16) -> impl Strategy<Value = String> {
    urc_text(push).prop_filter("changes the framing", |u| u != "RDY" && !u.contains("pdpdeact"))
}

fn cuts() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0..4096usize, 0..24)
}

/// The seed of the property runs when `PROPTEST_RNG_SEED` is not set: every run of the suite
/// (CI's included) sees the same inputs, so a failure comes from the change, not from the
/// draw. Set `PROPTEST_RNG_SEED=<u64>` to explore other inputs.
const DEFAULT_SEED: u64 = 0x0b96_2026;

fn config(cases: u32) -> ProptestConfig {
    // failures print their minimal input; add it to the regression tests below rather than to
    // a persistence file
    let default = ProptestConfig::default();
    let rng_seed = match default.rng_seed {
        RngSeed::Random => RngSeed::Fixed(DEFAULT_SEED),
        seed => seed,
    };
    ProptestConfig { cases, rng_seed, failure_persistence: Some(Box::new(FileFailurePersistence::Off)), ..default }
}

// ---------------------------------------------------------------------------------------------
// Properties

proptest! {
    #![proptest_config(config(128))]

    /// Valid output, whole, split at random points and byte by byte, with URCs interleaved at
    /// random line boundaries: always the expected events.
    #[test]
    fn any_split_yields_the_events_of_the_whole_stream(
        (_, session, _) in session_with_urcs(),
        cuts in cuts(),
    ) {
        let (bytes, ops) = session.stream();
        let expected = session.expected();
        let whole = run(&bytes, &ops, &[]);
        prop_assert_eq!(&whole, &expected, "whole stream");
        let split = run(&bytes, &ops, &cuts);
        prop_assert_eq!(&split, &whole, "split at {:?}", cuts);
        prop_assert_eq!(&bytewise(&bytes, &ops), &whole, "byte by byte");
    }

    /// URCs at line boundaries come out as URC lines, in order, and change nothing else: the
    /// same headers, payloads, prompts, echoes and final results as without them.
    #[test]
    fn urcs_at_line_boundaries_leave_payload_and_results_intact(
        (plain, with, inserted) in session_with_urcs(),
        cuts in cuts(),
    ) {
        let (bytes, ops) = plain.stream();
        let base = run(&bytes, &ops, &cuts);
        let (bytes, ops) = with.stream();
        let got = run(&bytes, &ops, &cuts);
        let not_lines = |evs: &[Ev]| -> Vec<Ev> { evs.iter().filter(|e| !matches!(e, Ev::Line(_))).cloned().collect() };
        prop_assert_eq!(not_lines(&got), not_lines(&base));
        // the lines are the session's own with the URCs merged in, in order
        let lines = |evs: &[Ev]| -> Vec<Vec<u8>> {
            evs.iter().filter_map(|e| if let Ev::Line(l) = e { Some(l.clone()) } else { None }).collect()
        };
        let (got_lines, base_lines) = (lines(&got), lines(&base));
        prop_assert_eq!(got_lines.len(), base_lines.len() + inserted.len());
        let mut rest = got_lines.iter();
        for u in &inserted {
            prop_assert!(urc::parse(u.as_bytes()).is_some(), "not a URC: {}", u);
            prop_assert!(rest.any(|l| l == u.as_bytes()), "URC {} missing or out of order", u);
        }
    }
}

/// A sink that keeps everything.
#[derive(Default)]
struct Keep {
    read: Vec<u8>,
    push: Vec<(u8, usize, Option<SocketAddr>, Vec<u8>)>,
}

impl DataSink for Keep {
    fn read(&mut self, data: &[u8]) {
        self.read.extend_from_slice(data);
    }
    fn push(&mut self, connect_id: u8, start: Option<(usize, Option<SocketAddr>)>, data: &[u8]) -> usize {
        if let Some((len, remote)) = start {
            self.push.push((connect_id, len, remote, Vec::new()));
        }
        self.push.last_mut().expect("frame start").3.extend_from_slice(data);
        data.len()
    }
    fn transparent(&mut self, data: &[u8]) -> usize {
        data.len()
    }
}

fn every_byte_value() -> impl Strategy<Value = Vec<u8>> {
    (Just((0..=255u8).collect::<Vec<u8>>()).prop_shuffle(), payload(4), 0..2000usize).prop_map(|(all, more, at)| {
        let mut p = more;
        p.truncate(1460 - all.len());
        let at = at % (p.len() + 1);
        p.splice(at..at, all);
        p
    })
}

fn feed_core(core: &mut Core, sink: &mut Keep, bytes: &[u8], cuts: &[usize]) {
    let mut cuts: Vec<usize> = cuts.iter().map(|&c| c % (bytes.len() + 1)).collect();
    cuts.push(bytes.len());
    cuts.sort_unstable();
    let mut pos = 0;
    for c in cuts {
        core.feed(&bytes[pos..c], sink);
        pos = c;
    }
}

proptest! {
    #![proptest_config(config(64))]

    /// `+QIRD` payloads holding every byte value and AT framing reach the sink byte-exact, with
    /// URCs before the header and between the payload and `OK`, however the input is split.
    #[test]
    fn qird_payload_is_byte_exact(
        payloads in prop::collection::vec(
            (every_byte_value(), prop::option::of((ip(), 1..u16::MAX)), 0..12u8), 1..4),
        urc_before in harmless_urc(0),
        urc_after in harmless_urc(0),
        cuts in cuts(),
    ) {
        let mut core = Core::new();
        for (data, remote, id) in payloads {
            let mut head = format!("+QIRD: {}", data.len());
            if let Some((a, p)) = remote {
                head += &format!(",\"{}\",{p}", ip_text(a));
            }
            let bytes = [
                format!("\r\n{urc_before}\r\n\r\n{head}\r\n").as_bytes(),
                &data,
                format!("\r\n\r\n{urc_after}\r\n\r\nOK\r\n").as_bytes(),
            ]
            .concat();
            let mut sink = Keep::default();
            core.begin(b"+QIRD:", Kind::Read { connect_id: id }).unwrap();
            feed_core(&mut core, &mut sink, &bytes, &cuts);
            prop_assert_eq!(core.result(), Some(Ok(Final::Ok)));
            prop_assert_eq!(core.st.cmd.read_header, Some((data.len(), remote.map(|(a, p)| SocketAddr::new(a, p)))));
            prop_assert_eq!(core.st.cmd.read_got, data.len());
            prop_assert!(sink.read == data, "payload changed");
            prop_assert_eq!(core.response().unwrap(), b"");
            core.end();
        }
        prop_assert_eq!(core.st.stats.unknown_lines, 0);
        prop_assert_eq!(core.st.stats.stray_finals, 0);
    }

    /// A command's information lines with URCs between them (and between `OK` and the next
    /// command): the answer holds exactly the information lines, every URC is handled as one.
    #[test]
    fn urcs_between_response_lines_are_not_part_of_the_answer(
        answers in prop::collection::vec(
            (prop::collection::vec((1..17u8, ip()), 0..6), prop::collection::vec(harmless_urc(0), 0..6)), 1..4),
        cuts in cuts(),
    ) {
        let mut core = Core::new();
        let mut urcs = 0;
        for (contexts, between) in answers {
            let info: Vec<String> =
                contexts.iter().map(|(c, a)| format!("+QIACT: {c},1,1,\"{}\"", ip_text(*a))).collect();
            // URCs go between the lines in turn, the rest after the OK
            let mut bytes = Vec::new();
            let mut pending = between.iter();
            for l in &info {
                if let Some(u) = pending.next() {
                    bytes.extend_from_slice(format!("\r\n{u}\r\n").as_bytes());
                }
                bytes.extend_from_slice(format!("\r\n{l}\r\n").as_bytes());
            }
            bytes.extend_from_slice(b"\r\nOK\r\n");
            for u in pending {
                bytes.extend_from_slice(format!("\r\n{u}\r\n").as_bytes());
            }
            urcs += between.len();
            let mut sink = Keep::default();
            core.begin(b"+QIACT:", Kind::Plain).unwrap();
            feed_core(&mut core, &mut sink, &bytes, &cuts);
            prop_assert_eq!(core.result(), Some(Ok(Final::Ok)));
            let expected: String = info.iter().map(|l| format!("{l}\r\n")).collect();
            prop_assert_eq!(core.response().unwrap(), expected.as_bytes());
            core.end();
        }
        prop_assert_eq!(core.st.stats.urcs as usize, urcs);
        prop_assert_eq!(core.st.stats.unknown_lines, 0);
    }

    /// Direct-push payloads of every byte value reach the sink byte-exact and whole.
    #[test]
    fn direct_push_payload_is_byte_exact(
        frames in prop::collection::vec((every_byte_value(), 0..12u8, prop::option::of((ip(), 1..u16::MAX))), 1..4),
        urc in harmless_urc(0xfff),
        cuts in cuts(),
    ) {
        let mut core = Core::new();
        for id in 0..12 {
            let slot = core.st.sockets.get_mut(id).unwrap();
            slot.occupy(SlotState::Open, ServiceType::Tcp, AccessMode::DirectPush, 1);
        }
        let mut bytes = Vec::new();
        let mut expected = Vec::new();
        for (data, id, remote) in frames {
            let mut head = format!("\r\n{urc}\r\n\r\n+QIURC: \"recv\",{id},{}", data.len());
            if let Some((a, p)) = remote {
                head += &format!(",\"{}\",{p}", ip_text(a));
            }
            bytes.extend_from_slice(format!("{head}\r\n").as_bytes());
            bytes.extend_from_slice(&data);
            expected.push((id, data.len(), remote.map(|(a, p)| SocketAddr::new(a, p)), data));
        }
        let mut sink = Keep::default();
        feed_core(&mut core, &mut sink, &bytes, &cuts);
        prop_assert!(sink.push == expected, "push payload changed");
        prop_assert_eq!(core.st.stats.bytes_lost, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Regressions and sanity checks of the generator

/// Found by `direct_push_payload_is_byte_exact`: a "harmless" `+QIURC: "incoming",9,...`
/// took over push socket 9, so its next frame was (rightly) not read as direct push.
#[test]
fn harmless_urcs_never_take_over_a_push_socket() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut incoming, mut others) = (0, 0);
    for _ in 0..2000 {
        let all = harmless_urc(0xfff).new_tree(&mut runner).unwrap().current();
        assert!(!all.contains("\"incoming\","), "{all}");
        let some = harmless_urc(0b10_0000_0001).new_tree(&mut runner).unwrap().current();
        if let Some(rest) = some.strip_prefix("+QIURC: \"incoming\",") {
            let id: u8 = rest.split(',').next().unwrap().parse().unwrap();
            assert!(id != 0 && id != 9, "{some}");
            incoming += 1;
        } else {
            others += 1;
        }
    }
    assert!(incoming > 20 && others > 1000, "the generator still makes incoming connections");
}

#[test]
fn generator_covers_every_kind_of_output() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let (mut reads, mut pushes, mut prompts, mut transparent, mut echoes, mut urcs) = (0, 0, 0, 0, 0, 0);
    for _ in 0..200 {
        let (_, s, inserted) = session_with_urcs().new_tree(&mut runner).unwrap().current();
        for ev in s.expected() {
            match ev {
                Ev::ReadHeader(..) => reads += 1,
                Ev::PushHeader(..) => pushes += 1,
                Ev::Prompt => prompts += 1,
                Ev::Transparent(_) => transparent += 1,
                Ev::Echo => echoes += 1,
                _ => {}
            }
        }
        urcs += inserted.len();
    }
    assert!(reads > 50 && pushes > 20 && prompts > 20 && transparent > 5 && echoes > 20 && urcs > 100);
}

#[test]
fn urc_between_qird_answer_lines_with_payload_that_looks_like_output() {
    let payload: &[u8] = b"\r\nOK\r\n\r\n> +QIURC: \"closed\",0\r\nRDY\r\n+QIRD: 9999\r\n";
    let session = Session {
        segs: vec![Seg {
            ops: vec![Op::Read, Op::Prompt],
            atoms: vec![
                line("+QIURC: \"recv\",0"),
                atom(
                    [format!("\r\n+QIRD: {}\r\n", payload.len()).as_bytes(), payload, b"\r\n"].concat(),
                    vec![Ev::ReadHeader(payload.len(), None), Ev::Data(payload.to_vec()), Ev::DataEnd],
                ),
                line("+QIURC: \"closed\",0"),
                final_atom("OK", Final::Ok),
            ],
        }],
    };
    let (bytes, ops) = session.stream();
    assert_eq!(bytewise(&bytes, &ops), session.expected());
}
