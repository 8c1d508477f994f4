//! Unsolicited result codes: `+QIURC` of every kind (manual 2.2), the deferred results that
//! arrive after `OK` (`+QIOPEN`, `+QPING`, `+QNTP`), and the modem's own status lines (`RDY`,
//! `APP RDY`, `POWERED DOWN`, `+CPIN`, `+QIND`, `+CREG`/`+CGREG`/`+CEREG`).

use core::net::{IpAddr, SocketAddr};

#[cfg(feature = "ntp")]
use crate::commands::NtpTime;
#[cfg(feature = "ping")]
use crate::commands::PingLine;
use crate::commands::{Domain, Registration, SimState};
use crate::wire::{self, after_prefix, fields};

/// A parsed URC line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Urc<'a> {
    /// `+QIURC: "recv",<connectID>[,<len>]`: data waiting in buffer access mode (`len` with
    /// `recvind` on). Direct-push data never reaches this parser: the ingress frames it.
    Recv {
        /// The socket.
        connect_id: u8,
        /// Length of the data that arrived, with `AT+QICFG="recvind",1`.
        len: Option<usize>,
    },
    /// `+QIURC: "closed",<connectID>`: the peer or the network closed the socket.
    Closed {
        /// The socket.
        connect_id: u8,
    },
    /// `+QIURC: "incoming",<connectID>,<serverID>,<remoteIP>,<remote_port>`.
    Incoming {
        /// The socket the modem gave the new connection.
        connect_id: u8,
        /// The listener that accepted it.
        server_id: u8,
        /// The client.
        remote: SocketAddr,
    },
    /// `+QIURC: "incoming full"`: a client was turned away, no connectID was free.
    IncomingFull,
    /// `+QIURC: "pdpdeact",<contextID>`: the network deactivated a context.
    PdpDeact {
        /// The context.
        context_id: u8,
    },
    /// `+QIURC: "dnsgip",<err>[,<IP_count>,<DNS_ttl>]`: first line of a DNS result.
    DnsResult {
        /// 0 or an error code.
        err: u16,
        /// How many address lines follow.
        count: u8,
        /// Time to live.
        ttl: u32,
    },
    /// `+QIURC: "dnsgip","<hostIPaddr>"`: one address of a DNS result (`None` if the address
    /// cannot be read, e.g. an IPv6 address without the `ipv6` feature: the line still counts
    /// towards the announced number, so the result is complete with the others).
    DnsAddress(Option<IpAddr>),
    /// `+QIOPEN: <connectID>,<err>`: the deferred result of `AT+QIOPEN`.
    Open {
        /// The socket.
        connect_id: u8,
        /// 0 or an error code.
        err: u16,
    },
    /// A `+QPING:` line.
    #[cfg(feature = "ping")]
    Ping(PingLine),
    /// `+QNTP: <err>[,<time>]`: the deferred result of `AT+QNTP`.
    #[cfg(feature = "ntp")]
    Ntp {
        /// 0 or an error code.
        err: u16,
        /// The synchronised time, when `err` is 0.
        time: Option<NtpTime>,
    },
    /// `RDY`: the modem (re)started.
    Ready,
    /// `APP RDY`: the modem's application is up; commands work from now on.
    AppReady,
    /// `POWERED DOWN`.
    PoweredDown,
    /// `+CPIN: <state>`.
    Sim(SimState),
    /// `+QIND: ...` (e.g. `SMS DONE`, `PB DONE`).
    Qind(&'a [u8]),
    /// `+CREG`/`+CGREG`/`+CEREG: <stat>[,...]` registration change.
    Registration {
        /// Which domain.
        domain: Domain,
        /// The new state.
        state: Registration,
    },
}

fn u16_of(v: Option<u32>) -> Option<u16> {
    u16::try_from(v?).ok()
}

