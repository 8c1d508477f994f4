//! Serial-line transports besides the in-process pipe: TCP on loopback and a PTY.

use std::ffi::CStr;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::pipe::{HostError, HostRx, HostTx, Shared};

const POLL: Duration = Duration::from_millis(50);

/// Accepts one client at a time and bridges it to the modem.
pub(crate) fn serve_tcp(shared: Arc<Shared>, listener: TcpListener) -> io::Result<JoinHandle<()>> {
    listener.set_nonblocking(true)?;
    thread::Builder::new().name("bg96-serial-tcp".to_string()).spawn(move || {
        let mut rx = HostRx::new(shared.clone());
        rx.set_read_timeout(Some(POLL));
        let mut buf = vec![0u8; 4096];
        while !shared.is_closed() {
            match listener.accept() {
                Ok((stream, _)) => serve_client(&shared, stream, &mut rx),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Nobody attached: output goes nowhere.
                    let _ = embedded_io::Read::read(&mut rx, &mut buf);
                }
                Err(_) => thread::sleep(POLL),
            }
        }
    })
}

fn serve_client(shared: &Arc<Shared>, stream: TcpStream, rx: &mut HostRx) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let Ok(mut reader) = stream.try_clone() else {
        return;
    };
    let done = Arc::new(AtomicBool::new(false));
    let done2 = done.clone();
    let sh = shared.clone();
    let up = thread::Builder::new().name("bg96-serial-tcp-rx".to_string()).spawn(move || {
        let mut tx = HostTx::new(sh);
        let mut buf = vec![0u8; 4096];
        loop {
            match reader.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        done2.store(true, Ordering::SeqCst);
    });
    let mut writer = stream;
    let mut buf = vec![0u8; 4096];
    while !shared.is_closed() && !done.load(Ordering::SeqCst) {
        match embedded_io::Read::read(rx, &mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if writer.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(HostError::TimedOut) => {}
            Err(HostError::Closed) => break,
        }
    }
    let _ = writer.shutdown(Shutdown::Both);
    if let Ok(h) = up {
        let _ = h.join();
    }
}

fn last_err() -> io::Error {
    io::Error::last_os_error()
}

/// The PTY master plus a slave descriptor we keep open so that the master never sees EIO.
pub(crate) struct Pty {
    master: OwnedFd,
    _slave: OwnedFd,
}

/// Opens a PTY pair in raw mode; returns it and the slave's path.
pub(crate) fn open_pty() -> io::Result<(Pty, PathBuf)> {
    // SAFETY: plain libc calls on descriptors we own; buffers are sized and NUL-terminated.
    unsafe {
        let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
        if fd < 0 {
            return Err(last_err());
        }
        let master = OwnedFd::from_raw_fd(fd);
        if libc::grantpt(fd) != 0 || libc::unlockpt(fd) != 0 {
            return Err(last_err());
        }
        let mut name = [0 as libc::c_char; 128];
        if libc::ptsname_r(fd, name.as_mut_ptr(), name.len()) != 0 {
            return Err(last_err());
        }
        let cpath = CStr::from_ptr(name.as_ptr());
        let path = PathBuf::from(cpath.to_string_lossy().into_owned());
        let sfd = libc::open(cpath.as_ptr(), libc::O_RDWR | libc::O_NOCTTY);
        if sfd < 0 {
            return Err(last_err());
        }
        let slave = OwnedFd::from_raw_fd(sfd);
        let mut tio: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(sfd, &mut tio) != 0 {
            return Err(last_err());
        }
        libc::cfmakeraw(&mut tio);
        if libc::tcsetattr(sfd, libc::TCSANOW, &tio) != 0 {
            return Err(last_err());
        }
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) != 0 {
            return Err(last_err());
        }
        Ok((Pty { master, _slave: slave }, path))
    }
}

/// Waits until `fd` is readable/writable or the poll interval passed.
fn poll_fd(fd: i32, events: libc::c_short) -> bool {
    let mut p = libc::pollfd { fd, events, revents: 0 };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut p, 1, POLL.as_millis() as libc::c_int) };
    r > 0 && (p.revents & events) != 0
}

/// Bridges the PTY master to the modem with two threads.
pub(crate) fn serve_pty(shared: Arc<Shared>, pty: Pty) -> io::Result<Vec<JoinHandle<()>>> {
    let pty = Arc::new(pty);
    let (sh, p) = (shared.clone(), pty.clone());
    let up = thread::Builder::new().name("bg96-serial-pty-rx".to_string()).spawn(move || {
        let fd = p.master.as_raw_fd();
        let mut tx = HostTx::new(sh.clone());
        let mut buf = vec![0u8; 4096];
        while !sh.is_closed() {
            if !poll_fd(fd, libc::POLLIN) {
                continue;
            }
            // SAFETY: buf is valid for buf.len() bytes.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                if tx.write_all(&buf[..n as usize]).is_err() {
                    break;
                }
            } else {
                thread::sleep(Duration::from_millis(5));
            }
        }
    })?;
    let (sh, p) = (shared, pty);
    let down = thread::Builder::new().name("bg96-serial-pty-tx".to_string()).spawn(move || {
        let fd = p.master.as_raw_fd();
        let mut rx = HostRx::new(sh.clone());
        rx.set_read_timeout(Some(POLL));
        let mut buf = vec![0u8; 4096];
        'outer: while !sh.is_closed() {
            let n = match embedded_io::Read::read(&mut rx, &mut buf) {
                Ok(0) | Err(HostError::Closed) => break,
                Ok(n) => n,
                Err(HostError::TimedOut) => continue,
            };
            let mut off = 0;
            while off < n {
                if sh.is_closed() {
                    break 'outer;
                }
                // SAFETY: the slice is in bounds.
                let w = unsafe { libc::write(fd, buf[off..n].as_ptr().cast(), n - off) };
                if w > 0 {
                    off += w as usize;
                } else {
                    poll_fd(fd, libc::POLLOUT);
                }
            }
        }
    })?;
    Ok(vec![up, down])
}
