//! The stack pool: stacks of finished coroutines wait here for the next
//! spawn, so that steady-state spawning maps and unmaps nothing.
//!
//! A stack is in exactly one of these places:
//!
//! 1. **free** in its size class (`warm` or `cold`), possibly promised to a
//!    spawned task that has not started (counted in `reserved`);
//! 2. **taken** by a coroutine ([`StackPool::take_reserved`],
//!    [`StackPool::get`]), until it comes back with [`StackPool::put`];
//! 3. **leaked** ([`StackPool::leak`]): given up for good because something
//!    may still point into it. It is never handed out again, and its region
//!    is never unmapped.
//!
//! Only whole regions enter the pool: a region that could not be mapped
//! and guarded completely adds nothing (see `region.rs`).
//!
//! # The depot: stacks outlive their runtime
//!
//! When a runtime ends, its pool does not unmap its regions at once: the
//! pool goes to a process-wide depot, and the next runtime of the process
//! (with the same protection) starts with it instead of an empty one
//! ([`StackPool::for_runtime`]). A program that runs a runtime per request
//! batch, per test, or per fork-join then maps, guards and faults in its
//! stacks once, not once per runtime: mapping a region, installing a guard
//! per stack and touching each stack's first page cost a spawn about a
//! microsecond, seven times the rest of it (PERF.md, "Cold spawns").
//!
//! The depot keeps at most [`DEPOT_STACKS`] stacks in all, whole regions
//! only; the rest is unmapped as before, so a burst of a million coroutines
//! returns its memory when its runtime ends. A pool that gave up a stack
//! (a coroutine that refused to die) is never deposited: its regions are
//! dropped as before, the leaked one kept mapped. Nor is a pool whose
//! guards are `mprotect` guard pages (kernels before 6.13): they count
//! against a process-wide budget another runtime may need. Stacks in the depot are
//! free stacks: no coroutine runs on them and nothing points into them,
//! so they may move to another thread's runtime.

use std::io;
use std::sync::{Mutex, PoisonError};

use super::region::{Region, STACKS_PER_REGION};
use super::{Protection, Stack, class_of, overflow};
use crate::task::id::Task;

/// Free stacks per size whose memory stays in place. When the runtime goes
/// idle, the memory of free stacks beyond this is returned to the kernel
/// with `MADV_DONTNEED`; they keep their address range, so reusing them
/// later costs page faults, not mappings.
const WARM_STACKS: usize = 1024;

/// The free stacks of one size.
#[derive(Debug)]
struct SizeClass {
    /// Usable size of every stack in this class.
    size: usize,
    /// Free stacks whose memory is in place, most recently released last.
    warm: Vec<Stack>,
    /// Free stacks whose memory was returned to the kernel.
    cold: Vec<Stack>,
    /// Stacks promised to tasks that are spawned but not yet started: the
    /// class keeps at least this many free stacks.
    reserved: usize,
}

/// Stacks the depot keeps, all pools and sizes together: the warm stacks
/// of a server's first 10,000 connections, at one or two pages each 40 to
/// 80 MiB of memory at most, and a few GiB of address space.
pub(crate) const DEPOT_STACKS: usize = 16_384;

/// Pools of runtimes that have ended, for the next runtimes to start with.
static DEPOT: Mutex<Vec<StackPool>> = Mutex::new(Vec::new());

/// The stacks of one runtime. Owned by the scheduler; dropped after every
/// coroutine, into the depot if it takes it.
#[derive(Debug)]
pub(crate) struct StackPool {
    /// Free stacks by usable size (a multiple of the page size). Programs
    /// use one or two sizes, so a short list beats a hash map.
    classes: Vec<SizeClass>,
    /// Every region this pool has mapped; unmapped when the pool drops,
    /// except those holding a leaked stack.
    regions: Vec<Region>,
    /// How guard pages are protected (see [`Protection`]).
    protection: Protection,
    /// Whether the pool goes to the depot when dropped.
    deposit: bool,
}

impl StackPool {
    /// An empty pool that will protect stacks as `protection` says, and is
    /// unmapped when dropped.
    pub(crate) fn new(protection: Protection) -> Self {
        StackPool { classes: Vec::new(), regions: Vec::new(), protection, deposit: false }
    }

