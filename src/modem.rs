//! Modem bring-up and the procedures both fronts share, following the manual's Figure 1 and
//! the field notes: synchronisation, echo off, error reporting, (U)SIM and registration
//! polling, context configuration and activation, cleanup of sockets left open by an earlier
//! run of the host, opening and closing sockets, DNS.

use core::net::IpAddr;

use crate::channel::{Channel, command, command_with, last_error};
use crate::commands::{
    AccessMode, At, Ate, Cmee, Command, CpinRead, Domain, Host, MAX_READ, Qgmr, Qiact, QiactRead, Qicfg, QicfgSetting,
    Qiclose, Qicsgp, Qideact, Qidnsgip, Qiopen, Qird, Qisde, Qistate, Qiswtmd, Qurccfg, RegistrationRead, Revision,
    ServiceType, SimState,
};
use crate::config::Config;
use crate::core::Kind;
use crate::error::{Error, ErrorCode, Result};
use crate::socket::{SlotRef, SlotState};

/// What bring-up learnt about the modem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModemInfo {
    /// Firmware revision from `AT+QGMR` (behaviour differs between revisions; log it).
    pub revision: Revision,
    /// The local address of the stack's context.
    pub local_ip: Option<IpAddr>,
    /// Whether `recv` URCs carry data lengths (`AT+QICFG="recvind",1` accepted).
    pub recvind: bool,
    /// Sockets an earlier run of the host had left open and that were closed.
    pub stale_sockets_closed: u8,
}

/// Timeout of one synchronisation `AT` (short: the modem may not be up yet).
const SYNC_AT_MS: u32 = 500;

/// Sends `AT` until the modem answers `OK`, then waits for `APP RDY` if the modem just booted.
pub async fn sync<Ch: Channel>(ch: &mut Ch, config: &Config) -> Result<()> {
    let deadline = ch.now_ms() + u64::from(config.timeouts.sync_ms);
    loop {
        match ch.exec(&At, Kind::Plain, SYNC_AT_MS).await {
            Ok(_) => break,
            Err(e) if ch.now_ms() >= deadline => return Err(if e == Error::Rebooted { Error::Timeout } else { e }),
            Err(_) => ch.sleep_ms(100).await,
        }
    }
    let booting = ch.state(|s| s.modem.rebooted && !s.modem.app_ready);
    if booting {
        let deadline = ch.now_ms() + u64::from(config.timeouts.app_ready_ms);
        // a modem that never prints APP RDY (manual profile) is used anyway after the wait
        let _ = ch.wait_for(deadline, |s| s.modem.app_ready.then_some(())).await;
    }
    Ok(())
}

/// The whole bring-up (Figure 1 up to an active context), for a modem that is powered on.
pub async fn bring_up<Ch: Channel>(ch: &mut Ch, config: &Config) -> Result<ModemInfo> {
    exclusively(ch, async |ch: &mut Ch| bring_up_claimed(ch, config).await).await
}

async fn bring_up_claimed<Ch: Channel>(ch: &mut Ch, config: &Config) -> Result<ModemInfo> {
    let result = bring_up_steps(ch, config).await;
    if result.is_ok() {
        ch.state(|s| {
            let r = &mut s.recovery;
            (r.brought_up, r.suspect, r.reboot_needed, r.open_failures, r.deactivate_failures) =
                (true, false, false, 0, 0);
        });
    }
    result
}

/// Runs `f` as the one recovery in progress (bring-up, reboot): other users of the modem wait
/// until it is done.
async fn exclusively<Ch: Channel, T>(ch: &mut Ch, f: impl AsyncFnOnce(&mut Ch) -> Result<T>) -> Result<T> {
    loop {
        let claimed = ch.state(|s| !core::mem::replace(&mut s.recovery.in_progress, true));
        if claimed {
            break;
        }
        let deadline = ch.now_ms() + 86_400_000;
        ch.wait_for(deadline, |s| (!s.recovery.in_progress).then_some(())).await?;
    }
    ch.set_recovery(true);
    let result = f(ch).await;
    ch.set_recovery(false);
    ch.state(|s| s.recovery.in_progress = false);
    result
}

