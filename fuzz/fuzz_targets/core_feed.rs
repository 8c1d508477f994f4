//! `Core::feed` on arbitrary bytes, with commands of every `Kind` begun and ended, sockets in
//! every state and access mode, and deferred results pending, between chunks.
//!
//! Input: `[n] [n program bytes] [stream]` (see `quectel_bg96_fuzz`). Program operations:
//! 0 feed a chunk, 1 `begin` (the next program byte is its parameter), 2 `end` or `abandon`,
//! 3 `payload_written`, 4 set up a socket slot (next byte: state, mode, service), 5 modem flags
//! and pending DNS/ping/NTP, 6 `flush_transparent`, 7 how much the sink accepts.
//!
//! Checked: no panic, no hang; the sink never gets more `read` bytes than the running command's
//! `+QIRD` header announced, nor any without a header, nor a header after the final result; a direct-push frame gets exactly its
//! announced length, frames never overlap, and push data goes to connectIDs 0–11 only;
//! `bytes_received` and `bytes_lost` add up to what the sink saw and refused; the answer buffer
//! stays within `RESP_CAP`; a prompt is only reported to a send.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use quectel_bg96::commands::{AccessMode, NO_INFO, ServiceType};
use quectel_bg96::core::{Core, DataSink, Kind, RESP_CAP};
use quectel_bg96::error::Error;
use quectel_bg96::socket::SlotState;
use quectel_bg96_fuzz::{chunk_len, split};

const PREFIXES: [&[u8]; 7] = [NO_INFO, b"", b"+QIACT:", b"+QIRD:", b"+QISTATE:", b"+QICSGP:", b"+CREG:"];

#[derive(Default)]
struct CheckSink {
    /// `read` bytes since the running command began.
    read: usize,
    /// The current push frame: connectID, announced length, bytes so far.
    push: Option<(u8, usize, usize)>,
    /// How many bytes of each `push`/`transparent` call the sink takes (`None`: all).
    take: Option<usize>,
    room: Option<usize>,
    /// Every byte offered, and every byte refused.
    offered: u64,
    refused: u64,
}

impl CheckSink {
    fn take(&mut self, data: &[u8]) -> usize {
        let n = self.take.map_or(data.len(), |t| t.min(data.len()));
        self.offered += data.len() as u64;
        self.refused += (data.len() - n) as u64;
        n
    }
}

impl DataSink for CheckSink {
    fn read(&mut self, data: &[u8]) {
        self.read += data.len();
        self.offered += data.len() as u64;
    }

    fn push(&mut self, connect_id: u8, start: Option<(usize, Option<SocketAddr>)>, data: &[u8]) -> usize {
        assert!(connect_id <= 11, "push data for connectID {connect_id}");
        if let Some((len, _)) = start {
            if let Some((id, announced, got)) = self.push {
                assert_eq!(got, announced, "push frame of {id} cut short by a new frame");
            }
            self.push = Some((connect_id, len, 0));
        }
        let (id, announced, got) = self.push.as_mut().expect("push data before a frame start");
        assert_eq!(*id, connect_id, "push data of one frame for two sockets");
        *got += data.len();
        assert!(*got <= *announced, "push frame longer than announced: {got} > {announced}");
        self.take(data)
    }

    fn transparent(&mut self, data: &[u8]) -> usize {
        assert!(!data.is_empty());
        self.take(data)
    }

    fn push_room(&self, connect_id: u8) -> Option<usize> {
        assert!(connect_id <= 11);
        self.room
    }
}

fn check(core: &Core, sink: &CheckSink, last_kind: Option<Kind>) {
    let cmd = &core.st.cmd;
    assert_eq!(cmd.read_got, sink.read, "read_got disagrees with what the sink got");
    match cmd.read_header {
        Some((len, _)) => assert!(sink.read <= len, "sink got {} read bytes, header said {len}", sink.read),
        None => assert_eq!(sink.read, 0, "read bytes with no +QIRD header"),
    }
    let stats = core.st.stats;
    assert_eq!(stats.bytes_received, sink.offered as u32, "bytes_received disagrees with the sink");
    assert_eq!(stats.bytes_lost, sink.refused as u32, "bytes_lost disagrees with the sink");
    if let Ok(resp) = core.response() {
        assert!(resp.len() <= RESP_CAP);
    }
    if core.prompted() {
        assert_eq!(last_kind, Some(Kind::Send), "a prompt for a command that is not a send");
    }
}

