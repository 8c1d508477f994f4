//! The blocking front: embedded-nal 0.9 traits over the shared engine, for single-threaded
//! firmware with no interrupts, threads or executor.
//!
//! [`Bg96`] owns the serial port and polls it whenever it needs input: while a command runs,
//! and once at the start of every non-blocking call (`connect`, `receive`, `accept`, ...) so
//! that URCs are seen. A `receive` with nothing pending returns `WouldBlock` **without sending
//! anything to the modem**: data is announced by `+QIURC: "recv"` URCs.
//!
//! The traits are implemented for `&Bg96`, so one modem serves several users at once (minimq
//! needs a `TcpClientStack` and, for a named broker, a `Dns`): interior mutability through a
//! `RefCell`, which is fine because everything runs on one thread.
//!
//! # Feeding the stack from a UART interrupt
//!
//! The stack reads through `embedded_io::Read + ReadReady`. To receive in an interrupt
//! instead of polling the UART, let the interrupt push bytes into a queue (for example
//! `heapless::spsc::Queue`) and give the stack a serial type whose `read_ready` says whether
//! the queue has bytes and whose `read` pops them, and whose `Write` writes to the UART. Nothing
//! else changes; the stack never blocks in `read` because it asks `read_ready` first.

use core::cell::RefCell;
use core::net::{IpAddr, SocketAddr};

use embedded_io::{Read, ReadReady, Write};

use crate::channel::{self, Channel, ReadInfo, block_on, interpret};
use crate::clock::Clock;
use crate::commands::{AccessMode, Command, Host, MAX_SEND, Qird, Qisend, ServiceType};
use crate::config::Config;
use crate::core::{Core, DataSink, Kind, State, Stats};
use crate::error::{Error, Result};
use crate::modem::{self, ModemInfo, OpenParams};
use crate::socket::{CONNECT_IDS, SlotRef, SlotState};
use crate::wire::{Discard, Sink};

/// Bytes read from the serial port per poll.
const RX_CHUNK: usize = 64;
/// Bytes of a command line buffered before they are written to the serial port.
const TX_CHUNK: usize = 32;

/// The BG96 network stack, blocking front. See the [module docs](self).
pub struct Bg96<S, C> {
    inner: RefCell<Inner<S, C>>,
}

/// Where the front keeps what the ingress hands over outside of a `+QIRD` read.
struct Stores;

impl DataSink for Stores {
    fn read(&mut self, _: &[u8]) {}
    fn push(&mut self, _: u8, _: Option<(usize, Option<SocketAddr>)>, _: &[u8]) -> usize {
        0
    }
    fn transparent(&mut self, _: &[u8]) -> usize {
        0
    }
}

/// The sink of a `+QIRD` read: payload into the caller's buffer, the rest to the stores.
struct ReadSink<'a> {
    dest: &'a mut [u8],
    pos: usize,
    stores: &'a mut Stores,
}

impl DataSink for ReadSink<'_> {
    fn read(&mut self, data: &[u8]) {
        let end = (self.pos + data.len()).min(self.dest.len());
        let n = end.saturating_sub(self.pos);
        if let (Some(dst), Some(src)) = (self.dest.get_mut(self.pos..end), data.get(..n)) {
            dst.copy_from_slice(src);
        }
        self.pos = end;
    }
    fn push(&mut self, id: u8, start: Option<(usize, Option<SocketAddr>)>, data: &[u8]) -> usize {
        self.stores.push(id, start, data)
    }
    fn transparent(&mut self, data: &[u8]) -> usize {
        self.stores.transparent(data)
    }
}

struct Inner<S, C> {
    serial: S,
    clock: C,
    core: Core,
    stores: Stores,
    config: Config,
    rx: [u8; RX_CHUNK],
    handles: u8,
    info: Option<ModemInfo>,
    dns_query: Option<DnsQuery>,
}

/// Writes a command line to the serial port in small pieces.
struct SerialSink<'a, S> {
    serial: &'a mut S,
    buf: heapless::Vec<u8, TX_CHUNK>,
}

impl<S: Write> SerialSink<'_, S> {
    fn flush(&mut self) -> Result<()> {
        self.serial.write_all(&self.buf).map_err(serial_error)?;
        self.buf.clear();
        Ok(())
    }
}

