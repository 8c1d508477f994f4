//! Socket service commands: `AT+QIOPEN` (manual 2.1.4), `AT+QICLOSE` (2.1.5), `AT+QISTATE`
//! (2.1.6), `AT+QISEND` (2.1.7), `AT+QIRD` (2.1.8), `AT+QISENDEX` (2.1.9), `AT+QISWTMD` (2.1.10)
//! and `AT+QISDE` (2.1.16).
//!
//! `AT+QISEND`'s payload and `AT+QIRD`'s data are not part of the command line: the stack writes
//! the payload after the `> ` prompt and reads the data by count (see [`crate::ingress`]).

use core::net::{IpAddr, SocketAddr};

use super::{
    AccessMode, Command, DEFAULT_TIMEOUT_MS, Host, NO_INFO, NoResponse, ServiceType, atat_command, check_connect_id,
    check_context, first_with, lines,
};
use crate::error::{Error, Result};
use crate::wire::{self, Sink, fields};

/// Largest payload of one `AT+QISEND` (manual 2.1.7).
pub const MAX_SEND: usize = 1460;
/// Largest read of one `AT+QIRD` (manual 2.1.8).
pub const MAX_READ: usize = 1500;
/// Largest payload of one `AT+QISENDEX`: its hex string may be 512 characters long (the manual
/// says "512 bytes"; read as the length of the string, which is the safe reading).
pub const MAX_SENDEX: usize = 256;

/// `AT+QIOPEN=<contextID>,<connectID>,<service_type>,<IP_address>/<domain_name>,<remote_port>,
/// <local_port>,<access_mode>`: open a socket service.
///
/// The modem answers `OK` at once and reports the outcome later as `+QIOPEN: <connectID>,<err>`
/// (up to 150 s); in transparent access mode it answers `CONNECT` or `ERROR` instead.
#[derive(Debug, Clone, Copy)]
pub struct Qiopen<'a> {
    /// 1–16.
    pub context_id: u8,
    /// 0–11.
    pub connect_id: u8,
    /// What to open.
    pub service_type: ServiceType,
    /// Remote host for `"TCP"`/`"UDP"`; ignored for `"TCP LISTENER"`/`"UDP SERVICE"`, which
    /// are written with `"127.0.0.1"` as the manual requires.
    pub remote: Host<'a>,
    /// Remote port for `"TCP"`/`"UDP"` (1–65535).
    pub remote_port: u16,
    /// Local port: 0 picks one for clients; required for `"TCP LISTENER"`/`"UDP SERVICE"`.
    pub local_port: u16,
    /// Data access mode.
    pub access_mode: AccessMode,
}
impl Command for Qiopen<'_> {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_context(self.context_id)?;
        check_connect_id(self.connect_id)?;
        let server = matches!(self.service_type, ServiceType::TcpListener | ServiceType::UdpService);
        match self.service_type {
            ServiceType::TcpIncoming => return Err(Error::InvalidArgument),
            _ if server && self.local_port == 0 => return Err(Error::InvalidArgument),
            _ if !server && self.remote_port == 0 => return Err(Error::InvalidArgument),
            _ => {}
        }
        sink.put(b"AT+QIOPEN=");
        wire::put_u32(sink, u32::from(self.context_id));
        wire::put_arg_u32(sink, u32::from(self.connect_id));
        sink.put(b",\"");
        sink.put(self.service_type.as_str().as_bytes());
        sink.put(b"\",");
        if server {
            sink.put(b"\"127.0.0.1\",0");
        } else {
            self.remote.write_to(sink)?;
            wire::put_arg_u32(sink, u32::from(self.remote_port));
        }
        wire::put_arg_u32(sink, u32::from(self.local_port));
        wire::put_arg_u32(sink, u32::from(self.access_mode.code()));
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(@lifetime 'a, Qiopen<'a> => NoResponse, timeout_ms = 150_000);