async fn bring_up_steps<Ch: Channel>(ch: &mut Ch, config: &Config) -> Result<ModemInfo> {
    sync(ch, config).await?;
    ch.state(|s| {
        s.modem.rebooted = false;
        s.modem.transparent = None;
        s.modem.last_transparent = None;
    });
    // echo off (its own echo is tolerated by the ingress), numeric errors, no payload echo,
    // URCs to our UART; then the settings the framing of this crate relies on (text data,
    // header and data on separate lines). One loop: this is the bulk of the firmware's code.
    let steps: [&dyn crate::commands::CommandLine; 6] = [
        &Ate { echo: false },
        &Cmee { mode: 1 },
        &Qisde { echo: false },
        &Qurccfg { port: config.urc_port },
        &Qicfg(QicfgSetting::DataFormat { send_hex: false, recv_hex: false }),
        &Qicfg(QicfgSetting::ViewMode(0)),
    ];
    for step in steps {
        crate::channel::command_line(ch, step, Kind::Plain, crate::commands::DEFAULT_TIMEOUT_MS, &mut |_| Ok(()))
            .await?;
    }
    ch.state(|s| s.modem.payload_echo = false);
    let revision = command(ch, &Qgmr).await?;
    info!("BG96 firmware {}", revision.0.as_str());

    wait_for_sim(ch, config).await?;
    wait_for_registration(ch, config).await?;

    let c = config;
    command(
        ch,
        &Qicsgp {
            context_id: c.context_id,
            context_type: c.context_type,
            apn: &c.apn,
            username: &c.username,
            password: &c.password,
            authentication: c.authentication,
        },
    )
    .await?;
    let local_ip = activate_context(ch, c.context_id).await?;
    let stale_sockets_closed = close_stale_sockets(ch).await?;

    // firmware before 01.008 has no recvind and says ERROR: probe without AT+QIGETERROR
    let probe = Qicfg(QicfgSetting::RecvInd(true));
    let recvind = config.recvind && ch.exec(&probe, Kind::Plain, probe.timeout_ms()).await.is_ok();
    ch.state(|s| s.modem.recvind = recvind);
    Ok(ModemInfo { revision, local_ip, recvind, stale_sockets_closed })
}

async fn wait_for_sim<Ch: Channel>(ch: &mut Ch, config: &Config) -> Result<()> {
    let deadline = ch.now_ms() + u64::from(config.timeouts.sim_ms);
    loop {
        match command(ch, &CpinRead).await {
            Ok(SimState::Ready) => return Ok(()),
            Ok(_) | Err(Error::Cme(_) | Error::Failed) if ch.now_ms() < deadline => {
                ch.sleep_ms(config.timeouts.poll_interval_ms).await
            }
            Ok(_) | Err(Error::Cme(_) | Error::Failed) => return Err(Error::SimNotReady),
            Err(e) => return Err(e),
        }
    }
}

async fn wait_for_registration<Ch: Channel>(ch: &mut Ch, config: &Config) -> Result<()> {
    let start = ch.now_ms();
    let cs_deadline = start + u64::from(config.timeouts.registration_ms);
    let mut ps_deadline = None;
    loop {
        let cs = command(ch, &RegistrationRead(Domain::Cs)).await.map(|r| r.is_registered()).unwrap_or(false);
        let ps = command(ch, &RegistrationRead(Domain::Eps)).await.map(|r| r.is_registered()).unwrap_or(false)
            || command(ch, &RegistrationRead(Domain::Gprs)).await.map(|r| r.is_registered()).unwrap_or(false);
        let now = ch.now_ms();
        if ps {
            return Ok(());
        }
        if cs && ps_deadline.is_none() {
            ps_deadline = Some(now + u64::from(config.timeouts.ps_registration_ms));
        }
        match ps_deadline {
            // Figure 1: go on after 60 s whether PS registration happened or not
            Some(d) if now >= d => return Ok(()),
            None if now >= cs_deadline => return Err(Error::NotRegistered),
            _ => ch.sleep_ms(config.timeouts.poll_interval_ms).await,
        }
    }
}

/// Activates `context_id` unless it is active already (`AT+QIACT` on an active context is an
/// error, field note 12) and returns its local address.
pub async fn activate_context<Ch: Channel>(ch: &mut Ch, context_id: u8) -> Result<Option<IpAddr>> {
    crate::commands::check_context(context_id)?;
    let find = |list: &crate::commands::ContextStates| {
        list.iter().find(|c| c.context_id == context_id && c.active).map(|c| c.ip)
    };
    let states = command(ch, &QiactRead).await?;
    if let Some(ip) = find(&states) {
        ch.state(|s| s.modem.set_context_active(context_id, true));
        return Ok(ip);
    }
    if let Err(e) = command(ch, &Qiact { context_id }).await {
        if e == Error::Timeout {
            // Figure 1: no answer to AT+QIACT in 150 s: reboot
            ch.state(|s| s.recovery.reboot_needed = true);
        }
        return Err(e);
    }
    ch.state(|s| s.modem.set_context_active(context_id, true));
    let states = command(ch, &QiactRead).await?;
    Ok(find(&states).flatten())
}

/// Deactivates a context (`AT+QIDEACT`, up to 40 s). Figure 1: no answer in 40 s, or three
/// failures in a row, and the modem is rebooted.
pub async fn deactivate_context<Ch: Channel>(ch: &mut Ch, context_id: u8, config: &Config) -> Result<()> {
    crate::commands::check_context(context_id)?;
    if let Err(e) = command(ch, &Qideact { context_id }).await {
        let max = config.recovery.max_deactivate_failures;
        ch.state(|s| {
            let r = &mut s.recovery;
            r.deactivate_failures = r.deactivate_failures.saturating_add(1);
            if e == Error::Timeout || r.deactivate_failures >= max {
                r.reboot_needed = true;
            }
        });
        return Err(e);
    }
    ch.state(|s| s.recovery.deactivate_failures = 0);
    ch.state(|s| {
        s.modem.set_context_active(context_id, false);
        // QIDEACT closes every connection of the context at the modem, without URCs
        for (_, slot) in s.sockets.iter_mut() {
            if slot.state != SlotState::Free && slot.context_id == context_id {
                let reason = (slot.state != SlotState::PendingClose).then_some(Error::ContextDeactivated(context_id));
                slot.release(SlotState::Free, reason);
            }
        }
    });
    Ok(())
}

