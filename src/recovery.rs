//! Recovery as the manual's Figure 1 prescribes it, as a policy the user can read and change,
//! and the modem's power and reset lines.
//!
//! | Rule (Figure 1) | What the stack does |
//! |---|---|
//! | no `+QIOPEN` within 150 s | `AT+QICLOSE` on that connectID, [`Error::Timeout`](crate::Error::Timeout) |
//! | 5 consecutive `AT+QIOPEN` failures | before the next open: `AT+QIDEACT`, `AT+QIACT`, then the open |
//! | no answer to `AT+QIACT` in 150 s, to `AT+QICLOSE` in 10 s, to `AT+QIDEACT` in 40 s | the modem is rebooted |
//! | 3 consecutive failed `AT+QIDEACT` | the modem is rebooted |
//! | any other command unanswered within its time (60 s) | before the next use: `AT`; silent → reboot |
//! | data not acknowledged: `AT+QISEND=<id>,0` every 5 s, 24 times | `AT+QICLOSE`, the connection reports [`Error::Timeout`](crate::Error::Timeout) |
//! | `+QIURC: "pdpdeact"` | the context's sockets report [`Error::ContextDeactivated`](crate::Error::ContextDeactivated); the context is checked with `AT+QIACT?` and activated again on next use |
//! | an unsolicited `RDY` | every socket reports [`Error::Rebooted`](crate::Error::Rebooted); bring-up runs again before the next use |
//! | reboots: 3 immediately, then after 10 min, 30 min, 1 h, 1 h, ... | [`RebootPolicy`]; while a reboot is not yet allowed, operations fail fast with [`Error::RebootBackoff`](crate::Error::RebootBackoff) |
//!
//! A reboot is `AT+CFUN=1,1`; if the modem does not answer and [`PowerControl`] can, the
//! power key is pulsed (or the reset line asserted), then bring-up runs again.

/// How the stack recovers (Figure 1 values by default).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RebootPolicy {
    /// Consecutive `AT+QIOPEN` failures after which the context is deactivated and activated
    /// again (Figure 1: 5).
    pub max_open_failures: u8,
    /// Consecutive failed `AT+QIDEACT` after which the modem is rebooted (Figure 1: 3).
    pub max_deactivate_failures: u8,
    /// Reboots allowed one after the other without waiting (Figure 1: 3).
    pub immediate_reboots: u8,
    /// Waits before the reboots after those, in seconds; the last one repeats
    /// (Figure 1: 10 min, 30 min, 1 h, 1 h, ...).
    pub backoff_s: [u32; 3],
    /// Query `AT+QISEND=<id>,0` after sending until the peer acknowledged everything
    /// (Figure 1: every 5 s, 24 times, then close).
    pub ack_supervision: bool,
    /// Interval of the acknowledgement checks in milliseconds (Figure 1: 5000).
    pub ack_interval_ms: u32,
    /// Checks before an unacknowledged connection is closed (Figure 1: 24).
    pub ack_checks: u8,
}

impl Default for RebootPolicy {
    fn default() -> Self {
        Self {
            max_open_failures: 5,
            max_deactivate_failures: 3,
            immediate_reboots: 3,
            backoff_s: [600, 1800, 3600],
            ack_supervision: true,
            ack_interval_ms: 5000,
            ack_checks: 24,
        }
    }
}

impl RebootPolicy {
    /// How long to wait before reboot number `n` of a series (1 = the first), in ms: at most
    /// [`Instant::MAX_SPAN_MS`](crate::clock::Instant::MAX_SPAN_MS) (24.8 days).
    pub fn delay_before(&self, n: u32) -> u32 {
        let immediate = u32::from(self.immediate_reboots);
        if n <= immediate {
            return 0;
        }
        let i = (n - immediate - 1) as usize;
        let s = self.backoff_s.get(i).or(self.backoff_s.last()).copied().unwrap_or(0);
        s.saturating_mul(1000).min(crate::clock::Instant::MAX_SPAN_MS)
    }
}