fn kind(arg: u8, p: u8) -> Kind {
    match arg % 5 {
        0 => Kind::Plain,
        1 => Kind::Send,
        2 => Kind::Read { connect_id: p % 13 },
        3 => Kind::Switch { connect_id: p % 13, mode: mode(p / 13) },
        _ => Kind::Connect { connect_id: if p & 0x80 != 0 { None } else { Some(p % 13) } },
    }
}

fn mode(p: u8) -> AccessMode {
    [AccessMode::Buffer, AccessMode::DirectPush, AccessMode::Transparent][usize::from(p % 3)]
}

fn slot_setup(core: &mut Core, id: u8, p: u8) {
    let state = [SlotState::Free, SlotState::Opening, SlotState::Open, SlotState::Incoming, SlotState::PendingClose]
        [usize::from(p % 5)];
    let service = [
        ServiceType::Tcp,
        ServiceType::Udp,
        ServiceType::TcpListener,
        ServiceType::TcpIncoming,
        ServiceType::UdpService,
    ][usize::from(p / 15 % 5)];
    let context = if p & 0x80 != 0 { 2 } else { 1 };
    if let Some(slot) = core.st.sockets.get_mut(id) {
        if state == SlotState::Free {
            slot.release(SlotState::Free, None);
        } else {
            slot.occupy(state, service, mode(p / 5), context);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (program, stream) = split(data);
    let mut core = Core::new();
    let mut sink = CheckSink::default();
    let mut pos = 0;
    let mut ops = program.iter().copied();
    let mut last_kind = None;
    let feed = |core: &mut Core, sink: &mut CheckSink, chunk: &[u8], last_kind: Option<Kind>| {
        let finished = core.busy() && core.result().is_some();
        let header = core.st.cmd.read_header;
        core.feed(chunk, sink);
        check(core, sink, last_kind);
        if finished && core.busy() {
            assert_eq!(core.st.cmd.read_header, header, "+QIRD header taken after the final result");
        }
    };
    while let Some(c) = ops.next() {
        let (op, arg) = (c >> 5, c & 31);
        match op {
            0 => {
                let end = (pos + chunk_len(arg)).min(stream.len());
                feed(&mut core, &mut sink, &stream[pos..end], last_kind);
                pos = end;
            }
            1 => {
                let p = ops.next().unwrap_or(0);
                let busy = core.busy();
                let k = kind(arg, p);
                let r = core.begin(PREFIXES[usize::from(arg / 5)], k);
                if busy {
                    assert_eq!(r, Err(Error::Busy));
                } else {
                    assert_eq!(r, Ok(()));
                    sink.read = 0;
                    last_kind = Some(k);
                }
            }
            2 => {
                if arg & 1 == 1 {
                    core.abandon();
                } else if core.ingress().is_idle() {
                    // a front ends a command after its result or on a timeout; here only between
                    // frames: ending one in the middle of a `+QIRD` payload hands the rest of the
                    // payload to the next command (README: "What the targets leave out")
                    core.end();
                }
            }
            3 => {
                if core.prompted() {
                    core.payload_written(chunk_len(arg));
                }
            }
            4 => slot_setup(&mut core, arg % 12, ops.next().unwrap_or(0)),
            5 => match arg % 8 {
                0 => core.st.modem.payload_echo = !core.st.modem.payload_echo,
                1 => {
                    core.st.dns.pending = true;
                    core.st.dns.result = None;
                }
                2 => {
                    core.st.ping.pending = true;
                    core.st.ping.done = None;
                    core.st.ping.replies.clear();
                    core.st.ping.expected = arg / 8 + 1;
                }
                3 => {
                    core.st.ntp.pending = true;
                    core.st.ntp.done = None;
                }
                4 => core.acknowledge_reboot(),
                5 => core.st.modem.recvind = !core.st.modem.recvind,
                6 => core.ingress_mut().expect_escape(true),
                _ => core.ingress_mut().expect_escape(false),
            },
            6 => {
                core.flush_transparent(&mut sink);
                check(&core, &sink, last_kind);
            }
            _ => {
                if arg & 16 != 0 {
                    sink.room = if arg & 8 != 0 { Some(chunk_len(arg & 7)) } else { None };
                } else {
                    sink.take = if arg == 0 { None } else { Some(chunk_len(arg) - 1) };
                }
            }
        }
    }
    feed(&mut core, &mut sink, &stream[pos..], last_kind);
});
