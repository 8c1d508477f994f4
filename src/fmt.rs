//! Logging shim: the crate logs through `log` or `defmt` when the feature of that name is on,
//! and compiles every log statement away otherwise.
#![allow(unused_macros)]

#[cfg(all(feature = "log", feature = "defmt"))]
compile_error!("features `log` and `defmt` are mutually exclusive: pick one");

macro_rules! trace {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")] ::log::trace!($($arg)*);
        #[cfg(feature = "defmt")] ::defmt::trace!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))] { if false { let _ = ::core::format_args!($($arg)*); } }
    }};
}
macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")] ::log::debug!($($arg)*);
        #[cfg(feature = "defmt")] ::defmt::debug!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))] { if false { let _ = ::core::format_args!($($arg)*); } }
    }};
}
macro_rules! info {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")] ::log::info!($($arg)*);
        #[cfg(feature = "defmt")] ::defmt::info!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))] { if false { let _ = ::core::format_args!($($arg)*); } }
    }};
}
macro_rules! warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "log")] ::log::warn!($($arg)*);
        #[cfg(feature = "defmt")] ::defmt::warn!($($arg)*);
        #[cfg(not(any(feature = "log", feature = "defmt")))] { if false { let _ = ::core::format_args!($($arg)*); } }
    }};
}

/// Displays bytes from the modem as escaped ASCII in logs (`\r`, `\n`, `\xNN`).
pub(crate) struct Bytes<'a>(pub &'a [u8]);

impl core::fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for &b in self.0 {
            match b {
                b'\r' => f.write_str("\\r")?,
                b'\n' => f.write_str("\\n")?,
                0x20..=0x7e => core::fmt::Write::write_char(f, b as char)?,
                _ => write!(f, "\\x{b:02x}")?,
            }
        }
        Ok(())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Bytes<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(f, "{=[u8]:a}", self.0)
    }
}
