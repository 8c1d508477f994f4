//! The one byte-level ingress: every byte the modem sends passes through [`Ingress::advance`],
//! which classifies it as command echo, final result, send prompt, line (response or URC),
//! length-framed payload (`+QIRD` responses and direct-push URCs) or transparent-mode data.
//!
//! Payload is read by count and never interpreted: bytes that look like `OK`, `> ` or `+QIURC`
//! inside a `+QIRD` frame are data. The prompt is recognised only while a send is outstanding
//! and `+QIRD` headers only while a read is outstanding; the engine sets those expectations
//! before it writes a command. Nothing is discarded silently: a line longer than the line buffer
//! is reported as [`Event::LineOverflow`].
//!
//! The ingress is a pure state machine (no I/O, no clock), so it can be fed from a polling loop,
//! a UART interrupt or an async runner, and tested byte by byte.

use core::net::SocketAddr;

use crate::wire::{self, after_prefix, fields};

/// Capacity of the line buffer: the longest line the BG96 sends in this command set is a
/// `+QICSGP` answer with maximal APN, user name and password.
pub const LINE_CAP: usize = 384;

/// A final result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Final {
    /// `OK`
    Ok,
    /// `ERROR`
    Error,
    /// `+CME ERROR: <n>` (0 when the modem printed text instead of a number)
    CmeError(u16),
    /// `+CMS ERROR: <n>`
    CmsError(u16),
    /// `SEND OK`
    SendOk,
    /// `SEND FAIL`
    SendFail,
    /// `CONNECT` (transparent access mode entered)
    Connect,
    /// `NO CARRIER`
    NoCarrier,
}