/// Makes sure the context is usable: after a `pdpdeact` it is checked with `AT+QIACT?` and
/// activated again.
pub async fn ensure_context<Ch: Channel>(ch: &mut Ch, context_id: u8) -> Result<()> {
    crate::commands::check_context(context_id)?;
    if ch.state(|s| s.modem.context_active(context_id)) {
        return Ok(());
    }
    // one re-activation at a time: others wait for it and find the context active
    exclusively(ch, async |ch: &mut Ch| {
        if ch.state(|s| s.modem.context_active(context_id)) {
            return Ok(());
        }
        let deactivated = ch.state(|s| s.modem.deactivated_contexts & (1 << context_id) != 0);
        if deactivated {
            // manual 2.2.5: the host must execute AT+QIDEACT after a pdpdeact
            let _ = command(ch, &Qideact { context_id }).await;
            ch.state(|s| s.modem.deactivated_contexts &= !(1 << context_id));
        }
        activate_context(ch, context_id).await.map(|_| ())
    })
    .await
}

/// Closes every socket the modem has open (left over from an earlier run of the host, field
/// note 12). Returns how many were closed.
pub async fn close_stale_sockets<Ch: Channel>(ch: &mut Ch) -> Result<u8> {
    let open = command(ch, &Qistate::All).await?;
    let mut closed = 0;
    for s in open.iter() {
        let known = ch.state(|st| st.sockets.get(s.connect_id).is_some_and(|slot| slot.state != SlotState::Free));
        if known {
            continue;
        }
        if command(ch, &Qiclose { connect_id: s.connect_id, timeout_s: None }).await.is_ok() {
            closed += 1;
        }
    }
    ch.state(|st| {
        for (_, slot) in st.sockets.iter_mut() {
            if slot.state == SlotState::PendingClose {
                slot.release(SlotState::Free, None);
            }
        }
    });
    Ok(closed)
}

/// Sends `AT+QICLOSE` for every slot nobody owns any more (failed opens, dropped async
/// connections, sockets of a deactivated context). Only the front's one closer calls this
/// (see [`Channel::reclaim`]).
pub async fn close_pending<Ch: Channel>(ch: &mut Ch) -> Result<()> {
    while let Some(r) = ch.state(|s| s.sockets.claim_close()) {
        close_claimed(ch, r).await?;
    }
    Ok(())
}

/// `AT+QICLOSE` on the socket `r` refers to (nothing if it is gone already); the slot is free
/// afterwards, or queued to be closed again later if the modem did not answer.
pub async fn close_slot<Ch: Channel>(ch: &mut Ch, r: SlotRef) -> Result<()> {
    let claimed = ch.state(|s| match s.sockets.current_mut(r) {
        Ok(slot) if slot.state != SlotState::Closing => {
            // an open still waiting for its result: that result may come after the close
            slot.give_up_open();
            slot.state = SlotState::Closing;
            true
        }
        _ => false,
    });
    if claimed { close_claimed(ch, r).await } else { Ok(()) }
}

/// Closes a slot the caller claimed ([`SlotState::Closing`]). The engine refuses the command
/// if the slot changed hands meanwhile, so the close never hits a new connection.
async fn close_claimed<Ch: Channel>(ch: &mut Ch, r: SlotRef) -> Result<()> {
    let cmd = Qiclose { connect_id: r.connect_id, timeout_s: None };
    let result = command_with(ch, &cmd, Kind::Close(r), cmd.timeout_ms()).await;
    if result == Err(Error::Timeout) {
        // Figure 1: no answer to AT+QICLOSE in 10 s: reboot
        ch.state(|s| s.recovery.reboot_needed = true);
    }
    let result = match result {
        // a socket the modem already forgot is closed as far as anybody cares; Closed: the
        // slot changed hands before the command went out (someone else dealt with it)
        Ok(_) | Err(Error::Modem(ErrorCode::SocketClosed) | Error::Failed | Error::Closed) => Ok(()),
        Err(e) => Err(e),
    };
    ch.state(|s| {
        if let Some(slot) = s.sockets.get_mut(r.connect_id)
            && slot.generation == r.generation
            && slot.state == SlotState::Closing
        {
            let next = if result.is_ok() || result == Err(Error::Rebooted) {
                SlotState::Free
            } else {
                SlotState::PendingClose
            };
            slot.release(next, None);
        }
    });
    result
}

/// Parameters of a socket to open.
#[derive(Debug, Clone, Copy)]
pub struct OpenParams<'a> {
    /// Context.
    pub context_id: u8,
    /// Service type.
    pub service_type: ServiceType,
    /// Remote host (clients).
    pub remote: Host<'a>,
    /// Remote port (clients).
    pub remote_port: u16,
    /// Local port (0 = any, for clients).
    pub local_port: u16,
    /// Access mode.
    pub access_mode: AccessMode,
}