impl<S: Write> Sink for SerialSink<'_, S> {
    fn put(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let room = TX_CHUNK - self.buf.len();
            let (now, later) = bytes.split_at(room.min(bytes.len()));
            let _ = self.buf.extend_from_slice(now);
            if self.buf.is_full() {
                self.flush()?;
            }
            bytes = later;
        }
        Ok(())
    }
}

fn serial_error<E: embedded_io::Error>(e: E) -> Error {
    Error::Serial(e.kind())
}

impl<S: Read + ReadReady + Write, C: Clock> Inner<S, C> {
    /// Reads what the serial port has (one chunk) and feeds it to the engine.
    fn pump(&mut self, dest: Option<(&mut [u8], &mut usize)>) -> Result<bool> {
        if !self.serial.read_ready().map_err(serial_error)? {
            return Ok(false);
        }
        let n = self.serial.read(&mut self.rx).map_err(serial_error)?;
        let input = self.rx.get(..n).unwrap_or(&[]);
        match dest {
            Some((dest, pos)) => {
                let mut sink = ReadSink { dest, pos: *pos, stores: &mut self.stores };
                self.core.feed(input, &mut sink);
                *pos = sink.pos;
            }
            None => {
                self.core.feed(input, &mut self.stores);
            }
        }
        Ok(n > 0)
    }

    /// Processes everything the modem has sent so far, without waiting.
    fn poll(&mut self) -> Result<()> {
        while self.pump(None)? {}
        Ok(())
    }

    fn write_command<Cmd: Command>(&mut self, cmd: &Cmd) -> Result<()> {
        // check every argument before the first byte goes out: a partial line would
        // corrupt the next command
        cmd.write_to(&mut Discard)?;
        let mut sink = SerialSink { serial: &mut self.serial, buf: heapless::Vec::new() };
        cmd.write_to(&mut sink)?;
        sink.flush()?;
        self.serial.flush().map_err(serial_error)
    }

    fn start<Cmd: Command>(&mut self, cmd: &Cmd, kind: Kind) -> Result<()> {
        cmd.write_to(&mut Discard)?;
        self.core.begin(cmd.response_prefix(), kind)?;
        if let Err(e) = self.write_command(cmd) {
            self.core.end();
            return Err(e);
        }
        Ok(())
    }

    /// Polls until the running command has its final result, or the deadline.
    fn wait_result(
        &mut self,
        deadline: u64,
        mut dest: Option<(&mut [u8], &mut usize)>,
    ) -> Result<crate::ingress::Final> {
        loop {
            if let Some(r) = self.core.result() {
                return r;
            }
            if self.clock.now_ms() >= deadline {
                return Err(Error::Timeout);
            }
            let d = dest.as_mut().map(|(d, p)| (&mut **d, &mut **p));
            self.pump(d)?;
        }
    }
}

impl<S: Read + ReadReady + Write, C: Clock> Channel for Inner<S, C> {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    async fn sleep_ms(&mut self, ms: u32) {
        let deadline = self.clock.now_ms() + u64::from(ms);
        while self.clock.now_ms() < deadline {
            if self.pump(None).is_err() {
                break;
            }
        }
    }

    async fn exec<Cmd: Command>(&mut self, cmd: &Cmd, kind: Kind, timeout_ms: u32) -> Result<Cmd::Response> {
        self.start(cmd, kind)?;
        let deadline = self.clock.now_ms() + u64::from(timeout_ms);
        let result =
            self.wait_result(deadline, None).and_then(interpret).and_then(|()| cmd.parse_lines(self.core.response()?));
        self.core.end();
        result
    }

    async fn send(&mut self, cmd: &Qisend, data: &[u8]) -> Result<()> {
        self.start(cmd, Kind::Send)?;
        let deadline = self.clock.now_ms() + u64::from(cmd.timeout_ms());
        let result = (|| {
            while !self.core.prompted() {
                if let Some(r) = self.core.result() {
                    return r.and_then(interpret).and(Err(Error::Failed));
                }
                if self.clock.now_ms() >= deadline {
                    return Err(Error::Timeout);
                }
                self.pump(None)?;
            }
            self.serial.write_all(data).map_err(serial_error)?;
            self.serial.flush().map_err(serial_error)?;
            self.core.payload_written(data.len());
            interpret(self.wait_result(deadline, None)?)
        })();
        self.core.end();
        result
    }

