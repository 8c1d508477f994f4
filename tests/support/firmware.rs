//! Building and measuring the firmwares (shared by `tests/qemu.rs`, `tests/footprint.rs` and
//! `benches/wire.rs`): whether a Rust target is installed, the size probe's build, and the
//! footprint of an ELF.
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Flash and static RAM of a firmware, in bytes.
pub type Footprint = (u64, u64);

/// Whether the standard library of `target` is installed (`rustup target add <target>`).
pub fn target_installed(target: &str) -> bool {
    let Ok(out) = Command::new("rustc").args(["--print", "sysroot"]).output() else { return false };
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Path::new(&sysroot).join("lib/rustlib").join(target).exists()
}

/// The size probe's target.
pub const SIZE_PROBE_TARGET: &str = "thumbv7em-none-eabihf";

/// Builds `firmware/size-probe` (with its default features, or with `extra` cargo arguments)
/// and returns the flash and static RAM of the probe and of its baseline
/// (`src/bin/baseline.rs`: the same board without the stack), as [`elf_sizes`] counts them.
///
/// It builds in its own target directory, `target/size-probe` (an outer `cargo test` or
/// `cargo bench` holds the lock of the workspace's), so the benchmark and the footprint test
/// reuse each other's build.
pub fn size_probe_sizes(extra: &[&str]) -> Result<(Footprint, Footprint), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target_dir = root.join("target/size-probe");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--locked", "--quiet", "--bins"])
        .args(extra)
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(root.join("firmware/size-probe"))
        .status()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("firmware/size-probe did not build ({status})"));
    }
    let bin_dir = target_dir.join(SIZE_PROBE_TARGET).join("release");
    let sizes = |bin: &str| {
        let elf = std::fs::read(bin_dir.join(bin)).map_err(|e| format!("read {bin}: {e}"))?;
        elf_sizes(&elf).ok_or_else(|| format!("{bin} is not a 32-bit little-endian ELF"))
    };
    Ok((sizes("size-probe")?, sizes("baseline")?))
}

/// Flash (allocated, non-writable sections plus initialised data) and static RAM (writable
/// allocated sections) of a 32-bit little-endian ELF, as `size` counts them.
pub fn elf_sizes(elf: &[u8]) -> Option<Footprint> {
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at = |o: usize| elf.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
    if elf.get(..5)? != b"\x7fELF\x01" {
        return None;
    }
    let shoff = u32_at(0x20)? as usize;
    let shentsize = u16_at(0x2e)? as usize;
    let shnum = u16_at(0x30)? as usize;
    let (mut flash, mut ram) = (0u64, 0u64);
    for i in 0..shnum {
        let sh = shoff + i * shentsize;
        let kind = u32_at(sh + 4)?;
        let flags = u32_at(sh + 8)?;
        let size = u64::from(u32_at(sh + 0x14)?);
        const ALLOC: u32 = 2;
        const WRITE: u32 = 1;
        const NOBITS: u32 = 8;
        if flags & ALLOC == 0 {
            continue;
        }
        if flags & WRITE == 0 {
            flash += size;
        } else {
            ram += size;
            if kind != NOBITS {
                flash += size; // initialised data is copied from flash
            }
        }
    }
    Some((flash, ram))
}
