//! The stack pool: stacks of finished coroutines wait here for the next
//! spawn, so that steady-state spawning maps and unmaps nothing.

use std::io;

use super::region::Region;
use super::{Protection, Stack, overflow, page_size};

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

/// The stacks of one runtime. Owned by the scheduler; dropped after every
/// coroutine.
#[derive(Debug)]
pub(crate) struct StackPool {
    /// Free stacks by usable size (a multiple of the page size). Programs
    /// use one or two sizes, so a short list beats a hash map.
    classes: Vec<SizeClass>,
    /// Every region this pool has mapped; unmapped when the pool drops.
    regions: Vec<Region>,
    /// How guard pages are protected (see [`Protection`]).
    protection: Protection,
}

impl StackPool {
    /// An empty pool that will protect stacks as `protection` says.
    pub(crate) fn new(protection: Protection) -> Self {
        StackPool { classes: Vec::new(), regions: Vec::new(), protection }
    }

    /// Rounds a requested size up to what the pool hands out.
    pub(crate) fn round_size(size: usize) -> usize {
        let page = page_size();
        size.max(page).div_ceil(page) * page
    }

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
    /// [`StackPool::take_reserved`] or [`StackPool::unreserve`].
    pub(crate) fn reserve(&mut self, size: usize) -> io::Result<usize> {
        let size = Self::round_size(size);
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

    /// Gives up a promise made by [`StackPool::reserve`] (the task ended
    /// before it started).
    pub(crate) fn unreserve(&mut self, class: usize) {
        self.class(class).reserved -= 1;
    }

    /// A stack with at least `size` usable bytes, now.
    pub(crate) fn get(&mut self, size: usize) -> io::Result<Stack> {
        let class = self.reserve(size)?;
        Ok(self.take_reserved(class))
    }

    /// Takes back the stack of a finished coroutine.
    ///
    /// A canary stack whose canary page is no longer zero was overflowed:
    /// the process aborts with a report naming `owner`.
    pub(crate) fn put(&mut self, stack: Stack, owner: &overflow::Owner) {
        if !stack.bounds().canary_intact() {
            overflow::report_canary(owner, &stack.bounds());
        }
        self.class(stack.class()).warm.push(stack);
    }

    /// Returns the memory of free stacks beyond [`WARM_STACKS`] per size to
    /// the kernel. Called when the runtime is about to sleep, so the
    /// syscalls never delay a ready coroutine.
    pub(crate) fn trim(&mut self) {
        for class in &mut self.classes {
            while class.warm.len() > WARM_STACKS {
                let Some(stack) = class.warm.pop() else { break };
                let bounds = stack.bounds();
                // SAFETY: the usable part of the stack lies inside a region
                // this pool owns and no coroutine runs on it; DONTNEED on a
                // private anonymous mapping only drops its contents.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::region::STACKS_PER_REGION;

    #[test]
    fn recycles_without_mapping_again() {
        let mut pool = StackPool::new(Protection::Auto);
        let owner = overflow::Owner::for_test();
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
        let owner = overflow::Owner::for_test();
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
        let owner = overflow::Owner::for_test();
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
        // SAFETY: as above; DONTNEED made the page read back as zero.
        assert_eq!(unsafe { ((cold.base - 8) as *const u64).read() }, 0);
        let reused: Vec<_> = (0..WARM_STACKS + 3).map(|_| pool.get(4096).unwrap()).collect();
        assert_eq!(pool.region_count(), regions, "reuse maps nothing");
        for s in reused {
            pool.put(s, &owner);
        }
    }

    #[test]
    fn reserved_stacks_are_kept_for_their_tasks() {
        let mut pool = StackPool::new(Protection::Auto);
        let owner = overflow::Owner::for_test();
        let classes: Vec<usize> = (0..STACKS_PER_REGION).map(|_| pool.reserve(8192).unwrap()).collect();
        assert_eq!(pool.region_count(), 1);
        // Every free stack is promised, so a further reservation maps more.
        let extra = pool.reserve(8192).unwrap();
        assert_eq!(pool.region_count(), 2);
        pool.unreserve(extra);
        // A task that runs and finishes gives its stack back for the next.
        let first = pool.take_reserved(classes[0]);
        let base = first.bounds().base;
        pool.put(first, &owner);
        let second = pool.take_reserved(classes[1]);
        assert_eq!(second.bounds().base, base, "the stack just released is reused, warm");
        pool.put(second, &owner);
        for class in &classes[2..] {
            pool.unreserve(*class);
        }
        assert_eq!(pool.region_count(), 2, "no stack was mapped while taking reserved ones");
    }

    #[test]
    fn canary_stacks_start_intact() {
        let mut pool = StackPool::new(Protection::Canary);
        let owner = overflow::Owner::for_test();
        let stack = pool.get(8 * 1024).unwrap();
        assert_eq!(stack.bounds().protection, Protection::Canary);
        assert!(stack.bounds().canary_top_intact());
        assert!(stack.bounds().canary_intact());
        pool.put(stack, &owner);
    }
}
