//! DNS commands: `AT+QIDNSCFG` (manual 2.1.13) and `AT+QIDNSGIP` (2.1.14).

use core::net::IpAddr;

use super::{
    Command, DEFAULT_TIMEOUT_MS, MAX_HOSTNAME_LEN, NO_INFO, NoResponse, atat_command, check_context, first_with,
};
use crate::error::{Error, Result};
use crate::wire::{self, Sink, fields};

/// `AT+QIDNSCFG=<contextID>,<pridnsaddr>[,<secdnsaddr>]`: set the DNS servers of a context.
/// The modem answers `ERROR` until the context is active (field note 16).
#[derive(Debug, Clone, Copy)]
pub struct Qidnscfg {
    /// 1–16.
    pub context_id: u8,
    /// Primary DNS server.
    pub primary: IpAddr,
    /// Secondary DNS server.
    pub secondary: Option<IpAddr>,
}
impl Command for Qidnscfg {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_context(self.context_id)?;
        sink.put(b"AT+QIDNSCFG=");
        wire::put_u32(sink, u32::from(self.context_id));
        sink.put(b",");
        wire::put_ip(sink, self.primary)?;
        if let Some(sec) = self.secondary {
            sink.put(b",");
            wire::put_ip(sink, sec)?;
        }
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(Qidnscfg => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// The DNS servers of a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct DnsServers {
    /// Primary server (`None` if the modem reports an empty or unparsable address).
    pub primary: Option<IpAddr>,
    /// Secondary server.
    pub secondary: Option<IpAddr>,
}
impl atat::AtatResp for DnsServers {}

/// `AT+QIDNSCFG=<contextID>`: query the DNS servers of a context.
#[derive(Debug, Clone, Copy)]
pub struct QidnscfgQuery {
    /// 1–16.
    pub context_id: u8,
}
impl Command for QidnscfgQuery {
    const PREFIX: &'static [u8] = b"+QIDNSCFG:";
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_context(self.context_id)?;
        sink.put(b"AT+QIDNSCFG=");
        wire::put_u32(sink, u32::from(self.context_id));
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<DnsServers> {
        let mut f = fields(first_with(resp, b"+QIDNSCFG:")?);
        let _cid = f.u8().ok_or(Error::Parse)?;
        Ok(DnsServers { primary: f.ip(), secondary: f.ip() })
    }
}
atat_command!(QidnscfgQuery => DnsServers, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `AT+QIDNSGIP=<contextID>,<hostname>`: resolve a name. The modem answers `OK` and reports the
/// result later as `+QIURC: "dnsgip"` URCs (up to 60 s). One query at a time (field note 16).
#[derive(Debug, Clone, Copy)]
pub struct Qidnsgip<'a> {
    /// 1–16.
    pub context_id: u8,
    /// The name.
    pub hostname: &'a str,
}
impl Command for Qidnsgip<'_> {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_context(self.context_id)?;
        if self.hostname.is_empty() {
            return Err(Error::InvalidArgument);
        }
        sink.put(b"AT+QIDNSGIP=");
        wire::put_u32(sink, u32::from(self.context_id));
        sink.put(b",");
        wire::put_quoted(sink, self.hostname, MAX_HOSTNAME_LEN)?;
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(@lifetime 'a, Qidnsgip<'a> => NoResponse, timeout_ms = 60_000);

#[cfg(test)]
mod tests {
    use super::super::tests::{bytes, parse, refused};
    use super::*;

    #[test]
    fn bytes_and_answers() {
        let cfg = Qidnscfg {
            context_id: 1,
            primary: "8.8.8.8".parse().unwrap(),
            secondary: Some("1.1.1.1".parse().unwrap()),
        };
        assert_eq!(bytes(&cfg), "AT+QIDNSCFG=1,\"8.8.8.8\",\"1.1.1.1\"\r");
        assert_eq!(bytes(&Qidnscfg { secondary: None, ..cfg }), "AT+QIDNSCFG=1,\"8.8.8.8\"\r");
        assert_eq!(bytes(&QidnscfgQuery { context_id: 1 }), "AT+QIDNSCFG=1\r");
        assert_eq!(bytes(&Qidnsgip { context_id: 1, hostname: "www.baidu.com" }), "AT+QIDNSGIP=1,\"www.baidu.com\"\r");
        assert!(refused(&Qidnsgip { context_id: 1, hostname: "" }));
        assert!(refused(&Qidnsgip { context_id: 1, hostname: "a\"b" }));
        let s = parse(&QidnscfgQuery { context_id: 1 }, &["+QIDNSCFG: 1,\"10.0.0.1\",\"0.0.0.0\""]).unwrap();
        assert_eq!(s.primary, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(s.secondary, Some("0.0.0.0".parse().unwrap()));
    }
}
