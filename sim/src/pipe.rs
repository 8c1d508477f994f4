//! The simulated UART: paced byte queues in both directions, the host's end of the
//! in-process pipe ([`HostPort`]) and the wire log.

use std::collections::VecDeque;
use std::fmt;
use std::fs::File;
use std::io::{LineWriter, Write as _};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::engine::Event;
use crate::types::{Direction, Stats, WireRecord};

/// Host-to-modem bytes queued at most (the writer blocks beyond, like a UART with flow control).
pub(crate) const IN_CAP: usize = 64 * 1024;
/// With pacing, host writes queue only this much, like a UART's transmit FIFO: a write
/// returns when its bytes are (nearly) on the wire, as on hardware. Guard times before `+++`
/// depend on it.
pub(crate) const PACED_IN_CAP: usize = 64;
/// Modem-to-host bytes queued before direct-push/transparent data is held back.
pub(crate) const OUT_SOFT_CAP: usize = 64 * 1024;
/// Modem-to-host bytes queued at most; beyond, output is dropped and counted.
pub(crate) const OUT_HARD_CAP: usize = 1024 * 1024;
/// Bytes of wire log kept in memory.
const LOG_KEEP: usize = 512 * 1024;

/// Locks a mutex, ignoring poisoning (a panicking test thread must not wedge the simulator).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Time one byte takes on the wire at `baud` (8N1: 10 bits).
pub(crate) fn byte_time(baud: Option<u32>) -> Duration {
    match baud {
        Some(b) if b > 0 => Duration::from_nanos(10_000_000_000 / u64::from(b)),
        _ => Duration::ZERO,
    }
}

/// Everything shared between the engine thread, socket threads, transports and host ports.
pub(crate) struct Shared {
    pub inbox: Mutex<Inbox>,
    /// The engine waits on this.
    pub inbox_cv: Condvar,
    /// Host writers wait on this for room.
    pub in_room_cv: Condvar,
    pub out: Mutex<OutQueue>,
    /// Host readers wait on this.
    pub out_cv: Condvar,
    pub closed: AtomicBool,
    pub start: Instant,
    pub stats: Mutex<Stats>,
    pub log: Mutex<WireLog>,
}

impl Shared {
    pub fn new(baud: Option<u32>, log_file: Option<File>) -> Arc<Shared> {
        let now = Instant::now();
        Arc::new(Shared {
            inbox: Mutex::new(Inbox {
                host: VecDeque::new(),
                host_len: 0,
                events: VecDeque::new(),
                baud,
                in_line_time: now,
                writer_waker: None,
                async_wake_at: None,
            }),
            inbox_cv: Condvar::new(),
            in_room_cv: Condvar::new(),
            out: Mutex::new(OutQueue {
                segs: VecDeque::new(),
                len: 0,
                line_free: now,
                baud,
                chunking: None,
                waker: None,
                closed: false,
                room_wanted: false,
            }),
            out_cv: Condvar::new(),
            closed: AtomicBool::new(false),
            start: now,
            stats: Mutex::new(Stats::default()),
            log: Mutex::new(WireLog { records: VecDeque::new(), bytes: 0, file: log_file.map(LineWriter::new) }),
        })
    }

    /// Queues an event for the engine and wakes it.
    pub fn post(&self, ev: Event) {
        let mut ib = lock(&self.inbox);
        ib.events.push_back(ev);
        drop(ib);
        self.inbox_cv.notify_all();
    }

    /// Wakes the engine without an event.
    pub fn wake_engine(&self) {
        let mut ib = lock(&self.inbox);
        ib.events.push_back(Event::Wake);
        drop(ib);
        self.inbox_cv.notify_all();
    }

