//! A network stack on the Quectel BG96 LTE-M/NB-IoT modem: [embedded-nal] 0.9 (blocking) and
//! [embedded-nal-async] 0.9 (async) over the modem's TCP/IP AT commands, so that MQTT and HTTP
//! crates (minimq, reqwless, rust-mqtt, ...) run over the modem unchanged.
//!
//! `no_std`, no allocation, no `unsafe`; every buffer is bounded and nothing the modem or the
//! network sends can make it panic.
//!
//! # Two fronts, one engine
//!
//! * [`blocking::Bg96`] works single-threaded with no interrupts, threads or executor: it
//!   polls the serial port itself. `&Bg96` implements `TcpClientStack`, `TcpFullStack`,
//!   `UdpClientStack`, `UdpFullStack` and `Dns`.
//! * [`asynch`] follows embassy-net's runner + stack pattern: a [`asynch::Runner`] task reads
//!   the modem, the [`asynch::Stack`] handle is shared by reference and implements
//!   `TcpConnect`, `UdpStack` and `Dns`.
//!
//! Both sit on one byte-exact [`ingress`] and one sans-I/O engine ([`core`]), and share the
//! procedures of [`modem`] (bring-up, recovery), written once and compiled for each front
//! (`async fn`s for the async one, plain calls for the blocking one, which so carries no
//! futures). Time comes only from the [`clock::Clock`] trait.
//!
//! # Blocking
//!
//! ```no_run
//! # fn run<S>(serial: S) -> Result<(), quectel_bg96::Error>
//! # where S: embedded_io::Read + embedded_io::ReadReady + embedded_io::Write {
//! use embedded_nal::TcpClientStack;
//! use quectel_bg96::{blocking::Bg96, clock::Clock, config::Config};
//!
//! /// Milliseconds since boot, from the board's timer.
//! struct Millis;
//! impl Clock for Millis {
//!     fn now_ms(&self) -> u64 {
//!         0 // e.g. a SysTick counter
//!     }
//! }
//!
//! // `serial`: the UART to the modem (embedded-io `Read + ReadReady + Write`)
//! let modem = Bg96::new(serial, Millis, Config::new("internet")?);
//! let info = modem.bring_up()?; // the manual's Figure 1: SIM, registration, context
//!
//! let mut stack = &modem; // a cheap handle; minimq 0.10 takes it as its TcpClientStack
//! let mut socket = stack.socket()?;
//! nb::block!(stack.connect(&mut socket, "93.184.216.34:80".parse().unwrap()))?;
//! nb::block!(stack.send(&mut socket, b"GET / HTTP/1.0\r\n\r\n"))?;
//! let mut buf = [0u8; 512];
//! let n = nb::block!(stack.receive(&mut socket, &mut buf))?;
//! stack.close(socket)?;
//! # let _ = (info, n); Ok(()) }
//! ```
//!
//! # Async
//!
//! ```no_run
//! # async fn run<R, W, C>(rx: R, tx: W, clock: C) -> Result<(), quectel_bg96::Error>
//! # where R: embedded_io_async::Read, W: embedded_io_async::Write, C: quectel_bg96::clock::AsyncClock {
//! use embedded_io_async::{Read, Write};
//! use embedded_nal_async::TcpConnect;
//! use quectel_bg96::asynch::{self, Resources};
//! use quectel_bg96::config::Config;
//!
//! // in firmware: `static RESOURCES: StaticCell<Resources<..>>`
//! let resources = Resources::new(tx, clock, Config::new("internet")?);
//! let (stack, runner) = asynch::new(&resources, rx);
//! // spawn `runner.run()` as its own task; here it runs beside the application
//! let app = async {
//!     stack.bring_up().await?;
//!     let mut conn = stack.connect("93.184.216.34:80".parse().unwrap()).await?;
//!     conn.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
//!     let mut buf = [0u8; 512];
//!     let n = conn.read(&mut buf).await?; // Ok(0) at the end of the stream
//!     Ok::<usize, quectel_bg96::Error>(n)
//! };
//! match embassy_futures::select::select(runner.run(), app).await {
//!     embassy_futures::select::Either::Second(r) => { r?; }
//!     embassy_futures::select::Either::First(never) => match never {},
//! }
//! # Ok(()) }
//! ```
//!
//! # Which trait call becomes which AT command
//!
//! | Trait call | AT commands |
//! |---|---|
//! | `TcpClientStack::socket` | none (at most 12 handles) |
//! | `TcpClientStack::connect` | `AT+QIOPEN=<cid>,<id>,"TCP","<ip>",<port>,0,0`; `WouldBlock` until `+QIOPEN: <id>,0` |
//! | `TcpClientStack::send` | `AT+QISEND=<id>,<len>` (≤ 1460 each), `> `, payload, `SEND OK`; `SEND FAIL` = `WouldBlock` |
//! | `TcpClientStack::receive` | nothing until `+QIURC: "recv",<id>`; then `AT+QIRD=<id>,<len>` (≤ 1500) |
//! | `TcpClientStack::close` | `AT+QICLOSE=<id>` |
//! | `TcpFullStack::bind` | none (records the port) |
//! | `TcpFullStack::listen` | `AT+QIOPEN=<cid>,<id>,"TCP LISTENER","127.0.0.1",0,<port>,0` |
//! | `TcpFullStack::accept` | nothing until `+QIURC: "incoming",<id>,<server>,<ip>,<port>` |
//! | `UdpClientStack::connect` | `AT+QIOPEN=<cid>,<id>,"UDP","<ip>",<port>,0,0` |
//! | `UdpClientStack::send` | `AT+QISEND=<id>,<len>` (one datagram, ≤ 1460) |
//! | `UdpClientStack::receive` | `AT+QIRD=<id>,<len>` (`"UDP"`) or `AT+QIRD=<id>` (`"UDP SERVICE"`: one whole datagram with its sender) |
//! | `UdpFullStack::bind` | `AT+QIOPEN=<cid>,<id>,"UDP SERVICE","127.0.0.1",0,<port>,0` |
//! | `UdpFullStack::send_to` | `AT+QISEND=<id>,<len>,"<ip>",<port>` |
//! | `Dns::get_host_by_name` | `AT+QIDNSGIP=<cid>,"<name>"`, then `+QIURC: "dnsgip"` |
//! | `Dns::get_host_by_address` | none: [`Error::NotSupported`] (the BG96 has no reverse DNS) |
//! | `TcpConnect::connect` | as `TcpClientStack::connect`, awaiting `+QIOPEN` |
//! | connection `read` / `write` / drop | as `receive` / `send`; drop queues `AT+QICLOSE` to the runner |
//! | `UdpStack::connect_from` | `"UDP"` |
//! | `UdpStack::bind_single` / `bind_multiple` | `"UDP SERVICE"` (the modem has one address per context: both are the same) |
//!
//! Every other command of the manual has a typed struct in [`commands`] and a method on the
//! stacks: contexts (`activate_context`, `deactivate_context`, `contexts`), `ping`,
//! `sync_time` (NTP; both behind default features), `dns_servers`/`set_dns_servers`,
//! `configure` (`AT+QICFG`), `set_payload_echo` (`AT+QISDE`), `send_hex` (`AT+QISENDEX`),
//! `send_counters` and `read_counters` (`AT+QISEND=<id>,0`, `AT+QIRD=<id>,0`), `socket_status`
//! (`AT+QISTATE`), `last_error` (`AT+QIGETERROR`), access modes (`enable_direct_push`,
//! `enter_transparent`, `resume_transparent`: `AT+QISWTMD`, `ATO`, `+++`; behind default
//! features), and `command()` for any
//! [`commands::Stateless`] command.
//!
//! # Data access modes
//!
//! Buffer access mode is the default. Direct push ([`blocking::Bg96::enable_direct_push`])
//! saves the `AT+QIRD` round trip and falls back to buffer mode before the host buffer it is
//! given overflows. Transparent mode ([`blocking::Bg96::enter_transparent`],
//! [`asynch::TcpConnection::transparent`]) makes the serial port one connection's raw byte
//! stream. See [`ingress`] for how payload is told from protocol: by count, never by content.
//!
//! # Recovery
//!
//! The manual's Figure 1 is built in: the manual's timeouts per command, re-activation after
//! five failed opens, reboots (with the back-off policy) when `AT+QIACT`, `AT+QIDEACT` or
//! `AT+QICLOSE` go unanswered, ACK supervision, and a new bring-up when the modem restarts by
//! itself. See [`recovery`].
//!
//! A send whose `> ` prompt does not come in time is still completed, because the modem may be
//! waiting for the payload (the prompt was lost on the line or is late) and would otherwise take
//! the next command line for payload: with the payload itself when it cannot run a command in
//! command mode (it holds no `AT` and no `A/`), so the send may yet succeed; else with CRs
//! (empty lines to a modem in command mode), and the send fails with [`Error::Timeout`]. A
//! connection whose send did not complete is given up: further sends fail with
//! [`Error::Closed`], since the peer may have received part of the payload or filler.
//!
//! # Not supported, and why
//!
//! * Reverse DNS: the BG96 has none.
//! * Sending zero-length UDP datagrams: `AT+QISEND` takes 1–1460 bytes (receiving them works).
//! * `AT+QICFG` hex data formats and view mode 1: the stack reads text data with header and
//!   data on separate lines; [`blocking::Bg96::configure`] refuses them.
//! * PPP, SSL/TLS in the modem, SMS, GNSS: outside the TCP/IP AT command set.
//!
//! # Features
//!
//! Default features: `ipv6`, `ping`, `ntp`, `transparent`, `direct-push`, `server`. A firmware
//! that does not use them saves flash and RAM with `default-features = false` (the benchmark's
//! size probe, a TCP + UDP + DNS client, enables `ipv6` only).
//!
//! * `ipv6`: IPv6 addresses in commands, answers and URCs. Without it an IPv6 address to
//!   connect to is [`Error::NotSupported`] and IPv6 addresses in answers are not parsed
//!   (about 1 KB of flash).
//! * `ping`: `ping` on both stacks (`AT+QPING`) and the `+QPING` results (about 0.7 KB of
//!   flash and 280 B of RAM).
//! * `ntp`: `sync_time` on both stacks (`AT+QNTP`) and the `+QNTP` result (about 0.65 KB of
//!   flash). Without `ping` or `ntp`, a `+QPING`/`+QNTP` line is an unknown URC (logged and
//!   dropped).
//! * `transparent`: transparent access mode (`enter_transparent`/`resume_transparent`,
//!   [`asynch::TcpConnection::transparent`]): the ingress's raw-data state with its
//!   `NO CARRIER` watch and the bytes carried over when the mode ends (about 1.4 KB of flash
//!   in a blocking client).
//! * `direct-push`: direct push access mode (`enable_direct_push` on both stacks): the
//!   ingress's `+QIURC: "recv",<id>,<len>` data frames and the reads from the push buffers
//!   (about 1.1 KB of flash in a blocking client).
//!
//!   Without `transparent` or `direct-push`, asking for the mode (also through
//!   [`commands::AccessMode`] in an open) is [`Error::NotSupported`]; every socket uses buffer
//!   access mode (`AT+QIRD`), and a `+QIURC: "recv"` line never frames data.
//! * `server`: the server side, `"TCP LISTENER"` with its incoming connections and
//!   `"UDP SERVICE"` (`TcpFullStack`/`UdpFullStack` on the blocking stack,
//!   `UdpStack::bind_single`/`bind_multiple` on the async one; about 0.4 KB of flash in a
//!   blocking client). Without it, `listen` and the binds return [`Error::NotSupported`] and an
//!   `incoming` URC is an unknown one.
//! * `log`: log through the `log` facade.
//! * `defmt`: log through `defmt` (not together with `log`).
//! * `embassy-time`: `clock::EmbassyClock`, the stack's clock on embassy-time.
//!
//! [embedded-nal]: https://docs.rs/embedded-nal/0.9
//! [embedded-nal-async]: https://docs.rs/embedded-nal-async/0.9
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

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
