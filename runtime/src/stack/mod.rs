//! Coroutine stacks: how they are laid out, guarded and recycled.
//!
//! Every coroutine runs on a stack of its own. Stacks are carved from large
//! anonymous mappings called *regions*, so that a hundred thousand stacks do
//! not cost a hundred thousand mappings, and they are kept in a [`StackPool`]
//! when their coroutine finishes, so that in steady state spawning performs
//! no `mmap` or `munmap` at all.
//!
//! ```text
//!  one region (a single mmap, MAP_NORESERVE, address grows to the right)
//!
//!  +-------+---------------------+-------+---------------------+-----
//!  | guard |   usable stack 0    | guard |   usable stack 1    | ...
//!  | page  |  <- grows downward  | page  |  <- grows downward  |
//!  +-------+---------------------+-------+---------------------+-----
//!  ^       ^                     ^
//!  |       limit (lowest usable) base (highest address, where the
//!  |                             first frame is pushed)
//!  guard_start
//! ```
//!
//! An overflow of stack *n* runs off its `limit` into the guard page below
//! it. What happens there depends on the [`Protection`] the pool chose for
//! that page (see `DESIGN.md`, "Stacks and `vm.max_map_count`"):
//!
//! 1. [`Protection::GuardRegion`]: the kernel's lightweight guard regions
//!    (`madvise(MADV_GUARD_INSTALL)`, Linux 6.13+). Any access faults, and
//!    the page costs no extra mapping, so every stack is guarded however many
//!    there are.
//! 2. [`Protection::GuardPage`]: `mprotect(PROT_NONE)`. Any access faults,
//!    but the region is split into two mappings per stack, and the kernel
//!    refuses to create more than `vm.max_map_count` mappings per process.
//!    The pool spends at most half of that budget on guard pages.
//! 3. [`Protection::Canary`]: the page stays readable and writable and must
//!    stay zero. The runtime checks it each time the coroutine switches out
//!    and scans it fully when the stack returns to the pool; a non-zero byte
//!    means the coroutine overflowed and the process aborts with a report.
//!    This is detection after the fact, the price of scaling past the
//!    mapping limit on kernels without guard regions.
//!
//! A fault in a guard page is turned into a readable report by
//! [`overflow`], which names the coroutine, its id and its stack size.

pub(crate) mod overflow;
mod pool;
mod region;

pub(crate) use pool::StackPool;
pub use region::Protection;

use std::sync::atomic::{AtomicUsize, Ordering};

use corosensei::stack::StackPointer;

/// One coroutine stack, owned by the coroutine while it runs and by the
/// [`StackPool`] while it waits for reuse.
///
/// The memory belongs to a region that the pool unmaps when it is dropped;
/// the runtime drops every coroutine before it drops the pool.
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
    /// Bounds of no stack, for a task that has none yet.
    pub(crate) const EMPTY: StackBounds =
        StackBounds { base: 0, limit: 0, guard_start: 0, protection: Protection::Canary, class: 0 };

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
    /// every switch; [`StackBounds::canary_intact`] does the full scan.
    #[inline]
    pub(crate) fn canary_top_intact(&self) -> bool {
        if self.protection != Protection::Canary || self.base == 0 {
            return true;
        }
        let words = (self.limit - 8 * CANARY_TOP_WORDS) as *const u64;
        (0..CANARY_TOP_WORDS).all(|i| {
            // SAFETY: the canary page is mapped read/write for as long as the
            // region lives, and the region outlives every stack carved from
            // it; `i < CANARY_TOP_WORDS` keeps the read inside that page.
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
            // SAFETY: as in `canary_top_intact`; `i < len` keeps the read
            // inside the canary page.
            let word = unsafe { words.add(i).read_volatile() };
            word == 0
        })
    }
}

/// Words at the top of a canary page that are checked on every switch.
const CANARY_TOP_WORDS: usize = 4;

// `base` and `limit` bound memory that stays mapped read/write until the
// pool that carved it is dropped, and the runtime drops every coroutine (and
// so every use of the stack) first. `limit` is page aligned and `base` a
// multiple of 64 bytes (a cache colour below a page boundary), both beyond
// STACK_ALIGNMENT, and the usable size is at least one page (MIN_STACK_SIZE).
// The guard page below `limit` faults on access for `GuardRegion` and
// `GuardPage`. For `Canary` it does not, as corosensei's contract asks; the
// runtime checks the canary instead (see the module docs and DESIGN.md).
// SAFETY: the bounds and guard are as corosensei requires, Canary excepted.
unsafe impl corosensei::stack::Stack for Stack {
    fn base(&self) -> StackPointer {
        StackPointer::new(self.bounds.base).expect("stack base is never null")
    }

    fn limit(&self) -> StackPointer {
        StackPointer::new(self.bounds.guard_start).expect("stack limit is never null")
    }
}

/// The system page size, asked once per process.
pub(crate) fn page_size() -> usize {
    static CACHED: AtomicUsize = AtomicUsize::new(0);
    match CACHED.load(Ordering::Relaxed) {
        0 => {
            // SAFETY: sysconf has no preconditions.
            let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            let size = usize::try_from(size).unwrap_or(4096);
            CACHED.store(size, Ordering::Relaxed);
            size
        }
        size => size,
    }
}