/// Sends `AT+QIOPEN` on a free connectID; the outcome arrives later as `+QIOPEN` (see
/// [`open_result`]). Retries on another connectID if the modem says the one chosen is taken.
pub async fn start_open<Ch: Channel>(ch: &mut Ch, p: &OpenParams<'_>, config: &Config) -> Result<SlotRef> {
    ensure_ready(ch, config).await?;
    // Figure 1: after 5 failed opens in a row, deactivate and activate the context again
    if ch.state(|s| s.recovery.open_failures) >= config.recovery.max_open_failures {
        warn!("{} failed opens in a row: re-activating context {}", config.recovery.max_open_failures, p.context_id);
        deactivate_context(ch, p.context_id, config).await?;
        activate_context(ch, p.context_id).await?;
        ch.state(|s| s.recovery.open_failures = 0);
    }
    ensure_context(ch, p.context_id).await?;
    ch.reclaim().await?;
    let mut avoid = 0u16;
    loop {
        let now = ch.now_ms();
        let id = ch.state(|s| s.sockets.find_free(avoid, now)).ok_or(Error::NoFreeSocket)?;
        let cmd = Qiopen {
            context_id: p.context_id,
            connect_id: id,
            service_type: p.service_type,
            remote: p.remote,
            remote_port: p.remote_port,
            local_port: p.local_port,
            access_mode: p.access_mode,
        };
        // check the arguments before the slot is taken
        cmd.write_to(&mut crate::wire::Discard)?;
        ch.state(|s| {
            if let Some(slot) = s.sockets.get_mut(id) {
                slot.occupy(SlotState::Opening, p.service_type, p.access_mode, p.context_id);
                slot.opened_at_ms = now;
                slot.local_port = p.local_port;
                if let Host::Ip(ip) = p.remote {
                    slot.remote = Some(core::net::SocketAddr::new(ip, p.remote_port));
                }
            }
        });
        let r = ch.state(|s| s.sockets.slot_ref(id)).ok_or(Error::InvalidState)?;
        let kind =
            if p.access_mode == AccessMode::Transparent { Kind::Connect { connect_id: Some(id) } } else { Kind::Plain };
        match command_with(ch, &cmd, kind, cmd.timeout_ms()).await {
            Ok(_) => {
                if p.access_mode == AccessMode::Transparent {
                    ch.state(|s| {
                        if let Some(slot) = s.sockets.get_mut(id) {
                            slot.state = SlotState::Open;
                            slot.open_result = Some(0);
                        }
                    });
                }
                return Ok(r);
            }
            Err(Error::Modem(ErrorCode::SocketIdentityUsed)) => {
                // the modem has something there we did not know about (field note 13)
                ch.state(|s| {
                    if let Some(slot) = s.sockets.get_mut(id) {
                        slot.release_refused(SlotState::PendingClose);
                    }
                });
                avoid |= 1 << id;
            }
            Err(e) => {
                ch.state(|s| {
                    if let Some(slot) = s.sockets.get_mut(id) {
                        if e == Error::Timeout {
                            // without an answer the modem may have opened it: close it first
                            slot.release(SlotState::PendingClose, None);
                        } else {
                            slot.release_refused(SlotState::Free);
                        }
                    }
                    s.recovery.open_failures = s.recovery.open_failures.saturating_add(1);
                });
                return Err(e);
            }
        }
    }
}

/// The deferred result of an open: `None` while it is pending, `Some(Ok)` when open,
/// `Some(Err)` when the modem refused it (the slot is then queued for `AT+QICLOSE`).
pub fn open_result(s: &mut crate::core::State, r: SlotRef) -> Option<Result<()>> {
    let slot = match s.sockets.current_mut(r) {
        Ok(slot) => slot,
        Err(e) => return Some(Err(e)),
    };
    match slot.open_result {
        None => None,
        Some(0) => {
            s.recovery.open_failures = 0;
            Some(Ok(()))
        }
        Some(code) => {
            slot.release(SlotState::PendingClose, None);
            s.recovery.open_failures = s.recovery.open_failures.saturating_add(1);
            Some(Err(Error::Modem(ErrorCode::from_code(code))))
        }
    }
}