/// What the ingress found in the byte stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A complete line that is neither echo nor a final result code: a response line or a URC.
    /// Carries no line terminator.
    Line(&'a [u8]),
    /// Echo of a command (or of send payload when `AT+QISDE=1`), skipped.
    Echo,
    /// A final result code.
    Final(Final),
    /// The `> ` prompt of `AT+QISEND`/`AT+QISENDEX`.
    Prompt,
    /// The header of a `+QIRD` answer: `len` payload bytes follow as [`Event::Data`];
    /// `remote` is set for `"UDP SERVICE"` reads.
    ReadHeader {
        /// Payload length announced by the header.
        len: usize,
        /// Sender of the datagram (`"UDP SERVICE"` only).
        remote: Option<SocketAddr>,
    },
    /// The header of a direct-push URC: `len` payload bytes follow as [`Event::Data`].
    PushHeader {
        /// The socket the data belongs to.
        connect_id: u8,
        /// Payload length announced by the URC.
        len: usize,
        /// Sender of the datagram (`"UDP SERVICE"` only).
        remote: Option<SocketAddr>,
    },
    /// Payload bytes of the current `+QIRD` or direct-push frame.
    Data(&'a [u8]),
    /// The current `+QIRD` or direct-push frame is complete.
    DataEnd,
    /// Raw bytes received in transparent access mode.
    Transparent(&'a [u8]),
    /// A line exceeded [`LINE_CAP`]; only its first [`LINE_CAP`] bytes were kept (given).
    LineOverflow(&'a [u8]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between or inside lines.
    Line,
    /// Inside a length-framed payload.
    Data { remaining: usize },
    /// Transparent access mode: raw data until `NO CARRIER` (or the escape's `OK`).
    Transparent,
}

const NO_CARRIER: &[u8] = b"\r\nNO CARRIER\r\n";
/// The largest payload one `+QIRD` answer or direct-push URC can carry (manual 2.1.8).
const MAX_FRAME: usize = crate::commands::MAX_READ;
const ESCAPE_OK: &[u8] = b"\r\nOK\r\n";

/// The byte classifier. See the module docs.
pub struct Ingress {
    state: State,
    line: heapless::Vec<u8, LINE_CAP>,
    overflowed: bool,
    line_done: bool,
    data_done: bool,
    prompt_expected: bool,
    swallow_space: bool,
    read_expected: bool,
    echo_skip: usize,
    push_mode: u16,
    escape_pending: bool,
    held: heapless::Vec<u8, 16>,
    held_flushed: bool,
}

impl Default for Ingress {
    fn default() -> Self {
        Self::new()
    }
}

impl Ingress {
    /// An ingress in command mode, expecting nothing.
    pub const fn new() -> Self {
        Self {
            state: State::Line,
            line: heapless::Vec::new(),
            overflowed: false,
            line_done: false,
            data_done: false,
            prompt_expected: false,
            swallow_space: false,
            read_expected: false,
            echo_skip: 0,
            push_mode: 0,
            escape_pending: false,
            held: heapless::Vec::new(),
            held_flushed: false,
        }
    }

    /// A `AT+QISEND`/`AT+QISENDEX` is outstanding: a `>` at the start of a line is its prompt.
    pub fn expect_prompt(&mut self, on: bool) {
        self.prompt_expected = on;
    }

    /// A `AT+QIRD` is outstanding: a `+QIRD: <n>` line is followed by `n` payload bytes.
    pub fn expect_read(&mut self, on: bool) {
        self.read_expected = on;
    }

    /// The modem echoes the next `n` bytes (send payload with `AT+QISDE=1`): skip them.
    pub fn expect_payload_echo(&mut self, n: usize) {
        self.echo_skip = n;
    }

    /// Marks `connect_id` as being in direct push mode (its `+QIURC: "recv",<id>,<len>` URCs
    /// carry data) or not.
    pub fn set_push_mode(&mut self, connect_id: u8, on: bool) {
        let bit = 1u16.checked_shl(u32::from(connect_id)).unwrap_or(0);
        if on {
            self.push_mode |= bit;
        } else {
            self.push_mode &= !bit;
        }
    }

    /// Sets the direct-push marks of all sockets at once (bit n = connectID n).
    pub fn set_push_mask(&mut self, mask: u16) {
        self.push_mode = mask;
    }

    /// Whether `connect_id` is marked as direct push.
    pub fn is_push_mode(&self, connect_id: u8) -> bool {
        let bit = 1u16.checked_shl(u32::from(connect_id)).unwrap_or(0);
        self.push_mode & bit != 0
    }

    /// Enter transparent access mode (after `CONNECT`).
    pub fn enter_transparent(&mut self) {
        self.state = State::Transparent;
        self.escape_pending = false;
        self.held.clear();
        self.held_flushed = false;
    }

    /// Whether the ingress is in transparent access mode.
    pub fn is_transparent(&self) -> bool {
        self.state == State::Transparent
    }

    /// The host has sent the `+++` escape: a `\r\nOK\r\n` now ends transparent mode.
    pub fn expect_escape(&mut self, on: bool) {
        self.escape_pending = on;
    }

    /// Leave transparent mode without a terminator from the modem (e.g. after DTR).
    pub fn leave_transparent(&mut self) {
        if self.state == State::Transparent {
            self.state = State::Line;
        }
        self.escape_pending = false;
        self.held.clear();
        self.held_flushed = false;
    }

    /// Number of transparent-mode bytes held back because they might start `NO CARRIER`.
    pub fn held_len(&self) -> usize {
        if self.held_flushed { 0 } else { self.held.len() }
    }

    /// Releases held-back transparent bytes as data (call when the line has been quiet longer
    /// than the modem takes to print a result code).
    pub fn flush_held(&mut self) -> Option<Event<'_>> {
        if self.held_flushed {
            self.held.clear();
            self.held_flushed = false;
        }
        if !cfg!(feature = "transparent") || self.state != State::Transparent || self.held.is_empty() {
            return None;
        }
        self.held_flushed = true;
        Some(Event::Transparent(&self.held))
    }

    /// Drops all partial input and expectations (after a modem reboot or a resynchronisation).
    pub fn reset(&mut self) {
        let push_mode = 0;
        *self = Self::new();
        self.push_mode = push_mode;
    }

    /// Whether the ingress is at a clean boundary (no partial line or frame).
    pub fn is_idle(&self) -> bool {
        self.state == State::Line && self.line.is_empty() && !self.overflowed
    }

    /// Consumes a prefix of `input` and reports at most one event.
    ///
    /// Returns how many bytes were consumed (possibly 0 when an event was pending) and the
    /// event, if any. Call it again with the rest until the input is used up.
    pub fn advance<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<Event<'a>>) {
        if self.line_done {
            self.line_done = false;
            self.line.clear();
            self.overflowed = false;
        }
        if self.data_done {
            self.data_done = false;
            return (0, Some(Event::DataEnd));
        }
        if self.held_flushed {
            self.held_flushed = false;
            self.held.clear();
        }
        match self.state {
            State::Data { .. } if input.is_empty() => (0, None),
            State::Data { remaining } => {
                let n = remaining.min(input.len());
                let rest = remaining - n;
                if rest == 0 {
                    self.state = State::Line;
                    self.data_done = true;
                } else {
                    self.state = State::Data { remaining: rest };
                }
                (n, Some(Event::Data(input.get(..n).unwrap_or(&[]))))
            }
            State::Transparent if cfg!(feature = "transparent") => self.advance_transparent(input),
            // never entered without the feature (nothing sends the commands that enter it)
            State::Transparent => {
                self.state = State::Line;
                (0, None)
            }
            State::Line => self.advance_line(input),
        }
    }

    fn advance_transparent<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<Event<'a>>) {
        let Some(&b) = input.first() else {
            return (0, None);
        };
        if self.held.is_empty() {
            if b == b'\r' {
                let _ = self.held.push(b);
                return (1, None);
            }
            let n = input.iter().position(|&c| c == b'\r').unwrap_or(input.len());
            return (n, Some(Event::Transparent(input.get(..n).unwrap_or(&[]))));
        }
        let mut candidate: heapless::Vec<u8, 16> = self.held.clone();
        let _ = candidate.push(b);
        let patterns: &[&[u8]] = if self.escape_pending { &[NO_CARRIER, ESCAPE_OK] } else { &[NO_CARRIER] };
        for p in patterns {
            if candidate.as_slice() == *p {
                self.held.clear();
                self.state = State::Line;
                self.escape_pending = false;
                let f = if *p == NO_CARRIER { Final::NoCarrier } else { Final::Ok };
                return (1, Some(Event::Final(f)));
            }
        }
        if patterns.iter().any(|p| p.starts_with(&candidate)) {
            let _ = self.held.push(b);
            return (1, None);
        }
        // Not a result code after all: the held bytes are data; `b` is processed next time.
        self.held_flushed = true;
        (0, Some(Event::Transparent(&self.held)))
    }

    fn advance_line<'a>(&'a mut self, input: &'a [u8]) -> (usize, Option<Event<'a>>) {
        let mut consumed = 0;
        for &b in input {
            consumed += 1;
            if self.echo_skip > 0 {
                self.echo_skip -= 1;
                if self.echo_skip == 0 {
                    return (consumed, Some(Event::Echo));
                }
                continue;
            }
            if self.swallow_space {
                self.swallow_space = false;
                if b == b' ' {
                    continue;
                }
            }
            if b == b'\n' {
                self.line_done = true;
                return (consumed, self.finish_line());
            }
            if b == b'>' && self.prompt_expected && self.line.iter().all(|&c| c == b'\r') {
                self.prompt_expected = false;
                self.swallow_space = true;
                self.line.clear();
                return (consumed, Some(Event::Prompt));
            }
            if self.line.push(b).is_err() {
                self.overflowed = true;
            }
        }
        (consumed, None)
    }

    /// Classifies the line in `self.line` (terminated by `\n`, which is not stored).
    fn finish_line(&mut self) -> Option<Event<'_>> {
        if self.overflowed {
            return Some(Event::LineOverflow(&self.line));
        }
        let raw: &[u8] = &self.line;
        // One trailing CR belongs to the CRLF terminator; a second one marks command echo.
        let content = raw.strip_suffix(b"\r").unwrap_or(raw);
        if content.is_empty() || content.iter().all(|&c| c == b'\r') {
            return None;
        }
        if content.ends_with(b"\r") || is_echo(content) {
            return Some(Event::Echo);
        }
        let content = strip_leading_cr(content);
        if let Some(f) = parse_final(content) {
            // a final result ends the command: no prompt and no +QIRD header can follow
            self.prompt_expected = false;
            self.read_expected = false;
            return Some(Event::Final(f));
        }
        if self.read_expected
            && let Some(params) = after_prefix(content, b"+QIRD:")
            && let Some((len, remote)) = parse_read_header(params)
        {
            self.read_expected = false;
            if len > 0 {
                self.state = State::Data { remaining: len };
            }
            return Some(Event::ReadHeader { len, remote });
        }
        if cfg!(feature = "direct-push")
            && let Some((connect_id, len, remote)) = parse_push_header(content)
            && (remote.is_some() || self.is_push_mode(connect_id))
        {
            if len > 0 {
                self.state = State::Data { remaining: len };
            }
            return Some(Event::PushHeader { connect_id, len, remote });
        }
        Some(Event::Line(content))
    }
}

