//! The procedures both fronts share (bring-up, recovery, opening and closing sockets, DNS,
//! ...), written once over a command channel. This file is compiled twice (see the
//! [module docs](super)): as `async fn`s over [`crate::channel::Channel`] for the async
//! front, and as plain functions over [`crate::channel::BlockingChannel`] for the blocking
//! front. `aw!(e)` is
//! `e.await` in the first and `e` in the second; `Ret!(T)` and `run!({ .. })` make a function
//! `async` in the first.

use core::net::IpAddr;

#[cfg(feature = "ping")]
use super::PingResult;
use super::{
    ATTENTION, ECHO_OFF, ModemInfo, NUMERIC_ERRORS, OpenParams, PAYLOAD_ECHO_OFF, RECVIND_ON, ReadOutcome,
    SEPARATE_LINES, SYNC_AT_MS, TEXT_DATA, dns_result, open_result,
};
use crate::commands::{
    AccessMode, Command, CommandLine, CpinRead, Domain, Fixed, Host, MAX_READ, Qgmr, Qiact, QiactRead, Qicfg,
    QicfgSetting, Qiclose, Qicsgp, Qideact, Qidnsgip, Qigeterror, Qiopen, Qird, Qisde, Qistate, Qiswtmd, Qurccfg,
    RegistrationRead, ServiceType, SimState,
};
use crate::config::Config;
use crate::core::Kind;
use crate::error::{Error, ErrorCode, Result};
use crate::socket::{SlotRef, SlotState};

use_channel!();

/// Runs `cmd` and returns its parsed answer (no `AT+QIGETERROR` for a bare `ERROR`: see
/// [`command`]).
pub fn exec<Ch: Channel, C: Command>(ch: &mut Ch, cmd: &C, kind: Kind, timeout_ms: u32) -> Ret!(Result<C::Response>) {
    run!({
        let mut out = None;
        aw!(ch.exec_line(cmd, kind, timeout_ms, &mut |resp| {
            out = Some(cmd.parse_lines(resp)?);
            Ok(())
        }))?;
        out.ok_or(Error::Parse)
    })
}

/// Runs a command with the manual's timeout; a bare `ERROR` of a TCP/IP command is followed by
/// `AT+QIGETERROR` to report the manual's error code (field note 6).
pub fn command<Ch: Channel, C: Command>(ch: &mut Ch, cmd: &C) -> Ret!(Result<C::Response>) {
    command_with(ch, cmd, Kind::Plain, cmd.timeout_ms())
}

/// [`command`] with an explicit answer shape and timeout.
pub fn command_with<Ch: Channel, C: Command>(
    ch: &mut Ch,
    cmd: &C,
    kind: Kind,
    timeout_ms: u32,
) -> Ret!(Result<C::Response>) {
    run!({
        let mut out = None;
        aw!(command_line(ch, cmd, kind, timeout_ms, &mut |resp| {
            out = Some(cmd.parse_lines(resp)?);
            Ok(())
        }))?;
        out.ok_or(Error::Parse)
    })
}

/// [`command`] with `reduce` in place of the command's parser: keeps what the caller needs
/// of a long answer instead of the whole list (in the async front that list would be part of
/// every future that runs the command).
fn command_reduced<Ch: Channel, C: Command, T>(
    ch: &mut Ch,
    cmd: &C,
    mut reduce: impl FnMut(&[u8]) -> Result<T>,
) -> Ret!(Result<T>) {
    run!({
        let mut out = None;
        aw!(command_line(ch, cmd, Kind::Plain, cmd.timeout_ms(), &mut |resp| {
            out = Some(reduce(resp)?);
            Ok(())
        }))?;
        out.ok_or(Error::Parse)
    })
}

