//! Modem bring-up and the procedures both fronts share, following the manual's Figure 1 and
//! the field notes: synchronisation, echo off, error reporting, (U)SIM and registration
//! polling, context configuration and activation, cleanup of sockets left open by an earlier
//! run of the host, opening and closing sockets, DNS.
//!
//! # One source, two fronts
//!
//! The procedures are written once, in `procedures.rs`, and compiled twice: as `async fn`s
//! over [`Channel`](crate::channel::Channel) (exported here, for the async front) and as plain
//! functions over [`BlockingChannel`](crate::channel::BlockingChannel) (`modem::blocking`, for
//! the blocking front). The blocking front therefore runs them as ordinary calls, with no
//! future, no executor and none of the state-machine code an `async fn` compiles to: on a
//! microcontroller that uses only the blocking stack this is several kilobytes of flash.
//! Inside `procedures.rs`, `aw!(e)` stands for `e.await` and `Ret!(T)` / `run!({ .. })` make
//! a function `async`; everything else is plain Rust and reads the same for both.

use core::net::IpAddr;

use crate::commands::{AccessMode, Host, Revision, ServiceType};
use crate::error::{Error, ErrorCode, Result};
use crate::socket::{SlotRef, SlotState};

/// What bring-up learnt about the modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModemInfo {
    /// Firmware revision from `AT+QGMR` (behaviour differs between revisions; log it).
    pub revision: Revision,
    /// The local address of the stack's context.
    pub local_ip: Option<IpAddr>,
    /// Whether `recv` URCs carry data lengths (`AT+QICFG="recvind",1` accepted).
    pub recvind: bool,
    /// Sockets an earlier run of the host had left open and that were closed.
    pub stale_sockets_closed: u8,
}

/// Timeout of one synchronisation `AT` (short: the modem may not be up yet).
const SYNC_AT_MS: u32 = 500;

// The fixed settings of bring-up, as the exact lines of their typed commands (checked by
// `fixed_lines_are_the_typed_commands`): one writer for all of them in the firmware.
/// `AT`: [`At`](crate::commands::At), the modem's sign of life.
const ATTENTION: &[u8] = b"AT\r";
/// `ATE0`: [`Ate`](crate::commands::Ate) `{ echo: false }`.
const ECHO_OFF: &[u8] = b"ATE0\r";
/// `AT+CMEE=1`: [`Cmee`](crate::commands::Cmee) `{ mode: 1 }`.
const NUMERIC_ERRORS: &[u8] = b"AT+CMEE=1\r";
/// `AT+QISDE=0`: [`Qisde`](crate::commands::Qisde) `{ echo: false }`.
const PAYLOAD_ECHO_OFF: &[u8] = b"AT+QISDE=0\r";
/// `AT+QICFG="dataformat",0,0`: text data both ways.
const TEXT_DATA: &[u8] = b"AT+QICFG=\"dataformat\",0,0\r";
/// `AT+QICFG="viewmode",0`: the `+QIRD` header and the data on separate lines.
const SEPARATE_LINES: &[u8] = b"AT+QICFG=\"viewmode\",0\r";
/// `AT+QICFG="recvind",1`: buffer-mode `recv` URCs with the length.
const RECVIND_ON: &[u8] = b"AT+QICFG=\"recvind\",1\r";

/// Parameters of a socket to open.
#[derive(Debug, Clone, Copy)]
pub struct OpenParams<'a> {
    /// Context.
    pub context_id: u8,
    /// Service type.
    pub service_type: ServiceType,
    /// Remote host (clients).
    pub remote: Host<'a>,
    /// Remote port (clients).
    pub remote_port: u16,
    /// Local port (0 = any, for clients).
    pub local_port: u16,
    /// Access mode.
    pub access_mode: AccessMode,
}

/// The deferred result of an open: `None` while it is pending, `Some(Ok)` when open,
/// `Some(Err)` when the modem refused it (the slot is then queued for `AT+QICLOSE`).
pub fn open_result(s: &mut crate::core::State, r: SlotRef) -> Option<Result<()>> {
    let slot = match s.sockets.current_mut(r) {
        Ok(slot) => slot,
        Err(e) => return Some(Err(e)),
    };
    match slot.open_result {
        None => None,
        Some(0) => {
            s.recovery.open_failures = 0;
            Some(Ok(()))
        }
        Some(code) => {
            slot.release(SlotState::PendingClose, None);
            s.recovery.open_failures = s.recovery.open_failures.saturating_add(1);
            Some(Err(Error::Modem(ErrorCode::from_code(code))))
        }
    }
}

