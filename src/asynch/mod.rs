//! The async front: embedded-nal-async 0.9 traits over the shared engine, in the runner +
//! stack pattern of embassy-net.
//!
//! * [`Runner`] owns the serial port's receive half. Its [`Runner::run`] future reads the
//!   modem's output, feeds the engine and wakes whoever waits for what arrived; it also sends
//!   `AT+QICLOSE` for connections that were dropped. Spawn it as a task and never stop it.
//! * [`Stack`] is a cheap `Copy` handle, shared by reference between tasks. Each command takes
//!   the modem's single command channel in turn (a fair FIFO lock), so up to 12 connections
//!   in different tasks interleave; a slow reader only holds the channel for its own `AT+QIRD`.
//!
//! With embassy, the runner is a task of its own:
//!
//! ```text
//! static RESOURCES: StaticCell<Resources<UartTx, EmbassyClock>> = StaticCell::new();
//! let resources = RESOURCES.init(Resources::new(uart_tx, EmbassyClock, Config::new("internet")?));
//! let (stack, runner) = quectel_bg96::asynch::new(resources, uart_rx);
//! spawner.spawn(modem_task(runner))?;   // async fn modem_task(r: Runner<..>) -> ! { r.run().await }
//! stack.bring_up().await?;
//! let mut conn = stack.connect("93.184.216.34:80".parse()?).await?;
//! ```
//!
//! The crate-level docs have a complete example that compiles.
//!
//! Put these lines in a function of their own, marked `#[inline(never)]`, and call it from
//! `main` before the executor runs: building [`Resources`] (about 5.5 KB) takes some 2.5 KB
//! of temporaries on the stack. Inlined into `main`, whose frame lives as long as the
//! executor, they would stay under every task for good. In the QEMU firmware
//! (`firmware/qemu-lm3s6965`) this took the peak stack from 8.1 KB to 5.5 KB.
//!
//! # Cancellation
//!
//! Every future of the stack can be dropped at any await point without harm: a command whose
//! caller went away stays in flight until the modem answers it (its answer is never taken for
//! the next command's); payload that arrives for a cancelled read is kept for the connection's
//! next read; a send cancelled in the middle of its payload is completed with filler bytes so
//! the modem stays in step, and that connection reports [`Error::Closed`] from then on.

mod lock;
mod tcp;
mod transparent;
mod udp;

use core::cell::RefCell;
use core::future::poll_fn;
use core::net::{IpAddr, SocketAddr};
use core::task::Poll;

use embassy_futures::join::join;
use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::Mutex as BlockingMutex;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::mutex::Mutex;
use embassy_sync::signal::Signal;
use embassy_sync::waitqueue::MultiWakerRegistration;
use embedded_io_async::{Read, Write};

use crate::channel::{Channel, ReadInfo, interpret};
use crate::clock::{AsyncClock, Instant};
use crate::commands::{Command, CommandLine, MAX_READ, Qird, Qisend};
use crate::config::Config;
use crate::core::{CR_FILL, Core, DataSink, Kind, State, Stats};
use crate::error::{Error, Result};
use crate::ingress::Final;
use crate::modem::{self, ModemInfo};
use crate::recovery::{NoPins, PowerControl};
use crate::ring::PushStores;
use crate::socket::SlotRef;

pub use tcp::TcpConnection;
pub use transparent::TransparentConnection;
pub use udp::{ConnectedUdp, UnconnectedUdp};

/// Wakers the shared state can hold at once (tasks waiting for the modem).
const WAKERS: usize = 24;
/// A command line is written in pieces of this many bytes (each piece writes the command
/// again into a [`Window`](crate::wire::Window)): a buffer for the longest line (an
/// `AT+QISENDEX` with 256 bytes, about 530) would be part of every command's future.
const LINE_PIECE: usize = 64;

/// Payload of a `+QIRD` answer on its way to the reading task; in transparent access mode,
/// the connection's receive buffer.
struct Staging {
    buf: [u8; MAX_READ],
    len: usize,
    pos: usize,
    /// The connection the bytes belong to; `None` when free.
    owner: Option<SlotRef>,
    /// The read is complete (final result seen).
    complete: bool,
}

impl Staging {
    /// Room for more bytes (after moving what is unread to the front).
    fn room(&self) -> usize {
        self.buf.len() - (self.len - self.pos)
    }

    /// Appends as much of `data` as fits; returns how much.
    fn append(&mut self, data: &[u8]) -> usize {
        if self.len + data.len() > self.buf.len() && self.pos > 0 {
            self.buf.copy_within(self.pos..self.len, 0);
            self.len -= self.pos;
            self.pos = 0;
        }
        let end = (self.len + data.len()).min(self.buf.len());
        let n = end - self.len;
        if let (Some(dst), Some(src)) = (self.buf.get_mut(self.len..end), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.len = end;
        n
    }
}

/// A transparent connection was dropped without `exit`: the runner leaves transparent mode
/// (it holds the command channel until then) and closes the connection.
#[derive(Clone, Copy)]
struct EscapeRequest {
    slot: SlotRef,
    last_write: u64,
}

pub(crate) struct Shared {
    core: Core,
    wakers: MultiWakerRegistration<WAKERS>,
    staging: Staging,
    lock: lock::TicketState,
    /// Bytes of an abandoned `AT+QISEND` payload the modem still waits for.
    send_remaining: usize,
    info: Option<ModemInfo>,
    /// Last port picked for a `"UDP SERVICE"` bound to port 0.
    next_port: u16,
    /// Direct-push buffers lent by connections.
    push: PushStores,
    /// A dropped transparent connection the runner must still take out of transparent mode.
    escape: Option<EscapeRequest>,
    /// The recovery rules in use (changeable at run time).
    policy: crate::recovery::RebootPolicy,
}

struct AsyncSink<'a> {
    staging: &'a mut Staging,
    push: &'a mut PushStores,
}