    /// The pool of a new runtime: one from the depot with the same
    /// protection if there is one, else an empty one; either goes to the
    /// depot when dropped.
    pub(crate) fn for_runtime(protection: Protection) -> Self {
        let mut depot = DEPOT.lock().unwrap_or_else(PoisonError::into_inner);
        let mut pool = match depot.iter().rposition(|pool| pool.protection == protection) {
            Some(at) => depot.swap_remove(at),
            None => StackPool::new(protection),
        };
        pool.deposit = true;
        pool
    }

    /// Stacks in this pool, free or not.
    fn stacks(&self) -> usize {
        self.regions.len() * STACKS_PER_REGION
    }

    /// Moves this pool's regions, and the free stacks they hold, into a new
    /// pool for the depot: as many whole regions as `room` stacks allow.
    /// Returns None when nothing can go: no room, a region leaked, a stack
    /// still out (a pool is dropped after every coroutine, so every stack is
    /// back unless it was leaked), or guards made with `mprotect`, which
    /// count against a process-wide budget that other runtimes may need
    /// (`region.rs`).
    fn take_for_depot(&mut self, room: usize) -> Option<StackPool> {
        let free: usize = self.classes.iter().map(|c| c.warm.len() + c.cold.len()).sum();
        let whole =
            free == self.stacks() && self.regions.iter().all(|r| !r.is_leaked() && !r.has_guard_pages());
        let keep = (room / STACKS_PER_REGION).min(self.regions.len());
        if !whole || keep == 0 {
            return None;
        }
        // The regions kept are the first mapped; the rest stay here, with
        // their stacks, and are unmapped when `self` drops.
        let mut regions: Vec<Region> = self.regions.drain(..keep).collect();
        regions.sort_unstable_by_key(Region::start);
        let kept = |stack: &Stack| {
            let address = stack.bounds().guard_start;
            let at = regions.partition_point(|region| region.start() <= address);
            at > 0 && regions[at - 1].contains(address)
        };
        let mut classes = Vec::new();
        for class in &mut self.classes {
            let warm: Vec<Stack> = class.warm.extract_if(.., |s| kept(s)).collect();
            let cold: Vec<Stack> = class.cold.extract_if(.., |s| kept(s)).collect();
            if !warm.is_empty() || !cold.is_empty() {
                classes.push(SizeClass { size: class.size, warm, cold, reserved: 0 });
            }
        }
        Some(StackPool { classes, regions, protection: self.protection, deposit: false })
    }

    /// The free stacks of size class `size`, made empty if there are none.
    fn class(&mut self, size: usize) -> &mut SizeClass {
        let index = match self.classes.iter().position(|c| c.size == size) {
            Some(index) => index,
            None => {
                self.classes.push(SizeClass { size, warm: Vec::new(), cold: Vec::new(), reserved: 0 });
                self.classes.len() - 1
            }
        };
        &mut self.classes[index]
    }

    /// Promises a stack of at least `size` usable bytes to a task that
    /// will start later, mapping a new region if the free stacks of that
    /// size are all promised. Returns the size class to pass to
    /// [`StackPool::take_reserved`].
    ///
    /// # Errors
    ///
    /// `InvalidInput` if `size` is above the maximum stack size; otherwise
    /// whatever keeps a new region from being mapped and guarded (the
    /// message says which limit and how to raise it). Nothing is promised
    /// then, and nothing of the failed region is kept.
    pub(crate) fn reserve(&mut self, size: usize) -> io::Result<usize> {
        let size = class_of(size)?;
        let protection = self.protection;
        let class = self.class(size);
        if class.warm.len() + class.cold.len() <= class.reserved {
            let region = Region::allocate(size, protection, &mut class.warm)?;
            self.regions.push(region);
        }
        self.class(size).reserved += 1;
        Ok(size)
    }

    /// Takes a stack promised by [`StackPool::reserve`]: the most recently
    /// released one, whose top is likely still in the cache.
    pub(crate) fn take_reserved(&mut self, class: usize) -> Stack {
        let class = self.class(class);
        class.reserved -= 1;
        class.warm.pop().or_else(|| class.cold.pop()).expect("a reserved stack is waiting in the pool")
    }

    /// A stack with at least `size` usable bytes, now.
    ///
    /// # Errors
    ///
    /// As [`StackPool::reserve`].
    pub(crate) fn get(&mut self, size: usize) -> io::Result<Stack> {
        let class = self.reserve(size)?;
        Ok(self.take_reserved(class))
    }

