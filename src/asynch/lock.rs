//! A fair (first come, first served) lock for the modem's single command channel.
//!
//! Tasks take a ticket and are served in ticket order. A waiting task that is cancelled gives
//! its turn up: its ticket is skipped when its turn comes.

use super::Resources;

/// How many tickets may be outstanding at once (more waiters wait for a ticket first).
const MAX_WAITERS: u32 = 32;

pub(crate) struct TicketState {
    next: u32,
    serving: u32,
    /// Bit i: ticket `serving + i` was given up.
    cancelled: u32,
}

impl TicketState {
    pub(crate) const fn new() -> Self {
        Self { next: 0, serving: 0, cancelled: 0 }
    }

    fn take(&mut self) -> Option<u32> {
        if self.next.wrapping_sub(self.serving) >= MAX_WAITERS {
            return None;
        }
        let n = self.next;
        self.next = self.next.wrapping_add(1);
        Some(n)
    }

    pub(crate) fn release(&mut self) {
        self.serving = self.serving.wrapping_add(1);
        self.cancelled >>= 1;
        while self.cancelled & 1 == 1 {
            self.serving = self.serving.wrapping_add(1);
            self.cancelled >>= 1;
        }
    }

    fn cancel(&mut self, n: u32) {
        let offset = n.wrapping_sub(self.serving);
        if offset == 0 {
            self.release();
        } else if offset < MAX_WAITERS {
            self.cancelled |= 1 << offset;
        }
    }
}

/// A turn at the command channel; released when dropped.
pub(crate) struct Ticket<'d, W, C> {
    r: &'d Resources<W, C>,
    n: u32,
    held: bool,
}

impl<'d, W, C> Ticket<'d, W, C> {
    pub(crate) async fn acquire(r: &'d Resources<W, C>) -> Self {
        let n = r.until(|s| s.lock.take()).await;
        let mut t = Ticket { r, n, held: false };
        r.until(|s| (s.lock.serving == n).then_some(())).await;
        t.held = true;
        t
    }
}

impl<W, C> Ticket<'_, W, C> {
    /// Keeps the channel past the ticket's life; `TicketState::release` gives it up later.
    pub(crate) fn keep(self) {
        core::mem::forget(self);
    }
}

impl<W, C> Drop for Ticket<'_, W, C> {
    fn drop(&mut self) {
        self.r.with(|s| {
            if self.held {
                s.lock.release();
            } else {
                s.lock.cancel(self.n);
            }
            s.wakers.wake();
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_served_in_order_and_cancelled_ones_skipped() {
        let mut t = TicketState::new();
        let a = t.take().unwrap();
        let b = t.take().unwrap();
        let c = t.take().unwrap();
        let d = t.take().unwrap();
        assert_eq!(t.serving, a);
        t.cancel(b);
        t.cancel(c);
        t.release(); // a done: b and c were given up
        assert_eq!(t.serving, d);
        t.cancel(d); // d's turn came but it went away
        assert_eq!(t.serving, t.next);
        for _ in 0..MAX_WAITERS {
            t.take().unwrap();
        }
        assert_eq!(t.take(), None, "bounded");
    }
}
