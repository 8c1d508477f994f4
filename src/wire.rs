//! Byte-level helpers for AT command lines: a bounded, fallible writer for commands and small
//! parsers for the comma-separated fields of response lines.
//!
//! Nothing here allocates or panics: writing more than a sink holds is [`Error::Overflow`], a
//! string the modem cannot take in quotes is [`Error::InvalidArgument`], and parsers return
//! `None` on anything that does not have the manual's form.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::error::{Error, Result};

/// Where command bytes go: a buffer (for [`atat::AtatCmd::write`] and tests) or the serial port.
///
/// Writing to a sink never fails the writer: a sink that can fail (a buffer that fills up,
/// a serial port that reports an error) remembers it, ignores what comes after, and its owner
/// checks once the command is written ([`SliceSink::finish`]). Command writers then need no
/// error check after every piece, which is most of their code on a microcontroller; their
/// own `Result` reports arguments the modem cannot take.
pub trait Sink {
    /// Append bytes.
    fn put(&mut self, bytes: &[u8]);
}

/// A [`Sink`] over a caller's slice.
pub struct SliceSink<'a> {
    buf: &'a mut [u8],
    len: usize,
    overflow: bool,
}

impl<'a> SliceSink<'a> {
    /// A sink that fills `buf` from its start.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self { buf, len: 0, overflow: false }
    }

    /// The length written, or [`Error::Overflow`] if what was written did not fit.
    pub fn finish(&self) -> Result<usize> {
        if self.overflow { Err(Error::Overflow) } else { Ok(self.len) }
    }

    /// The bytes written so far (the part that fitted, after an overflow).
    pub fn written(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// How many bytes were written.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Sink for SliceSink<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        match self.buf.get_mut(self.len..end) {
            Some(dst) if !self.overflow => {
                dst.copy_from_slice(bytes);
                self.len = end;
            }
            _ => self.overflow = true,
        }
    }
}

/// A [`Sink`] that takes everything and keeps nothing: writing a command to it checks its
/// arguments.
pub struct Discard;

impl Sink for Discard {
    fn put(&mut self, _: &[u8]) {}
}

/// A [`Sink`] that keeps `N` bytes of what is written, from byte `skip` on, and counts the
/// whole: writing a command once per window sends a long line in `N`-byte pieces without a
/// buffer for all of it (the async front, whose buffers live in futures, uses it).
pub struct Window<const N: usize> {
    skip: usize,
    total: usize,
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Window<N> {
    /// A window on the bytes `skip..skip + N`.
    pub const fn new(skip: usize) -> Self {
        Self { skip, total: 0, buf: [0; N], len: 0 }
    }

    /// The bytes of the window that were written.
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    /// How many bytes were written in all.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Where the window starts.
    pub fn start(&self) -> usize {
        self.skip
    }
}

impl<const N: usize> Sink for Window<N> {
    fn put(&mut self, bytes: &[u8]) {
        let start = self.total;
        self.total = start.saturating_add(bytes.len());
        // the part of `bytes` at or after `skip + len` that still fits the window
        let next = self.skip.saturating_add(self.len);
        let from = next.saturating_sub(start);
        let take = N.saturating_sub(self.len).min(bytes.len().saturating_sub(from));
        if take > 0 && start.saturating_add(from) == next {
            let src = bytes.get(from..from.saturating_add(take)).unwrap_or(&[]);
            if let Some(dst) = self.buf.get_mut(self.len..self.len.saturating_add(src.len())) {
                dst.copy_from_slice(src);
                self.len += src.len();
            }
        }
    }
}

/// Writes an unsigned decimal number.
pub fn put_u32(sink: &mut dyn Sink, value: u32) {
    put_radix(sink, value, 10);
}

/// Writes `value` in base `radix` (10 or 16; upper-case hex digits, no leading zeros).
fn put_radix(sink: &mut dyn Sink, mut value: u32, radix: u32) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut digits = [0u8; 10];
    let mut start = digits.len();
    loop {
        start -= 1;
        if let (Some(d), Some(&c)) = (digits.get_mut(start), DIGITS.get((value % radix) as usize)) {
            *d = c;
        }
        value /= radix;
        if value == 0 || start == 0 {
            break;
        }
    }
    sink.put(digits.get(start..).unwrap_or(&[]));
}

