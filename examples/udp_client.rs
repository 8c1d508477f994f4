//! A UDP client over the blocking stack (embedded-nal `UdpClientStack`): sends datagrams to an
//! echo server and reads each one back.
//!
//! ```sh
//! cargo run --example udp_client                                   # simulator + echo server
//! cargo run --example udp_client -- --serial /dev/ttyUSB0 --apn APN --host echo.example.net --port 7
//! ```

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use embedded_io::{Read, ReadReady, Write};
use embedded_nal::UdpClientStack;
use quectel_bg96::blocking::Bg96;
use support::{Args, BoxError, Serial, StdClock, block};

const ABOUT: support::About = support::About {
    name: "udp_client",
    what: "UDP client over the blocking stack: datagrams to an echo server and back",
    host: "with --serial: a UDP echo server (name or address) the modem can reach",
    port: "with --serial: the echo server's port",
};

fn main() {
    support::init_logging();
    let args = Args::parse(&ABOUT);
    support::exit_on_error(run(&args));
}

fn run(args: &Args) -> Result<(), BoxError> {
    match &args.serial {
        Some(path) => {
            let (host, port) = args.peer(None)?;
            let modem = Bg96::new(Serial::open(path, args.baud)?, StdClock::default(), args.config()?);
            echo(&modem, &host, port)
        }
        None => {
            let server = support::udp_echo_server();
            let (_sim, serial) = support::simulator(&[("echo.test", server.ip())]);
            let modem = Bg96::new(serial, StdClock::default(), args.config()?);
            echo(&modem, "echo.test", server.port())
        }
    }
}

fn echo<S: Read + ReadReady + Write>(modem: &Bg96<S, StdClock>, host: &str, port: u16) -> Result<(), BoxError> {
    support::bring_up(modem)?;
    let mut stack = modem;
    let remote = SocketAddr::new(support::resolve(&mut stack, host)?, port);
    let mut socket = stack.socket()?;
    stack.connect(&mut socket, remote)?;
    println!("UDP socket to {remote}");

    let started = Instant::now();
    let mut buf = [0u8; 1500];
    for (i, len) in [5usize, 300, 1460].into_iter().enumerate() {
        let mut datagram = format!("datagram {i}\r\nOK\r\n").into_bytes();
        datagram.extend((0..=255u8).cycle().take(len.saturating_sub(datagram.len())));
        datagram.truncate(len);
        block("send", Duration::from_secs(10), || stack.send(&mut socket, &datagram))?;
        // UDP may lose datagrams on a real network: give each one a few seconds
        let (n, from) = block("receive", Duration::from_secs(5), || stack.receive(&mut socket, &mut buf))?;
        if buf[..n] != datagram[..] {
            return Err(format!("datagram {i}: the echo differs").into());
        }
        println!("datagram of {len} bytes came back from {from}");
    }
    stack.close(socket)?;
    println!("3 datagrams echoed in {}; closed", support::ms(started));
    Ok(())
}
