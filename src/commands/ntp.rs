//! `AT+QNTP` (manual 2.1.12), with the Cargo feature `ntp`.

use super::{Command, DEFAULT_TIMEOUT_MS, Host, NO_INFO, NoResponse, atat_command, check_context, first_with};
use crate::error::{Error, Result};
use crate::wire::{self, Sink, fields};

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
    pub const RESULTS_MS: u32 = 126_000;

    /// [`Qntp::RESULTS_MS`].
    pub fn results_timeout_ms(&self) -> u32 {
        Self::RESULTS_MS
    }
}
impl Command for Qntp<'_> {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_context(self.context_id)?;
        if self.port == Some(0) {
            return Err(Error::InvalidArgument);
        }
        sink.put(b"AT+QNTP=");
        wire::put_u32(sink, u32::from(self.context_id));
        sink.put(b",");
        self.server.write_to(sink)?;
        match (self.port, self.set_clock) {
            (Some(p), s) => {
                wire::put_arg_u32(sink, u32::from(p));
                if let Some(s) = s {
                    wire::put_arg_u32(sink, u32::from(s));
                }
            }
            (None, Some(s)) => {
                sink.put(b",123");
                wire::put_arg_u32(sink, u32::from(s));
            }
            (None, None) => {}
        }
        sink.put(b"\r");
        Ok(())
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
        sink.put(b"AT+QNTP?\r");
        Ok(())
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
    use super::super::tests::{bytes, parse};
    use super::*;

    #[test]
    fn bytes_of_the_manual_example() {
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