/// Writes a comma and then an unsigned decimal number.
pub fn put_arg_u32(sink: &mut dyn Sink, value: u32) {
    sink.put(b",");
    put_u32(sink, value);
}

/// Whether the modem can carry `s` inside double quotes: printable ASCII without `"`.
pub fn quotable(s: &str) -> bool {
    s.bytes().all(|b| (0x20..=0x7e).contains(&b) && b != b'"')
}

/// Writes `"s"`, refusing strings longer than `max` or with characters that cannot be quoted.
pub fn put_quoted(sink: &mut dyn Sink, s: &str, max: usize) -> Result<()> {
    if s.len() > max || !quotable(s) {
        return Err(Error::InvalidArgument);
    }
    sink.put(b"\"");
    sink.put(s.as_bytes());
    sink.put(b"\"");
    Ok(())
}

/// Writes an IP address in quotes, IPv6 without `::` compression (the BG96 rejects it).
pub fn put_ip(sink: &mut dyn Sink, ip: IpAddr) -> Result<()> {
    // the groups, how many, their base and separator: one loop for both families
    let mut groups = [0u16; 8];
    let (n, radix, separator) = match ip {
        IpAddr::V4(v4) => {
            for (g, o) in groups.iter_mut().zip(v4.octets()) {
                *g = u16::from(o);
            }
            (4, 10, b".")
        }
        #[cfg(feature = "ipv6")]
        IpAddr::V6(v6) => {
            groups = v6.segments();
            (8, 16, b":")
        }
        #[cfg(not(feature = "ipv6"))]
        IpAddr::V6(_) => return Err(crate::error::Error::NotSupported),
    };
    sink.put(b"\"");
    for (i, g) in groups.iter().take(n).enumerate() {
        if i > 0 {
            sink.put(separator);
        }
        put_radix(sink, u32::from(*g), radix);
    }
    sink.put(b"\"");
    Ok(())
}

/// Writes bytes as upper-case hex digits (for `AT+QISENDEX`).
pub fn put_hex(sink: &mut dyn Sink, data: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for chunk in data.chunks(32) {
        let mut out = [0u8; 64];
        for (i, b) in chunk.iter().enumerate() {
            if let (Some(hi), Some(lo)) = (HEX.get(usize::from(b >> 4)), HEX.get(usize::from(b & 15))) {
                if let Some(pair) = out.get_mut(2 * i..2 * i + 2) {
                    pair.copy_from_slice(&[*hi, *lo]);
                }
            }
        }
        sink.put(out.get(..2 * chunk.len()).unwrap_or(&[]));
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing

/// The value `key` maps to in `table`. One loop over a table instead of a `match` on byte
/// strings: rustc compiles each such `match` into its own chain of length checks and
/// comparisons, which costs flash in every parser.
pub fn lookup<T: Copy>(table: &[(&[u8], T)], key: &[u8]) -> Option<T> {
    table.iter().find(|(name, _)| *name == key).map(|(_, value)| *value)
}

/// The text after `prefix` (e.g. `+QIACT:`) with leading spaces removed, if `line` starts with it.
pub fn after_prefix<'a>(line: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let rest = line.strip_prefix(prefix)?;
    Some(trim_start(rest))
}

/// `bytes` without leading spaces.
pub fn trim_start(mut bytes: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

/// `bytes` without surrounding spaces.
pub fn trim(bytes: &[u8]) -> &[u8] {
    let mut b = trim_start(bytes);
    while let [rest @ .., b' '] = b {
        b = rest;
    }
    b
}

/// Iterator over the comma-separated fields of a response line; commas inside double quotes do
/// not split. Fields keep their quotes; see [`unquote`].
#[derive(Clone)]
pub struct Fields<'a> {
    rest: Option<&'a [u8]>,
}

/// The fields of `params` (the part of a line after its `+XXX: ` prefix).
pub fn fields(params: &[u8]) -> Fields<'_> {
    Fields { rest: Some(params) }
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let s = self.rest?;
        let mut quoted = false;
        for (i, &b) in s.iter().enumerate() {
            match b {
                b'"' => quoted = !quoted,
                b',' if !quoted => {
                    self.rest = s.get(i + 1..);
                    return Some(trim(s.get(..i).unwrap_or(&[])));
                }
                _ => {}
            }
        }
        self.rest = None;
        Some(trim(s))
    }
}