/// What recovery has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RecoveryState {
    /// Consecutive failed opens.
    pub open_failures: u8,
    /// Consecutive failed deactivations.
    pub deactivate_failures: u8,
    /// Reboots in the current series: a series ends when the modem ran an hour
    /// ([`SERIES_RESET_MS`]) without a reboot, not at a successful bring-up (a modem that comes
    /// up and fails again at once is what the back-off is for).
    pub reboots: u32,
    /// When the last reboot happened, for the back-off.
    pub last_reboot: Option<crate::clock::Instant>,
    /// Reboots done since the stack started, in all.
    pub total_reboots: u32,
    /// A command went unanswered: check the modem before the next use.
    pub suspect: bool,
    /// The modem must be rebooted before the next use (a Figure 1 rule fired).
    pub reboot_needed: bool,
    /// Bring-up has completed at least once (a later `RDY` means: run it again).
    pub brought_up: bool,
    /// Bring-up is running (async: other tasks wait).
    pub in_progress: bool,
}

/// The modem's power and reset lines, driven by the stack where the board has them.
pub trait PowerControl {
    /// Whether the board has the reset line (RESET_N).
    fn has_reset(&self) -> bool {
        false
    }
    /// Whether the board has the power key line (PWRKEY).
    fn has_power_key(&self) -> bool;
    /// Drives the power key: `true` = pressed (the module's PWRKEY pin low).
    fn set_power_key(&mut self, pressed: bool);
    /// Drives the reset line: `true` = asserted. Boards without one do nothing.
    fn set_reset(&mut self, _asserted: bool) {}
    /// Switches the modem's supply, where the board can. Boards without it do nothing.
    fn set_supply(&mut self, _on: bool) {}
}

/// No power or reset lines: reboots are `AT+CFUN=1,1` only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPins;

impl PowerControl for NoPins {
    fn has_power_key(&self) -> bool {
        false
    }
    fn set_power_key(&mut self, _pressed: bool) {}
}

/// Power key (and optionally reset) on embedded-hal 1.0 output pins.
///
/// `inverted`: the usual BG96 reference design drives PWRKEY through an NPN transistor, so a
/// *high* MCU pin pulls PWRKEY low ("pressed"); set `inverted = false` for a direct connection.
pub struct Pins<PK, RST> {
    /// The power key line.
    pub power_key: PK,
    /// The reset line, if wired.
    pub reset: Option<RST>,
    /// Pin high means pressed/asserted (through an inverting transistor).
    pub inverted: bool,
}

impl<PK: embedded_hal::digital::OutputPin, RST: embedded_hal::digital::OutputPin> PowerControl for Pins<PK, RST> {
    fn has_reset(&self) -> bool {
        self.reset.is_some()
    }
    fn has_power_key(&self) -> bool {
        true
    }
    fn set_power_key(&mut self, pressed: bool) {
        let high = pressed == self.inverted;
        let _ = if high { self.power_key.set_high() } else { self.power_key.set_low() };
    }
    fn set_reset(&mut self, asserted: bool) {
        if let Some(r) = self.reset.as_mut() {
            let high = asserted == self.inverted;
            let _ = if high { r.set_high() } else { r.set_low() };
        }
    }
}

/// Figure 1: keep the power key pressed this long to switch the modem on.
pub const POWER_KEY_PULSE_MS: u32 = 2_000;
/// Figure 1: after `AT+QPOWD`, cut the power 12 s or more later.
pub const POWER_DOWN_WAIT_MS: u32 = 12_000;
/// The silence the stack keeps before `+++`: the guard time plus a margin, because the last
/// bytes written may still be in the UART's transmit FIFO when the write returns (the manual:
/// "1 s or longer").
pub fn escape_silence_ms(guard_time_ms: u32) -> u32 {
    let g = guard_time_ms;
    g.saturating_add((g / 5).max(20))
}

/// How long the reset line is asserted (the BG96 needs 150–460 ms).
pub const RESET_PULSE_MS: u32 = 300;
/// A reboot series ends when the modem ran this long without needing one: Figure 1's
/// "continuously rebooted" is counted within it.
pub const SERIES_RESET_MS: u32 = 3_600_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_1_backoff() {
        let p = RebootPolicy::default();
        let delays: [u32; 8] = core::array::from_fn(|i| p.delay_before(i as u32 + 1) / 1000);
        assert_eq!(delays, [0, 0, 0, 600, 1800, 3600, 3600, 3600]);
        let custom = RebootPolicy { immediate_reboots: 1, backoff_s: [5, 10, 20], ..p };
        assert_eq!(custom.delay_before(1), 0);
        assert_eq!(custom.delay_before(2), 5000);
        assert_eq!(custom.delay_before(9), 20000);
        let long = RebootPolicy { backoff_s: [u32::MAX; 3], ..p };
        assert_eq!(long.delay_before(4), crate::clock::Instant::MAX_SPAN_MS);
    }
}