/// Picks the address for `addr_type` from a finished DNS query and ends the query. `None`
/// while the query is still running.
pub fn dns_result(s: &mut crate::core::State, addr_type: &embedded_nal::AddrType) -> Option<Result<IpAddr>> {
    let result = s.dns.result.take()?;
    s.dns.pending = false;
    Some(match result {
        Err(code) => Err(Error::Modem(ErrorCode::from_code(code))),
        Ok(()) => {
            let v4 = s.dns.ipv4.map(IpAddr::V4);
            let v6 = s.dns.ipv6.map(IpAddr::V6);
            match addr_type {
                embedded_nal::AddrType::IPv4 => v4,
                embedded_nal::AddrType::IPv6 => v6,
                embedded_nal::AddrType::Either => v4.or(v6),
            }
            .ok_or(Error::NotFound)
        }
    })
}

/// What one `AT+QIRD` on a socket gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// A datagram or a piece of the byte stream (`len` may be 0 for a zero-length datagram).
    Data {
        /// Bytes written to the buffer.
        len: usize,
        /// Sender (datagram sockets).
        remote: Option<core::net::SocketAddr>,
    },
    /// Nothing was waiting after all.
    Empty,
    /// Nothing is waiting and the peer closed: end of stream.
    Closed,
}

/// The outcome of [`ping`](ping()).
#[cfg(feature = "ping")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingResult {
    /// One entry per request: the reply, or why there was none (e.g. 569, timeout).
    pub replies: heapless::Vec<core::result::Result<crate::commands::PingReply, ErrorCode>, 10>,
    /// The statistics of the modem's summary line.
    pub summary: crate::commands::PingSummary,
}

/// Whether [`ensure_ready`] has something to do: after the first bring-up, a reboot asked for,
/// a command left unanswered, or a modem that restarted by itself.
pub fn recovery_due(s: &crate::core::State) -> bool {
    let r = &s.recovery;
    r.brought_up && (r.reboot_needed || r.suspect || s.modem.rebooted)
}

/// Notes that data was sent on a TCP socket: its acknowledgement is checked later.
pub fn note_sent(
    s: &mut crate::core::State,
    r: SlotRef,
    now: crate::clock::Instant,
    policy: &crate::recovery::RebootPolicy,
) {
    if !policy.ack_supervision {
        return;
    }
    if let Ok(slot) = s.sockets.current_mut(r)
        && matches!(slot.service, ServiceType::Tcp | ServiceType::TcpIncoming)
        && slot.ack_due.is_none()
    {
        slot.ack_due = Some(now.after_ms(policy.ack_interval_ms));
        slot.ack_checks = 0;
    }
}
// The async procedures: `aw!(e)` is `e.await`, `Ret!(T)` a future of `T`, `run!` its body.
macro_rules! aw {
    ($e:expr) => {
        $e.await
    };
}
macro_rules! Ret {
    ($t:ty) => { impl core::future::Future<Output = $t> };
}
macro_rules! run {
    ($b:block) => {
        async move $b
    };
}
macro_rules! use_channel {
    () => {
        use crate::channel::Channel;
    };
}
// `procedures.rs` is loaded twice on purpose (duplicate_mod), and its functions return an
// `async move` block through `Ret!`/`run!` because the same text must also compile without
// `async` (manual_async_fn).
#[allow(clippy::manual_async_fn, clippy::duplicate_mod)]
#[path = "procedures.rs"]
mod asynch;
pub use asynch::*;

// The same procedures for the blocking front: plain calls, no futures.
macro_rules! aw {
    ($e:expr) => {
        $e
    };
}
macro_rules! Ret {
    ($t:ty) => {
        $t
    };
}
macro_rules! run {
    ($b:block) => {
        $b
    };
}
macro_rules! use_channel {
    () => {
        use crate::channel::BlockingChannel as Channel;
    };
}
// (the blocking front resolves names without waiting in `resolve`: not every procedure has a
// blocking caller)
#[allow(dead_code, clippy::duplicate_mod)]
#[path = "procedures.rs"]
pub(crate) mod blocking;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::tests::bytes;
    use crate::commands::{At, Ate, Cmee, Qicfg, QicfgSetting, Qisde};

    #[test]
    fn fixed_lines_are_the_typed_commands() {
        fn line(b: &[u8]) -> &str {
            core::str::from_utf8(b).unwrap()
        }
        assert_eq!(line(ATTENTION), bytes(&At));
        assert_eq!(line(ECHO_OFF), bytes(&Ate { echo: false }));
        assert_eq!(line(NUMERIC_ERRORS), bytes(&Cmee { mode: 1 }));
        assert_eq!(line(PAYLOAD_ECHO_OFF), bytes(&Qisde { echo: false }));
        assert_eq!(line(TEXT_DATA), bytes(&Qicfg(QicfgSetting::DataFormat { send_hex: false, recv_hex: false })));
        assert_eq!(line(SEPARATE_LINES), bytes(&Qicfg(QicfgSetting::ViewMode(0))));
        assert_eq!(line(RECVIND_ON), bytes(&Qicfg(QicfgSetting::RecvInd(true))));
    }
}