fn strip_leading_cr(mut s: &[u8]) -> &[u8] {
    while let [b'\r', rest @ ..] = s {
        s = rest;
    }
    s
}

fn is_echo(line: &[u8]) -> bool {
    matches!(line, [a, t, ..] if a.eq_ignore_ascii_case(&b'A') && t.eq_ignore_ascii_case(&b'T'))
}

/// Parses a final result code.
pub fn parse_final(line: &[u8]) -> Option<Final> {
    const FINALS: [(&[u8], Final); 5] = [
        (b"OK", Final::Ok),
        (b"ERROR", Final::Error),
        (b"SEND OK", Final::SendOk),
        (b"SEND FAIL", Final::SendFail),
        (b"NO CARRIER", Final::NoCarrier),
    ];
    if let Some(f) = wire::lookup(&FINALS, line) {
        return Some(f);
    }
    Some(match line {
        _ if line.starts_with(b"CONNECT") => Final::Connect,
        _ => {
            if let Some(code) = after_prefix(line, b"+CME ERROR:") {
                Final::CmeError(wire::parse_u32(code).and_then(|c| u16::try_from(c).ok()).unwrap_or(0))
            } else if let Some(code) = after_prefix(line, b"+CMS ERROR:") {
                Final::CmsError(wire::parse_u32(code).and_then(|c| u16::try_from(c).ok()).unwrap_or(0))
            } else {
                return None;
            }
        }
    })
}

