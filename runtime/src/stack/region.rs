//! Regions: large mappings that stacks are carved from, and the choice of
//! how each stack's guard page is protected.

use std::io;
use std::ptr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use super::{Stack, StackBounds, page_size};

/// How the page below a coroutine stack catches an overflow.
///
/// Chosen by the runtime per stack under [`Protection::Auto`]; the others
/// force one mechanism, mainly so that each can be tested on any kernel.
/// `DESIGN.md` ("Stacks and `vm.max_map_count`") explains the trade-off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// The strongest protection that scales on this kernel: `GuardRegion`
    /// where the kernel supports it (Linux 6.13+), otherwise `GuardPage`
    /// while at most half of `vm.max_map_count` is spent on guard pages, then
    /// `Canary`.
    Auto,
    /// A kernel guard region (`madvise(MADV_GUARD_INSTALL)`): faults on any
    /// access and costs no extra mapping. Spawning fails with an error on
    /// kernels that lack it.
    GuardRegion,
    /// An `mprotect(PROT_NONE)` guard page: faults on any access, costs two
    /// mappings per stack. Spawning fails with an error naming
    /// `vm.max_map_count` once half of it would be spent on guard pages.
    GuardPage,
    /// A zeroed page checked on every switch and scanned when the stack is
    /// recycled: detects an overflow after the fact, costs nothing.
    Canary,
}

/// `madvise` advice that installs a guard region (Linux 6.13+; not yet in
/// every libc crate release).
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Whether the kernel supports guard regions: 0 = not probed, 1 = yes, 2 = no.
static GUARD_REGIONS: AtomicU8 = AtomicU8::new(0);

/// Guard pages made with `mprotect` across the whole process; each costs one
/// extra mapping, and `vm.max_map_count` is a per-process limit.
static GUARD_PAGES_IN_USE: AtomicUsize = AtomicUsize::new(0);

/// Stacks carved from one region.
pub(crate) const STACKS_PER_REGION: usize = 16;

/// One anonymous mapping holding [`STACKS_PER_REGION`] stacks, each with
/// its guard page below it. Unmapped on drop.
#[derive(Debug)]
pub(crate) struct Region {
    /// Start of the mapping.
    start: usize,
    /// Length of the mapping in bytes.
    len: usize,
    /// Guard pages of this region protected with `mprotect`, returned to
    /// [`GUARD_PAGES_IN_USE`] on drop.
    guard_pages: usize,
}

