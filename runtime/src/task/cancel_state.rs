//! What cancels a task's waits: a cancel request, the deadlines of the
//! timeout scopes it is inside, and the cancel scopes of its
//! `green::scope` bodies, unless a shield stands in between.
//!
//! Each task keeps a stack of *frames*, innermost last, pushed by
//! [`crate::timeout()`] / [`crate::deadline`] (a frame with a deadline),
//! [`crate::shield`] (a frame that hides everything outside it) and
//! [`crate::scope()`] (a frame around the scope's body, with neither: a
//! failing child cancels it by hand, with [`CancelState::cancel_frame`]):
//!
//! ```text
//!   task.cancel_requested            <- JoinHandle::cancel, TaskGroup::cancel_all
//!   frames: [ deadline 10s | shield | deadline 2s | scope body (cancelled) ]
//!                                                   ^ innermost
//!   visible from a park: the scope body's frame, then the 2 s deadline, then
//!   the shield stops the walk: neither the 10 s deadline nor the cancel
//!   request reaches it
//! ```
//!
//! Every park asks [`CancelState::deliver`] first, unless nothing could
//! cancel it ([`CancelState::is_idle`]: no request, and no open frame with
//! a deadline or a cancellation; shields and cancel frames that nobody
//! cancelled do not count, so they cost a park nothing). Delivery is level-
//! triggered, as in trio: as long as a visible deadline has passed or a
//! visible frame was cancelled (or a cancel was requested and no shield
//! hides it), every park returns `Cancelled` at once, so a coroutine that
//! ignores the error and blocks again gets it again, until it leaves the
//! scope (or returns).
//!
//! A frame whose deadline has passed, or that was cancelled, when a
//! cancellation is delivered is marked `fired`; the scope function that
//! pushed it reports its expiry on exit only if its own frame fired. That
//! is how a timeout belongs to the scope that set it: an inner scope's
//! expiry is never reported by an outer one, and the other way round.
//!
//! # Who touches what
//!
//! | field | written by | when |
//! |---|---|---|
//! | `requested` | a handle, a group, the scheduler at shutdown | any time, on the task's thread |
//! | `frames` (push, pop), `armed` | the task itself, entering and leaving a scope | Running |
//! | `Frame::cancelled`, `armed` | a failing child of the frame's `green::scope` | while the task is parked or runnable |
//! | `Frame::fired`, `last_fired` | the task's own parks (`deliver`, `retract`) | Running |
//!
//! Frames are found by their depth, which a [`FrameId`] records with the
//! frame's serial number: pushing, popping and finding a frame are O(1);
//! cancelling one looks at the frames opened inside it (for a shield), and
//! a delivery at every frame. A task has a handful.

use std::cell::{Cell, RefCell};
use std::time::Instant;

/// One open timeout, shield or cancel scope of a task.
#[derive(Debug)]
struct Frame {
    /// Serial number: tells this frame from an earlier one that stood at
    /// the same depth.
    id: u64,
    /// When the scope's deadline passes; `None` for a shield or a cancel
    /// scope.
    deadline: Option<Instant>,
    /// Whether this frame hides the frames outside it and the task's
    /// cancel request.
    shield: bool,
    /// Whether the scope was cancelled by hand ([`CancelState::cancel_frame`]):
    /// from then on it acts as a deadline that has passed.
    cancelled: Cell<bool>,
    /// Whether a cancellation was delivered because of this frame.
    fired: Cell<bool>,
}

impl Frame {
    /// Whether this frame asks for a cancellation at `now`.
    fn is_due(&self, now: Instant) -> bool {
        self.cancelled.get() || self.deadline.is_some_and(|d| d <= now)
    }

    /// Whether this frame can ever ask for a cancellation: it has a
    /// deadline, or it was cancelled. Counted in `CancelState::armed`.
    fn is_armed(&self) -> bool {
        self.deadline.is_some() || self.cancelled.get()
    }
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
    /// How many open frames are armed (have a deadline, or were
    /// cancelled): read by every park, without borrowing `scopes`. Frames
    /// that are not armed (shields, and the cancel frames of `green::scope`
    /// bodies until a child fails) cannot cancel anything while no request
    /// is made, so a park inside them stays on the fast path.
    armed: Cell<usize>,
}

/// A task's open timeout, shield and cancel scopes.
#[derive(Debug, Default)]
struct Scopes {
    /// Open scopes, outermost first.
    frames: Vec<Frame>,
    /// Serial number for the next frame.
    next_id: u64,
    /// Frames the last delivery marked fired that were not fired before:
    /// un-marked by [`CancelState::retract`] if the interrupted operation
    /// turns out to have completed after all.
    last_fired: Vec<u64>,
}

