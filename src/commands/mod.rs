//! Typed AT commands, one struct per command form, named and grouped after the BG96 TCP/IP AT
//! manual (sections 2.1.1–2.1.17) plus the general commands a driver needs to bring a modem up.
//!
//! Every command implements [`atat::AtatCmd`]: its `MAX_TIMEOUT_MS` is the manual's maximum
//! response time, its `write` produces the exact bytes of the command line and its `parse`
//! reads the information lines of the answer. The stack runs them through its own ingress (the
//! [`Command`] trait adds a fallible, bounded writer and the response-line prefix), but they
//! can also be sent with an atat client.
//!
//! Arguments are checked before anything is written: a string the modem cannot carry in quotes,
//! a value outside the manual's range or an over-long name is [`Error::InvalidArgument`] and
//! nothing reaches the serial port.

pub mod config;
pub mod context;
pub mod dns;
pub mod general;
#[cfg(feature = "ntp")]
pub mod ntp;
#[cfg(feature = "ping")]
pub mod ping;
pub mod socket;

use core::net::IpAddr;

use crate::error::{Error, Result};
use crate::wire::{self, Sink};

pub use config::*;
pub use context::*;
pub use dns::*;
pub use general::*;
#[cfg(feature = "ntp")]
pub use ntp::*;
#[cfg(feature = "ping")]
pub use ping::*;
pub use socket::*;

/// Maximum response time of commands the manual gives no figure for (Figure 1: "the module can
/// be rebooted if it fails to get a response in 60 s").
pub const DEFAULT_TIMEOUT_MS: u32 = 60_000;

/// A BG96 command as the stack runs it.
pub trait Command: atat::AtatCmd {
    /// Prefix of the information lines that answer this command (e.g. `+QIACT:`). Lines with
    /// this prefix that arrive before the final result belong to the command; every other line
    /// is treated as a URC. An empty prefix takes every line that is not a known URC.
    const PREFIX: &'static [u8];

    /// Whether this is a TCP/IP command: a bare `ERROR` is then followed by `AT+QIGETERROR` to
    /// learn the manual's error code (field notes: the cause is often only there).
    const TCPIP: bool = true;

    /// [`Command::PREFIX`] of this instance (commands whose answer prefix depends on their
    /// arguments override it).
    fn response_prefix(&self) -> &'static [u8] {
        Self::PREFIX
    }

    /// Writes the whole command line, `AT` to the terminating `\r`.
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()>;

    /// Parses the information lines of a successful answer (separated by `\r\n`).
    fn parse_lines(&self, lines: &[u8]) -> Result<Self::Response>;

    /// The time to wait for the final result, in milliseconds.
    fn timeout_ms(&self) -> u32 {
        Self::MAX_TIMEOUT_MS
    }
}

/// The object-safe part of a [`Command`]: what the stack needs to send it and to tell its
/// answer lines apart. The stacks run every command through this one path (one copy in the
/// firmware instead of one per command type).
pub trait CommandLine {
    /// Writes the whole command line.
    fn write_line(&self, sink: &mut dyn Sink) -> Result<()>;
    /// [`Command::response_prefix`].
    fn prefix(&self) -> &'static [u8];
    /// [`Command::TCPIP`].
    fn is_tcpip(&self) -> bool;
}

impl<C: Command> CommandLine for C {
    fn write_line(&self, sink: &mut dyn Sink) -> Result<()> {
        self.write_to(sink)
    }
    fn prefix(&self) -> &'static [u8] {
        self.response_prefix()
    }
    fn is_tcpip(&self) -> bool {
        C::TCPIP
    }
}

/// A command line whose bytes are fixed, for the settings the stack itself makes (bring-up):
/// one writer for all of them instead of one per command type. Each line is the exact output
/// of a typed command, which the tests check.
pub(crate) struct Fixed(pub &'static [u8]);

impl CommandLine for Fixed {
    fn write_line(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(self.0);
        Ok(())
    }
    fn prefix(&self) -> &'static [u8] {
        NO_INFO
    }
    fn is_tcpip(&self) -> bool {
        false
    }
}

