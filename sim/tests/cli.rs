//! The `bg96-sim` binary over TCP and over a PTY.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::esc;

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Killed, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_bg96-sim"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let child = Killed(child);
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).unwrap();
    (child, line.trim_end().to_string())
}

fn read_until(r: &mut impl Read, pat: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    let end = Instant::now() + Duration::from_secs(5);
    while !got.ends_with(pat) {
        assert!(Instant::now() < end, "timeout; got {}", esc(&got));
        match r.read(&mut b) {
            Ok(1) => got.push(b[0]),
            Ok(_) => panic!("EOF; got {}", esc(&got)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(Duration::from_millis(5)),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("{e}"),
        }
    }
    got
}

#[test]
fn listen_over_tcp() {
    let (_child, line) = start(&["--listen", "127.0.0.1:0", "--boot-delay", "0", "--dns", "example.test=127.0.0.1"]);
    let addr = line.strip_prefix("listening on ").expect(&line);
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b"AT\r").unwrap();
    let got = read_until(&mut s, b"OK\r\n");
    assert!(got.ends_with(b"AT\r\r\nOK\r\n"), "{}", esc(&got));
    s.write_all(b"ATE0\rAT+QIACT=1\rAT+QIDNSGIP=1,\"example.test\"\r").unwrap();
    let got = read_until(&mut s, b"\"dnsgip\",\"127.0.0.1\"\r\n");
    assert!(got.ends_with(b"+QIURC: \"dnsgip\",0,1,600\r\n\r\n+QIURC: \"dnsgip\",\"127.0.0.1\"\r\n"));
    drop(s);
    // Reconnect: the modem state is kept (echo is still off).
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(b"AT+QIACT?\r").unwrap();
    let got = read_until(&mut s, b"OK\r\n");
    assert_eq!(esc(&got), esc(b"\r\n+QIACT: 1,1,1,\"127.0.0.1\"\r\n\r\nOK\r\n"));
}

#[test]
fn serve_a_pty() {
    let (_child, line) = start(&["--pty", "--profile", "manual", "--baud", "115200"]);
    let path = line.strip_prefix("pty ").expect(&line);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .unwrap();
    let got = read_until(&mut f, b"RDY\r\n");
    assert_eq!(esc(&got), esc(b"\r\nRDY\r\n"));
    f.write_all(b"AT+QGMR\r").unwrap();
    let got = read_until(&mut f, b"OK\r\n");
    assert_eq!(esc(&got), esc(b"\r\nBG96MAR02A08M1G\r\n\r\nOK\r\n"));
    // Binary bytes pass the raw-mode PTY untouched.
    f.write_all(b"AT\x03\x11\x13\x7f\r").unwrap();
    let got = read_until(&mut f, b"ERROR\r\n");
    assert_eq!(esc(&got), esc(b"\r\nERROR\r\n"));
}

#[test]
fn help_and_bad_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_bg96-sim")).arg("--help").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("--listen"));
    let out = Command::new(env!("CARGO_BIN_EXE_bg96-sim")).args(["--listen", "nonsense"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_bg96-sim")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
