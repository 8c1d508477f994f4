//! Configuration of the modem and of the stack's timing.

use crate::commands::{Authentication, ContextType, MAX_APN_LEN, MAX_CREDENTIAL_LEN};
use crate::error::{Error, Result};
use crate::wire;

/// How long the bring-up waits for each step (milliseconds). The defaults are the manual's
/// Figure 1 values; change them only for a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Timeouts {
    /// How long to keep sending `AT` until the modem answers (field notes: 6–50 s after
    /// power-on).
    pub sync_ms: u32,
    /// How long to wait for `APP RDY` after a `RDY` (commands before it may fail).
    pub app_ready_ms: u32,
    /// Figure 1: reboot if the (U)SIM is not identified within 20 s.
    pub sim_ms: u32,
    /// Figure 1: reboot if not registered on the CS domain within 90 s (registration on the PS
    /// domain counts too: LTE-M and NB-IoT networks may offer no CS service).
    pub registration_ms: u32,
    /// Figure 1: wait up to 60 s for PS registration, then go on either way.
    pub ps_registration_ms: u32,
    /// How often registration and SIM state are polled.
    pub poll_interval_ms: u32,
    /// Transparent access mode: the silence before and after `+++` (manual 1.2: at least 1 s).
    pub guard_time_ms: u32,
    /// Transparent access mode: bytes that might start `NO CARRIER` are held back until the
    /// line has been quiet this long.
    pub transparent_quiet_ms: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            sync_ms: 30_000,
            app_ready_ms: 10_000,
            sim_ms: 20_000,
            registration_ms: 90_000,
            ps_registration_ms: 60_000,
            poll_interval_ms: 1_000,
            guard_time_ms: 1_000,
            transparent_quiet_ms: 20,
        }
    }
}

/// What the stack needs to bring the modem up and keep it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The PDP context the stack uses (1–16).
    pub context_id: u8,
    /// Protocol type of that context.
    pub context_type: ContextType,
    /// Access point name.
    pub apn: heapless::String<MAX_APN_LEN>,
    /// APN user name.
    pub username: heapless::String<MAX_CREDENTIAL_LEN>,
    /// APN password.
    pub password: heapless::String<MAX_CREDENTIAL_LEN>,
    /// How the credentials are presented.
    pub authentication: Authentication,
    /// Ask for data lengths in `recv` URCs (`AT+QICFG="recvind",1`) when the firmware has it;
    /// saves an `AT+QIRD=<id>,0` round trip.
    pub recvind: bool,
    /// Port the URCs are routed to (`AT+QURCCFG="urcport"`): `"uart1"` for the main UART.
    pub urc_port: &'static str,
    /// Bring-up timing.
    pub timeouts: Timeouts,
    /// Recovery rules of the manual's Figure 1 and the reboot back-off: the ones the stack
    /// starts with (`set_policy` on either stack changes them later).
    pub recovery: crate::recovery::RebootPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            context_id: 1,
            context_type: ContextType::Ipv4,
            apn: heapless::String::new(),
            username: heapless::String::new(),
            password: heapless::String::new(),
            authentication: Authentication::None,
            recvind: true,
            urc_port: "uart1",
            timeouts: Timeouts::default(),
            recovery: crate::recovery::RebootPolicy::default(),
        }
    }
}

fn checked<const N: usize>(s: &str) -> Result<heapless::String<N>> {
    if !wire::quotable(s) {
        return Err(Error::InvalidArgument);
    }
    heapless::String::try_from(s).map_err(|_| Error::InvalidArgument)
}

impl Config {
    /// A configuration for `apn` on context 1 (IPv4, no credentials). Fails with
    /// [`Error::InvalidArgument`] if the APN is longer than 100 bytes or holds characters the
    /// modem cannot take (`"`, control characters, non-ASCII).
    pub fn new(apn: &str) -> Result<Self> {
        Ok(Self { apn: checked(apn)?, ..Self::default() })
    }

    /// Sets user name, password and authentication method.
    pub fn with_credentials(mut self, username: &str, password: &str, authentication: Authentication) -> Result<Self> {
        self.username = checked(username)?;
        self.password = checked(password)?;
        self.authentication = authentication;
        Ok(self)
    }

    /// Uses another context (1–16).
    pub fn with_context(mut self, context_id: u8, context_type: ContextType) -> Result<Self> {
        crate::commands::check_context(context_id)?;
        self.context_id = context_id;
        self.context_type = context_type;
        Ok(self)
    }
}