/// The one (non-generic) path of [`command_with`].
pub fn command_line<Ch: Channel>(
    ch: &mut Ch,
    cmd: &dyn CommandLine,
    kind: Kind,
    timeout_ms: u32,
    parse: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Ret!(Result<()>) {
    run!({
        match aw!(ch.exec_line_resolved(cmd, kind, timeout_ms, parse)) {
            Err(Error::Timeout) => {
                // Figure 1: a command without an answer may mean a hung modem: check it before
                // the next use
                ch.state(|s| s.recovery.suspect = true);
                Err(Error::Timeout)
            }
            other => other,
        }
    })
}

/// The cause of the last TCP/IP failure, from `AT+QIGETERROR` ([`Error::Failed`] if the modem
/// does not say).
pub fn last_error<Ch: Channel>(ch: &mut Ch) -> Ret!(Error) {
    run!({
        match aw!(exec(ch, &Qigeterror, Kind::Plain, Qigeterror.timeout_ms())) {
            Ok(e) => e.error_code().map_or(Error::Failed, Error::Modem),
            Err(Error::Rebooted) => Error::Rebooted,
            Err(_) => Error::Failed,
        }
    })
}

/// Sends `AT` until the modem answers `OK`, then waits for `APP RDY` if the modem just booted.
pub fn sync<Ch: Channel>(ch: &mut Ch, config: &Config) -> Ret!(Result<()>) {
    run!({
        let deadline = ch.now().after_ms(config.timeouts.sync_ms);
        loop {
            match aw!(ch.exec_line(&Fixed(ATTENTION), Kind::Plain, SYNC_AT_MS, &mut |_| Ok(()))) {
                Ok(_) => break,
                Err(e) if deadline.reached(ch.now()) => {
                    return Err(if matches!(e, Error::Rebooted) { Error::Timeout } else { e });
                }
                Err(_) => aw!(ch.sleep_ms(100)),
            }
        }
        let booting = ch.state(|s| s.modem.rebooted && !s.modem.app_ready);
        if booting {
            let deadline = ch.now().after_ms(config.timeouts.app_ready_ms);
            // a modem that never prints APP RDY (manual profile) is used anyway after the wait
            let _ = aw!(ch.wait_for(deadline, |s| s.modem.app_ready.then_some(())));
        }
        Ok(())
    })
}

/// The whole bring-up (Figure 1 up to an active context), for a modem that is powered on.
pub fn bring_up<Ch: Channel>(ch: &mut Ch, config: &Config) -> Ret!(Result<ModemInfo>) {
    run!({
        aw!(claim(ch))?;
        let result = aw!(bring_up_claimed(ch, config));
        unclaim(ch);
        result
    })
}

fn bring_up_claimed<Ch: Channel>(ch: &mut Ch, config: &Config) -> Ret!(Result<ModemInfo>) {
    run!({
        let result = aw!(bring_up_steps(ch, config));
        if result.is_ok() {
            ch.state(|s| {
                let r = &mut s.recovery;
                (r.brought_up, r.suspect, r.reboot_needed, r.open_failures, r.deactivate_failures) =
                    (true, false, false, 0, 0);
            });
        }
        result
    })
}

/// Makes this caller the one recovery in progress (bring-up, reboot, re-activation): other
/// users of the modem wait until it calls [`unclaim`]. (If an async caller is dropped
/// mid-way, dropping its channel ends the recovery.)
fn claim<Ch: Channel>(ch: &mut Ch) -> Ret!(Result<()>) {
    run!({
        loop {
            let claimed = ch.state(|s| !core::mem::replace(&mut s.recovery.in_progress, true));
            if claimed {
                break;
            }
            let deadline = ch.now().after_ms(86_400_000);
            aw!(ch.wait_for(deadline, |s| (!s.recovery.in_progress).then_some(())))?;
        }
        ch.set_recovery(true);
        Ok(())
    })
}

/// Ends what [`claim`] started.
fn unclaim<Ch: Channel>(ch: &mut Ch) {
    ch.set_recovery(false);
    ch.state(|s| s.recovery.in_progress = false);
}

fn bring_up_steps<Ch: Channel>(ch: &mut Ch, config: &Config) -> Ret!(Result<ModemInfo>) {
    run!({
        aw!(sync(ch, config))?;
        ch.state(|s| {
            s.modem.rebooted = false;
            s.modem.transparent = None;
            s.modem.last_transparent = None;
        });
        // echo off (its own echo is tolerated by the ingress), numeric errors, no payload echo,
        // URCs to our UART; then the settings the framing of this crate relies on (text data,
        // header and data on separate lines). One loop: this is the bulk of the firmware's code.
        let steps: [&dyn CommandLine; 6] = [
            &Fixed(ECHO_OFF),
            &Fixed(NUMERIC_ERRORS),
            &Fixed(PAYLOAD_ECHO_OFF),
            &Qurccfg { port: config.urc_port },
            &Fixed(TEXT_DATA),
            &Fixed(SEPARATE_LINES),
        ];
        for step in steps {
            aw!(command_line(ch, step, Kind::Plain, crate::commands::DEFAULT_TIMEOUT_MS, &mut |_| Ok(())))?;
        }
        ch.state(|s| s.modem.payload_echo = false);
        let revision = aw!(command(ch, &Qgmr))?;
        info!("BG96 firmware {}", revision.0.as_str());

        aw!(wait_for_sim(ch, config))?;
        aw!(wait_for_registration(ch, config))?;

        let c = config;
        let qicsgp = Qicsgp {
            context_id: c.context_id,
            context_type: c.context_type,
            apn: &c.apn,
            username: &c.username,
            password: &c.password,
            authentication: c.authentication,
        };
        aw!(command(ch, &qicsgp))?;
        let local_ip = aw!(activate_context(ch, c.context_id))?;
        let stale_sockets_closed = aw!(close_stale_sockets(ch))?;

        // firmware before 01.008 has no recvind and says ERROR: probe without AT+QIGETERROR
        let probe = Fixed(RECVIND_ON);
        let recvind = config.recvind
            && aw!(ch.exec_line(&probe, Kind::Plain, crate::commands::DEFAULT_TIMEOUT_MS, &mut |_| Ok(()))).is_ok();
        ch.state(|s| s.modem.recvind = recvind);
        Ok(ModemInfo { revision, local_ip, recvind, stale_sockets_closed })
    })
}

fn wait_for_sim<Ch: Channel>(ch: &mut Ch, config: &Config) -> Ret!(Result<()>) {
    run!({
        let deadline = ch.now().after_ms(config.timeouts.sim_ms);
        loop {
            match aw!(command(ch, &CpinRead)) {
                Ok(SimState::Ready) => return Ok(()),
                Ok(_) | Err(Error::Cme(_) | Error::Failed) if !deadline.reached(ch.now()) => {
                    aw!(ch.sleep_ms(config.timeouts.poll_interval_ms))
                }
                Ok(_) | Err(Error::Cme(_) | Error::Failed) => return Err(Error::SimNotReady),
                Err(e) => return Err(e),
            }
        }
    })
}

fn wait_for_registration<Ch: Channel>(ch: &mut Ch, config: &Config) -> Ret!(Result<()>) {
    run!({
        let start = ch.now();
        let cs_deadline = start.after_ms(config.timeouts.registration_ms);
        let mut ps_deadline = None;
        loop {
            let cs = aw!(command(ch, &RegistrationRead(Domain::Cs))).map(|r| r.is_registered()).unwrap_or(false);
            let ps = aw!(command(ch, &RegistrationRead(Domain::Eps))).map(|r| r.is_registered()).unwrap_or(false)
                || aw!(command(ch, &RegistrationRead(Domain::Gprs))).map(|r| r.is_registered()).unwrap_or(false);
            let now = ch.now();
            if ps {
                return Ok(());
            }
            if cs && ps_deadline.is_none() {
                ps_deadline = Some(now.after_ms(config.timeouts.ps_registration_ms));
            }
            match ps_deadline {
                // Figure 1: go on after 60 s whether PS registration happened or not
                Some(d) if d.reached(now) => return Ok(()),
                None if cs_deadline.reached(now) => return Err(Error::NotRegistered),
                _ => aw!(ch.sleep_ms(config.timeouts.poll_interval_ms)),
            }
        }
    })
}

/// Activates `context_id` unless it is active already (`AT+QIACT` on an active context is an
/// error, field note 12) and returns its local address.
pub fn activate_context<Ch: Channel>(ch: &mut Ch, context_id: u8) -> Ret!(Result<Option<IpAddr>>) {
    run!({
        crate::commands::check_context(context_id)?;
        let was_active = aw!(active_address(ch, context_id))?;
        if was_active.is_none()
            && let Err(e) = aw!(command(ch, &Qiact { context_id }))
        {
            if matches!(e, Error::Timeout) {
                // Figure 1: no answer to AT+QIACT in 150 s: reboot
                ch.state(|s| s.recovery.reboot_needed = true);
            }
            return Err(e);
        }
        ch.state(|s| s.modem.set_context_active(context_id, true));
        match was_active {
            Some(ip) => Ok(ip),
            None => Ok(aw!(active_address(ch, context_id))?.flatten()),
        }
    })
}

/// `AT+QIACT?`, reduced to the address of `context_id` if it is active (the list of contexts
/// is not kept by the caller: in the async front it would be part of every future that may
/// activate a context).
fn active_address<Ch: Channel>(ch: &mut Ch, context_id: u8) -> Ret!(Result<Option<Option<IpAddr>>>) {
    command_reduced(ch, &QiactRead, move |resp| QiactRead::active_address(resp, context_id))
}

/// Deactivates a context (`AT+QIDEACT`, up to 40 s). Figure 1: no answer in 40 s, or three
/// failures in a row, and the modem is rebooted.
pub fn deactivate_context<Ch: Channel>(ch: &mut Ch, context_id: u8) -> Ret!(Result<()>) {
    run!({
        crate::commands::check_context(context_id)?;
        if let Err(e) = aw!(command(ch, &Qideact { context_id })) {
            let max = ch.policy().max_deactivate_failures;
            ch.state(|s| {
                let r = &mut s.recovery;
                r.deactivate_failures = r.deactivate_failures.saturating_add(1);
                if matches!(e, Error::Timeout) || r.deactivate_failures >= max {
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
                    let reason =
                        (slot.state != SlotState::PendingClose).then_some(Error::ContextDeactivated(context_id));
                    slot.release(SlotState::Free, reason);
                }
            }
        });
        Ok(())
    })
}

/// Makes sure the context is usable: after a `pdpdeact` it is checked with `AT+QIACT?` and
/// activated again.
pub fn ensure_context<Ch: Channel>(ch: &mut Ch, context_id: u8) -> Ret!(Result<()>) {
    run!({
        crate::commands::check_context(context_id)?;
        if ch.state(|s| s.modem.context_active(context_id)) {
            return Ok(());
        }
        // one re-activation at a time: others wait for it and find the context active
        aw!(claim(ch))?;
        let result = if ch.state(|s| s.modem.context_active(context_id)) {
            Ok(())
        } else {
            let deactivated = ch.state(|s| s.modem.deactivated_contexts & (1 << context_id) != 0);
            if deactivated {
                // manual 2.2.5: the host must execute AT+QIDEACT after a pdpdeact
                let _ = aw!(command(ch, &Qideact { context_id }));
                ch.state(|s| s.modem.deactivated_contexts &= !(1 << context_id));
            }
            aw!(activate_context(ch, context_id)).map(|_| ())
        };
        unclaim(ch);
        result
    })
}

/// Closes every socket the modem has open (left over from an earlier run of the host, field
/// note 12). Returns how many were closed. `AT+QISTATE?` lists them; when its answer does not
/// fit the response buffer, each connectID is queried on its own (`AT+QISTATE=1,<id>`).
pub fn close_stale_sockets<Ch: Channel>(ch: &mut Ch) -> Ret!(Result<u8>) {
    run!({
        // a bit per connectID the modem lists (the list itself is not kept)
        let open = match aw!(command_reduced(ch, &Qistate::All, Qistate::connect_ids)) {
            // twelve sockets with long (IPv6) addresses do not fit the response buffer
            // (`core::RESP_CAP`): ask one connectID at a time
            Err(Error::Overflow) => {
                let mut open = 0;
                for id in 0..crate::socket::CONNECT_IDS as u8 {
                    open |= aw!(command_reduced(ch, &Qistate::Socket(id), Qistate::connect_ids))?;
                }
                open
            }
            other => other?,
        };
        let mut closed = 0;
        for connect_id in (0..crate::socket::CONNECT_IDS as u8).filter(|id| open & (1 << id) != 0) {
            let known = ch.state(|st| st.sockets.get(connect_id).is_some_and(|slot| slot.state != SlotState::Free));
            if known {
                continue;
            }
            if aw!(command(ch, &Qiclose { connect_id, timeout_s: None })).is_ok() {
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
    })
}

/// Sends `AT+QICLOSE` for every slot nobody owns any more (failed opens, dropped async
/// connections, sockets of a deactivated context). Only the front's one closer calls this
/// (see [`Channel::reclaim`]).
pub fn close_pending<Ch: Channel>(ch: &mut Ch) -> Ret!(Result<()>) {
    run!({
        while let Some(r) = ch.state(|s| s.sockets.claim_close()) {
            aw!(close_claimed(ch, r))?;
        }
        Ok(())
    })
}

/// `AT+QICLOSE` on the socket `r` refers to (nothing if it is gone already); the slot is free
/// afterwards, or queued to be closed again later if the modem did not answer.
pub fn close_slot<Ch: Channel>(ch: &mut Ch, r: SlotRef) -> Ret!(Result<()>) {
    run!({
        let claimed = ch.state(|s| match s.sockets.current_mut(r) {
            Ok(slot) if slot.state != SlotState::Closing => {
                // an open still waiting for its result: that result may still come (before the
                // close's answer, or any time if the close fails)
                slot.give_up_open();
                slot.state = SlotState::Closing;
                true
            }
            _ => false,
        });
        if claimed { aw!(close_claimed(ch, r)) } else { Ok(()) }
    })
}

/// Closes a slot the caller claimed ([`SlotState::Closing`]). The engine refuses the command
/// if the slot changed hands meanwhile, so the close never hits a new connection.
fn close_claimed<Ch: Channel>(ch: &mut Ch, r: SlotRef) -> Ret!(Result<()>) {
    run!({
        let cmd = Qiclose { connect_id: r.connect_id, timeout_s: None };
        let result = aw!(command_with(ch, &cmd, Kind::Close(r), cmd.timeout_ms()));
        if matches!(result, Err(Error::Timeout)) {
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
                let next = if matches!(result, Ok(()) | Err(Error::Rebooted)) {
                    SlotState::Free
                } else {
                    SlotState::PendingClose
                };
                slot.release(next, None);
                if next == SlotState::Free {
                    // the modem has no socket on this connectID any more (or rebooted): no
                    // result of an earlier attempt can follow
                    slot.stale_open = None;
                }
            }
        });
        result
    })
}

/// Sends `AT+QIOPEN` on a free connectID; the outcome arrives later as `+QIOPEN` (see
/// [`open_result`]). Retries on another connectID if the modem says the one chosen is taken.
/// Run [`ensure_ready`] first.
pub fn start_open<Ch: Channel>(ch: &mut Ch, p: &OpenParams<'_>) -> Ret!(Result<SlotRef>) {
    run!({
        // Figure 1: after 5 failed opens in a row, deactivate and activate the context again
        let max_open_failures = ch.policy().max_open_failures;
        if ch.state(|s| s.recovery.open_failures) >= max_open_failures {
            warn!("{} failed opens in a row: re-activating context {}", max_open_failures, p.context_id);
            aw!(deactivate_context(ch, p.context_id))?;
            aw!(activate_context(ch, p.context_id))?;
            ch.state(|s| s.recovery.open_failures = 0);
        }
        p.access_mode.supported()?;
        p.service_type.supported()?;
        aw!(ensure_context(ch, p.context_id))?;
        aw!(ch.reclaim())?;
        let mut avoid = 0u16;
        loop {
            let now = ch.now();
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
                    slot.opened_at = now;
                    slot.local_port = p.local_port;
                    if let Host::Ip(ip) = p.remote {
                        slot.remote = Some(crate::wire::socket_addr(ip, p.remote_port));
                    }
                }
            });
            let r = ch.state(|s| s.sockets.slot_ref(id)).ok_or(Error::InvalidState)?;
            let kind = if p.access_mode == AccessMode::Transparent {
                Kind::Connect { connect_id: Some(id) }
            } else {
                Kind::Plain
            };
            match aw!(command_with(ch, &cmd, kind, cmd.timeout_ms())) {
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
                            if matches!(e, Error::Timeout) {
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
    })
}

/// Waits for the deferred result of an open (150 s, Figure 1); on a timeout the socket is
/// closed with `AT+QICLOSE`.
pub fn finish_open<Ch: Channel>(ch: &mut Ch, r: SlotRef) -> Ret!(Result<()>) {
    run!({
        let deadline = ch.now().after_ms(<Qiopen<'_> as atat::AtatCmd>::MAX_TIMEOUT_MS);
        match aw!(ch.wait_for(deadline, |s| open_result(s, r))) {
            Ok(result) => result,
            Err(Error::Timeout) => {
                ch.state(|s| s.recovery.open_failures = s.recovery.open_failures.saturating_add(1));
                let _ = aw!(close_slot(ch, r));
                Err(Error::Timeout)
            }
            Err(e) => Err(e),
        }
    })
}

/// How long a DNS query may take (the `AT+QIDNSGIP` results).
const DNS_MS: u32 = <Qidnsgip<'_> as atat::AtatCmd>::MAX_TIMEOUT_MS;

/// Starts `AT+QIDNSGIP` (one query at a time: [`Error::Busy`] while another runs).
pub fn start_dns<Ch: Channel>(ch: &mut Ch, context_id: u8, hostname: &str) -> Ret!(Result<()>) {
    run!({
        crate::commands::Qidnsgip { context_id, hostname }.write_to(&mut crate::wire::Discard)?;
        aw!(ensure_context(ch, context_id))?;
        let now = ch.now();
        let until = now.after_ms(DNS_MS);
        let ticket = ch.state(|s| s.dns_free(now, DNS_MS).then(|| s.start_dns(until)));
        let Some(ticket) = ticket else {
            return Err(Error::Busy);
        };
        ch.dns_started(ticket);
        let r = aw!(command(ch, &Qidnsgip { context_id, hostname }));
        if r.is_err() {
            ch.state(|s| s.dns.pending = false);
        }
        r.map(|_| ())
    })
}

/// Resolves a name with `AT+QIDNSGIP` and waits for the result (60 s).
pub fn resolve<Ch: Channel>(
    ch: &mut Ch,
    context_id: u8,
    hostname: &str,
    addr_type: embedded_nal::AddrType,
) -> Ret!(Result<IpAddr>) {
    run!({
        if let Some(ip) = crate::wire::parse_ip(hostname.as_bytes()) {
            return Ok(ip);
        }
        // one query at a time: wait for a running one to finish
        let deadline = ch.now().after_ms(DNS_MS);
        loop {
            match aw!(start_dns(ch, context_id, hostname)) {
                Err(Error::Busy) => {
                    // until the running query ends, or its own time is up (then it is taken
                    // over); one whose time is already up leaves the wait at once
                    let now = ch.now();
                    let until = ch.state(|s| s.dns.until);
                    let until = if until.diff_ms(deadline) < 0 { until } else { deadline };
                    match aw!(ch.wait_for(until, |s| s.dns_free(now, DNS_MS).then_some(()))) {
                        Err(Error::Timeout) if !deadline.reached(ch.now()) => {}
                        other => other?,
                    }
                }
                other => break other?,
            }
        }
        let deadline = ch.now().after_ms(DNS_MS);
        match aw!(ch.wait_for(deadline, |s| dns_result(s, &addr_type))) {
            Ok(r) => r,
            Err(e) => {
                ch.state(|s| s.dns.pending = false);
                Err(e)
            }
        }
    })
}

/// Reads once from a socket whose data was announced, and keeps the socket's receive state:
/// a read shorter than asked for emptied the modem's buffer, which re-arms the `recv` URC
/// (unless one arrived while the read ran); a datagram socket may hold more datagrams and is
/// read until the modem says 0.
pub fn read_socket<Ch: Channel>(ch: &mut Ch, r: SlotRef, buf: &mut [u8]) -> Ret!(Result<ReadOutcome>) {
    run!({
        let before = ch.state(|s| s.sockets.current(r).copied())?;
        let datagram = before.service.is_udp();
        let service = cfg!(feature = "server") && before.service == ServiceType::UdpService;
        let want = if service { None } else { Some(buf.len().min(MAX_READ)) };
        if want == Some(0) {
            return Ok(ReadOutcome::Data { len: 0, remote: before.remote });
        }
        let cmd = Qird { connect_id: r.connect_id, len: want.map(|w| w as u16) };
        let info = match aw!(ch.read(&cmd, buf)) {
            Ok(info) => info,
            Err(Error::Failed) if !Ch::RESOLVES_ERRORS => return Err(aw!(last_error(ch))),
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
                return Err(Error::Truncated { len: u16::try_from(info.len).unwrap_or(u16::MAX) });
            }
            Ok(ReadOutcome::Data { len: info.len, remote: info.remote.or(slot.remote) })
        })
    })
}

