//! Footprint of a firmware ELF (shared by `tests/qemu.rs` and `benches/wire.rs`).

/// Flash (allocated, non-writable sections plus initialised data) and static RAM (writable
/// allocated sections) of a 32-bit little-endian ELF, as `size` counts them.
pub fn elf_sizes(elf: &[u8]) -> Option<(u64, u64)> {
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
