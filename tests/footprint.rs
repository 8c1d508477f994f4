//! The footprint budget of issue 8, kept by CI: `firmware/size-probe` (a `thumbv7em-none-eabihf`
//! firmware that brings the modem up and uses the blocking TCP client, UDP client and DNS;
//! opt-level "z", LTO) must fit in 24 KiB of flash and 4 KiB of static RAM. The figures are
//! read from its ELF, as `cargo bench --bench wire` prints them (`flash_text_bytes`,
//! `ram_static_bytes`); this test turns them into a budget, so that a change that pushes the
//! footprint over fails here instead of surfacing at the next benchmark run.
//!
//! Skipped, with a message, where the `thumbv7em-none-eabihf` target is missing, unless
//! `BG96_FIRMWARE_REQUIRED=1` (CI sets it), which makes a missing target a failure.

#[path = "support/firmware.rs"]
mod firmware;

use firmware::SIZE_PROBE_TARGET as TARGET;

/// Flash budget: 24 KiB (vector table, code and read-only data of the whole firmware).
const FLASH_BUDGET: u64 = 24 * 1024;
/// Static RAM budget: 4 KiB (the whole stack object, in `.bss`).
const RAM_BUDGET: u64 = 4 * 1024;

#[test]
fn the_size_probe_fits_the_flash_and_ram_budget() {
    if !firmware::target_installed(TARGET) {
        let why = format!("the {TARGET} target is not installed (rustup target add {TARGET})");
        assert!(std::env::var("BG96_FIRMWARE_REQUIRED").as_deref() != Ok("1"), "BG96_FIRMWARE_REQUIRED=1 but {why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    let ((flash, ram), (base_flash, base_ram)) = firmware::size_probe_sizes(&[]).unwrap_or_else(|why| panic!("{why}"));
    eprintln!(
        "size-probe: flash {flash} B (budget {FLASH_BUDGET}), static RAM {ram} B (budget {RAM_BUDGET}); \
         the crate's share: flash {} B, RAM {} B",
        flash.saturating_sub(base_flash),
        ram.saturating_sub(base_ram)
    );
    // the probe really contains the stack: far more than the bare board
    assert!(flash > base_flash + 8 * 1024, "the probe ({flash} B) is hardly bigger than its baseline ({base_flash} B)");
    assert!(flash <= FLASH_BUDGET, "flash {flash} B is over the {FLASH_BUDGET} B budget");
    assert!(ram <= RAM_BUDGET, "static RAM {ram} B is over the {RAM_BUDGET} B budget");
}
