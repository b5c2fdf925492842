//! Regions: large mappings that stacks are carved from, and how the guard
//! page below each stack is protected.
//!
//! A region is made in three steps, and only the last hands anything out:
//!
//! 1. its [`Layout`] is computed from the size class with checked
//!    arithmetic: a size that cannot be laid out is an error, never a wrap;
//! 2. it is mapped (one `mmap`);
//! 3. every one of its guard pages is protected as the [`Protection`] asks.
//!
//! Only when all three succeed are its stacks pushed for the pool. If the
//! mapping or any guard fails (the guard-page budget is spent, `mprotect` or
//! `madvise` refuses the fifth page of sixteen), the region is dropped
//! before the error is returned: unmapped, with the guard-page budget it
//! took given back, and nothing of it in the pool. Either every stack of a
//! region is usable and guarded, or the region does not exist.
//!
//! Which protection a region gets:
//!
//! | asked         | kernel has guard regions  | kernel lacks them           |
//! |---------------|---------------------------|-----------------------------|
//! | `Auto`        | guard regions¹            | guard pages, else an error² |
//! | `GuardRegion` | guard regions, else error | an error                    |
//! | `GuardPage`   | guard pages, else error²  | guard pages, else error²    |
//! | `Canary`³     | canary pages              | canary pages                |
//!
//! ¹ If the kernel refuses them for one region (locked memory, for one),
//! `Auto` gives that region guard pages instead: as strong, costlier.
//! ² The error names `vm.max_map_count` and the `sysctl` that raises it.
//! ³ Only through the unsafe `Builder::stack_protection_unchecked`.
//!
//! No row ends in a weaker protection than the one asked for.

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use super::protection::Protection;
use super::{MAX_STACK_SIZE, Stack, StackBounds, page_size};

/// `madvise` advice that installs a guard region (Linux 6.13+; not yet in
/// every libc crate release).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// What the process knows about guard regions: [`UNKNOWN`] until the first
/// `madvise(MADV_GUARD_INSTALL)` answers, then [`SUPPORTED`] or
/// [`UNSUPPORTED`] for good.
static GUARD_REGIONS: AtomicU8 = AtomicU8::new(UNKNOWN);
/// Not probed yet, or the probe failed for a reason that says nothing about
/// the kernel.
const UNKNOWN: u8 = 0;
/// A guard region was installed once.
const SUPPORTED: u8 = 1;
/// The first attempt failed with `EINVAL`: the kernel does not know the
/// advice (or the process locks all its memory, which guard regions refuse).
const UNSUPPORTED: u8 = 2;

/// Guard pages made with `mprotect` across the whole process; each costs one
/// extra mapping, and `vm.max_map_count` is a per-process limit. Taken
/// [`STACKS_PER_REGION`] at a time, before a region protects any page.
static GUARD_PAGES_IN_USE: AtomicUsize = AtomicUsize::new(0);

/// Stacks carved from one region.
pub(crate) const STACKS_PER_REGION: usize = 16;

/// The sizes of one region, derived from the size class of its stacks with
/// checked arithmetic.
///
/// ```text
///  |<----------------------------- slot ----------------------------->|
///  +------------+----------------------------------+-------------------+
///  | guard page | usable: class bytes              | colour room: page |
///  +------------+----------------------------------+-------------------+
///  ^ guard_start ^ limit          a stack's base lies in the last page ^
/// ```
#[derive(Debug, Clone, Copy)]
struct Layout {
    /// The page size: the guard page, and the colour room.
    page: usize,
    /// The size class: usable bytes every stack has at least.
    class: usize,
    /// Bytes from one stack's guard page to the next one's.
    slot: usize,
    /// Bytes of the whole mapping: [`STACKS_PER_REGION`] slots.
    len: usize,
}

impl Layout {
    /// The layout of a region for stacks of `class` usable bytes, which
    /// `class_of` made a multiple of the page size.
    ///
    /// # Errors
    ///
    /// `InvalidInput` if the region would not fit in the address space.
    fn new(class: usize) -> io::Result<Layout> {
        let page = page_size();
        let slot = page.checked_mul(2).and_then(|pages| class.checked_add(pages));
        let len = slot.and_then(|slot| slot.checked_mul(STACKS_PER_REGION));
        match (slot, len) {
            (Some(slot), Some(len)) => Ok(Layout { page, class, slot, len }),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "green: {STACKS_PER_REGION} coroutine stacks of {class} bytes do not fit in the \
                     address space; pass a smaller size (at most {MAX_STACK_SIZE} bytes) to \
                     green::task::Builder::stack_size or green::Builder::stack_size"
                ),
            )),
        }
    }
}

