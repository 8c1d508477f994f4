//! Minimal raw-register driver for the LM3S6965's UARTs (ARM PL011) as QEMU emulates them.
//!
//! QEMU wires its first `-serial` to UART0, the second to UART1. Baud rates are not emulated:
//! bytes move as fast as the emulation goes, and QEMU never drops received bytes (it stops
//! reading the host side while the 16-byte receive FIFO is full), so there is no flow control
//! and no overrun to handle here.

use core::ptr::{read_volatile, write_volatile};

/// UART0 (IRQ 5): the first `-serial`.
pub const UART0: usize = 0x4000_C000;
/// UART1 (IRQ 6): the second `-serial`.
pub const UART1: usize = 0x4000_D000;

const DR: usize = 0x000;
const FR: usize = 0x018;
const IBRD: usize = 0x024;
const FBRD: usize = 0x028;
const LCRH: usize = 0x02C;
const CTL: usize = 0x030;
const IM: usize = 0x038;
const ICR: usize = 0x044;

const FR_TXFF: u32 = 1 << 5;
const FR_RXFE: u32 = 1 << 4;
/// Receive and receive-timeout interrupts, plus overrun.
const INT_RX: u32 = (1 << 4) | (1 << 6) | (1 << 10);
/// The error interrupt bits (overrun, break, parity, framing).
const INT_ERRORS: u32 = 0x780;

const SYSCTL_RCGC1: usize = 0x400F_E104;

/// One PL011 UART, by base address.
#[derive(Clone, Copy)]
pub struct Uart {
    base: usize,
}

impl Uart {
    /// The UART at `base` ([`UART0`] or [`UART1`]).
    pub const fn new(base: usize) -> Self {
        Uart { base }
    }

    #[inline(always)]
    fn rd(&self, off: usize) -> u32 {
        // SAFETY: a memory-mapped PL011 register of this board.
        unsafe { read_volatile((self.base + off) as *const u32) }
    }

    #[inline(always)]
    fn wr(&self, off: usize, v: u32) {
        // SAFETY: a memory-mapped PL011 register of this board.
        unsafe { write_volatile((self.base + off) as *mut u32, v) }
    }

    /// Clock on, 115200 8N1, FIFOs on, receiver and transmitter on. (QEMU ignores the baud
    /// rate; it is set as real hardware needs it.)
    pub fn init(&self) {
        let n = (self.base - UART0) / 0x1000;
        // SAFETY: SYSCTL RCGC1, read-modify-write of this UART's clock-gate bit, before any
        // interrupt is enabled.
        unsafe {
            let r = read_volatile(SYSCTL_RCGC1 as *const u32);
            write_volatile(SYSCTL_RCGC1 as *mut u32, r | (1 << n));
        }
        self.wr(CTL, 0);
        self.wr(IBRD, 6); // 12.5 MHz / (16 * 115200) = 6.78
        self.wr(FBRD, 50);
        self.wr(LCRH, 0x70); // 8 bits, FIFOs enabled
        self.wr(CTL, (1 << 9) | (1 << 8) | 1); // RXE | TXE | UARTEN
    }

    /// Waits for room in the transmit FIFO and sends `b`.
    pub fn write_byte(&self, b: u8) {
        while self.rd(FR) & FR_TXFF != 0 {}
        self.wr(DR, u32::from(b));
    }

    /// Sends all of `bytes`.
    pub fn write(&self, bytes: &[u8]) {
        for &b in bytes {
            self.write_byte(b);
        }
    }

    /// Whether the receive FIFO is empty.
    pub fn rx_empty(&self) -> bool {
        self.rd(FR) & FR_RXFE != 0
    }

    /// A received byte, if the FIFO holds one.
    pub fn try_read(&self) -> Option<u8> {
        if self.rx_empty() { None } else { Some(self.rd(DR) as u8) }
    }

    /// Unmasks the receive interrupts.
    pub fn enable_rx_irq(&self) {
        self.wr(IM, INT_RX);
    }

    /// Masks the receive interrupts (received bytes then wait in the FIFO).
    pub fn disable_rx_irq(&self) {
        self.wr(IM, 0);
    }

    /// Clears the error interrupts. The receive interrupts are cleared by draining the FIFO
    /// instead: QEMU raises RX again only when the FIFO goes from empty to non-empty, so
    /// clearing it through ICR while bytes remain would strand them.
    pub fn clear_errors(&self) {
        self.wr(ICR, INT_ERRORS);
    }
}

impl core::fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        Uart::write(self, s.as_bytes());
        Ok(())
    }
}