    /// Marks everything closed and wakes every waiter.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let w = {
            let mut ib = lock(&self.inbox);
            ib.writer_waker.take()
        };
        if let Some(w) = w {
            w.wake();
        }
        self.inbox_cv.notify_all();
        self.in_room_cv.notify_all();
        let w = {
            let mut o = lock(&self.out);
            o.closed = true;
            o.waker.take()
        };
        if let Some(w) = w {
            w.wake();
        }
        self.out_cv.notify_all();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Records bytes in the wire log (memory ring and optional file).
    pub fn record(&self, direction: Direction, bytes: &[u8], at: Instant) {
        if bytes.is_empty() {
            return;
        }
        let elapsed = at.saturating_duration_since(self.start);
        let mut log = lock(&self.log);
        if let Some(f) = log.file.as_mut() {
            let arrow = match direction {
                Direction::ToModem => ">>",
                Direction::FromModem => "<<",
            };
            let _ = writeln!(f, "{:>4}.{:06} {} {}", elapsed.as_secs(), elapsed.subsec_micros(), arrow, escape(bytes));
        }
        log.bytes += bytes.len();
        log.records.push_back(WireRecord { at, elapsed, direction, bytes: bytes.to_vec() });
        while log.bytes > LOG_KEEP {
            match log.records.pop_front() {
                Some(r) => log.bytes -= r.bytes.len(),
                None => break,
            }
        }
    }

    /// Pushes modem output towards the host (paced, chunked, bounded).
    pub fn push_output(&self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let now = Instant::now();
        self.record(Direction::FromModem, bytes, now);
        let (dropped, waker) = {
            let mut o = lock(&self.out);
            let dropped = o.push(bytes, now);
            (dropped, o.waker.take())
        };
        {
            let mut st = lock(&self.stats);
            st.bytes_from_modem += bytes.len() as u64;
            st.output_bytes_dropped += dropped as u64;
        }
        if let Some(w) = waker {
            w.wake();
        }
        self.out_cv.notify_all();
    }

    /// Bytes queued towards the host.
    pub fn out_len(&self) -> usize {
        lock(&self.out).len
    }
}

/// Escapes bytes for the log file.
pub(crate) fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() + 2);
    s.push('"');
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'"' => s.push_str("\\\""),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}

pub(crate) struct WireLog {
    pub records: VecDeque<WireRecord>,
    bytes: usize,
    file: Option<LineWriter<File>>,
}

/// Host-to-modem side of the line plus the engine's event queue.
pub(crate) struct Inbox {
    /// Chunks written by the host: (write time, bytes, consumed offset).
    pub host: VecDeque<(Instant, Vec<u8>, usize)>,
    pub host_len: usize,
    pub events: VecDeque<Event>,
    pub baud: Option<u32>,
    /// Delivery time of the last byte delivered to the modem.
    pub in_line_time: Instant,
    pub writer_waker: Option<Waker>,
    /// An async reader waits for output bytes that become due at this time.
    pub async_wake_at: Option<Instant>,
}

impl Inbox {
    /// Takes the host bytes that are due at `now` (at most `max`), with their delivery times.
    /// Returns the time the next byte becomes due, if any is left.
    pub fn take_due(&mut self, now: Instant, max: usize, out: &mut VecDeque<(Instant, u8)>) -> Option<Instant> {
        let bt = byte_time(self.baud);
        let mut taken = 0;
        while taken < max {
            let (produced, data, pos) = self.host.front_mut()?;
            let due = if bt.is_zero() { *produced } else { self.in_line_time.max(*produced) + bt };
            if due > now {
                return Some(due);
            }
            let b = data[*pos];
            *pos += 1;
            if !bt.is_zero() {
                self.in_line_time = due;
            } else {
                self.in_line_time = self.in_line_time.max(due);
            }
            out.push_back((due, b));
            taken += 1;
            self.host_len -= 1;
            if *pos >= data.len() {
                self.host.pop_front();
            }
        }
        if self.host.is_empty() { None } else { Some(now) }
    }
}

struct Seg {
    data: Vec<u8>,
    pos: usize,
    start: Instant,
    per_byte: Duration,
    /// A read must not continue into the next segment (output chunking).
    boundary: bool,
}

impl Seg {
    fn due_of(&self, i: usize) -> Instant {
        self.start + self.per_byte * (i as u32 + 1)
    }

    /// Bytes from `pos` that are due at `now`.
    fn due_count(&self, now: Instant) -> usize {
        if self.per_byte.is_zero() {
            if now >= self.start { self.data.len() - self.pos } else { 0 }
        } else {
            if now < self.due_of(self.pos) {
                return 0;
            }
            let elapsed = now.duration_since(self.start).as_nanos();
            let k = (elapsed / self.per_byte.as_nanos()).min(self.data.len() as u128) as usize;
            k.saturating_sub(self.pos)
        }
    }
}

