//! `Ingress::advance` on arbitrary bytes, split into arbitrary chunks, with the engine's
//! expectations (prompt, read, payload echo, push marks, transparent mode, escape, held bytes)
//! changed between chunks.
//!
//! Input: `[n] [n program bytes] [stream]` (see `quectel_bg96_fuzz`). Program operations:
//! 0 feed a chunk, 1 `expect_prompt`, 2 `expect_read`, 3 `expect_payload_echo`, 4 push marks,
//! 5 enter/leave transparent mode or reset, 6 `expect_escape`, 7 `flush_held`.
//!
//! Checked: no panic; every byte is consumed (`advance` never returns `(0, None)` while input
//! is left, and never more than a few events in a row without consuming); payload and
//! transparent bytes are the input bytes themselves; a `+QIRD`/push header of `n` is followed by
//! exactly `n` data bytes and one `DataEnd`, and nothing else carries data; headers and prompts
//! only when expected (a `+QIRD` header only before the read's final result); lines are bounded and carry no terminator; and the event stream is the
//! same whether the stream is fed as programmed, in one piece between the operations, or byte by
//! byte.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quectel_bg96::ingress::{Event, Final, Ingress, LINE_CAP, parse_final};
use quectel_bg96_fuzz::{Ev, chunk_len, push_normalised, split};

