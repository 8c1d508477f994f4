//! The binary's one embassy-time driver: SysTick every 10 ms, embassy tick = 1 ms
//! (`tick-hz-1_000`).
//!
//! A 10 ms period, not 1 ms: QEMU delivers a tick late when the host is busy, and a late tick
//! merges with the next one, so a 1 kHz SysTick loses time under load (see
//! `shared/notes/qemu-mcu.md`); at 10 ms the guest clock stays within ±0.02 % of the host's.
//! Timer resolution is therefore 10 ms, which is plenty for a modem's timeouts.

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::Mutex;
use embassy_time_queue_utils::Queue;

/// QEMU's lm3s6965evb runs the core at 200 MHz / (RCC.SYSDIV 15 + 1) = 12.5 MHz after reset.
const CPU_HZ: u32 = 12_500_000;
/// SysTick period.
const SYSTICK_MS: u64 = 10;

struct SysTickDriver;

static TICKS: Mutex<Cell<u64>> = Mutex::new(Cell::new(0));
static QUEUE: Mutex<RefCell<Queue>> = Mutex::new(RefCell::new(Queue::new()));

impl embassy_time_driver::Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| TICKS.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        // expirations are checked on every SysTick: no alarm to program
        critical_section::with(|cs| {
            QUEUE.borrow(cs).borrow_mut().schedule_wake(at, waker);
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver);

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let t = TICKS.borrow(cs);
        let now = t.get() + SYSTICK_MS;
        t.set(now);
        QUEUE.borrow(cs).borrow_mut().next_expiration(now); // wakes the expired timers
    });
}

/// Starts SysTick (10 ms period, interrupt on).
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(CPU_HZ / 1000 * SYSTICK_MS as u32 - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Milliseconds since [`start`].
pub fn now_ms() -> u64 {
    embassy_time::Instant::now().as_millis()
}

/// The clock minimq 0.10 needs (embedded-time 0.12), on the same time base.
#[derive(Clone, Copy, Default)]
pub struct MinimqClock;

impl embedded_time::Clock for MinimqClock {
    type T = u32;
    const SCALING_FACTOR: embedded_time::rate::Fraction = embedded_time::rate::Fraction::new(1, 1000);

    fn try_now(&self) -> Result<embedded_time::Instant<Self>, embedded_time::clock::Error> {
        Ok(embedded_time::Instant::new(now_ms() as u32))
    }
}