/// Modem-to-host side of the line.
pub(crate) struct OutQueue {
    segs: VecDeque<Seg>,
    pub len: usize,
    /// Due time of the last scheduled byte.
    line_free: Instant,
    pub baud: Option<u32>,
    pub chunking: Option<(usize, Duration)>,
    pub waker: Option<Waker>,
    pub closed: bool,
    /// The engine wants a wake when the host has read.
    pub room_wanted: bool,
}

pub(crate) enum ReadState {
    Data(usize),
    NotYet(Instant),
    Empty,
    Closed,
}

impl OutQueue {
    /// Schedules bytes; returns how many were dropped for lack of room.
    fn push(&mut self, bytes: &[u8], now: Instant) -> usize {
        let room = OUT_HARD_CAP.saturating_sub(self.len);
        let (bytes, dropped) = if bytes.len() > room { (&bytes[..room], bytes.len() - room) } else { (bytes, 0) };
        let bt = byte_time(self.baud);
        match self.chunking {
            None => {
                if !bytes.is_empty() {
                    let start = now.max(self.line_free);
                    self.line_free = start + bt * bytes.len() as u32;
                    self.segs.push_back(Seg { data: bytes.to_vec(), pos: 0, start, per_byte: bt, boundary: false });
                }
            }
            Some((k, pause)) => {
                let k = k.max(1);
                for piece in bytes.chunks(k) {
                    let start = if self.segs.is_empty() && self.line_free <= now {
                        now
                    } else {
                        now.max(self.line_free + pause)
                    };
                    self.line_free = start + bt * piece.len() as u32;
                    self.segs.push_back(Seg { data: piece.to_vec(), pos: 0, start, per_byte: bt, boundary: true });
                }
            }
        }
        self.len += bytes.len();
        dropped
    }

    pub fn read(&mut self, buf: &mut [u8], now: Instant) -> ReadState {
        if buf.is_empty() {
            return ReadState::Data(0);
        }
        let mut n = 0;
        while n < buf.len() {
            let Some(seg) = self.segs.front_mut() else {
                break;
            };
            let due = seg.due_count(now);
            if due == 0 {
                if n == 0 {
                    return ReadState::NotYet(seg.due_of(seg.pos));
                }
                break;
            }
            let take = due.min(buf.len() - n);
            buf[n..n + take].copy_from_slice(&seg.data[seg.pos..seg.pos + take]);
            seg.pos += take;
            n += take;
            self.len -= take;
            if seg.pos >= seg.data.len() {
                let boundary = seg.boundary;
                self.segs.pop_front();
                if boundary {
                    break;
                }
            } else {
                break;
            }
        }
        if n > 0 {
            ReadState::Data(n)
        } else if self.closed {
            ReadState::Closed
        } else {
            ReadState::Empty
        }
    }

    /// Whether a byte is readable now.
    pub fn ready(&self, now: Instant) -> bool {
        self.closed || self.segs.front().map(|s| s.due_count(now) > 0).unwrap_or(false)
    }
}

/// Error of the in-process host pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostError {
    /// The simulator is gone.
    Closed,
    /// The read timeout set by [`HostPort::set_read_timeout`] elapsed.
    TimedOut,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Closed => f.write_str("simulator closed"),
            HostError::TimedOut => f.write_str("read timed out"),
        }
    }
}

impl core::error::Error for HostError {}

impl embedded_io::Error for HostError {
    fn kind(&self) -> embedded_io::ErrorKind {
        match self {
            HostError::Closed => embedded_io::ErrorKind::BrokenPipe,
            HostError::TimedOut => embedded_io::ErrorKind::TimedOut,
        }
    }
}

impl From<HostError> for std::io::Error {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Closed => std::io::Error::new(std::io::ErrorKind::BrokenPipe, e),
            HostError::TimedOut => std::io::Error::new(std::io::ErrorKind::TimedOut, e),
        }
    }
}

/// The host's end of the in-process serial line (the "UART" of the MCU under test).
///
/// Implements `std::io::{Read, Write}`, `embedded_io::{Read, ReadReady, Write, WriteReady}`
/// and `embedded_io_async::{Read, Write}`. Reads block until at least one byte is due (paced
/// by the baud rate); after the simulator is dropped they return `Ok(0)`. Writes queue up to
/// 64 KiB and then block (like hardware flow control); after the simulator is dropped they
/// fail with [`HostError::Closed`].
pub struct HostPort {
    rx: HostRx,
    tx: HostTx,
}

