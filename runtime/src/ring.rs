//! [`Ring`]: the FIFO behind the scheduler's run queue.
//!
//! `VecDeque` would do, but its `push_back` is not inlined into the
//! wake-up path (it keeps its growth path in the same function), which
//! costs a call on every wake-up. This ring keeps the common push and pop
//! to a few instructions and moves growth out of line. (The wait queues
//! keep `VecDeque`: measured, the ring did not pay there.)

/// A first-in first-out queue; its capacity is a power of two and only
/// grows.
#[derive(Debug)]
pub(crate) struct Ring<T> {
    /// The ring; `None` where no element is.
    slots: Vec<Option<T>>,
    /// Index of the oldest element.
    head: usize,
    /// Number of elements.
    len: usize,
}

impl<T> Ring<T> {
    /// An empty queue; allocates on the first push.
    pub(crate) const fn new() -> Ring<T> {
        Ring { slots: Vec::new(), head: 0, len: 0 }
    }

    /// Adds `value` at the back.
    #[inline]
    pub(crate) fn push_back(&mut self, value: T) {
        if self.len == self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let index = (self.head + self.len) & mask;
        self.slots[index] = Some(value);
        self.len += 1;
    }

    /// Removes the oldest element.
    #[inline]
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let value = self.slots[self.head].take();
        self.head = (self.head + 1) & (self.slots.len() - 1);
        self.len -= 1;
        value
    }

    /// Number of elements.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Drops every element.
    pub(crate) fn clear(&mut self) {
        while self.pop_front().is_some() {}
    }

    /// Doubles the capacity (at least 16), keeping the order.
    #[cold]
    fn grow(&mut self) {
        let capacity = (self.slots.len() * 2).max(16);
        let mut slots: Vec<Option<T>> = Vec::with_capacity(capacity);
        while let Some(value) = self.pop_front() {
            slots.push(Some(value));
        }
        self.len = slots.len();
        self.head = 0;
        slots.resize_with(capacity, || None);
        self.slots = slots;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_order_across_growth_and_wrap_around() {
        let mut queue = Ring::new();
        let mut expected = std::collections::VecDeque::new();
        let mut next = 0;
        // Interleave pushes and pops so that the ring wraps before and
        // after each growth.
        for round in 0..200 {
            for _ in 0..(round % 7 + 3) {
                queue.push_back(next);
                expected.push_back(next);
                next += 1;
            }
            for _ in 0..(round % 5 + 1) {
                assert_eq!(queue.pop_front(), expected.pop_front());
            }
            assert_eq!(queue.len(), expected.len());
        }
        while let Some(value) = expected.pop_front() {
            assert_eq!(queue.pop_front(), Some(value));
        }
        assert_eq!(queue.pop_front(), None);
        queue.push_back(1);
        queue.clear();
        assert_eq!(queue.len(), 0);
    }
}
