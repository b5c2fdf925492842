//! The coroutine every task runs as, and how one is built on a stack.

use corosensei::{Coroutine, Yielder};

use super::state::Switch;
use crate::stack::Stack;

/// The coroutine type every task runs as: resumed with nothing (the wake
/// reason is left in the task's record), suspends saying whether it
/// yielded or parked, returns nothing (the result goes to the task's slot).
pub(crate) type TaskCoroutine = Coroutine<(), Switch, (), Stack>;

/// The yielder a task suspends itself with.
pub(crate) type TaskYielder = Yielder<(), Switch>;

/// The largest coroutine body moved onto its stack as it is; a larger one
/// (a closure capturing a big array by value) is boxed first, because
/// corosensei refuses to move more than 1 KiB onto a new stack.
const MAX_INLINE_BODY: usize = 512;

/// A coroutine running `body` on `stack`.
pub(crate) fn new_coroutine<B>(stack: Stack, body: B) -> TaskCoroutine
where
    B: FnOnce(&TaskYielder, ()) + 'static,
{
    if size_of::<B>() <= MAX_INLINE_BODY {
        TaskCoroutine::with_stack(stack, body)
    } else {
        let body = Box::new(body);
        TaskCoroutine::with_stack(stack, move |yielder: &TaskYielder, ()| (*body)(yielder, ()))
    }
}

/// [`new_coroutine`] for a body that borrows.
///
/// # Safety
///
/// As `corosensei::Coroutine::with_stack_unchecked`: everything `body`
/// borrows must outlive the coroutine (it finishes, or is unwound or
/// leaked, before the borrow ends).
pub(crate) unsafe fn new_coroutine_unchecked<B>(stack: Stack, body: B) -> TaskCoroutine
where
    B: FnOnce(&TaskYielder, ()),
{
    if size_of::<B>() <= MAX_INLINE_BODY {
        // SAFETY: forwarded to this function's caller (see `# Safety`).
        unsafe { TaskCoroutine::with_stack_unchecked(stack, body) }
    } else {
        let body = Box::new(body);
        let boxed = move |yielder: &TaskYielder, ()| (*body)(yielder, ());
        // SAFETY: the boxed body borrows what `body` borrowed, which the
        // caller keeps alive for the coroutine's life (see `# Safety`).
        unsafe { TaskCoroutine::with_stack_unchecked(stack, boxed) }
    }
}
