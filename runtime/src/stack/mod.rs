//! Coroutine stacks: how they are sized, laid out, guarded and recycled.
//!
//! Every coroutine runs on a stack of its own. Stacks are carved from large
//! anonymous mappings called *regions*, so that a hundred thousand stacks do
//! not cost a hundred thousand mappings, and they are kept in a [`StackPool`]
//! when their coroutine finishes, so that in steady state spawning performs
//! no `mmap` or `munmap` at all.
//!
//! A region is a run of slots, each a guard page, the usable stack and a
//! colour page whose offset spreads the stacks' tops over the cache;
//! `region.rs` (`Layout`) computes them, and DESIGN.md ("Stacks") draws
//! one slot with `guard_start`, `limit` and `base`.
//!
//! # Sizes
//!
//! A requested size is checked once, by [`class_of`], before anything is
//! computed from it: more than [`MAX_STACK_SIZE`] is an `InvalidInput`
//! error, anything else is rounded up to whole pages (0 and every size
//! below one page give the minimum, one page). Every size derived from the
//! result (a region's length, the addresses inside it) is computed with
//! checked arithmetic or bounded by a check made before it, so no request
//! can wrap round to a tiny stack or a stack pointer outside its mapping.
//!
//! # Guards
//!
//! An overflow of stack *n* runs off its `limit` into the guard page below
//! it. What happens there depends on the [`Protection`] of the runtime (see
//! `DESIGN.md`, "Stacks and `vm.max_map_count`"):
//!
//! 1. [`Protection::GuardRegion`]: the kernel's lightweight guard regions
//!    (`madvise(MADV_GUARD_INSTALL)`, Linux 6.13+). Any access faults, and
//!    the page costs no extra mapping, so every stack is guarded however many
//!    there are.
//! 2. [`Protection::GuardPage`]: `mprotect(PROT_NONE)`. Any access faults,
//!    but the region is split into two mappings per stack, and the kernel
//!    refuses to create more than `vm.max_map_count` mappings per process.
//!    Guard pages may number at most a quarter of `vm.max_map_count` (half
//!    of the mappings, at two each), and a spawn past that fails with an
//!    error naming `vm.max_map_count`.
//! 3. [`Protection::Canary`], only through the unsafe
//!    `Builder::stack_protection_unchecked`: the page stays readable and
//!    writable and must stay zero. The runtime checks it each time the
//!    coroutine switches out and scans it fully when the stack returns to
//!    the pool; a non-zero byte means the coroutine overflowed and the
//!    process aborts with a report. This cannot stop an overflowing frame
//!    from writing through the page into the stack below, which is why it
//!    needs the caller's promise that no coroutine overflows.
//!
//! [`Protection::Auto`], the default, is the first where the kernel has it
//! and the second otherwise; it never leaves a stack unguarded.
//!
//! A fault in a guard page is turned into a readable report by
//! [`overflow`], which names the coroutine, its id and its stack size.

pub(crate) mod overflow;
mod pool;
mod protection;
mod region;

pub(crate) use pool::StackPool;
pub use protection::Protection;

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};

use corosensei::stack::StackPointer;

/// The largest usable stack size a coroutine may ask for: 1 GiB.
///
/// A region holds [`region::STACKS_PER_REGION`] stacks of one size, so the
/// largest region is 16 GiB of address space. That is reserved, not
/// committed (`MAP_NORESERVE`: memory is spent only on pages a coroutine
/// touches), and a 47-bit user address space holds thousands of such
/// regions. A thread's main stack is 8 MiB by default; asking for more than
/// a hundred times that is almost always a mistake in units, and sizes near
/// `usize::MAX` cannot be mapped at all. Public as
/// `green::Builder::MAX_STACK_SIZE`.
pub(crate) const MAX_STACK_SIZE: usize = 1 << 30;

