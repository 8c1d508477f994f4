//! Board support for the two firmwares (`src/bin/`): QEMU's `lm3s6965evb` (Cortex-M3,
//! 256 KiB flash, 64 KiB RAM) with
//!
//! * UART0 (first `-serial`): the log, one line per event;
//! * UART1 (second `-serial`): the modem link to bg96-sim;
//! * SysTick: the embassy-time driver, 10 ms period ([`time`]);
//! * semihosting: the command line (broker host and port) and the exit status of QEMU.
#![no_std]

pub mod modem_uart;
pub mod time;
pub mod uart;

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

use cortex_m_semihosting::{debug, nr};
// The interrupt vector table (cortex-m-rt's `device` feature) and the `Interrupt` enum.
pub use lm3s6965 as pac;
use uart::{UART0, UART1, Uart};

/// The log UART.
pub const LOG: Uart = Uart::new(UART0);
/// The modem UART.
pub const MODEM: Uart = Uart::new(UART1);

/// Writes one line to the log UART, prefixed with the uptime in milliseconds.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        $crate::log_line(format_args!($($arg)*))
    };
}

#[doc(hidden)]
pub fn log_line(args: core::fmt::Arguments<'_>) {
    let mut log = LOG;
    let ms = time::now_ms();
    let _ = write!(log, "[{:>4}.{:03}] ", ms / 1000, ms % 1000);
    let _ = log.write_fmt(args);
    let _ = log.write_str("\n");
}

/// Switches the UARTs and SysTick on and paints the free stack (see [`stack_used`]). Call
/// first.
pub fn init() {
    paint_stack();
    let cp = cortex_m::Peripherals::take().expect("peripherals taken twice");
    LOG.init();
    MODEM.init();
    time::start(cp.SYST);
}

/// Ends the QEMU run with a success or failure exit status (semihosting `SYS_EXIT`), after
/// logging the peak stack use.
pub fn exit(success: bool) -> ! {
    log!("stack used: {} bytes", stack_used());
    debug::exit(if success { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
    // only reached without semihosting (real hardware, or QEMU without `-semihosting`)
    loop {
        cortex_m::asm::wfi();
    }
}

/// Where the MQTT broker is, as seen from inside the modem: bg96-sim connects to the host's
/// loopback, and resolves `localhost` itself.
#[derive(Clone, Copy)]
pub struct Broker<'a> {
    /// Host name or address (`host=`), resolved through the modem's DNS.
    pub host: &'a str,
    /// TCP port (`port=`).
    pub port: u16,
}

/// Reads the broker's host and port from the semihosting command line
/// (`-semihosting-config enable=on,target=native,arg=FIRMWARE,arg=host=NAME,arg=port=N`):
/// tokens `host=NAME` and `port=N`; defaults `localhost` and 1883.
pub fn broker_from_cmdline(buf: &mut [u8]) -> Broker<'_> {
    let line = cmdline(buf);
    let mut broker = Broker { host: "localhost", port: 1883 };
    for token in line.split_ascii_whitespace() {
        if let Some(h) = token.strip_prefix("host=") {
            broker.host = h;
        } else if let Some(p) = token.strip_prefix("port=").and_then(|p| p.parse().ok()) {
            broker.port = p;
        }
    }
    broker
}

/// The semihosting command line (`SYS_GET_CMDLINE`), or `""` if there is none.
fn cmdline(buf: &mut [u8]) -> &str {
    let mut block = [buf.as_mut_ptr() as usize, buf.len()];
    // SAFETY: SYS_GET_CMDLINE writes at most `block[1]` bytes into `buf` and the length it
    // wrote into `block[1]`; both outlive the call.
    let status = unsafe { cortex_m_semihosting::syscall1(nr::GET_CMDLINE, block.as_mut_ptr() as usize) };
    if status != 0 {
        return "";
    }
    let len = block[1].min(buf.len());
    core::str::from_utf8(&buf[..len]).unwrap_or("")
}

/// Fills `buf` with the test message: AT framing first (`\r\nOK\r\n`, a `> ` prompt, a
/// `+QIURC`, which must travel as data), then every byte value, shifted by `seed`.
pub fn fill_payload(buf: &mut [u8], seed: u8) {
    const FRAMING: &[u8] = b"\r\nOK\r\n> +QIURC: \"closed\",0\r\n";
    for (i, b) in buf.iter_mut().enumerate() {
        *b = FRAMING.get(i).copied().unwrap_or((i as u8).wrapping_mul(7).wrapping_add(seed));
    }
}

const STACK_PAINT: u32 = 0x5AC3_5AC3;

unsafe extern "C" {
    /// The lowest address the stack may grow to (cortex-m-rt: the end of the statics).
    static _stack_end: u32;
    /// The top of the stack (cortex-m-rt: the end of RAM).
    static _stack_start: u32;
}

/// Fills the stack below the caller's frame (with a margin) with a pattern.
fn paint_stack() {
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let here = cortex_m::register::msp::read() as usize - 256;
    let mut p = bottom;
    while p < here {
        // SAFETY: [bottom, here) is stack that nothing uses yet: below this frame and above the
        // statics.
        unsafe { core::ptr::write_volatile(p as *mut u32, STACK_PAINT) };
        p += 4;
    }
}

/// The deepest the stack has been since [`init`], in bytes: from the top of RAM down to the
/// lowest word whose paint was overwritten.
pub fn stack_used() -> usize {
    let bottom = core::ptr::addr_of!(_stack_end) as usize;
    let top = core::ptr::addr_of!(_stack_start) as usize;
    let mut p = bottom;
    // SAFETY: reads of stack words between the statics and the current frame.
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == STACK_PAINT {
        p += 4;
    }
    top - p
}

static PANICKED: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    cortex_m::interrupt::disable();
    if !PANICKED.swap(true, Ordering::Relaxed) {
        log!("FAILED: panic: {}", info);
    }
    exit(false)
}

#[cortex_m_rt::exception]
unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
    log!("FAILED: hard fault at pc={:#010x}", frame.pc());
    exit(false)
}
