//! What cancels a task's waits: a cancel request, and the deadlines of the
//! timeout scopes it is inside, unless a shield stands in between.
//!
//! Each task keeps a stack of *frames*, pushed by [`crate::timeout`] /
//! [`crate::deadline`] (a frame with a deadline) and [`crate::shield`] (a
//! frame that hides everything outside it), innermost last:
//!
//! ```text
//!   task.cancel_requested            <- JoinHandle::cancel, TaskGroup::cancel_all
//!   frames: [ deadline 10s | shield | deadline 2s ]
//!                                      ^ innermost
//!   visible from a park: deadline 2s, then the shield stops the walk:
//!   neither the 10 s deadline nor the cancel request reaches it
//! ```
//!
//! Every park asks [`CancelState::deliver`] first. Delivery is level-
//! triggered, as in trio: as long as a visible deadline has passed (or a
//! cancel was requested and no shield hides it), every park returns
//! `Cancelled` at once, so a coroutine that ignores the error and blocks
//! again gets it again, until it leaves the scope (or returns).
//!
//! A frame whose deadline has passed when a cancellation is delivered is
//! marked `fired`; the scope function that pushed it reports `Elapsed` on
//! exit only if its own frame fired. That is how a timeout belongs to the
//! scope that set it: an inner scope's expiry is never reported by an
//! outer one, and the other way round.

use std::cell::{Cell, RefCell};
use std::time::Instant;

/// One open timeout or shield scope of a task.
#[derive(Debug)]
struct Frame {
    /// Identifies the frame to the scope that pushed it.
    id: u64,
    /// When the scope's deadline passes; `None` for a shield.
    deadline: Option<Instant>,
    /// Whether this frame hides the frames outside it and the task's
    /// cancel request.
    shield: bool,
    /// Whether a cancellation was delivered because of this frame's
    /// deadline.
    fired: Cell<bool>,
}

/// Cancellation state of one task. Touched only by the task's own thread.
///
/// The scope stack is allocated by the first scope a task opens: most
/// tasks never open one, and every task record is allocated at spawn.
#[derive(Debug, Default)]
pub(crate) struct CancelState {
    /// Cancellation was requested (by a handle, a group, or shutdown).
    requested: Cell<bool>,
    /// The open scopes, once the task has opened one.
    scopes: RefCell<Option<Box<Scopes>>>,
    /// How many scopes are open: read by every park, without borrowing
    /// `scopes`.
    open: Cell<usize>,
}

/// A task's open timeout and shield scopes.
#[derive(Debug, Default)]
struct Scopes {
    /// Open scopes, outermost first.
    frames: Vec<Frame>,
    /// Id for the next frame.
    next_id: u64,
    /// Frames the last delivery marked fired that were not fired before:
    /// un-marked by [`CancelState::retract`] if the interrupted operation
    /// turns out to have completed after all.
    last_fired: Vec<u64>,
}

/// Identifies a frame pushed by [`CancelState::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameId(u64);

impl CancelState {
    /// Records a cancel request. Returns whether a park happening now would
    /// see it (no shield in the way).
    pub(crate) fn request(&self) -> bool {
        self.requested.set(true);
        !self.scopes.borrow().as_ref().is_some_and(|s| s.frames.iter().any(|f| f.shield))
    }

    /// Whether cancellation was requested (shielded or not).
    pub(crate) fn is_requested(&self) -> bool {
        self.requested.get()
    }

    /// Opens a scope: a deadline, or a shield.
    pub(crate) fn push(&self, deadline: Option<Instant>, shield: bool) -> FrameId {
        let mut scopes = self.scopes.borrow_mut();
        let scopes = scopes.get_or_insert_with(Box::default);
        let id = scopes.next_id;
        scopes.next_id += 1;
        scopes.frames.push(Frame { id, deadline, shield, fired: Cell::new(false) });
        self.open.set(scopes.frames.len());
        FrameId(id)
    }

