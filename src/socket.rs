//! The socket table: the host's view of the modem's 12 connectIDs.
//!
//! Each slot says what the modem has on that connectID and what the host knows about it:
//! whether data is waiting (from `recv` URCs, `recvind` lengths and short reads), whether the
//! peer closed, whether the socket was lost to a reboot or a context deactivation. A slot's
//! `generation` changes whenever the slot is given up, so a handle that outlived its socket is
//! recognised instead of touching somebody else's connection.

use core::net::SocketAddr;

use crate::clock::Instant;
use crate::commands::{AccessMode, ServiceType};
use crate::error::Error;

/// Number of connectIDs of the BG96 (0–11), shared by clients, listeners, incoming connections
/// and UDP services.
pub const CONNECT_IDS: usize = 12;

/// What a connectID is used for, as far as the host knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SlotState {
    /// Free at the modem.
    Free,
    /// `AT+QIOPEN` answered `OK`; waiting for `+QIOPEN: <id>,<err>`.
    Opening,
    /// Open: a connected client, a listener, a UDP service or an accepted connection.
    Open,
    /// A connection the modem accepted on a listener and the host has not taken yet.
    Incoming,
    /// Nobody owns it but the modem still holds it: `AT+QICLOSE` must be sent before reuse.
    PendingClose,
    /// `AT+QICLOSE` is on its way (one closer has claimed it); not to be reused or released
    /// by anybody else.
    Closing,
}

/// One connectID.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Slot {
    /// What the connectID is used for.
    pub state: SlotState,
    /// Changes each time the slot is given up.
    pub generation: u16,
    /// Service type.
    pub service: ServiceType,
    /// Data access mode.
    pub mode: AccessMode,
    /// Context the socket belongs to.
    pub context_id: u8,
    /// Remote address (clients and incoming connections).
    pub remote: Option<SocketAddr>,
    /// Local port (listeners and UDP services).
    pub local_port: u16,
    /// For incoming connections: the listener's connectID.
    pub server_id: u8,
    /// The deferred result of `AT+QIOPEN` (0 = success).
    pub open_result: Option<u16>,
    /// Received data may be waiting in the modem.
    pub rx_ready: bool,
    /// Bytes known to be waiting in the modem (from `recvind` or `AT+QIRD=<id>,0`).
    pub rx_known: u32,
    /// The peer (or the network) closed the connection.
    pub peer_closed: bool,
    /// Direct-push bytes dropped because the host buffer was full.
    pub push_lost: u32,
    /// The host buffer of a direct-push socket is nearly full: switch it to buffer access mode
    /// so further data waits in the modem.
    pub push_throttle: bool,
    /// ACK supervision: when to ask `AT+QISEND=<id>,0` next.
    pub ack_due: Option<Instant>,
    /// ACK supervision: checks so far that found unacknowledged data.
    pub ack_checks: u8,
    /// A send was cut short (lost prompt, cancellation): the byte stream is broken and sends
    /// fail with [`Error::Closed`].
    pub tx_broken: bool,
    /// When the running `AT+QIOPEN` went out.
    pub opened_at: Instant,
    /// The slot was given up while its `AT+QIOPEN` result was still outstanding: until this
    /// time (the attempt's start plus the 150 s the modem may take) a late `+QIOPEN` for
    /// this connectID belongs to that old attempt, not to a new one. Cleared once an
    /// `AT+QICLOSE` of the connectID succeeds: the modem then has no socket whose result could
    /// follow.
    pub stale_open: Option<Instant>,
    /// Counts `recv`/`closed` URCs (wrapping), so a read can tell whether one arrived while it
    /// ran.
    pub rx_events: u8,
    /// Why the previous generation of this slot ended, if it did not end by a host close.
    pub lost: Option<(u16, Error)>,
}

impl Slot {
    const fn new() -> Self {
        Self {
            state: SlotState::Free,
            generation: 0,
            service: ServiceType::Tcp,
            mode: AccessMode::Buffer,
            context_id: 1,
            remote: None,
            local_port: 0,
            server_id: 0,
            open_result: None,
            rx_ready: false,
            rx_known: 0,
            peer_closed: false,
            push_lost: 0,
            push_throttle: false,
            ack_due: None,
            ack_checks: 0,
            opened_at: Instant::from_ms(0),
            stale_open: None,
            tx_broken: false,
            rx_events: 0,
            lost: None,
        }
    }

