//! The (imaginary) board both firmwares run on: a memory-mapped UART and a millisecond
//! counter. Shared by the size probe and its baseline, so that their difference is the
//! crate's own footprint.

use quectel_bg96::clock::Clock;

/// A UART at a made-up address (the probe is never run).
pub struct Uart;

const DATA: *mut u32 = 0x4000_c000 as *mut u32;
const FLAGS: *const u32 = 0x4000_c018 as *const u32;

/// The UART's (never reported) error.
#[derive(Debug)]
pub struct UartError;
impl core::fmt::Display for UartError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("uart")
    }
}
impl core::error::Error for UartError {}
impl embedded_io::Error for UartError {
    fn kind(&self) -> embedded_io::ErrorKind {
        embedded_io::ErrorKind::Other
    }
}
impl embedded_io::ErrorType for Uart {
    type Error = UartError;
}
impl embedded_io::Read for Uart {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, UartError> {
        let mut n = 0;
        for b in buf.iter_mut() {
            // SAFETY: a memory-mapped register of the (imaginary) UART
            if unsafe { FLAGS.read_volatile() } & 0x10 != 0 {
                break;
            }
            *b = unsafe { DATA.read_volatile() } as u8;
            n += 1;
        }
        Ok(n)
    }
}
impl embedded_io::ReadReady for Uart {
    fn read_ready(&mut self) -> Result<bool, UartError> {
        Ok(unsafe { FLAGS.read_volatile() } & 0x10 == 0)
    }
}
impl embedded_io::Write for Uart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, UartError> {
        for &b in buf {
            while unsafe { FLAGS.read_volatile() } & 0x20 != 0 {}
            unsafe { DATA.write_volatile(u32::from(b)) };
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), UartError> {
        Ok(())
    }
}

/// Milliseconds from the SysTick-style counter of the (imaginary) board.
pub struct Ticks;
impl Clock for Ticks {
    fn now_ms(&self) -> u64 {
        u64::from(unsafe { (0xE000_E018 as *const u32).read_volatile() })
    }
}