/// Commands that change nothing the stack keeps track of: they can be run with the stacks'
/// generic `command` method. Commands that open, close, switch or feed sockets, activate
/// contexts, change the framing the stack reads, or deliver deferred results are reachable
/// through the stacks' dedicated methods instead, which keep the stack's state right.
pub trait Stateless: Command {}

macro_rules! stateless {
    ($($ty:ty),* $(,)?) => { $(impl Stateless for $ty {})* };
}

stateless!(
    At,
    Ati,
    Qgmr,
    CpinRead,
    RegistrationRead,
    CclkRead,
    Cmee,
    Ifc,
    Qigeterror,
    QiactRead,
    QicsgpQuery,
    Qistate,
    QisendQuery,
    QirdQuery,
    QidnscfgQuery,
    Qidnscfg,
    QicfgQuery,
    QisdeRead,
);
#[cfg(feature = "ntp")]
impl Stateless for QntpRead {}
impl Stateless for Qicsgp<'_> {}

/// [`Command::PREFIX`] of commands that have no information lines: every line that arrives
/// while they run is a URC.
pub const NO_INFO: &[u8] = b"\0";

/// The answer of a command that only says `OK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct NoResponse;

impl atat::AtatResp for NoResponse {}

/// Implements [`atat::AtatCmd`] for a type that implements [`Command`]'s writer and parser.
macro_rules! atat_command {
    ($ty:ty => $resp:ty, timeout_ms = $timeout:expr) => {
        $crate::commands::atat_command!(@impl [] $ty => $resp, $timeout);
    };
    (@lifetime $lt:lifetime, $ty:ty => $resp:ty, timeout_ms = $timeout:expr) => {
        $crate::commands::atat_command!(@impl [$lt] $ty => $resp, $timeout);
    };
    (@impl [$($lt:lifetime)?] $ty:ty => $resp:ty, $timeout:expr) => {
        impl<$($lt)?> atat::AtatCmd for $ty {
            type Response = $resp;
            const MAX_TIMEOUT_MS: u32 = $timeout;

            fn write(&self, buf: &mut [u8]) -> usize {
                let mut sink = $crate::wire::SliceSink::new(buf);
                match $crate::commands::Command::write_to(self, &mut sink).and_then(|()| sink.finish()) {
                    Ok(len) => len,
                    Err(_) => 0,
                }
            }

            fn parse(
                &self,
                resp: core::result::Result<&[u8], atat::InternalError<'_>>,
            ) -> core::result::Result<$resp, atat::Error> {
                let lines = resp.map_err(atat::Error::from)?;
                $crate::commands::Command::parse_lines(self, lines).map_err(|_| atat::Error::Parse)
            }
        }
    };
}
pub(crate) use atat_command;

/// Iterates over the `\r\n`-separated lines of an answer, skipping empty ones.
pub fn lines(resp: &[u8]) -> impl Iterator<Item = &[u8]> {
    resp.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(|l| !l.is_empty())
}

/// The parameters of the first line with `prefix`.
pub fn first_with<'a>(resp: &'a [u8], prefix: &[u8]) -> Result<&'a [u8]> {
    lines(resp).find_map(|l| wire::after_prefix(l, prefix)).ok_or(Error::Parse)
}

/// Checks a context ID against the manual's range 1–16.
pub fn check_context(context_id: u8) -> Result<()> {
    if (1..=16).contains(&context_id) { Ok(()) } else { Err(Error::InvalidArgument) }
}

/// Checks a connectID against the manual's range 0–11.
pub fn check_connect_id(connect_id: u8) -> Result<()> {
    if connect_id <= 11 { Ok(()) } else { Err(Error::InvalidArgument) }
}

/// The socket service types of `AT+QIOPEN` and `AT+QISTATE` (manual 2.1.4, 2.1.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ServiceType {
    /// `"TCP"`: a TCP client connection.
    Tcp,
    /// `"UDP"`: a UDP client ("connected") socket.
    Udp,
    /// `"TCP LISTENER"`: a TCP server.
    TcpListener,
    /// `"TCP INCOMING"`: a connection accepted by a TCP server (reported, never opened).
    TcpIncoming,
    /// `"UDP SERVICE"`: a bound UDP socket that sends to and receives from any peer.
    UdpService,
}