    /// Takes back the stack of a finished coroutine.
    ///
    /// A canary stack whose canary page is no longer zero was overflowed:
    /// the process aborts with a report naming `owner`.
    pub(crate) fn put(&mut self, stack: Stack, owner: &Task) {
        if !stack.bounds().canary_intact() {
            overflow::report_canary(owner, &stack.bounds());
        }
        self.class(stack.class()).warm.push(stack);
    }

    /// Gives up `stack` for good, for a coroutine that cannot be unwound
    /// (it refused to die at shutdown): something may still point into its
    /// stack, so the stack is never handed out again, and the region it lies
    /// in is never unmapped, not even when the pool is dropped. The region's
    /// other stacks are reused as before; only its address space (and the
    /// pages the leaked stack touched) stays with the process.
    pub(crate) fn leak(&mut self, stack: Stack) {
        let address = stack.bounds().guard_start;
        match self.regions.iter_mut().find(|region| region.contains(address)) {
            Some(region) => region.leak(),
            None => debug_assert!(false, "a leaked stack belongs to a region of its pool"),
        }
    }

    /// Returns the memory of free stacks beyond [`WARM_STACKS`] per size to
    /// the kernel. Called when the runtime is about to sleep, so the
    /// syscalls never delay a ready coroutine.
    ///
    /// The stacks released are the ones freed longest ago, at the front of
    /// `warm`; the [`WARM_STACKS`] freed most recently stay, because the
    /// next spawns take from the back and those tops are the likeliest to
    /// be in the cache still.
    pub(crate) fn trim(&mut self) {
        for class in &mut self.classes {
            let excess = class.warm.len().saturating_sub(WARM_STACKS);
            for stack in class.warm.drain(..excess) {
                let bounds = stack.bounds();
                // SAFETY: `limit .. base` of a free stack lies in a region this pool keeps mapped; no coroutine
                // runs on it or points into it (such a stack is leaked, never put back), and DONTNEED on a
                // private anonymous mapping only drops its contents, which read back as zeros.
                unsafe {
                    libc::madvise(bounds.limit as *mut libc::c_void, bounds.size(), libc::MADV_DONTNEED)
                };
                class.cold.push(stack);
            }
        }
    }

    /// Stacks currently free, all sizes together.
    #[cfg(test)]
    pub(crate) fn free_count(&self) -> usize {
        self.classes.iter().map(|c| c.warm.len() + c.cold.len()).sum()
    }

    /// Regions mapped so far.
    #[cfg(test)]
    pub(crate) fn region_count(&self) -> usize {
        self.regions.len()
    }
}