/// Switches a socket's data access mode with `AT+QISWTMD` (buffer or direct push; transparent
/// mode is entered through the fronts, which own the byte stream then).
pub fn switch_mode<Ch: Channel>(ch: &mut Ch, r: SlotRef, mode: AccessMode) -> Ret!(Result<()>) {
    run!({
        mode.supported()?;
        let slot = ch.state(|s| s.sockets.current(r).copied())?;
        if mode == AccessMode::Transparent
            || slot.service != ServiceType::Tcp && slot.service != ServiceType::TcpIncoming
        {
            return Err(Error::InvalidArgument);
        }
        if slot.mode == mode {
            return Ok(());
        }
        let cmd = Qiswtmd { connect_id: r.connect_id, access_mode: mode };
        aw!(command_with(ch, &cmd, Kind::Switch { connect_id: r.connect_id, mode }, cmd.timeout_ms()))?;
        ch.state(|s| {
            if let Ok(slot) = s.sockets.current_mut(r) {
                slot.push_throttle = false;
            }
        });
        Ok(())
    })
}

/// Switches direct-push sockets whose host buffer is nearly full to buffer access mode: the
/// peer's data then waits in the modem (and behind it, in TCP flow control) instead of being
/// lost. Reads take the buffered data first, then continue with `AT+QIRD`.
pub fn apply_throttles<Ch: Channel>(ch: &mut Ch) -> Ret!(Result<()>) {
    run!({
        while let Some(r) = ch.state(|s| s.sockets.throttled()) {
            if let Err(e) = aw!(switch_mode(ch, r, AccessMode::Buffer)) {
                ch.state(|s| {
                    if let Ok(slot) = s.sockets.current_mut(r) {
                        slot.push_throttle = false;
                    }
                });
                return Err(e);
            }
        }
        Ok(())
    })
}