/// The names of the service types, in the order of [`ServiceType`]'s variants (one table for
/// writing and parsing them).
static SERVICE_TYPES: [(&str, ServiceType); 5] = [
    ("TCP", ServiceType::Tcp),
    ("UDP", ServiceType::Udp),
    ("TCP LISTENER", ServiceType::TcpListener),
    ("TCP INCOMING", ServiceType::TcpIncoming),
    ("UDP SERVICE", ServiceType::UdpService),
];

impl ServiceType {
    /// The name as written in AT commands.
    pub fn as_str(self) -> &'static str {
        // the variant's discriminant: always in range
        SERVICE_TYPES[self as usize].0
    }

    /// Parses a (quote-stripped) service type.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        SERVICE_TYPES.iter().find(|(name, _)| name.as_bytes() == b).map(|&(_, t)| t)
    }

    /// Whether this build handles the service: [`Error::NotSupported`](crate::Error) for
    /// `"TCP LISTENER"` and `"UDP SERVICE"` without the `server` feature.
    pub fn supported(self) -> crate::Result<()> {
        let server = matches!(self, ServiceType::TcpListener | ServiceType::UdpService);
        if server && !cfg!(feature = "server") { Err(crate::Error::NotSupported) } else { Ok(()) }
    }

    /// Whether the service is a server (`"TCP LISTENER"`, `"UDP SERVICE"`), never one without
    /// the `server` feature.
    pub fn is_server(self) -> bool {
        cfg!(feature = "server") && matches!(self, ServiceType::TcpListener | ServiceType::UdpService)
    }

    /// Whether the service carries datagrams.
    pub fn is_udp(self) -> bool {
        matches!(self, ServiceType::Udp | ServiceType::UdpService)
    }
}

/// The data access modes (manual 1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AccessMode {
    /// `0`: the modem buffers received data and announces it with `+QIURC: "recv"`; the host
    /// reads it with `AT+QIRD`.
    #[default]
    Buffer,
    /// `1`: received data is pushed inside the `+QIURC: "recv",<id>,<len>` URC.
    DirectPush,
    /// `2`: the serial port carries the connection's raw bytes until `+++`.
    Transparent,
}

impl AccessMode {
    /// The number used in AT commands.
    pub fn code(self) -> u8 {
        match self {
            AccessMode::Buffer => 0,
            AccessMode::DirectPush => 1,
            AccessMode::Transparent => 2,
        }
    }

    /// The mode for a number in an answer.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => AccessMode::Buffer,
            1 => AccessMode::DirectPush,
            2 => AccessMode::Transparent,
            _ => return None,
        })
    }

    /// Whether this build handles the mode: [`Error::NotSupported`]
    /// for transparent mode without the `transparent` feature and for direct push without
    /// `direct-push` (the ingress would not know the data's framing).
    pub fn supported(self) -> crate::Result<()> {
        let on = match self {
            AccessMode::Buffer => true,
            AccessMode::DirectPush => cfg!(feature = "direct-push"),
            AccessMode::Transparent => cfg!(feature = "transparent"),
        };
        if on { Ok(()) } else { Err(crate::Error::NotSupported) }
    }
}

/// A remote host: an IP address or a domain name the modem resolves itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Host<'a> {
    /// An IP address.
    Ip(IpAddr),
    /// A domain name (printable ASCII, at most [`MAX_HOSTNAME_LEN`] bytes).
    Name(&'a str),
}

/// Longest domain name the crate passes to the modem (the DNS limit).
pub const MAX_HOSTNAME_LEN: usize = 253;

impl Host<'_> {
    /// Writes the host in quotes.
    pub fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        match self {
            Host::Ip(ip) => wire::put_ip(sink, *ip),
            Host::Name(name) => {
                if name.is_empty() {
                    return Err(Error::InvalidArgument);
                }
                wire::put_quoted(sink, name, MAX_HOSTNAME_LEN)
            }
        }
    }
}