/// Identifies a frame pushed by [`CancelState::push`]: where it stands in
/// the stack, and its serial number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameId {
    /// Index of the frame in `Scopes::frames`.
    depth: usize,
    /// The frame's serial number, `Frame::id`.
    id: u64,
}

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

    /// Opens a scope: a deadline, a shield, or (neither) a cancel scope
    /// that only [`CancelState::cancel_frame`] triggers.
    pub(crate) fn push(&self, deadline: Option<Instant>, shield: bool) -> FrameId {
        let mut scopes = self.scopes.borrow_mut();
        let scopes = scopes.get_or_insert_with(Box::default);
        let id = scopes.next_id;
        // Serial numbers only tell apart frames that stood at the same
        // depth at different times; 2^64 scopes are never opened, and a
        // wrap would still leave the frames open at once distinct.
        scopes.next_id = id.wrapping_add(1);
        let depth = scopes.frames.len();
        let frame = Frame { id, deadline, shield, cancelled: Cell::new(false), fired: Cell::new(false) };
        if frame.is_armed() {
            self.armed.set(self.armed.get().saturating_add(1));
        }
        scopes.frames.push(frame);
        FrameId { depth, id }
    }

    /// Closes the innermost scope, which must be `frame`; returns whether
    /// it caused a cancellation (its deadline passed, or it was cancelled,
    /// while something in it waited).
    pub(crate) fn pop(&self, frame: FrameId) -> bool {
        let popped = self.scopes.borrow_mut().as_mut().and_then(|s| s.frames.pop());
        match popped {
            Some(popped) if popped.id == frame.id => {
                if popped.is_armed() {
                    self.armed.set(self.armed.get().saturating_sub(1));
                }
                popped.fired.get()
            }
            _ => unreachable!("timeout, shield and scope frames close in the order they opened"),
        }
    }

    /// Cancels the open scope `frame` (a failing child of a `green::scope`
    /// cancels the scope's body): from now on every park inside it that
    /// can see it returns `Cancelled`, until the scope closes. A frame
    /// that has closed is left alone. Returns whether a park happening now
    /// would see the cancellation (the frame is open and no shield was
    /// opened inside it), that is, whether a parked task must be woken.
    pub(crate) fn cancel_frame(&self, frame: FrameId) -> bool {
        let scopes = self.scopes.borrow();
        let Some(frames) = scopes.as_ref().map(|s| &s.frames) else { return false };
        match frames.get(frame.depth) {
            Some(open) if open.id == frame.id => {
                if !open.is_armed() {
                    self.armed.set(self.armed.get().saturating_add(1));
                }
                open.cancelled.set(true);
                !frames[frame.depth..].iter().any(|f| f.shield)
            }
            _ => false,
        }
    }

    /// Whether nothing could cancel a park: no request, and no open frame
    /// with a deadline or a cancellation. The fast path of every park.
    #[inline]
    pub(crate) fn is_idle(&self) -> bool {
        !self.requested.get() && self.armed.get() == 0
    }

    /// Whether a cancellation is due for a park starting at `now`; if it is
    /// because of frames, marks every visible frame that asks for it (its
    /// deadline has passed, or it was cancelled) as fired.
    pub(crate) fn deliver(&self, now: Instant) -> bool {
        let mut scopes = self.scopes.borrow_mut();
        let Some(scopes) = scopes.as_mut() else { return self.requested.get() };
        let Scopes { frames, last_fired: newly, .. } = &mut **scopes;
        newly.clear();
        let mut due = false;
        for frame in frames.iter().rev() {
            if frame.is_due(now) {
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
    /// waiter first), so the scopes that caused the delivery did not cancel
    /// anything. The next park delivers again if they are still due.
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
        Self::deadline_in(&self.scopes.borrow())
    }

    /// [`CancelState::next_deadline`] for a reader that must not panic (the
    /// task dump, reading a record between switches): `None` also if the
    /// frames are being changed, which no suspended task is doing.
    pub(crate) fn peek_next_deadline(&self) -> Option<Instant> {
        let scopes = self.scopes.try_borrow().ok()?;
        Self::deadline_in(&scopes)
    }

    /// The earliest deadline the frames of `scopes` interrupt a park at.
    fn deadline_in(scopes: &Option<Box<Scopes>>) -> Option<Instant> {
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

    #[test]
    fn a_cancelled_frame_is_due_until_it_closes_and_only_it_fires() {
        let state = CancelState::default();
        let t0 = Instant::now();
        let outer = state.push(Some(t0 + Duration::from_secs(60)), false);
        let body = state.push(None, false);
        let inner = state.push(Some(t0 + Duration::from_secs(30)), false);
        assert!(!state.is_idle(), "two deadlines are open");
        assert!(!state.deliver(t0), "nothing is due yet");
        assert!(state.cancel_frame(body), "no shield inside: a park would see it");
        assert!(state.deliver(t0));
        assert!(state.deliver(t0), "level-triggered");
        assert!(!state.pop(inner), "the inner timeout did not cause it");
        assert!(state.pop(body), "the cancelled frame did");
        assert!(!state.cancel_frame(body), "a closed frame is left alone");
        assert!(!state.deliver(t0), "closing it ends the cancellation");
        assert!(!state.pop(outer));
        assert!(!state.is_requested(), "the task itself was never cancelled");
    }

    #[test]
    fn a_shield_inside_a_cancelled_frame_hides_it_until_it_closes() {
        let state = CancelState::default();
        let t0 = Instant::now();
        let body = state.push(None, false);
        let shield = state.push(None, true);
        assert!(state.is_idle(), "a shield and an uncancelled frame cannot cancel anything");
        assert!(!state.cancel_frame(body), "the shield hides it: nobody to wake");
        assert!(!state.is_idle(), "a cancelled frame is armed, shield or not");
        assert!(!state.deliver(t0));
        assert!(!state.pop(shield));
        assert!(state.deliver(t0), "outside the shield it applies");
        state.retract();
        assert!(state.deliver(t0), "a retracted delivery comes again");
        assert!(state.pop(body));
        assert!(state.is_idle());
    }

    #[test]
    fn a_frame_id_of_a_closed_frame_does_not_reach_a_later_frame_at_the_same_depth() {
        let state = CancelState::default();
        let first = state.push(None, false);
        assert!(!state.pop(first));
        let second = state.push(None, false);
        assert!(!state.cancel_frame(first), "the first frame is gone");
        assert!(!state.deliver(Instant::now()), "the second was not cancelled");
        assert!(!state.pop(second));
    }
}