/// The size class a request for `size` usable bytes gets: `size` rounded up
/// to whole pages, at least one page (0 means the minimum).
///
/// # Errors
///
/// `InvalidInput` when `size` exceeds [`MAX_STACK_SIZE`]; the message names
/// the limit and the builder methods that set the size.
pub(crate) fn class_of(size: usize) -> io::Result<usize> {
    let page = page_size();
    if size > MAX_STACK_SIZE {
        return Err(too_large(size));
    }
    // `size` is at most MAX_STACK_SIZE, so adding less than a page cannot
    // overflow; it is checked all the same, as every size is. The page size
    // is a power of two (see `page_size`), so masking rounds down to a
    // multiple of it without a division on the spawn path.
    let padded = size.max(page).checked_add(page - 1).ok_or_else(|| too_large(size))?;
    Ok(padded & !(page - 1))
}

/// The error for a stack size above [`MAX_STACK_SIZE`].
#[cold]
fn too_large(size: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "green: a coroutine stack of {size} bytes was asked for, but the most a stack may have \
             is {MAX_STACK_SIZE} bytes (1 GiB, green::Builder::MAX_STACK_SIZE); pass a smaller size \
             to green::task::Builder::stack_size or green::Builder::stack_size"
        ),
    )
}

/// One coroutine stack, owned by the coroutine while it runs and by the
/// [`StackPool`] while it waits for reuse.
///
/// The memory belongs to a region that the pool unmaps when it is dropped,
/// unless a stack of that region was given up with [`StackPool::leak`]; the
/// runtime drops every coroutine (or leaks its stack) before it drops the
/// pool.
#[derive(Debug)]
pub(crate) struct Stack {
    /// Where the stack lies; copied into the task for overflow reports.
    bounds: StackBounds,
}

impl Stack {
    /// Where the stack lies and how it is guarded.
    pub(crate) fn bounds(&self) -> StackBounds {
        self.bounds
    }

    /// The size class the stack belongs to in the pool.
    pub(crate) fn class(&self) -> usize {
        self.bounds.class
    }
}

/// The addresses of a stack and its guard page: plain data, kept by the
/// task so the scheduler and the overflow handler can check the stack while
/// the coroutine owns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StackBounds {
    /// Highest address of the usable part (exclusive); the first frame is
    /// pushed just below it.
    pub(crate) base: usize,
    /// Lowest usable address; the guard page ends here.
    pub(crate) limit: usize,
    /// First byte of the guard page below `limit`.
    pub(crate) guard_start: usize,
    /// How the guard page is protected.
    pub(crate) protection: Protection,
    /// The size the stack was made for: the requested size rounded up to
    /// whole pages, which is its size class in the pool and the size that
    /// overflow reports name. The usable part is a little larger, by the
    /// stack's cache colour.
    pub(crate) class: usize,
}

impl StackBounds {
    /// Bounds of no stack, for a task that has none yet. No protection has
    /// been chosen for it, hence `Auto`; `base` 0 tells every check that
    /// there is nothing to look at.
    pub(crate) const EMPTY: StackBounds =
        StackBounds { base: 0, limit: 0, guard_start: 0, protection: Protection::Auto, class: 0 };

    /// Usable size in bytes (the guard page excluded).
    pub(crate) fn size(&self) -> usize {
        self.base - self.limit
    }

    /// The address range an overflow of this stack faults in, for the
    /// overflow reporter.
    pub(crate) fn guard_range(&self) -> (usize, usize) {
        (self.guard_start, self.limit)
    }

    /// Whether the canary page below a [`Protection::Canary`] stack is still
    /// intact at its top, where an overflow first lands. Cheap enough for
    /// every switch (for any other protection it is one comparison);
    /// [`StackBounds::canary_intact`] does the full scan.
    #[inline]
    pub(crate) fn canary_top_intact(&self) -> bool {
        if self.protection != Protection::Canary || self.base == 0 {
            return true;
        }
        // `limit` is the end of a whole page below it, so this stays inside
        // that page and cannot underflow.
        let words = (self.limit - 8 * CANARY_TOP_WORDS) as *const u64;
        (0..CANARY_TOP_WORDS).all(|i| {
            // SAFETY: `words` is the top of the canary page of a live stack (`base != 0`), mapped read/write
            // as long as its region, which outlives its stacks (dropped last by the pool, or never if one was
            // leaked); `i < CANARY_TOP_WORDS` keeps the aligned 8-byte read inside the page.
            let word = unsafe { words.add(i).read_volatile() };
            word == 0
        })
    }

