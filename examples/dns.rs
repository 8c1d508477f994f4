//! Name resolution in the modem (embedded-nal `Dns`, `AT+QIDNSGIP`) for IPv4, IPv6 and either.
//!
//! ```sh
//! cargo run --example dns                                          # simulator's name table
//! cargo run --example dns -- --serial /dev/ttyUSB0 --apn APN --host example.com
//! ```

#[path = "support/mod.rs"]
mod support;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use embedded_io::{Read, ReadReady, Write};
use embedded_nal::{AddrType, Dns};
use quectel_bg96::blocking::Bg96;
use support::{Args, BoxError, Serial, StdClock, block};

const ABOUT: support::About = support::About {
    name: "dns",
    what: "resolve names in the modem (AT+QIDNSGIP) for IPv4, IPv6 and either",
    host: "with --serial: the name to resolve (default example.com)",
    port: "not used",
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
            let host = args.host.clone().unwrap_or_else(|| "example.com".into());
            lookup(&modem, &[host.as_str()])
        }
        None => {
            let (_sim, serial) = support::simulator(&[
                ("broker.test", IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1))),
                ("v6.test", IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ]);
            let modem = Bg96::new(serial, StdClock::default(), args.config()?);
            lookup(&modem, &["localhost", "broker.test", "v6.test"])?;
            // a name the table does not have
            let mut dns = &modem;
            match block("lookup", Duration::from_secs(70), || dns.get_host_by_name("nowhere.test", AddrType::Either)) {
                Ok(ip) => Err(format!("nowhere.test resolved to {ip}").into()),
                Err(e) => {
                    println!("nowhere.test: {e}");
                    Ok(())
                }
            }
        }
    }
}

/// Resolves each name for each address type; fails if a name has no address at all.
fn lookup<S: Read + ReadReady + Write>(modem: &Bg96<S, StdClock>, names: &[&str]) -> Result<(), BoxError> {
    support::bring_up(modem)?;
    let mut dns = modem;
    for name in names {
        let started = Instant::now();
        let mut any = false;
        for (label, t) in [("IPv4", AddrType::IPv4), ("IPv6", AddrType::IPv6), ("either", AddrType::Either)] {
            let result = block("lookup", Duration::from_secs(70), || dns.get_host_by_name(name, t.clone()));
            match result {
                Ok(ip) => {
                    any = true;
                    println!("{name} ({label}): {ip}");
                }
                Err(e) => println!("{name} ({label}): {e}"),
            }
        }
        if !any {
            return Err(format!("{name}: no address").into());
        }
        println!("{name}: 3 lookups in {}", support::ms(started));
    }
    Ok(())
}