impl DataSink for AsyncSink<'_> {
    fn read(&mut self, data: &[u8]) {
        self.staging.append(data);
    }
    fn push(&mut self, id: u8, _: Option<(usize, Option<SocketAddr>)>, data: &[u8]) -> usize {
        self.push.push(id, data)
    }
    fn transparent(&mut self, data: &[u8]) -> usize {
        self.staging.append(data)
    }
    fn push_room(&self, id: u8) -> Option<usize> {
        self.push.room(id)
    }
}

/// Everything the stack and the runner share. Create it once (for example in a `StaticCell`)
/// and hand it to [`new`], in a function that is not inlined into `main` (see the
/// [module docs](self)).
pub struct Resources<W, C> {
    shared: BlockingMutex<CriticalSectionRawMutex, RefCell<Shared>>,
    tx: Mutex<CriticalSectionRawMutex, W>,
    clock: C,
    config: Config,
    housekeeping: Signal<CriticalSectionRawMutex, ()>,
    pins: BlockingMutex<CriticalSectionRawMutex, RefCell<Option<&'static mut (dyn PowerControl + Send)>>>,
}

impl<W: Write, C: AsyncClock> Resources<W, C> {
    /// Resources over the serial port's transmit half `tx`, timed by `clock`.
    pub fn new(tx: W, clock: C, config: Config) -> Self {
        Self {
            shared: BlockingMutex::new(RefCell::new(Shared {
                core: Core::new(),
                wakers: MultiWakerRegistration::new(),
                staging: Staging { buf: [0; MAX_READ], len: 0, pos: 0, owner: None, complete: false },
                lock: lock::TicketState::new(),
                send_remaining: 0,
                info: None,
                next_port: 0,
                push: PushStores::new(),
                escape: None,
                policy: config.recovery.clone(),
            })),
            tx: Mutex::new(tx),
            clock,
            config,
            housekeeping: Signal::new(),
            pins: BlockingMutex::new(RefCell::new(None)),
        }
    }

    /// Lets the stack drive the modem's power key and reset line (see
    /// [`crate::recovery::Pins`]): reboots then work when the modem no longer answers, and
    /// [`Stack::power_on`] is available.
    pub fn with_pins(self, pins: &'static mut (dyn PowerControl + Send)) -> Self {
        self.pins.lock(|p| *p.borrow_mut() = Some(pins));
        self
    }
}

impl<W, C> Resources<W, C> {
    fn with<R>(&self, f: impl FnOnce(&mut Shared) -> R) -> R {
        self.shared.lock(|s| f(&mut s.borrow_mut()))
    }

    /// Completes when `f` returns `Some`; re-checked whenever the modem sent something.
    async fn until<T>(&self, mut f: impl FnMut(&mut Shared) -> Option<T>) -> T {
        poll_fn(|cx| {
            self.with(|s| match f(s) {
                Some(v) => Poll::Ready(v),
                None => {
                    s.wakers.register(cx.waker());
                    Poll::Pending
                }
            })
        })
        .await
    }
}

/// Creates the stack and its runner over `resources` and the serial port's receive half.
pub fn new<'d, R: Read, W: Write, C: AsyncClock>(
    resources: &'d Resources<W, C>,
    rx: R,
) -> (Stack<'d, W, C>, Runner<'d, R, W, C>) {
    (Stack { r: resources }, Runner { r: resources, rx, buf: [0; 128] })
}

/// Reads the modem's output and keeps the engine up to date. See the [module docs](self).
pub struct Runner<'d, R, W, C> {
    r: &'d Resources<W, C>,
    rx: R,
    buf: [u8; 128],
}

impl<R: Read, W: Write, C: AsyncClock> Runner<'_, R, W, C> {
    /// Runs forever: spawn it as a task.
    pub async fn run(mut self) -> ! {
        let r = self.r;
        let rx_loop = async {
            loop {
                // in transparent mode the staging buffer is the connection's receive buffer:
                // read no more than fits, so a slow reader slows the modem down instead of
                // losing data (with RTS/CTS all the way to the peer)
                let (limit, held) = r.with(|s| {
                    let limit = if s.core.st.modem.transparent.is_some() {
                        s.staging.room().saturating_sub(16)
                    } else {
                        self.buf.len()
                    };
                    (limit, s.core.ingress().held_len() > 0)
                });
                if limit == 0 {
                    r.until(|s| (s.core.st.modem.transparent.is_none() || s.staging.room() > 16).then_some(())).await;
                    continue;
                }
                let n = limit.min(self.buf.len());
                let read = self.rx.read(self.buf.get_mut(..n).unwrap_or(&mut []));
                let quiet = r.clock.now_ms() + u64::from(r.config.timeouts.transparent_quiet_ms);
                let result = if held {
                    match select(read, r.clock.wait_until(quiet)).await {
                        Either::First(res) => res,
                        Either::Second(()) => {
                            r.flush_held();
                            continue;
                        }
                    }
                } else {
                    read.await
                };
                match result {
                    Ok(0) => {
                        // the serial port is gone: nothing will ever arrive
                        core::future::pending::<()>().await;
                    }
                    Ok(n) => r.feed(self.buf.get(..n).unwrap_or(&[])),
                    Err(e) => {
                        warn!("serial read error: {:?}", embedded_io::Error::kind(&e));
                        r.clock.wait_until(r.clock.now_ms() + 10).await;
                    }
                }
            }
        };
        let housekeeping = async {
            loop {
                // woken by the runner's input, or when an acknowledgement check is due
                let next_ack = r.with(|s| s.core.st.sockets.next_ack_due(r.now(), s.policy.ack_interval_ms));
                match next_ack {
                    Some(t) => {
                        let _ = select(r.housekeeping.wait(), r.wait_until(t)).await;
                    }
                    None => r.housekeeping.wait().await,
                }
                let mut ch = AsyncChannel { r, recovery: false, closer: true, dns_ticket: None };
                if let Err(e) = modem::ensure_ready(&mut ch, &r.config).await {
                    warn!("recovery failed: {:?}", e);
                }
                if let Err(e) = modem::supervise_acks(&mut ch).await {
                    warn!("acknowledgement check failed: {:?}", e);
                }
                if let Some(req) = r.with(|s| s.escape.take()) {
                    transparent::escape_for_dropped(r, req).await;
                }
                if let Err(e) = modem::apply_throttles(&mut ch).await {
                    warn!("switching a full direct-push socket to buffer mode failed: {:?}", e);
                }
                if let Err(e) = modem::close_pending(&mut ch).await {
                    warn!("closing dropped sockets failed: {:?}", e);
                }
            }
        };
        join(rx_loop, housekeeping).await;
        loop {
            core::future::pending::<()>().await;
        }
    }
}

