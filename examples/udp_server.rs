//! A UDP server over the blocking stack (embedded-nal `UdpFullStack`): binds a port of the
//! modem ("UDP SERVICE"), answers each datagram to its sender with `send_to`.
//!
//! ```sh
//! cargo run --example udp_server                                   # simulator + 3 local peers
//! cargo run --example udp_server -- --serial /dev/ttyUSB0 --apn APN --port 5000
//! ```

#[path = "support/mod.rs"]
mod support;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use embedded_io::{Read, ReadReady, Write};
use embedded_nal::{UdpClientStack, UdpFullStack};
use quectel_bg96::blocking::Bg96;
use support::{Args, BoxError, Serial, StdClock, block};

const ABOUT: support::About = support::About {
    name: "udp_server",
    what: "UDP server over the blocking stack: bind a port, answer each datagram's sender",
    host: "not used",
    port: "the port to bind (default 5000 with --serial, a free one on the simulator)",
};

fn main() {
    support::init_logging();
    let args = Args::parse(&ABOUT);
    support::exit_on_error(run(&args));
}

fn run(args: &Args) -> Result<(), BoxError> {
    match &args.serial {
        Some(path) => {
            let modem = Bg96::new(Serial::open(path, args.baud)?, StdClock::default(), args.config()?);
            let port = args.port.unwrap_or(5000);
            serve(&modem, port, 1, Duration::from_secs(300), || {
                println!("waiting for a datagram on port {port} of the modem's address");
            })
        }
        None => {
            let (_sim, serial) = support::simulator(&[]);
            let modem = Bg96::new(serial, StdClock::default(), args.config()?);
            let port =
                args.port.unwrap_or_else(|| UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port());
            let mut peers = Vec::new();
            serve(&modem, port, 3, Duration::from_secs(20), || {
                peers = (0..3).map(|i| std::thread::spawn(move || peer(port, i))).collect();
            })?;
            for p in peers {
                p.join().map_err(|_| "a peer panicked")??;
            }
            Ok(())
        }
    }
}

/// A peer on loopback: one datagram to the server, and its answer.
fn peer(port: u16, i: usize) -> Result<(), String> {
    let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let server = SocketAddr::from(([127, 0, 0, 1], port));
    let hello = format!("hello from peer {i}");
    s.send_to(hello.as_bytes(), server).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    let (n, from) = s.recv_from(&mut buf).map_err(|e| format!("peer {i}: {e}"))?;
    let want = format!("ack: {hello}");
    if from != server || &buf[..n] != want.as_bytes() {
        return Err(format!("peer {i}: wrong answer from {from}"));
    }
    Ok(())
}

fn serve<S: Read + ReadReady + Write>(
    modem: &Bg96<S, StdClock>,
    port: u16,
    count: usize,
    limit: Duration,
    bound: impl FnOnce(),
) -> Result<(), BoxError> {
    support::bring_up(modem)?;
    let mut stack = modem;
    let mut socket = UdpClientStack::socket(&mut stack)?;
    stack.bind(&mut socket, port)?;
    println!("UDP service on port {port}");
    bound();
    let mut buf = [0u8; 1500];
    for _ in 0..count {
        let (n, from) = block("receive", limit, || UdpClientStack::receive(&mut stack, &mut socket, &mut buf))?;
        println!("{n} bytes from {from}: {:?}", String::from_utf8_lossy(&buf[..n]));
        let mut answer = b"ack: ".to_vec();
        answer.extend_from_slice(&buf[..n]);
        answer.truncate(1460);
        block("send_to", Duration::from_secs(10), || stack.send_to(&mut socket, from, &answer))?;
    }
    UdpClientStack::close(&mut stack, socket)?;
    println!("answered {count} datagrams; closed");
    Ok(())
}