/// `<n>` or `<n>,"<ip>",<port>` (a `+QIRD` data header; the 3-number query form is not one).
fn parse_read_header(params: &[u8]) -> Option<(usize, Option<SocketAddr>)> {
    let mut f = fields(params);
    let len = usize::try_from(f.u32()?).ok()?;
    if len > MAX_FRAME {
        // a garbled length must not swallow the rest of the modem's output
        return None;
    }
    match f.next() {
        None => Some((len, None)),
        Some(ip_field) if ip_field.starts_with(b"\"") => {
            let ip = wire::parse_ip(wire::unquote(ip_field)?)?;
            let port = f.u16()?;
            if f.next().is_some() {
                return None;
            }
            Some((len, Some(wire::socket_addr(ip, port))))
        }
        Some(_) => None,
    }
}

/// `+QIURC: "recv",<id>,<len>[,"<ip>",<port>]`
fn parse_push_header(line: &[u8]) -> Option<(u8, usize, Option<SocketAddr>)> {
    let params = after_prefix(line, b"+QIURC:")?;
    let mut f = fields(params);
    if f.quoted()? != b"recv" {
        return None;
    }
    let id = f.u8()?;
    if id > 11 {
        return None;
    }
    let len = usize::try_from(f.u32()?).ok()?;
    if len > MAX_FRAME {
        return None;
    }
    match f.next() {
        None => Some((id, len, None)),
        Some(ip_field) => {
            let ip = wire::parse_ip(wire::unquote(ip_field)?)?;
            let port = f.u16()?;
            Some((id, len, Some(wire::socket_addr(ip, port))))
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::vec::Vec;

    /// An owned copy of an event, for comparing whole streams.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Ev {
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

    fn own(e: Event<'_>) -> Ev {
        match e {
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

    /// Feeds `chunks` in order and returns the events, merging adjacent data events so that the
    /// result does not depend on where the input was split.
    pub fn run(ing: &mut Ingress, chunks: &[&[u8]]) -> Vec<Ev> {
        let mut out: Vec<Ev> = Vec::new();
        for chunk in chunks {
            let mut input: &[u8] = chunk;
            loop {
                let (n, ev) = ing.advance(input);
                let ev = ev.map(own);
                input = &input[n..];
                if ev.is_none() && n == 0 {
                    break;
                }
                match (ev, out.last_mut()) {
                    (Some(Ev::Data(d)), Some(Ev::Data(prev))) => prev.extend_from_slice(&d),
                    (Some(Ev::Transparent(d)), Some(Ev::Transparent(prev))) => prev.extend_from_slice(&d),
                    (Some(Ev::Data(d)), _) if d.is_empty() => {}
                    (Some(ev), _) => out.push(ev),
                    (None, _) => {}
                }
            }
        }
        out
    }

    fn line(s: &str) -> Ev {
        Ev::Line(s.as_bytes().to_vec())
    }

    fn every_split(stream: &[u8], setup: impl Fn(&mut Ingress)) -> Vec<Ev> {
        let mut whole = Ingress::new();
        setup(&mut whole);
        let expected = run(&mut whole, &[stream]);
        for at in 0..=stream.len() {
            let mut ing = Ingress::new();
            setup(&mut ing);
            let got = run(&mut ing, &[&stream[..at], &stream[at..]]);
            assert_eq!(got, expected, "split at {at}");
        }
        let mut ing = Ingress::new();
        setup(&mut ing);
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(run(&mut ing, &bytes), expected, "byte by byte");
        expected
    }

    #[test]
    fn echo_and_final_results() {
        let evs = every_split(b"ATE0\r\r\nOK\r\n\r\nERROR\r\n\r\n+CME ERROR: 10\r\n\r\n+CMS ERROR: 500\r\n", |_| {});
        assert_eq!(
            evs,
            [
                Ev::Echo,
                Ev::Final(Final::Ok),
                Ev::Final(Final::Error),
                Ev::Final(Final::CmeError(10)),
                Ev::Final(Final::CmsError(500))
            ]
        );
    }

    #[test]
    fn lines_and_urcs() {
        let evs =
            every_split(b"\r\n+QIACT: 1,1,1,\"10.7.157.1\"\r\n\r\nOK\r\n\r\n+QIURC: \"recv\",0\r\n\r\nRDY\r\n", |_| {});
        assert_eq!(
            evs,
            [line("+QIACT: 1,1,1,\"10.7.157.1\""), Ev::Final(Final::Ok), line("+QIURC: \"recv\",0"), line("RDY")]
        );
    }

    #[test]
    fn prompt_only_while_a_send_is_outstanding() {
        let evs = every_split(b"\r\n> ", |i| i.expect_prompt(true));
        assert_eq!(evs, [Ev::Prompt]);
        // without an outstanding send, '>' is line content
        let evs = every_split(b"\r\n> x\r\n", |_| {});
        assert_eq!(evs, [line("> x")]);
        // the prompt with echo on, then SEND OK
        let evs = every_split(b"AT+QISEND=0,5\r\r\n> \r\nSEND OK\r\n", |i| i.expect_prompt(true));
        assert_eq!(evs, [Ev::Echo, Ev::Prompt, Ev::Final(Final::SendOk)]);
        // some sister firmware prints '>' without the space
        let evs = every_split(b"\r\n>\r\nSEND FAIL\r\n", |i| i.expect_prompt(true));
        assert_eq!(evs, [Ev::Prompt, Ev::Final(Final::SendFail)]);
    }

    #[test]
    fn qird_payload_is_read_by_count() {
        let payload: &[u8] = b"\r\nOK\r\n\r\n> +QIURC: \"closed\",0\r\nRDY\r\n+QIRD: 9999\r\n";
        let mut stream = Vec::new();
        stream.extend_from_slice(format!("\r\n+QIRD: {}\r\n", payload.len()).as_bytes());
        stream.extend_from_slice(payload);
        stream.extend_from_slice(b"\r\n\r\nOK\r\n");
        let evs = every_split(&stream, |i| {
            i.expect_read(true);
            i.expect_prompt(true)
        });
        assert_eq!(
            evs,
            [Ev::ReadHeader(payload.len(), None), Ev::Data(payload.to_vec()), Ev::DataEnd, Ev::Final(Final::Ok)]
        );
    }

    #[test]
    fn qird_every_byte_value() {
        let payload: Vec<u8> = (0..=255u8).collect();
        let mut stream = b"\r\n+QIRD: 256\r\n".to_vec();
        stream.extend_from_slice(&payload);
        stream.extend_from_slice(b"\r\n\r\nOK\r\n");
        let mut ing = Ingress::new();
        ing.expect_read(true);
        let evs = run(&mut ing, &[&stream]);
        assert_eq!(evs, [Ev::ReadHeader(256, None), Ev::Data(payload), Ev::DataEnd, Ev::Final(Final::Ok)]);
    }

    #[test]
    fn qird_forms() {
        let evs = every_split(b"\r\n+QIRD: 0\r\n\r\nOK\r\n", |i| i.expect_read(true));
        assert_eq!(evs, [Ev::ReadHeader(0, None), Ev::Final(Final::Ok)]);
        // the ,0 query form is an ordinary response line
        let evs = every_split(b"\r\n+QIRD: 5,5,0\r\n\r\nOK\r\n", |i| i.expect_read(true));
        assert_eq!(evs, [line("+QIRD: 5,5,0"), Ev::Final(Final::Ok)]);
        // UDP SERVICE: sender in the header
        let evs = every_split(b"\r\n+QIRD: 4,\"10.7.76.34\",7687\r\nAAAA\r\n\r\nOK\r\n", |i| i.expect_read(true));
        let from: SocketAddr = "10.7.76.34:7687".parse().unwrap();
        assert_eq!(evs, [Ev::ReadHeader(4, Some(from)), Ev::Data(b"AAAA".to_vec()), Ev::DataEnd, Ev::Final(Final::Ok)]);
        // zero-length datagram
        let evs = every_split(b"\r\n+QIRD: 0,\"10.7.76.34\",7687\r\n\r\n\r\nOK\r\n", |i| i.expect_read(true));
        assert_eq!(evs, [Ev::ReadHeader(0, Some(from)), Ev::Final(Final::Ok)]);
        // without an outstanding read, +QIRD: is just a line
        let evs = every_split(b"\r\n+QIRD: 4\r\n", |_| {});
        assert_eq!(evs, [line("+QIRD: 4")]);
    }

    #[test]
    fn urc_between_header_lines_and_after_ok() {
        let evs = every_split(b"\r\n+QIURC: \"recv\",3\r\n\r\n+QIRD: 2\r\nok\r\n\r\nOK\r\n\r\n+QIOPEN: 1,0\r\n", |i| {
            i.expect_read(true)
        });
        assert_eq!(
            evs,
            [
                line("+QIURC: \"recv\",3"),
                Ev::ReadHeader(2, None),
                Ev::Data(b"ok".to_vec()),
                Ev::DataEnd,
                Ev::Final(Final::Ok),
                line("+QIOPEN: 1,0")
            ]
        );
    }

    #[test]
    #[cfg(not(feature = "direct-push"))]
    fn without_direct_push_a_recv_urc_never_frames_data() {
        let evs = every_split(b"\r\n+QIURC: \"recv\",0,4\r\n+QIURC: \"recv\",2,3,\"127.0.0.1\",9\r\n", |i| {
            i.set_push_mode(0, true)
        });
        assert_eq!(evs, [line("+QIURC: \"recv\",0,4"), line("+QIURC: \"recv\",2,3,\"127.0.0.1\",9")]);
    }

    #[test]
    #[cfg(feature = "direct-push")]
    fn direct_push_only_for_push_sockets() {
        // socket 0 in push mode: data follows the URC
        let evs =
            every_split(b"\r\n+QIURC: \"recv\",0,4\r\ntest\r\n+QIURC: \"recv\",1,4\r\n", |i| i.set_push_mode(0, true));
        assert_eq!(
            evs,
            [Ev::PushHeader(0, 4, None), Ev::Data(b"test".to_vec()), Ev::DataEnd, line("+QIURC: \"recv\",1,4")]
        );
        // UDP SERVICE push always carries the sender and data
        let evs = every_split(b"\r\n+QIURC: \"recv\",2,3,\"127.0.0.1\",9\r\nOK\n\r\n", |_| {});
        assert_eq!(
            evs,
            [Ev::PushHeader(2, 3, Some("127.0.0.1:9".parse().unwrap())), Ev::Data(b"OK\n".to_vec()), Ev::DataEnd]
        );
    }

    #[test]
    fn payload_echo_is_skipped() {
        let evs = every_split(b"\r\n> OK\r\n\r\nSEND OK\r\n", |i| i.expect_prompt(true));
        // without knowing about the echo, the echoed payload would look like a result: that is
        // why the engine tells the ingress how many bytes of echo to expect
        assert_eq!(evs[0], Ev::Prompt);
        let mut ing = Ingress::new();
        ing.expect_prompt(true);
        let mut evs = run(&mut ing, &[b"\r\n> "]);
        ing.expect_payload_echo(4);
        evs.extend(run(&mut ing, &[b"OK\r\n", b"\r\nSEND OK\r\n"]));
        assert_eq!(evs, [Ev::Prompt, Ev::Echo, Ev::Final(Final::SendOk)]);
    }

    #[test]
    #[cfg(feature = "transparent")]
    fn transparent_mode_until_no_carrier() {
        let mut ing = Ingress::new();
        ing.enter_transparent();
        let evs = run(&mut ing, &[b"ab\r\nOK\r\ncd\r", b"\r\nNO CARR", b"IER\r\n\r\nOK\r\n"]);
        assert_eq!(
            evs,
            [Ev::Transparent(b"ab\r\nOK\r\ncd\r".to_vec()), Ev::Final(Final::NoCarrier), Ev::Final(Final::Ok)]
        );
        assert!(!ing.is_transparent());
    }

    #[test]
    #[cfg(feature = "transparent")]
    fn transparent_escape_ok_only_when_expected() {
        let mut ing = Ingress::new();
        ing.enter_transparent();
        ing.expect_escape(true);
        let evs = run(&mut ing, &[b"data\r\nOK\r\n\r\n+QIURC: \"recv\",0\r\n"]);
        assert_eq!(evs, [Ev::Transparent(b"data".to_vec()), Ev::Final(Final::Ok), line("+QIURC: \"recv\",0")]);
    }

    #[test]
    #[cfg(feature = "transparent")]
    fn transparent_held_bytes_can_be_flushed() {
        let mut ing = Ingress::new();
        ing.enter_transparent();
        let evs = run(&mut ing, &[b"line\r\n"]);
        assert_eq!(evs, [Ev::Transparent(b"line".to_vec())]);
        assert_eq!(ing.held_len(), 2);
        assert_eq!(ing.flush_held().map(own), Some(Ev::Transparent(b"\r\n".to_vec())));
        assert_eq!(ing.held_len(), 0);
        assert_eq!(run(&mut ing, &[b"x"]), [Ev::Transparent(b"x".to_vec())]);
    }

    #[test]
    fn overlong_line_is_reported_and_recovered() {
        let mut stream = b"\r\n".to_vec();
        stream.extend(std::iter::repeat_n(b'x', LINE_CAP + 10));
        stream.extend_from_slice(b"\r\n\r\nOK\r\n");
        let mut ing = Ingress::new();
        let evs = run(&mut ing, &[&stream]);
        assert_eq!(evs, [Ev::LineOverflow, Ev::Final(Final::Ok)]);
    }

    #[test]
    fn garbage_bytes_never_panic() {
        let mut ing = Ingress::new();
        ing.expect_read(true);
        let junk: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        let _ = run(&mut ing, &[&junk]);
        // and it still parses a result afterwards
        let evs = run(&mut ing, &[b"\r\n\r\nOK\r\n"]);
        assert!(evs.contains(&Ev::Final(Final::Ok)), "{evs:?}");
    }
}