impl<W, C> Resources<W, C> {
    fn flush_held(&self) {
        self.with(|s| {
            let Shared { core, staging, push, wakers, .. } = s;
            if core.flush_transparent(&mut AsyncSink { staging, push }).any() {
                wakers.wake();
            }
        });
    }

    fn feed(&self, input: &[u8]) {
        let close_needed = self.with(|s| {
            let Shared { core, staging, push, wakers, .. } = s;
            let changes = core.feed(input, &mut AsyncSink { staging, push });
            // a read whose caller went away ended inside `feed`: its payload stays for the
            // connection's next read
            if staging.owner.is_some() && !core.busy() {
                staging.complete = true;
            }
            if changes.any() {
                wakers.wake();
            }
            // a stale staging owner (its connection was lost) frees the buffer
            if let Some(owner) = staging.owner {
                if staging.complete && core.st.sockets.current(owner).is_err() {
                    staging.owner = None;
                    wakers.wake();
                }
            }
            let recovery = core.st.recovery.brought_up && !core.st.recovery.in_progress && core.st.modem.rebooted;
            core.st.sockets.pending_close().is_some() || core.st.sockets.throttled().is_some() || recovery
        });
        if close_needed {
            self.housekeeping.signal(());
        }
    }
}

impl Shared {
    /// Delivers payload a cancelled read left for `slot` (`None` if there is none).
    fn take_carried(&mut self, slot: SlotRef, dest: &mut [u8]) -> Option<usize> {
        let transparent = self.core.st.modem.transparent == Some(slot.connect_id);
        let st = &mut self.staging;
        if st.owner != Some(slot) || !st.complete {
            return None;
        }
        if st.pos >= st.len && !transparent {
            // a cancelled read that brought nothing: the buffer is free again
            st.owner = None;
            self.wakers.wake();
            return None;
        }
        let avail = st.buf.get(st.pos..st.len).unwrap_or(&[]);
        let n = avail.len().min(dest.len());
        if let (Some(d), Some(src)) = (dest.get_mut(..n), avail.get(..n)) {
            d.copy_from_slice(src);
        }
        if n == 0 {
            return None;
        }
        st.pos += n;
        if st.pos >= st.len {
            if transparent {
                // the transparent connection's receive buffer: keep it, empty
                (st.pos, st.len) = (0, 0);
            } else {
                st.owner = None;
            }
        }
        // room for the runner (transparent mode) or the buffer for other readers
        self.wakers.wake();
        Some(n)
    }

    /// Forgets carried payload of a connection that is going away.
    fn drop_carried(&mut self, slot: SlotRef) {
        if self.staging.owner == Some(slot) {
            self.staging.owner = None;
            self.wakers.wake();
        }
    }
}

/// The async stack: a cheap handle, shared by reference. See the [module docs](self).
pub struct Stack<'d, W, C> {
    r: &'d Resources<W, C>,
}

impl<W, C> Clone for Stack<'_, W, C> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<W, C> Copy for Stack<'_, W, C> {}