/// Receiving half of a [`HostPort`] (modem-to-host bytes).
pub struct HostRx {
    shared: Arc<Shared>,
    timeout: Option<Duration>,
}

/// Sending half of a [`HostPort`] (host-to-modem bytes).
pub struct HostTx {
    shared: Arc<Shared>,
}

impl HostPort {
    pub(crate) fn new(shared: Arc<Shared>) -> HostPort {
        HostPort { rx: HostRx::new(shared.clone()), tx: HostTx::new(shared) }
    }

    /// Splits into independently usable halves (both `Send`).
    pub fn split(self) -> (HostRx, HostTx) {
        (self.rx, self.tx)
    }

    /// Timeout for the blocking read paths (`std::io::Read`, `embedded_io::Read`);
    /// `None` (the default) waits forever.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.rx.set_read_timeout(timeout);
    }
}

impl HostRx {
    pub(crate) fn new(shared: Arc<Shared>) -> HostRx {
        HostRx { shared, timeout: None }
    }

    /// Timeout for the blocking read paths; `None` waits forever.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.timeout = timeout;
    }

    /// Whether the engine asked to be woken once the host has made room.
    fn take_room_wanted(o: &mut OutQueue) -> bool {
        if o.room_wanted && o.len < OUT_SOFT_CAP / 2 {
            o.room_wanted = false;
            true
        } else {
            false
        }
    }

    /// Blocking read honouring the pacing schedule.
    fn read_blocking(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let deadline = self.timeout.map(|t| Instant::now() + t);
        let mut o = lock(&self.shared.out);
        loop {
            let now = Instant::now();
            let wait_until = match o.read(buf, now) {
                ReadState::Data(n) => {
                    let wake = Self::take_room_wanted(&mut o);
                    drop(o);
                    if wake {
                        self.shared.wake_engine();
                    }
                    return Ok(n);
                }
                ReadState::Closed => return Ok(0),
                ReadState::NotYet(due) => Some(due),
                ReadState::Empty => None,
            };
            let until = match (wait_until, deadline) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(d) = deadline {
                if now >= d {
                    return Err(HostError::TimedOut);
                }
            }
            o = match until {
                Some(u) => {
                    let dur = u.saturating_duration_since(now);
                    self.shared.out_cv.wait_timeout(o, dur).unwrap_or_else(|e| e.into_inner()).0
                }
                None => self.shared.out_cv.wait(o).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    fn poll_read_inner(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<usize> {
        if buf.is_empty() {
            return Poll::Ready(0);
        }
        let mut o = lock(&self.shared.out);
        match o.read(buf, Instant::now()) {
            ReadState::Data(n) => {
                let wake = Self::take_room_wanted(&mut o);
                drop(o);
                if wake {
                    self.shared.wake_engine();
                }
                Poll::Ready(n)
            }
            ReadState::Closed => Poll::Ready(0),
            ReadState::Empty => {
                o.waker = Some(cx.waker().clone());
                Poll::Pending
            }
            ReadState::NotYet(due) => {
                o.waker = Some(cx.waker().clone());
                drop(o);
                // The engine thread doubles as the timer that wakes us when the byte is due.
                let mut ib = lock(&self.shared.inbox);
                ib.async_wake_at = Some(ib.async_wake_at.map_or(due, |d| d.min(due)));
                drop(ib);
                self.shared.inbox_cv.notify_all();
                Poll::Pending
            }
        }
    }

    fn ready(&self) -> bool {
        lock(&self.shared.out).ready(Instant::now())
    }
}

impl HostTx {
    pub(crate) fn new(shared: Arc<Shared>) -> HostTx {
        HostTx { shared }
    }

    fn push_locked(&self, ib: &mut Inbox, buf: &[u8]) -> usize {
        let cap = if ib.baud.is_some() { PACED_IN_CAP } else { IN_CAP };
        let room = cap.saturating_sub(ib.host_len);
        let n = room.min(buf.len());
        if n > 0 {
            ib.host.push_back((Instant::now(), buf[..n].to_vec(), 0));
            ib.host_len += n;
        }
        n
    }

    fn write_blocking(&mut self, buf: &[u8]) -> Result<usize, HostError> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut ib = lock(&self.shared.inbox);
        loop {
            if self.shared.is_closed() {
                return Err(HostError::Closed);
            }
            let n = self.push_locked(&mut ib, buf);
            if n > 0 {
                drop(ib);
                self.shared.inbox_cv.notify_all();
                return Ok(n);
            }
            ib = self
                .shared
                .in_room_cv
                .wait_timeout(ib, Duration::from_millis(100))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn poll_write_inner(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<Result<usize, HostError>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.shared.is_closed() {
            return Poll::Ready(Err(HostError::Closed));
        }
        let mut ib = lock(&self.shared.inbox);
        let n = self.push_locked(&mut ib, buf);
        if n > 0 {
            drop(ib);
            self.shared.inbox_cv.notify_all();
            Poll::Ready(Ok(n))
        } else {
            ib.writer_waker = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    fn write_ready(&self) -> bool {
        let ib = lock(&self.shared.inbox);
        let cap = if ib.baud.is_some() { PACED_IN_CAP } else { IN_CAP };
        ib.host_len < cap || self.shared.is_closed()
    }
}

// ---- std::io ----

impl std::io::Read for HostRx {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        Ok(self.read_blocking(buf)?)
    }
}

impl std::io::Write for HostTx {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        Ok(self.write_blocking(buf)?)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Read for HostPort {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        std::io::Read::read(&mut self.rx, buf)
    }
}

impl std::io::Write for HostPort {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::Write::write(&mut self.tx, buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// ---- embedded-io ----

impl embedded_io::ErrorType for HostRx {
    type Error = HostError;
}
impl embedded_io::ErrorType for HostTx {
    type Error = HostError;
}
impl embedded_io::ErrorType for HostPort {
    type Error = HostError;
}

impl embedded_io::Read for HostRx {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        self.read_blocking(buf)
    }
}
impl embedded_io::ReadReady for HostRx {
    fn read_ready(&mut self) -> Result<bool, HostError> {
        Ok(self.ready())
    }
}
impl embedded_io::Write for HostTx {
    fn write(&mut self, buf: &[u8]) -> Result<usize, HostError> {
        self.write_blocking(buf)
    }
    fn flush(&mut self) -> Result<(), HostError> {
        Ok(())
    }
}
impl embedded_io::WriteReady for HostTx {
    fn write_ready(&mut self) -> Result<bool, HostError> {
        Ok(HostTx::write_ready(self))
    }
}
impl embedded_io::Read for HostPort {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        self.rx.read_blocking(buf)
    }
}
impl embedded_io::ReadReady for HostPort {
    fn read_ready(&mut self) -> Result<bool, HostError> {
        Ok(self.rx.ready())
    }
}
impl embedded_io::Write for HostPort {
    fn write(&mut self, buf: &[u8]) -> Result<usize, HostError> {
        self.tx.write_blocking(buf)
    }
    fn flush(&mut self) -> Result<(), HostError> {
        Ok(())
    }
}
impl embedded_io::WriteReady for HostPort {
    fn write_ready(&mut self) -> Result<bool, HostError> {
        Ok(self.tx.write_ready())
    }
}

// ---- embedded-io-async ----

struct ReadFut<'a> {
    rx: &'a mut HostRx,
    buf: &'a mut [u8],
}

impl std::future::Future for ReadFut<'_> {
    type Output = Result<usize, HostError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.rx.poll_read_inner(cx, this.buf).map(Ok)
    }
}

struct WriteFut<'a> {
    tx: &'a mut HostTx,
    buf: &'a [u8],
}

impl std::future::Future for WriteFut<'_> {
    type Output = Result<usize, HostError>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        this.tx.poll_write_inner(cx, this.buf)
    }
}

impl embedded_io_async::Read for HostRx {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        ReadFut { rx: self, buf }.await
    }
}
impl embedded_io_async::Write for HostTx {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, HostError> {
        WriteFut { tx: self, buf }.await
    }
    async fn flush(&mut self) -> Result<(), HostError> {
        Ok(())
    }
}
impl embedded_io_async::Read for HostPort {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, HostError> {
        ReadFut { rx: &mut self.rx, buf }.await
    }
}
impl embedded_io_async::Write for HostPort {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, HostError> {
        WriteFut { tx: &mut self.tx, buf }.await
    }
    async fn flush(&mut self) -> Result<(), HostError> {
        Ok(())
    }
}
