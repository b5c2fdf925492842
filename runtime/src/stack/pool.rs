//! The stack pool: stacks of finished coroutines wait here for the next
//! spawn, so that steady-state spawning maps and unmaps nothing.

use std::collections::HashMap;
use std::io;

use super::region::Region;
use super::{Protection, Stack, overflow, page_size};

/// Free stacks kept warm (memory left in place) per size; stacks released
/// beyond this have their memory returned to the kernel with
/// `MADV_DONTNEED` but keep their address range, so reusing them costs page
/// faults, not mappings.
const WARM_STACKS: usize = 1024;

/// The stacks of one runtime. Owned by the scheduler; dropped after every
/// coroutine.
#[derive(Debug)]
pub(crate) struct StackPool {
    /// Free stacks by usable size (a multiple of the page size), most
    /// recently released last.
    free: HashMap<usize, Vec<Stack>>,
    /// Every region this pool has mapped; unmapped when the pool drops.
    regions: Vec<Region>,
    /// How guard pages are protected (see [`Protection`]).
    protection: Protection,
}

impl StackPool {
    /// An empty pool that will protect stacks as `protection` says.
    pub(crate) fn new(protection: Protection) -> Self {
        StackPool { free: HashMap::new(), regions: Vec::new(), protection }
    }

    /// Rounds a requested size up to what the pool hands out.
    pub(crate) fn round_size(size: usize) -> usize {
        let page = page_size();
        size.max(page).div_ceil(page) * page
    }

    /// A stack with at least `size` usable bytes: a recycled one if any is
    /// free, else one from a freshly mapped region.
    pub(crate) fn get(&mut self, size: usize) -> io::Result<Stack> {
        let size = Self::round_size(size);
        let free = self.free.entry(size).or_default();
        if let Some(stack) = free.pop() {
            return Ok(stack);
        }
        let region = Region::allocate(size, self.protection, free)?;
        self.regions.push(region);
        Ok(free.pop().expect("a new region holds at least one stack"))
    }

    /// Takes back the stack of a finished coroutine.
    ///
    /// A canary stack whose canary page is no longer zero was overflowed:
    /// the process aborts with a report naming `owner`.
    pub(crate) fn put(&mut self, stack: Stack, owner: &overflow::Owner) {
        if !stack.bounds().canary_intact() {
            overflow::report_canary(owner, &stack.bounds());
        }
        let free = self.free.entry(stack.size()).or_default();
        if free.len() >= WARM_STACKS {
            // SAFETY: the usable part of the stack lies inside a region this
            // pool owns and no coroutine runs on it any more; DONTNEED on a
            // private anonymous mapping only drops its contents.
            unsafe {
                libc::madvise(stack.bounds().limit as *mut libc::c_void, stack.size(), libc::MADV_DONTNEED)
            };
        }
        free.push(stack);
    }

    /// Stacks currently free, all sizes together.
    #[cfg(test)]
    pub(crate) fn free_count(&self) -> usize {
        self.free.values().map(Vec::len).sum()
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
            assert!(s.size() >= 16 * 1024);
        }
        for s in stacks {
            pool.put(s, &owner);
        }
        assert_eq!(pool.free_count(), 2 * STACKS_PER_REGION);
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
