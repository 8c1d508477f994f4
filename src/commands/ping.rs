//! `AT+QPING` (manual 2.1.11), with the Cargo feature `ping`.

use core::net::IpAddr;

use super::{Command, DEFAULT_TIMEOUT_MS, Host, NO_INFO, NoResponse, atat_command, check_context};
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
    /// The longest [`results_timeout_ms`](Self::results_timeout_ms) can be (10 requests of
    /// 255 s).
    pub const MAX_RESULTS_MS: u32 = (255 * 10 + 60) * 1000;

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
        sink.put(b"AT+QPING=");
        wire::put_u32(sink, u32::from(self.context_id));
        sink.put(b",");
        self.host.write_to(sink)?;
        if let Some(t) = self.timeout_s {
            wire::put_arg_u32(sink, u32::from(t));
        }
        if let Some(c) = self.count {
            wire::put_arg_u32(sink, u32::from(c));
        }
        sink.put(b"\r");
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::super::tests::{bytes, refused};
    use super::*;

    #[test]
    fn bytes_of_the_manual_examples() {
        let p = Qping { context_id: 1, host: Host::Name("www.baidu.com"), timeout_s: None, count: None };
        assert_eq!(bytes(&p), "AT+QPING=1,\"www.baidu.com\"\r");
        assert_eq!(bytes(&Qping { timeout_s: Some(2), count: Some(3), ..p }), "AT+QPING=1,\"www.baidu.com\",2,3\r");
        assert!(refused(&Qping { timeout_s: Some(2), count: Some(11), ..p }));
        assert!(refused(&Qping { timeout_s: None, count: Some(1), ..p }));
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
}