impl<'d, W: Write, C: AsyncClock> Stack<'d, W, C> {
    fn channel(&self) -> AsyncChannel<'d, W, C> {
        AsyncChannel { r: self.r, recovery: false, closer: false, dns_ticket: None }
    }

    /// Brings the modem up (the manual's Figure 1); see [`crate::blocking::Bg96::bring_up`].
    pub async fn bring_up(&self) -> Result<ModemInfo> {
        let mut ch = self.channel();
        let config = &self.r.config;
        let info = modem::bring_up(&mut ch, config).await?;
        self.r.with(|s| s.info = Some(info.clone()));
        Ok(info)
    }

    /// What the last bring-up learnt.
    pub fn info(&self) -> Option<ModemInfo> {
        self.r.with(|s| s.info.clone())
    }

    /// Runs a typed command that changes nothing the stack keeps track of (see
    /// [`Stateless`](crate::commands::Stateless)) and returns its parsed answer.
    ///
    /// ```no_run
    /// # async fn f<W: embedded_io_async::Write, C: quectel_bg96::clock::AsyncClock>(stack: quectel_bg96::asynch::Stack<'_, W, C>) -> quectel_bg96::Result<()> {
    /// use quectel_bg96::commands::Qistate;
    /// let sockets = stack.command(&Qistate::All).await?;
    /// # Ok(()) }
    /// ```
    pub async fn command<Cmd: crate::commands::Stateless>(&self, cmd: &Cmd) -> Result<Cmd::Response> {
        modem::command(&mut self.channel(), cmd).await
    }

    /// Activates a PDP context (`AT+QIACT`, up to 150 s) unless it is active, and returns its
    /// local address.
    pub async fn activate_context(&self, context_id: u8) -> Result<Option<IpAddr>> {
        modem::activate_context(&mut self.channel(), context_id).await
    }

    /// Deactivates a PDP context (`AT+QIDEACT`, up to 40 s); its sockets are gone afterwards.
    pub async fn deactivate_context(&self, context_id: u8) -> Result<()> {
        modem::deactivate_context(&mut self.channel(), context_id).await
    }

    /// Reboots the modem now and brings it up again, within the reboot back-off; see
    /// [`Bg96::reboot`](crate::blocking::Bg96::reboot).
    pub async fn reboot(&self) -> Result<ModemInfo> {
        let config = &self.r.config;
        let info = modem::reboot(&mut self.channel(), config).await?;
        self.r.with(|s| s.info = Some(info.clone()));
        Ok(info)
    }

    /// Switches the modem on with the power key and waits for `RDY` (needs
    /// [`Resources::with_pins`]).
    pub async fn power_on(&self) -> Result<()> {
        let config = &self.r.config;
        modem::power_on(&mut self.channel(), config).await
    }

    /// Switches the modem off as Figure 1 says; see
    /// [`Bg96::power_down`](crate::blocking::Bg96::power_down).
    pub async fn power_down(&self) -> Result<()> {
        modem::power_down(&mut self.channel()).await
    }

    /// What recovery has seen so far.
    pub fn recovery(&self) -> crate::recovery::RecoveryState {
        self.r.with(|s| s.core.st.recovery)
    }

    /// The recovery rules and reboot back-off in use.
    pub fn policy(&self) -> crate::recovery::RebootPolicy {
        self.r.with(|s| s.policy.clone())
    }

    /// Changes the recovery rules and reboot back-off.
    pub fn set_policy(&self, policy: crate::recovery::RebootPolicy) {
        self.r.with(|s| s.policy = policy);
    }

    /// The active contexts and their addresses (`AT+QIACT?`).
    pub async fn contexts(&self) -> Result<crate::commands::ContextStates> {
        self.command(&crate::commands::QiactRead).await
    }

    /// Pings `host` on the stack's context (`AT+QPING`); see
    /// [`Bg96::ping`](crate::blocking::Bg96::ping).
    #[cfg(feature = "ping")]
    pub async fn ping(&self, host: &str, timeout_s: Option<u8>, count: Option<u8>) -> Result<modem::PingResult> {
        let cid = self.r.config.context_id;
        modem::ping(&mut self.channel(), cid, crate::commands::Host::from(host), timeout_s, count).await
    }

    /// Synchronises with an NTP server (`AT+QNTP`); see
    /// [`Bg96::sync_time`](crate::blocking::Bg96::sync_time).
    #[cfg(feature = "ntp")]
    pub async fn sync_time(
        &self,
        server: &str,
        port: Option<u16>,
        set_clock: bool,
    ) -> Result<crate::commands::NtpTime> {
        let cid = self.r.config.context_id;
        modem::sync_time(&mut self.channel(), cid, crate::commands::Host::from(server), port, Some(set_clock)).await
    }

    /// The DNS servers of the stack's context (`AT+QIDNSCFG=<contextID>`).
    pub async fn dns_servers(&self) -> Result<crate::commands::DnsServers> {
        self.command(&crate::commands::QidnscfgQuery { context_id: self.r.config.context_id }).await
    }

    /// Sets the DNS servers of the stack's context.
    pub async fn set_dns_servers(&self, primary: IpAddr, secondary: Option<IpAddr>) -> Result<()> {
        let cmd = crate::commands::Qidnscfg { context_id: self.r.config.context_id, primary, secondary };
        self.command(&cmd).await.map(|_| ())
    }

    /// The code and text of the last TCP/IP error (`AT+QIGETERROR`).
    pub async fn last_error(&self) -> Result<crate::commands::LastError> {
        self.command(&crate::commands::Qigeterror).await
    }

    /// Changes an `AT+QICFG` setting; see [`Bg96::configure`](crate::blocking::Bg96::configure).
    pub async fn configure(&self, setting: crate::commands::QicfgSetting<'_>) -> Result<()> {
        modem::configure(&mut self.channel(), setting).await
    }

    /// Payload echo of `AT+QISEND` on or off (`AT+QISDE`); the stack copes with both.
    pub async fn set_payload_echo(&self, echo: bool) -> Result<()> {
        modem::set_payload_echo(&mut self.channel(), echo).await
    }

    /// Counters of the ingress.
    pub fn stats(&self) -> Stats {
        self.r.with(|s| s.core.st.stats)
    }

    /// How many connectIDs the modem has in use, as far as the stack knows.
    pub fn sockets_in_use(&self) -> usize {
        self.r.with(|s| s.core.st.sockets.in_use())
    }

    /// Waits until every dropped connection's `AT+QICLOSE` was sent (useful before counting
    /// free sockets in tests, or before powering the modem down).
    pub async fn flush_closes(&self) -> Result<()> {
        self.r.reclaim().await
    }

    /// The local address of the stack's context (after [`Stack::bring_up`]).
    pub fn local_ip(&self) -> Option<IpAddr> {
        self.r.with(|s| s.info.as_ref().and_then(|i| i.local_ip))
    }
}

impl<'d, W: Write, C: AsyncClock> Stack<'d, W, C> {
    /// Opens a socket and waits for the modem's `+QIOPEN`.
    async fn open(&self, params: modem::OpenParams<'_>) -> Result<SlotRef> {
        let mut ch = self.channel();
        let config = &self.r.config;
        let mut attempts = 0;
        loop {
            modem::ensure_ready(&mut ch, config).await?;
            let slot = modem::start_open(&mut ch, &params).await?;
            // if this future is dropped while waiting, the socket is closed in the background
            let guard = ReleaseGuard { stack: *self, slot, armed: true };
            let result = modem::finish_open(&mut ch, slot).await;
            core::mem::forget(guard);
            match result {
                // the modem still had something on that connectID: close it, open again
                Err(Error::Modem(crate::ErrorCode::SocketIdentityUsed)) if attempts < 2 => attempts += 1,
                other => return other.map(|()| slot),
            }
        }
    }