/// Parses a line as a URC; `None` if it is not one.
pub fn parse(line: &[u8]) -> Option<Urc<'_>> {
    // (a table of kinds, not of `Urc`s: copying a `Urc` out of a table costs more code)
    const STATUS: [(&[u8], Status); 3] =
        [(b"RDY", Status::Ready), (b"APP RDY", Status::AppReady), (b"POWERED DOWN", Status::PoweredDown)];
    match wire::lookup(&STATUS, line) {
        Some(Status::Ready) => return Some(Urc::Ready),
        Some(Status::AppReady) => return Some(Urc::AppReady),
        Some(Status::PoweredDown) => return Some(Urc::PoweredDown),
        None => {}
    }
    if let Some(p) = after_prefix(line, b"+QIURC:") {
        return parse_qiurc(p);
    }
    if let Some(p) = after_prefix(line, b"+QIOPEN:") {
        let mut f = fields(p);
        let connect_id = f.u8().filter(|id| *id <= 11)?;
        let err = u16_of(f.u32())?;
        return Some(Urc::Open { connect_id, err });
    }
    #[cfg(feature = "ping")]
    if let Some(p) = after_prefix(line, b"+QPING:") {
        return PingLine::parse(p).map(Urc::Ping);
    }
    #[cfg(feature = "ntp")]
    if let Some(p) = after_prefix(line, b"+QNTP:") {
        let mut f = fields(p);
        let err = u16_of(f.u32())?;
        let time = f.next().and_then(NtpTime::parse);
        return Some(Urc::Ntp { err, time });
    }
    if let Some(p) = after_prefix(line, b"+CPIN:") {
        return Some(Urc::Sim(SimState::from_bytes(p)));
    }
    if let Some(p) = after_prefix(line, b"+QIND:") {
        return Some(Urc::Qind(p));
    }
    for domain in [Domain::Cs, Domain::Gprs, Domain::Eps] {
        if let Some(p) = after_prefix(line, domain.prefix()) {
            let stat = fields(p).u32()?;
            return Some(Urc::Registration { domain, state: Registration::from_stat(stat) });
        }
    }
    None
}

/// The status lines without parameters.
#[derive(Clone, Copy)]
enum Status {
    Ready,
    AppReady,
    PoweredDown,
}

/// The kinds of `+QIURC` (the quoted first field).
#[derive(Clone, Copy)]
enum QiurcKind {
    Recv,
    Closed,
    Incoming,
    IncomingFull,
    PdpDeact,
    Dnsgip,
}