    async fn read(&mut self, cmd: &Qird, dest: &mut [u8]) -> Result<ReadInfo> {
        self.start(cmd, Kind::Read { connect_id: cmd.connect_id })?;
        let deadline = self.clock.now_ms() + u64::from(cmd.timeout_ms());
        let mut pos = 0;
        let result = self.wait_result(deadline, Some((dest, &mut pos))).and_then(interpret);
        let header = self.core.st.cmd.read_header;
        self.core.end();
        result?;
        let (len, remote) = header.ok_or(Error::Parse)?;
        Ok(ReadInfo { len, copied: pos, remote })
    }

    async fn wait_for<T>(&mut self, deadline_ms: u64, mut f: impl FnMut(&mut State) -> Option<T>) -> Result<T> {
        loop {
            if let Some(v) = f(&mut self.core.st) {
                return Ok(v);
            }
            if self.clock.now_ms() >= deadline_ms {
                return Err(Error::Timeout);
            }
            self.pump(None)?;
        }
    }

    fn state<R>(&mut self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.core.st)
    }

    async fn reclaim(&mut self) -> Result<()> {
        modem::close_pending(self).await
    }
}

impl<S: Read + ReadReady + Write, C: Clock> Bg96<S, C> {
    /// A stack over `serial` (the UART to the modem, 115200 8N1 by default), timed by `clock`.
    /// Nothing is sent until [`Bg96::bring_up`].
    pub fn new(serial: S, clock: C, config: Config) -> Self {
        Self {
            inner: RefCell::new(Inner {
                serial,
                clock,
                core: Core::new(),
                stores: Stores,
                config,
                rx: [0; RX_CHUNK],
                handles: 0,
                info: None,
                dns_query: None,
            }),
        }
    }

    /// Brings the modem up (the manual's Figure 1): synchronises, switches echo off, checks the
    /// (U)SIM and the registration, configures and activates the context, and closes sockets an
    /// earlier run of the firmware left open.
    pub fn bring_up(&self) -> Result<ModemInfo> {
        let mut inner = self.inner.borrow_mut();
        let inner = &mut *inner;
        let config = inner.config.clone();
        let info = block_on(modem::bring_up(inner, &config))?;
        inner.core.acknowledge_reboot();
        inner.info = Some(info.clone());
        Ok(info)
    }

    /// What the last bring-up learnt.
    pub fn info(&self) -> Option<ModemInfo> {
        self.inner.borrow().info.clone()
    }

    /// Processes what the modem has sent (URCs) without waiting and without sending anything.
    pub fn poll(&self) -> Result<()> {
        self.inner.borrow_mut().poll()
    }

    /// Runs any typed command of [`crate::commands`] and returns its parsed answer. A bare
    /// `ERROR` of a TCP/IP command is reported with the code from `AT+QIGETERROR`.
    pub fn command<Cmd: Command>(&self, cmd: &Cmd) -> Result<Cmd::Response> {
        let mut inner = self.inner.borrow_mut();
        block_on(channel::command(&mut *inner, cmd))
    }

    /// Counters of the ingress.
    pub fn stats(&self) -> Stats {
        self.inner.borrow().core.st.stats
    }

    /// How many connectIDs the modem has in use, as far as the stack knows.
    pub fn sockets_in_use(&self) -> usize {
        self.inner.borrow().core.st.sockets.in_use()
    }

    /// Gives the serial port and the clock back.
    pub fn release(self) -> (S, C) {
        let inner = self.inner.into_inner();
        (inner.serial, inner.clock)
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner<S, C>) -> R) -> R {
        f(&mut self.inner.borrow_mut())
    }
}

// ---------------------------------------------------------------------------------------------
// Socket handles

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sock {
    New,
    Bound(u16),
    Connecting {
        slot: SlotRef,
        deadline: u64,
    },
    Connected(SlotRef),
    /// A `"TCP LISTENER"`.
    Listening(SlotRef),
    /// A `"UDP SERVICE"`.
    Service(SlotRef),
}

/// A TCP socket handle of the blocking stack.
#[derive(Debug)]
pub struct TcpSocket {
    st: Sock,
}

/// A UDP socket handle of the blocking stack.
#[derive(Debug)]
pub struct UdpSocket {
    st: Sock,
}

