//! General commands a driver needs to bring the modem up (not part of the TCP/IP manual; the
//! timeouts follow the manual's Figure 1 and the BG96 AT command manual), and
//! `AT+QIGETERROR` (manual 2.1.17).

use super::{Command, DEFAULT_TIMEOUT_MS, NO_INFO, NoResponse, atat_command, first_with, lines};
use crate::error::{Error, ErrorCode, Result};
use crate::wire::{self, Sink, fields};

/// `AT`: is anybody there?
#[derive(Debug, Clone, Copy, Default)]
pub struct At;
impl Command for At {
    const PREFIX: &'static [u8] = NO_INFO;
    const TCPIP: bool = false;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(b"AT\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(At => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `ATE0` / `ATE1`: command echo off or on.
#[derive(Debug, Clone, Copy)]
pub struct Ate {
    /// Echo on.
    pub echo: bool,
}
impl Command for Ate {
    const PREFIX: &'static [u8] = NO_INFO;
    const TCPIP: bool = false;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(if self.echo { b"ATE1\r" } else { b"ATE0\r" });
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(Ate => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `AT+CMEE=<n>`: report errors as `+CME ERROR: <n>` (1) or text (2), or plain `ERROR` (0).
#[derive(Debug, Clone, Copy)]
pub struct Cmee {
    /// 0, 1 or 2.
    pub mode: u8,
}
impl Command for Cmee {
    const PREFIX: &'static [u8] = b"+CMEE:";
    const TCPIP: bool = false;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        if self.mode > 2 {
            return Err(Error::InvalidArgument);
        }
        sink.put(b"AT+CMEE=");
        wire::put_u32(sink, u32::from(self.mode));
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(Cmee => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// A line of text from the modem (identification, revision).
pub type Text = heapless::String<64>;

impl atat::AtatResp for Identification {}
impl atat::AtatResp for Revision {}

fn text(line: &[u8]) -> Text {
    let mut s = Text::new();
    for &b in line.iter().take(64) {
        let c = if (0x20..0x7f).contains(&b) { b as char } else { '?' };
        if s.push(c).is_err() {
            break;
        }
    }
    s
}

/// The answer of `ATI`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Identification {
    /// Manufacturer (`Quectel`).
    pub manufacturer: Text,
    /// Model (`BG96`).
    pub model: Text,
    /// Firmware revision (`BG96MAR02A07M1G`).
    pub revision: Text,
}

/// `ATI`: product identification.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ati;
impl Command for Ati {
    const PREFIX: &'static [u8] = b"";
    const TCPIP: bool = false;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(b"ATI\r");
        Ok(())
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<Identification> {
        let mut it = lines(resp);
        let manufacturer = text(it.next().ok_or(Error::Parse)?);
        let model = text(it.next().ok_or(Error::Parse)?);
        let rev = it.next().ok_or(Error::Parse)?;
        let revision = text(wire::after_prefix(rev, b"Revision:").unwrap_or(rev));
        Ok(Identification { manufacturer, model, revision })
    }
}
atat_command!(Ati => Identification, timeout_ms = DEFAULT_TIMEOUT_MS);

/// The firmware revision reported by `AT+QGMR`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Revision(pub Text);

/// `AT+QGMR`: firmware revision (log it: field behaviour depends on it).
#[derive(Debug, Clone, Copy, Default)]
pub struct Qgmr;
impl Command for Qgmr {
    const PREFIX: &'static [u8] = b"";
    const TCPIP: bool = false;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(b"AT+QGMR\r");
        Ok(())
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<Revision> {
        lines(resp).next().map(|l| Revision(text(l))).ok_or(Error::Parse)
    }
}
atat_command!(Qgmr => Revision, timeout_ms = DEFAULT_TIMEOUT_MS);

/// (U)SIM state from `AT+CPIN?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SimState {
    /// `READY`: no PIN needed.
    Ready,
    /// `SIM PIN`: the PIN must be entered.
    Pin,
    /// `SIM PUK`: the PUK must be entered.
    Puk,
    /// Any other state.
    Other,
}
impl atat::AtatResp for SimState {}

impl SimState {
    /// Parses the text after `+CPIN: `.
    pub fn from_bytes(b: &[u8]) -> Self {
        const STATES: [(&[u8], SimState); 3] =
            [(b"READY", SimState::Ready), (b"SIM PIN", SimState::Pin), (b"SIM PUK", SimState::Puk)];
        crate::wire::lookup(&STATES, b).unwrap_or(SimState::Other)
    }
}

/// `AT+CPIN?`: (U)SIM state. Figure 1: reboot if the card is not identified within 20 s.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpinRead;
impl Command for CpinRead {
    const PREFIX: &'static [u8] = b"+CPIN:";
    const TCPIP: bool = false;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(b"AT+CPIN?\r");
        Ok(())
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<SimState> {
        Ok(SimState::from_bytes(first_with(resp, b"+CPIN:")?))
    }
}
atat_command!(CpinRead => SimState, timeout_ms = 20_000);

/// Network registration status (`<stat>` of `+CREG`/`+CGREG`/`+CEREG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Registration {
    /// 0: not registered, not searching.
    NotRegistered,
    /// 1: registered, home network.
    Home,
    /// 2: not registered, searching.
    Searching,
    /// 3: registration denied.
    Denied,
    /// 4: unknown.
    Unknown,
    /// 5: registered, roaming.
    Roaming,
}
impl atat::AtatResp for Registration {}

impl Registration {
    /// The state for a `<stat>` number.
    pub fn from_stat(stat: u32) -> Self {
        match stat {
            0 => Registration::NotRegistered,
            1 => Registration::Home,
            2 => Registration::Searching,
            3 => Registration::Denied,
            5 => Registration::Roaming,
            _ => Registration::Unknown,
        }
    }

    /// Figure 1: `<stat>` 1 or 5 means registered.
    pub fn is_registered(self) -> bool {
        matches!(self, Registration::Home | Registration::Roaming)
    }
}

/// Which registration query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Domain {
    /// `AT+CREG?`: circuit switched.
    Cs,
    /// `AT+CGREG?`: packet switched (GSM/UMTS).
    Gprs,
    /// `AT+CEREG?`: packet switched (LTE).
    Eps,
}

impl Domain {
    pub(crate) fn prefix(self) -> &'static [u8] {
        // one table in the firmware (a `match` gets a copy of it in every caller); the index
        // is the variant's discriminant, always in range
        static PREFIXES: [&[u8]; 3] = [b"+CREG:", b"+CGREG:", b"+CEREG:"];
        PREFIXES[self as usize]
    }
}

/// `AT+CREG?`, `AT+CGREG?` or `AT+CEREG?`: registration state.
#[derive(Debug, Clone, Copy)]
pub struct RegistrationRead(pub Domain);
impl Command for RegistrationRead {
    const PREFIX: &'static [u8] = b"+CREG:";
    const TCPIP: bool = false;
    fn response_prefix(&self) -> &'static [u8] {
        self.0.prefix()
    }
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(b"AT");
        sink.put(self.0.prefix().strip_suffix(b":").unwrap_or(b""));
        sink.put(b"?\r");
        Ok(())
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<Registration> {
        let mut f = fields(first_with(resp, self.0.prefix())?);
        let _n = f.u32().ok_or(Error::Parse)?;
        Ok(Registration::from_stat(f.u32().ok_or(Error::Parse)?))
    }
}
atat_command!(RegistrationRead => Registration, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `AT+QURCCFG="urcport","uart1"`: send URCs to the UART the host uses (field note 18).
#[derive(Debug, Clone, Copy)]
pub struct Qurccfg<'a> {
    /// `"uart1"`, `"usbat"` or `"usbmodem"`.
    pub port: &'a str,
}
impl Command for Qurccfg<'_> {
    const PREFIX: &'static [u8] = b"+QURCCFG:";
    const TCPIP: bool = false;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        if !matches!(self.port, "uart1" | "usbat" | "usbmodem") {
            return Err(Error::InvalidArgument);
        }
        sink.put(b"AT+QURCCFG=\"urcport\",");
        wire::put_quoted(sink, self.port, 8)?;
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(@lifetime 'a, Qurccfg<'a> => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `AT+CFUN=<fun>[,<rst>]`: functionality level; `AT+CFUN=1,1` reboots the modem.
#[derive(Debug, Clone, Copy)]
pub struct Cfun {
    /// 0 minimum, 1 full, 4 airplane.
    pub fun: u8,
    /// Reset the modem before changing the level.
    pub reset: bool,
}
impl Command for Cfun {
    const PREFIX: &'static [u8] = b"+CFUN:";
    const TCPIP: bool = false;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        if !matches!(self.fun, 0 | 1 | 4) {
            return Err(Error::InvalidArgument);
        }
        sink.put(b"AT+CFUN=");
        wire::put_u32(sink, u32::from(self.fun));
        if self.reset {
            sink.put(b",1");
        }
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(Cfun => NoResponse, timeout_ms = 15_000);

/// `AT+QPOWD=<n>`: power the modem down (1 normal, 0 immediately). The modem answers `OK`, then
/// `POWERED DOWN`; Figure 1: cut the power 12 s or more after it.
#[derive(Debug, Clone, Copy)]
pub struct Qpowd {
    /// Normal power down (deregisters from the network first).
    pub normal: bool,
}
impl Command for Qpowd {
    const PREFIX: &'static [u8] = NO_INFO;
    const TCPIP: bool = false;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(if self.normal { b"AT+QPOWD=1\r" } else { b"AT+QPOWD=0\r" });
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(Qpowd => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `AT+IFC=<dce_by_dte>,<dte_by_dce>`: flow control; `2,2` is RTS/CTS.
#[derive(Debug, Clone, Copy)]
pub struct Ifc {
    /// Hardware flow control both ways (`2,2`) or none (`0,0`).
    pub rts_cts: bool,
}
impl Command for Ifc {
    const PREFIX: &'static [u8] = b"+IFC:";
    const TCPIP: bool = false;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(if self.rts_cts { b"AT+IFC=2,2\r" } else { b"AT+IFC=0,0\r" });
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(Ifc => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `AT&D<n>`: DTR behaviour; `AT&D1` lets DTR leave transparent access mode (manual 1.2).
#[derive(Debug, Clone, Copy)]
pub struct AndD {
    /// 0 ignore DTR, 1 DTR low leaves data mode, 2 DTR low closes the connection.
    pub mode: u8,
}
impl Command for AndD {
    const PREFIX: &'static [u8] = NO_INFO;
    const TCPIP: bool = false;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        if self.mode > 2 {
            return Err(Error::InvalidArgument);
        }
        sink.put(b"AT&D");
        wire::put_u32(sink, u32::from(self.mode));
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(AndD => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `ATO`: return to transparent access mode on the connection that left it last (manual 1.2).
/// Answers `CONNECT`, or `NO CARRIER` if no connection was ever transparent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ato;
impl Command for Ato {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(b"ATO\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(Ato => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// The modem clock as `AT+CCLK?` prints it: `"yy/MM/dd,hh:mm:ss±zz"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClockText(pub Text);
impl atat::AtatResp for ClockText {}

/// `AT+CCLK?`: the modem's clock (set by `AT+QNTP` with `<autosettime>` 1).
#[derive(Debug, Clone, Copy, Default)]
pub struct CclkRead;
impl Command for CclkRead {
    const PREFIX: &'static [u8] = b"+CCLK:";
    const TCPIP: bool = false;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(b"AT+CCLK?\r");
        Ok(())
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<ClockText> {
        let p = first_with(resp, b"+CCLK:")?;
        Ok(ClockText(text(wire::unquote(p).ok_or(Error::Parse)?)))
    }
}
atat_command!(CclkRead => ClockText, timeout_ms = DEFAULT_TIMEOUT_MS);

/// The answer of `AT+QIGETERROR`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// The error code (0 = operation successful).
    pub code: u16,
    /// The modem's description (its case varies between firmware revisions).
    pub description: Text,
}
impl atat::AtatResp for LastError {}

impl LastError {
    /// The code as an [`ErrorCode`], `None` for 0 (success).
    pub fn error_code(&self) -> Option<ErrorCode> {
        (self.code != 0).then(|| ErrorCode::from_code(self.code))
    }
}

/// `AT+QIGETERROR` (manual 2.1.17): the error code of the last TCP/IP command.
#[derive(Debug, Clone, Copy, Default)]
pub struct Qigeterror;
impl Command for Qigeterror {
    const PREFIX: &'static [u8] = b"+QIGETERROR:";
    const TCPIP: bool = false;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(b"AT+QIGETERROR\r");
        Ok(())
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<LastError> {
        let p = first_with(resp, b"+QIGETERROR:")?;
        let (num, desc) = match p.iter().position(|&b| b == b',') {
            Some(i) => (p.get(..i).unwrap_or(&[]), p.get(i + 1..).unwrap_or(&[])),
            None => (p, &[][..]),
        };
        let code = wire::parse_u32(wire::trim(num)).and_then(|c| u16::try_from(c).ok()).ok_or(Error::Parse)?;
        let desc = wire::trim(desc);
        Ok(LastError { code, description: text(wire::unquote(desc).unwrap_or(desc)) })
    }
}
atat_command!(Qigeterror => LastError, timeout_ms = DEFAULT_TIMEOUT_MS);

#[cfg(test)]
mod tests {
    use super::super::tests::{bytes, parse, refused};
    use super::*;

    #[test]
    fn bring_up_command_bytes() {
        assert_eq!(bytes(&At), "AT\r");
        assert_eq!(bytes(&Ate { echo: false }), "ATE0\r");
        assert_eq!(bytes(&Cmee { mode: 1 }), "AT+CMEE=1\r");
        assert_eq!(bytes(&Qgmr), "AT+QGMR\r");
        assert_eq!(bytes(&CpinRead), "AT+CPIN?\r");
        assert_eq!(bytes(&RegistrationRead(Domain::Cs)), "AT+CREG?\r");
        assert_eq!(bytes(&RegistrationRead(Domain::Gprs)), "AT+CGREG?\r");
        assert_eq!(bytes(&RegistrationRead(Domain::Eps)), "AT+CEREG?\r");
        assert_eq!(bytes(&Qurccfg { port: "uart1" }), "AT+QURCCFG=\"urcport\",\"uart1\"\r");
        assert_eq!(bytes(&Cfun { fun: 1, reset: true }), "AT+CFUN=1,1\r");
        assert_eq!(bytes(&Qpowd { normal: true }), "AT+QPOWD=1\r");
        assert_eq!(bytes(&Ifc { rts_cts: true }), "AT+IFC=2,2\r");
        assert_eq!(bytes(&AndD { mode: 1 }), "AT&D1\r");
        assert_eq!(bytes(&Ato), "ATO\r");
        assert_eq!(bytes(&Qigeterror), "AT+QIGETERROR\r");
        assert!(refused(&Cmee { mode: 3 }));
        assert!(refused(&Qurccfg { port: "uart9" }));
    }

    #[test]
    fn answers() {
        assert_eq!(parse(&CpinRead, &["+CPIN: READY"]), Ok(SimState::Ready));
        assert_eq!(parse(&RegistrationRead(Domain::Eps), &["+CEREG: 0,5"]), Ok(Registration::Roaming));
        assert_eq!(
            parse(&RegistrationRead(Domain::Cs), &["+CREG: 2,1,\"1A2B\",\"01C3D4E5\",8"]),
            Ok(Registration::Home)
        );
        let id = parse(&Ati, &["Quectel", "BG96", "Revision: BG96MAR02A07M1G"]).unwrap();
        assert_eq!(id.revision.as_str(), "BG96MAR02A07M1G");
        assert_eq!(parse(&Qgmr, &["BG96MAR02A07M1G"]).unwrap().0.as_str(), "BG96MAR02A07M1G");
        let e = parse(&Qigeterror, &["+QIGETERROR: 552, invalid parameters"]).unwrap();
        assert_eq!(e.error_code(), Some(ErrorCode::InvalidParameters));
        assert_eq!(e.description.as_str(), "invalid parameters");
        let e = parse(&Qigeterror, &["+QIGETERROR: 552,\"Invalid parameters\""]).unwrap();
        assert_eq!(e.description.as_str(), "Invalid parameters");
        assert_eq!(parse(&Qigeterror, &["+QIGETERROR: 0,operation successful"]).unwrap().error_code(), None);
        assert_eq!(parse(&CclkRead, &["+CCLK: \"13/08/19,11:10:57+32\""]).unwrap().0.as_str(), "13/08/19,11:10:57+32");
        assert_eq!(parse(&CpinRead, &[]), Err(Error::Parse));
    }
}