/// `AT+QICLOSE=<connectID>[,<timeout>]`: close a socket service (at most 10 s by default).
#[derive(Debug, Clone, Copy)]
pub struct Qiclose {
    /// 0–11.
    pub connect_id: u8,
    /// Seconds to wait for the peer's FIN ACK before forcing the close (1–65535); `None` = 10.
    pub timeout_s: Option<u16>,
}
impl Command for Qiclose {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_connect_id(self.connect_id)?;
        sink.put(b"AT+QICLOSE=");
        wire::put_u32(sink, u32::from(self.connect_id));
        if let Some(t) = self.timeout_s {
            if t == 0 {
                return Err(Error::InvalidArgument);
            }
            wire::put_arg_u32(sink, u32::from(t));
        }
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
    fn timeout_ms(&self) -> u32 {
        // the modem's own limit plus a margin for the answer to cross the line
        u32::from(self.timeout_s.unwrap_or(10)) * 1000 + 1000
    }
}
atat_command!(Qiclose => NoResponse, timeout_ms = 11_000);

/// `<socket_state>` of `AT+QISTATE`. Field note 10: not reliable as the only liveness signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SocketState {
    /// 0: connection not established.
    Initial,
    /// 1: client connecting or server trying to listen.
    Opening,
    /// 2: client or incoming connection established.
    Connected,
    /// 3: server listening.
    Listening,
    /// 4: connection closing.
    Closing,
    /// A number outside the manual's list.
    Other(u8),
}

impl SocketState {
    /// The state for a number.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => SocketState::Initial,
            1 => SocketState::Opening,
            2 => SocketState::Connected,
            3 => SocketState::Listening,
            4 => SocketState::Closing,
            other => SocketState::Other(other),
        }
    }
}

/// One line of `AT+QISTATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SocketStatus {
    /// 0–11.
    pub connect_id: u8,
    /// The service type.
    pub service_type: ServiceType,
    /// Remote address for clients and incoming connections, local address for servers.
    pub ip: Option<IpAddr>,
    /// Remote port (invalid for servers).
    pub remote_port: u16,
    /// Local port.
    pub local_port: u16,
    /// The socket state.
    pub state: SocketState,
    /// The context.
    pub context_id: u8,
    /// For `"TCP INCOMING"`: the connectID of the listener that accepted it.
    pub server_id: u8,
    /// Data access mode.
    pub access_mode: AccessMode,
}
impl atat::AtatResp for SocketStatus {}

/// The answer of `AT+QISTATE` (an empty list is a bare `OK`).
pub type SocketStatuses = heapless::Vec<SocketStatus, 12>;

/// Parses one `+QISTATE:` line's parameters.
pub fn parse_socket_status(params: &[u8]) -> Result<SocketStatus> {
    let mut f = fields(params);
    let connect_id = f.u8().ok_or(Error::Parse)?;
    let service_type = f.quoted().and_then(ServiceType::from_bytes).ok_or(Error::Parse)?;
    let ip = f.ip();
    let remote_port = f.u16().ok_or(Error::Parse)?;
    let local_port = f.u16().ok_or(Error::Parse)?;
    let state = SocketState::from_code(f.u8().ok_or(Error::Parse)?);
    let context_id = f.u8().ok_or(Error::Parse)?;
    let server_id = f.u8().ok_or(Error::Parse)?;
    let access_mode = f.u8().and_then(AccessMode::from_code).ok_or(Error::Parse)?;
    Ok(SocketStatus {
        connect_id,
        service_type,
        ip,
        remote_port,
        local_port,
        state,
        context_id,
        server_id,
        access_mode,
    })
}

/// Which sockets `AT+QISTATE` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Qistate {
    /// `AT+QISTATE?`: every socket. Twelve sockets with IPv6 addresses can need more than the
    /// stacks' response buffer ([`RESP_CAP`](crate::core::RESP_CAP), 1 KiB): that answer is
    /// [`Error::Overflow`]; ask per connectID then.
    All,
    /// `AT+QISTATE=0,<contextID>`: the sockets of a context.
    Context(u8),
    /// `AT+QISTATE=1,<connectID>`: one socket.
    Socket(u8),
}
impl Command for Qistate {
    const PREFIX: &'static [u8] = b"+QISTATE:";
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        match *self {
            Qistate::All => {
                sink.put(b"AT+QISTATE?\r");
                Ok(())
            }
            Qistate::Context(cid) => {
                check_context(cid)?;
                sink.put(b"AT+QISTATE=0,");
                wire::put_u32(sink, u32::from(cid));
                sink.put(b"\r");
                Ok(())
            }
            Qistate::Socket(id) => {
                check_connect_id(id)?;
                sink.put(b"AT+QISTATE=1,");
                wire::put_u32(sink, u32::from(id));
                sink.put(b"\r");
                Ok(())
            }
        }
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<SocketStatuses> {
        let mut out = SocketStatuses::new();
        for s in socket_statuses(resp) {
            out.push(s?).map_err(|_| Error::Overflow)?;
        }
        Ok(out)
    }
}
atat_command!(Qistate => SocketStatuses, timeout_ms = DEFAULT_TIMEOUT_MS);