impl Region {
    /// Maps a region for stacks of `stack_size` usable bytes (rounded up to
    /// whole pages) and pushes its stacks onto `out`.
    pub(crate) fn allocate(
        stack_size: usize,
        wanted: Protection,
        out: &mut Vec<Stack>,
    ) -> io::Result<Region> {
        let page = page_size();
        let usable = stack_size.max(page).div_ceil(page) * page;
        // One page more than asked: room to shift each stack's top by a
        // different cache colour (see `colour`) without taking from the
        // usable size.
        let slot = page + usable + page;
        let len = slot * STACKS_PER_REGION;
        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing aliases nothing.
        let start = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
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
                    "green: cannot map {len} bytes for {STACKS_PER_REGION} coroutine stacks of \
                     {usable} bytes: {err}; lower the stack size (Builder::stack_size) or raise \
                     the address-space limit (ulimit -v)"
                ),
            ));
        }
        let mut region = Region { start: start as usize, len, guard_pages: 0 };
        let first = out.len();
        let numbered = next_stack_number();
        for i in 0..STACKS_PER_REGION {
            let guard_start = region.start + i * slot;
            let protection = region.protect(guard_start, page, wanted)?;
            let base = guard_start + slot - colour(numbered + i, page);
            let bounds =
                StackBounds { base, limit: guard_start + page, guard_start, protection, class: usable };
            out.push(Stack { bounds });
        }
        // Hand stacks out lowest address first: pop() takes from the end.
        out[first..].reverse();
        Ok(region)
    }

    /// Protects the guard page at `guard_start` as `wanted` asks, falling
    /// back as [`Protection::Auto`] describes.
    fn protect(&mut self, guard_start: usize, page: usize, wanted: Protection) -> io::Result<Protection> {
        let try_region = matches!(wanted, Protection::Auto | Protection::GuardRegion);
        if try_region && guard_regions_supported(guard_start, page) {
            if install_guard_region(guard_start, page).is_ok() {
                return Ok(Protection::GuardRegion);
            }
        } else if wanted == Protection::GuardRegion {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "green: Protection::GuardRegion needs madvise(MADV_GUARD_INSTALL), which this \
                 kernel lacks (Linux 6.13 or newer has it); use Protection::Auto",
            ));
        }
        if matches!(wanted, Protection::Auto | Protection::GuardPage) {
            let budget = guard_page_budget();
            let reserved = GUARD_PAGES_IN_USE.fetch_add(1, Ordering::Relaxed);
            if reserved < budget {
                // SAFETY: the page lies inside the mapping this region owns
                // and no stack has been handed out from it yet.
                let rc = unsafe { libc::mprotect(guard_start as *mut libc::c_void, page, libc::PROT_NONE) };
                if rc == 0 {
                    self.guard_pages += 1;
                    return Ok(Protection::GuardPage);
                }
            }
            GUARD_PAGES_IN_USE.fetch_sub(1, Ordering::Relaxed);
            if wanted == Protection::GuardPage {
                return Err(io::Error::other(format!(
                    "green: cannot add another guard page: {reserved} stacks already use one and \
                     vm.max_map_count ({}) allows about {budget} while leaving half of the \
                     mappings to the rest of the process; raise it (sysctl -w \
                     vm.max_map_count=N) or use Protection::Auto",
                    max_map_count()
                )));
            }
        }
        Ok(Protection::Canary)
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        GUARD_PAGES_IN_USE.fetch_sub(self.guard_pages, Ordering::Relaxed);
        // SAFETY: the mapping was created by `allocate`, is unmapped only
        // here, and every stack carved from it has been dropped by the
        // runtime before its pool (and so this region) is dropped.
        unsafe { libc::munmap(self.start as *mut libc::c_void, self.len) };
    }
}

/// How far below the top of its slot stack `n` (counted across the
/// process) starts: a different multiple of the cache line for consecutive
/// stacks.
///
/// Without it every stack top has the same offset within its page, so the
/// hot frames of all coroutines compete for the same few sets of the
/// (set-associative) L1 and L2 caches, and switching round 200 coroutines
/// misses on nearly every switch. Spreading the tops over 32 line offsets
/// (half a page) removes that aliasing (about 30% off a round of switches
/// on the development machine) while keeping the top frames of most
/// sleeping coroutines within one page.
fn colour(n: usize, page: usize) -> usize {
    const LINE: usize = 64;
    let colours = (page / 2 / LINE).max(1);
    // 37 is odd, and the number of colours a power of two, so consecutive
    // stacks get distinct offsets until all are used, in a scattered order.
    (n.wrapping_mul(37) % colours) * LINE
}

/// The number of the first stack of the next region, for [`colour`].
fn next_stack_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(STACKS_PER_REGION, Ordering::Relaxed)
}

/// Probes once per process whether `madvise(MADV_GUARD_INSTALL)` works, on
/// the first guard page that needs it.
fn guard_regions_supported(guard_start: usize, page: usize) -> bool {
    match GUARD_REGIONS.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let ok = install_guard_region(guard_start, page).is_ok();
            GUARD_REGIONS.store(if ok { 1 } else { 2 }, Ordering::Relaxed);
            ok
        }
    }
}

fn install_guard_region(guard_start: usize, page: usize) -> io::Result<()> {
    // SAFETY: the page lies inside a mapping owned by the calling region;
    // installing a guard only makes accesses to it fault.
    let rc = unsafe { libc::madvise(guard_start as *mut libc::c_void, page, MADV_GUARD_INSTALL) };
    if rc == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
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

/// Guard pages the process may create with `mprotect`: each splits its
/// region, costing two mappings, and half of `vm.max_map_count` is left to
/// everything else in the process.
fn guard_page_budget() -> usize {
    max_map_count() / 4
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
