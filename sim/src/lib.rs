//! A Quectel BG96 simulator that speaks the TCP/IP AT command set byte for byte and carries
//! the data over real sockets on loopback.
//!
//! The simulated modem implements every command of the BG96 *TCP/IP AT Commands Manual*
//! (`AT+QICSGP`, `QIACT`, `QIDEACT`, `QIOPEN`, `QICLOSE`, `QISTATE`, `QISEND`, `QIRD`,
//! `QISENDEX`, `QISWTMD`, `QPING`, `QNTP`, `QIDNSCFG`, `QIDNSGIP`, `QICFG`, `QISDE`,
//! `QIGETERROR`) in all forms, the general commands a driver needs (`AT`, `ATE0/1`, `ATI`,
//! `AT+CMEE`, `AT+CPIN?`, `AT+CREG?`, `AT+CGREG?`, `AT+CEREG?`, `AT+QGMR`, `AT+QURCCFG`,
//! `AT+CFUN`, `AT+QPOWD`, `AT+IFC`, `AT&D`, `ATO`, `+++`, `AT+CCLK`), all three access modes,
//! and field behaviours of real modems (echo after boot, boot URCs, bare `ERROR`, deferred
//! results). `"TCP"` sockets are real [`std::net::TcpStream`]s, `"UDP"` real connected
//! [`std::net::UdpSocket`]s, `"TCP LISTENER"` listens on `127.0.0.1:<local_port>`,
//! `"UDP SERVICE"` binds `127.0.0.1:<local_port>`, and `AT+QNTP` sends a real SNTP request.
//! Names resolve through [`SimConfig::dns`], never through the internet.
//!
//! # Transports
//! - [`Simulator::spawn`]: an in-process duplex pipe; the [`HostPort`] implements
//!   `std::io::{Read, Write}`, `embedded_io::{Read, ReadReady, Write, WriteReady}` and
//!   `embedded_io_async::{Read, Write}` (waker-driven; works with any executor).
//! - [`Simulator::listen_tcp`]: the serial line over TCP (one client at a time).
//! - [`Simulator::pty`]: the serial line on a pseudo-terminal in raw mode.
//! - The `bg96-sim` binary wraps the last two (`--listen 127.0.0.1:0` or `--pty`).
//!
//! # Example
//! ```
//! use std::io::{Read, Write};
//! use bg96_sim::{Profile, SimConfig, Simulator};
//!
//! let (_sim, mut port) = Simulator::spawn(SimConfig::with_profile(Profile::Manual));
//! let mut rdy = [0u8; 7];
//! port.read_exact(&mut rdy).unwrap(); // "\r\nRDY\r\n"
//! port.write_all(b"AT+QIACT=1\r").unwrap();
//! let mut ok = [0u8; 6];
//! port.read_exact(&mut ok).unwrap();
//! assert_eq!(&ok, b"\r\nOK\r\n");
//! ```
//!
//! # UART model
//! With [`SimConfig::baud`] set, byte *i* in either direction is delivered at
//! `max(previous byte's time, time it was produced) + 10/baud` s, scheduled on an absolute
//! timeline (no drift). Host writes queue up to 64 KiB and then block, like hardware flow
//! control. Modem output waits for the host up to 1 MiB (beyond that it is dropped and
//! counted); direct-push and transparent data are held back while more than 64 KiB wait for
//! the host, so the simulator stops reading the host socket (TCP backpressure).
//! [`Simulator::stats`] counts bytes and commands, [`Simulator::wire_log`] keeps the last
//! 512 KiB of traffic with timestamps, and [`SimConfig::log`] writes it to a file.
//!
//! # Profiles
//! | | [`Profile::Manual`] | [`Profile::Field`] (default) | [`Profile::Lenient`] |
//! |---|---|---|---|
//! | echo after power-on | off | on | on |
//! | boot output | `RDY` | `RDY`, `APP RDY`, `+CPIN: READY`, `+QIND: SMS DONE`, `+QIND: PB DONE`; commands before `APP RDY` get `ERROR` | as field |
//! | TCP/IP errors with `AT+CMEE=1`/`2` | `+CME ERROR: <err>` / `+CME ERROR: <description>` | bare `ERROR` (cause in `AT+QIGETERROR`) | as field |
//! | deferred results (`+QIOPEN`, `dnsgip`, `+QPING`, `+QNTP`, `CONNECT`) | as soon as known | after [`SimConfig::deferred_delay`] | as field |
//! | `<AT_port>` in `+QISTATE` | `"usbmodem"` (as the manual's examples) | `"uart1"` | `"uart1"` |
//! | unknown write commands, unknown `QICFG` options | `ERROR` | `ERROR` | `OK` |
//! | unquoted string parameters | `ERROR` | `ERROR` | accepted |
//! | QIOPEN/QPING/QNTP/QIDNSGIP/QIDNSCFG without active context | error | error | work |
//!
//! # Fault injection
//! [`Simulator::close_from_peer`], [`Simulator::pdp_deactivate`], [`Simulator::reboot`],
//! [`Simulator::send_fail_next`], [`Simulator::delay_response`],
//! [`Simulator::drop_response`], [`Simulator::inject_urc`] (now, between two lines of a
//! response, or between the final result and a deferred result),
//! [`Simulator::set_output_chunking`], [`Simulator::emit_garbage`], [`Simulator::set_baud`].
//!
//! # Behaviour where the manual is silent or contradicts itself
//! Each choice below is deliberate; drivers should cope with the real modem's variants too.
//!
//! **Framing.** Results are `\r\n<result>\r\n`; information lines are
//! `\r\n<line1>\r\n<line2>\r\n` followed by `\r\nOK\r\n`. Echo returns each command byte as
//! received, including the terminating CR; a LF right after that CR is swallowed (not
//! echoed); backspace (0x08) edits; an empty line is ignored. Lines longer than 2048 bytes,
//! lines not starting with `AT`, unknown commands and `;`-concatenated commands answer
//! `ERROR`. The send prompt is `\r\n> ` without a line end.
//!
//! **Sending.** `AT+QISDE` defaults to 1 (payload echo on) in every profile, as on real
//! modems; the payload is echoed once the data phase ends, just before `SEND OK`. ESC cancels
//! a variable-length send: nothing is sent, the answer is `SEND FAIL` and `AT+QIGETERROR`
//! reports 571 "cancel send". More than 1460 bytes before Ctrl-Z: nothing is sent, `ERROR`
//! (552) after the Ctrl-Z. An empty variable-length send answers `SEND OK` (on UDP it sends
//! an empty datagram). A send that does not fit into the free part of
//! [`SimConfig::socket_tx_capacity`] answers `SEND FAIL` (the manual's meaning, §2.1.7).
//! `AT+QISENDEX` takes up to 512 *decoded* bytes (1024 hex digits); an empty hex string
//! answers `SEND FAIL`. "Acknowledged" bytes in `AT+QISEND=<id>,0` are bytes written to the
//! host socket. With `AT+QICFG="dataformat",1,x` the host types `2*<send_length>` hex digits;
//! with `x`=1 received data is shown as upper-case hex, lengths still count raw bytes.
//! `"viewmode",1` puts the data after a comma on the header line, for `QIRD` and direct push.
//!
//! **Receiving.** `AT+QIRD=<id>` without length reads up to 1500 bytes. A read of 0 bytes
//! is `\r\n+QIRD: 0\r\n\r\nOK\r\n` (no data line), also for a zero-length UDP datagram:
//! `+QIRD: 0,"<ip>",<port>`. UDP reads (client and service) return one datagram at a time;
//! when `<read_length>` truncates a datagram, its rest stays in the buffer and comes with the
//! next read (it is not discarded). Datagrams longer than 1500 bytes are truncated to 1500
//! on arrival. In buffer mode `+QIURC: "recv",<id>` fires when data arrives while the URC is
//! armed; it is re-armed when a read leaves the buffer empty (with `recvind` the length is
//! that of the arrival, i.e. one read of the host socket). Direct push emits one URC per
//! arrival, `\r\n+QIURC: "recv",<id>,<len>[,"<ip>",<port>]\r\n<data>\r\n`.
//!
//! **Opening.** Syntax and range errors answer `ERROR` (552). Other failures answer `OK`
//! followed by `+QIOPEN: <id>,<err>`: 563 (connectID in use), 561 (context not active),
//! 565 (name not in the table), 566 (connection refused or timed out after
//! [`SimConfig::connect_timeout`]), 574/556 (bind failed: port in use/other). In transparent
//! mode every failure answers `ERROR` with the code in `AT+QIGETERROR`. `"TCP LISTENER"` and
//! `"UDP SERVICE"` require `<local_port>`; 0 lets the OS pick one (an extension, visible in
//! `AT+QISTATE` and [`Simulator::open_sockets`]); they cannot be opened in transparent mode
//! (`ERROR`). A `"TCP"` client's `<local_port>` is not honoured (the OS picks); a `"UDP"`
//! client's is. Incoming connections get the highest free connectID (as in the manual's
//! example) and the listener's access mode (manual §2.1.4, chosen over §2.2.4, see
//! contradiction 2); with no free connectID the URC is `+QIURC: "incoming full"` and the
//! client's connection is closed.
//!
//! **Closing and state.** `AT+QICLOSE` on a connectID that is not open answers `OK`; its
//! `<timeout>` accepts 0-65535 (contradiction 6) and the close is immediate (queued TCP data
//! is still flushed). A remote close gives `+QIURC: "closed",<id>` (after all pushed data in
//! direct-push mode; `NO CARRIER` in transparent mode); the socket is then "closing" (4) and
//! its buffered data stays readable until `AT+QICLOSE`. `AT+QISTATE` reports state 1 while
//! connecting; for listeners and UDP services `<IP_address>` is [`SimConfig::context_ip`],
//! `<remote_port>` 0 and `<serverID>` their own connectID (as the manual's examples); for
//! clients `<serverID>` is 0. Empty listings are a bare `OK`.
//!
//! **Contexts.** Three contexts can be active (contradiction 5); a fourth, re-activating an
//! active one, or activating with `AT+CFUN` not 1 answers `ERROR` (561). No APN is needed
//! (573 is never reported). `AT+QIACT?` reports type 1 or 2 for an IPv4v6 context after the
//! family of `context_ip`. `AT+QIDEACT` closes the context's sockets without URCs. A network
//! deactivation ([`Simulator::pdp_deactivate`], `AT+CFUN=0/4`, `AT+CFUN=1,1`) reports
//! `+QIURC: "pdpdeact",<cid>`; its sockets' host sockets are closed, the slots stay
//! "closing" without a `closed` URC, a connect still pending reports 570.
//!
//! **DNS, PING, NTP.** `AT+QIDNSCFG` (defaults `"127.0.0.1","0.0.0.0"`), `AT+QIDNSGIP`,
//! `AT+QPING` and `AT+QNTP` need an active context (`ERROR` 561) except in the lenient
//! profile. `dnsgip` reports a TTL of 600; a second lookup while one is pending answers
//! `ERROR` (564). Pings are simulated: loopback addresses, `context_ip` and every address of
//! the name table answer with `+QPING: 0,"<ip>",32,<ms>,255` (the time is measured, about
//! `deferred_delay`) and the summary `+QPING: 0,<sent>,<rcvd>,<lost>,<min>,<max>,<avg>`;
//! other addresses time out after `<timeout>` seconds per request with `+QPING: 569` and the
//! final result `+QPING: 569`; unknown names give `+QPING: 565`. `AT+QNTP` queries the
//! server for real; the time zone is always `+00`, `<port>` defaults to 123 and
//! `<autosettime>` to 1; no answer within [`SimConfig::ntp_timeout`] gives `+QNTP: 569`.
//! A second ping or NTP request while one runs answers `ERROR` (568). The clock of
//! `AT+CCLK?` starts at `80/01/06,00:00:00+00` at boot.
//!
//! **Errors.** `AT+QIGETERROR` answers `+QIGETERROR: <err>,<description>` with the lower-case
//! description of the manual's table (as seen in the field), and 0 "operation successful"
//! after a TCP/IP command that succeeded. Errors of general commands are `+CME ERROR: <n>`
//! while `AT+CMEE` is 1 or 2 (50 = incorrect parameters, 3 = not allowed).
//!
//! **Transparent mode.** `+++` needs [`SimConfig::guard_time`] of silence before it
//! (counted from the last byte or from entering data mode), the three pluses within one guard
//! time, and a guard time of silence after; otherwise the pluses are data. After `OK` the
//! socket is in buffer mode and data received meanwhile announces itself with a recv URC.
//! `ATO` resumes the connection that most recently left data mode (`NO CARRIER` if none or
//! if it is closed). URCs are held while a send prompt or data mode is open (up to 1024).
//!
//! **Power.** `AT+QPOWD` answers `OK` and `POWERED DOWN` (`=0`: only `POWERED DOWN`); the
//! modem then ignores input until [`Simulator::reboot`]. `AT+CFUN=1,1` answers `OK`,
//! reports `pdpdeact` for active contexts and reboots. Bytes sent before `RDY` are lost.
//! A reboot keeps `AT+QICSGP` settings (NV on a real modem) and resets everything else.
//!
//! **Not modelled.** DTR (`AT&D` is accepted), RTS/CTS (`AT+IFC` is stored only), IPv6
//! prefix translation, TCP retransmission settings (stored only), registration URCs,
//! SMS/phonebook, `A/` repetition. `AT+QURCCFG="urcport"` other than `"uart1"` discards
//! URCs, as a real modem would send them to another port.
#![deny(missing_docs)]

mod at;
mod config;
mod engine;
mod modem;
mod net;
mod pipe;
mod transport;
mod types;

pub use config::{Profile, SimConfig};
pub use engine::Simulator;
pub use pipe::{HostError, HostPort, HostRx, HostTx};
pub use types::{AccessMode, Direction, InjectPoint, ServiceType, SocketInfo, SocketState, Stats, WireRecord};
