//! Baseline of the size probe: the same board, the same user buffer and the same use of the
//! UART and the clock, without the stack. The probe minus this baseline is what the crate
//! itself adds to a firmware (the benchmark's `flash_crate_bytes` and `ram_crate_bytes`).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use embedded_io::{Read, ReadReady, Write};
use panic_halt as _;
use quectel_bg96::clock::Clock;

#[path = "../board.rs"]
mod board;

#[entry]
fn main() -> ! {
    let mut uart = board::Uart;
    let mut buf = [0u8; 512];
    loop {
        let started = board::Ticks.now_ms();
        if matches!(uart.read_ready(), Ok(true))
            && let Ok(n) = uart.read(&mut buf)
        {
            let _ = uart.write_all(buf.get(..n).unwrap_or(&[]));
        }
        if started == 0 {
            cortex_m::asm::wfi();
        }
    }
}
