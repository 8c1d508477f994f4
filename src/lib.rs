//! Quectel BG96 network stack (work in progress).
#![no_std]
#![forbid(unsafe_code)]

#[macro_use]
mod fmt;

pub mod asynch;
pub mod blocking;
pub mod channel;
pub mod clock;
pub mod commands;
pub mod config;
pub mod core;
pub mod error;
pub mod ingress;
pub mod modem;
pub mod recovery;
pub mod ring;
pub mod socket;
pub mod urc;
pub mod wire;

pub use error::{Error, ErrorCode, Result};