    /// Gives the slot up: it becomes `state`, and handles of the old generation are stale.
    /// `reason` is what those handles will be told.
    pub fn release(&mut self, state: SlotState, reason: Option<Error>) {
        self.give_up_open();
        self.reset(state, reason);
    }

    /// Gives the slot up after the modem answered its `AT+QIOPEN` with an error: no
    /// `+QIOPEN` of that attempt will come, so the slot is not marked as awaiting one.
    pub fn release_refused(&mut self, state: SlotState) {
        self.reset(state, None);
    }

    fn reset(&mut self, state: SlotState, reason: Option<Error>) {
        let generation = self.generation.wrapping_add(1);
        let lost = reason.map(|r| (self.generation, r)).or(self.lost);
        *self = Self { state, generation, lost, stale_open: self.stale_open, ..Self::new() };
    }

    /// An open still waiting for its `+QIOPEN` is given up: that result may yet come.
    pub fn give_up_open(&mut self) {
        if self.state == SlotState::Opening && self.open_result.is_none() {
            let until = self.opened_at.after_ms(OPEN_RESULT_MS);
            // the later of the two (both lie within 150 s of now)
            self.stale_open = Some(match self.stale_open {
                Some(t) if t.diff_ms(until) > 0 => t,
                _ => until,
            });
        }
    }

    /// Takes a free slot for a new service.
    pub fn occupy(&mut self, state: SlotState, service: ServiceType, mode: AccessMode, context_id: u8) {
        let (generation, lost, stale_open) = (self.generation, self.lost, self.stale_open);
        *self = Self { state, generation, lost, stale_open, service, mode, context_id, ..Self::new() };
    }
}

/// How long the modem may take to report `+QIOPEN` (ms; field note 19).
pub const OPEN_RESULT_MS: u32 = 150_000;

/// A reference from a handle to a slot: connectID plus the generation it was taken in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SlotRef {
    /// The connectID.
    pub connect_id: u8,
    /// The slot's generation when the handle took it.
    pub generation: u16,
}

/// The 12 slots.
#[derive(Debug)]
pub struct SocketTable {
    slots: [Slot; CONNECT_IDS],
}

impl Default for SocketTable {
    fn default() -> Self {
        Self::new()
    }
}

impl SocketTable {
    /// All slots free.
    pub const fn new() -> Self {
        Self { slots: [Slot::new(); CONNECT_IDS] }
    }

    /// The slot of a connectID (`None` outside 0–11).
    pub fn get(&self, connect_id: u8) -> Option<&Slot> {
        self.slots.get(usize::from(connect_id))
    }

    /// The slot of a connectID, mutable.
    pub fn get_mut(&mut self, connect_id: u8) -> Option<&mut Slot> {
        self.slots.get_mut(usize::from(connect_id))
    }

    /// The slot a handle refers to, if the handle is still current; otherwise why it is not.
    pub fn current(&self, r: SlotRef) -> Result<&Slot, Error> {
        let slot = self.get(r.connect_id).ok_or(Error::InvalidState)?;
        if slot.generation == r.generation && slot.state != SlotState::Free {
            Ok(slot)
        } else {
            Err(Self::stale_reason(slot, r))
        }
    }

    /// Mutable variant of [`SocketTable::current`].
    pub fn current_mut(&mut self, r: SlotRef) -> Result<&mut Slot, Error> {
        let slot = self.slots.get_mut(usize::from(r.connect_id)).ok_or(Error::InvalidState)?;
        if slot.generation == r.generation && slot.state != SlotState::Free {
            Ok(slot)
        } else {
            Err(Self::stale_reason(slot, r))
        }
    }

    fn stale_reason(slot: &Slot, r: SlotRef) -> Error {
        match slot.lost {
            Some((generation, reason)) if generation == r.generation => reason,
            _ => Error::Closed,
        }
    }

    /// A reference to the slot of `connect_id` in its current generation.
    pub fn slot_ref(&self, connect_id: u8) -> Option<SlotRef> {
        self.get(connect_id).map(|s| SlotRef { connect_id, generation: s.generation })
    }

