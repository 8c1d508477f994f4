//! A byte ring over memory the user lends the stack, for data the modem pushes without being
//! asked (direct push mode, transparent mode).

/// A ring buffer over a `'static` slice.
#[derive(Debug)]
pub struct Ring {
    buf: &'static mut [u8],
    head: usize,
    len: usize,
}

impl Ring {
    /// A ring over `buf`.
    pub fn new(buf: &'static mut [u8]) -> Self {
        Self { buf, head: 0, len: 0 }
    }

    /// Bytes stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left.
    pub fn free(&self) -> usize {
        self.buf.len() - self.len
    }

    /// Total size.
    pub fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Appends as much of `data` as fits; returns how much.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let cap = self.buf.len();
        let n = data.len().min(self.free());
        for (i, &b) in data.iter().take(n).enumerate() {
            if let Some(slot) = self.buf.get_mut((self.head + self.len + i) % cap) {
                *slot = b;
            }
        }
        self.len += n;
        n
    }

    /// Takes up to `out.len()` bytes; returns how many.
    pub fn read(&mut self, out: &mut [u8]) -> usize {
        let cap = self.buf.len();
        let n = out.len().min(self.len);
        for (i, o) in out.iter_mut().take(n).enumerate() {
            if let Some(b) = self.buf.get((self.head + i) % cap) {
                *o = *b;
            }
        }
        if cap > 0 {
            self.head = (self.head + n) % cap;
        }
        self.len -= n;
        n
    }

    /// Gives the memory back.
    pub fn into_inner(self) -> &'static mut [u8] {
        self.buf
    }
}

/// The stores of pushed data: one optional ring per connectID plus one for transparent mode.
#[derive(Debug, Default)]
pub struct PushStores {
    rings: [Option<Ring>; PUSH_RINGS],
}

/// One ring per connectID; none without the `direct-push` feature (nothing is pushed then).
const PUSH_RINGS: usize = if cfg!(feature = "direct-push") { crate::socket::CONNECT_IDS } else { 0 };

impl PushStores {
    /// No rings.
    pub const fn new() -> Self {
        Self { rings: [const { None }; PUSH_RINGS] }
    }

    /// The ring of a connectID.
    pub fn get_mut(&mut self, connect_id: u8) -> Option<&mut Ring> {
        self.rings.get_mut(usize::from(connect_id)).and_then(Option::as_mut)
    }

    /// Installs a ring for a connectID; returns the previous one's memory.
    pub fn install(&mut self, connect_id: u8, ring: Ring) -> Option<&'static mut [u8]> {
        let slot = self.rings.get_mut(usize::from(connect_id))?;
        slot.replace(ring).map(Ring::into_inner)
    }

    /// Removes the ring of a connectID and gives its memory back.
    pub fn remove(&mut self, connect_id: u8) -> Option<&'static mut [u8]> {
        self.rings.get_mut(usize::from(connect_id))?.take().map(Ring::into_inner)
    }

    /// Stores pushed bytes for a connectID; returns how many fit (0 without a ring).
    pub fn push(&mut self, connect_id: u8, data: &[u8]) -> usize {
        self.get_mut(connect_id).map_or(0, |r| r.write(data))
    }

    /// Room left in the ring of a connectID.
    pub fn room(&self, connect_id: u8) -> Option<usize> {
        self.rings.get(usize::from(connect_id)).and_then(Option::as_ref).map(Ring::free)
    }

    /// Takes stored bytes of a connectID; `None` when there is no ring or it is empty.
    pub fn read(&mut self, connect_id: u8, out: &mut [u8]) -> Option<usize> {
        let ring = self.get_mut(connect_id)?;
        if ring.is_empty() || out.is_empty() {
            return None;
        }
        Some(ring.read(out))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::boxed::Box;

    #[test]
    fn wraps_around_and_never_overfills() {
        let mut r = Ring::new(Box::leak(Box::new([0u8; 5])));
        assert_eq!(r.write(b"abc"), 3);
        let mut out = [0u8; 2];
        assert_eq!(r.read(&mut out), 2);
        assert_eq!(&out, b"ab");
        assert_eq!(r.write(b"defgh"), 4);
        assert_eq!(r.free(), 0);
        let mut out = [0u8; 8];
        assert_eq!(r.read(&mut out), 5);
        assert_eq!(&out[..5], b"cdefg");
        assert!(r.is_empty());
        let mut empty = Ring::new(Box::leak(Box::new([0u8; 0])));
        assert_eq!(empty.write(b"x"), 0);
        assert_eq!(empty.read(&mut out), 0);
    }
}
