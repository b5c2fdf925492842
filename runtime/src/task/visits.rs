//! A counter of the entries scope and task-group bookkeeping looks at, for
//! the unit tests that prove the cost per child or member does not grow
//! with their number.

/// Records that scope or group bookkeeping looked at `n` entries.
#[inline]
pub(crate) fn visited(n: usize) {
    #[cfg(test)]
    counter::VISITS.with(|v| v.set(v.get().saturating_add(n)));
    #[cfg(not(test))]
    let _ = n;
}

/// Counts the entries the bookkeeping of scopes and task groups looks at
/// (children cancelled or released, members joined), for the unit tests
/// that prove the cost per child or member does not grow with their
/// number.
#[cfg(test)]
pub(crate) mod counter {
    use std::cell::Cell;

    thread_local! {
        /// Entries looked at on this thread.
        pub(crate) static VISITS: Cell<usize> = const { Cell::new(0) };
    }
}