impl<S: Read + ReadReady + Write, C: Clock> Inner<S, C> {
    fn new_handle(&mut self) -> Result<()> {
        if usize::from(self.handles) >= CONNECT_IDS {
            return Err(Error::NoFreeSocket);
        }
        self.handles += 1;
        Ok(())
    }

    fn drop_handle(&mut self) {
        self.handles = self.handles.saturating_sub(1);
    }

    fn open(&mut self, service_type: ServiceType, remote: SocketAddr, local_port: u16) -> Result<SlotRef> {
        let params = OpenParams {
            context_id: self.config.context_id,
            service_type,
            remote: Host::Ip(remote.ip()),
            remote_port: remote.port(),
            local_port,
            access_mode: AccessMode::Buffer,
        };
        block_on(modem::start_open(self, &params))
    }

    /// Reads once from a connected socket into `buf`; `WouldBlock` without a command when
    /// nothing was announced.
    fn socket_receive(&mut self, r: SlotRef, buf: &mut [u8]) -> nb::Result<(usize, Option<SocketAddr>), Error> {
        self.poll()?;
        let slot = *self.core.st.sockets.current(r)?;
        if !slot.rx_ready {
            return Err(if slot.peer_closed { nb::Error::Other(Error::Closed) } else { nb::Error::WouldBlock });
        }
        match block_on(modem::read_socket(self, r, buf))? {
            modem::ReadOutcome::Data { len, remote } => Ok((len, remote)),
            modem::ReadOutcome::Empty => Err(nb::Error::WouldBlock),
            modem::ReadOutcome::Closed => Err(nb::Error::Other(Error::Closed)),
        }
    }

    /// Sends all of `data` (in pieces of at most 1460 bytes) unless the modem's buffer fills.
    fn socket_send(&mut self, r: SlotRef, data: &[u8], remote: Option<SocketAddr>) -> nb::Result<usize, Error> {
        self.poll()?;
        let mut sent = 0;
        while sent < data.len() {
            let slot = self.core.st.sockets.current(r)?;
            if slot.peer_closed {
                return Err(nb::Error::Other(Error::Closed));
            }
            let chunk = data.get(sent..).unwrap_or(&[]);
            let chunk = chunk.get(..chunk.len().min(MAX_SEND)).unwrap_or(&[]);
            let cmd = Qisend { connect_id: r.connect_id, len: Some(chunk.len() as u16), remote };
            match block_on(Channel::send(self, &cmd, chunk)) {
                Ok(()) => sent += chunk.len(),
                Err(Error::SendFail) if sent > 0 => return Ok(sent),
                Err(Error::SendFail) => return Err(nb::Error::WouldBlock),
                Err(Error::Failed) => {
                    let e = block_on(channel::last_error(self));
                    // ERROR means the socket is gone (field note 11)
                    let e = if e == Error::Failed { Error::Closed } else { e };
                    return Err(nb::Error::Other(e));
                }
                Err(e) => return Err(nb::Error::Other(e)),
            }
        }
        Ok(sent)
    }

    fn close(&mut self, st: Sock) -> Result<()> {
        self.drop_handle();
        let r = match st {
            Sock::Connecting { slot, .. } | Sock::Connected(slot) | Sock::Listening(slot) | Sock::Service(slot) => slot,
            Sock::New | Sock::Bound(_) => return Ok(()),
        };
        if self.core.st.sockets.current(r).is_err() {
            // gone already (reboot, context deactivated)
            return Ok(());
        }
        if let Sock::Listening(_) = st {
            // connections the modem accepted but nobody took: nobody will, close them too;
            // accepted ones stay open
            for (_, slot) in self.core.st.sockets.iter_mut() {
                if slot.state == SlotState::Incoming && slot.server_id == r.connect_id {
                    slot.release(SlotState::PendingClose, None);
                }
            }
        }
        block_on(modem::close_slot(self, r.connect_id))?;
        block_on(modem::close_pending(self))
    }

    /// Opens a server service (`"TCP LISTENER"` or `"UDP SERVICE"`) and waits for `+QIOPEN`.
    fn open_server(&mut self, service_type: ServiceType, local_port: u16) -> Result<SlotRef> {
        if local_port == 0 {
            return Err(Error::InvalidArgument);
        }
        let unspecified = SocketAddr::new(IpAddr::V4(core::net::Ipv4Addr::LOCALHOST), 0);
        let slot = self.open(service_type, unspecified, local_port)?;
        block_on(modem::finish_open(self, slot))?;
        Ok(slot)
    }

