//! The host end of the pipe: embedded-io, embedded-io-async (waker-driven), pacing,
//! statistics, wire log, and shutdown.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake};
use std::thread;
use std::time::{Duration, Instant};

use bg96_sim::{Direction, HostError, Profile, SimConfig, Simulator};
use common::*;

struct Unpark(thread::Thread, Arc<AtomicUsize>);
impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.unpark();
    }
}

/// A minimal executor: parks between polls; a lost wake-up shows up as a timed-out park.
fn block_on<F: Future>(f: F) -> (F::Output, usize) {
    let wakes = Arc::new(AtomicUsize::new(0));
    let waker = Arc::new(Unpark(thread::current(), wakes.clone())).into();
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    let mut polls = 0;
    loop {
        polls += 1;
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return (v, polls);
        }
        let before = Instant::now();
        while wakes.swap(0, Ordering::SeqCst) == 0 {
            thread::park_timeout(Duration::from_secs(5));
            assert!(before.elapsed() < Duration::from_secs(5), "lost wake-up");
        }
    }
}

async fn read_until_async<R: embedded_io_async::Read>(r: &mut R, pat: &[u8]) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.ends_with(pat) {
        let n = r.read(&mut buf).await.ok().unwrap();
        assert!(n > 0, "EOF");
        got.extend_from_slice(&buf[..n]);
    }
    got
}

fn manual_cfg() -> SimConfig {
    fast(Profile::Manual)
}

#[test]
fn async_read_and_write() {
    let (_sim, mut port) = Simulator::spawn(manual_cfg());
    let ((), polls) = block_on(async {
        use embedded_io_async::Write;
        assert_eq!(read_until_async(&mut port, b"RDY\r\n").await, b"\r\nRDY\r\n");
        port.write_all(b"ATI\r").await.ok().unwrap();
        port.flush().await.ok().unwrap();
        let got = read_until_async(&mut port, b"OK\r\n").await;
        assert!(got.ends_with(b"Revision: BG96MAR02A08M1G\r\n\r\nOK\r\n"));
    });
    assert!(polls < 50, "no busy polling: {polls}");
}

#[test]
fn async_split_halves_with_pacing() {
    let cfg = SimConfig { baud: Some(9600), ..manual_cfg() };
    let (_sim, port) = Simulator::spawn(cfg);
    let (mut rx, mut tx) = port.split();
    let start = Instant::now();
    let (got, polls) = block_on(async move {
        use embedded_io_async::Write;
        read_until_async(&mut rx, b"RDY\r\n").await;
        tx.write_all(b"ATI\r").await.ok().unwrap();
        read_until_async(&mut rx, b"OK\r\n").await
    });
    assert!(got.ends_with(b"\r\nOK\r\n"));
    // 7 + 4 + 47 bytes at 9600 baud.
    assert!(start.elapsed() >= Duration::from_millis(55), "{:?}", start.elapsed());
    assert!(polls < 200, "{polls}");
}

#[test]
fn embedded_io_blocking_and_ready() {
    use embedded_io::{Read, ReadReady, Write, WriteReady};
    let (sim, mut port) = Simulator::spawn(manual_cfg());
    let mut buf = [0u8; 7];
    port.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"\r\nRDY\r\n");
    assert!(!port.read_ready().unwrap());
    assert!(port.write_ready().unwrap());
    port.write_all(b"AT\r").unwrap();
    assert!(wait_for(Duration::from_secs(2), || port.read_ready().unwrap()));
    let mut buf = [0u8; 6];
    port.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"\r\nOK\r\n");
    port.set_read_timeout(Some(Duration::from_millis(20)));
    assert_eq!(port.read(&mut buf), Err(HostError::TimedOut));
    drop(sim);
    assert_eq!(port.read(&mut buf), Ok(0));
    assert_eq!(port.write(b"AT\r"), Err(HostError::Closed));
    let e: &dyn core::error::Error = &HostError::Closed;
    assert!(!e.to_string().is_empty());
}

#[test]
fn split_halves_in_threads() {
    use std::io::{Read, Write};
    let (_sim, port) = Simulator::spawn(manual_cfg());
    let (mut rx, mut tx) = port.split();
    let (booted_tx, booted) = std::sync::mpsc::channel();
    let reader = thread::spawn(move || {
        rx.set_read_timeout(Some(Duration::from_secs(3)));
        let mut got = Vec::new();
        let mut b = [0u8; 1];
        while !got.ends_with(b"OK\r\n\r\nOK\r\n") {
            let n = rx.read(&mut b).unwrap();
            got.extend_from_slice(&b[..n]);
            if got == b"\r\nRDY\r\n" {
                booted_tx.send(()).unwrap();
            }
        }
        got
    });
    // Bytes sent before RDY are lost (the modem is not running yet).
    booted.recv().unwrap();
    tx.write_all(b"AT\rAT\r").unwrap();
    assert_eq!(reader.join().unwrap(), b"\r\nRDY\r\n\r\nOK\r\n\r\nOK\r\n");
}

#[test]
fn input_is_paced_too() {
    let cfg = SimConfig {
        baud: Some(10_000), // 1 ms per byte
        ..manual_cfg()
    };
    let mut t = T::booted(cfg);
    let line = format!("AT{}\r", "X".repeat(197)); // 200 bytes
    let start = Instant::now();
    t.send(&line);
    t.expect("\r\nERROR\r\n");
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(195), "{took:?}");
    let st = t.sim.stats();
    assert!(st.bytes_to_modem >= 200);
}

#[test]
fn wire_log_and_file() {
    let dir = std::env::temp_dir().join(format!("bg96-sim-log-{}", std::process::id()));
    let cfg = SimConfig { log: Some(dir.clone()), ..manual_cfg() };
    let mut t = T::booted(cfg);
    t.cmd("AT", "\r\nOK\r\n");
    let log = t.sim.wire_log();
    assert!(log.iter().any(|r| r.direction == Direction::ToModem && r.bytes == b"AT\r"));
    assert!(log.iter().any(|r| r.direction == Direction::FromModem && r.bytes == b"\r\nOK\r\n"));
    assert!(log.windows(2).all(|w| w[0].at <= w[1].at));
    drop(t);
    let text = std::fs::read_to_string(&dir).unwrap();
    assert!(text.contains(">> \"AT\\r\""), "{text}");
    assert!(text.contains("<< \"\\r\\nOK\\r\\n\""), "{text}");
    let _ = std::fs::remove_file(&dir);
}

#[test]
fn dropping_the_simulator_closes_sockets() {
    let (l, port) = tcp_peer();
    let mut t = T::active(Profile::Field);
    t.open_tcp(0, port, 0);
    let mut peer = accept(&l);
    let sim2 = t.sim.clone();
    drop(t);
    // A clone keeps it alive.
    assert_eq!(sim2.open_sockets().len(), 1);
    drop(sim2);
    let mut b = [0u8; 4];
    assert_eq!(std::io::Read::read(&mut peer, &mut b).unwrap(), 0);
}

#[test]
fn handles_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Simulator>();
    send::<bg96_sim::HostPort>();
    send::<bg96_sim::HostRx>();
    send::<bg96_sim::HostTx>();
    send_sync::<HostError>();
}
