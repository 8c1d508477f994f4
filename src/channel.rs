//! The command channel: what the shared procedures need from a front.
//!
//! Procedures (bring-up, opening sockets, DNS, ...) are written once, as `async fn`s generic
//! over [`Channel`]. The async front implements it with real waiting; the blocking front
//! implements it with futures that complete on their first poll (they poll the serial port
//! inside) and runs the procedures with [`block_on`], which therefore never spins.

use core::future::Future;
use core::net::SocketAddr;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use crate::commands::{Command, CommandLine, Qigeterror, Qird, Qisend};
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
    /// Current time in milliseconds.
    fn now_ms(&self) -> u64;

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

    /// [`exec_line`](Channel::exec_line) for a typed command, returning its parsed answer.
    async fn exec<C: Command>(&mut self, cmd: &C, kind: Kind, timeout_ms: u32) -> Result<C::Response> {
        let mut out = None;
        self.exec_line(cmd, kind, timeout_ms, &mut |resp| {
            out = Some(cmd.parse_lines(resp)?);
            Ok(())
        })
        .await?;
        out.ok_or(Error::Parse)
    }

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
            Err(Error::Failed) if cmd.is_tcpip() => Err(last_error(self).await),
            other => other,
        }
    }

    /// `AT+QISEND`: the command, the prompt, `data`, then `SEND OK`.
    async fn send(&mut self, cmd: &Qisend, data: &[u8]) -> Result<()>;

    /// `AT+QIRD`: the command and the payload, copied into `dest`.
    async fn read(&mut self, cmd: &Qird, dest: &mut [u8]) -> Result<ReadInfo>;

    /// Processes input until `f` returns `Some`, or `deadline_ms` passes ([`Error::Timeout`]).
    async fn wait_for<T>(&mut self, deadline_ms: u64, f: impl FnMut(&mut State) -> Option<T>) -> Result<T>;

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

/// Runs a command with the manual's timeout; a bare `ERROR` of a TCP/IP command is followed by
/// `AT+QIGETERROR` to report the manual's error code (field note 6).
pub async fn command<Ch: Channel, C: Command>(ch: &mut Ch, cmd: &C) -> Result<C::Response> {
    command_with(ch, cmd, Kind::Plain, cmd.timeout_ms()).await
}

/// [`command`] with an explicit answer shape and timeout.
pub async fn command_with<Ch: Channel, C: Command>(
    ch: &mut Ch,
    cmd: &C,
    kind: Kind,
    timeout_ms: u32,
) -> Result<C::Response> {
    let mut out = None;
    command_line(ch, cmd, kind, timeout_ms, &mut |resp| {
        out = Some(cmd.parse_lines(resp)?);
        Ok(())
    })
    .await?;
    out.ok_or(Error::Parse)
}

/// The one (non-generic) path of [`command_with`].
pub async fn command_line<Ch: Channel>(
    ch: &mut Ch,
    cmd: &dyn CommandLine,
    kind: Kind,
    timeout_ms: u32,
    parse: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    match ch.exec_line_resolved(cmd, kind, timeout_ms, parse).await {
        Err(Error::Timeout) => {
            // Figure 1: a command without an answer may mean a hung modem: check it before
            // the next use
            ch.state(|s| s.recovery.suspect = true);
            Err(Error::Timeout)
        }
        other => other,
    }
}

/// The cause of the last TCP/IP failure, from `AT+QIGETERROR` ([`Error::Failed`] if the modem
/// does not say).
pub async fn last_error<Ch: Channel>(ch: &mut Ch) -> Error {
    match ch.exec(&Qigeterror, Kind::Plain, Qigeterror.timeout_ms()).await {
        Ok(e) => e.error_code().map_or(Error::Failed, Error::Modem),
        Err(Error::Rebooted) => Error::Rebooted,
        Err(_) => Error::Failed,
    }
}

/// Runs a future whose every await completes at once (the blocking front's channel) to its end.
pub fn block_on<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
    }
}