#[derive(Clone, Copy)]
enum Step {
    Feed(usize, usize),
    Op(u8, u8),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Chunking {
    AsProgrammed,
    Coalesced,
    Bytewise,
}

/// What the ingress must be expecting, as far as the operations and events tell.
#[derive(Default)]
struct Model {
    prompt_expected: bool,
    read_expected: bool,
    push_mask: u16,
    /// Payload bytes still due in the current frame.
    frame: Option<usize>,
}

impl Model {
    fn check(&mut self, ev: &Event<'_>, consumed: &[u8], was_transparent: bool) {
        match *ev {
            Event::Data(d) => {
                assert!(!d.is_empty(), "empty Data event");
                assert_eq!(d, consumed, "Data must be the bytes consumed");
                let due = self.frame.expect("Data outside a frame");
                assert!(d.len() <= due, "Data beyond the announced length: {} > {due}", d.len());
                self.frame = Some(due - d.len());
            }
            Event::DataEnd => {
                assert!(consumed.is_empty());
                assert_eq!(self.frame, Some(0), "DataEnd before all announced bytes arrived");
                self.frame = None;
            }
            Event::ReadHeader { len, .. } => {
                assert!(self.read_expected, "+QIRD header with no read outstanding");
                assert!(self.frame.is_none());
                self.read_expected = false;
                if len > 0 {
                    self.frame = Some(len);
                }
            }
            Event::PushHeader { connect_id, len, remote } => {
                assert!(connect_id <= 11, "push header for connectID {connect_id}");
                assert!(
                    remote.is_some() || self.push_mask & (1 << connect_id) != 0,
                    "push header for connectID {connect_id}, which is not in push mode"
                );
                assert!(self.frame.is_none());
                if len > 0 {
                    self.frame = Some(len);
                }
            }
            Event::Prompt => {
                assert!(self.prompt_expected, "prompt with no send outstanding");
                self.prompt_expected = false;
            }
            Event::Final(f) => {
                if matches!(f, Final::SendOk | Final::SendFail | Final::Error) {
                    self.prompt_expected = false;
                }
                // a final result ends the command: no `+QIRD` header can follow it (a bogus one
                // would swallow the next n bytes of modem output as payload)
                if !was_transparent {
                    self.read_expected = false;
                }
            }
            Event::Line(l) => {
                assert!(!l.is_empty() && l.len() <= LINE_CAP, "line of {} bytes", l.len());
                assert!(!l.contains(&b'\n'), "line with LF");
                assert!(l.first() != Some(&b'\r') && l.last() != Some(&b'\r'), "line with edge CR");
                assert!(parse_final(l).is_none(), "final result reported as a line");
            }
            Event::Transparent(d) => {
                assert!(was_transparent, "transparent data outside transparent mode");
                assert!(!d.is_empty());
                if consumed.is_empty() {
                    assert!(d.len() <= 16, "held bytes beyond the hold buffer");
                    assert_eq!(d.first(), Some(&b'\r'), "held bytes start with CR");
                } else {
                    assert_eq!(d, consumed, "transparent data must be the bytes consumed");
                }
            }
            Event::Echo | Event::LineOverflow(_) => {}
        }
    }
}

fn feed(ing: &mut Ingress, m: &mut Model, chunk: &[u8], out: &mut Vec<Ev>) {
    let mut input = chunk;
    let mut idle_events = 0;
    loop {
        let was_transparent = ing.is_transparent();
        let (n, ev) = ing.advance(input);
        assert!(n <= input.len(), "consumed {n} of {}", input.len());
        let consumed = &input[..n];
        match ev {
            None if n == 0 => {
                assert!(input.is_empty(), "advance stuck with {} bytes left: {:?}", input.len(), input);
                break;
            }
            None => {}
            Some(e) => {
                if n == 0 {
                    idle_events += 1;
                    assert!(idle_events <= 3, "{idle_events} events in a row without consuming input");
                }
                m.check(&e, consumed, was_transparent);
                push_normalised(out, Ev::of(&e));
            }
        }
        if n > 0 {
            idle_events = 0;
        }
        input = &input[n..];
    }
}

fn apply(ing: &mut Ingress, m: &mut Model, op: u8, arg: u8, out: &mut Vec<Ev>) {
    match op {
        1 => {
            ing.expect_prompt(arg & 1 == 1);
            m.prompt_expected = arg & 1 == 1;
        }
        2 => {
            ing.expect_read(arg & 1 == 1);
            m.read_expected = arg & 1 == 1;
        }
        3 => ing.expect_payload_echo(chunk_len(arg)),
        4 => {
            match arg {
                31 => ing.set_push_mask(0xffff),
                30 => ing.set_push_mask(0),
                _ => ing.set_push_mode(arg / 2, arg % 2 == 1),
            }
            m.push_mask = (0..16u8).filter(|&id| ing.is_push_mode(id)).fold(0, |acc, id| acc | (1 << id));
        }
        5 => match arg % 4 {
            0 | 1 => {
                ing.enter_transparent();
                // a frame cut short by the switch is abandoned
                m.frame = None;
            }
            2 => ing.leave_transparent(),
            _ => {
                ing.reset();
                *m = Model::default();
            }
        },
        6 => ing.expect_escape(arg & 1 == 1),
        7 => {
            let was_transparent = ing.is_transparent();
            let held = ing.held_len();
            if let Some(e) = ing.flush_held() {
                assert!(was_transparent);
                assert!(matches!(e, Event::Transparent(d) if d.len() == held && !d.is_empty()));
                push_normalised(out, Ev::of(&e));
            }
            // `leave_transparent` keeps held bytes without releasing them (README: "What the
            // targets leave out")
            if was_transparent {
                assert_eq!(ing.held_len(), 0);
            }
        }
        _ => unreachable!(),
    }
}

fn run(steps: &[Step], stream: &[u8], chunking: Chunking) -> Vec<Ev> {
    let mut ing = Ingress::new();
    let mut m = Model::default();
    let mut out = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        match steps[i] {
            Step::Feed(start, mut end) => {
                if chunking == Chunking::Coalesced {
                    while let Some(Step::Feed(_, e)) = steps.get(i + 1) {
                        end = *e;
                        i += 1;
                    }
                }
                let bytes = &stream[start..end];
                if chunking == Chunking::Bytewise {
                    for b in bytes.chunks(1) {
                        feed(&mut ing, &mut m, b, &mut out);
                    }
                } else {
                    feed(&mut ing, &mut m, bytes, &mut out);
                }
            }
            Step::Op(op, arg) => apply(&mut ing, &mut m, op, arg, &mut out),
        }
        i += 1;
    }
    // whatever the chunking, nothing is pending at the end
    assert_eq!(ing.advance(&[]), (0, None));
    assert!(ing.held_len() <= 16);
    out
}

fuzz_target!(|data: &[u8]| {
    let (program, stream) = split(data);
    let mut steps = Vec::with_capacity(program.len() + 1);
    let mut pos = 0;
    for &c in program {
        let (op, arg) = (c >> 5, c & 31);
        if op == 0 {
            let end = (pos + chunk_len(arg)).min(stream.len());
            steps.push(Step::Feed(pos, end));
            pos = end;
        } else {
            steps.push(Step::Op(op, arg));
        }
    }
    steps.push(Step::Feed(pos, stream.len()));

    let programmed = run(&steps, stream, Chunking::AsProgrammed);
    let coalesced = run(&steps, stream, Chunking::Coalesced);
    assert_eq!(programmed, coalesced, "events depend on where the input was split");
    let bytewise = run(&steps, stream, Chunking::Bytewise);
    assert_eq!(programmed, bytewise, "events differ when fed byte by byte");
});
