//! The field parsers of `wire` and the line parsers built on them: `fields`, `parse_ip`,
//! `parse_u32`, `parse_i32`, `unquote`/`trim`/`after_prefix`, `NtpTime::parse`,
//! `PingLine::parse`, and the writers they pair with (`put_ip`, `put_u32`, `put_quoted`,
//! `put_hex`, `Host`). The first byte picks the parser, the rest is its input.
//!
//! Checked: no panic; fields split exactly at the commas outside quotes and come out trimmed;
//! numbers and addresses agree with the standard library and survive a write/parse round trip;
//! writers refuse exactly what they must.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use quectel_bg96::commands::{Host, NtpTime, PingLine};
use quectel_bg96::wire::{self, SliceSink};

fn written(f: impl FnOnce(&mut SliceSink<'_>) -> quectel_bg96::Result<()>) -> Option<Vec<u8>> {
    let mut buf = [0u8; 2048];
    let mut sink = SliceSink::new(&mut buf);
    f(&mut sink).ok()?;
    // a sink keeps an overflow to itself until asked
    sink.finish().ok()?;
    Some(sink.written().to_vec())
}

fn check_fields(text: &[u8]) {
    let mut commas = 0;
    let mut quoted = false;
    for &b in text {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            _ => {}
        }
    }
    let mut n = 0;
    for f in wire::fields(text) {
        n += 1;
        assert!(!f.starts_with(b" ") && !f.ends_with(b" "), "untrimmed field {f:?}");
        assert_eq!(wire::trim(f), f);
    }
    assert_eq!(n, commas + 1, "fields must split at the commas outside quotes");
    // the typed accessors, in every order the parsers use them
    let mut f = wire::fields(text);
    let _ = (f.u8(), f.quoted(), f.ip(), f.u16(), f.u32(), f.next());
}

fn check_ip(text: &[u8]) {
    let ip = wire::parse_ip(text);
    let std_ip = std::str::from_utf8(text).ok().and_then(|s| s.parse::<IpAddr>().ok());
    assert_eq!(ip, std_ip, "parse_ip disagrees with std");
    if let Some(ip) = ip {
        let out = written(|s| wire::put_ip(s, ip)).expect("put_ip");
        let inner = wire::unquote(&out).expect("quoted");
        assert!(!inner.windows(2).any(|w| w == b"::"), "IPv6 written with ::");
        assert_eq!(wire::parse_ip(inner), Some(ip), "put_ip/parse_ip round trip");
        assert_eq!(Host::from(std::str::from_utf8(text).unwrap()), Host::Ip(ip));
    }
}

fn check_numbers(text: &[u8]) {
    let v = wire::parse_u32(text);
    let std_v = std::str::from_utf8(text)
        .ok()
        .filter(|s| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u32>().ok());
    assert_eq!(v, std_v, "parse_u32 disagrees with std");
    if let Some(v) = v {
        let out = written(|s| {
            wire::put_u32(s, v);
            Ok(())
        }).expect("put_u32");
        assert_eq!(wire::parse_u32(&out), Some(v));
        assert_eq!(out, v.to_string().into_bytes());
    }
    if let Some(i) = wire::parse_i32(text) {
        let s = std::str::from_utf8(text).expect("digits are UTF-8");
        assert_eq!(s.parse::<i32>().ok(), Some(i), "parse_i32 accepted {s:?}");
    }
}

fn check_quoting(text: &[u8]) {
    assert!(wire::trim_start(text).len() >= wire::trim(text).len());
    if let Some(inner) = wire::unquote(text) {
        assert!(inner == text || (text.len() == inner.len() + 2 && &text[1..text.len() - 1] == inner));
    }
    if let Some(rest) = wire::after_prefix(text, b"+QIRD:") {
        assert!(text.ends_with(rest) && !rest.starts_with(b" "));
    }
    let Ok(s) = std::str::from_utf8(text) else {
        return;
    };
    for max in [0, 8, 64, 253] {
        let out = written(|sink| wire::put_quoted(sink, s, max));
        let allowed = s.len() <= max && wire::quotable(s);
        assert_eq!(out.is_some(), allowed, "put_quoted({s:?}, {max})");
        if let Some(out) = out {
            assert_eq!(out, format!("\"{s}\"").into_bytes());
        }
    }
    let host = Host::from(s);
    if let Some(out) = written(|sink| host.write_to(sink)) {
        assert!(out.len() >= 2 && out.starts_with(b"\"") && out.ends_with(b"\""));
        assert!(!out[1..out.len() - 1].iter().any(|&b| b == b'"' || !(0x20..=0x7e).contains(&b)));
    }
}

fn check_hex(data: &[u8]) {
    let Some(out) = written(|s| {
        wire::put_hex(s, data);
        Ok(())
    }) else {
        assert!(data.len() * 2 > 2048);
        return;
    };
    assert_eq!(out.len(), data.len() * 2);
    let back: Vec<u8> =
        out.chunks(2).map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap()).collect();
    assert_eq!(back, data);
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => check_fields(rest),
        1 => check_ip(rest),
        2 => check_numbers(rest),
        3 => check_quoting(rest),
        4 => {
            if let Some(t) = NtpTime::parse(rest) {
                assert!(t.month < 100 && t.day < 100 && t.hour < 100 && t.minute < 100 && t.second < 100);
            }
        }
        5 => {
            if let Some(PingLine::Summary(s)) = PingLine::parse(rest) {
                let _ = (s.sent, s.received, s.lost);
            }
        }
        6 => check_hex(rest),
        _ => {
            // everything at once on the same text
            check_fields(rest);
            check_ip(rest);
            check_numbers(rest);
            let _ = (NtpTime::parse(rest), PingLine::parse(rest));
        }
    }
});
