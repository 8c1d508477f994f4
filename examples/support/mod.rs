//! Shared code of the examples: the command line, clocks, and the two serial lines an example
//! can run over: the built-in simulator (default) or a real BG96 on a serial port (`--serial`).
//!
//! Included by each example with `#[path = "support/mod.rs"] mod support;`.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use quectel_bg96::config::Config;
use quectel_bg96::modem::ModemInfo;

/// The examples' error type.
pub type BoxError = Box<dyn std::error::Error>;

/// Turns anything printable into a [`BoxError`] (for client crates whose errors only `Debug`).
pub fn err(e: impl std::fmt::Debug) -> BoxError {
    format!("{e:?}").into()
}

// ---------------------------------------------------------------------------------------------
// Command line

/// The options every example takes.
#[derive(Debug, Clone)]
pub struct Args {
    /// A real BG96 on this serial port instead of the simulator.
    pub serial: Option<String>,
    /// Baud rate of the serial port.
    pub baud: u32,
    /// Access point name.
    pub apn: String,
    /// The peer (name or address) for a real modem.
    pub host: Option<String>,
    /// The peer's port, or the local port of a server example.
    pub port: Option<u16>,
}

/// What an example says about itself in `--help`.
pub struct About {
    /// The example's name (`cargo run --example NAME`).
    pub name: &'static str,
    /// One line: what it does.
    pub what: &'static str,
    /// What `--host` means for it.
    pub host: &'static str,
    /// What `--port` means for it.
    pub port: &'static str,
}

impl Args {
    /// Parses the command line; `--help` prints the usage and exits, a bad option exits with 2.
    pub fn parse(about: &About) -> Args {
        match Self::parse_from(std::env::args().skip(1)) {
            Ok(Some(args)) => args,
            Ok(None) => {
                print!("{}", usage(about));
                std::process::exit(0)
            }
            Err(e) => {
                eprintln!("error: {e}\n\n{}", usage(about));
                std::process::exit(2)
            }
        }
    }

    /// `Ok(None)` for `--help`.
    fn parse_from(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
        let mut args = Args { serial: None, baud: 115_200, apn: "internet".into(), host: None, port: None };
        while let Some(opt) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{opt} needs a value"));
            match opt.as_str() {
                "-h" | "--help" => return Ok(None),
                "--serial" => args.serial = Some(value()?),
                "--baud" => args.baud = value()?.parse().map_err(|e| format!("--baud: {e}"))?,
                "--apn" => args.apn = value()?,
                "--host" => args.host = Some(value()?),
                "--port" => args.port = Some(value()?.parse().map_err(|e| format!("--port: {e}"))?),
                other => return Err(format!("unknown option {other}")),
            }
        }
        Ok(Some(args))
    }

    /// The stack's configuration (the APN).
    pub fn config(&self) -> Result<Config, BoxError> {
        Config::new(&self.apn).map_err(|e| format!("--apn {:?}: {e}", self.apn).into())
    }

    /// `--host` and `--port` for a real modem (`default_port` if `--port` is missing).
    pub fn peer(&self, default_port: Option<u16>) -> Result<(String, u16), BoxError> {
        let host = self.host.clone().ok_or("--host is needed with --serial")?;
        let port = self.port.or(default_port).ok_or("--port is needed with --serial")?;
        Ok((host, port))
    }
}

fn usage(about: &About) -> String {
    format!(
        "{name}: {what}

By default the example runs against bg96-sim, a simulated BG96 started in this process,
with its own peers on loopback, and exits 0 after printing what it did.

Usage: cargo run --example {name} [-- OPTIONS]

Options:
  --serial PATH   use a real BG96 on this serial port (e.g. /dev/ttyUSB0) instead of the simulator
  --baud N        baud rate of the serial port (default 115200, 8N1, no flow control)
  --apn APN       access point name of the SIM card's network (default \"internet\")
  --host H        {host}
  --port P        {port}
  -h, --help      print this help

Logging: RUST_LOG=debug (or trace, info, ...) through env_logger.
",
        name = about.name,
        what = about.what,
        host = about.host,
        port = about.port,
    )
}

/// Logging through env_logger (`RUST_LOG`). Without it: warnings, but nothing from the
/// in-process broker (rumqttd logs its tracing spans at error level).
pub fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,rumqttd=off")).init();
}

/// Runs the example's body; prints the error and exits 1 if it failed.
pub fn exit_on_error(result: Result<(), BoxError>) {
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// Clocks

/// Milliseconds since start, for the blocking stack.
#[derive(Clone, Copy)]
pub struct StdClock(Instant);

impl Default for StdClock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl quectel_bg96::clock::Clock for StdClock {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

/// Milliseconds since start that tokio can wait for, for the async stack.
#[derive(Clone, Copy)]
pub struct TokioClock(Instant);

impl Default for TokioClock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl quectel_bg96::clock::Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        self.0.elapsed().as_millis() as u64
    }
}

