//! The book of open leases: a ring indexed by lease number, not a hash map.
//!
//! Lease numbers are handed out in sequence and every lease's deadline is `now + lease_ttl`,
//! so leases are created in deadline order except right after the TTL is lowered. The book
//! keeps one 8-byte record per lease number from the oldest open lease to the newest, in a
//! `VecDeque` (the slot, and the deadline as milliseconds after a base time that moves up
//! when an offset would no longer fit 32 bits, once in about 49 days): opening is a push at
//! the back, a report indexes by `number - base`, and deadlines are found at the front.
//! Nothing is hashed, nothing is allocated per lease, and memory is bounded by (lease rate ×
//! TTL × 8 bytes) even when no lease is ever reported — a burst of unreported `get`s keeps
//! every lease open for a whole TTL, and a hash map plus a deadline heap would cost many
//! times that per open lease.
//!
//! A lease whose deadline is earlier than one already handed out (the TTL was lowered) is
//! also put in a small min-heap, so it still expires on time; entries there are checked
//! against the ring when popped (lazy deletion, as the pool's other timers).

use crate::types::Millis;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};

/// Marks a reported, expired or forgotten lease in the ring.
const CLOSED: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Rec {
    slot: u32,
    /// Deadline − `LeaseBook::time_base`, in milliseconds.
    at: u32,
}

/// Open leases by number. See the module header.
#[derive(Debug)]
pub(crate) struct LeaseBook {
    /// Number of `ring[0]`.
    base: u64,
    ring: VecDeque<Rec>,
    /// Deadlines in `ring` are offsets from this time.
    time_base: Millis,
    open: usize,
    /// The latest deadline handed out so far.
    latest: Millis,
    /// Leases created with a deadline earlier than `latest`: (deadline, number).
    early: BinaryHeap<Reverse<(Millis, u64)>>,
    /// Renewed leases (their deadline moved, so they no longer sit in deadline order):
    /// taken out of the ring, kept here as number → (slot, deadline), their deadline in
    /// `early`. Renewals are rare (long uploads and streams), so a map is cheap.
    renewed: HashMap<u64, (u32, Millis)>,
}

impl LeaseBook {
    pub fn new(first: u64) -> LeaseBook {
        LeaseBook {
            base: first,
            ring: VecDeque::new(),
            time_base: 0,
            open: 0,
            latest: 0,
            early: BinaryHeap::new(),
            renewed: HashMap::new(),
        }
    }

    /// The number the next lease will get.
    pub fn next_number(&self) -> u64 {
        self.base + self.ring.len() as u64
    }

    /// How many leases are open.
    pub fn len(&self) -> usize {
        self.open
    }

    /// Opens a lease on `slot`; returns its number.
    pub fn open(&mut self, slot: u32, deadline: Millis) -> u64 {
        let number = self.next_number();
        if self.ring.is_empty() && self.early.is_empty() {
            self.latest = deadline;
        }
        if deadline < self.latest {
            self.early.push(Reverse((deadline, number)));
        } else {
            self.latest = deadline;
        }
        let at = self.offset(deadline);
        self.ring.push_back(Rec { slot, at });
        self.open += 1;
        number
    }

    fn deadline_of(&self, r: &Rec) -> Millis {
        self.time_base + Millis::from(r.at)
    }

    /// `deadline` as an offset from the time base, moving the base first when needed.
    fn offset(&mut self, deadline: Millis) -> u32 {
        if self.open == 0 {
            // Nothing open (so nothing held: `trim` dropped every closed record).
            self.time_base = deadline;
        }
        if deadline < self.time_base || deadline - self.time_base > Millis::from(u32::MAX) {
            self.rebase(deadline);
        }
        // Open deadlines span at most one lease TTL (≤ 1 day), so this fits after a rebase.
        u32::try_from(deadline.saturating_sub(self.time_base)).unwrap_or(u32::MAX)
    }

