//! Errors: one typed enum for everything the stack can report, carrying the manual's
//! TCP/IP error codes (manual chapter 4, 550–574) and `+CME ERROR` codes.

use core::fmt;

/// The TCP/IP error codes of the BG96 manual (chapter 4, Table 1).
///
/// They arrive in `+QIOPEN: <connectID>,<err>`, in `+QIURC: "dnsgip",<err>`, in `+QPING`/`+QNTP`
/// results and in the answer of `AT+QIGETERROR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorCode {
    /// 550: Unknown error.
    Unknown,
    /// 551: Operation blocked.
    OperationBlocked,
    /// 552: Invalid parameters.
    InvalidParameters,
    /// 553: Memory not enough.
    MemoryNotEnough,
    /// 554: Create socket failed.
    CreateSocketFailed,
    /// 555: Operation not supported.
    OperationNotSupported,
    /// 556: Socket bind failed.
    SocketBindFailed,
    /// 557: Socket listen failed.
    SocketListenFailed,
    /// 558: Socket write failed.
    SocketWriteFailed,
    /// 559: Socket read failed.
    SocketReadFailed,
    /// 560: Socket accept failed.
    SocketAcceptFailed,
    /// 561: Open PDP context failed.
    OpenPdpContextFailed,
    /// 562: Close PDP context failed.
    ClosePdpContextFailed,
    /// 563: Socket identity has been used.
    SocketIdentityUsed,
    /// 564: DNS busy.
    DnsBusy,
    /// 565: DNS parse failed.
    DnsParseFailed,
    /// 566: Socket connect failed.
    SocketConnectFailed,
    /// 567: Socket has been closed.
    SocketClosed,
    /// 568: Operation busy.
    OperationBusy,
    /// 569: Operation timeout.
    OperationTimeout,
    /// 570: PDP context broken down.
    PdpContextBrokenDown,
    /// 571: Cancel send.
    CancelSend,
    /// 572: Operation not allowed.
    OperationNotAllowed,
    /// 573: APN not configured.
    ApnNotConfigured,
    /// 574: Port busy.
    PortBusy,
    /// A code outside the manual's table (kept verbatim).
    Other(u16),
}

/// The manual's codes, written once: both directions are `match`es, which the compiler turns
/// into arithmetic (no table in flash).
macro_rules! code_table {
    ($($name:ident = $n:literal),* $(,)?) => {
        impl ErrorCode {
            /// The code for a number as it appears on the wire (`550` → [`ErrorCode::Unknown`]).
            pub fn from_code(code: u16) -> Self {
                match code {
                    $($n => ErrorCode::$name,)*
                    c => ErrorCode::Other(c),
                }
            }

            /// The number of this code as the modem prints it.
            pub fn code(self) -> u16 {
                match self {
                    $(ErrorCode::$name => $n,)*
                    ErrorCode::Other(c) => c,
                }
            }
        }
    };
}

code_table!(
    Unknown = 550,
    OperationBlocked = 551,
    InvalidParameters = 552,
    MemoryNotEnough = 553,
    CreateSocketFailed = 554,
    OperationNotSupported = 555,
    SocketBindFailed = 556,
    SocketListenFailed = 557,
    SocketWriteFailed = 558,
    SocketReadFailed = 559,
    SocketAcceptFailed = 560,
    OpenPdpContextFailed = 561,
    ClosePdpContextFailed = 562,
    SocketIdentityUsed = 563,
    DnsBusy = 564,
    DnsParseFailed = 565,
    SocketConnectFailed = 566,
    SocketClosed = 567,
    OperationBusy = 568,
    OperationTimeout = 569,
    PdpContextBrokenDown = 570,
    CancelSend = 571,
    OperationNotAllowed = 572,
    ApnNotConfigured = 573,
    PortBusy = 574,
);