    /// A free connectID, lowest first (the modem hands incoming connections the highest free
    /// ones, so starting low makes collisions rare). `avoid` skips ids the modem rejected.
    /// `now` expires old attempts' outstanding results (see [`Slot::stale_open`]).
    pub fn find_free(&mut self, avoid: u16, now: Instant) -> Option<u8> {
        for s in &mut self.slots {
            if s.stale_open.is_some_and(|until| until.expired(now, OPEN_RESULT_MS)) {
                s.stale_open = None;
            }
        }
        let free = |stale_ok: bool| {
            (0..CONNECT_IDS as u8).find(|&id| {
                avoid & (1 << id) == 0
                    && self.get(id).is_some_and(|s| s.state == SlotState::Free && (stale_ok || s.stale_open.is_none()))
            })
        };
        // an id whose old +QIOPEN result may still come only if there is no other
        free(false).or_else(|| free(true))
    }

    /// Iterates over `(connect_id, slot)`.
    pub fn iter(&self) -> impl Iterator<Item = (u8, &Slot)> {
        self.slots.iter().enumerate().map(|(i, s)| (i as u8, s))
    }

    /// Iterates mutably over `(connect_id, slot)`.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u8, &mut Slot)> {
        self.slots.iter_mut().enumerate().map(|(i, s)| (i as u8, s))
    }

    /// How many slots are not free.
    pub fn in_use(&self) -> usize {
        self.slots.iter().filter(|s| s.state != SlotState::Free).count()
    }

    /// A direct-push socket whose host buffer is nearly full.
    pub fn throttled(&self) -> Option<SlotRef> {
        self.iter()
            .find(|(_, s)| s.push_throttle && s.mode == AccessMode::DirectPush && s.state == SlotState::Open)
            .map(|(id, s)| SlotRef { connect_id: id, generation: s.generation })
    }

    /// The first socket whose acknowledgement check is due at `now` (`interval_ms`: how far
    /// ahead checks are scheduled, see [`Instant::expired`]).
    pub fn ack_due(&self, now: Instant, interval_ms: u32) -> Option<SlotRef> {
        self.iter()
            .find(|(_, s)| s.state == SlotState::Open && s.ack_due.is_some_and(|t| t.expired(now, interval_ms)))
            .map(|(id, s)| SlotRef { connect_id: id, generation: s.generation })
    }

    /// When the next acknowledgement check is due (the earliest, seen from `now`; `now` for
    /// one that is overdue).
    pub fn next_ack_due(&self, now: Instant, interval_ms: u32) -> Option<Instant> {
        self.slots
            .iter()
            .filter(|s| s.state == SlotState::Open)
            .filter_map(|s| s.ack_due)
            .map(|t| if t.expired(now, interval_ms) { now } else { t })
            .min_by_key(|t| t.diff_ms(now))
    }

    /// Whether one of the stack's sockets holds `local_port`.
    pub fn port_in_use(&self, local_port: u16) -> bool {
        self.iter().any(|(_, s)| s.state != SlotState::Free && s.local_port == local_port)
    }

    /// A slot that needs `AT+QICLOSE` (queued or claimed), if any.
    pub fn pending_close(&self) -> Option<u8> {
        self.iter().find(|(_, s)| matches!(s.state, SlotState::PendingClose | SlotState::Closing)).map(|(id, _)| id)
    }

    /// Claims a slot that needs `AT+QICLOSE` for the caller, who is then its one closer.
    pub fn claim_close(&mut self) -> Option<SlotRef> {
        let (id, slot) = self.iter_mut().find(|(_, s)| s.state == SlotState::PendingClose)?;
        slot.state = SlotState::Closing;
        Some(SlotRef { connect_id: id, generation: slot.generation })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_their_order_across_the_wrap() {
        assert_eq!(core::mem::size_of::<Instant>(), 4);
        let before_wrap = Instant::from_ms(u64::from(u32::MAX) - 10);
        let after_wrap = before_wrap.after_ms(OPEN_RESULT_MS);
        assert_eq!(after_wrap, Instant::from_ms(u64::from(u32::MAX) + u64::from(OPEN_RESULT_MS) - 10));
        assert!(after_wrap.reached(after_wrap));
        assert!(!after_wrap.reached(before_wrap));
        assert!(after_wrap.reached(after_wrap.after_ms(1)));
        assert_eq!(after_wrap.ms_since(before_wrap), OPEN_RESULT_MS);
        assert_eq!(before_wrap.ms_since(after_wrap), 0);
    }

    #[test]
    fn the_next_ack_check_is_the_earliest_across_the_wrap() {
        let mut t = SocketTable::new();
        let now = Instant::from_ms(u64::from(u32::MAX) - 1_000);
        for (id, due) in [(0, now.after_ms(5_000)), (1, now.after_ms(500))] {
            let s = t.get_mut(id).unwrap();
            s.occupy(SlotState::Open, ServiceType::Tcp, AccessMode::Buffer, 1);
            s.ack_due = Some(due);
        }
        assert_eq!(t.next_ack_due(now, 5_000), Some(now.after_ms(500)));
        assert_eq!(t.ack_due(now, 5_000), None);
        assert_eq!(t.ack_due(now.after_ms(600), 5_000).map(|r| r.connect_id), Some(1));
        // nobody polled for 30 days: both checks are overdue, not 18.8 days ahead
        let later = now.after_ms(30 * 86_400_000);
        assert_eq!(t.ack_due(later, 5_000).map(|r| r.connect_id), Some(0));
        assert_eq!(t.next_ack_due(later, 5_000), Some(later));
    }

    #[test]
    fn an_abandoned_open_blocks_its_id_until_its_result_can_no_longer_come() {
        let mut t = SocketTable::new();
        let slot = t.get_mut(0).unwrap();
        slot.occupy(SlotState::Opening, ServiceType::Tcp, AccessMode::Buffer, 1);
        let start = Instant::from_ms(1_000);
        slot.opened_at = start;
        slot.release(SlotState::Free, None);
        assert_eq!(t.get(0).unwrap().stale_open, Some(start.after_ms(OPEN_RESULT_MS)));
        // another id first while the old +QIOPEN may still come
        assert_eq!(t.find_free(0, Instant::from_ms(2_000)), Some(1));
        // afterwards the id is free again
        assert_eq!(t.find_free(0, start.after_ms(OPEN_RESULT_MS)), Some(0));
        assert_eq!(t.get(0).unwrap().stale_open, None);
    }

    #[test]
    fn an_abandoned_open_looked_at_weeks_later_has_expired() {
        let mut t = SocketTable::new();
        let slot = t.get_mut(0).unwrap();
        slot.occupy(SlotState::Opening, ServiceType::Tcp, AccessMode::Buffer, 1);
        let start = Instant::from_ms(u64::from(u32::MAX) - 1_000);
        slot.opened_at = start;
        slot.release(SlotState::Free, None);
        // 30 days later the 32-bit time has wrapped: the old +QIOPEN cannot come any more
        assert_eq!(t.find_free(0, start.after_ms(30 * 86_400_000)), Some(0));
    }

    #[test]
    fn stale_handles_are_recognised_with_their_reason() {
        let mut t = SocketTable::new();
        let id = t.find_free(0, Instant::from_ms(0)).unwrap();
        assert_eq!(id, 0);
        t.get_mut(id).unwrap().occupy(SlotState::Open, ServiceType::Tcp, AccessMode::Buffer, 1);
        let r = t.slot_ref(id).unwrap();
        assert!(t.current(r).is_ok());
        t.get_mut(id).unwrap().release(SlotState::Free, Some(Error::Rebooted));
        assert_eq!(t.current(r).err(), Some(Error::Rebooted));
        // reused by someone else: the old handle still cannot touch it
        t.get_mut(id).unwrap().occupy(SlotState::Open, ServiceType::Udp, AccessMode::Buffer, 1);
        assert_eq!(t.current(r).err(), Some(Error::Rebooted));
        t.get_mut(id).unwrap().release(SlotState::Free, None);
        assert_eq!(t.current(r).err(), Some(Error::Rebooted));
        assert_eq!(t.find_free(1, Instant::from_ms(0)), Some(1));
    }
}