/// `AT+QPING`: pings `host` and waits for every reply and the summary (one ping at a time).
#[cfg(feature = "ping")]
pub fn ping<Ch: Channel>(
    ch: &mut Ch,
    context_id: u8,
    host: Host<'_>,
    timeout_s: Option<u8>,
    count: Option<u8>,
) -> Ret!(Result<PingResult>) {
    run!({
        let cmd = crate::commands::Qping { context_id, host, timeout_s, count };
        cmd.write_to(&mut crate::wire::Discard)?;
        aw!(ensure_context(ch, context_id))?;
        let now = ch.now();
        let until = now.after_ms(cmd.results_timeout_ms());
        let expected = count.unwrap_or(4);
        let claimed = ch.state(|s| {
            if s.ping.pending && !s.ping.until.expired(now, crate::commands::Qping::MAX_RESULTS_MS) {
                return false;
            }
            s.ping = crate::core::PingState { pending: true, until, expected, ..Default::default() };
            true
        });
        if !claimed {
            return Err(Error::Busy);
        }
        let result = match aw!(command(ch, &cmd)) {
            Ok(_) => aw!(ch.wait_for(until, |s| s.ping.done.take())),
            Err(e) => Err(e),
        };
        let replies = ch.state(|s| {
            s.ping.pending = false;
            s.ping.replies.iter().map(|r| r.map_err(ErrorCode::from_code)).collect()
        });
        match result? {
            Ok(summary) => Ok(PingResult { replies, summary }),
            Err(code) => Err(Error::Modem(ErrorCode::from_code(code))),
        }
    })
}