/// One anonymous mapping holding [`STACKS_PER_REGION`] stacks, each with
/// its guard page below it. Unmapped on drop, unless leaked.
#[derive(Debug)]
pub(crate) struct Region {
    /// Start of the mapping.
    start: usize,
    /// Length of the mapping in bytes; `start + len` does not overflow
    /// (checked when mapping), so no address inside the region does.
    len: usize,
    /// Guard pages of this region counted in [`GUARD_PAGES_IN_USE`],
    /// returned on drop (also when the region is dropped half-protected).
    guard_pages: usize,
    /// Set by [`Region::leak`]: something may still point into a stack of
    /// this region, so it is never unmapped (and its guard pages stay
    /// counted, since they stay mapped).
    leaked: bool,
}

impl Region {
    /// Maps a region for stacks of size class `class`, protects every
    /// guard page as `wanted` asks, and only then pushes its stacks onto
    /// `out`, lowest address last (so `pop` hands that one out first).
    ///
    /// # Errors
    ///
    /// If the region cannot be laid out or mapped, or a guard page cannot be
    /// protected as asked (see the module docs); then `out` is untouched and
    /// nothing of the region remains.
    pub(crate) fn allocate(class: usize, wanted: Protection, out: &mut Vec<Stack>) -> io::Result<Region> {
        Region::allocate_with(class, wanted, Limits::of_this_process(), out)
    }

    /// [`Region::allocate`] with the facts about the system given, so that
    /// tests can play a kernel without guard regions or a spent budget.
    fn allocate_with(
        class: usize,
        wanted: Protection,
        limits: Limits,
        out: &mut Vec<Stack>,
    ) -> io::Result<Region> {
        let layout = Layout::new(class)?;
        let mut region = Region::map(&layout)?;
        // On an error `region` is dropped here: unmapped, budget returned.
        let protection = region.protect(&layout, wanted, limits)?;
        // Every guard is in place: only now are the stacks handed out.
        let first = next_stack_number();
        out.reserve(STACKS_PER_REGION);
        for i in (0..STACKS_PER_REGION).rev() {
            out.push(region.stack(&layout, i, first.wrapping_add(i), protection));
        }
        Ok(region)
    }