impl quectel_bg96::clock::AsyncClock for TokioClock {
    async fn wait_until(&self, deadline_ms: u64) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(self.0 + Duration::from_millis(deadline_ms))).await;
    }
}

/// The same milliseconds as an embedded-time 0.12 clock, for minimq 0.10.
#[derive(Clone, Copy)]
pub struct MqttClock(Instant);

impl Default for MqttClock {
    fn default() -> Self {
        Self(Instant::now())
    }
}

impl embedded_time::Clock for MqttClock {
    type T = u32;
    const SCALING_FACTOR: embedded_time::rate::Fraction = embedded_time::rate::Fraction::new(1, 1000);

    fn try_now(&self) -> Result<embedded_time::Instant<Self>, embedded_time::clock::Error> {
        Ok(embedded_time::Instant::new(self.0.elapsed().as_millis() as u32))
    }
}

// ---------------------------------------------------------------------------------------------
// Serial lines

/// The simulator, started in this process, with `names` in its DNS table; its serial line.
pub fn simulator(names: &[(&str, IpAddr)]) -> (bg96_sim::Simulator, bg96_sim::HostPort) {
    let config = bg96_sim::SimConfig {
        dns: names.iter().map(|(n, ip)| (n.to_string(), vec![*ip])).collect(),
        ..bg96_sim::SimConfig::default()
    };
    bg96_sim::Simulator::spawn(config)
}

fn io_kind(e: &std::io::Error) -> embedded_io::ErrorKind {
    match e.kind() {
        std::io::ErrorKind::TimedOut => embedded_io::ErrorKind::TimedOut,
        std::io::ErrorKind::BrokenPipe => embedded_io::ErrorKind::BrokenPipe,
        std::io::ErrorKind::Interrupted => embedded_io::ErrorKind::Interrupted,
        _ => embedded_io::ErrorKind::Other,
    }
}

fn open_port(path: &str, baud: u32) -> Result<Box<dyn serialport::SerialPort>, BoxError> {
    // 8N1 without flow control: the BG96's default on its main UART
    let port = serialport::new(path, baud).timeout(Duration::from_millis(20)).open()?;
    Ok(port)
}

/// A real modem's serial port for the blocking stack (`embedded_io` `Read + ReadReady +
/// Write`): the stack asks `read_ready` before it reads, so it never waits in `read`.
pub struct Serial(Box<dyn serialport::SerialPort>);

impl Serial {
    /// Opens `path` at `baud`, 8N1.
    pub fn open(path: &str, baud: u32) -> Result<Self, BoxError> {
        Ok(Serial(open_port(path, baud)?))
    }
}

impl embedded_io::ErrorType for Serial {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Serial {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        loop {
            match self.0.read(buf) {
                Ok(0) => continue,
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
                Err(e) => return Err(io_kind(&e)),
            }
        }
    }
}

impl embedded_io::ReadReady for Serial {
    fn read_ready(&mut self) -> Result<bool, Self::Error> {
        self.0.bytes_to_read().map(|n| n > 0).map_err(|_| embedded_io::ErrorKind::Other)
    }
}

impl embedded_io::Write for Serial {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf).map_err(|e| io_kind(&e))
    }

    fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush().map_err(|e| io_kind(&e))
    }
}

/// Receiving half of a real modem's serial port for the async stack: a thread reads the port
/// and hands the bytes over.
pub struct SerialRx {
    chunks: tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    chunk: Vec<u8>,
    pos: usize,
}

/// Sending half of a real modem's serial port for the async stack. Writes block the task
/// for as long as the UART needs (at most a few ms per command at 115200 baud).
pub struct SerialTx(Box<dyn serialport::SerialPort>);

/// Opens `path` at `baud` and splits it for the async stack.
pub fn open_async(path: &str, baud: u32) -> Result<(SerialRx, SerialTx), BoxError> {
    let port = open_port(path, baud)?;
    let mut reader = port.try_clone()?;
    let (tx, chunks) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => {}
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => {
                    log::error!("serial port: {e}");
                    return;
                }
            }
        }
    });
    Ok((SerialRx { chunks, chunk: Vec::new(), pos: 0 }, SerialTx(port)))
}

