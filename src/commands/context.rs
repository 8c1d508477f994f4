//! PDP context commands: `AT+QICSGP` (manual 2.1.1), `AT+QIACT` (2.1.2), `AT+QIDEACT` (2.1.3).

use core::net::IpAddr;

use super::{Command, NO_INFO, NoResponse, atat_command, check_context, first_with, lines};
use crate::error::{Error, Result};
use crate::wire::{self, Sink, fields};

/// Longest APN the crate sends (3GPP TS 23.003 limits an APN to 100 octets).
pub const MAX_APN_LEN: usize = 100;
/// Longest user name or password the crate sends.
pub const MAX_CREDENTIAL_LEN: usize = 127;

/// `<context_type>`: the protocol type of a context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ContextType {
    /// 1: IPv4.
    #[default]
    Ipv4,
    /// 2: IPv6.
    Ipv6,
    /// 3: IPv4v6.
    Ipv4v6,
}

impl ContextType {
    /// The number used in AT commands.
    pub fn code(self) -> u8 {
        match self {
            ContextType::Ipv4 => 1,
            ContextType::Ipv6 => 2,
            ContextType::Ipv4v6 => 3,
        }
    }
    /// The type for a number in an answer.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => ContextType::Ipv4,
            2 => ContextType::Ipv6,
            3 => ContextType::Ipv4v6,
            _ => return None,
        })
    }
}

/// `<authentication>`: how the APN credentials are presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Authentication {
    /// 0: none.
    #[default]
    None,
    /// 1: PAP.
    Pap,
    /// 2: CHAP.
    Chap,
    /// 3: PAP or CHAP.
    PapOrChap,
}

impl Authentication {
    /// The number used in AT commands.
    pub fn code(self) -> u8 {
        match self {
            Authentication::None => 0,
            Authentication::Pap => 1,
            Authentication::Chap => 2,
            Authentication::PapOrChap => 3,
        }
    }
    /// The method for a number in an answer.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Authentication::None,
            1 => Authentication::Pap,
            2 => Authentication::Chap,
            3 => Authentication::PapOrChap,
            _ => return None,
        })
    }
}

/// `AT+QICSGP=<contextID>,<context_type>,<APN>,<username>,<password>,<authentication>`:
/// configure a context.
#[derive(Debug, Clone, Copy)]
pub struct Qicsgp<'a> {
    /// 1–16.
    pub context_id: u8,
    /// The protocol type.
    pub context_type: ContextType,
    /// The access point name (may be empty).
    pub apn: &'a str,
    /// User name (may be empty).
    pub username: &'a str,
    /// Password (may be empty).
    pub password: &'a str,
    /// How the credentials are presented.
    pub authentication: Authentication,
}
impl Command for Qicsgp<'_> {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_context(self.context_id)?;
        if !wire::quotable(self.apn) || !wire::quotable(self.username) || !wire::quotable(self.password) {
            return Err(Error::InvalidArgument);
        }
        sink.put(b"AT+QICSGP=");
        wire::put_u32(sink, u32::from(self.context_id));
        wire::put_arg_u32(sink, u32::from(self.context_type.code()));
        sink.put(b",");
        wire::put_quoted(sink, self.apn, MAX_APN_LEN)?;
        sink.put(b",");
        wire::put_quoted(sink, self.username, MAX_CREDENTIAL_LEN)?;
        sink.put(b",");
        wire::put_quoted(sink, self.password, MAX_CREDENTIAL_LEN)?;
        wire::put_arg_u32(sink, u32::from(self.authentication.code()));
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(@lifetime 'a, Qicsgp<'a> => NoResponse, timeout_ms = super::DEFAULT_TIMEOUT_MS);