impl<'a> Fields<'a> {
    /// The next field as a number.
    pub fn u32(&mut self) -> Option<u32> {
        parse_u32(self.next()?)
    }

    /// The next field as a number that fits `u16`.
    pub fn u16(&mut self) -> Option<u16> {
        u16::try_from(self.u32()?).ok()
    }

    /// The next field as a number that fits `u8`.
    pub fn u8(&mut self) -> Option<u8> {
        u8::try_from(self.u32()?).ok()
    }

    /// The next field without its quotes.
    pub fn quoted(&mut self) -> Option<&'a [u8]> {
        unquote(self.next()?)
    }

    /// The next field as a quoted (or bare) IP address.
    pub fn ip(&mut self) -> Option<IpAddr> {
        let f = self.next()?;
        parse_ip(unquote(f).unwrap_or(f))
    }
}

/// The content of a `"quoted"` field (also accepts a bare field).
pub fn unquote(field: &[u8]) -> Option<&[u8]> {
    match field {
        [b'"', inner @ .., b'"'] => Some(inner),
        [b'"', ..] => None,
        bare => Some(bare),
    }
}

/// A decimal number without sign.
pub fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    let mut v: u32 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u32::from(d - b'0'))?;
    }
    Some(v)
}

/// A decimal number that may carry a leading `-` or `+`.
pub fn parse_i32(digits: &[u8]) -> Option<i32> {
    match digits {
        [b'-', rest @ ..] => i32::try_from(parse_u32(rest)?).ok().map(|v| -v),
        [b'+', rest @ ..] => i32::try_from(parse_u32(rest)?).ok(),
        _ => i32::try_from(parse_u32(digits)?).ok(),
    }
}

/// An IPv4 or IPv6 address in text form (IPv6 with or without `::` compression; without the
/// `ipv6` feature an IPv6 address is `None`).
///
/// A small parser of its own: `core::net`'s general one costs kilobytes of flash.
pub fn parse_ip(text: &[u8]) -> Option<IpAddr> {
    if has(text, b':') {
        #[cfg(feature = "ipv6")]
        return parse_ipv6(text).map(IpAddr::V6);
        #[cfg(not(feature = "ipv6"))]
        return None;
    }
    parse_ipv4(text).map(IpAddr::V4)
}

