//! A TCP client over the blocking stack (embedded-nal `TcpClientStack` + `Dns`): resolves the
//! echo server's name in the modem, connects, sends a message, reads the echo, closes.
//!
//! ```sh
//! cargo run --example tcp_client                                   # simulator + echo server
//! cargo run --example tcp_client -- --serial /dev/ttyUSB0 --apn APN --host echo.example.net --port 7
//! ```

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use embedded_io::{Read, ReadReady, Write};
use embedded_nal::TcpClientStack;
use quectel_bg96::blocking::{Bg96, SocketHandle};
use support::{Args, BoxError, Serial, StdClock, block};

const ABOUT: support::About = support::About {
    name: "tcp_client",
    what: "TCP client over the blocking stack: connect, send, read the echo, close",
    host: "with --serial: an echo server (name or address) the modem can reach",
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
            let server = support::tcp_echo_server();
            let (_sim, serial) = support::simulator(&[("echo.test", server.ip())]);
            let modem = Bg96::new(serial, StdClock::default(), args.config()?);
            echo(&modem, "echo.test", server.port())
        }
    }
}

fn echo<S: Read + ReadReady + Write>(modem: &Bg96<S, StdClock>, host: &str, port: u16) -> Result<(), BoxError> {
    support::bring_up(modem)?;
    let mut stack = modem;
    let ip = support::resolve(&mut stack, host)?;
    let remote = SocketAddr::new(ip, port);
    println!("{host} is {ip}");

    let started = Instant::now();
    let mut socket = stack.socket()?;
    block("connect", Duration::from_secs(150), || stack.connect(&mut socket, remote))?;
    println!("connected to {remote} on connectID {}", socket.connect_id().unwrap_or_default());

    // a message with every byte value and the modem's own framing in it
    let mut message = b"hello from a BG96\r\nOK\r\n\r\n> +QIURC: \"closed\",0\r\n".to_vec();
    message.extend(0..=255u8);
    message = message.repeat(8);
    let mut sent = 0;
    while sent < message.len() {
        sent += block("send", Duration::from_secs(30), || stack.send(&mut socket, &message[sent..]))?;
    }
    let mut echoed = Vec::new();
    let mut buf = [0u8; 1500];
    while echoed.len() < message.len() {
        let n = block("receive", Duration::from_secs(30), || stack.receive(&mut socket, &mut buf))?;
        echoed.extend_from_slice(&buf[..n]);
    }
    if echoed != message {
        return Err("the echo differs from what was sent".into());
    }
    stack.close(socket)?;
    println!(
        "sent {} bytes, got the same {} bytes back in {}; closed",
        message.len(),
        echoed.len(),
        support::ms(started)
    );
    Ok(())
}