/// `AT+QNTP`: synchronises with an NTP server and returns the time it gave (one at a time).
#[cfg(feature = "ntp")]
pub fn sync_time<Ch: Channel>(
    ch: &mut Ch,
    context_id: u8,
    server: Host<'_>,
    port: Option<u16>,
    set_clock: Option<bool>,
) -> Ret!(Result<crate::commands::NtpTime>) {
    run!({
        let cmd = crate::commands::Qntp { context_id, server, port, set_clock };
        cmd.write_to(&mut crate::wire::Discard)?;
        aw!(ensure_context(ch, context_id))?;
        let now = ch.now();
        let until = now.after_ms(cmd.results_timeout_ms());
        let claimed = ch.state(|s| {
            if s.ntp.pending && !s.ntp.until.expired(now, crate::commands::Qntp::RESULTS_MS) {
                return false;
            }
            s.ntp = crate::core::NtpState { pending: true, until, done: None };
            true
        });
        if !claimed {
            return Err(Error::Busy);
        }
        let result = match aw!(command(ch, &cmd)) {
            Ok(_) => aw!(ch.wait_for(until, |s| s.ntp.done.take())),
            Err(e) => Err(e),
        };
        ch.state(|s| s.ntp.pending = false);
        result?.map_err(|code| Error::Modem(ErrorCode::from_code(code)))
    })
}

