//! Simulator configuration.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

/// Which behaviour the simulator imitates where the manual and real modems differ.
///
/// See the crate documentation for the full list of differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// What the manual literally says: echo off after power-on, only `RDY` at boot,
    /// `+CME ERROR: <err>` for TCP/IP failures while `AT+CMEE` is 1 or 2, deferred results
    /// without extra delay, `<AT_port>` reported as `"usbmodem"` as in the manual's examples.
    Manual,
    /// What real modems do (the default): echo on after boot, the full boot sequence
    /// (`RDY`, `APP RDY`, `+CPIN: READY`, `+QIND: SMS DONE`, `+QIND: PB DONE`; commands before
    /// `APP RDY` get `ERROR`), bare `ERROR` for TCP/IP failures with the cause only in
    /// `AT+QIGETERROR`, deferred results after [`SimConfig::deferred_delay`].
    #[default]
    Field,
    /// Like [`Profile::Field`], but unknown configuration (write) commands and unknown
    /// `AT+QICFG` options answer `OK`, unquoted string parameters are accepted, and `AT+QIOPEN`,
    /// `AT+QPING`, `AT+QNTP`, `AT+QIDNSGIP` and `AT+QIDNSCFG` work without an active context, so
    /// that drivers written for sister modems can run against the simulator.
    Lenient,
}

impl Profile {
    /// Parses `manual`, `field` or `lenient` (case-insensitive).
    pub fn parse(s: &str) -> Option<Profile> {
        match s.to_ascii_lowercase().as_str() {
            "manual" => Some(Profile::Manual),
            "field" => Some(Profile::Field),
            "lenient" => Some(Profile::Lenient),
            _ => None,
        }
    }
}

/// Configuration of a simulated modem. `Default` is the field profile with sensible values.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Behaviour profile (default [`Profile::Field`]).
    pub profile: Profile,
    /// Revision reported by `ATI`, `AT+GMR` and `AT+QGMR` (default `"BG96MAR02A08M1G"`).
    pub firmware: String,
    /// Whether the firmware knows `AT+QICFG="recvind"` (01.008 and later; default `true`).
    /// When `false`, every form of that option answers `ERROR`.
    pub recvind_supported: bool,
    /// UART pacing in both directions, 8N1 (10 bits per byte). `None` = unpaced (default).
    pub baud: Option<u32>,
    /// Name table for `AT+QIDNSGIP` and for domain names in `AT+QIOPEN`, `AT+QPING` and
    /// `AT+QNTP`. Names are matched case-insensitively. `localhost` -> 127.0.0.1 is always
    /// present unless the table itself has an entry for `localhost`.
    pub dns: Vec<(String, Vec<IpAddr>)>,
    /// Address reported by `AT+QIACT?` for an active context (default 127.0.0.1).
    pub context_ip: IpAddr,
    /// `+++` guard time in transparent mode (default 1 s; tests shorten it).
    pub guard_time: Duration,
    /// Time from power-on or reboot to `RDY` (default 50 ms). In the field profile `APP RDY`
    /// follows half a `boot_delay` later and the SIM/phonebook lines another half later.
    pub boot_delay: Duration,
    /// Extra delay before deferred results (`+QIOPEN`, `dnsgip`, `+QPING`, `+QNTP`, `CONNECT`)
    /// in the field and lenient profiles (default 20 ms). The manual profile uses no delay.
    pub deferred_delay: Duration,
    /// Per-socket receive buffer of the modem (default 32768 bytes). When it is full the
    /// simulator stops reading the host socket (TCP backpressure) or drops UDP datagrams
    /// (counted in [`crate::Stats::udp_datagrams_dropped`]).
    pub socket_rx_capacity: usize,
    /// Per-socket send buffer of the modem (default 16384 bytes): bytes accepted by `QISEND`
    /// but not yet written to the host socket. A `QISEND` that does not fit answers `SEND FAIL`.
    pub socket_tx_capacity: usize,
    /// Bytes of modem output that may wait for the host before direct-push and transparent
    /// data are held back (default 65536). A small value models a UART with RTS/CTS flow
    /// control, where the modem stops when the host does not read.
    pub host_buffer: usize,
    /// Timestamped wire log file (appended; `None` = no file).
    pub log: Option<PathBuf>,
    /// How long `AT+QNTP` waits for the server's answer before reporting error 569
    /// (default 5 s; the real modem allows up to 125 s).
    pub ntp_timeout: Duration,
    /// How long a `"TCP"` connect may take before `+QIOPEN: <id>,566` (default 5 s).
    pub connect_timeout: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            profile: Profile::Field,
            firmware: "BG96MAR02A08M1G".to_string(),
            recvind_supported: true,
            baud: None,
            dns: vec![("localhost".to_string(), vec![IpAddr::V4(Ipv4Addr::LOCALHOST)])],
            context_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            guard_time: Duration::from_secs(1),
            boot_delay: Duration::from_millis(50),
            deferred_delay: Duration::from_millis(20),
            socket_rx_capacity: 32 * 1024,
            socket_tx_capacity: 16 * 1024,
            host_buffer: 64 * 1024,
            log: None,
            ntp_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

impl SimConfig {
    /// The default configuration with another profile.
    pub fn with_profile(profile: Profile) -> Self {
        SimConfig { profile, ..SimConfig::default() }
    }

    /// Resolves `name` through the table (case-insensitive); `localhost` is built in.
    pub fn resolve(&self, name: &str) -> Option<Vec<IpAddr>> {
        if let Some((_, ips)) = self.dns.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)) {
            return Some(ips.clone());
        }
        if name.eq_ignore_ascii_case("localhost") {
            return Some(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]);
        }
        None
    }
}
