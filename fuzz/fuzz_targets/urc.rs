//! `urc::parse` on arbitrary lines.
//!
//! Checked: no panic; every connectID, server ID and context ID reported is within the manual's
//! range; borrowed text is part of the line; nothing is both a URC and a final result code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use quectel_bg96::ingress::parse_final;
use quectel_bg96::urc::{self, Urc};

fuzz_target!(|line: &[u8]| {
    let Some(u) = urc::parse(line) else {
        return;
    };
    assert!(parse_final(line).is_none(), "a final result code parsed as a URC");
    match u {
        Urc::Recv { connect_id, .. } | Urc::Closed { connect_id } | Urc::Open { connect_id, .. } => {
            assert!(connect_id <= 11)
        }
        Urc::Incoming { connect_id, server_id, .. } => assert!(connect_id <= 11 && server_id <= 11),
        Urc::PdpDeact { context_id } => assert!((1..=16).contains(&context_id)),
        Urc::Qind(text) => assert!(line.ends_with(text)),
        Urc::Ping(_) => assert!(line.starts_with(b"+QPING:")),
        Urc::Ready | Urc::AppReady | Urc::PoweredDown => assert!(matches!(line, b"RDY" | b"APP RDY" | b"POWERED DOWN")),
        Urc::IncomingFull
        | Urc::DnsResult { .. }
        | Urc::DnsAddress(_)
        | Urc::Ntp { .. }
        | Urc::Sim(_)
        | Urc::Registration { .. } => {}
    }
});