    /// Moves the time base to the earliest open deadline (or `deadline`), rewriting the
    /// offsets of open records: O(open records), once in weeks.
    fn rebase(&mut self, deadline: Millis) {
        let base = self
            .ring
            .iter()
            .filter(|r| r.slot != CLOSED)
            .map(|r| self.time_base + Millis::from(r.at))
            .chain(std::iter::once(deadline))
            .min()
            .unwrap_or(deadline);
        let old = self.time_base;
        for r in self.ring.iter_mut().filter(|r| r.slot != CLOSED) {
            let d = old + Millis::from(r.at);
            r.at = u32::try_from(d - base).unwrap_or(u32::MAX);
        }
        self.time_base = base;
    }

    fn index(&self, number: u64) -> Option<usize> {
        let i = usize::try_from(number.checked_sub(self.base)?).ok()?;
        (i < self.ring.len()).then_some(i)
    }

    /// The slot of open lease `number`.
    pub fn slot_of(&self, number: u64) -> Option<u32> {
        match self.index(number).map(|i| self.ring[i].slot) {
            Some(slot) if slot != CLOSED => Some(slot),
            _ => self.renewed.get(&number).map(|e| e.0),
        }
    }

    /// Moves the deadline of open lease `number` to `deadline`; `false` if it is not open.
    pub fn renew(&mut self, number: u64, deadline: Millis) -> bool {
        if let Some(entry) = self.renewed.get_mut(&number) {
            entry.1 = deadline;
        } else {
            let Some(i) = self.index(number) else {
                return false;
            };
            let slot = std::mem::replace(&mut self.ring[i].slot, CLOSED);
            if slot == CLOSED {
                return false;
            }
            self.renewed.insert(number, (slot, deadline));
            self.trim();
        }
        // The entry for an earlier deadline stays behind, stale (lazy deletion).
        self.early.push(Reverse((deadline, number)));
        true
    }

    /// Closes lease `number` if it is open; returns its slot.
    pub fn close(&mut self, number: u64) -> Option<u32> {
        let Some(i) = self.index(number).filter(|&i| self.ring[i].slot != CLOSED) else {
            // Not in the ring: a renewed lease, or not open at all.
            let (slot, _) = self.renewed.remove(&number)?;
            self.open -= 1;
            return Some(slot);
        };
        let rec = &mut self.ring[i];
        let slot = std::mem::replace(&mut rec.slot, CLOSED);
        self.open -= 1;
        self.trim();
        Some(slot)
    }

    /// Drops closed records from the front, and gives memory back after a burst.
    fn trim(&mut self) {
        while self.ring.front().is_some_and(|r| r.slot == CLOSED) {
            self.ring.pop_front();
            self.base += 1;
        }
        let cap = self.ring.capacity();
        if cap > 4096 && self.ring.len() * 4 < cap {
            self.ring.shrink_to(self.ring.len() * 2);
        }
    }

    fn is_open(&self, number: u64, deadline: Millis) -> bool {
        let in_ring = self.index(number).is_some_and(|i| {
            self.ring[i].slot != CLOSED && self.deadline_of(&self.ring[i]) == deadline
        });
        in_ring || self.renewed.get(&number).is_some_and(|e| e.1 == deadline)
    }

    /// Closes and returns (number, slot) of one lease whose deadline is at or before `now`,
    /// or `None` when no open lease is due.
    pub fn pop_due(&mut self, now: Millis) -> Option<(u64, u32)> {
        if let Some(front) = self.ring.front().copied() {
            // `trim` keeps the front open; in-order deadlines only grow after it.
            if self.deadline_of(&front) <= now {
                let number = self.base;
                let slot = self.close(number).expect("the front record is open");
                return Some((number, slot));
            }
        }
        while let Some(&Reverse((at, number))) = self.early.peek() {
            if at > now {
                return None;
            }
            self.early.pop();
            if self.is_open(number, at) {
                let slot = self.close(number).expect("checked open");
                return Some((number, slot));
            }
        }
        None
    }

