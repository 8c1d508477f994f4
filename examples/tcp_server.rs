//! A TCP server over the blocking stack (embedded-nal `TcpFullStack`): listens on a port of
//! the modem ("TCP LISTENER"), accepts clients, echoes what each sends until it closes.
//!
//! ```sh
//! cargo run --example tcp_server                                   # simulator + 3 local clients
//! cargo run --example tcp_server -- --serial /dev/ttyUSB0 --apn APN --port 5000
//! ```
//! A real modem's listener is reachable only where the network routes to its address (a
//! private APN, or a public address); the example serves one client there.

#[path = "support/mod.rs"]
mod support;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use embedded_io::{Read, ReadReady, Write};
use embedded_nal::{TcpClientStack, TcpError, TcpErrorKind, TcpFullStack};
use quectel_bg96::blocking::{Bg96, SocketHandle, TcpSocket};
use support::{Args, BoxError, Serial, StdClock};

const ABOUT: support::About = support::About {
    name: "tcp_server",
    what: "TCP server over the blocking stack: listen, accept clients, echo, close",
    host: "not used",
    port: "the port to listen on (default 5000 with --serial, a free one on the simulator)",
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
                println!("waiting for a client on port {port} of the modem's address");
            })
        }
        None => {
            let (_sim, serial) = support::simulator(&[]);
            let modem = Bg96::new(serial, StdClock::default(), args.config()?);
            let port = args.port.unwrap_or_else(support::free_port);
            let mut clients = Vec::new();
            serve(&modem, port, 3, Duration::from_secs(20), || {
                // three clients on loopback, at once
                clients = (0..3).map(|i| std::thread::spawn(move || client(port, i))).collect();
            })?;
            for c in clients {
                c.join().map_err(|_| "a client panicked")??;
            }
            Ok(())
        }
    }
}

/// A client on loopback: sends a line, reads the echo, closes.
fn client(port: u16, i: usize) -> Result<(), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    let line = format!("hello from client {i}\r\nOK\r\n").repeat(50 * (i + 1));
    s.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
    let mut echo = vec![0u8; line.len()];
    s.read_exact(&mut echo).map_err(|e| e.to_string())?;
    if echo != line.as_bytes() {
        return Err(format!("client {i}: wrong echo"));
    }
    Ok(())
}

struct Client {
    socket: TcpSocket,
    remote: SocketAddr,
    echoed: usize,
}

fn serve<S: Read + ReadReady + Write>(
    modem: &Bg96<S, StdClock>,
    port: u16,
    count: usize,
    limit: Duration,
    listening: impl FnOnce(),
) -> Result<(), BoxError> {
    support::bring_up(modem)?;
    let mut stack = modem;
    let mut listener = stack.socket()?;
    stack.bind(&mut listener, port)?;
    stack.listen(&mut listener)?;
    println!("listening on port {port} (connectID {})", listener.connect_id().unwrap_or_default());
    listening();

    let deadline = Instant::now() + limit;
    let mut clients: Vec<Client> = Vec::new();
    let mut served = 0;
    let mut buf = [0u8; 1500];
    while served < count {
        if Instant::now() > deadline {
            return Err(format!("served {served} of {count} clients in {} s", limit.as_secs()).into());
        }
        match stack.accept(&mut listener) {
            Ok((socket, remote)) => {
                println!("accepted {remote} on connectID {}", socket.connect_id().unwrap_or_default());
                clients.push(Client { socket, remote, echoed: 0 });
            }
            Err(nb::Error::WouldBlock) => {}
            Err(nb::Error::Other(e)) => return Err(format!("accept: {e}").into()),
        }
        let mut i = 0;
        while i < clients.len() {
            let c = &mut clients[i];
            match stack.receive(&mut c.socket, &mut buf) {
                Ok(n) => {
                    let mut sent = 0;
                    while sent < n {
                        sent += support::block("send", Duration::from_secs(30), || {
                            stack.send(&mut c.socket, &buf[sent..n])
                        })?;
                    }
                    c.echoed += n;
                    i += 1;
                }
                Err(nb::Error::WouldBlock) => i += 1,
                Err(nb::Error::Other(e)) if e.kind() == TcpErrorKind::PipeClosed => {
                    let c = clients.remove(i);
                    println!("{} closed after {} bytes echoed", c.remote, c.echoed);
                    stack.close(c.socket)?;
                    served += 1;
                }
                Err(nb::Error::Other(e)) => return Err(format!("receive from {}: {e}", c.remote).into()),
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    stack.close(listener)?;
    println!("served {served} clients; listener closed");
    Ok(())
}
