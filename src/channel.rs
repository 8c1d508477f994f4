//! The command channel: what the shared procedures need from a front.
//!
//! Procedures (bring-up, opening sockets, DNS, ...) are written once, in
//! [`modem`](crate::modem), and compiled twice: as `async fn`s over [`Channel`], which the
//! async front implements with real waiting, and as plain functions over [`BlockingChannel`],
//! which the blocking front implements by polling the serial port.

use core::net::SocketAddr;

use crate::clock::Instant;
use crate::commands::{CommandLine, Qird, Qisend};
use crate::core::{Kind, State};
use crate::error::{Error, ErrorCode, Result};
use crate::ingress::Final;

/// What a `+QIRD` read delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadInfo {
    /// Payload length announced by the modem.
    pub len: usize,
    /// Bytes written to the caller's buffer (less than `len` if it did not fit).
    pub copied: usize,
    /// Sender (`"UDP SERVICE"` reads).
    pub remote: Option<SocketAddr>,
}

/// A front's command channel.
#[allow(async_fn_in_trait)]
pub trait Channel: Sized {
    /// The time now.
    fn now(&self) -> Instant;

    /// Waits `ms` milliseconds while input keeps being processed.
    async fn sleep_ms(&mut self, ms: u32);

    /// Runs `cmd`: writes it, waits up to `timeout_ms` for the final result (`kind` tells the
    /// shape of the answer) and hands the information lines to `parse` while the command is
    /// still the current one. A final result other than `OK`/`CONNECT` is returned as an error
    /// by [`interpret`]; no `AT+QIGETERROR` here.
    async fn exec_line(
        &mut self,
        cmd: &dyn CommandLine,
        kind: Kind,
        timeout_ms: u32,
        parse: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()>;

    /// Whether `send` and `read` already resolve a bare `ERROR` with `AT+QIGETERROR` (inside
    /// the same turn at the command channel, so no other command can come between them).
    const RESOLVES_ERRORS: bool = false;

    /// [`exec_line`](Channel::exec_line), then, for a bare `ERROR` of a TCP/IP command, the
    /// manual's error code from `AT+QIGETERROR` (field note 6).
    async fn exec_line_resolved(
        &mut self,
        cmd: &dyn CommandLine,
        kind: Kind,
        timeout_ms: u32,
        parse: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        match self.exec_line(cmd, kind, timeout_ms, parse).await {
            Err(Error::Failed) if cmd.is_tcpip() => Err(crate::modem::last_error(self).await),
            other => other,
        }
    }

    /// `AT+QISEND`: the command, the prompt, `data`, then `SEND OK`.
    async fn send(&mut self, cmd: &Qisend, data: &[u8]) -> Result<()>;

    /// `AT+QIRD`: the command and the payload, copied into `dest`.
    async fn read(&mut self, cmd: &Qird, dest: &mut [u8]) -> Result<ReadInfo>;

    /// Processes input until `f` returns `Some`, or `deadline` passes ([`Error::Timeout`]).
    async fn wait_for<T>(&mut self, deadline: Instant, f: impl FnMut(&mut State) -> Option<T>) -> Result<T>;

    /// Access to the engine's state.
    fn state<R>(&mut self, f: impl FnOnce(&mut State) -> R) -> R;

    /// Makes sure every socket nobody owns any more (state `PendingClose`) is closed with
    /// `AT+QICLOSE`. There is one closer: the blocking front closes them itself, the async
    /// front asks its runner and waits, so a connectID is never closed twice (the second
    /// close could hit a new connection on the same id).
    async fn reclaim(&mut self) -> Result<()>;

    /// Runs `f` on the board's power and reset lines.
    fn with_power<R>(&mut self, f: impl FnOnce(&mut dyn crate::recovery::PowerControl) -> R) -> R;

    /// Marks this channel as the one running recovery: its commands go ahead while other
    /// users' commands wait (async front); dropping the channel mid-way ends the recovery.
    fn set_recovery(&mut self, _on: bool) {}

    /// The recovery rules in use now (they can change after the stack was made).
    fn policy(&mut self) -> crate::recovery::RebootPolicy;

    /// This channel started DNS query `ticket` ([`DnsOwner::ticket`](crate::core::DnsOwner)):
    /// if the channel is dropped before the query's result is taken (a cancelled lookup), the
    /// query is given up ([`State::abandon_dns`](crate::core::State::abandon_dns)) so that it
    /// does not hold up the next one.
    fn dns_started(&mut self, _ticket: u8) {}
}

/// The blocking twin of [`Channel`]: the same operations as plain calls (the blocking front
/// polls the serial port inside them). The procedures of [`modem`](crate::modem) are compiled
/// once over each.
pub trait BlockingChannel: Sized {
    /// [`Channel::now`].
    fn now(&self) -> Instant;

    /// [`Channel::sleep_ms`].
    fn sleep_ms(&mut self, ms: u32);

    /// [`Channel::exec_line`].
    fn exec_line(
        &mut self,
        cmd: &dyn CommandLine,
        kind: Kind,
        timeout_ms: u32,
        parse: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()>;

    /// [`Channel::RESOLVES_ERRORS`].
    const RESOLVES_ERRORS: bool = false;

    /// [`Channel::exec_line_resolved`].
    fn exec_line_resolved(
        &mut self,
        cmd: &dyn CommandLine,
        kind: Kind,
        timeout_ms: u32,
        parse: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        match self.exec_line(cmd, kind, timeout_ms, parse) {
            Err(Error::Failed) if cmd.is_tcpip() => Err(crate::modem::blocking::last_error(self)),
            other => other,
        }
    }

    /// [`Channel::send`].
    fn send(&mut self, cmd: &Qisend, data: &[u8]) -> Result<()>;

    /// [`Channel::read`].
    fn read(&mut self, cmd: &Qird, dest: &mut [u8]) -> Result<ReadInfo>;

    /// [`Channel::wait_for`].
    fn wait_for<T>(&mut self, deadline: Instant, f: impl FnMut(&mut State) -> Option<T>) -> Result<T>;

    /// [`Channel::state`].
    fn state<R>(&mut self, f: impl FnOnce(&mut State) -> R) -> R;

    /// [`Channel::reclaim`].
    fn reclaim(&mut self) -> Result<()>;

    /// [`Channel::with_power`].
    fn with_power<R>(&mut self, f: impl FnOnce(&mut dyn crate::recovery::PowerControl) -> R) -> R;

    /// [`Channel::set_recovery`].
    fn set_recovery(&mut self, _on: bool) {}

    /// [`Channel::policy`].
    fn policy(&mut self) -> crate::recovery::RebootPolicy;

    /// [`Channel::dns_started`].
    fn dns_started(&mut self, _ticket: u8) {}
}

/// The error for a final result code.
pub fn interpret(f: Final) -> Result<()> {
    match f {
        Final::Ok | Final::SendOk | Final::Connect => Ok(()),
        Final::Error => Err(Error::Failed),
        Final::CmeError(n) if (550..=574).contains(&n) => Err(Error::Modem(ErrorCode::from_code(n))),
        Final::CmeError(n) => Err(Error::Cme(n)),
        Final::CmsError(n) => Err(Error::Cms(n)),
        Final::SendFail => Err(Error::SendFail),
        Final::NoCarrier => Err(Error::Closed),
    }
}
