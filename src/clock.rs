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