/// Waits for the deferred result of an open (150 s, Figure 1); on a timeout the socket is
/// closed with `AT+QICLOSE`.
pub async fn finish_open<Ch: Channel>(ch: &mut Ch, r: SlotRef) -> Result<()> {
    let deadline = ch.now_ms() + u64::from(<Qiopen<'_> as atat::AtatCmd>::MAX_TIMEOUT_MS);
    match ch.wait_for(deadline, |s| open_result(s, r)).await {
        Ok(result) => result,
        Err(Error::Timeout) => {
            ch.state(|s| s.recovery.open_failures = s.recovery.open_failures.saturating_add(1));
            let _ = close_slot(ch, r).await;
            Err(Error::Timeout)
        }
        Err(e) => Err(e),
    }
}

/// Starts `AT+QIDNSGIP` (one query at a time: [`Error::Busy`] while another runs).
pub async fn start_dns<Ch: Channel>(ch: &mut Ch, context_id: u8, hostname: &str) -> Result<()> {
    crate::commands::Qidnsgip { context_id, hostname }.write_to(&mut crate::wire::Discard)?;
    ensure_context(ch, context_id).await?;
    let now = ch.now_ms();
    let until = now + u64::from(<Qidnsgip<'_> as atat::AtatCmd>::MAX_TIMEOUT_MS);
    let claimed = ch.state(|s| {
        if s.dns.pending && now < s.dns.until {
            return false;
        }
        s.dns = crate::core::DnsState { pending: true, until, ..Default::default() };
        true
    });
    if !claimed {
        return Err(Error::Busy);
    }
    let r = command(ch, &Qidnsgip { context_id, hostname }).await;
    if r.is_err() {
        ch.state(|s| s.dns.pending = false);
    }
    r.map(|_| ())
}

/// Picks the address for `addr_type` from a finished DNS query and ends the query. `None`
/// while the query is still running.
pub fn dns_result(s: &mut crate::core::State, addr_type: &embedded_nal::AddrType) -> Option<Result<IpAddr>> {
    let result = s.dns.result.take()?;
    s.dns.pending = false;
    Some(match result {
        Err(code) => Err(Error::Modem(ErrorCode::from_code(code))),
        Ok(()) => {
            let v4 = s.dns.addresses.iter().copied().find(IpAddr::is_ipv4);
            let v6 = s.dns.addresses.iter().copied().find(IpAddr::is_ipv6);
            match addr_type {
                embedded_nal::AddrType::IPv4 => v4,
                embedded_nal::AddrType::IPv6 => v6,
                embedded_nal::AddrType::Either => v4.or(v6),
            }
            .ok_or(Error::NotFound)
        }
    })
}

/// Resolves a name with `AT+QIDNSGIP` and waits for the result (60 s).
pub async fn resolve<Ch: Channel>(
    ch: &mut Ch,
    context_id: u8,
    hostname: &str,
    addr_type: embedded_nal::AddrType,
) -> Result<IpAddr> {
    if let Some(ip) = crate::wire::parse_ip(hostname.as_bytes()) {
        return Ok(ip);
    }
    // one query at a time: wait for a running one to finish
    let deadline = ch.now_ms() + u64::from(<Qidnsgip<'_> as atat::AtatCmd>::MAX_TIMEOUT_MS);
    loop {
        match start_dns(ch, context_id, hostname).await {
            Err(Error::Busy) => {
                let now = ch.now_ms();
                ch.wait_for(deadline, |s| (!s.dns.pending || now >= s.dns.until).then_some(())).await?;
            }
            other => break other?,
        }
    }
    let deadline = ch.now_ms() + u64::from(<Qidnsgip<'_> as atat::AtatCmd>::MAX_TIMEOUT_MS);
    match ch.wait_for(deadline, |s| dns_result(s, &addr_type)).await {
        Ok(r) => r,
        Err(e) => {
            ch.state(|s| s.dns.pending = false);
            Err(e)
        }
    }
}

/// What one `AT+QIRD` on a socket gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// A datagram or a piece of the byte stream (`len` may be 0 for a zero-length datagram).
    Data {
        /// Bytes written to the buffer.
        len: usize,
        /// Sender (datagram sockets).
        remote: Option<core::net::SocketAddr>,
    },
    /// Nothing was waiting after all.
    Empty,
    /// Nothing is waiting and the peer closed: end of stream.
    Closed,
}

/// Reads once from a socket whose data was announced, and keeps the socket's receive state:
/// a read shorter than asked for emptied the modem's buffer, which re-arms the `recv` URC
/// (unless one arrived while the read ran); a datagram socket may hold more datagrams and is
/// read until the modem says 0.
pub async fn read_socket<Ch: Channel>(ch: &mut Ch, r: SlotRef, buf: &mut [u8]) -> Result<ReadOutcome> {
    let before = ch.state(|s| s.sockets.current(r).copied())?;
    let datagram = before.service.is_udp();
    let want = if before.service == ServiceType::UdpService { None } else { Some(buf.len().min(MAX_READ)) };
    if want == Some(0) {
        return Ok(ReadOutcome::Data { len: 0, remote: before.remote });
    }
    let cmd = Qird { connect_id: r.connect_id, len: want.map(|w| w as u16) };
    let info = match ch.read(&cmd, buf).await {
        Ok(info) => info,
        Err(Error::Failed) if !Ch::RESOLVES_ERRORS => return Err(last_error(ch).await),
        Err(e) => return Err(e),
    };
    ch.state(|s| {
        let slot = s.sockets.current_mut(r)?;
        let is_datagram = info.remote.is_some();
        let empty = info.len == 0 && !is_datagram;
        let drained = empty || (!datagram && want.is_some_and(|w| info.len < w));
        if drained && slot.rx_events == before.rx_events {
            slot.rx_ready = false;
        }
        slot.rx_known = slot.rx_known.saturating_sub(info.len as u32);
        if empty {
            return Ok(if slot.peer_closed { ReadOutcome::Closed } else { ReadOutcome::Empty });
        }
        if info.len > info.copied {
            return Err(Error::Truncated { len: info.len });
        }
        Ok(ReadOutcome::Data { len: info.len, remote: info.remote.or(slot.remote) })
    })
}

/// Switches a socket's data access mode with `AT+QISWTMD` (buffer or direct push; transparent
/// mode is entered through the fronts, which own the byte stream then).
pub async fn switch_mode<Ch: Channel>(ch: &mut Ch, r: SlotRef, mode: AccessMode) -> Result<()> {
    let slot = ch.state(|s| s.sockets.current(r).copied())?;
    if mode == AccessMode::Transparent || slot.service != ServiceType::Tcp && slot.service != ServiceType::TcpIncoming {
        return Err(Error::InvalidArgument);
    }
    if slot.mode == mode {
        return Ok(());
    }
    let cmd = Qiswtmd { connect_id: r.connect_id, access_mode: mode };
    command_with(ch, &cmd, Kind::Switch { connect_id: r.connect_id, mode }, cmd.timeout_ms()).await?;
    ch.state(|s| {
        if let Ok(slot) = s.sockets.current_mut(r) {
            slot.push_throttle = false;
        }
    });
    Ok(())
}

/// Switches direct-push sockets whose host buffer is nearly full to buffer access mode: the
/// peer's data then waits in the modem (and behind it, in TCP flow control) instead of being
/// lost. Reads take the buffered data first, then continue with `AT+QIRD`.
pub async fn apply_throttles<Ch: Channel>(ch: &mut Ch) -> Result<()> {
    while let Some(r) = ch.state(|s| s.sockets.throttled()) {
        if let Err(e) = switch_mode(ch, r, AccessMode::Buffer).await {
            ch.state(|s| {
                if let Ok(slot) = s.sockets.current_mut(r) {
                    slot.push_throttle = false;
                }
            });
            return Err(e);
        }
    }
    Ok(())
}

/// The outcome of [`ping`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingResult {
    /// One entry per request: the reply, or why there was none (e.g. 569, timeout).
    pub replies: heapless::Vec<core::result::Result<crate::commands::PingReply, ErrorCode>, 10>,
    /// The statistics of the modem's summary line.
    pub summary: crate::commands::PingSummary,
}

/// `AT+QPING`: pings `host` and waits for every reply and the summary (one ping at a time).
pub async fn ping<Ch: Channel>(
    ch: &mut Ch,
    context_id: u8,
    host: Host<'_>,
    timeout_s: Option<u8>,
    count: Option<u8>,
) -> Result<PingResult> {
    let cmd = crate::commands::Qping { context_id, host, timeout_s, count };
    cmd.write_to(&mut crate::wire::Discard)?;
    ensure_context(ch, context_id).await?;
    let now = ch.now_ms();
    let until = now + u64::from(cmd.results_timeout_ms());
    let expected = count.unwrap_or(4);
    let claimed = ch.state(|s| {
        if s.ping.pending && now < s.ping.until {
            return false;
        }
        s.ping = crate::core::PingState { pending: true, until, expected, ..Default::default() };
        true
    });
    if !claimed {
        return Err(Error::Busy);
    }
    let result = async {
        command(ch, &cmd).await?;
        ch.wait_for(until, |s| s.ping.done.take()).await
    }
    .await;
    let replies = ch.state(|s| {
        s.ping.pending = false;
        s.ping.replies.iter().map(|r| r.map_err(ErrorCode::from_code)).collect()
    });
    match result? {
        Ok(summary) => Ok(PingResult { replies, summary }),
        Err(code) => Err(Error::Modem(ErrorCode::from_code(code))),
    }
}

/// `AT+QNTP`: synchronises with an NTP server and returns the time it gave (one at a time).
pub async fn sync_time<Ch: Channel>(
    ch: &mut Ch,
    context_id: u8,
    server: Host<'_>,
    port: Option<u16>,
    set_clock: Option<bool>,
) -> Result<crate::commands::NtpTime> {
    let cmd = crate::commands::Qntp { context_id, server, port, set_clock };
    cmd.write_to(&mut crate::wire::Discard)?;
    ensure_context(ch, context_id).await?;
    let now = ch.now_ms();
    let until = now + u64::from(cmd.results_timeout_ms());
    let claimed = ch.state(|s| {
        if s.ntp.pending && now < s.ntp.until {
            return false;
        }
        s.ntp = crate::core::NtpState { pending: true, until, done: None };
        true
    });
    if !claimed {
        return Err(Error::Busy);
    }
    let result = async {
        command(ch, &cmd).await?;
        ch.wait_for(until, |s| s.ntp.done.take()).await
    }
    .await;
    ch.state(|s| s.ntp.pending = false);
    result?.map_err(|code| Error::Modem(ErrorCode::from_code(code)))
}

/// `AT+QICFG`: changes a setting. The stack reads text data with header and data on separate
/// lines, so hex data formats and view mode 1 are refused ([`Error::NotSupported`]).
pub async fn configure<Ch: Channel>(ch: &mut Ch, setting: QicfgSetting<'_>) -> Result<()> {
    match setting {
        QicfgSetting::DataFormat { send_hex: true, .. }
        | QicfgSetting::DataFormat { recv_hex: true, .. }
        | QicfgSetting::ViewMode(1..) => return Err(Error::NotSupported),
        _ => {}
    }
    command(ch, &Qicfg(setting)).await?;
    if let QicfgSetting::RecvInd(on) = setting {
        ch.state(|s| s.modem.recvind = on);
    }
    Ok(())
}

/// `AT+QISDE`: payload echo on or off (the stack skips the echo either way).
pub async fn set_payload_echo<Ch: Channel>(ch: &mut Ch, echo: bool) -> Result<()> {
    command(ch, &Qisde { echo }).await?;
    ch.state(|s| s.modem.payload_echo = echo);
    Ok(())
}

/// `AT+QISENDEX`: sends bytes written as hex (1–256 bytes; `SEND FAIL` is [`Error::SendFail`]).
pub async fn send_hex<Ch: Channel>(ch: &mut Ch, r: SlotRef, data: &[u8]) -> Result<()> {
    let slot = ch.state(|s| s.sockets.current(r).copied())?;
    if matches!(slot.service, ServiceType::UdpService | ServiceType::TcpListener) {
        return Err(Error::InvalidArgument);
    }
    command(ch, &crate::commands::Qisendex { connect_id: r.connect_id, data }).await.map(|_| ())
}

/// Before each operation: finishes what recovery left to do (Figure 1). Reboots if a rule
/// asked for it, brings the modem up again after it rebooted by itself (an unsolicited
/// `RDY`), and checks a modem that left a command unanswered with `AT`.
pub async fn ensure_ready<Ch: Channel>(ch: &mut Ch, config: &Config) -> Result<()> {
    let needed = |s: &mut crate::core::State| {
        let r = &s.recovery;
        r.brought_up && (r.reboot_needed || r.suspect || s.modem.rebooted)
    };
    if !ch.state(needed) {
        return Ok(());
    }
    exclusively(ch, async |ch: &mut Ch| {
        loop {
            let (rec, rebooted) = ch.state(|s| (s.recovery, s.modem.rebooted));
            if rec.reboot_needed {
                return reboot_claimed(ch, config).await.map(|_| ());
            }
            if rebooted && rec.brought_up {
                info!("the modem restarted: bringing it up again");
                return bring_up_claimed(ch, config).await.map(|_| ());
            }
            if rec.suspect {
                match ch.exec(&At, Kind::Plain, 1_000).await {
                    Ok(_) => ch.state(|s| s.recovery.suspect = false),
                    // it restarted (RDY) while we asked: bring it up, no reboot needed
                    Err(Error::Rebooted) => ch.state(|s| s.recovery.suspect = false),
                    Err(_) => ch.state(|s| s.recovery.reboot_needed = true),
                }
                continue;
            }
            return Ok(());
        }
    })
    .await
}

/// Reboots the modem (`AT+CFUN=1,1`; the reset line or the power key if it does not answer
/// and the board has them) and brings it up again, within the reboot back-off of Figure 1.
pub async fn reboot<Ch: Channel>(ch: &mut Ch, config: &Config) -> Result<ModemInfo> {
    exclusively(ch, async |ch: &mut Ch| reboot_claimed(ch, config).await).await
}

async fn reboot_claimed<Ch: Channel>(ch: &mut Ch, config: &Config) -> Result<ModemInfo> {
    let now = ch.now_ms();
    let (mut n, last) = ch.state(|s| (s.recovery.reboots + 1, s.recovery.last_reboot_ms));
    if last.is_some_and(|t| now.saturating_sub(t) > crate::recovery::SERIES_RESET_MS) {
        n = 1;
    }
    let wait = config.recovery.delay_before(n);
    if let Some(last) = last {
        let allowed = last + wait;
        if now < allowed {
            let retry_in_s = u32::try_from(allowed - now).unwrap_or(u32::MAX).div_ceil(1000);
            return Err(Error::RebootBackoff { retry_in_s });
        }
    }
    warn!("rebooting the modem ({} in this series)", n);
    ch.state(|s| {
        let r = &mut s.recovery;
        (r.reboots, r.last_reboot_ms, r.reboot_needed, r.suspect) = (n, Some(now), false, false);
        r.total_reboots = r.total_reboots.saturating_add(1);
        s.modem.rebooted = false;
    });
    let soft = ch.exec(&crate::commands::Cfun { fun: 1, reset: true }, Kind::Plain, 15_000).await;
    if soft.is_err() {
        hard_reset(ch).await;
    }
    // the modem says RDY when it is back
    let deadline = ch.now_ms() + u64::from(config.timeouts.sync_ms);
    let _ = ch.wait_for(deadline, |s| s.modem.rebooted.then_some(())).await;
    let result = bring_up_claimed(ch, config).await;
    if result.is_err() {
        ch.state(|s| s.recovery.reboot_needed = true);
    }
    result
}

/// Resets a modem that does not answer: the reset line if wired, else the power key (off,
/// then on). Returns whether the board could do anything.
pub async fn hard_reset<Ch: Channel>(ch: &mut Ch) -> bool {
    use crate::recovery::{POWER_KEY_PULSE_MS, RESET_PULSE_MS};
    let (reset, key) = ch.with_power(|p| (p.has_reset(), p.has_power_key()));
    if reset {
        ch.with_power(|p| p.set_reset(true));
        ch.sleep_ms(RESET_PULSE_MS).await;
        ch.with_power(|p| p.set_reset(false));
        return true;
    }
    if key {
        for _ in 0..2 {
            // a press switches a running modem off, the second one on again
            ch.with_power(|p| p.set_power_key(true));
            ch.sleep_ms(POWER_KEY_PULSE_MS).await;
            ch.with_power(|p| p.set_power_key(false));
            ch.sleep_ms(POWER_KEY_PULSE_MS).await;
        }
        return true;
    }
    warn!("the modem does not answer and the board cannot reset it");
    false
}

/// Switches the modem on with the power key (pressed 2 s, Figure 1) and waits for `RDY`.
pub async fn power_on<Ch: Channel>(ch: &mut Ch, config: &Config) -> Result<()> {
    if !ch.with_power(|p| p.has_power_key()) {
        return Err(Error::NotSupported);
    }
    ch.with_power(|p| {
        p.set_supply(true);
        p.set_power_key(true);
    });
    ch.sleep_ms(crate::recovery::POWER_KEY_PULSE_MS).await;
    ch.with_power(|p| p.set_power_key(false));
    let deadline = ch.now_ms() + u64::from(config.timeouts.sync_ms);
    ch.wait_for(deadline, |s| s.modem.rebooted.then_some(())).await
}

/// Figure 1's power-off: `AT+QPOWD=1`, wait for `POWERED DOWN`, then 12 s more before the
/// supply is cut (where the board can cut it).
pub async fn power_down<Ch: Channel>(ch: &mut Ch) -> Result<()> {
    command(ch, &crate::commands::Qpowd { normal: true }).await?;
    let deadline = ch.now_ms() + 60_000;
    let _ = ch.wait_for(deadline, |s| s.modem.powered_down.then_some(())).await;
    ch.sleep_ms(crate::recovery::POWER_DOWN_WAIT_MS).await;
    ch.with_power(|p| p.set_supply(false));
    ch.state(|s| {
        for (_, slot) in s.sockets.iter_mut() {
            if slot.state != SlotState::Free {
                slot.release(SlotState::Free, Some(Error::Rebooted));
            }
        }
        s.modem.active_contexts = 0;
        s.recovery.brought_up = false;
    });
    Ok(())
}

/// Notes that data was sent on a TCP socket: its acknowledgement is checked later.
pub fn note_sent(s: &mut crate::core::State, r: SlotRef, now: u64, policy: &crate::recovery::RebootPolicy) {
    if !policy.ack_supervision {
        return;
    }
    if let Ok(slot) = s.sockets.current_mut(r)
        && matches!(slot.service, ServiceType::Tcp | ServiceType::TcpIncoming)
        && slot.ack_due.is_none()
    {
        slot.ack_due = Some(now + u64::from(policy.ack_interval_ms));
        slot.ack_checks = 0;
    }
}

/// Figure 1's ACK supervision: for sockets with a check due, `AT+QISEND=<id>,0`; nothing
/// unacknowledged ends the checks; still unacknowledged after the last check closes the
/// connection, whose owner is told [`Error::Timeout`].
pub async fn supervise_acks<Ch: Channel>(ch: &mut Ch, policy: &crate::recovery::RebootPolicy) -> Result<()> {
    let now = ch.now_ms();
    while let Some(r) = ch.state(|s| s.sockets.ack_due(now)) {
        let counters = command(ch, &crate::commands::QisendQuery { connect_id: r.connect_id }).await;
        let now = ch.now_ms();
        ch.state(|s| {
            let Ok(slot) = s.sockets.current_mut(r) else { return };
            match counters {
                Ok(c) if c.unacked == 0 => (slot.ack_due, slot.ack_checks) = (None, 0),
                Ok(_) => {
                    slot.ack_checks = slot.ack_checks.saturating_add(1);
                    if slot.ack_checks >= policy.ack_checks {
                        warn!(
                            "connectID {}: data unacknowledged after {} checks: closing",
                            r.connect_id, slot.ack_checks
                        );
                        slot.release(SlotState::PendingClose, Some(Error::Timeout));
                    } else {
                        slot.ack_due = Some(now + u64::from(policy.ack_interval_ms));
                    }
                }
                Err(_) => slot.ack_due = Some(now + u64::from(policy.ack_interval_ms)),
            }
        });
    }
    Ok(())
}