impl ErrorCode {
    /// The manual's description of the code (chapter 4, Table 1).
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::Unknown => "Unknown error",
            ErrorCode::OperationBlocked => "Operation blocked",
            ErrorCode::InvalidParameters => "Invalid parameters",
            ErrorCode::MemoryNotEnough => "Memory not enough",
            ErrorCode::CreateSocketFailed => "Create socket failed",
            ErrorCode::OperationNotSupported => "Operation not supported",
            ErrorCode::SocketBindFailed => "Socket bind failed",
            ErrorCode::SocketListenFailed => "Socket listen failed",
            ErrorCode::SocketWriteFailed => "Socket write failed",
            ErrorCode::SocketReadFailed => "Socket read failed",
            ErrorCode::SocketAcceptFailed => "Socket accept failed",
            ErrorCode::OpenPdpContextFailed => "Open PDP context failed",
            ErrorCode::ClosePdpContextFailed => "Close PDP context failed",
            ErrorCode::SocketIdentityUsed => "Socket identity has been used",
            ErrorCode::DnsBusy => "DNS busy",
            ErrorCode::DnsParseFailed => "DNS parse failed",
            ErrorCode::SocketConnectFailed => "Socket connect failed",
            ErrorCode::SocketClosed => "Socket has been closed",
            ErrorCode::OperationBusy => "Operation busy",
            ErrorCode::OperationTimeout => "Operation timeout",
            ErrorCode::PdpContextBrokenDown => "PDP context broken down",
            ErrorCode::CancelSend => "Cancel send",
            ErrorCode::OperationNotAllowed => "Operation not allowed",
            ErrorCode::ApnNotConfigured => "APN not configured",
            ErrorCode::PortBusy => "Port busy",
            ErrorCode::Other(_) => "Error code not in the manual",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code(), self.description())
    }
}

/// Everything that can go wrong in this crate.
///
/// Network and modem failures are values of this type; the crate never panics on what the modem
/// or the network sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error {
    /// A TCP/IP error code of the manual, from a deferred result or from `AT+QIGETERROR`.
    Modem(ErrorCode),
    /// `+CME ERROR: <n>`.
    Cme(u16),
    /// `+CMS ERROR: <n>`.
    Cms(u16),
    /// A bare `ERROR` whose cause the modem did not report.
    Failed,
    /// No answer within the command's maximum response time (the manual's value).
    Timeout,
    /// `SEND FAIL`: the modem's send buffer is full; the data was not taken, retry later.
    SendFail,
    /// The connection was closed by the peer or the network; everything it had received was
    /// delivered before this error.
    Closed,
    /// The modem rebooted (an unsolicited `RDY`): every socket and context it had is gone.
    Rebooted,
    /// The network deactivated the PDP context (`+QIURC: "pdpdeact",<contextID>`); the sockets
    /// of that context are gone.
    ContextDeactivated(u8),
    /// All 12 connectIDs of the modem are in use.
    NoFreeSocket,
    /// An argument the manual does not allow (too long, out of range, a character that cannot be
    /// quoted in an AT command). Nothing was sent to the modem.
    InvalidArgument,
    /// The socket handle is not in a state for this operation (e.g. `send` before `connect`).
    InvalidState,
    /// A response or line did not fit the crate's bounded buffers.
    Overflow,
    /// The modem's answer did not have the form the manual gives.
    Parse,
    /// The serial port failed.
    Serial(embedded_io::ErrorKind),
    /// The BG96 cannot do this (for example reverse DNS); see the crate docs.
    NotSupported,
    /// A datagram of `len` bytes did not fit the caller's buffer. The part that fits was written
    /// to the buffer and the datagram is consumed: the BG96 hands out each datagram once.
    Truncated {
        /// The size of the whole datagram (the BG96 carries at most 1460 bytes in one).
        len: u16,
    },
    /// The name has no address of the requested type.
    NotFound,
    /// Direct-push data arrived faster than the host buffer could take it and was dropped.
    DataLost,
    /// Another user of the modem holds the resource this needs (e.g. a DNS query is running).
    Busy,
    /// The (U)SIM was not ready within the time Figure 1 allows (missing, or it needs a PIN).
    SimNotReady,
    /// The modem did not register on the network within the time Figure 1 allows.
    NotRegistered,
    /// The modem needs a reboot but the reboot back-off (Figure 1) does not allow one yet.
    RebootBackoff {
        /// Seconds until the next reboot is allowed (at most `u16::MAX`, about 18 hours).
        retry_in_s: u16,
    },
}