/// The configuration of a context, from `AT+QICSGP=<contextID>`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContextConfig {
    /// The protocol type.
    pub context_type: ContextType,
    /// The access point name.
    pub apn: heapless::String<MAX_APN_LEN>,
    /// User name.
    pub username: heapless::String<MAX_CREDENTIAL_LEN>,
    /// Password.
    pub password: heapless::String<MAX_CREDENTIAL_LEN>,
    /// How the credentials are presented.
    pub authentication: Authentication,
}
impl atat::AtatResp for ContextConfig {}

fn string<const N: usize>(b: &[u8]) -> Result<heapless::String<N>> {
    let s = core::str::from_utf8(b).map_err(|_| Error::Parse)?;
    heapless::String::try_from(s).map_err(|_| Error::Overflow)
}

/// `AT+QICSGP=<contextID>`: query the configuration of a context.
#[derive(Debug, Clone, Copy)]
pub struct QicsgpQuery {
    /// 1–16.
    pub context_id: u8,
}
impl Command for QicsgpQuery {
    const PREFIX: &'static [u8] = b"+QICSGP:";
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_context(self.context_id)?;
        sink.put(b"AT+QICSGP=");
        wire::put_u32(sink, u32::from(self.context_id));
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<ContextConfig> {
        let mut f = fields(first_with(resp, b"+QICSGP:")?);
        let context_type = f.u8().and_then(ContextType::from_code).ok_or(Error::Parse)?;
        let apn = string(f.quoted().ok_or(Error::Parse)?)?;
        let username = string(f.quoted().ok_or(Error::Parse)?)?;
        let password = string(f.quoted().ok_or(Error::Parse)?)?;
        let authentication = f.u8().and_then(Authentication::from_code).ok_or(Error::Parse)?;
        Ok(ContextConfig { context_type, apn, username, password, authentication })
    }
}
atat_command!(QicsgpQuery => ContextConfig, timeout_ms = super::DEFAULT_TIMEOUT_MS);

/// `AT+QIACT=<contextID>`: activate a context (up to 150 s, determined by the network).
#[derive(Debug, Clone, Copy)]
pub struct Qiact {
    /// 1–16.
    pub context_id: u8,
}
impl Command for Qiact {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_context(self.context_id)?;
        sink.put(b"AT+QIACT=");
        wire::put_u32(sink, u32::from(self.context_id));
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(Qiact => NoResponse, timeout_ms = 150_000);

/// One line of `AT+QIACT?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ContextState {
    /// 1–16.
    pub context_id: u8,
    /// Whether the context is active.
    pub active: bool,
    /// The protocol type.
    pub context_type: ContextType,
    /// The local address, when active.
    pub ip: Option<IpAddr>,
}

/// The answer of `AT+QIACT?`: the listed contexts (an empty list is a bare `OK`).
pub type ContextStates = heapless::Vec<ContextState, 16>;
impl atat::AtatResp for ContextState {}

/// `AT+QIACT?`: the activated contexts and their addresses.
#[derive(Debug, Clone, Copy, Default)]
pub struct QiactRead;
impl Command for QiactRead {
    const PREFIX: &'static [u8] = b"+QIACT:";
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(b"AT+QIACT?\r");
        Ok(())
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<ContextStates> {
        let mut out = ContextStates::new();
        for c in context_states(resp) {
            out.push(c?).map_err(|_| Error::Overflow)?;
        }
        Ok(out)
    }
}
atat_command!(QiactRead => ContextStates, timeout_ms = super::DEFAULT_TIMEOUT_MS);

impl QiactRead {
    /// From the answer's lines: the address of `context_id` if it is active (`Some(None)`
    /// when its address cannot be read), `None` if it is not. Reads one line at a time,
    /// without the list [`Command::parse_lines`] builds.
    pub fn active_address(resp: &[u8], context_id: u8) -> Result<Option<Option<IpAddr>>> {
        for c in context_states(resp) {
            let c = c?;
            if c.context_id == context_id && c.active {
                return Ok(Some(c.ip));
            }
        }
        Ok(None)
    }
}