    /// Whether the whole canary page below a [`Protection::Canary`] stack is
    /// still zero.
    pub(crate) fn canary_intact(&self) -> bool {
        if self.protection != Protection::Canary || self.base == 0 {
            return true;
        }
        let len = (self.limit - self.guard_start) / 8;
        let words = self.guard_start as *const u64;
        (0..len).all(|i| {
            // SAFETY: `words` is the page-aligned start of the canary page of a live stack (`base != 0`),
            // `len` words long, mapped read/write for as long as its region, which outlives every stack
            // carved from it. `i < len` keeps the aligned 8-byte read inside the page.
            let word = unsafe { words.add(i).read_volatile() };
            word == 0
        })
    }
}

/// Words at the top of a canary page that are checked on every switch.
const CANARY_TOP_WORDS: usize = 4;

// SAFETY: corosensei asks for a `base` and `limit` aligned to
// STACK_ALIGNMENT (16), at least MIN_STACK_SIZE (4096) usable bytes between
// them, memory that stays valid while the coroutine may use it, and a guard
// page that catches overflows. `limit()` is `guard_start`, page aligned;
// `base` is a page boundary minus a multiple of 64 bytes (the cache colour);
// the usable part is at least one page (`class_of` rounds every size up to
// one) and never smaller than the class, the colour coming out of a page
// added for it. The memory is a region's, mapped read/write until the pool
// is dropped (never, if a stack of the region was leaked), and the runtime
// drops or leaks every coroutine before its pool. The guard page faults on
// any access under `GuardRegion` and `GuardPage`, the only protections
// reachable from safe code (`Auto` picks one of them or fails the spawn). A
// `Canary` page does not fault: a runtime gets one only through the unsafe
// `Builder::stack_protection_unchecked`, whose caller promises that no
// coroutine overflows its stack, which is what a guard page is there for.
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.bounds.base).expect("stack base is never null")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.bounds.guard_start).expect("stack limit is never null")
    }
}

/// The system page size, asked once per process: a power of two, 4096 if
/// the system will not say.
pub(crate) fn page_size() -> usize {
    static CACHED: AtomicUsize = AtomicUsize::new(0);
    match CACHED.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: sysconf has no preconditions.
            let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let size = usize::try_from(size).ok().filter(|s| s.is_power_of_two()).unwrap_or(4096);
            CACHED.store(size, Ordering::Relaxed);
            size
        }
        size => size,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_round_up_to_whole_pages_with_one_page_at_least() {
        let page = page_size();
        assert_eq!(class_of(0).unwrap(), page, "0 means the minimum");
        assert_eq!(class_of(1).unwrap(), page);
        assert_eq!(class_of(page).unwrap(), page);
        assert_eq!(class_of(page + 1).unwrap(), 2 * page);
        assert_eq!(class_of(MAX_STACK_SIZE).unwrap(), MAX_STACK_SIZE);
    }

    #[test]
    fn sizes_above_the_maximum_are_errors_that_name_it() {
        let page = page_size();
        for size in [
            MAX_STACK_SIZE + 1,
            MAX_STACK_SIZE + page,
            1 << 40,
            1 << 60,
            usize::MAX / 16 + 1,
            usize::MAX - page + 2,
            usize::MAX,
        ] {
            let err = class_of(size).expect_err("too large");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
            let message = err.to_string();
            assert!(message.contains(&size.to_string()), "{message}");
            assert!(message.contains(&MAX_STACK_SIZE.to_string()), "{message}");
            assert!(message.contains("green::task::Builder::stack_size"), "{message}");
        }
    }
}