    /// Gives a socket up: it is closed by the runner in the background.
    fn release(&self, slot: SlotRef) {
        let queued = self.r.with(|s| {
            s.drop_carried(slot);
            s.push.remove(slot.connect_id);
            match s.core.st.sockets.current_mut(slot) {
                Ok(sl) => {
                    sl.release(crate::socket::SlotState::PendingClose, None);
                    true
                }
                Err(_) => false,
            }
        });
        if queued {
            self.r.housekeeping.signal(());
        }
    }

    /// Waits for data on a socket and reads it; `None` at the end of the stream.
    async fn receive(&self, slot: SlotRef, buf: &mut [u8]) -> Result<Option<(usize, Option<SocketAddr>)>> {
        if buf.is_empty() {
            return Ok(Some((0, None)));
        }
        let r = self.r;
        loop {
            // what a cancelled read or the escape from transparent mode left, what the modem
            // pushed, then what waits in the modem
            let taken = r.with(|s| {
                if let Some(n) = s.take_carried(slot, buf) {
                    return Some(Ok(n));
                }
                if let Some(n) = s.push.read(slot.connect_id, buf) {
                    return Some(Ok(n));
                }
                match s.core.st.sockets.current_mut(slot) {
                    Ok(sl) if sl.push_lost > 0 => {
                        sl.push_lost = 0;
                        Some(Err(Error::DataLost))
                    }
                    _ => None,
                }
            });
            if let Some(n) = taken {
                return n.map(|n| Some((n, None)));
            }
            let ready = r
                .until(|s| {
                    if s.staging.owner == Some(slot) && s.staging.complete {
                        return Some(Ok(true));
                    }
                    if s.push.get_mut(slot.connect_id).is_some_and(|ring| !ring.is_empty()) {
                        return Some(Ok(true));
                    }
                    match s.core.st.sockets.current(slot) {
                        Err(e) => Some(Err(e)),
                        Ok(sl) if sl.push_lost > 0 => Some(Ok(true)),
                        Ok(sl) if sl.rx_ready && sl.mode != crate::commands::AccessMode::DirectPush => Some(Ok(true)),
                        Ok(sl) if sl.peer_closed => Some(Ok(false)),
                        Ok(_) => None,
                    }
                })
                .await?;
            if !ready {
                return Ok(None);
            }
            let has_local = r.with(|s| {
                s.staging.owner == Some(slot)
                    || s.push.get_mut(slot.connect_id).is_some_and(|ring| !ring.is_empty())
                    || s.core.st.sockets.current(slot).is_ok_and(|sl| sl.push_lost > 0)
            });
            if has_local {
                continue;
            }
            match modem::read_socket(&mut self.channel(), slot, buf).await? {
                modem::ReadOutcome::Data { len, remote } => return Ok(Some((len, remote))),
                modem::ReadOutcome::Empty => continue,
                modem::ReadOutcome::Closed => return Ok(None),
            }
        }
    }

    /// Sends up to 1460 bytes; `SEND FAIL` (the modem's buffer is full) is waited out, up to
    /// the command timeout.
    async fn send_chunk(&self, slot: SlotRef, data: &[u8], remote: Option<SocketAddr>) -> Result<usize> {
        let chunk = data.get(..data.len().min(crate::commands::MAX_SEND)).unwrap_or(&[]);
        if chunk.is_empty() {
            return Ok(0);
        }
        let r = self.r;
        let deadline = r.clock.now_ms() + u64::from(crate::commands::DEFAULT_TIMEOUT_MS);
        let mut backoff = 20u32;
        loop {
            let gone = r.with(|s| {
                let sl = s.core.st.sockets.current(slot)?;
                if sl.peer_closed || sl.tx_broken { Err(Error::Closed) } else { Ok(()) }
            });
            gone?;
            let cmd = Qisend { connect_id: slot.connect_id, len: Some(chunk.len() as u16), remote };
            let mut ch = self.channel();
            // a send cut short by cancellation leaves the stream broken
            let guard = BrokenGuard { r, slot, armed: true };
            let result = ch.send(&cmd, chunk).await;
            core::mem::forget(guard);
            match result {
                Ok(()) => {
                    let now = r.now();
                    let had_ack_check = r.with(|s| {
                        let before = s.core.st.sockets.next_ack_due(now, s.policy.ack_interval_ms);
                        modem::note_sent(&mut s.core.st, slot, now, &s.policy);
                        before.is_some()
                    });
                    if !had_ack_check {
                        // the runner's timer must learn about the new check
                        r.housekeeping.signal(());
                    }
                    return Ok(chunk.len());
                }
                Err(Error::SendFail) if r.clock.now_ms() < deadline => {
                    let until = r.clock.now_ms() + u64::from(backoff);
                    r.clock.wait_until(until).await;
                    backoff = (backoff * 2).min(1000);
                }
                Err(Error::SendFail) => return Err(Error::Timeout),
                // ERROR means the socket is gone (field note 11); the code was asked already
                Err(Error::Failed) => return Err(Error::Closed),
                Err(e) => return Err(e),
            }
        }
    }

    /// A port for a `"UDP SERVICE"` bound to port 0: the next one from 49152 up that none of
    /// the stack's own sockets uses.
    fn pick_port(&self) -> u16 {
        self.r.with(|s| {
            for _ in 0..=crate::socket::CONNECT_IDS {
                s.next_port = if s.next_port < 49152 { 49152 } else { s.next_port.wrapping_add(1).max(49152) };
                if !s.core.st.sockets.port_in_use(s.next_port) {
                    break;
                }
            }
            s.next_port
        })
    }
}

