//! `AT+QPING` (manual 2.1.11) and `AT+QNTP` (2.1.12).

use core::net::IpAddr;

use super::{Command, DEFAULT_TIMEOUT_MS, Host, NO_INFO, NoResponse, atat_command, check_context, first_with};
use crate::error::{Error, Result};
use crate::wire::{self, Sink, fields};

/// `AT+QPING=<contextID>,<host>[,<timeout>[,<pingnum>]]`: ping a host. The modem answers `OK`,
/// then one `+QPING:` line per request and a summary line.
#[derive(Debug, Clone, Copy)]
pub struct Qping<'a> {
    /// 1–16.
    pub context_id: u8,
    /// Name or address.
    pub host: Host<'a>,
    /// Seconds to wait for each reply (1–255, modem default 4).
    pub timeout_s: Option<u8>,
    /// Number of requests (1–10, modem default 4); requires `timeout_s`.
    pub count: Option<u8>,
}
impl Qping<'_> {
    /// How long the whole ping may take: every request's timeout plus a margin for name
    /// resolution (the field saw up to 150 s).
    pub fn results_timeout_ms(&self) -> u32 {
        let per = u32::from(self.timeout_s.unwrap_or(4));
        let n = u32::from(self.count.unwrap_or(4));
        (per * n + 60) * 1000
    }
}
impl Command for Qping<'_> {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_context(self.context_id)?;
        if self.timeout_s == Some(0) || self.count.is_some_and(|c| !(1..=10).contains(&c)) {
            return Err(Error::InvalidArgument);
        }
        if self.count.is_some() && self.timeout_s.is_none() {
            return Err(Error::InvalidArgument);
        }
        sink.put(b"AT+QPING=")?;
        wire::put_u32(sink, u32::from(self.context_id))?;
        sink.put(b",")?;
        self.host.write_to(sink)?;
        if let Some(t) = self.timeout_s {
            wire::put_arg_u32(sink, u32::from(t))?;
        }
        if let Some(c) = self.count {
            wire::put_arg_u32(sink, u32::from(c))?;
        }
        sink.put(b"\r")
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(@lifetime 'a, Qping<'a> => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// One reply of a ping: `+QPING: 0,<IP_address>,<bytes>,<time>,<ttl>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PingReply {
    /// Who answered.
    pub ip: IpAddr,
    /// Size of the request.
    pub bytes: u16,
    /// Round trip in milliseconds.
    pub time_ms: u32,
    /// Time to live of the reply.
    pub ttl: u8,
}

/// The summary of a ping: `+QPING: 0,<sent>,<rcvd>,<lost>,<min>,<max>,<avg>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PingSummary {
    /// Requests sent.
    pub sent: u8,
    /// Replies received.
    pub received: u8,
    /// Requests that timed out.
    pub lost: u8,
    /// Fastest round trip (ms).
    pub min_ms: u32,
    /// Slowest round trip (ms).
    pub max_ms: u32,
    /// Average round trip (ms).
    pub avg_ms: u32,
}

/// A `+QPING:` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PingLine {
    /// A reply to one request.
    Reply(PingReply),
    /// The final statistics.
    Summary(PingSummary),
    /// A bare result code: a request that failed (569, timeout) or the whole ping failing
    /// (any other code, e.g. 565 when the name does not resolve).
    Code(u16),
}

impl PingLine {
    /// Parses the parameters of a `+QPING:` line.
    pub fn parse(params: &[u8]) -> Option<Self> {
        let mut f = fields(params);
        let result = u16::try_from(f.u32()?).ok()?;
        let second = match f.clone().next() {
            None => return Some(PingLine::Code(result)),
            Some(s) => s,
        };
        if second.starts_with(b"\"") {
            let ip = f.ip()?;
            Some(PingLine::Reply(PingReply { ip, bytes: f.u16()?, time_ms: f.u32()?, ttl: f.u8()? }))
        } else {
            Some(PingLine::Summary(PingSummary {
                sent: f.u8()?,
                received: f.u8()?,
                lost: f.u8()?,
                min_ms: f.u32()?,
                max_ms: f.u32()?,
                avg_ms: f.u32()?,
            }))
        }
    }
}

/// `AT+QNTP=<contextID>,<server>[,<port>][,<autosettime>]`: synchronise with an NTP server.
/// The modem answers `OK`, then `+QNTP: <err>,<time>` (up to 125 s).
#[derive(Debug, Clone, Copy)]
pub struct Qntp<'a> {
    /// 1–16.
    pub context_id: u8,
    /// Name or address of the server.
    pub server: Host<'a>,
    /// Server port (1–65535); `None` leaves the modem's default (123).
    pub port: Option<u16>,
    /// Set the modem clock (`AT+CCLK`) to the synchronised time.
    pub set_clock: Option<bool>,
}
impl Qntp<'_> {
    /// How long the result may take (manual: 125 s) plus a margin.
    pub fn results_timeout_ms(&self) -> u32 {
        126_000
    }
}
impl Command for Qntp<'_> {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_context(self.context_id)?;
        if self.port == Some(0) {
            return Err(Error::InvalidArgument);
        }
        sink.put(b"AT+QNTP=")?;
        wire::put_u32(sink, u32::from(self.context_id))?;
        sink.put(b",")?;
        self.server.write_to(sink)?;
        match (self.port, self.set_clock) {
            (Some(p), s) => {
                wire::put_arg_u32(sink, u32::from(p))?;
                if let Some(s) = s {
                    wire::put_arg_u32(sink, u32::from(s))?;
                }
            }
            (None, Some(s)) => {
                sink.put(b",123")?;
                wire::put_arg_u32(sink, u32::from(s))?;
            }
            (None, None) => {}
        }
        sink.put(b"\r")
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(@lifetime 'a, Qntp<'a> => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// A time from `+QNTP:` (`"YYYY/MM/DD,hh:mm:ss+zz"`; `zz` in quarter hours, -48 to 56).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NtpTime {
    /// Year (e.g. 2013).
    pub year: u16,
    /// Month 1–12.
    pub month: u8,
    /// Day 1–31.
    pub day: u8,
    /// Hour 0–23.
    pub hour: u8,
    /// Minute 0–59.
    pub minute: u8,
    /// Second 0–59.
    pub second: u8,
    /// Time zone in quarter hours.
    pub tz_quarters: i8,
}