impl Error {
    /// Whether the error means that the socket it came from is gone for good.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Error::Closed
                | Error::Rebooted
                | Error::ContextDeactivated(_)
                | Error::Modem(ErrorCode::SocketClosed | ErrorCode::PdpContextBrokenDown)
        )
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Modem(code) => write!(f, "modem error {code}"),
            Error::Cme(n) => write!(f, "+CME ERROR: {n}"),
            Error::Cms(n) => write!(f, "+CMS ERROR: {n}"),
            Error::Failed => f.write_str("the modem answered ERROR"),
            Error::Timeout => f.write_str("no answer from the modem in time"),
            Error::SendFail => f.write_str("SEND FAIL: the modem's send buffer is full"),
            Error::Closed => f.write_str("connection closed"),
            Error::Rebooted => f.write_str("the modem rebooted"),
            Error::ContextDeactivated(cid) => write!(f, "PDP context {cid} was deactivated"),
            Error::NoFreeSocket => f.write_str("all 12 connectIDs are in use"),
            Error::InvalidArgument => f.write_str("argument not allowed by the BG96 manual"),
            Error::InvalidState => f.write_str("socket not in a state for this operation"),
            Error::Overflow => f.write_str("modem output exceeded a buffer"),
            Error::Parse => f.write_str("unexpected modem output"),
            Error::Serial(kind) => write!(f, "serial port error: {kind:?}"),
            Error::NotSupported => f.write_str("not supported by the BG96"),
            Error::Truncated { len } => write!(f, "datagram of {len} bytes truncated"),
            Error::NotFound => f.write_str("name not found"),
            Error::DataLost => f.write_str("direct-push data lost: host buffer full"),
            Error::Busy => f.write_str("resource busy"),
            Error::SimNotReady => f.write_str("(U)SIM not ready"),
            Error::NotRegistered => f.write_str("not registered on the network"),
            Error::RebootBackoff { retry_in_s } => {
                write!(f, "modem unresponsive; next reboot allowed in {retry_in_s} s")
            }
        }
    }
}

impl core::error::Error for Error {}

impl embedded_nal::TcpError for Error {
    fn kind(&self) -> embedded_nal::TcpErrorKind {
        if self.is_connection_lost() {
            embedded_nal::TcpErrorKind::PipeClosed
        } else {
            embedded_nal::TcpErrorKind::Other
        }
    }
}

impl embedded_io::Error for Error {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind as K;
        match self {
            Error::Closed => K::ConnectionReset,
            Error::Rebooted | Error::ContextDeactivated(_) => K::ConnectionAborted,
            Error::Modem(ErrorCode::SocketConnectFailed) => K::ConnectionRefused,
            Error::Modem(ErrorCode::SocketClosed) => K::NotConnected,
            Error::Modem(ErrorCode::PortBusy | ErrorCode::SocketBindFailed) => K::AddrInUse,
            Error::Modem(ErrorCode::OperationTimeout) | Error::Timeout => K::TimedOut,
            Error::Modem(ErrorCode::MemoryNotEnough) | Error::NoFreeSocket => K::OutOfMemory,
            Error::Modem(ErrorCode::DnsParseFailed) | Error::NotFound => K::NotFound,
            Error::InvalidArgument | Error::Modem(ErrorCode::InvalidParameters) => K::InvalidInput,
            Error::InvalidState => K::NotConnected,
            Error::Parse | Error::Overflow | Error::Truncated { .. } => K::InvalidData,
            Error::NotSupported | Error::Modem(ErrorCode::OperationNotSupported) => K::Unsupported,
            Error::Serial(kind) => *kind,
            _ => K::Other,
        }
    }
}

/// Result with the crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for n in 550..=574 {
            let code = ErrorCode::from_code(n);
            assert!(!matches!(code, ErrorCode::Other(_)), "{n}");
            assert_eq!(code.code(), n);
        }
        assert_eq!(ErrorCode::from_code(552), ErrorCode::InvalidParameters);
        assert_eq!(ErrorCode::from_code(574), ErrorCode::PortBusy);
        assert_eq!(ErrorCode::from_code(549), ErrorCode::Other(549));
        assert_eq!(ErrorCode::from_code(575).code(), 575);
    }

    #[test]
    fn tcp_kind_maps_lost_connections_to_pipe_closed() {
        use embedded_nal::{TcpError, TcpErrorKind};
        assert_eq!(Error::Closed.kind(), TcpErrorKind::PipeClosed);
        assert_eq!(Error::Rebooted.kind(), TcpErrorKind::PipeClosed);
        assert_eq!(Error::ContextDeactivated(1).kind(), TcpErrorKind::PipeClosed);
        assert_eq!(Error::Timeout.kind(), TcpErrorKind::Other);
        assert_eq!(Error::SendFail.kind(), TcpErrorKind::Other);
    }
}