/// Queues the close of a socket whose open was cancelled.
struct ReleaseGuard<'d, W: Write, C: AsyncClock> {
    stack: Stack<'d, W, C>,
    slot: SlotRef,
    armed: bool,
}

impl<W: Write, C: AsyncClock> Drop for ReleaseGuard<'_, W, C> {
    fn drop(&mut self) {
        if self.armed {
            self.stack.release(self.slot);
        }
    }
}

/// Marks a connection's byte stream broken if a send is cancelled.
struct BrokenGuard<'d, W, C> {
    r: &'d Resources<W, C>,
    slot: SlotRef,
    armed: bool,
}

impl<W, C> Drop for BrokenGuard<'_, W, C> {
    fn drop(&mut self) {
        if self.armed {
            self.r.with(|s| {
                if let Ok(slot) = s.core.st.sockets.current_mut(self.slot) {
                    slot.tx_broken = true;
                }
            });
        }
    }
}

/// The async front's [`Channel`]: every command takes the command channel in turn.
pub(crate) struct AsyncChannel<'d, W, C> {
    r: &'d Resources<W, C>,
    /// This channel runs recovery: its commands do not wait for recovery to end.
    recovery: bool,
    /// The DNS query this channel started: given up if the channel is dropped first.
    dns_ticket: Option<u8>,
    /// This is the runner's channel: it closes released sockets itself.
    closer: bool,
}

impl<W, C> Drop for AsyncChannel<'_, W, C> {
    fn drop(&mut self) {
        if let Some(ticket) = self.dns_ticket {
            abandon_dns(self.r, ticket);
        }
        if self.recovery {
            // the recovery was cancelled half-way: let the others go on (and try again)
            self.r.with(|s| {
                s.core.st.recovery.in_progress = false;
                s.wakers.wake();
            });
        }
    }
}

/// A lookup cancelled before its result was taken: its query must not hold up the next one
/// (nor hand its answer to it). Out of line: channels are dropped in many futures, and the
/// critical section would otherwise add to each of their stack frames.
#[cold]
#[inline(never)]
fn abandon_dns<W, C>(r: &Resources<W, C>, ticket: u8) {
    r.with(|s| {
        s.core.st.abandon_dns(ticket);
        s.wakers.wake();
    });
}

/// Ends or abandons the running command if the future running it is dropped.
struct CommandGuard<'a, W, C> {
    r: &'a Resources<W, C>,
    armed: bool,
}

impl<W, C> Drop for CommandGuard<'_, W, C> {
    fn drop(&mut self) {
        if self.armed {
            self.r.with(|s| {
                s.core.abandon();
                s.wakers.wake();
            });
        }
    }
}

impl<'d, W: Write, C: AsyncClock> AsyncChannel<'d, W, C> {
    /// Waits for the command channel, finishes what an abandoned command left, and starts
    /// `cmd`. The returned guards must live until the command is over.
    async fn start(
        &self,
        cmd: &dyn CommandLine,
        kind: Kind,
        timeout_ms: u32,
        prepare: impl FnOnce(&mut Shared),
    ) -> Result<(lock::Ticket<'d, W, C>, embassy_sync::mutex::MutexGuard<'d, CriticalSectionRawMutex, W>)> {
        cmd.write_line(&mut crate::wire::Discard)?;
        if !self.recovery {
            // bring-up or a reboot is running: wait for it
            self.r.until(|s| (!s.core.st.recovery.in_progress).then_some(())).await;
        }
        let (ticket, mut tx) = self.acquire().await;
        self.start_with(&mut tx, cmd, kind, timeout_ms, prepare).await?;
        Ok((ticket, tx))
    }

    /// Takes the command channel (in turn) and the serial port's transmit half.
    async fn acquire(
        &self,
    ) -> (lock::Ticket<'d, W, C>, embassy_sync::mutex::MutexGuard<'d, CriticalSectionRawMutex, W>) {
        let ticket = lock::Ticket::acquire(self.r).await;
        let tx = self.r.tx.lock().await;
        (ticket, tx)
    }

    /// Starts `cmd` on the channel the caller holds.
    async fn start_with(
        &self,
        tx: &mut W,
        cmd: &dyn CommandLine,
        kind: Kind,
        timeout_ms: u32,
        prepare: impl FnOnce(&mut Shared),
    ) -> Result<()> {
        // the first piece; writing it checks the arguments before anything waits
        let mut piece = crate::wire::Window::<LINE_PIECE>::new(0);
        cmd.write_line(&mut piece)?;
        let r = self.r;
        // a command abandoned by a dropped future may still be in flight: let it finish
        let deadline = r.clock.now_ms() + u64::from(timeout_ms);
        loop {
            let (abandoned, prompted, remaining) =
                r.with(|s| (s.core.abandoned(), s.core.prompted(), s.send_remaining));
            if !abandoned {
                break;
            }
            if prompted && remaining > 0 {
                // the modem waits for the rest of a cut-short payload: fill it up
                write_filler(r, tx, remaining).await?;
                continue;
            }
            let wait = r.until(|s| {
                let done = !s.core.abandoned() || (s.core.prompted() && s.send_remaining > 0);
                done.then_some(())
            });
            if let Either::Second(()) = select(wait, r.clock.wait_until(deadline)).await {
                r.with(|s| s.core.end());
            }
        }
        r.with(|s| {
            s.core.begin(cmd.prefix(), kind)?;
            prepare(s);
            Ok::<(), Error>(())
        })?;
        loop {
            let written = write_all(tx, piece.bytes()).await.and_then(|()| {
                let next = piece.start() + piece.bytes().len();
                if next >= piece.total() || piece.bytes().is_empty() {
                    return Ok(true);
                }
                // the same command writes the same bytes again: this cannot fail where the
                // first piece did not
                piece = crate::wire::Window::new(next);
                cmd.write_line(&mut piece).map(|()| false)
            });
            match written {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                Err(e) => {
                    r.with(|s| s.core.end());
                    return Err(e);
                }
            }
        }
    }