/// `AT+QICFG`: changes a setting. The stack reads text data with header and data on separate
/// lines, so hex data formats and view mode 1 are refused ([`Error::NotSupported`]).
pub fn configure<Ch: Channel>(ch: &mut Ch, setting: QicfgSetting<'_>) -> Ret!(Result<()>) {
    run!({
        match setting {
            QicfgSetting::DataFormat { send_hex: true, .. }
            | QicfgSetting::DataFormat { recv_hex: true, .. }
            | QicfgSetting::ViewMode(1..) => return Err(Error::NotSupported),
            _ => {}
        }
        aw!(command(ch, &Qicfg(setting)))?;
        if let QicfgSetting::RecvInd(on) = setting {
            ch.state(|s| s.modem.recvind = on);
        }
        Ok(())
    })
}

/// `AT+QISDE`: payload echo on or off (the stack skips the echo either way).
pub fn set_payload_echo<Ch: Channel>(ch: &mut Ch, echo: bool) -> Ret!(Result<()>) {
    run!({
        aw!(command(ch, &Qisde { echo }))?;
        ch.state(|s| s.modem.payload_echo = echo);
        Ok(())
    })
}

/// `AT+QISENDEX`: sends bytes written as hex (1–256 bytes; `SEND FAIL` is [`Error::SendFail`]).
pub fn send_hex<Ch: Channel>(ch: &mut Ch, r: SlotRef, data: &[u8]) -> Ret!(Result<()>) {
    run!({
        let slot = ch.state(|s| s.sockets.current(r).copied())?;
        if slot.service.is_server() {
            return Err(Error::InvalidArgument);
        }
        aw!(command(ch, &crate::commands::Qisendex { connect_id: r.connect_id, data })).map(|_| ())
    })
}