    fn accept(&mut self, listener: SlotRef) -> nb::Result<(SlotRef, SocketAddr), Error> {
        self.poll()?;
        self.core.st.sockets.current(listener)?;
        let found = self
            .core
            .st
            .sockets
            .iter()
            .find(|(_, s)| s.state == SlotState::Incoming && s.server_id == listener.connect_id)
            .map(|(id, s)| (id, s.remote));
        let Some((id, Some(remote))) = found else {
            return Err(nb::Error::WouldBlock);
        };
        self.new_handle()?;
        let slot = self.core.st.sockets.get_mut(id).ok_or(Error::InvalidState)?;
        slot.state = SlotState::Open;
        // the modem may already have announced data or a close for it
        let r = self.core.st.sockets.slot_ref(id).ok_or(Error::InvalidState)?;
        Ok((r, remote))
    }

    fn connect_poll(&mut self, st: &mut Sock) -> nb::Result<(), Error> {
        let Sock::Connecting { slot, deadline } = *st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        self.poll()?;
        match modem::open_result(&mut self.core.st, slot) {
            Some(Ok(())) => {
                *st = Sock::Connected(slot);
                Ok(())
            }
            Some(Err(e)) => {
                *st = Sock::New;
                Err(nb::Error::Other(e))
            }
            None if self.clock.now_ms() >= deadline => {
                // Figure 1: no +QIOPEN within 150 s, close the connection
                let _ = block_on(modem::close_slot(self, slot.connect_id));
                *st = Sock::New;
                Err(nb::Error::Other(Error::Timeout))
            }
            None => Err(nb::Error::WouldBlock),
        }
    }
}

impl<S: Read + ReadReady + Write, C: Clock> embedded_nal::TcpClientStack for &Bg96<S, C> {
    type TcpSocket = TcpSocket;
    type Error = Error;

    fn socket(&mut self) -> Result<TcpSocket> {
        self.with(|i| i.new_handle())?;
        Ok(TcpSocket { st: Sock::New })
    }

    /// Opens a `"TCP"` socket in buffer access mode. Returns `WouldBlock` until the modem
    /// reports the outcome (`+QIOPEN`); calling it again meanwhile is fine.
    fn connect(&mut self, socket: &mut TcpSocket, remote: SocketAddr) -> nb::Result<(), Error> {
        self.with(|i| match socket.st {
            Sock::New | Sock::Bound(_) => {
                let local = if let Sock::Bound(p) = socket.st { p } else { 0 };
                let slot = i.open(ServiceType::Tcp, remote, local)?;
                let deadline =
                    i.clock.now_ms() + u64::from(<crate::commands::Qiopen<'_> as atat::AtatCmd>::MAX_TIMEOUT_MS);
                socket.st = Sock::Connecting { slot, deadline };
                i.connect_poll(&mut socket.st)
            }
            Sock::Connecting { .. } => i.connect_poll(&mut socket.st),
            Sock::Connected(_) => Ok(()),
            Sock::Listening(_) | Sock::Service(_) => Err(nb::Error::Other(Error::InvalidState)),
        })
    }

    /// Sends up to all of `buffer` in `AT+QISEND` pieces of at most 1460 bytes. `SEND FAIL`
    /// (the modem's buffer is full) is `WouldBlock`, or a short count if some was sent.
    fn send(&mut self, socket: &mut TcpSocket, buffer: &[u8]) -> nb::Result<usize, Error> {
        let Sock::Connected(r) = socket.st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        self.with(|i| i.socket_send(r, buffer, None))
    }

    /// Reads what the modem holds for the socket. With nothing announced it returns
    /// `WouldBlock` without sending anything to the modem. After the peer closed, the buffered
    /// data is still delivered, then [`Error::Closed`] (`TcpErrorKind::PipeClosed`).
    fn receive(&mut self, socket: &mut TcpSocket, buffer: &mut [u8]) -> nb::Result<usize, Error> {
        let Sock::Connected(r) = socket.st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        self.with(|i| i.socket_receive(r, buffer)).map(|(n, _)| n)
    }

    /// `AT+QICLOSE`, and the connectID is free again.
    fn close(&mut self, socket: TcpSocket) -> Result<()> {
        self.with(|i| i.close(socket.st))
    }
}

impl<S: Read + ReadReady + Write, C: Clock> embedded_nal::UdpClientStack for &Bg96<S, C> {
    type UdpSocket = UdpSocket;
    type Error = Error;

