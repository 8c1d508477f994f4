//! Real host sockets on loopback behind the modem's connectIDs. Each socket gets small
//! threads that turn blocking I/O into events for the engine.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

use crate::engine::Event;
use crate::modem::NetEvent;
use crate::pipe::{Shared, lock};

/// Receive-buffer credit shared between the modem (via the engine) and a reader thread.
pub(crate) struct Credit {
    avail: Mutex<usize>,
    cv: Condvar,
    stop: AtomicBool,
}

impl Credit {
    fn new(n: usize) -> Arc<Credit> {
        Arc::new(Credit { avail: Mutex::new(n), cv: Condvar::new(), stop: AtomicBool::new(false) })
    }

    pub fn add(&self, n: usize) {
        *lock(&self.avail) += n;
        self.cv.notify_all();
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cv.notify_all();
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Waits for credit; `None` when stopped.
    fn wait(&self) -> Option<usize> {
        let mut a = lock(&self.avail);
        loop {
            if self.stopped() {
                return None;
            }
            if *a > 0 {
                return Some(*a);
            }
            a = self.cv.wait_timeout(a, Duration::from_millis(200)).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn take(&self, n: usize) -> bool {
        let mut a = lock(&self.avail);
        if *a >= n {
            *a -= n;
            true
        } else {
            false
        }
    }
}

/// The engine's handle on one host socket.
pub(crate) enum Handle {
    Tcp { stream: Arc<Mutex<Option<TcpStream>>>, writer: Option<Sender<Vec<u8>>>, credit: Arc<Credit> },
    Udp { socket: Arc<UdpSocket>, credit: Arc<Credit> },
    Listener { stop: Arc<AtomicBool>, addr: SocketAddr },
}

impl Handle {
    pub fn credit(&self, n: usize) {
        match self {
            Handle::Tcp { credit, .. } | Handle::Udp { credit, .. } => credit.add(n),
            Handle::Listener { .. } => {}
        }
    }

    pub fn send(&self, data: Vec<u8>, to: Option<SocketAddr>) {
        match self {
            Handle::Tcp { writer, .. } => {
                if let Some(w) = writer {
                    let _ = w.send(data);
                }
            }
            Handle::Udp { socket, .. } => {
                let _ = match to {
                    Some(a) => socket.send_to(&data, a),
                    None => socket.send(&data),
                };
            }
            Handle::Listener { .. } => {}
        }
    }

    /// Closes the host socket. `graceful`: let queued TCP data go out first.
    pub fn close(self, graceful: bool) {
        match self {
            Handle::Tcp { stream, writer, credit } => {
                credit.stop();
                let s = lock(&stream).take();
                if let Some(s) = s {
                    if graceful && writer.is_some() {
                        // The writer thread drains its queue, then shuts the stream down.
                        let _ = s.shutdown(Shutdown::Read);
                    } else {
                        let _ = s.shutdown(Shutdown::Both);
                    }
                }
                drop(writer);
            }
            Handle::Udp { credit, .. } => credit.stop(),
            Handle::Listener { stop, addr } => {
                stop.store(true, Ordering::SeqCst);
                // Wake the blocking accept.
                let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
            }
        }
    }
}

fn loopback_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}

fn post(shared: &Arc<Shared>, ev: NetEvent) {
    shared.post(Event::Net(ev));
}

/// Starts a TCP client: connect, then reader and writer threads.
pub(crate) fn tcp_connect(
    shared: &Arc<Shared>,
    token: u64,
    addr: SocketAddr,
    rx_cap: usize,
    timeout: Duration,
) -> Handle {
    let slot: Arc<Mutex<Option<TcpStream>>> = Arc::new(Mutex::new(None));
    let credit = Credit::new(rx_cap);
    let (tx, rx) = channel::<Vec<u8>>();
    let sh = shared.clone();
    let slot2 = slot.clone();
    let credit2 = credit.clone();
    let spawned = thread::Builder::new().name(format!("bg96-tcp-{token}")).spawn(move || {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(stream) => {
                if credit2.stopped() {
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().unwrap_or_else(|_| SocketAddr::new(loopback_like(addr.ip()), 0));
                let (reader, writer) = match (stream.try_clone(), stream.try_clone()) {
                    (Ok(r), Ok(w)) => (r, w),
                    _ => {
                        post(&sh, NetEvent::OpenFailed { token, code: 554 });
                        return;
                    }
                };
                *lock(&slot2) = Some(stream);
                post(&sh, NetEvent::Opened { token, local });
                start_tcp_io(&sh, token, reader, writer, rx, credit2);
            }
            Err(_) => post(&sh, NetEvent::OpenFailed { token, code: 566 }),
        }
    });
    if spawned.is_err() {
        post(shared, NetEvent::OpenFailed { token, code: 554 });
    }
    Handle::Tcp { stream: slot, writer: Some(tx), credit }
}

/// Adopts an accepted stream as a "TCP INCOMING" socket.
pub(crate) fn tcp_adopt(shared: &Arc<Shared>, token: u64, stream: TcpStream, rx_cap: usize) -> Option<Handle> {
    let credit = Credit::new(rx_cap);
    let (tx, rx) = channel::<Vec<u8>>();
    let _ = stream.set_nodelay(true);
    let reader = stream.try_clone().ok()?;
    let writer = stream.try_clone().ok()?;
    let slot = Arc::new(Mutex::new(Some(stream)));
    let sh = shared.clone();
    let credit2 = credit.clone();
    thread::Builder::new()
        .name(format!("bg96-inc-{token}"))
        .spawn(move || start_tcp_io(&sh, token, reader, writer, rx, credit2))
        .ok()?;
    Some(Handle::Tcp { stream: slot, writer: Some(tx), credit })
}

/// Runs the reader on this thread and spawns the writer.
fn start_tcp_io(
    shared: &Arc<Shared>,
    token: u64,
    mut reader: TcpStream,
    mut writer: TcpStream,
    rx: Receiver<Vec<u8>>,
    credit: Arc<Credit>,
) {
    let sh = shared.clone();
    let _ = thread::Builder::new().name(format!("bg96-tcpw-{token}")).spawn(move || {
        let _ = writer.set_write_timeout(Some(Duration::from_secs(10)));
        while let Ok(data) = rx.recv() {
            if writer.write_all(&data).is_err() {
                break;
            }
            post(&sh, NetEvent::Written { token, n: data.len() });
        }
        let _ = writer.shutdown(Shutdown::Write);
    });
    let mut buf = vec![0u8; 1500];
    loop {
        let Some(avail) = credit.wait() else { return };
        let n = avail.min(buf.len());
        match reader.read(&mut buf[..n]) {
            Ok(0) | Err(_) => {
                if !credit.stopped() {
                    post(shared, NetEvent::Closed { token });
                }
                return;
            }
            Ok(k) => {
                if credit.stopped() {
                    return;
                }
                credit.take(k);
                post(shared, NetEvent::Data { token, data: buf[..k].to_vec(), from: None });
            }
        }
    }
}

/// Opens a "UDP" client (connected) or binds a "UDP SERVICE".
pub(crate) fn udp_open(
    shared: &Arc<Shared>,
    token: u64,
    remote: Option<SocketAddr>,
    local_port: u16,
    rx_cap: usize,
) -> Option<Handle> {
    let bind_ip = remote.map(|r| loopback_like(r.ip())).unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let sock = match UdpSocket::bind(SocketAddr::new(bind_ip, local_port)) {
        Ok(s) => s,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::AddrInUse { 574 } else { 556 };
            post(shared, NetEvent::OpenFailed { token, code });
            return None;
        }
    };
    if let Some(r) = remote {
        if sock.connect(r).is_err() {
            post(shared, NetEvent::OpenFailed { token, code: 566 });
            return None;
        }
    }
    let _ = sock.set_read_timeout(Some(Duration::from_millis(100)));
    let local = sock.local_addr().unwrap_or_else(|_| SocketAddr::new(bind_ip, local_port));
    let socket = Arc::new(sock);
    let credit = Credit::new(rx_cap);
    let sh = shared.clone();
    let s2 = socket.clone();
    let c2 = credit.clone();
    let spawned = thread::Builder::new().name(format!("bg96-udp-{token}")).spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !c2.stopped() {
            match s2.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if c2.stopped() {
                        return;
                    }
                    if c2.take(n) {
                        post(&sh, NetEvent::Data { token, data: buf[..n].to_vec(), from: Some(from) });
                    } else {
                        lock(&sh.stats).udp_datagrams_dropped += 1;
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                // ICMP port unreachable on a connected socket etc.: keep going.
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    if spawned.is_err() {
        post(shared, NetEvent::OpenFailed { token, code: 554 });
        return None;
    }
    post(shared, NetEvent::Opened { token, local });
    Some(Handle::Udp { socket, credit })
}

/// Starts a "TCP LISTENER" on 127.0.0.1:<port>.
pub(crate) fn tcp_listen(shared: &Arc<Shared>, token: u64, port: u16) -> Option<Handle> {
    let listener = match TcpListener::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)) {
        Ok(l) => l,
        Err(e) => {
            let code = if e.kind() == std::io::ErrorKind::AddrInUse { 574 } else { 556 };
            post(shared, NetEvent::OpenFailed { token, code });
            return None;
        }
    };
    let addr = match listener.local_addr() {
        Ok(a) => a,
        Err(_) => {
            post(shared, NetEvent::OpenFailed { token, code: 557 });
            return None;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let sh = shared.clone();
    let spawned = thread::Builder::new().name(format!("bg96-listen-{token}")).spawn(move || {
        for conn in listener.incoming() {
            if stop2.load(Ordering::SeqCst) || sh.is_closed() {
                return;
            }
            match conn {
                Ok(stream) => {
                    let peer = match stream.peer_addr() {
                        Ok(p) => p,
                        Err(_) => continue,
                    };
                    let local = stream.local_addr().unwrap_or(addr);
                    sh.post(Event::Incoming { listener: token, stream, peer, local });
                }
                Err(_) => thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    if spawned.is_err() {
        post(shared, NetEvent::OpenFailed { token, code: 557 });
        return None;
    }
    post(shared, NetEvent::Opened { token, local: addr });
    Some(Handle::Listener { stop, addr })
}

/// One SNTP query (RFC 4330 client mode); posts the Unix time or error 569.
pub(crate) fn ntp_query(shared: &Arc<Shared>, token: u64, server: SocketAddr, timeout: Duration) {
    let sh = shared.clone();
    let spawned = thread::Builder::new().name(format!("bg96-ntp-{token}")).spawn(move || {
        let result = sntp(server, timeout);
        post(&sh, NetEvent::Ntp { token, result });
    });
    if spawned.is_err() {
        post(shared, NetEvent::Ntp { token, result: Err(550) });
    }
}

fn sntp(server: SocketAddr, timeout: Duration) -> Result<i64, u16> {
    const NTP_UNIX_OFFSET: i64 = 2_208_988_800;
    let sock = UdpSocket::bind(SocketAddr::new(loopback_like(server.ip()), 0)).map_err(|_| 554u16)?;
    sock.connect(server).map_err(|_| 566u16)?;
    let mut req = [0u8; 48];
    req[0] = 0x23; // LI 0, VN 4, mode 3 (client)
    sock.send(&req).map_err(|_| 558u16)?;
    let deadline = std::time::Instant::now() + timeout;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(569);
        }
        let _ = sock.set_read_timeout(Some(left));
        match sock.recv(&mut buf) {
            Ok(n) if n >= 48 && (buf[0] & 7) == 4 => {
                let secs = u32::from_be_bytes([buf[40], buf[41], buf[42], buf[43]]);
                if secs == 0 {
                    return Err(550);
                }
                return Ok(i64::from(secs) - NTP_UNIX_OFFSET);
            }
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(569);
            }
            Err(_) => {
                // ICMP unreachable: nobody listens; wait out the timeout like a lost packet.
                std::thread::sleep(left.min(Duration::from_millis(50)));
            }
        }
    }
}