    /// The earliest deadline of an open lease.
    pub fn earliest_deadline(&mut self) -> Option<Millis> {
        while let Some(&Reverse((at, number))) = self.early.peek() {
            if self.is_open(number, at) {
                break;
            }
            self.early.pop();
        }
        let front = self.ring.front().map(|r| self.deadline_of(r));
        let early = self.early.peek().map(|r| r.0 .0);
        front.into_iter().chain(early).min()
    }

    /// The earliest deadline, possibly of a lease already closed (cheap, for scheduling).
    pub fn peek_deadline(&self) -> Option<Millis> {
        let front = self.ring.front().map(|r| self.deadline_of(r));
        let early = self.early.peek().map(|r| r.0 .0);
        front.into_iter().chain(early).min()
    }

    /// Forgets every open lease of `slot` (the token was removed); returns how many.
    pub fn forget_slot(&mut self, slot: u32) -> usize {
        let mut n = 0;
        for rec in self.ring.iter_mut().filter(|r| r.slot == slot) {
            rec.slot = CLOSED;
            n += 1;
        }
        let before = self.renewed.len();
        self.renewed.retain(|_, e| e.0 != slot);
        n += before - self.renewed.len();
        self.open -= n;
        self.trim();
        n
    }

    /// The number of open leases of `slot` (consistency checks).
    pub fn count_slot(&self, slot: u32) -> usize {
        self.ring.iter().filter(|r| r.slot == slot).count()
            + self.renewed.values().filter(|e| e.0 == slot).count()
    }

    /// Drops stale entries of the early heap once it holds more than twice what is open.
    pub fn compact(&mut self) {
        if self.early.len() > 2 * (self.open + 1024) {
            let keep: Vec<_> = std::mem::take(&mut self.early)
                .into_iter()
                .filter(|r| self.is_open(r.0 .1, r.0 .0))
                .collect();
            self.early = keep.into();
        }
    }