fn parse_qiurc(p: &[u8]) -> Option<Urc<'_>> {
    let mut f = fields(p);
    let kind = match f.next()? {
        [b'"', inner @ .., b'"'] => inner,
        _ => return None,
    };
    use QiurcKind as K;
    const KINDS: [(&[u8], QiurcKind); 6] = [
        (b"recv", K::Recv),
        (b"closed", K::Closed),
        (b"incoming", K::Incoming),
        (b"incoming full", K::IncomingFull),
        (b"pdpdeact", K::PdpDeact),
        (b"dnsgip", K::Dnsgip),
    ];
    match wire::lookup(&KINDS, kind)? {
        K::Recv => {
            let connect_id = f.u8().filter(|id| *id <= 11)?;
            let len = match f.next() {
                None => None,
                Some(l) => Some(usize::try_from(wire::parse_u32(l)?).ok()?),
            };
            Some(Urc::Recv { connect_id, len })
        }
        K::Closed => Some(Urc::Closed { connect_id: f.u8().filter(|id| *id <= 11)? }),
        // (a server's URCs: unknown without the `server` feature, where no server runs)
        K::Incoming | K::IncomingFull if !cfg!(feature = "server") => None,
        K::Incoming => {
            let connect_id = f.u8().filter(|id| *id <= 11)?;
            let server_id = f.u8().filter(|id| *id <= 11)?;
            let ip = f.ip()?;
            let port = f.u16()?;
            Some(Urc::Incoming { connect_id, server_id, remote: wire::socket_addr(ip, port) })
        }
        K::IncomingFull => Some(Urc::IncomingFull),
        K::PdpDeact => Some(Urc::PdpDeact { context_id: f.u8().filter(|c| (1..=16).contains(c))? }),
        K::Dnsgip => {
            let first = f.clone().next()?;
            if first.starts_with(b"\"") {
                return Some(Urc::DnsAddress(f.ip()));
            }
            let err = u16_of(f.u32())?;
            let count = f.u8().unwrap_or(0);
            let ttl = f.u32().unwrap_or(0);
            Some(Urc::DnsResult { err, count, ttl })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_qiurc() {
        assert_eq!(parse(b"+QIURC: \"recv\",0"), Some(Urc::Recv { connect_id: 0, len: None }));
        assert_eq!(parse(b"+QIURC: \"recv\",11,1500"), Some(Urc::Recv { connect_id: 11, len: Some(1500) }));
        assert_eq!(parse(b"+QIURC: \"closed\",3"), Some(Urc::Closed { connect_id: 3 }));
        let server = |u: Urc<'static>| if cfg!(feature = "server") { Some(u) } else { None };
        assert_eq!(
            parse(b"+QIURC: \"incoming\",11,1,\"172.31.242.222\",54091"),
            server(Urc::Incoming { connect_id: 11, server_id: 1, remote: "172.31.242.222:54091".parse().unwrap() })
        );
        assert_eq!(parse(b"+QIURC: \"incoming full\""), server(Urc::IncomingFull));
        assert_eq!(parse(b"+QIURC: \"pdpdeact\",1"), Some(Urc::PdpDeact { context_id: 1 }));
        assert_eq!(parse(b"+QIURC: \"dnsgip\",0,2,600"), Some(Urc::DnsResult { err: 0, count: 2, ttl: 600 }));
        assert_eq!(parse(b"+QIURC: \"dnsgip\",565"), Some(Urc::DnsResult { err: 565, count: 0, ttl: 0 }));
        assert_eq!(parse(b"+QIURC: \"dnsgip\",\"1.2.3.4\""), Some(Urc::DnsAddress(Some("1.2.3.4".parse().unwrap()))));
        assert_eq!(parse(b"+QIURC: \"dnsgip\",\"not an address\""), Some(Urc::DnsAddress(None)));
        assert_eq!(parse(b"+QIOPEN: 0,0"), Some(Urc::Open { connect_id: 0, err: 0 }));
        assert_eq!(parse(b"+QIOPEN: 5,566"), Some(Urc::Open { connect_id: 5, err: 566 }));
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse(b"RDY"), Some(Urc::Ready));
        assert_eq!(parse(b"APP RDY"), Some(Urc::AppReady));
        assert_eq!(parse(b"POWERED DOWN"), Some(Urc::PoweredDown));
        assert_eq!(parse(b"+CPIN: READY"), Some(Urc::Sim(SimState::Ready)));
        assert_eq!(parse(b"+QIND: SMS DONE"), Some(Urc::Qind(b"SMS DONE")));
        assert_eq!(
            parse(b"+CEREG: 1,\"1A2B\",\"01C3D4E5\",8"),
            Some(Urc::Registration { domain: Domain::Eps, state: Registration::Home })
        );
        #[cfg(feature = "ntp")]
        assert!(matches!(parse(b"+QNTP: 0,\"2013/08/19,11:10:10+32\""), Some(Urc::Ntp { err: 0, time: Some(_) })));
        #[cfg(feature = "ping")]
        assert!(matches!(parse(b"+QPING: 0,4,4,0,192,479,287"), Some(Urc::Ping(PingLine::Summary(_)))));
    }

    #[test]
    fn malformed_lines_are_not_urcs() {
        for l in [
            &b"+QIURC: \"recv\",12"[..],
            b"+QIURC: \"closed\"",
            b"+QIURC: \"incoming\",1,2,\"nonsense\",5",
            b"+QIURC: \"pdpdeact\",0",
            b"+QIURC: \"what\",1",
            b"+QIURC: recv,1",
            b"+QIOPEN: 0",
            b"+QIOPEN: 12,0",
            b"hello",
            b"",
        ] {
            assert_eq!(parse(l), None, "{:?}", core::str::from_utf8(l));
        }
    }
}
