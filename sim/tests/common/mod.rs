//! Shared helpers of the simulator tests: a strict transcript driver and loopback peers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::time::{Duration, Instant};

use bg96_sim::{HostRx, HostTx, Profile, SimConfig, Simulator};

/// Fast timings for tests.
pub fn fast(profile: Profile) -> SimConfig {
    SimConfig {
        profile,
        boot_delay: Duration::from_millis(4),
        deferred_delay: Duration::from_millis(3),
        guard_time: Duration::from_millis(150),
        ntp_timeout: Duration::from_millis(400),
        ..SimConfig::default()
    }
}

/// Escapes bytes for readable assertion messages.
pub fn esc(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// A strict transcript: every byte from the modem must be expected.
pub struct T {
    pub sim: Simulator,
    pub rx: HostRx,
    pub tx: HostTx,
    pub echo: bool,
}

pub const BOOT_FIELD: &str =
    "\r\nRDY\r\n\r\nAPP RDY\r\n\r\n+CPIN: READY\r\n\r\n+QIND: SMS DONE\r\n\r\n+QIND: PB DONE\r\n";

impl T {
    /// Spawns a simulator without waiting for the boot sequence.
    pub fn raw(cfg: SimConfig) -> T {
        let (sim, port) = Simulator::spawn(cfg);
        let (mut rx, tx) = port.split();
        rx.set_read_timeout(Some(Duration::from_secs(3)));
        T { sim, rx, tx, echo: true }
    }

    /// Spawns a simulator, consumes its boot sequence and leaves echo as the profile has it.
    pub fn booted(cfg: SimConfig) -> T {
        let manual = cfg.profile == Profile::Manual;
        let mut t = T::raw(cfg);
        if manual {
            t.expect("\r\nRDY\r\n");
            t.echo = false;
        } else {
            t.expect(BOOT_FIELD);
        }
        t
    }

    /// Booted, echo switched off (`ATE0`), ready for manual-style transcripts.
    pub fn quiet(cfg: SimConfig) -> T {
        let mut t = T::booted(cfg);
        if t.echo {
            t.send("ATE0\r");
            t.expect("ATE0\r\r\nOK\r\n");
            t.echo = false;
        }
        t
    }

    /// Field profile with fast timings, echo off, context 1 active.
    pub fn active(profile: Profile) -> T {
        let mut t = T::quiet(fast(profile));
        t.cmd("AT+QIACT=1", "\r\nOK\r\n");
        t
    }

    pub fn send(&mut self, s: impl AsRef<[u8]>) {
        self.tx.write_all(s.as_ref()).unwrap();
    }

    /// Reads exactly `want.len()` bytes and compares.
    pub fn expect(&mut self, want: impl AsRef<[u8]>) {
        let want = want.as_ref();
        let got = self.read_n(want.len());
        assert_eq!(esc(&got), esc(want), "modem output differs from the transcript");
    }

    pub fn read_n(&mut self, n: usize) -> Vec<u8> {
        let mut got = vec![0u8; n];
        let mut off = 0;
        while off < n {
            match self.rx.read(&mut got[off..]) {
                Ok(0) => panic!("EOF after {:?}", esc(&got[..off])),
                Ok(k) => off += k,
                Err(e) => panic!("read failed ({e}) after {:?}", esc(&got[..off])),
            }
        }
        got
    }

    /// Reads until `pat` has been seen; returns everything read.
    pub fn read_until(&mut self, pat: &[u8]) -> Vec<u8> {
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        while !got.ends_with(pat) {
            match self.rx.read(&mut b) {
                Ok(1) => got.push(b[0]),
                other => panic!("{other:?} while waiting for {:?}; got {:?}", esc(pat), esc(&got)),
            }
        }
        got
    }

    /// Reads one `\r\n<line>\r\n` frame and returns the line.
    pub fn frame(&mut self) -> String {
        self.expect("\r\n");
        let l = self.read_until(b"\r\n");
        String::from_utf8_lossy(&l[..l.len() - 2]).into_owned()
    }

    /// Sends `cmd\r` and expects its echo (if on) followed by `resp`.
    pub fn cmd(&mut self, cmd: &str, resp: impl AsRef<[u8]>) {
        self.send(format!("{cmd}\r"));
        if self.echo {
            self.expect(format!("{cmd}\r"));
        }
        self.expect(resp);
    }

    /// Asserts that nothing arrives for `d`.
    pub fn silence(&mut self, d: Duration) {
        self.rx.set_read_timeout(Some(d));
        let mut b = [0u8; 256];
        let r = self.rx.read(&mut b);
        self.rx.set_read_timeout(Some(Duration::from_secs(3)));
        match r {
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Ok(n) => panic!("unexpected output {:?}", esc(&b[..n])),
            Err(e) => panic!("read error {e}"),
        }
    }

    /// Opens a TCP client socket to `port` on `id` (buffer mode unless `mode`), expecting success.
    pub fn open_tcp(&mut self, id: u8, port: u16, mode: u8) {
        self.cmd(
            &format!("AT+QIOPEN=1,{id},\"TCP\",\"127.0.0.1\",{port},0,{mode}"),
            format!("\r\nOK\r\n\r\n+QIOPEN: {id},0\r\n"),
        );
    }
}

/// A TCP peer listening on loopback.
pub fn tcp_peer() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    (l, p)
}

pub fn accept(l: &TcpListener) -> std::net::TcpStream {
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s
}

pub fn read_exact_from(s: &mut impl Read, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v).unwrap();
    v
}

pub fn udp_peer() -> (UdpSocket, u16) {
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    u.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let p = u.local_addr().unwrap().port();
    (u, p)
}

/// A free local port (bind to 0, read the port, release it).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Polls `f` until it is true or `timeout` passes.
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    f()
}

/// A one-shot SNTP server on loopback answering with `unix` seconds.
pub fn ntp_server(unix: u64) -> (std::thread::JoinHandle<()>, SocketAddr) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let addr = s.local_addr().unwrap();
    let h = std::thread::spawn(move || {
        let mut buf = [0u8; 128];
        if let Ok((n, from)) = s.recv_from(&mut buf) {
            assert!(n >= 48);
            assert_eq!(buf[0] & 7, 3, "client mode");
            let mut r = [0u8; 48];
            r[0] = 0x24; // LI 0, VN 4, mode 4 (server)
            r[1] = 1;
            let secs = (unix + 2_208_988_800) as u32;
            r[40..44].copy_from_slice(&secs.to_be_bytes());
            s.send_to(&r, from).unwrap();
        }
    });
    (h, addr)
}

/// Writes to a std stream, panicking on error.
pub fn put(s: &mut impl Write, b: &[u8]) {
    s.write_all(b).unwrap();
    s.flush().unwrap();
}