impl NtpTime {
    /// Parses `YYYY/MM/DD,hh:mm:ss+zz` (quotes optional).
    pub fn parse(text: &[u8]) -> Option<Self> {
        let t = wire::unquote(text)?;
        let num = |a: usize, b: usize| wire::parse_u32(t.get(a..b)?);
        if t.len() < 19 || t.get(4) != Some(&b'/') || t.get(10) != Some(&b',') {
            return None;
        }
        let tz = wire::parse_i32(t.get(19..)?).unwrap_or(0);
        Some(NtpTime {
            year: u16::try_from(num(0, 4)?).ok()?,
            month: u8::try_from(num(5, 7)?).ok()?,
            day: u8::try_from(num(8, 10)?).ok()?,
            hour: u8::try_from(num(11, 13)?).ok()?,
            minute: u8::try_from(num(14, 16)?).ok()?,
            second: u8::try_from(num(17, 19)?).ok()?,
            tz_quarters: i8::try_from(tz).ok()?,
        })
    }
}

/// The server of a running synchronisation, from `AT+QNTP?`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NtpProgress {
    /// `None` when no synchronisation is running (bare `OK`).
    pub server: Option<(heapless::String<64>, u16)>,
}
impl atat::AtatResp for NtpProgress {}

/// `AT+QNTP?`: is a synchronisation running, and with which server?
#[derive(Debug, Clone, Copy, Default)]
pub struct QntpRead;
impl Command for QntpRead {
    const PREFIX: &'static [u8] = b"+QNTP:";
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(b"AT+QNTP?\r")
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<NtpProgress> {
        let Ok(params) = first_with(resp, b"+QNTP:") else {
            return Ok(NtpProgress { server: None });
        };
        let mut f = fields(params);
        let name = core::str::from_utf8(f.quoted().ok_or(Error::Parse)?).map_err(|_| Error::Parse)?;
        let name = heapless::String::try_from(name).map_err(|_| Error::Overflow)?;
        Ok(NtpProgress { server: Some((name, f.u16().ok_or(Error::Parse)?)) })
    }
}
atat_command!(QntpRead => NtpProgress, timeout_ms = DEFAULT_TIMEOUT_MS);

#[cfg(test)]
mod tests {
    use super::super::tests::{bytes, parse, refused};
    use super::*;

    #[test]
    fn bytes_of_the_manual_examples() {
        let p = Qping { context_id: 1, host: Host::Name("www.baidu.com"), timeout_s: None, count: None };
        assert_eq!(bytes(&p), "AT+QPING=1,\"www.baidu.com\"\r");
        assert_eq!(bytes(&Qping { timeout_s: Some(2), count: Some(3), ..p }), "AT+QPING=1,\"www.baidu.com\",2,3\r");
        assert!(refused(&Qping { timeout_s: Some(2), count: Some(11), ..p }));
        assert!(refused(&Qping { timeout_s: None, count: Some(1), ..p }));
        let n = Qntp {
            context_id: 1,
            server: Host::Ip("202.120.2.101".parse().unwrap()),
            port: Some(123),
            set_clock: None,
        };
        assert_eq!(bytes(&n), "AT+QNTP=1,\"202.120.2.101\",123\r");
        assert_eq!(bytes(&Qntp { port: None, set_clock: Some(true), ..n }), "AT+QNTP=1,\"202.120.2.101\",123,1\r");
        assert_eq!(bytes(&QntpRead), "AT+QNTP?\r");
    }

    #[test]
    fn ping_lines() {
        assert_eq!(
            PingLine::parse(b"0,\"61.135.169.125\",32,192,255"),
            Some(PingLine::Reply(PingReply {
                ip: "61.135.169.125".parse().unwrap(),
                bytes: 32,
                time_ms: 192,
                ttl: 255
            }))
        );
        assert_eq!(
            PingLine::parse(b"0,4,4,0,192,479,287"),
            Some(PingLine::Summary(PingSummary {
                sent: 4,
                received: 4,
                lost: 0,
                min_ms: 192,
                max_ms: 479,
                avg_ms: 287
            }))
        );
        assert_eq!(PingLine::parse(b"565"), Some(PingLine::Code(565)));
        assert_eq!(PingLine::parse(b"x"), None);
    }

    #[test]
    fn ntp_time() {
        let t = NtpTime::parse(b"\"2013/08/19,11:10:10+32\"").unwrap();
        assert_eq!((t.year, t.month, t.day, t.hour, t.minute, t.second, t.tz_quarters), (2013, 8, 19, 11, 10, 10, 32));
        assert_eq!(NtpTime::parse(b"\"2013/08/19,11:10:10-48\"").unwrap().tz_quarters, -48);
        assert_eq!(NtpTime::parse(b"garbage"), None);
        assert_eq!(parse(&QntpRead, &[]).unwrap().server, None);
        let p = parse(&QntpRead, &["+QNTP: \"202.120.2.101\",123"]).unwrap();
        assert_eq!(p.server.unwrap().1, 123);
    }
}
