//! The run queue: the tasks ready to run, oldest first.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

/// The tasks ready to run, oldest first.
///
/// The oldest is kept apart, in `first`, when it went in while the queue
/// was empty: a coroutine waking one other and then parking (a hand-off
/// through a channel, a join) is the common case, and then nothing moves
/// through the `VecDeque`, whose push and pop are each a few dozen
/// instructions. Order is unchanged: `first`, when set, is older than
/// anything in `rest`.
pub(crate) struct RunQueue<T> {
    /// The oldest task, if it arrived while the queue was empty.
    first: Cell<Option<T>>,
    /// Whether `first` is set: read on every pop, where taking `first` to
    /// look at it would cost more.
    has_first: Cell<bool>,
    /// Every other task, oldest first.
    rest: RefCell<VecDeque<T>>,
}

impl<T> Default for RunQueue<T> {
    fn default() -> Self {
        RunQueue { first: Cell::new(None), has_first: Cell::new(false), rest: RefCell::new(VecDeque::new()) }
    }
}

impl<T> RunQueue<T> {
    /// Adds `task` at the back, apart if the queue is empty: for a task
    /// that was woken.
    #[inline(always)]
    pub(crate) fn push(&self, task: T) {
        if !self.has_first.get() && self.rest.borrow().is_empty() {
            self.first.set(Some(task));
            self.has_first.set(true);
        } else {
            self.rest.borrow_mut().push_back(task);
        }
    }

    /// Adds `task` at the back, never apart: for a task that yields, when
    /// others are usually waiting (and then the check would be wasted).
    /// Always in order, as `first` is older than anything in `rest`.
    #[inline]
    pub(crate) fn push_back(&self, task: T) {
        self.rest.borrow_mut().push_back(task);
    }

    /// Takes the oldest task.
    #[inline(always)]
    pub(crate) fn pop(&self) -> Option<T> {
        if self.has_first.replace(false) { self.first.take() } else { self.rest.borrow_mut().pop_front() }
    }

    /// Whether no task is queued.
    #[inline(always)]
    pub(crate) fn is_empty(&self) -> bool {
        !self.has_first.get() && self.rest.borrow().is_empty()
    }

    /// How many tasks are queued.
    pub(crate) fn len(&self) -> usize {
        usize::from(self.has_first.get()) + self.rest.borrow().len()
    }

    /// Drops every task.
    pub(crate) fn clear(&self) {
        self.has_first.set(false);
        self.first.take();
        self.rest.borrow_mut().clear();
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use super::*;

    #[test]
    fn the_run_queue_keeps_arrival_order_whether_a_task_waits_apart_or_not() {
        let queue = RunQueue::default();
        let [a, b, c, d] = [Rc::new('a'), Rc::new('b'), Rc::new('c'), Rc::new('d')];
        // `a` arrives in an empty queue (apart), `b` yields behind it, `c`
        // is woken behind both.
        queue.push(a.clone());
        queue.push_back(b.clone());
        queue.push(c.clone());
        assert_eq!(queue.pop().as_deref(), Some(&'a'));
        // `a` is out, `b` and `c` are still queued: `d` goes behind them.
        queue.push(d.clone());
        let order: String = std::iter::from_fn(|| queue.pop()).map(|t| *t).collect();
        assert_eq!(order, "bcd");
        queue.push(a.clone());
        queue.clear();
        assert!(queue.pop().is_none());
        assert_eq!(Rc::strong_count(&a), 1, "clear drops what was queued");
    }
}