    /// Maps the memory of a region laid out as `layout`, read/write.
    fn map(layout: &Layout) -> io::Result<Region> {
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing aliases nothing; the arguments are plain values.
        let start = unsafe {
            libc::mmap(
                ptr::null_mut(),
                layout.len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            let err = io::Error::last_os_error();
            return Err(io::Error::new(
                err.kind(),
                format!(
                    "green: cannot map {} bytes for {STACKS_PER_REGION} coroutine stacks of {} bytes: \
                     {err}; lower the stack size (green::task::Builder::stack_size or \
                     green::Builder::stack_size) or raise the address-space limit (ulimit -v)",
                    layout.len, layout.class
                ),
            ));
        }
        let region = Region { start: start as usize, len: layout.len, guard_pages: 0, leaked: false };
        if region.start.checked_add(region.len).is_none() {
            // A kernel never maps past the end of the address space; if it
            // did, every address computed in the region would be suspect.
            return Err(io::Error::other("green: mmap returned a mapping that wraps the address space"));
        }
        Ok(region)
    }

    /// First byte of the guard page of stack `i` (`i < STACKS_PER_REGION`).
    fn guard_start(&self, layout: &Layout, i: usize) -> usize {
        debug_assert!(i < STACKS_PER_REGION);
        // `i * slot < len` and `start + len` does not overflow (see `map`).
        self.start + i * layout.slot
    }

    /// The bounds of stack `i`, numbered `n` across the process for its
    /// cache colour.
    fn stack(&self, layout: &Layout, i: usize, n: usize, protection: Protection) -> Stack {
        let guard_start = self.guard_start(layout, i);
        // Both lie inside slot `i`, so inside the mapping: the limit one page
        // up, the base less than half a page below the slot's end.
        let limit = guard_start + layout.page;
        let base = guard_start + layout.slot - colour(n, layout.page);
        Stack { bounds: StackBounds { base, limit, guard_start, protection, class: layout.class } }
    }

    /// Protects every guard page of the region as `wanted` asks (see the
    /// table in the module docs) and says how they are protected.
    fn protect(&mut self, layout: &Layout, wanted: Protection, limits: Limits) -> io::Result<Protection> {
        match wanted {
            Protection::Canary => Ok(Protection::Canary),
            Protection::GuardPage => {
                self.install_guard_pages(layout, wanted, limits)?;
                Ok(Protection::GuardPage)
            }
            Protection::GuardRegion => {
                if !limits.guard_regions {
                    return Err(guard_region_error(None));
                }
                self.install_guard_regions(layout).map_err(|err| guard_region_error(Some(err)))?;
                Ok(Protection::GuardRegion)
            }
            Protection::Auto => {
                if limits.guard_regions && self.install_guard_regions(layout).is_ok() {
                    return Ok(Protection::GuardRegion);
                }
                // Pages that did get a guard region keep it under PROT_NONE:
                // both fault, so the region is uniformly guarded.
                self.install_guard_pages(layout, wanted, limits)?;
                Ok(Protection::GuardPage)
            }
        }
    }

    /// Installs a guard region on every guard page, stopping at the first
    /// failure. The first attempt in the process decides whether the kernel
    /// supports them.
    fn install_guard_regions(&mut self, layout: &Layout) -> io::Result<()> {
        for i in 0..STACKS_PER_REGION {
            let result = install_guard_region(self.guard_start(layout, i), layout.page);
            if GUARD_REGIONS.load(Ordering::Relaxed) == UNKNOWN {
                let learnt = match &result {
                    Ok(()) => SUPPORTED,
                    Err(err) if err.raw_os_error() == Some(libc::EINVAL) => UNSUPPORTED,
                    Err(_) => UNKNOWN,
                };
                GUARD_REGIONS.store(learnt, Ordering::Relaxed);
            }
            result?;
        }
        Ok(())
    }

    /// Takes [`STACKS_PER_REGION`] guard pages from the process's budget and
    /// makes every guard page of the region `PROT_NONE`, stopping at the
    /// first failure. What was taken is given back when the region drops.
    fn install_guard_pages(&mut self, layout: &Layout, wanted: Protection, limits: Limits) -> io::Result<()> {
        take_guard_pages(STACKS_PER_REGION, limits.guard_page_budget)
            .map_err(|in_use| budget_error(wanted, in_use, limits.guard_page_budget))?;
        self.guard_pages = STACKS_PER_REGION;
        for i in 0..STACKS_PER_REGION {
            protect_guard_page(self.guard_start(layout, i), layout.page).map_err(mprotect_error)?;
        }
        Ok(())
    }

    /// Whether `address` lies inside this region.
    pub(crate) fn contains(&self, address: usize) -> bool {
        self.start <= address && address - self.start < self.len
    }

    /// Keeps the region mapped for as long as the process lives: a stack of
    /// it was given up while something may still point into it.
    pub(crate) fn leak(&mut self) {
        self.leaked = true;
    }

    /// Whether a stack of the region was given up with [`Region::leak`].
    pub(crate) fn is_leaked(&self) -> bool {
        self.leaked
    }

    /// Whether the region's guards are `mprotect` guard pages, which count
    /// against the process's budget of them.
    pub(crate) fn has_guard_pages(&self) -> bool {
        self.guard_pages > 0
    }

    /// The lowest address of the mapping.
    pub(crate) fn start(&self) -> usize {
        self.start
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        if self.leaked {
            return; // still mapped, and its guard pages with it
        }
        GUARD_PAGES_IN_USE.fetch_sub(self.guard_pages, Ordering::Relaxed);
        // SAFETY: the mapping is `map`'s, unmapped only here, when no stack of it is in use: the runtime
        // drops every coroutine before its pool (a stack it cannot take back is leaked, and then this
        // region is never unmapped), and a region dropped half-protected handed out nothing.
        unsafe { libc::munmap(self.start as *mut libc::c_void, self.len) };
    }
}

/// The facts about the process that decide a region's protection.
#[derive(Debug, Clone, Copy)]
struct Limits {
    /// Whether guard regions may be tried: false once the kernel is known
    /// to lack them.
    guard_regions: bool,
    /// Guard pages the whole process may make with `mprotect`.
    guard_page_budget: usize,
}

impl Limits {
    /// The facts as this process knows them now.
    fn of_this_process() -> Limits {
        Limits {
            guard_regions: GUARD_REGIONS.load(Ordering::Relaxed) != UNSUPPORTED,
            guard_page_budget: guard_page_budget(),
        }
    }
}

/// Takes `count` guard pages from the process-wide count if that keeps it
/// within `budget`; otherwise returns how many are in use and takes none.
fn take_guard_pages(count: usize, budget: usize) -> Result<(), usize> {
    GUARD_PAGES_IN_USE
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |in_use| {
            in_use.checked_add(count).filter(|&after| after <= budget)
        })
        .map(drop)
}