fn parse_ipv4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split(|&b| b == b'.');
    for o in octets.iter_mut() {
        let p = parts.next()?;
        if p.len() > 3 || (p.len() > 1 && p.first() == Some(&b'0')) {
            return None;
        }
        *o = u8::try_from(parse_u32(p)?).ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// Whether `text` holds `byte` (`<[u8]>::contains` brings a 156-byte `memchr` along).
#[allow(clippy::manual_contains)] // on purpose: the size, not the speed, matters here
fn has(text: &[u8], byte: u8) -> bool {
    text.iter().any(|&b| b == byte)
}

#[cfg(feature = "ipv6")]
/// An IPv6 address in one pass, as `core::net` reads it: up to eight groups of 1–4 hex digits,
/// at most one `::` standing for at least one zero group, and a dotted IPv4 address as the
/// last two groups (`::ffff:10.0.0.1`).
fn parse_ipv6(text: &[u8]) -> Option<core::net::Ipv6Addr> {
    let mut g = [0u16; 8];
    let mut n = 0;
    let mut gap = None;
    let mut i = 0;
    if text.starts_with(b"::") {
        gap = Some(0);
        i = 2;
    }
    while i < text.len() {
        let start = i;
        let mut v = 0u32;
        while let Some(d) = text.get(i).and_then(|&c| (c as char).to_digit(16)) {
            v = (v << 4) | d;
            i += 1;
        }
        if text.get(i) == Some(&b'.') {
            // the rest is an IPv4 address
            let [a, b, c, d] = parse_ipv4(text.get(start..)?)?.octets();
            *g.get_mut(n + 1)? = u16::from_be_bytes([c, d]);
            *g.get_mut(n)? = u16::from_be_bytes([a, b]);
            n += 2;
            break;
        }
        if i == start || i - start > 4 {
            return None;
        }
        *g.get_mut(n)? = v as u16;
        n += 1;
        match text.get(i) {
            None => break,
            Some(b':') if text.get(i + 1) == Some(&b':') && gap.is_none() => {
                gap = Some(n);
                i += 2;
            }
            // a colon must be followed by a group
            Some(b':') if i + 1 < text.len() => i += 1,
            _ => return None,
        }
    }
    match gap {
        None if n == 8 => {}
        // the groups after the gap move to the end
        Some(at) if n < 8 => {
            for k in (at..n).rev() {
                *g.get_mut(k + 8 - n)? = core::mem::take(g.get_mut(k)?);
            }
        }
        _ => return None,
    }
    Some(core::net::Ipv6Addr::from(g))
}

/// `ip` and `port` fields as a socket address. Out of line: `SocketAddr::new` is inlined
/// as a 56-byte match at every call otherwise.
#[inline(never)]
pub fn socket_addr(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use std::vec::Vec;

    use super::*;

    /// `parse_ip` against `core::net` on 300,000 strings made of the characters addresses are
    /// made of (a fixed generator: the same strings on every run).
    #[test]
    fn parse_ip_agrees_with_core_net() {
        const CHARS: &[u8] = b"0123456789abcdefABCDEFg:::..";
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut text = Vec::new();
        for _ in 0..300_000 {
            text.clear();
            let len = (next() % 42) as usize;
            // mostly well-formed pieces: groups of hex digits, separators, IPv4 tails
            while text.len() < len {
                match next() % 6 {
                    0 => text.extend_from_slice(b"::"),
                    1 => text.push(b':'),
                    2 => text.extend_from_slice(
                        std::format!("{}.{}.{}.{}", next() % 300, next() % 256, next() % 256, next() % 256).as_bytes(),
                    ),
                    _ => {
                        for _ in 0..(1 + next() % 5) {
                            text.push(CHARS[(next() % CHARS.len() as u64) as usize]);
                        }
                    }
                }
            }
            let ours = parse_ip(&text);
            let theirs = core::str::from_utf8(&text).ok().and_then(|t| t.parse::<IpAddr>().ok());
            let theirs = if cfg!(feature = "ipv6") { theirs } else { theirs.filter(IpAddr::is_ipv4) };
            assert_eq!(ours, theirs, "{:?}", core::str::from_utf8(&text));
        }
    }

    fn written<R>(f: impl FnOnce(&mut dyn Sink) -> R) -> Vec<u8> {
        let mut buf = [0u8; 128];
        let mut s = SliceSink::new(&mut buf);
        f(&mut s);
        let n = s.finish().unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn numbers() {
        assert_eq!(&written(|s| put_u32(s, 0))[..], b"0");
        assert_eq!(&written(|s| put_u32(s, 150_000))[..], b"150000");
        assert_eq!(&written(|s| put_u32(s, u32::MAX))[..], b"4294967295");
        assert_eq!(parse_u32(b"4294967295"), Some(u32::MAX));
        assert_eq!(parse_u32(b"4294967296"), None);
        assert_eq!(parse_u32(b""), None);
        assert_eq!(parse_u32(b"1a"), None);
        assert_eq!(parse_i32(b"-48"), Some(-48));
        assert_eq!(parse_i32(b"+32"), Some(32));
    }

    #[test]
    fn ip_addresses_are_written_as_the_bg96_wants_them() {
        let v4: IpAddr = "220.180.239.212".parse().unwrap();
        assert_eq!(&written(|s| put_ip(s, v4).unwrap())[..], b"\"220.180.239.212\"");
        for s in ["0.0.0.0", "255.255.255.255", "10.7.157.1"] {
            assert_eq!(parse_ip(s.as_bytes()), Some(s.parse().unwrap()), "{s}");
        }
        for s in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1..2.3"] {
            assert_eq!(parse_ip(s.as_bytes()), None, "{s}");
        }
    }

    #[cfg(not(feature = "ipv6"))]
    #[test]
    fn without_the_ipv6_feature_ipv6_addresses_are_refused_and_skipped() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let mut buf = [0u8; 64];
        let mut v = SliceSink::new(&mut buf);
        assert_eq!(put_ip(&mut v, v6), Err(crate::error::Error::NotSupported));
        assert!(v.is_empty(), "nothing written for a refused address");
        assert_eq!(parse_ip(b"2001:DB8:0:0:0:0:0:1"), None);
        assert_eq!(parse_ip(b"::ffff:10.0.0.1"), None);
    }

    #[cfg(feature = "ipv6")]
    #[test]
    fn ipv6_addresses_are_written_in_full_and_parsed_in_every_form() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(&written(|s| put_ip(s, v6).unwrap())[..], b"\"2001:DB8:0:0:0:0:0:1\"");
        assert_eq!(parse_ip(b"2001:DB8:0:0:0:0:0:1"), Some(v6));
        for s in [
            "::",
            "::1",
            "1::",
            "2001:db8::8a2e:370:7334",
            "fe80::1:2:3:4:5",
            "1:2:3:4:5:6:7:8",
            "0.0.0.0",
            "255.255.255.255",
            "10.7.157.1",
            "::92.21.3.12",
            "::ffff:10.0.0.1",
            "64:ff9b::192.0.2.33",
            "1:2:3:4:5:6:1.2.3.4",
        ] {
            assert_eq!(parse_ip(s.as_bytes()), Some(s.parse().unwrap()), "{s}");
        }
        for s in [
            "",
            ":",
            ":::",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "1.2.3.4::",
            "::1.2.3.4:5",
            "1:2:3:4:5:6:7:1.2.3.4",
            "12345::",
            "g::",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "01.2.3.4",
            "1..2.3",
            "1:2:3:4:5:6:7",
        ] {
            assert_eq!(parse_ip(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn quoted_strings_are_checked() {
        assert_eq!(&written(|s| put_quoted(s, "UNINET", 100).unwrap())[..], b"\"UNINET\"");
        let mut buf = [0u8; 128];
        let mut v = SliceSink::new(&mut buf);
        assert_eq!(put_quoted(&mut v, "a\"b", 100), Err(Error::InvalidArgument));
        assert_eq!(put_quoted(&mut v, "a\r\nAT", 100), Err(Error::InvalidArgument));
        assert_eq!(put_quoted(&mut v, "abcdef", 5), Err(Error::InvalidArgument));
        assert!(v.is_empty());
    }

    /// Writes `parts` once per window of `N` bytes and joins the windows.
    fn in_windows<const N: usize>(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let mut w = Window::<N>::new(out.len());
            for p in parts {
                w.put(p);
            }
            assert_eq!(w.total(), parts.concat().len());
            out.extend_from_slice(w.bytes());
            if out.len() >= w.total() {
                return out;
            }
            assert_eq!(w.bytes().len(), N, "only the last piece is short");
        }
    }

    #[test]
    fn windows_cut_what_is_written_into_pieces() {
        let parts: [&[u8]; 5] =
            [b"AT+QIOPEN=", b"1,0,\"TCP\",", b"", b"\"a-rather-long-host-name.example.com\"", b",80,0,0\r"];
        let whole = parts.concat();
        assert_eq!(in_windows::<1>(&parts), whole);
        assert_eq!(in_windows::<3>(&parts), whole);
        assert_eq!(in_windows::<7>(&parts), whole);
        assert_eq!(in_windows::<64>(&parts), whole);
        assert_eq!(in_windows::<200>(&parts), whole);
    }

    #[test]
    fn slice_sink_overflow_is_an_error() {
        let mut buf = [0u8; 4];
        let mut s = SliceSink::new(&mut buf);
        s.put(b"AT");
        assert_eq!(s.finish(), Ok(2));
        s.put(b"+QI");
        // what does not fit is an error, and nothing after it is written, even if it would fit
        s.put(b"X");
        assert_eq!(s.finish(), Err(Error::Overflow));
        assert_eq!(s.written(), b"AT");
    }

    #[test]
    fn hex() {
        assert_eq!(&written(|s| put_hex(s, b"12345"))[..], b"3132333435");
        assert_eq!(&written(|s| put_hex(s, &[0, 0xff]))[..], b"00FF");
    }

    #[test]
    fn fields_respect_quotes() {
        let line = br#"0,"TCP","220.180.239.201",8705,65514,2,1,0,0,"usbmodem""#;
        let mut f = fields(line);
        assert_eq!(f.u8(), Some(0));
        assert_eq!(f.quoted(), Some(&b"TCP"[..]));
        assert_eq!(f.ip(), Some("220.180.239.201".parse().unwrap()));
        assert_eq!(f.u16(), Some(8705));
        assert_eq!(fields(br#""a,b",c"#).collect::<heapless::Vec<_, 4>>()[..], [&b"\"a,b\""[..], &b"c"[..]]);
        assert_eq!(after_prefix(b"+QIRD: 5", b"+QIRD:"), Some(&b"5"[..]));
        assert_eq!(unquote(b"\"abc"), None);
    }
}
