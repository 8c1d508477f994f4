//! The modem link (UART1) in the two shapes the driver takes.
//!
//! * [`PolledSerial`] for the blocking stack: `embedded_io::{Read, ReadReady, Write}` straight
//!   on the PL011 FIFO. The stack asks `read_ready` before it reads, so polling the FIFO is
//!   enough: no interrupt, no buffer. (The blocking stack spins while it waits anyway.)
//! * [`AsyncRx`] / [`AsyncTx`] for the async stack: the UART1 receive interrupt moves bytes
//!   from the FIFO into a 256-byte [`Pipe`] and wakes the runner; when the pipe is full the
//!   interrupt is masked and bytes wait in the FIFO (QEMU then stops reading the simulator's
//!   socket, so nothing is lost) until the runner has read, which unmasks it again.
//!   Transmission writes the FIFO directly: QEMU's PL011 sends each byte at once, so the
//!   FIFO never fills and a write never waits.

use core::convert::Infallible;

use cortex_m::peripheral::NVIC;
use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::pipe::Pipe;

use crate::MODEM;
use crate::pac::{Interrupt, interrupt};

/// The modem UART, polled (blocking stack).
pub struct PolledSerial;

impl embedded_io::ErrorType for PolledSerial {
    type Error = Infallible;
}

impl embedded_io::ReadReady for PolledSerial {
    fn read_ready(&mut self) -> Result<bool, Infallible> {
        Ok(!MODEM.rx_empty())
    }
}

impl embedded_io::Read for PolledSerial {
    /// Waits for the first byte, then takes what the FIFO holds (up to `buf.len()`).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        for slot in buf.iter_mut() {
            let b = if n == 0 {
                loop {
                    if let Some(b) = MODEM.try_read() {
                        break b;
                    }
                }
            } else {
                match MODEM.try_read() {
                    Some(b) => b,
                    None => break,
                }
            };
            *slot = b;
            n += 1;
        }
        Ok(n)
    }
}

impl embedded_io::Write for PolledSerial {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        MODEM.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}

/// Bytes received on UART1, from the interrupt to the runner.
static RX: Pipe<CriticalSectionRawMutex, 256> = Pipe::new();

/// Starts the interrupt-driven receive path and returns the two halves for the async stack.
pub fn split_async() -> (AsyncRx, AsyncTx) {
    MODEM.enable_rx_irq();
    // SAFETY: the UART1 handler below only touches UART1 and the pipe; no priority-based
    // critical section depends on this interrupt being masked.
    unsafe { NVIC::unmask(Interrupt::UART1) };
    (AsyncRx(()), AsyncTx(()))
}

#[interrupt]
fn UART1() {
    while !MODEM.rx_empty() {
        if RX.is_full() {
            // no room: leave the rest in the FIFO and stop interrupting until the runner
            // has drained the pipe (AsyncRx::read unmasks)
            MODEM.disable_rx_irq();
            break;
        }
        if let Some(b) = MODEM.try_read() {
            let _ = RX.try_write(&[b]);
        }
    }
    MODEM.clear_errors();
}

/// Receive half of the modem UART (async stack).
pub struct AsyncRx(());

/// Transmit half of the modem UART (async stack).
pub struct AsyncTx(());

impl embedded_io_async::ErrorType for AsyncRx {
    type Error = Infallible;
}

impl embedded_io_async::Read for AsyncRx {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        let n = RX.read(buf).await;
        // room again: let the interrupt move what waits in the FIFO
        MODEM.enable_rx_irq();
        Ok(n)
    }
}

impl embedded_io_async::ErrorType for AsyncTx {
    type Error = Infallible;
}

impl embedded_io_async::Write for AsyncTx {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        MODEM.write(buf);
        Ok(buf.len())
    }

    async fn flush(&mut self) -> Result<(), Infallible> {
        Ok(())
    }
}