    /// Runs a command; `resolve`: a bare `ERROR` is resolved with `AT+QIGETERROR` in the same
    /// turn.
    async fn exec_inner(
        &self,
        cmd: &dyn CommandLine,
        kind: Kind,
        timeout_ms: u32,
        parse: &mut dyn FnMut(&[u8]) -> Result<()>,
        resolve: bool,
    ) -> Result<()> {
        let (_ticket, mut tx) = self.start(cmd, kind, timeout_ms, |_| {}).await?;
        let mut guard = CommandGuard { r: self.r, armed: true };
        let deadline = self.r.clock.now_ms() + u64::from(timeout_ms);
        let result = self.finish(deadline).await;
        guard.armed = false;
        let out = self.r.with(|s| {
            let out = result.and_then(interpret).and_then(|()| parse(s.core.response()?));
            s.core.end();
            out
        });
        self.resolve(&mut tx, resolve && cmd.is_tcpip(), out).await
    }

    /// A bare `ERROR` of a TCP/IP command: asks `AT+QIGETERROR` while the caller still holds
    /// the command channel, so the code is this command's.
    async fn resolve<T>(&self, tx: &mut W, tcpip: bool, result: Result<T>) -> Result<T> {
        if !(tcpip && result.as_ref().err() == Some(&Error::Failed)) {
            return result;
        }
        let q = crate::commands::Qigeterror;
        let timeout = q.timeout_ms();
        if self.start_with(tx, &q, Kind::Plain, timeout, |_| {}).await.is_err() {
            return result;
        }
        let done = self.finish(self.r.clock.now_ms() + u64::from(timeout)).await;
        self.r.with(|s| {
            let code = done
                .and_then(interpret)
                .and_then(|()| q.parse_lines(s.core.response()?))
                .ok()
                .and_then(|e| e.error_code());
            s.core.end();
            code.map_or(Err(Error::Failed), |c| Err(Error::Modem(c)))
        })
    }

    /// Waits for the final result of the running command.
    async fn finish(&self, deadline: u64) -> Result<Final> {
        let r = self.r;
        let result = r.until(|s| s.core.result());
        match select(result, r.clock.wait_until(deadline)).await {
            Either::First(res) => res,
            Either::Second(()) => Err(Error::Timeout),
        }
    }
}

async fn write_all<W: Write>(tx: &mut W, data: &[u8]) -> Result<()> {
    tx.write_all(data).await.map_err(|e| Error::Serial(embedded_io::Error::kind(&e)))?;
    tx.flush().await.map_err(|e| Error::Serial(embedded_io::Error::kind(&e)))
}

async fn write_filler<W: Write, C>(r: &Resources<W, C>, tx: &mut W, mut remaining: usize) -> Result<()> {
    // CRs: payload if the modem waits for it, empty lines if it does not
    while remaining > 0 {
        let n = remaining.min(CR_FILL.len());
        write_all(tx, CR_FILL.get(..n).unwrap_or(&[])).await?;
        remaining -= n;
        r.with(|s| s.send_remaining = remaining);
    }
    r.with(|s| s.core.payload_written(0));
    Ok(())
}