impl Qistate {
    /// From the answer's lines: the connectIDs it lists, a bit each. Reads one line at a
    /// time, without the list [`Command::parse_lines`] builds.
    pub fn connect_ids(resp: &[u8]) -> Result<u16> {
        socket_statuses(resp).try_fold(0u16, |ids, s| Ok(ids | 1u16.checked_shl(u32::from(s?.connect_id)).unwrap_or(0)))
    }
}

/// The `+QISTATE:` lines of an answer, parsed one at a time.
fn socket_statuses(resp: &[u8]) -> impl Iterator<Item = Result<SocketStatus>> + '_ {
    lines(resp).filter_map(|l| wire::after_prefix(l, b"+QISTATE:")).map(parse_socket_status)
}

/// `AT+QISEND`: the command line of a send; the stack writes the payload after the prompt.
#[derive(Debug, Clone, Copy)]
pub struct Qisend {
    /// 0–11.
    pub connect_id: u8,
    /// Fixed length (1–1460). `None` is the changeable-length form ended by Ctrl-Z, which cannot
    /// carry the bytes 0x1A and 0x1B; the stack always uses fixed lengths.
    pub len: Option<u16>,
    /// Destination for `"UDP SERVICE"` sockets (dotted address; requires `len`).
    pub remote: Option<SocketAddr>,
}
impl Command for Qisend {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_connect_id(self.connect_id)?;
        sink.put(b"AT+QISEND=");
        wire::put_u32(sink, u32::from(self.connect_id));
        match (self.len, self.remote) {
            (Some(len), _) if len == 0 || usize::from(len) > MAX_SEND => return Err(Error::InvalidArgument),
            (Some(len), remote) => {
                wire::put_arg_u32(sink, u32::from(len));
                if let Some(r) = remote {
                    sink.put(b",");
                    wire::put_ip(sink, r.ip())?;
                    wire::put_arg_u32(sink, u32::from(r.port()));
                }
            }
            (None, Some(_)) => return Err(Error::InvalidArgument),
            (None, None) => {}
        }
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(Qisend => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `<total_send_length>,<ackedbytes>,<unackedbytes>` of `AT+QISEND=<connectID>,0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SendCounters {
    /// Bytes handed to the modem so far.
    pub total: u32,
    /// Bytes the peer acknowledged.
    pub acked: u32,
    /// Bytes not acknowledged yet.
    pub unacked: u32,
}
impl atat::AtatResp for SendCounters {}

/// `AT+QISEND=<connectID>,0`: how much of the sent data the peer has acknowledged.
#[derive(Debug, Clone, Copy)]
pub struct QisendQuery {
    /// 0–11.
    pub connect_id: u8,
}
impl Command for QisendQuery {
    const PREFIX: &'static [u8] = b"+QISEND:";
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_connect_id(self.connect_id)?;
        sink.put(b"AT+QISEND=");
        wire::put_u32(sink, u32::from(self.connect_id));
        sink.put(b",0\r");
        Ok(())
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<SendCounters> {
        let mut f = fields(first_with(resp, b"+QISEND:")?);
        Ok(SendCounters {
            total: f.u32().ok_or(Error::Parse)?,
            acked: f.u32().ok_or(Error::Parse)?,
            unacked: f.u32().ok_or(Error::Parse)?,
        })
    }
}
atat_command!(QisendQuery => SendCounters, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `AT+QIRD=<connectID>[,<read_length>]`: read received data (the stack reads the payload by
/// count from the `+QIRD: <n>` header).
#[derive(Debug, Clone, Copy)]
pub struct Qird {
    /// 0–11.
    pub connect_id: u8,
    /// 1–1500; `None` for `"UDP SERVICE"` sockets, which return one whole datagram.
    pub len: Option<u16>,
}
impl Command for Qird {
    const PREFIX: &'static [u8] = b"+QIRD:";
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_connect_id(self.connect_id)?;
        sink.put(b"AT+QIRD=");
        wire::put_u32(sink, u32::from(self.connect_id));
        if let Some(len) = self.len {
            if len == 0 || usize::from(len) > MAX_READ {
                return Err(Error::InvalidArgument);
            }
            wire::put_arg_u32(sink, u32::from(len));
        }
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(Qird => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `<total_receive_length>,<have_read_length>,<unread_length>` of `AT+QIRD=<connectID>,0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ReadCounters {
    /// Bytes received so far.
    pub total: u32,
    /// Bytes read so far.
    pub read: u32,
    /// Bytes waiting in the modem.
    pub unread: u32,
}
impl atat::AtatResp for ReadCounters {}

/// `AT+QIRD=<connectID>,0`: how much received data is waiting.
#[derive(Debug, Clone, Copy)]
pub struct QirdQuery {
    /// 0–11.
    pub connect_id: u8,
}
impl Command for QirdQuery {
    const PREFIX: &'static [u8] = b"+QIRD:";
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_connect_id(self.connect_id)?;
        sink.put(b"AT+QIRD=");
        wire::put_u32(sink, u32::from(self.connect_id));
        sink.put(b",0\r");
        Ok(())
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<ReadCounters> {
        let mut f = fields(first_with(resp, b"+QIRD:")?);
        Ok(ReadCounters {
            total: f.u32().ok_or(Error::Parse)?,
            read: f.u32().ok_or(Error::Parse)?,
            unread: f.u32().ok_or(Error::Parse)?,
        })
    }
}
atat_command!(QirdQuery => ReadCounters, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `AT+QISENDEX=<connectID>,"<hex_string>"`: send bytes written as hex (not for `"UDP SERVICE"`
/// or `"TCP LISTENER"`). Answers `SEND OK`/`SEND FAIL`.
#[derive(Debug, Clone, Copy)]
pub struct Qisendex<'a> {
    /// 0–11.
    pub connect_id: u8,
    /// 1–[`MAX_SENDEX`] bytes.
    pub data: &'a [u8],
}
impl Command for Qisendex<'_> {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_connect_id(self.connect_id)?;
        if self.data.is_empty() || self.data.len() > MAX_SENDEX {
            return Err(Error::InvalidArgument);
        }
        sink.put(b"AT+QISENDEX=");
        wire::put_u32(sink, u32::from(self.connect_id));
        sink.put(b",\"");
        wire::put_hex(sink, self.data);
        sink.put(b"\"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(@lifetime 'a, Qisendex<'a> => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `AT+QISWTMD=<connectID>,<access_mode>`: switch a socket's data access mode. Answers `OK`, or
/// `CONNECT` when switching to transparent access mode.
#[derive(Debug, Clone, Copy)]
pub struct Qiswtmd {
    /// 0–11.
    pub connect_id: u8,
    /// The new mode.
    pub access_mode: AccessMode,
}
impl Command for Qiswtmd {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        check_connect_id(self.connect_id)?;
        sink.put(b"AT+QISWTMD=");
        wire::put_u32(sink, u32::from(self.connect_id));
        wire::put_arg_u32(sink, u32::from(self.access_mode.code()));
        sink.put(b"\r");
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(Qiswtmd => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// `AT+QISDE=<echo>`: whether the modem echoes `AT+QISEND` payload.
#[derive(Debug, Clone, Copy)]
pub struct Qisde {
    /// Echo on.
    pub echo: bool,
}
impl Command for Qisde {
    const PREFIX: &'static [u8] = NO_INFO;
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(if self.echo { b"AT+QISDE=1\r" } else { b"AT+QISDE=0\r" });
        Ok(())
    }
    fn parse_lines(&self, _: &[u8]) -> Result<NoResponse> {
        Ok(NoResponse)
    }
}
atat_command!(Qisde => NoResponse, timeout_ms = DEFAULT_TIMEOUT_MS);

/// Whether send payload echo is on, from `AT+QISDE?`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadEcho(pub bool);
impl atat::AtatResp for PayloadEcho {}

/// `AT+QISDE?`: read the payload echo setting.
#[derive(Debug, Clone, Copy, Default)]
pub struct QisdeRead;
impl Command for QisdeRead {
    const PREFIX: &'static [u8] = b"+QISDE:";
    fn write_to(&self, sink: &mut dyn Sink) -> Result<()> {
        sink.put(b"AT+QISDE?\r");
        Ok(())
    }
    fn parse_lines(&self, resp: &[u8]) -> Result<PayloadEcho> {
        Ok(PayloadEcho(fields(first_with(resp, b"+QISDE:")?).u8().ok_or(Error::Parse)? == 1))
    }
}
atat_command!(QisdeRead => PayloadEcho, timeout_ms = DEFAULT_TIMEOUT_MS);

#[cfg(test)]
mod tests {
    use super::super::tests::{bytes, parse, refused};
    use super::*;

    fn open(service_type: ServiceType, remote: Host<'_>, rport: u16, lport: u16, mode: AccessMode) -> Qiopen<'_> {
        Qiopen {
            context_id: 1,
            connect_id: 0,
            service_type,
            remote,
            remote_port: rport,
            local_port: lport,
            access_mode: mode,
        }
    }

    #[test]
    fn manual_chapter_3_bytes() {
        let ip = Host::Ip("220.180.239.212".parse().unwrap());
        assert_eq!(
            bytes(&open(ServiceType::Tcp, ip, 8009, 0, AccessMode::Buffer)),
            "AT+QIOPEN=1,0,\"TCP\",\"220.180.239.212\",8009,0,0\r"
        );
        assert_eq!(
            bytes(&open(ServiceType::Tcp, ip, 8009, 0, AccessMode::Transparent)),
            "AT+QIOPEN=1,0,\"TCP\",\"220.180.239.212\",8009,0,2\r"
        );
        let listener = Qiopen { connect_id: 1, ..open(ServiceType::TcpListener, ip, 0, 2020, AccessMode::Buffer) };
        assert_eq!(bytes(&listener), "AT+QIOPEN=1,1,\"TCP LISTENER\",\"127.0.0.1\",0,2020,0\r");
        let service = Qiopen { connect_id: 2, ..open(ServiceType::UdpService, ip, 0, 3030, AccessMode::Buffer) };
        assert_eq!(bytes(&service), "AT+QIOPEN=1,2,\"UDP SERVICE\",\"127.0.0.1\",0,3030,0\r");
        assert_eq!(
            bytes(&open(ServiceType::Udp, Host::Name("example.com"), 53, 0, AccessMode::DirectPush)),
            "AT+QIOPEN=1,0,\"UDP\",\"example.com\",53,0,1\r"
        );
        assert_eq!(bytes(&Qiclose { connect_id: 11, timeout_s: None }), "AT+QICLOSE=11\r");
        assert_eq!(bytes(&Qiclose { connect_id: 0, timeout_s: Some(3) }), "AT+QICLOSE=0,3\r");
        assert_eq!(bytes(&Qistate::Socket(0)), "AT+QISTATE=1,0\r");
        assert_eq!(bytes(&Qistate::Context(1)), "AT+QISTATE=0,1\r");
        assert_eq!(bytes(&Qistate::All), "AT+QISTATE?\r");
        assert_eq!(bytes(&Qisend { connect_id: 0, len: None, remote: None }), "AT+QISEND=0\r");
        assert_eq!(bytes(&Qisend { connect_id: 0, len: Some(4), remote: None }), "AT+QISEND=0,4\r");
        let to: SocketAddr = "10.7.89.10:6969".parse().unwrap();
        assert_eq!(
            bytes(&Qisend { connect_id: 2, len: Some(10), remote: Some(to) }),
            "AT+QISEND=2,10,\"10.7.89.10\",6969\r"
        );
        assert_eq!(bytes(&QisendQuery { connect_id: 0 }), "AT+QISEND=0,0\r");
        assert_eq!(bytes(&Qird { connect_id: 0, len: Some(1500) }), "AT+QIRD=0,1500\r");
        assert_eq!(bytes(&Qird { connect_id: 2, len: None }), "AT+QIRD=2\r");
        assert_eq!(bytes(&QirdQuery { connect_id: 0 }), "AT+QIRD=0,0\r");
        assert_eq!(bytes(&Qisendex { connect_id: 0, data: b"12345" }), "AT+QISENDEX=0,\"3132333435\"\r");
        assert_eq!(bytes(&Qiswtmd { connect_id: 0, access_mode: AccessMode::Transparent }), "AT+QISWTMD=0,2\r");
        assert_eq!(bytes(&Qisde { echo: false }), "AT+QISDE=0\r");
        assert_eq!(bytes(&QisdeRead), "AT+QISDE?\r");
    }

    #[test]
    fn arguments_outside_the_manual_are_refused() {
        let ip = Host::Ip("127.0.0.1".parse().unwrap());
        assert!(refused(&open(ServiceType::Tcp, ip, 0, 0, AccessMode::Buffer)), "remote port 0");
        assert!(refused(&open(ServiceType::TcpListener, ip, 0, 0, AccessMode::Buffer)), "listener without port");
        assert!(refused(&Qiopen { connect_id: 12, ..open(ServiceType::Tcp, ip, 1, 0, AccessMode::Buffer) }));
        assert!(refused(&Qiopen { context_id: 0, ..open(ServiceType::Tcp, ip, 1, 0, AccessMode::Buffer) }));
        assert!(refused(&open(ServiceType::TcpIncoming, ip, 1, 0, AccessMode::Buffer)));
        assert!(refused(&open(ServiceType::Tcp, Host::Name("evil\"host"), 1, 0, AccessMode::Buffer)));
        assert!(refused(&open(ServiceType::Tcp, Host::Name(""), 1, 0, AccessMode::Buffer)));
        let long = "a".repeat(254);
        assert!(refused(&open(ServiceType::Tcp, Host::Name(&long), 1, 0, AccessMode::Buffer)));
        assert!(refused(&Qisend { connect_id: 0, len: Some(1461), remote: None }));
        assert!(refused(&Qisend { connect_id: 0, len: Some(0), remote: None }));
        assert!(refused(&Qird { connect_id: 0, len: Some(1501) }));
        assert!(refused(&Qird { connect_id: 0, len: Some(0) }));
        assert!(refused(&Qisendex { connect_id: 0, data: &[0; MAX_SENDEX + 1] }));
        assert!(refused(&Qiclose { connect_id: 0, timeout_s: Some(0) }));
    }

    #[test]
    fn answers() {
        let st =
            parse(&Qistate::Socket(0), &["+QISTATE: 0,\"TCP\",\"220.180.239.201\",8705,65514,2,1,0,0,\"usbmodem\""])
                .unwrap();
        assert_eq!(st[0].service_type, ServiceType::Tcp);
        assert_eq!(st[0].state, SocketState::Connected);
        assert_eq!(st[0].remote_port, 8705);
        assert_eq!(st[0].local_port, 65514);
        let st =
            parse(&Qistate::Context(1), &["+QISTATE: 1,\"TCP LISTENER\",\"10.7.157.1\",0,2020,3,1,1,0,\"usbmodem\""])
                .unwrap();
        assert_eq!(st[0].state, SocketState::Listening);
        assert!(parse(&Qistate::All, &[]).unwrap().is_empty());
        assert_eq!(
            parse(&QisendQuery { connect_id: 0 }, &["+QISEND: 9,9,0"]),
            Ok(SendCounters { total: 9, acked: 9, unacked: 0 })
        );
        assert_eq!(
            parse(&QirdQuery { connect_id: 0 }, &["+QIRD: 5,5,0"]),
            Ok(ReadCounters { total: 5, read: 5, unread: 0 })
        );
        assert_eq!(parse(&QisdeRead, &["+QISDE: 1"]), Ok(PayloadEcho(true)));
        assert_eq!(<Qiclose as Command>::timeout_ms(&Qiclose { connect_id: 0, timeout_s: None }), 11_000);
    }
}