/// Before each operation: finishes what recovery left to do (Figure 1). Reboots if a rule
/// asked for it, brings the modem up again after it rebooted by itself (an unsolicited
/// `RDY`), and checks a modem that left a command unanswered with `AT`.
pub fn ensure_ready<Ch: Channel>(ch: &mut Ch, config: &Config) -> Ret!(Result<()>) {
    run!({
        if !ch.state(|s| super::recovery_due(s)) {
            return Ok(());
        }
        aw!(claim(ch))?;
        let result = loop {
            let (rec, rebooted) = ch.state(|s| (s.recovery, s.modem.rebooted));
            if rec.reboot_needed {
                break aw!(reboot_claimed(ch, config)).map(|_| ());
            }
            if rebooted && rec.brought_up {
                info!("the modem restarted: bringing it up again");
                break aw!(bring_up_claimed(ch, config)).map(|_| ());
            }
            if rec.suspect {
                match aw!(ch.exec_line(&Fixed(ATTENTION), Kind::Plain, 1_000, &mut |_| Ok(()))) {
                    Ok(_) => ch.state(|s| s.recovery.suspect = false),
                    // it restarted (RDY) while we asked: bring it up, no reboot needed
                    Err(Error::Rebooted) => ch.state(|s| s.recovery.suspect = false),
                    Err(_) => ch.state(|s| s.recovery.reboot_needed = true),
                }
                continue;
            }
            break Ok(());
        };
        unclaim(ch);
        result
    })
}

/// Reboots the modem (`AT+CFUN=1,1`; the reset line or the power key if it does not answer
/// and the board has them) and brings it up again, within the reboot back-off of Figure 1.
pub fn reboot<Ch: Channel>(ch: &mut Ch, config: &Config) -> Ret!(Result<ModemInfo>) {
    run!({
        aw!(claim(ch))?;
        let result = aw!(reboot_claimed(ch, config));
        unclaim(ch);
        result
    })
}