impl<W: Write, C: AsyncClock> Channel for AsyncChannel<'_, W, C> {
    fn now(&self) -> Instant {
        self.r.now()
    }

    async fn sleep_ms(&mut self, ms: u32) {
        let deadline = self.r.clock.now_ms() + u64::from(ms);
        self.r.clock.wait_until(deadline).await;
    }

    async fn exec_line(
        &mut self,
        cmd: &dyn CommandLine,
        kind: Kind,
        timeout_ms: u32,
        parse: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        self.exec_inner(cmd, kind, timeout_ms, parse, false).await
    }

    async fn exec_line_resolved(
        &mut self,
        cmd: &dyn CommandLine,
        kind: Kind,
        timeout_ms: u32,
        parse: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        self.exec_inner(cmd, kind, timeout_ms, parse, true).await
    }

    const RESOLVES_ERRORS: bool = true;

    async fn send(&mut self, cmd: &Qisend, data: &[u8]) -> Result<()> {
        let r = self.r;
        let timeout = cmd.timeout_ms();
        let (_ticket, mut tx) = self.start(cmd, Kind::Send, timeout, |s| s.send_remaining = data.len()).await?;
        let mut guard = CommandGuard { r, armed: true };
        let deadline = r.clock.now_ms() + u64::from(timeout);
        let prompt = r.until(|s| if s.core.prompted() { Some(Ok(())) } else { s.core.result().map(|f| f.map(|_| ())) });
        let (prompted, lost_prompt) = match select(prompt, r.clock.wait_until(deadline)).await {
            Either::First(p) => (p, false),
            // the modem may be waiting for the payload even so: complete it, so that the next
            // command line is not taken for payload (see inert_as_commands)
            Either::Second(()) => (Ok(()), !r.with(|s| s.core.prompted())),
        };
        let result = match prompted {
            Ok(()) if lost_prompt && !crate::core::inert_as_commands(data) => {
                write_filler(r, &mut *tx, data.len()).await?;
                let deadline = r.clock.now_ms() + u64::from(timeout);
                // CRs went out in place of the payload: it was not sent
                self.finish(deadline).await.and_then(interpret).and(Err(Error::Timeout))
            }
            Ok(()) if lost_prompt || r.with(|s| s.core.prompted()) => {
                for chunk in data.chunks(64) {
                    write_all(&mut *tx, chunk).await?;
                    r.with(|s| s.send_remaining = s.send_remaining.saturating_sub(chunk.len()));
                }
                r.with(|s| s.core.payload_written(data.len()));
                let deadline = if lost_prompt { r.clock.now_ms() + u64::from(timeout) } else { deadline };
                self.finish(deadline).await.and_then(interpret)
            }
            Ok(()) => r.with(|s| match s.core.result() {
                Some(Ok(f)) => interpret(f).and(Err(Error::Failed)),
                Some(Err(e)) => Err(e),
                None => Err(Error::Failed),
            }),
            Err(e) => Err(e),
        };
        if lost_prompt && result.is_err() {
            // the modem may have sent a part of the payload or filler: the stream is broken
            r.with(|s| {
                if let Some(slot) = s.core.st.sockets.get_mut(cmd.connect_id) {
                    slot.tx_broken = true;
                }
            });
        }
        guard.armed = false;
        r.with(|s| {
            s.send_remaining = 0;
            s.core.end();
        });
        self.resolve(&mut tx, true, result).await
    }

    async fn read(&mut self, cmd: &Qird, dest: &mut [u8]) -> Result<ReadInfo> {
        let r = self.r;
        let owner = r.with(|s| s.core.st.sockets.slot_ref(cmd.connect_id)).ok_or(Error::InvalidState)?;
        // the staging buffer may still hold a cancelled read's payload for another connection
        r.until(|s| s.staging.owner.is_none().then_some(())).await;
        let timeout = cmd.timeout_ms();
        let prepare = |s: &mut Shared| {
            let st = &mut s.staging;
            (st.owner, st.len, st.pos, st.complete) = (Some(owner), 0, 0, false);
        };
        let (_ticket, mut tx) = self.start(cmd, Kind::Read { connect_id: cmd.connect_id }, timeout, prepare).await?;
        let mut guard = CommandGuard { r, armed: true };
        let deadline = r.clock.now_ms() + u64::from(timeout);
        let result = self.finish(deadline).await;
        guard.armed = false;
        let out = r.with(|s| {
            let header = s.core.st.cmd.read_header;
            s.core.end();
            let st = &mut s.staging;
            let out = result.and_then(interpret).and_then(|()| {
                let (len, remote) = header.ok_or(Error::Parse)?;
                let n = st.len.min(dest.len());
                if let (Some(d), Some(src)) = (dest.get_mut(..n), st.buf.get(..n)) {
                    d.copy_from_slice(src);
                }
                Ok(ReadInfo { len, copied: n, remote })
            });
            st.owner = None;
            st.len = 0;
            s.wakers.wake();
            out
        });
        self.resolve(&mut tx, true, out).await
    }

    async fn wait_for<T>(&mut self, deadline: Instant, mut f: impl FnMut(&mut State) -> Option<T>) -> Result<T> {
        let r = self.r;
        let wait = r.until(|s| f(&mut s.core.st));
        match select(wait, r.wait_until(deadline)).await {
            Either::First(v) => Ok(v),
            Either::Second(()) => r.with(|s| f(&mut s.core.st)).ok_or(Error::Timeout),
        }
    }

    fn state<R>(&mut self, f: impl FnOnce(&mut State) -> R) -> R {
        self.r.with(|s| f(&mut s.core.st))
    }

    async fn reclaim(&mut self) -> Result<()> {
        if self.recovery || self.closer {
            // the runner would be the one to close them: do it here
            return modem::close_pending(self).await;
        }
        self.r.reclaim().await
    }

    fn with_power<R>(&mut self, f: impl FnOnce(&mut dyn PowerControl) -> R) -> R {
        self.r.pins.lock(|p| match p.borrow_mut().as_deref_mut() {
            Some(pins) => f(pins),
            None => f(&mut NoPins),
        })
    }

    fn set_recovery(&mut self, on: bool) {
        self.recovery = on;
    }

    fn dns_started(&mut self, ticket: u8) {
        self.dns_ticket = Some(ticket);
    }

    fn policy(&mut self) -> crate::recovery::RebootPolicy {
        self.r.with(|s| s.policy.clone())
    }
}

impl<W, C: AsyncClock> Resources<W, C> {
    /// The clock's time.
    fn now(&self) -> Instant {
        Instant::now(&self.clock)
    }

    /// Completes at `deadline` (or at once if it has passed).
    async fn wait_until(&self, deadline: Instant) {
        let now_ms = self.clock.now_ms();
        let wait = deadline.ms_since(Instant::from_ms(now_ms));
        self.clock.wait_until(now_ms + u64::from(wait)).await
    }

    /// Asks the runner to close every released socket and waits until it did.
    async fn reclaim(&self) -> Result<()> {
        if self.with(|s| s.core.st.sockets.pending_close().is_none()) {
            return Ok(());
        }
        self.housekeeping.signal(());
        let deadline =
            self.clock.now_ms() + u64::from(<crate::commands::Qiclose as atat::AtatCmd>::MAX_TIMEOUT_MS) * 12;
        let done = self.until(|s| s.core.st.sockets.pending_close().is_none().then_some(()));
        match select(done, self.clock.wait_until(deadline)).await {
            Either::First(()) => Ok(()),
            Either::Second(()) => Err(Error::Timeout),
        }
    }
}

impl<W: Write, C: AsyncClock> embedded_nal_async::Dns for Stack<'_, W, C> {
    type Error = Error;

    /// Resolves `host` with `AT+QIDNSGIP` (one query at a time; concurrent callers wait their
    /// turn). `AddrType::Either` prefers IPv4 (A), then IPv6 (AAAA).
    async fn get_host_by_name(&self, host: &str, addr_type: embedded_nal_async::AddrType) -> Result<IpAddr> {
        let mut ch = self.channel();
        let context_id = self.r.config.context_id;
        modem::resolve(&mut ch, context_id, host, addr_type).await
    }

    /// The BG96 has no reverse DNS: always [`Error::NotSupported`].
    async fn get_host_by_address(&self, _addr: IpAddr, _result: &mut [u8]) -> Result<usize> {
        Err(Error::NotSupported)
    }
}
