//! `bg96-sim`: run the simulated BG96 on a TCP port or a PTY until killed.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use bg96_sim::{Profile, SimConfig, Simulator};

const HELP: &str = "\
bg96-sim: a Quectel BG96 simulator speaking the TCP/IP AT command set over real loopback sockets

USAGE:
    bg96-sim (--listen ADDR:PORT | --pty) [OPTIONS]

ENDPOINT (one of):
    --listen ADDR:PORT    serve the serial line over TCP (one client at a time), e.g. 127.0.0.1:0
    --pty                 serve the serial line on a new pseudo-terminal

OPTIONS:
    --baud N              pace the line at N baud (8N1) in both directions
    --profile P           manual | field (default) | lenient
    --dns NAME=IP[,IP..]  add a name to the DNS table (repeatable)
    --log FILE            append a timestamped wire log to FILE
    --firmware REV        revision for ATI/AT+QGMR (default BG96MAR02A08M1G)
    --no-recvind          firmware without AT+QICFG=\"recvind\"
    --guard-time MS       +++ guard time in ms (default 1000)
    --boot-delay MS       power-on to RDY in ms (default 50)
    --deferred-delay MS   delay of deferred results in ms (default 20)
    -h, --help            show this help

The first line on stdout is the endpoint: `listening on ADDR:PORT` or `pty /dev/pts/N`.
The simulator then runs until it is killed.
";

fn ms(v: &str, name: &str) -> Result<Duration, String> {
    v.parse::<u64>().map(Duration::from_millis).map_err(|_| format!("{name}: not a number of milliseconds: {v}"))
}

enum Endpoint {
    Listen(SocketAddr),
    Pty,
}

fn parse(args: &[String]) -> Result<Option<(Endpoint, SimConfig)>, String> {
    let mut cfg = SimConfig::default();
    let mut endpoint = None;
    let mut i = 0;
    let value = |i: &mut usize, name: &str| -> Result<String, String> {
        *i += 1;
        args.get(*i).cloned().ok_or_else(|| format!("{name} needs a value"))
    };
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                let v = value(&mut i, a)?;
                let addr = v.parse::<SocketAddr>().map_err(|_| format!("--listen: not an ADDR:PORT: {v}"))?;
                endpoint = Some(Endpoint::Listen(addr));
            }
            "--pty" => endpoint = Some(Endpoint::Pty),
            "--baud" => {
                let v = value(&mut i, a)?;
                let b = v
                    .parse::<u32>()
                    .ok()
                    .filter(|b| *b > 0)
                    .ok_or_else(|| format!("--baud: not a positive number: {v}"))?;
                cfg.baud = Some(b);
            }
            "--profile" => {
                let v = value(&mut i, a)?;
                cfg.profile = Profile::parse(&v).ok_or_else(|| format!("--profile: unknown profile {v}"))?;
            }
            "--dns" => {
                let v = value(&mut i, a)?;
                let (name, ips) = v.split_once('=').ok_or_else(|| format!("--dns: expected NAME=IP, got {v}"))?;
                let ips = ips
                    .split(',')
                    .map(|s| s.parse::<IpAddr>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| format!("--dns: bad address in {v}"))?;
                if name.is_empty() || ips.is_empty() {
                    return Err(format!("--dns: expected NAME=IP, got {v}"));
                }
                cfg.dns.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                cfg.dns.push((name.to_string(), ips));
            }
            "--log" => cfg.log = Some(value(&mut i, a)?.into()),
            "--firmware" => cfg.firmware = value(&mut i, a)?,
            "--no-recvind" => cfg.recvind_supported = false,
            "--guard-time" => cfg.guard_time = ms(&value(&mut i, a)?, a)?,
            "--boot-delay" => cfg.boot_delay = ms(&value(&mut i, a)?, a)?,
            "--deferred-delay" => cfg.deferred_delay = ms(&value(&mut i, a)?, a)?,
            other => return Err(format!("unknown argument: {other}")),
        }
        i += 1;
    }
    match endpoint {
        Some(e) => Ok(Some((e, cfg))),
        None => Err("one of --listen ADDR:PORT or --pty is required".to_string()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (endpoint, cfg) = match parse(&args) {
        Ok(Some(x)) => x,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("bg96-sim: {e}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    let (_sim, line) = match endpoint {
        Endpoint::Listen(addr) => match Simulator::listen_tcp(cfg, addr) {
            Ok((sim, a)) => (sim, format!("listening on {a}")),
            Err(e) => {
                eprintln!("bg96-sim: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        },
        Endpoint::Pty => match Simulator::pty(cfg) {
            Ok((sim, p)) => (sim, format!("pty {}", p.display())),
            Err(e) => {
                eprintln!("bg96-sim: cannot open a pty: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let mut out = std::io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    loop {
        std::thread::park();
    }
}