/// The `+QIACT:` lines of an answer, parsed one at a time.
fn context_states(resp: &[u8]) -> impl Iterator<Item = Result<ContextState>> + '_ {
    lines(resp).filter_map(|l| wire::after_prefix(l, b"+QIACT:")).map(parse_context_state)
}

/// Parses the parameters of one `+QIACT:` line.
fn parse_context_state(params: &[u8]) -> Result<ContextState> {
    let mut f = fields(params);
    let context_id = f.u8().ok_or(Error::Parse)?;
    let active = f.u8().ok_or(Error::Parse)? == 1;
    let context_type = f.u8().and_then(ContextType::from_code).ok_or(Error::Parse)?;
    let ip = f.ip();
    Ok(ContextState { context_id, active, context_type, ip })
}

/// `AT+QIDEACT=<contextID>`: deactivate a context and close its connections (up to 40 s).
#[derive(Debug, Clone, Copy)]
pub struct Qideact {
    /// 1–16.
    pub context_id: u8,
}
impl Command for Qideact {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_context(self.context_id)?;
        sink.put(b"AT+QIDEACT=");
        wire::put_u32(sink, u32::from(self.context_id));
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(Qideact => NoResponse, timeout_ms = 40_000);

#[cfg(test)]
mod tests {
    use super::super::tests::{bytes, parse, refused};
    use super::*;

    #[test]
    fn manual_3_1_bytes() {
        let cmd = Qicsgp {
            context_id: 1,
            context_type: ContextType::Ipv4,
            apn: "UNINET",
            username: "",
            password: "",
            authentication: Authentication::Pap,
        };
        assert_eq!(bytes(&cmd), "AT+QICSGP=1,1,\"UNINET\",\"\",\"\",1\r");
        assert_eq!(bytes(&QicsgpQuery { context_id: 1 }), "AT+QICSGP=1\r");
        assert_eq!(bytes(&Qiact { context_id: 1 }), "AT+QIACT=1\r");
        assert_eq!(bytes(&QiactRead), "AT+QIACT?\r");
        assert_eq!(bytes(&Qideact { context_id: 1 }), "AT+QIDEACT=1\r");
        assert_eq!(<Qiact as atat::AtatCmd>::MAX_TIMEOUT_MS, 150_000);
        assert_eq!(<Qideact as atat::AtatCmd>::MAX_TIMEOUT_MS, 40_000);
    }

    #[test]
    fn arguments_outside_the_manual_are_refused() {
        assert!(refused(&Qiact { context_id: 0 }));
        assert!(refused(&Qiact { context_id: 17 }));
        let long = "a".repeat(MAX_APN_LEN + 1);
        let bad = Qicsgp {
            context_id: 1,
            context_type: ContextType::Ipv4,
            apn: &long,
            username: "",
            password: "",
            authentication: Authentication::None,
        };
        assert!(refused(&bad));
        assert!(refused(&Qicsgp { apn: "inter\"net", ..bad }));
        assert!(refused(&Qicsgp { apn: "net", password: "a\rAT+QPOWD=0", ..bad }));
    }

    #[test]
    fn answers() {
        let cfg = parse(&QicsgpQuery { context_id: 1 }, &["+QICSGP: 1,\"\",\"\",\"\",0"]).unwrap();
        assert_eq!(cfg.context_type, ContextType::Ipv4);
        assert_eq!(cfg.apn.as_str(), "");
        let st =
            parse(&QiactRead, &["+QIACT: 1,1,1,\"10.7.157.1\"", "+QIACT: 2,1,2,\"2001:DB8:0:0:0:0:0:1\""]).unwrap();
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].ip, Some("10.7.157.1".parse().unwrap()));
        assert_eq!(st[1].context_type, ContextType::Ipv6);
        assert!(parse(&QiactRead, &[]).unwrap().is_empty());
        assert_eq!(parse(&QiactRead, &["+QIACT: x"]), Err(Error::Parse));
    }
}