    /// Records held, open or not (memory checks in tests).
    #[cfg(test)]
    pub fn records(&self) -> usize {
        self.ring.len() + self.renewed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewed_lease_expires_at_its_new_deadline_and_holds_no_other_back() {
        let mut b = LeaseBook::new(1);
        let long = b.open(1, 100);
        let short = b.open(2, 110);
        assert!(b.renew(long, 1_000));
        assert!(!b.renew(99, 1_000), "not a lease");
        assert_eq!(b.len(), 2);
        assert_eq!(b.count_slot(1), 1);
        // The other lease expires on time although the renewed one was ahead of it.
        assert_eq!(b.pop_due(120), Some((short, 2)));
        assert_eq!(
            b.pop_due(999),
            None,
            "the renewed lease is not due before its deadline"
        );
        assert_eq!(b.earliest_deadline(), Some(1_000));
        // Renewed again: only the newest deadline counts.
        assert!(b.renew(long, 2_000));
        assert_eq!(b.pop_due(1_500), None);
        assert_eq!(b.pop_due(2_000), Some((long, 1)));
        assert_eq!(b.len(), 0);
        assert!(!b.renew(long, 3_000), "closed leases cannot be renewed");
    }

    #[test]
    fn a_renewed_lease_closes_once_and_is_forgotten_with_its_token() {
        let mut b = LeaseBook::new(1);
        let a = b.open(5, 100);
        let c = b.open(6, 100);
        assert!(b.renew(a, 500));
        assert_eq!(b.close(a), Some(5));
        assert_eq!(b.close(a), None);
        assert!(b.renew(c, 500));
        assert_eq!(b.forget_slot(6), 1);
        assert_eq!((b.len(), b.records()), (0, 0));
        assert_eq!(b.pop_due(1_000), None);
    }

    #[test]
    fn numbers_are_sequential_and_close_once() {
        let mut b = LeaseBook::new(1);
        let a = b.open(3, 100);
        let c = b.open(4, 110);
        assert_eq!((a, c), (1, 2));
        assert_eq!(b.close(a), Some(3));
        assert_eq!(b.close(a), None);
        assert_eq!(b.close(99), None);
        assert_eq!(b.close(0), None);
        assert_eq!(b.len(), 1);
        assert_eq!(b.records(), 1, "the closed front was dropped");
        assert_eq!(b.close(c), Some(4));
        assert_eq!(b.records(), 0);
        assert_eq!(b.next_number(), 3);
    }

    #[test]
    fn expiry_in_deadline_order_even_when_the_ttl_was_lowered() {
        let mut b = LeaseBook::new(1);
        let long = b.open(1, 1_000);
        let short = b.open(2, 200); // TTL lowered: earlier deadline, later number
        let mid = b.open(3, 1_100);
        assert_eq!(b.earliest_deadline(), Some(200));
        assert_eq!(b.pop_due(199), None);
        assert_eq!(b.pop_due(200), Some((short, 2)));
        assert_eq!(b.pop_due(999), None);
        assert_eq!(b.earliest_deadline(), Some(1_000));
        assert_eq!(b.pop_due(2_000), Some((long, 1)));
        assert_eq!(b.pop_due(2_000), Some((mid, 3)));
        assert_eq!(b.pop_due(2_000), None);
        assert_eq!((b.len(), b.records()), (0, 0));
    }

    #[test]
    fn a_reported_early_lease_does_not_expire() {
        let mut b = LeaseBook::new(1);
        b.open(1, 1_000);
        let short = b.open(2, 200);
        assert_eq!(b.close(short), Some(2));
        assert_eq!(b.pop_due(500), None);
        assert_eq!(b.earliest_deadline(), Some(1_000));
    }

    #[test]
    fn forgetting_a_slot_closes_only_its_leases() {
        let mut b = LeaseBook::new(10);
        let x = b.open(1, 100);
        let y = b.open(2, 100);
        let z = b.open(1, 100);
        assert_eq!(b.count_slot(1), 2);
        assert_eq!(b.forget_slot(1), 2);
        assert_eq!(b.len(), 1);
        assert_eq!(b.close(x), None);
        assert_eq!(b.close(z), None);
        assert_eq!(b.close(y), Some(2));
    }

    #[test]
    fn deadlines_survive_a_move_of_the_time_base() {
        const DAY: Millis = 86_400_000;
        let mut b = LeaseBook::new(1);
        let t0 = 1_700_000_000_000;
        // One lease open all along (reported late), others opened over 60 days.
        let mut deadlines = std::collections::HashMap::new();
        let held = b.open(9, t0 + DAY);
        deadlines.insert(held, t0 + DAY);
        let mut now = t0;
        let mut last = held;
        while now < t0 + 60 * DAY {
            now += DAY / 3;
            while let Some((number, _)) = b.pop_due(now) {
                assert!(deadlines[&number] <= now, "lease {number} expired early");
                deadlines.remove(&number);
            }
            assert!(deadlines.values().all(|&d| d > now), "a due lease was kept");
            last = b.open(7, now + DAY);
            deadlines.insert(last, now + DAY);
        }
        assert_eq!(b.earliest_deadline(), deadlines.values().min().copied());
        assert_eq!(b.len(), deadlines.len());
        assert_eq!(
            b.pop_due(now + DAY - 1).map(|(n, _)| n == last),
            Some(false)
        );
        while b.pop_due(now + DAY - 1).is_some() {}
        assert_eq!(b.pop_due(now + DAY), Some((last, 7)));
        assert_eq!(b.close(held), None, "the held lease expired long ago");
    }

    #[test]
    fn memory_is_given_back_after_a_burst() {
        let mut b = LeaseBook::new(1);
        let ids: Vec<u64> = (0..100_000)
            .map(|i| b.open(i % 7, 1_000 + i as u64))
            .collect();
        for id in ids {
            b.close(id);
        }
        assert_eq!(b.records(), 0);
        assert!(b.ring.capacity() <= 8192, "capacity {}", b.ring.capacity());
    }
}