impl From<IpAddr> for Host<'_> {
    fn from(ip: IpAddr) -> Self {
        Host::Ip(ip)
    }
}

impl<'a> From<&'a str> for Host<'a> {
    fn from(name: &'a str) -> Self {
        match wire::parse_ip(name.as_bytes()) {
            Some(ip) => Host::Ip(ip),
            None => Host::Name(name),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use std::string::String;
    use std::vec::Vec;

    #[test]
    fn server_services_follow_the_feature() {
        let server = if cfg!(feature = "server") { Ok(()) } else { Err(crate::Error::NotSupported) };
        assert_eq!(ServiceType::TcpListener.supported(), server);
        assert_eq!(ServiceType::UdpService.supported(), server);
        for client in [ServiceType::Tcp, ServiceType::Udp, ServiceType::TcpIncoming] {
            assert_eq!(client.supported(), Ok(()));
            assert!(!client.is_server());
        }
        assert_eq!(ServiceType::TcpListener.is_server(), cfg!(feature = "server"));
    }

    #[test]
    fn service_type_names_round_trip() {
        use ServiceType::*;
        let names = ["TCP", "UDP", "TCP LISTENER", "TCP INCOMING", "UDP SERVICE"];
        for (t, name) in [Tcp, Udp, TcpListener, TcpIncoming, UdpService].into_iter().zip(names) {
            assert_eq!(t.as_str(), name);
            assert_eq!(ServiceType::from_bytes(name.as_bytes()), Some(t));
        }
        assert_eq!(ServiceType::from_bytes(b"TCP "), None);
        assert_eq!(ServiceType::from_bytes(b""), None);
    }

    #[test]
    fn access_modes_follow_the_features() {
        assert_eq!(AccessMode::Buffer.supported(), Ok(()));
        let push = if cfg!(feature = "direct-push") { Ok(()) } else { Err(crate::Error::NotSupported) };
        assert_eq!(AccessMode::DirectPush.supported(), push);
        let transparent = if cfg!(feature = "transparent") { Ok(()) } else { Err(crate::Error::NotSupported) };
        assert_eq!(AccessMode::Transparent.supported(), transparent);
    }

    /// The exact bytes a command writes.
    pub fn bytes<C: Command>(cmd: &C) -> String {
        let mut out = [0u8; 2048];
        let mut sink = crate::wire::SliceSink::new(&mut out);
        cmd.write_to(&mut sink).unwrap();
        let v = sink.written().to_vec();
        assert_eq!(sink.finish(), Ok(v.len()));
        // the atat bridge writes the same bytes
        let mut buf = [0u8; 2048];
        let n = atat::AtatCmd::write(cmd, &mut buf);
        assert_eq!(&buf[..n], &v[..]);
        String::from_utf8(v).unwrap()
    }

    /// Whether writing the command is refused.
    pub fn refused<C: Command>(cmd: &C) -> bool {
        let mut buf = [0u8; 2048];
        cmd.write_to(&mut crate::wire::SliceSink::new(&mut buf)) == Err(Error::InvalidArgument)
    }

    /// Parses an answer given as its lines.
    pub fn parse<C: Command>(cmd: &C, answer: &[&str]) -> Result<C::Response> {
        let mut joined: Vec<u8> = Vec::new();
        for l in answer {
            joined.extend_from_slice(l.as_bytes());
            joined.extend_from_slice(b"\r\n");
        }
        cmd.parse_lines(&joined)
    }

    #[test]
    fn host_from_str() {
        assert_eq!(Host::from("127.0.0.1"), Host::Ip("127.0.0.1".parse().unwrap()));
        assert_eq!(Host::from("example.com"), Host::Name("example.com"));
    }

    #[test]
    fn lines_skip_empty() {
        let v: Vec<&[u8]> = lines(b"\r\n+A: 1\r\n\r\n+B: 2\r\n").collect();
        assert_eq!(v, [&b"+A: 1"[..], &b"+B: 2"[..]]);
    }
}