/// How far below the top of its slot stack `n` (counted across the
/// process) starts: a different multiple of the cache line for consecutive
/// stacks, less than half a page.
///
/// Without it every stack top has the same offset within its page, so the
/// hot frames of all coroutines compete for the same few sets of the
/// (set-associative) L1 and L2 caches, and switching round 200 coroutines
/// misses on nearly every switch. Spreading the tops over 32 line offsets
/// (half a page) removes that aliasing (PERF.md, "Cache colours", has the
/// measurement) while keeping the top frames of most sleeping coroutines
/// within one page.
fn colour(n: usize, page: usize) -> usize {
    const LINE: usize = 64;
    let colours = (page / 2 / LINE).max(1);
    // 37 is odd, and the number of colours a power of two, so consecutive
    // stacks get distinct offsets until all are used, in a scattered order.
    (n.wrapping_mul(37) % colours) * LINE
}

/// The number of the first stack of the next region, for [`colour`]. It
/// wraps after `usize::MAX` stacks, which only repeats colours.
fn next_stack_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(STACKS_PER_REGION, Ordering::Relaxed)
}

/// Installs a guard region on the page at `guard_start`.
fn install_guard_region(guard_start: usize, page: usize) -> io::Result<()> {
    if let Some(err) = injected_failure() {
        return Err(err);
    }
    // SAFETY: the page lies inside a mapping owned by the calling region,
    // from which no stack has been handed out yet; installing a guard only
    // makes accesses to that page fault.
    let rc = unsafe { libc::madvise(guard_start as *mut libc::c_void, page, MADV_GUARD_INSTALL) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Makes the page at `guard_start` inaccessible with `mprotect`.
fn protect_guard_page(guard_start: usize, page: usize) -> io::Result<()> {
    if let Some(err) = injected_failure() {
        return Err(err);
    }
    // SAFETY: the page lies inside a mapping owned by the calling region,
    // from which no stack has been handed out yet, so nothing uses it.
    let rc = unsafe { libc::mprotect(guard_start as *mut libc::c_void, page, libc::PROT_NONE) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// The error for `Protection::GuardRegion` when the kernel lacks guard
/// regions (`None`) or refused one (`Some`).
#[cold]
fn guard_region_error(err: Option<io::Error>) -> io::Error {
    let why = match err {
        None => "the kernel does not offer it here (Linux before 6.13 lacks guard regions, and newer \
                 kernels refuse them in locked memory, see mlockall)"
            .to_owned(),
        Some(err) => format!(
            "the kernel refused it: {err} (Linux before 6.13 lacks guard regions, and newer kernels \
             refuse them in locked memory, see mlockall)"
        ),
    };
    io::Error::new(
        io::ErrorKind::Unsupported,
        format!(
            "green: Protection::GuardRegion needs madvise(MADV_GUARD_INSTALL), and {why}; it is \
             never replaced by another protection: use Protection::Auto, which falls back to \
             mprotect guard pages"
        ),
    )
}

/// The error for a region whose guard pages would exceed the budget.
#[cold]
fn budget_error(wanted: Protection, in_use: usize, budget: usize) -> io::Error {
    let max = max_map_count();
    let what = match wanted {
        Protection::GuardPage => "Protection::GuardPage asks for mprotect guard pages",
        _ => {
            "guard regions (madvise(MADV_GUARD_INSTALL), Linux 6.13+) are unavailable, so every stack needs an mprotect guard page"
        }
    };
    io::Error::new(
        io::ErrorKind::OutOfMemory,
        format!(
            "green: cannot guard {STACKS_PER_REGION} more coroutine stacks: {what}, and the process \
             already has {in_use} of the {budget} guard pages it may make (a quarter of \
             vm.max_map_count = {max}: each costs two mappings, and half the limit is left to the \
             rest of the process); raise the limit with `sysctl -w vm.max_map_count={}`, or keep \
             fewer coroutines alive at once",
            max.saturating_mul(2)
        ),
    )
}

/// The error for an `mprotect` that failed on a guard page.
#[cold]
fn mprotect_error(err: io::Error) -> io::Error {
    let max = max_map_count();
    io::Error::new(
        err.kind(),
        format!(
            "green: cannot protect the guard page below a coroutine stack: mprotect failed: {err}; \
             the process may have reached vm.max_map_count ({max} mappings): raise it with \
             `sysctl -w vm.max_map_count={}`",
            max.saturating_mul(2)
        ),
    )
}

/// The per-process mapping limit, read once from `/proc`.
pub(crate) fn max_map_count() -> usize {
    static CACHED: AtomicUsize = AtomicUsize::new(0);
    match CACHED.load(Ordering::Relaxed) {
        0 => {
            let value = std::fs::read_to_string("/proc/sys/vm/max_map_count")
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(65_530);
            CACHED.store(value, Ordering::Relaxed);
            value
        }
        value => value,
    }
}

/// Guard pages the process may create with `mprotect`: a quarter of
/// `vm.max_map_count`. Each splits its region, costing two mappings, so
/// guard pages take at most half of the mappings, and the other half is
/// left to everything else in the process.
fn guard_page_budget() -> usize {
    max_map_count() / 4
}

/// Whether the guard operation about to run should fail: never, outside
/// the unit tests of this module.
#[cfg(not(test))]
#[inline(always)]
fn injected_failure() -> Option<io::Error> {
    None
}

/// Whether the guard operation about to run should fail, as the unit test
/// running on this thread asked.
#[cfg(test)]
fn injected_failure() -> Option<io::Error> {
    tests::injected_failure()
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        /// Guard operations left to succeed on this thread before one fails
        /// (`usize::MAX`: none fails).
        static SUCCEED_BEFORE_FAILING: Cell<usize> = const { Cell::new(usize::MAX) };
    }

    /// Whether the guard operation about to run on this thread should fail.
    pub(super) fn injected_failure() -> Option<io::Error> {
        let left = SUCCEED_BEFORE_FAILING.get();
        if left == usize::MAX {
            return None;
        }
        if left == 0 {
            SUCCEED_BEFORE_FAILING.set(usize::MAX);
            return Some(io::Error::from_raw_os_error(libc::ENOMEM));
        }
        SUCCEED_BEFORE_FAILING.set(left - 1);
        None
    }

    /// A stack that no region owns, to see whether `out` is touched.
    fn marker() -> Stack {
        let bounds = StackBounds { base: 1 << 20, class: 4096, ..StackBounds::EMPTY };
        Stack { bounds }
    }

    fn limits(guard_regions: bool, guard_page_budget: usize) -> Limits {
        Limits { guard_regions, guard_page_budget }
    }

    fn kernel_has_guard_regions() -> bool {
        let mut out = Vec::new();
        Region::allocate_with(4096, Protection::GuardRegion, limits(true, 0), &mut out).is_ok()
    }

    #[test]
    fn stacks_of_a_region_start_at_different_cache_colours() {
        let mut stacks = Vec::new();
        let _region = Region::allocate(16 * 1024, Protection::Auto, &mut stacks).unwrap();
        let page = page_size();
        let mut offsets: Vec<usize> = stacks.iter().map(|s| s.bounds().base % page).collect();
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(offsets.len(), STACKS_PER_REGION, "every stack top has its own offset in the page");
        for stack in &stacks {
            let bounds = stack.bounds();
            assert!(bounds.size() >= 16 * 1024, "colouring never takes from the usable size");
            assert_eq!(bounds.base % 16, 0, "stack tops stay 16-byte aligned");
            assert_eq!(bounds.limit - bounds.guard_start, page);
        }
    }

    #[test]
    fn a_region_whose_guards_fail_half_way_hands_out_nothing() {
        let modes = [
            (Protection::GuardPage, limits(false, usize::MAX)),
            (Protection::Auto, limits(false, usize::MAX)),
            (Protection::GuardRegion, limits(true, 0)),
        ];
        for (wanted, limits) in modes {
            if wanted == Protection::GuardRegion && !kernel_has_guard_regions() {
                continue;
            }
            for failing in [0, 4, STACKS_PER_REGION - 1] {
                let mut out = vec![marker()];
                SUCCEED_BEFORE_FAILING.set(failing);
                let result = Region::allocate_with(8192, wanted, limits, &mut out);
                SUCCEED_BEFORE_FAILING.set(usize::MAX);
                let err = result.expect_err("a guard failed");
                assert_eq!(out.len(), 1, "{wanted:?}, guard {failing} failing: stacks were handed out");
                assert_eq!(out[0].bounds(), marker().bounds());
                let message = err.to_string();
                assert!(message.starts_with("green: "), "{message}");
            }
        }
    }

    #[test]
    fn auto_without_guard_regions_uses_guard_pages() {
        let mut out = Vec::new();
        let _region =
            Region::allocate_with(8192, Protection::Auto, limits(false, usize::MAX), &mut out).unwrap();
        assert_eq!(out.len(), STACKS_PER_REGION);
        assert!(out.iter().all(|s| s.bounds().protection == Protection::GuardPage));
    }

    #[test]
    fn auto_falls_back_to_guard_pages_when_a_guard_region_is_refused() {
        if !kernel_has_guard_regions() {
            return;
        }
        let mut out = Vec::new();
        SUCCEED_BEFORE_FAILING.set(4);
        let region = Region::allocate_with(8192, Protection::Auto, limits(true, usize::MAX), &mut out);
        SUCCEED_BEFORE_FAILING.set(usize::MAX);
        let _region = region.unwrap();
        assert_eq!(out.len(), STACKS_PER_REGION);
        assert!(out.iter().all(|s| s.bounds().protection == Protection::GuardPage));
    }

    #[test]
    fn a_spent_budget_is_an_error_that_says_how_to_raise_it_never_a_canary() {
        for wanted in [Protection::Auto, Protection::GuardPage] {
            let mut out = Vec::new();
            let err = Region::allocate_with(8192, wanted, limits(false, 0), &mut out)
                .expect_err("no guard page may be made");
            assert!(out.is_empty());
            let message = err.to_string();
            for expected in ["vm.max_map_count", "sysctl -w vm.max_map_count="] {
                assert!(message.contains(expected), "{wanted:?}: {message}");
            }
        }
        // A budget that holds part of a region gives none of it.
        let mut out = Vec::new();
        let budget = limits(false, STACKS_PER_REGION - 1);
        let err = Region::allocate_with(8192, Protection::GuardPage, budget, &mut out);
        assert!(err.is_err() && out.is_empty());
    }

    #[test]
    fn guard_region_is_never_replaced() {
        let mut out = Vec::new();
        let err = Region::allocate_with(8192, Protection::GuardRegion, limits(false, usize::MAX), &mut out)
            .expect_err("no guard regions on this pretend kernel");
        assert!(out.is_empty());
        let message = err.to_string();
        assert!(message.contains("MADV_GUARD_INSTALL") && message.contains("Protection::Auto"), "{message}");
    }

    #[test]
    fn sizes_that_do_not_fit_are_errors() {
        let mut out = Vec::new();
        let page = page_size();
        for class in [usize::MAX - page + 1, usize::MAX / STACKS_PER_REGION + page] {
            let class = class / page * page;
            let err = Region::allocate(class, Protection::Auto, &mut out).expect_err("does not fit");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{err}");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn a_leaked_region_stays_mapped() {
        let mut out = Vec::new();
        let mut region = Region::allocate(8192, Protection::Auto, &mut out).unwrap();
        let top = out[0].bounds().base - 8;
        assert!(region.contains(top));
        region.leak();
        drop(region);
        // SAFETY: the region was leaked, so it is still mapped read/write,
        // and `top` is the top word of one of its stacks, which nothing else
        // uses.
        unsafe { (top as *mut u64).write_volatile(42) };
        // SAFETY: the leaked region stays mapped read/write, and `top` is
        // the aligned top word of one of its stacks, which nothing else uses.
        assert_eq!(unsafe { (top as *const u64).read_volatile() }, 42);
    }
}
