//! Time, only through this trait: the stack reads the clock to enforce the manual's response
//! times (QIACT 150 s, QIDEACT 40 s, QIOPEN 150 s, ...), and tests can run those long timeouts
//! fast with a clock of their own.

/// A monotonic millisecond clock.
pub trait Clock {
    /// Milliseconds since an arbitrary start. Must never go backwards.
    fn now_ms(&self) -> u64;
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
}

/// A point in time as the stack keeps it: [`Clock::now_ms`] cut to 32 bits. On a Cortex-M
/// that is one register instead of two for every deadline the stack computes and compares
/// (0.5 KB less code in a client firmware), and an instant takes 4 bytes instead of 8 (the
/// socket table keeps three per connectID).
///
/// It wraps every 49.7 days, so instants have no order: they are compared only through
/// [`reached`](Self::reached), [`expired`](Self::expired) and the distances, which are right
/// for spans shorter than 24.8 days. A wait of the stack is far shorter (the longest are the
/// reboot back-off and its one-hour series); state that can be left behind for longer
/// expires through [`expired`](Self::expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(u32);

impl Instant {
    /// The longest span instants can tell apart: 24.8 days.
    pub const MAX_SPAN_MS: u32 = i32::MAX as u32;

    /// The instant of a [`Clock::now_ms`] reading.
    pub const fn from_ms(ms: u64) -> Self {
        Self(ms as u32)
    }

    /// `clock`'s time now.
    pub fn now<C: Clock + ?Sized>(clock: &C) -> Self {
        Self::from_ms(clock.now_ms())
    }

    /// The instant `ms` milliseconds later.
    #[must_use]
    pub const fn after_ms(self, ms: u32) -> Self {
        Self(self.0.wrapping_add(ms))
    }

    /// The signed distance from `earlier` to `self` in ms (negative if `self` comes first).
    pub const fn diff_ms(self, earlier: Instant) -> i32 {
        self.0.wrapping_sub(earlier.0) as i32
    }

    /// Whether `now` is at or past this instant (a deadline).
    pub const fn reached(self, now: Instant) -> bool {
        now.diff_ms(self) >= 0
    }

    /// Whether a deadline that was set at most `max_ahead_ms` ahead has passed at `now`.
    ///
    /// Use it for state that can be left behind and looked at again much later (a query
    /// nobody waits for any more, a socket nobody polls): unlike [`reached`](Self::reached),
    /// it does not take a deadline that passed more than 24.8 days ago for one in the
    /// future. It can still be fooled in a window of `max_ahead_ms` once every 49.7 days,
    /// and then only delays.
    pub const fn expired(self, now: Instant, max_ahead_ms: u32) -> bool {
        let d = now.diff_ms(self);
        d >= 0 || d.unsigned_abs() > max_ahead_ms
    }

    /// Milliseconds from `earlier` to `self`, 0 if `self` is not later.
    pub const fn ms_since(self, earlier: Instant) -> u32 {
        let d = self.diff_ms(earlier);
        if d > 0 { d as u32 } else { 0 }
    }
}

/// A clock that can also wait, for the async stack.
pub trait AsyncClock: Clock {
    /// Completes at or after `deadline_ms` (in [`Clock::now_ms`] time).
    fn wait_until(&self, deadline_ms: u64) -> impl core::future::Future<Output = ()>;
}

impl<C: AsyncClock + ?Sized> AsyncClock for &C {
    fn wait_until(&self, deadline_ms: u64) -> impl core::future::Future<Output = ()> {
        (**self).wait_until(deadline_ms)
    }
}

/// The stack's clock on [embassy-time](https://docs.rs/embassy-time): the binary supplies the
/// time driver, as for any embassy program.
#[cfg(feature = "embassy-time")]
#[derive(Debug, Clone, Copy, Default)]
pub struct EmbassyClock;

#[cfg(feature = "embassy-time")]
impl Clock for EmbassyClock {
    fn now_ms(&self) -> u64 {
        embassy_time::Instant::now().as_millis()
    }
}

#[cfg(feature = "embassy-time")]
impl AsyncClock for EmbassyClock {
    async fn wait_until(&self, deadline_ms: u64) {
        embassy_time::Timer::at(embassy_time::Instant::from_millis(deadline_ms)).await
    }
}
