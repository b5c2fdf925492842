//! Timers: deadlines at which parked coroutines are woken.
//!
//! An indexed binary min-heap over a [`Slab`] of entries. Each entry records
//! its position in the heap, so a timer can be removed from the middle in
//! O(log n) when the wait it guards ends early (the common case for I/O
//! timeouts). Insertion, cancellation and expiry are all O(log n); the
//! earliest deadline is O(1). Ties fire in insertion order.
//!
//! `DESIGN.md` ("Timers") explains why this beat a heap with lazy deletion
//! and a hierarchical wheel.

use std::time::Instant;

use slab::Slab;

/// Identifies a timer so it can be cancelled. Holds the slab index and the
/// sequence number the timer was inserted with, so that a stale key (of a
/// timer that already fired) never cancels a newer one in the same slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimerKey {
    /// Index in the slab.
    index: usize,
    /// Insertion sequence number of the timer at that index.
    seq: u64,
}

/// One armed timer; `T` is what it hands back when it fires (the
/// scheduler uses a [`crate::park::Waker`]).
#[derive(Debug)]
struct Timer<T> {
    /// When the timer fires.
    deadline: Instant,
    /// Insertion order, to break ties and to validate keys.
    seq: u64,
    /// Position of this entry in `Timers::heap`.
    heap_pos: usize,
    /// Whom to wake, with [`crate::park::WakeReason::TimedOut`].
    waker: T,
}

/// All armed timers of one scheduler.
#[derive(Debug)]
pub(crate) struct Timers<T> {
    /// The timers themselves.
    entries: Slab<Timer<T>>,
    /// Slab indices ordered as a binary min-heap on `(deadline, seq)`.
    heap: Vec<usize>,
    /// Next insertion sequence number.
    next_seq: u64,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers { entries: Slab::new(), heap: Vec::new(), next_seq: 0 }
    }
}

impl<T> Timers<T> {
    /// Arms a timer that wakes `waker` at `deadline`.
    pub(crate) fn insert(&mut self, deadline: Instant, waker: T) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let heap_pos = self.heap.len();
        let index = self.entries.insert(Timer { deadline, seq, heap_pos, waker });
        self.heap.push(index);
        self.sift_up(heap_pos);
        TimerKey { index, seq }
    }

    /// Disarms a timer. A key whose timer already fired is ignored.
    pub(crate) fn cancel(&mut self, key: TimerKey) {
        match self.entries.get(key.index) {
            Some(entry) if entry.seq == key.seq => {}
            _ => return,
        }
        let pos = self.entries[key.index].heap_pos;
        self.remove_at(pos);
    }

    /// The earliest deadline, if any timer is armed.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.first().map(|&i| self.entries[i].deadline)
    }

    /// Removes every timer due at or before `now` and appends its waker to
    /// `due`, earliest first.
    pub(crate) fn expire(&mut self, now: Instant, due: &mut Vec<T>) {
        while let Some(&index) = self.heap.first() {
            if self.entries[index].deadline > now {
                break;
            }
            due.push(self.remove_at(0));
        }
    }

    /// Every armed timer, in no particular order: its deadline and what it
    /// hands back (for the task dump).
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Instant, &T)> {
        self.entries.iter().map(|(_, timer)| (timer.deadline, &timer.waker))
    }

    /// Number of armed timers.
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }

    fn remove_at(&mut self, pos: usize) -> T {
        let last = self.heap.len() - 1;
        self.heap.swap(pos, last);
        let index = self.heap.pop().expect("heap is not empty");
        if pos < self.heap.len() {
            let moved = self.heap[pos];
            self.entries[moved].heap_pos = pos;
            self.sift_down(pos);
            let settled = self.entries[moved].heap_pos;
            self.sift_up(settled);
        }
        self.entries.remove(index).waker
    }

    fn less(&self, a: usize, b: usize) -> bool {
        let (a, b) = (&self.entries[self.heap[a]], &self.entries[self.heap[b]]);
        (a.deadline, a.seq) < (b.deadline, b.seq)
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.entries[self.heap[a]].heap_pos = a;
        self.entries[self.heap[b]].heap_pos = b;
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let parent = (pos - 1) / 2;
            if !self.less(pos, parent) {
                break;
            }
            self.swap(pos, parent);
            pos = parent;
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        loop {
            let left = 2 * pos + 1;
            if left >= self.heap.len() {
                break;
            }
            let right = left + 1;
            let child = if right < self.heap.len() && self.less(right, left) { right } else { left };
            if !self.less(child, pos) {
                break;
            }
            self.swap(pos, child);
            pos = child;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn drain(timers: &mut Timers<u32>, now: Instant) -> Vec<u32> {
        let mut due = Vec::new();
        timers.expire(now, &mut due);
        due
    }

    #[test]
    fn fires_in_deadline_order_then_insertion_order() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        for (i, ms) in [30u64, 10, 20, 10, 0].iter().enumerate() {
            timers.insert(t0 + Duration::from_millis(*ms), i as u32);
        }
        assert_eq!(timers.next_deadline(), Some(t0));
        assert_eq!(drain(&mut timers, t0 + Duration::from_millis(15)), vec![4, 1, 3]);
        assert_eq!(drain(&mut timers, t0 + Duration::from_secs(1)), vec![2, 0]);
        assert_eq!(timers.len(), 0);
    }

    #[test]
    fn cancel_removes_from_the_middle_and_stale_keys_are_ignored() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        let keys: Vec<_> = (0..100u32)
            .map(|i| timers.insert(t0 + Duration::from_millis(u64::from(i * 7 % 100)), i))
            .collect();
        for key in keys.iter().step_by(3) {
            timers.cancel(*key);
        }
        let fired = drain(&mut timers, t0 + Duration::from_secs(1));
        let expected: Vec<u32> = {
            let mut v: Vec<u32> = (0..100).filter(|i| i % 3 != 0).collect();
            v.sort_by_key(|i| (i * 7 % 100, *i));
            v
        };
        assert_eq!(fired, expected);
        // The slots are free again; an old key must not cancel a new timer.
        let fresh = timers.insert(t0, 999);
        timers.cancel(keys[1]);
        assert_eq!(timers.len(), 1);
        timers.cancel(fresh);
        assert_eq!(timers.len(), 0);
    }
}