fn reboot_claimed<Ch: Channel>(ch: &mut Ch, config: &Config) -> Ret!(Result<ModemInfo>) {
    run!({
        let now = ch.now();
        let (mut n, last) = ch.state(|s| (s.recovery.reboots + 1, s.recovery.last_reboot));
        // ms since the last reboot; a negative distance means more than 24.8 days (`Instant`
        // wraps): as good as never
        let since = last.map(|t| u32::try_from(now.diff_ms(t)).unwrap_or(u32::MAX));
        if since.is_some_and(|s| s > crate::recovery::SERIES_RESET_MS) {
            n = 1;
        }
        let wait = ch.policy().delay_before(n);
        if let Some(since) = since.filter(|s| *s < wait) {
            let retry_in_s = u16::try_from((wait - since).div_ceil(1000)).unwrap_or(u16::MAX);
            return Err(Error::RebootBackoff { retry_in_s });
        }
        warn!("rebooting the modem ({} in this series)", n);
        ch.state(|s| {
            let r = &mut s.recovery;
            (r.reboots, r.last_reboot, r.reboot_needed, r.suspect) = (n, Some(now), false, false);
            r.total_reboots = r.total_reboots.saturating_add(1);
            s.modem.rebooted = false;
        });
        let soft = aw!(exec(ch, &crate::commands::Cfun { fun: 1, reset: true }, Kind::Plain, 15_000));
        if soft.is_err() {
            aw!(hard_reset(ch));
        }
        // the modem says RDY when it is back
        let deadline = ch.now().after_ms(config.timeouts.sync_ms);
        let _ = aw!(ch.wait_for(deadline, |s| s.modem.rebooted.then_some(())));
        let result = aw!(bring_up_claimed(ch, config));
        if result.is_err() {
            ch.state(|s| s.recovery.reboot_needed = true);
        }
        result
    })
}

/// Resets a modem that does not answer: the reset line if wired, else the power key (off,
/// then on). Returns whether the board could do anything.
pub fn hard_reset<Ch: Channel>(ch: &mut Ch) -> Ret!(bool) {
    run!({
        use crate::recovery::{POWER_KEY_PULSE_MS, RESET_PULSE_MS};
        let (reset, key) = ch.with_power(|p| (p.has_reset(), p.has_power_key()));
        if reset {
            ch.with_power(|p| p.set_reset(true));
            aw!(ch.sleep_ms(RESET_PULSE_MS));
            ch.with_power(|p| p.set_reset(false));
            return true;
        }
        if key {
            for _ in 0..2 {
                // a press switches a running modem off, the second one on again
                ch.with_power(|p| p.set_power_key(true));
                aw!(ch.sleep_ms(POWER_KEY_PULSE_MS));
                ch.with_power(|p| p.set_power_key(false));
                aw!(ch.sleep_ms(POWER_KEY_PULSE_MS));
            }
            return true;
        }
        warn!("the modem does not answer and the board cannot reset it");
        false
    })
}

/// Switches the modem on with the power key (pressed 2 s, Figure 1) and waits for `RDY`.
pub fn power_on<Ch: Channel>(ch: &mut Ch, config: &Config) -> Ret!(Result<()>) {
    run!({
        if !ch.with_power(|p| p.has_power_key()) {
            return Err(Error::NotSupported);
        }
        ch.with_power(|p| {
            p.set_supply(true);
            p.set_power_key(true);
        });
        aw!(ch.sleep_ms(crate::recovery::POWER_KEY_PULSE_MS));
        ch.with_power(|p| p.set_power_key(false));
        let deadline = ch.now().after_ms(config.timeouts.sync_ms);
        aw!(ch.wait_for(deadline, |s| s.modem.rebooted.then_some(())))
    })
}

/// Figure 1's power-off: `AT+QPOWD=1`, wait for `POWERED DOWN`, then 12 s more before the
/// supply is cut (where the board can cut it).
pub fn power_down<Ch: Channel>(ch: &mut Ch) -> Ret!(Result<()>) {
    run!({
        aw!(command(ch, &crate::commands::Qpowd { normal: true }))?;
        let deadline = ch.now().after_ms(60_000);
        let _ = aw!(ch.wait_for(deadline, |s| s.modem.powered_down.then_some(())));
        aw!(ch.sleep_ms(crate::recovery::POWER_DOWN_WAIT_MS));
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
    })
}

/// Figure 1's ACK supervision: for sockets with a check due, `AT+QISEND=<id>,0`; nothing
/// unacknowledged ends the checks; still unacknowledged after the last check closes the
/// connection, whose owner is told [`Error::Timeout`].
pub fn supervise_acks<Ch: Channel>(ch: &mut Ch) -> Ret!(Result<()>) {
    run!({
        let policy = ch.policy();
        let now = ch.now();
        while let Some(r) = ch.state(|s| s.sockets.ack_due(now, policy.ack_interval_ms)) {
            let counters = aw!(command(ch, &crate::commands::QisendQuery { connect_id: r.connect_id }));
            let now = ch.now();
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
                            slot.ack_due = Some(now.after_ms(policy.ack_interval_ms));
                        }
                    }
                    Err(_) => slot.ack_due = Some(now.after_ms(policy.ack_interval_ms)),
                }
            });
        }
        Ok(())
    })
}