    fn socket(&mut self) -> Result<UdpSocket> {
        self.with(|i| i.new_handle())?;
        Ok(UdpSocket { st: Sock::New })
    }

    /// Opens a `"UDP"` socket to `remote` and waits for the modem's `+QIOPEN`.
    fn connect(&mut self, socket: &mut UdpSocket, remote: SocketAddr) -> Result<()> {
        self.with(|i| {
            if !matches!(socket.st, Sock::New | Sock::Bound(_)) {
                return Err(Error::InvalidState);
            }
            let local = if let Sock::Bound(p) = socket.st { p } else { 0 };
            let slot = i.open(ServiceType::Udp, remote, local)?;
            block_on(modem::finish_open(i, slot))?;
            socket.st = Sock::Connected(slot);
            Ok(())
        })
    }

    /// Sends one datagram (at most 1460 bytes: the BG96 cannot send more in one `AT+QISEND`).
    fn send(&mut self, socket: &mut UdpSocket, buffer: &[u8]) -> nb::Result<(), Error> {
        let Sock::Connected(r) = socket.st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        if buffer.len() > MAX_SEND || buffer.is_empty() {
            return Err(nb::Error::Other(Error::InvalidArgument));
        }
        self.with(|i| i.socket_send(r, buffer, None)).map(|_| ())
    }

    /// Reads one datagram and its sender. A bound socket (`"UDP SERVICE"`) gets each datagram
    /// whole; one larger than `buffer` is reported as [`Error::Truncated`] (the part that fits
    /// is in `buffer`; the modem hands a datagram out only once). A `"UDP"` socket reads at
    /// most `buffer.len()` bytes of the next datagram: use 1500 bytes to get whole datagrams.
    fn receive(&mut self, socket: &mut UdpSocket, buffer: &mut [u8]) -> nb::Result<(usize, SocketAddr), Error> {
        let (Sock::Connected(r) | Sock::Service(r)) = socket.st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        let (n, from) = self.with(|i| i.socket_receive(r, buffer))?;
        Ok((n, from.unwrap_or(SocketAddr::new(IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED), 0))))
    }

    fn close(&mut self, socket: UdpSocket) -> Result<()> {
        self.with(|i| i.close(socket.st))
    }
}

/// State of a DNS query started by a non-blocking `get_host_by_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DnsQuery {
    name_hash: u32,
    deadline: u64,
}

fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

impl<S: Read + ReadReady + Write, C: Clock> embedded_nal::Dns for &Bg96<S, C> {
    type Error = Error;

    /// Resolves `hostname` with `AT+QIDNSGIP`. The first call starts the query and returns
    /// `WouldBlock`; later calls with the same name return the result. `AddrType::Either`
    /// prefers an IPv4 address (A), then IPv6 (AAAA). An IP address in text form is returned
    /// as is.
    fn get_host_by_name(&mut self, hostname: &str, addr_type: embedded_nal::AddrType) -> nb::Result<IpAddr, Error> {
        if let Some(ip) = crate::wire::parse_ip(hostname.as_bytes()) {
            return Ok(ip);
        }
        self.with(|i| {
            let hash = fnv1a(hostname);
            let running = i.dns_query;
            match running {
                Some(q) if q.name_hash == hash => {
                    i.poll()?;
                    match modem::dns_result(&mut i.core.st, &addr_type) {
                        Some(r) => {
                            i.dns_query = None;
                            r.map_err(nb::Error::Other)
                        }
                        None if i.clock.now_ms() >= q.deadline => {
                            i.dns_query = None;
                            i.core.st.dns.pending = false;
                            Err(nb::Error::Other(Error::Timeout))
                        }
                        None => Err(nb::Error::WouldBlock),
                    }
                }
                Some(_) => {
                    // another name is being resolved: finish it first (one query at a time)
                    i.poll()?;
                    if i.core.st.dns.pending && i.core.st.dns.result.is_none() {
                        return Err(nb::Error::WouldBlock);
                    }
                    i.core.st.dns.pending = false;
                    i.dns_query = None;
                    Err(nb::Error::WouldBlock)
                }
                None => {
                    let context_id = i.config.context_id;
                    block_on(modem::start_dns(i, context_id, hostname))?;
                    i.dns_query = Some(DnsQuery { name_hash: hash, deadline: i.clock.now_ms() + 60_000 });
                    i.poll()?;
                    match modem::dns_result(&mut i.core.st, &addr_type) {
                        Some(r) => {
                            i.dns_query = None;
                            r.map_err(nb::Error::Other)
                        }
                        None => Err(nb::Error::WouldBlock),
                    }
                }
            }
        })
    }