    /// Closes the innermost scope, which must be `id`; returns whether its
    /// deadline caused a cancellation.
    pub(crate) fn pop(&self, id: FrameId) -> bool {
        let frame = self.scopes.borrow_mut().as_mut().and_then(|s| s.frames.pop());
        self.open.set(self.open.get().saturating_sub(1));
        match frame {
            Some(frame) if frame.id == id.0 => frame.fired.get(),
            _ => unreachable!("timeout and shield scopes close in the order they opened"),
        }
    }

    /// Whether nothing could cancel a park: the fast path of every park.
    #[inline]
    pub(crate) fn is_idle(&self) -> bool {
        !self.requested.get() && self.open.get() == 0
    }

    /// Whether a cancellation is due for a park starting at `now`; if it is
    /// because of deadlines, marks every visible frame whose deadline has
    /// passed as fired.
    pub(crate) fn deliver(&self, now: Instant) -> bool {
        let mut scopes = self.scopes.borrow_mut();
        let Some(scopes) = scopes.as_mut() else { return self.requested.get() };
        let Scopes { frames, last_fired: newly, .. } = &mut **scopes;
        newly.clear();
        let mut due = false;
        for frame in frames.iter().rev() {
            if frame.deadline.is_some_and(|d| d <= now) {
                if !frame.fired.replace(true) {
                    newly.push(frame.id);
                }
                due = true;
            }
            if frame.shield {
                return due;
            }
        }
        due || self.requested.get()
    }

    /// Takes back the last delivery: the park returned `Cancelled`, but the
    /// operation it interrupted completed anyway (a notifier claimed the
    /// waiter first), so the scopes whose deadlines caused the delivery did
    /// not cancel anything. The next park delivers again if they are still
    /// due.
    pub(crate) fn retract(&self) {
        let mut scopes = self.scopes.borrow_mut();
        let Some(scopes) = scopes.as_mut() else { return };
        let newly = std::mem::take(&mut scopes.last_fired);
        for frame in scopes.frames.iter().filter(|f| newly.contains(&f.id)) {
            frame.fired.set(false);
        }
    }

    /// The earliest deadline a park may be interrupted by.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let scopes = self.scopes.borrow();
        let frames = scopes.as_ref().map_or(&[][..], |s| &s.frames[..]);
        let mut earliest: Option<Instant> = None;
        for frame in frames.iter().rev() {
            if let Some(deadline) = frame.deadline {
                earliest = Some(earliest.map_or(deadline, |e| e.min(deadline)));
            }
            if frame.shield {
                break;
            }
        }
        earliest
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_nearest_deadline_wins_and_only_its_frame_fires() {
        let state = CancelState::default();
        let t0 = Instant::now();
        let outer = state.push(Some(t0 + Duration::from_secs(10)), false);
        let inner = state.push(Some(t0 + Duration::from_secs(1)), false);
        assert_eq!(state.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert!(!state.deliver(t0));
        assert!(state.deliver(t0 + Duration::from_secs(2)));
        state.retract();
        assert!(state.deliver(t0 + Duration::from_secs(2)), "a retracted delivery comes again");
        assert!(state.pop(inner), "the inner scope's deadline fired");
        assert!(!state.pop(outer), "the outer scope's did not");
        assert!(state.is_idle());
    }

    #[test]
    fn a_shield_hides_outer_deadlines_and_requests() {
        let state = CancelState::default();
        let t0 = Instant::now();
        let outer = state.push(Some(t0), false);
        assert!(state.request());
        let shield = state.push(None, true);
        assert!(!state.deliver(t0 + Duration::from_secs(1)));
        assert_eq!(state.next_deadline(), None);
        let inner = state.push(Some(t0 + Duration::from_secs(5)), false);
        assert!(state.deliver(t0 + Duration::from_secs(6)), "a deadline inside the shield still applies");
        assert!(state.pop(inner));
        assert!(!state.pop(shield));
        assert!(state.deliver(t0 + Duration::from_secs(6)), "outside the shield both apply again");
        assert!(state.pop(outer));
        assert!(state.deliver(t0), "the request is level-triggered");
    }
}