impl embedded_io_async::ErrorType for SerialRx {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io_async::Read for SerialRx {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        if self.pos >= self.chunk.len() {
            match self.chunks.recv().await {
                Some(chunk) => (self.chunk, self.pos) = (chunk, 0),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.pos);
        buf[..n].copy_from_slice(&self.chunk[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl embedded_io_async::ErrorType for SerialTx {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io_async::Write for SerialTx {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.0.write(buf).map_err(|e| io_kind(&e))
    }

    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.0.flush().map_err(|e| io_kind(&e))
    }
}

// ---------------------------------------------------------------------------------------------
// Stacks

/// Milliseconds since `t`, for the summaries.
pub fn ms(t: Instant) -> String {
    format!("{:.1} ms", t.elapsed().as_secs_f64() * 1000.0)
}

/// Prints what the bring-up learnt.
pub fn print_info(info: &ModemInfo, started: Instant) {
    let ip = info.local_ip.map_or("none".to_string(), |ip| ip.to_string());
    println!("modem up in {}: firmware {}, local address {ip}", ms(started), info.revision.0.as_str());
}

/// Brings the blocking stack up and prints what it learnt.
pub fn bring_up<S, C, P>(modem: &quectel_bg96::blocking::Bg96<S, C, P>) -> Result<(), BoxError>
where
    S: embedded_io::Read + embedded_io::ReadReady + embedded_io::Write,
    C: quectel_bg96::clock::Clock,
    P: quectel_bg96::recovery::PowerControl,
{
    let started = Instant::now();
    let info = modem.bring_up().map_err(|e| format!("bring-up: {e}"))?;
    print_info(&info, started);
    Ok(())
}

/// The async stack over `rx`/`tx`: its runner is spawned on the current `LocalSet`, and the
/// modem is brought up.
pub async fn start_async<R, W>(
    rx: R,
    tx: W,
    config: Config,
) -> Result<quectel_bg96::asynch::Stack<'static, W, TokioClock>, BoxError>
where
    R: embedded_io_async::Read + 'static,
    W: embedded_io_async::Write + 'static,
{
    let resources = Box::leak(Box::new(quectel_bg96::asynch::Resources::new(tx, TokioClock::default(), config)));
    let (stack, runner) = quectel_bg96::asynch::new(resources, rx);
    tokio::task::spawn_local(runner.run());
    let started = Instant::now();
    let info = stack.bring_up().await.map_err(|e| format!("bring-up: {e}"))?;
    print_info(&info, started);
    Ok(stack)
}

/// Retries a non-blocking call until it is done, for at most `limit`.
pub fn block<T, E: std::fmt::Display>(
    what: &str,
    limit: Duration,
    mut f: impl FnMut() -> nb::Result<T, E>,
) -> Result<T, BoxError> {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return Ok(v),
            Err(nb::Error::Other(e)) => return Err(format!("{what}: {e}").into()),
            Err(nb::Error::WouldBlock) if Instant::now() >= deadline => {
                return Err(format!("{what}: nothing within {} s", limit.as_secs()).into());
            }
            Err(nb::Error::WouldBlock) => std::thread::sleep(Duration::from_millis(1)),
        }
    }
}

/// Resolves `host` through the modem (`AT+QIDNSGIP`) unless it is an address already.
pub fn resolve<D: embedded_nal::Dns<Error: std::fmt::Display>>(dns: &mut D, host: &str) -> Result<IpAddr, BoxError> {
    block(&format!("DNS lookup of {host}"), Duration::from_secs(70), || {
        dns.get_host_by_name(host, embedded_nal::AddrType::Either)
    })
}

// ---------------------------------------------------------------------------------------------
// Peers on loopback for the simulator runs

/// A port nobody uses right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A TCP echo server on loopback.
pub fn tcp_echo_server() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n @ 1..) = stream.read(&mut buf) {
                    if stream.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// A UDP echo server on loopback.
pub fn udp_echo_server() -> SocketAddr {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let _ = socket.send_to(&buf[..n], from);
        }
    });
    addr
}

/// An MQTT 5 broker (rumqttd) in this process on loopback; returns its address.
pub fn mqtt_broker() -> SocketAddr {
    use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
    let port = free_port();
    let connections = ConnectionSettings {
        connection_timeout_ms: 60_000,
        max_payload_size: 20_480,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "v5".into(),
        listen: ([127, 0, 0, 1], port).into(),
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 16,
            max_outgoing_packet_count: 200,
            max_segment_size: 1 << 20,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: None,
        v5: Some([("v5".to_string(), server)].into_iter().collect()),
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    };
    let mut broker = Broker::new(config);
    std::thread::spawn(move || {
        if let Err(e) = broker.start() {
            log::error!("rumqttd: {e}");
        }
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    // wait until it listens (rumqttd logs a harmless error for this probe at debug level)
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    addr
}
