//! Helpers shared by the fuzz targets.
//!
//! The `ingress` and `core_feed` targets read their input as a small *program* followed by the
//! modem's byte stream:
//!
//! ```text
//! [n] [n program bytes] [stream bytes ...]
//! ```
//!
//! Each program byte is an operation `op = byte >> 5` with an argument `arg = byte & 31`. Operation
//! 0 feeds the next chunk of the stream (its size comes from `arg`, see [`chunk_len`]); the other
//! operations change expectations between chunks (the target defines them). Whatever stream is left
//! when the program ends is fed in one last chunk. Seeds are real modem output behind a program of
//! a few bytes (see `make_corpus.py`), so they stay readable.

use std::net::SocketAddr;
use std::vec::Vec;

use quectel_bg96::ingress::{Event, Final};

/// Splits an input into its program and its stream.
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    let Some((&n, rest)) = data.split_first() else {
        return (&[], &[]);
    };
    let n = usize::from(n).min(rest.len());
    rest.split_at(n)
}

/// The chunk size of a feed operation: 1..=8 times 1, 4, 16 or 64 (1 to 512 bytes).
pub fn chunk_len(arg: u8) -> usize {
    (usize::from(arg % 8) + 1) << (usize::from(arg / 8) * 2)
}

/// An owned copy of an [`Event`], for comparing event streams.
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

impl Ev {
    pub fn of(e: &Event<'_>) -> Ev {
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
}

/// Appends `ev` to `out`, merging adjacent `Data` and adjacent `Transparent` chunks and dropping
/// empty ones, so that the stream does not depend on where the input was split.
pub fn push_normalised(out: &mut Vec<Ev>, ev: Ev) {
    match (ev, out.last_mut()) {
        (Ev::Data(d) | Ev::Transparent(d), _) if d.is_empty() => {}
        (Ev::Data(d), Some(Ev::Data(prev))) => prev.extend_from_slice(&d),
        (Ev::Transparent(d), Some(Ev::Transparent(prev))) => prev.extend_from_slice(&d),
        (ev, _) => out.push(ev),
    }
}
