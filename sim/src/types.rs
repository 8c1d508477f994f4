//! Public inspection and fault-injection types.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Counters of the simulated UART and command interpreter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes delivered from the host to the modem logic.
    pub bytes_to_modem: u64,
    /// Bytes produced by the modem towards the host.
    pub bytes_from_modem: u64,
    /// AT command lines executed (including ones answered with `ERROR`).
    pub commands: u64,
    /// Per command name (`"AT+QIOPEN"`, `"ATE"`, ...), how often it was received.
    pub command_counts: BTreeMap<String, u64>,
    /// UDP datagrams dropped because the socket's receive buffer was full.
    pub udp_datagrams_dropped: u64,
    /// Output bytes dropped because the host did not read for too long (output queue cap).
    pub output_bytes_dropped: u64,
    /// URCs dropped because the URC queue was full (the host held a prompt or data mode
    /// open for very long).
    pub urcs_dropped: u64,
}

/// Direction of a wire-log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Host to modem.
    ToModem,
    /// Modem to host.
    FromModem,
}

/// One record of the in-memory wire log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRecord {
    /// When the bytes were delivered to the modem logic (ToModem) or produced by it (FromModem).
    pub at: Instant,
    /// `at` relative to the simulator's start.
    pub elapsed: Duration,
    /// Which way the bytes went.
    pub direction: Direction,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// `<service_type>` of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceType {
    /// `"TCP"` client.
    Tcp,
    /// `"UDP"` client.
    Udp,
    /// `"TCP LISTENER"` server.
    TcpListener,
    /// `"TCP INCOMING"`: a connection accepted by a listener.
    TcpIncoming,
    /// `"UDP SERVICE"`.
    UdpService,
}

impl ServiceType {
    /// The name as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Tcp => "TCP",
            ServiceType::Udp => "UDP",
            ServiceType::TcpListener => "TCP LISTENER",
            ServiceType::TcpIncoming => "TCP INCOMING",
            ServiceType::UdpService => "UDP SERVICE",
        }
    }
}

/// `<socket_state>` of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketState {
    /// 0: not established.
    Initial,
    /// 1: connecting / starting to listen.
    Opening,
    /// 2: established (also UDP services, as in the manual's example).
    Connected,
    /// 3: listening.
    Listening,
    /// 4: closed by the peer or the network; waiting for `AT+QICLOSE`.
    Closing,
}

impl SocketState {
    /// The number reported by `AT+QISTATE`.
    pub fn number(self) -> u8 {
        match self {
            SocketState::Initial => 0,
            SocketState::Opening => 1,
            SocketState::Connected => 2,
            SocketState::Listening => 3,
            SocketState::Closing => 4,
        }
    }
}

/// `<access_mode>` of a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessMode {
    /// 0: buffer access mode.
    Buffer,
    /// 1: direct push mode.
    DirectPush,
    /// 2: transparent access mode.
    Transparent,
}

impl AccessMode {
    /// The number used by `AT+QIOPEN`/`AT+QISTATE`.
    pub fn number(self) -> u8 {
        match self {
            AccessMode::Buffer => 0,
            AccessMode::DirectPush => 1,
            AccessMode::Transparent => 2,
        }
    }

    pub(crate) fn from_number(n: u32) -> Option<AccessMode> {
        match n {
            0 => Some(AccessMode::Buffer),
            1 => Some(AccessMode::DirectPush),
            2 => Some(AccessMode::Transparent),
            _ => None,
        }
    }
}

/// A snapshot of one occupied connectID (for leak checks in tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketInfo {
    /// connectID (0-11).
    pub connect_id: u8,
    /// Service type.
    pub service_type: ServiceType,
    /// State.
    pub state: SocketState,
    /// PDP context (1-16).
    pub context_id: u8,
    /// Current access mode.
    pub access_mode: AccessMode,
    /// Local address of the host socket, once known.
    pub local_addr: Option<SocketAddr>,
    /// Remote address (clients and incoming connections).
    pub remote_addr: Option<SocketAddr>,
    /// Listener that accepted a `"TCP INCOMING"` connection.
    pub server_id: Option<u8>,
    /// Bytes in the modem's receive buffer.
    pub rx_buffered: usize,
    /// Bytes accepted by QISEND but not yet written to the host socket.
    pub tx_unacked: usize,
}

/// Where [`crate::Simulator::inject_urc`] puts a URC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InjectPoint {
    /// As soon as possible (like any URC: between responses; held during a send prompt or
    /// transparent mode).
    Now,
    /// Inside the response of the next command whose line starts with `command_prefix`
    /// (case-insensitive), after its `after_line`-th line (1-based, counting information
    /// lines, payload blocks and the final result; 0 = before the first line).
    BetweenLines {
        /// Command prefix, e.g. `"AT+QIACT?"` or `"AT+QIRD"`.
        command_prefix: String,
        /// Line after which the URC is inserted.
        after_line: usize,
    },
    /// Right after the final result of the next command starting with `command_prefix`,
    /// i.e. between `OK` and a deferred result such as `+QIOPEN` or `+QIURC: "dnsgip"`.
    AfterFinal {
        /// Command prefix, e.g. `"AT+QIOPEN"`.
        command_prefix: String,
    },
}