impl Drop for StackPool {
    fn drop(&mut self) {
        if !self.deposit || self.regions.is_empty() {
            return;
        }
        let mut depot = DEPOT.lock().unwrap_or_else(PoisonError::into_inner);
        let held: usize = depot.iter().map(StackPool::stacks).sum();
        if let Some(kept) = self.take_for_depot(DEPOT_STACKS.saturating_sub(held)) {
            depot.push(kept);
        }
        // What is left in `self.regions` is unmapped by their destructors.
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recycles_without_mapping_again() {
        let mut pool = StackPool::new(Protection::Auto);
        let owner = Task::for_test(0, Some("test"));
        let first = pool.get(64 * 1024).unwrap();
        let base = first.bounds().base;
        pool.put(first, &owner);
        let again = pool.get(64 * 1024).unwrap();
        assert_eq!(again.bounds().base, base, "the most recently freed stack is reused first");
        assert_eq!(pool.region_count(), 1);
        pool.put(again, &owner);
    }

    #[test]
    fn one_region_serves_many_stacks() {
        let mut pool = StackPool::new(Protection::Auto);
        let owner = Task::for_test(0, Some("test"));
        let stacks: Vec<_> = (0..STACKS_PER_REGION + 1).map(|_| pool.get(16 * 1024).unwrap()).collect();
        assert_eq!(pool.region_count(), 2);
        for s in &stacks {
            assert!(s.bounds().size() >= 16 * 1024);
            assert_eq!(s.class(), 16 * 1024);
        }
        for s in stacks {
            pool.put(s, &owner);
        }
        assert_eq!(pool.free_count(), 2 * STACKS_PER_REGION);
    }

    #[test]
    fn trim_keeps_stacks_but_not_their_memory() {
        let mut pool = StackPool::new(Protection::Auto);
        let owner = Task::for_test(0, Some("test"));
        let stacks: Vec<_> = (0..WARM_STACKS + 3).map(|_| pool.get(4096).unwrap()).collect();
        for s in stacks {
            // Dirty the top word, as a coroutine would.
            // SAFETY: the word lies inside the usable part of a stack this
            // test owns.
            unsafe { ((s.bounds().base - 8) as *mut u64).write(7) };
            pool.put(s, &owner);
        }
        let regions = pool.region_count();
        let free = pool.free_count();
        pool.trim();
        assert_eq!(pool.free_count(), free, "trimming keeps every stack");
        assert_eq!(pool.class(4096).cold.len(), free - WARM_STACKS);
        let cold = pool.class(4096).cold[0].bounds();
        // SAFETY: the word lies inside the usable part of a free stack of
        // this pool, still mapped (DONTNEED drops contents, not the
        // mapping), and nothing runs on it.
        assert_eq!(unsafe { ((cold.base - 8) as *const u64).read() }, 0);
        let reused: Vec<_> = (0..WARM_STACKS + 3).map(|_| pool.get(4096).unwrap()).collect();
        assert_eq!(pool.region_count(), regions, "reuse maps nothing");
        for s in reused {
            pool.put(s, &owner);
        }
    }

    #[test]
    fn trim_releases_the_stacks_freed_longest_ago_and_keeps_the_latest_warm() {
        let mut pool = StackPool::new(Protection::Auto);
        let owner = Task::for_test(0, Some("test"));
        // Whole regions, so that every free stack is one this test freed.
        let extra = STACKS_PER_REGION;
        let stacks: Vec<_> = (0..WARM_STACKS + extra).map(|_| pool.get(4096).unwrap()).collect();
        assert_eq!(pool.free_count(), 0);
        let freed_in_order: Vec<usize> = stacks.iter().map(|s| s.bounds().base).collect();
        for s in stacks {
            // SAFETY: the word lies inside the usable part of a stack this
            // test owns, and nothing runs on it.
            unsafe { ((s.bounds().base - 8) as *mut u64).write(7) };
            pool.put(s, &owner);
        }
        pool.trim();

        let cold: Vec<usize> = pool.class(4096).cold.iter().map(|s| s.bounds().base).collect();
        assert_eq!(cold, freed_in_order[..extra], "the stacks freed first, and only they, are released");
        let warm: Vec<usize> = pool.class(4096).warm.iter().map(|s| s.bounds().base).collect();
        assert_eq!(warm, freed_in_order[extra..], "the rest stay warm, in the order they were freed");
        let oldest = freed_in_order[0];
        // SAFETY: the word lies inside the usable part of a free stack of
        // this pool, still mapped (DONTNEED drops contents, not the
        // mapping), and nothing runs on it.
        assert_eq!(unsafe { ((oldest - 8) as *const u64).read() }, 0, "a released stack lost its memory");
        let latest = *freed_in_order.last().unwrap();
        // SAFETY: the word lies inside the usable part of a free stack of
        // this pool, mapped read/write, and nothing runs on it.
        assert_eq!(unsafe { ((latest - 8) as *const u64).read() }, 7, "a warm stack keeps its memory");
        let next = pool.get(4096).unwrap();
        assert_eq!(next.bounds().base, latest, "the next spawn gets the stack freed last");
        pool.put(next, &owner);
    }

    #[test]
    fn reserved_stacks_are_kept_for_their_tasks() {
        let mut pool = StackPool::new(Protection::Auto);
        let owner = Task::for_test(0, Some("test"));
        let classes: Vec<usize> = (0..STACKS_PER_REGION).map(|_| pool.reserve(8192).unwrap()).collect();
        assert_eq!(pool.region_count(), 1);
        // Every free stack is promised, so a further reservation maps more.
        let extra = pool.reserve(8192).unwrap();
        assert_eq!(pool.region_count(), 2);
        // A task that runs and finishes gives its stack back for the next.
        let first = pool.take_reserved(classes[0]);
        let base = first.bounds().base;
        pool.put(first, &owner);
        let second = pool.take_reserved(classes[1]);
        assert_eq!(second.bounds().base, base, "the stack just released is reused, warm");
        pool.put(second, &owner);
        for class in classes[2..].iter().chain([&extra]) {
            let stack = pool.take_reserved(*class);
            pool.put(stack, &owner);
        }
        assert_eq!(pool.region_count(), 2, "no stack was mapped while taking reserved ones");
    }

    /// Held by the tests that fill the depot or need room in it: one at a
    /// time, and each leaves no pool of its own behind.
    static DEPOT_TESTS: Mutex<()> = Mutex::new(());

    /// Takes the canary pools (only these tests make them) out of the
    /// depot and unmaps them.
    fn clear_canary_pools() {
        let taken: Vec<StackPool> = {
            let mut depot = DEPOT.lock().unwrap_or_else(PoisonError::into_inner);
            depot.extract_if(.., |pool| pool.protection == Protection::Canary).collect()
        };
        drop(taken);
    }

    /// Whether a pool in the depot holds the stack whose base is `base`,
    /// free.
    fn depot_holds(base: usize) -> bool {
        let depot = DEPOT.lock().unwrap_or_else(PoisonError::into_inner);
        depot
            .iter()
            .flat_map(|pool| &pool.classes)
            .any(|class| class.warm.iter().chain(&class.cold).any(|stack| stack.bounds().base == base))
    }

    #[test]
    fn a_runtime_pool_goes_to_the_depot_with_its_free_stacks_and_the_next_runtime_gets_them() {
        let _one_at_a_time = DEPOT_TESTS.lock().unwrap_or_else(PoisonError::into_inner);
        clear_canary_pools();
        let owner = Task::for_test(0, Some("test"));
        let mut pool = StackPool::for_runtime(Protection::Canary);
        let stacks: Vec<_> = (0..STACKS_PER_REGION + 1).map(|_| pool.get(12 * 4096).unwrap()).collect();
        let bases: Vec<usize> = stacks.iter().map(|s| s.bounds().base).collect();
        for s in stacks {
            // SAFETY: the word lies inside the usable part of a stack this
            // test holds, and nothing runs on it.
            unsafe { ((s.bounds().base - 8) as *mut u64).write(7) };
            pool.put(s, &owner);
        }
        drop(pool);
        assert!(bases.iter().all(|&base| depot_holds(base)), "every stack of the pool went to the depot");
        assert!(mapped_read_write(bases[0] - 8), "a deposited stack stays mapped");
        // SAFETY: the stack is free in the depot, mapped read/write, and
        // nothing runs on it.
        assert_eq!(unsafe { ((bases[0] - 8) as *const u64).read() }, 7, "and keeps its memory (warm)");
        // A plain pool neither takes from the depot nor gives to it.
        let plain = StackPool::new(Protection::Auto);
        assert_eq!(plain.region_count(), 0);
        drop(plain);
        clear_canary_pools();
    }

    #[test]
    fn the_depot_keeps_whole_regions_up_to_its_limit_and_unmaps_the_rest() {
        let _one_at_a_time = DEPOT_TESTS.lock().unwrap_or_else(PoisonError::into_inner);
        clear_canary_pools();
        let owner = Task::for_test(0, Some("test"));
        let mut pool = StackPool::for_runtime(Protection::Canary);
        // A size no other test uses, so every stack of this class is ours.
        let size = 13 * 4096;
        let count = DEPOT_STACKS + 5 * STACKS_PER_REGION;
        let stacks: Vec<_> = (0..count).map(|_| pool.get(size).unwrap()).collect();
        let bases: Vec<usize> = stacks.iter().map(|s| s.bounds().base).collect();
        for s in stacks {
            pool.put(s, &owner);
        }
        drop(pool);
        // Only these tests make canary pools, one at a time, and no runtime
        // takes them: the depot's canary stacks are this pool's. (Whether
        // the rest is unmapped cannot be read from /proc/self/maps here:
        // other tests map memory at the freed addresses at once.)
        let held: std::collections::HashSet<usize> = {
            let depot = DEPOT.lock().unwrap_or_else(PoisonError::into_inner);
            depot
                .iter()
                .filter(|pool| pool.protection == Protection::Canary)
                .flat_map(|pool| &pool.classes)
                .flat_map(|class| class.warm.iter().chain(&class.cold))
                .map(|stack| stack.bounds().base)
                .collect()
        };
        let kept = bases.iter().filter(|base| held.contains(base)).count();
        assert!(kept > 0, "the depot had room, and kept nothing");
        assert!(kept <= DEPOT_STACKS, "the depot keeps at most {DEPOT_STACKS} stacks, kept {kept}");
        assert_eq!(kept % STACKS_PER_REGION, 0, "whole regions only");
        assert_eq!(held.len(), kept, "the depot holds no other canary stack");
        clear_canary_pools();
    }

    #[test]
    fn a_pool_that_leaked_a_stack_is_not_deposited() {
        let _one_at_a_time = DEPOT_TESTS.lock().unwrap_or_else(PoisonError::into_inner);
        clear_canary_pools();
        let owner = Task::for_test(0, Some("test"));
        let mut pool = StackPool::for_runtime(Protection::Canary);
        let leaked = pool.get(14 * 4096).unwrap();
        let other = pool.get(14 * 4096).unwrap();
        let base = other.bounds().base;
        pool.put(other, &owner);
        pool.leak(leaked);
        drop(pool);
        assert!(!depot_holds(base), "a stack of a pool that leaked one was deposited");
    }

    #[test]
    fn canary_stacks_start_intact() {
        let mut pool = StackPool::new(Protection::Canary);
        let owner = Task::for_test(0, Some("test"));
        let stack = pool.get(8 * 1024).unwrap();
        assert_eq!(stack.bounds().protection, Protection::Canary);
        assert!(stack.bounds().canary_top_intact());
        assert!(stack.bounds().canary_intact());
        pool.put(stack, &owner);
    }

    #[test]
    fn impossible_sizes_are_errors_that_leave_the_pool_as_it_was() {
        let mut pool = StackPool::new(Protection::Auto);
        for size in [usize::MAX, 1 << 60, crate::stack::MAX_STACK_SIZE + 1] {
            let err = pool.reserve(size).expect_err("too large");
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
        assert_eq!(pool.region_count(), 0);
        assert_eq!(pool.free_count(), 0);
    }

    /// The read/write mappings of `/proc/self/maps`.
    fn read_write_ranges() -> Vec<std::ops::Range<usize>> {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("read /proc/self/maps");
        maps.lines()
            .filter_map(|line| {
                let mut fields = line.split_whitespace();
                let (range, perms) = (fields.next()?, fields.next()?);
                let (start, end) = range.split_once('-')?;
                let start = usize::from_str_radix(start, 16).ok()?;
                let end = usize::from_str_radix(end, 16).ok()?;
                perms.starts_with("rw").then_some(start..end)
            })
            .collect()
    }

    /// Whether `/proc/self/maps` shows `address` inside a read/write
    /// mapping.
    fn mapped_read_write(address: usize) -> bool {
        read_write_ranges().iter().any(|range| range.contains(&address))
    }

    #[test]
    fn a_leaked_stack_is_never_reused_nor_unmapped() {
        let mut pool = StackPool::new(Protection::Auto);
        let owner = Task::for_test(0, Some("test"));
        let leaked = pool.get(8192).unwrap();
        let bounds = leaked.bounds();
        let top = (bounds.base - 8) as *mut u64;
        // SAFETY: the word lies inside the usable part of a stack this test
        // holds, and nothing runs on it.
        unsafe { top.write_volatile(0x5EED) };
        pool.leak(leaked);
        // The other stacks of the pool are handed out, never the leaked one.
        let others: Vec<_> = (0..2 * STACKS_PER_REGION).map(|_| pool.get(8192).unwrap()).collect();
        assert!(others.iter().all(|s| s.bounds() != bounds), "a leaked stack was handed out again");
        for s in others {
            pool.put(s, &owner);
        }
        drop(pool);
        assert!(mapped_read_write(bounds.base - 8), "the leaked stack was unmapped with its pool");
        // SAFETY: the stack was leaked, so its region is mapped read/write
        // for the rest of the process, and nothing else uses the stack.
        assert_eq!(unsafe { top.read_volatile() }, 0x5EED, "the leaked stack kept its contents");
        // SAFETY: the leaked stack's region stays mapped read/write for the
        // rest of the process, and nothing else uses the stack.
        unsafe { top.write_volatile(1) };
    }
}