    /// The BG96 has no reverse DNS: always [`Error::NotSupported`].
    fn get_host_by_address(&mut self, _addr: IpAddr, _result: &mut [u8]) -> nb::Result<usize, Error> {
        Err(nb::Error::Other(Error::NotSupported))
    }
}

impl<S: Read + ReadReady + Write, C: Clock> embedded_nal::TcpFullStack for &Bg96<S, C> {
    /// Records the local port for [`listen`](embedded_nal::TcpFullStack::listen) (1–65535).
    fn bind(&mut self, socket: &mut TcpSocket, local_port: u16) -> Result<()> {
        if local_port == 0 {
            return Err(Error::InvalidArgument);
        }
        match socket.st {
            Sock::New | Sock::Bound(_) => {
                socket.st = Sock::Bound(local_port);
                Ok(())
            }
            _ => Err(Error::InvalidState),
        }
    }

    /// Opens a `"TCP LISTENER"` on the bound port (buffer access mode, so that accepted
    /// connections are in buffer access mode whichever way the manual's contradiction is read)
    /// and waits for `+QIOPEN`.
    fn listen(&mut self, socket: &mut TcpSocket) -> Result<()> {
        let Sock::Bound(port) = socket.st else {
            return Err(Error::InvalidState);
        };
        let slot = self.with(|i| i.open_server(ServiceType::TcpListener, port))?;
        socket.st = Sock::Listening(slot);
        Ok(())
    }

    /// Returns `WouldBlock` until the modem reports `+QIURC: "incoming"` for this listener,
    /// then a connected socket (its own connectID) and the client's address. Clients the modem
    /// turned away because no connectID was free (`"incoming full"`) are counted in
    /// [`Stats::incoming_full`].
    fn accept(&mut self, socket: &mut TcpSocket) -> nb::Result<(TcpSocket, SocketAddr), Error> {
        let Sock::Listening(listener) = socket.st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        let (r, remote) = self.with(|i| i.accept(listener))?;
        Ok((TcpSocket { st: Sock::Connected(r) }, remote))
    }
}

impl<S: Read + ReadReady + Write, C: Clock> embedded_nal::UdpFullStack for &Bg96<S, C> {
    /// Opens a `"UDP SERVICE"` on `local_port` (1–65535): the socket then receives datagrams
    /// from any peer, each with its sender, and sends with
    /// [`send_to`](embedded_nal::UdpFullStack::send_to).
    fn bind(&mut self, socket: &mut UdpSocket, local_port: u16) -> Result<()> {
        if !matches!(socket.st, Sock::New | Sock::Bound(_)) {
            return Err(Error::InvalidState);
        }
        let slot = self.with(|i| i.open_server(ServiceType::UdpService, local_port))?;
        socket.st = Sock::Service(slot);
        Ok(())
    }

    /// One datagram of at most 1460 bytes to `remote` (`AT+QISEND=<id>,<len>,"<ip>",<port>`).
    /// A zero-length datagram cannot be sent: the BG96's `AT+QISEND` needs 1–1460 bytes.
    fn send_to(&mut self, socket: &mut UdpSocket, remote: SocketAddr, buffer: &[u8]) -> nb::Result<(), Error> {
        let Sock::Service(r) = socket.st else {
            return Err(nb::Error::Other(Error::InvalidState));
        };
        if buffer.is_empty() || buffer.len() > MAX_SEND || remote.port() == 0 {
            return Err(nb::Error::Other(Error::InvalidArgument));
        }
        self.with(|i| i.socket_send(r, buffer, Some(remote))).map(|_| ())
    }
}
