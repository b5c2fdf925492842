//! [`Protection`]: how the page below a coroutine stack catches an
//! overflow. Plain data, chosen per runtime; `region.rs` carries it out.

/// How the page below a coroutine stack catches an overflow.
///
/// Chosen per runtime with [`Builder::stack_protection`]. `DESIGN.md`
/// ("Stacks and `vm.max_map_count`") explains the trade-off.
///
/// [`Builder::stack_protection`]: crate::Builder::stack_protection
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// The default: a real guard below every stack, by the cheapest means
    /// the kernel offers. `GuardRegion` where the kernel supports it (Linux
    /// 6.13+), otherwise `GuardPage`. When guard pages would take more than
    /// a quarter of `vm.max_map_count` (half of the mappings: each costs
    /// two), spawning fails with an error that names the `sysctl` command
    /// raising it: a stack is never left unguarded.
    Auto,
    /// A kernel guard region (`madvise(MADV_GUARD_INSTALL)`): faults on any
    /// access and costs no extra mapping. Spawning fails with an error where
    /// the kernel cannot install one (Linux before 6.13, locked memory); it
    /// is never replaced by another protection.
    GuardRegion,
    /// An `mprotect(PROT_NONE)` guard page: faults on any access, costs two
    /// mappings per stack. Spawning fails with an error naming
    /// `vm.max_map_count` once guard pages would number more than a quarter
    /// of it (half of the mappings).
    GuardPage,
    /// No guard: a zeroed page below each stack, checked on every switch and
    /// scanned when the stack is recycled. It detects some overflows after
    /// the fact and costs nothing, but an overflowing frame can write
    /// through it into the stack below (another coroutine's) before any
    /// check runs, and a frame that only probes the stack leaves it zero.
    ///
    /// So it is accepted only by the unsafe
    /// [`Builder::stack_protection_unchecked`], whose caller promises that
    /// no coroutine overflows; [`Builder::stack_protection`] panics when
    /// given it.
    ///
    /// [`Builder::stack_protection_unchecked`]: crate::Builder::stack_protection_unchecked
    /// [`Builder::stack_protection`]: crate::Builder::stack_protection
    Canary,
}
