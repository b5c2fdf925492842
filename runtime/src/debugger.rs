//! What a debugger reads to list the coroutines of a stopped process or a
//! core dump, without running any of its code: `runtime/green-gdb.py`
//! (`green tasks`, `green bt ID`) reads these records and nothing else of
//! the runtime's.
//!
//! A release build carries line tables but no type information
//! (`debug = 1`), so the debugger cannot find its way through Rust types
//! (a `RefCell`, a `Slab`, an `Rc`). Instead every record here is
//! `repr(C)` plain data, at addresses the runtime writes as numbers:
//!
//! ```text
//! GREEN_DEBUG_ROOT (a symbol of the executable)
//! ┌───────────────────────────────┐
//! │ magic, version, offsets       │       a worker (boxed, one per runtime thread)
//! │ workers[0..MAX_WORKERS] ──────┼─────▶ ┌──────────────────────────────┐
//! └───────────────────────────────┘       │ magic, runtime, worker, tid  │
//!                                         │ table, table_len ────────────┼──▶ [addr | 0, addr | 0, …]
//!                                         └──────────────────────────────┘        │ by registry key
//!                                                                                 ▼
//!                                               a task's `DebugTask`, inside its `TaskCell`:
//!                                               id, name, stack limit and base; the state
//!                                               byte and the coroutine cell at offsets the
//!                                               root gives
//! ```
//!
//! A worker's table has a slot per key of its task registry: the address
//! of the task's [`DebugTask`] while the task is registered, 0 otherwise.
//! The runtime never reads an address back: it only writes numbers, so the
//! registry needs no `unsafe`, and a debugger that stops the process in
//! the middle of an update sees at worst one stale slot.
//!
//! What the debugger does with a suspended coroutine's record: the
//! coroutine object (`corosensei::Coroutine`, in the task's coroutine cell)
//! holds the stack pointer its last switch saved, which is the one word of the cell
//! strictly inside the stack other than the initial stack pointer, and the
//! lower of the two; at that address the switch left the resume address, then `rbx`,
//! then `rbp` (x86-64). From those the debugger unwinds the coroutine with
//! the program's own unwind tables (the script's documentation has the
//! details).

use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

/// Identifies the root and the worker records to the debugger: "GREENDBG".
pub const MAGIC: u64 = u64::from_le_bytes(*b"GREENDBG");

/// The layout's version; the script refuses others.
pub const VERSION: u64 = 2;

/// Workers listed at once; those beyond are not seen by the debugger.
pub const MAX_WORKERS: usize = 256;

/// The root the debugger looks up by name.
#[repr(C)]
pub struct Root {
    /// [`MAGIC`].
    magic: u64,
    /// [`VERSION`].
    version: u64,
    /// The size of a task's coroutine cell (a `RefCell<Option<Coroutine>>`),
    /// in bytes: how much of it the debugger reads to find the saved stack
    /// pointer. Set, with the two offsets, when the first worker starts.
    coroutine_size: AtomicU64,
    /// Where a task's state byte lies, from its [`DebugTask`], in bytes.
    state_offset: AtomicI64,
    /// Where a task's coroutine cell lies, from its [`DebugTask`].
    coroutine_offset: AtomicI64,
    /// The addresses of the worker records, 0 for a free slot.
    workers: [AtomicUsize; MAX_WORKERS],
}

/// The root of the registry. `no_mangle` gives it a fixed name in the
/// executable's symbol table, `used` keeps it when nothing in the program
/// reads it.
// SAFETY: no other symbol of the program is named `GREEN_DEBUG_ROOT`; the
// name is the runtime's own, prefixed with it.
#[unsafe(no_mangle)]
#[used]
pub static GREEN_DEBUG_ROOT: Root = Root {
    magic: MAGIC,
    version: VERSION,
    coroutine_size: AtomicU64::new(0),
    state_offset: AtomicI64::new(0),
    coroutine_offset: AtomicI64::new(0),
    workers: [const { AtomicUsize::new(0) }; MAX_WORKERS],
};

/// Where the rest of a task's record lies from its [`DebugTask`]: the
/// task record (`task/cell.rs`) is `repr(C)`, so these are constants of
/// the program, which the record's module computes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    /// The state byte's offset.
    pub(crate) state: isize,
    /// The coroutine cell's offset.
    pub(crate) coroutine: isize,
    /// The coroutine cell's size.
    pub(crate) coroutine_size: usize,
}

/// One task, as the debugger reads it. Lives inside the task's record, so
/// its address is fixed for the task's life, and the record's state byte
/// and coroutine cell are at fixed offsets from it ([`Layout`]).
#[repr(C)]
#[derive(Debug, Default)]
pub(crate) struct DebugTask {
    /// The task's id.
    id: Cell<u64>,
    /// The address and length of its name (UTF-8), 0 if unnamed; the
    /// name is kept alive by the task's identity.
    name: Cell<usize>,
    name_len: Cell<usize>,
    /// Its stack: lowest usable address and highest (exclusive); 0 before
    /// it starts and while the runtime tears it down.
    stack_limit: Cell<usize>,
    stack_base: Cell<usize>,
}

impl DebugTask {
    /// Fills in who the task is, as it is registered.
    pub(crate) fn register(&self, id: u64, name: Option<&str>) {
        let (name, name_len) = name.map_or((0, 0), |n| (n.as_ptr().addr(), n.len()));
        self.id.set(id);
        self.name.set(name);
        self.name_len.set(name_len);
    }

    /// The task's coroutine now runs on the stack from `limit` to `base`
    /// (both 0: it has none the debugger should read).
    pub(crate) fn set_stack(&self, limit: usize, base: usize) {
        self.stack_limit.set(limit);
        self.stack_base.set(base);
    }
}

/// One worker's record, as the debugger reads it.
#[repr(C)]
#[derive(Debug)]
struct WorkerRecord {
    /// [`MAGIC`].
    magic: u64,
    /// The identity of its runtime (shared by its workers).
    runtime: u64,
    /// Its index in its runtime.
    worker: u64,
    /// The kernel's id of its thread (`gettid`), 0 until it runs.
    tid: Cell<u64>,
    /// The address and length of its table of tasks (see the module
    /// documentation).
    table: Cell<usize>,
    table_len: Cell<usize>,
}

/// A worker's part of the registry: its record, listed in the root, and
/// its table of tasks. Leaves the root when dropped.
#[derive(Debug)]
pub(crate) struct DebugWorker {
    /// Boxed: its address is in the root.
    record: Box<WorkerRecord>,
    /// Where the record is listed in the root, if a slot was free.
    slot: Option<usize>,
    /// The table the record points to.
    table: RefCell<Vec<usize>>,
}

impl DebugWorker {
    /// Lists a worker of `runtime`, its `worker`th, whose task records are
    /// laid out as `layout` says.
    pub(crate) fn new(runtime: u64, worker: usize, layout: Layout) -> DebugWorker {
        // The same numbers for every worker of the program.
        GREEN_DEBUG_ROOT.coroutine_size.store(layout.coroutine_size as u64, Ordering::Relaxed);
        GREEN_DEBUG_ROOT.state_offset.store(layout.state as i64, Ordering::Relaxed);
        GREEN_DEBUG_ROOT.coroutine_offset.store(layout.coroutine as i64, Ordering::Relaxed);
        let record = Box::new(WorkerRecord {
            magic: MAGIC,
            runtime,
            worker: worker as u64,
            tid: Cell::new(0),
            table: Cell::new(0),
            table_len: Cell::new(0),
        });
        let address = std::ptr::from_ref::<WorkerRecord>(&record).addr();
        let slot = GREEN_DEBUG_ROOT
            .workers
            .iter()
            .position(|slot| slot.compare_exchange(0, address, Ordering::AcqRel, Ordering::Relaxed).is_ok());
        DebugWorker { record, slot, table: RefCell::new(Vec::new()) }
    }

    /// Records the calling thread as the worker's.
    pub(crate) fn set_thread(&self) {
        // SAFETY: `gettid` has no preconditions and cannot fail.
        let tid = unsafe { libc::gettid() };
        self.record.tid.set(u64::try_from(tid).unwrap_or(0));
    }

    /// Lists `task` under its registry `key`.
    pub(crate) fn insert(&self, key: usize, task: &DebugTask) {
        let mut table = self.table.borrow_mut();
        if key >= table.len() {
            let grown = (key + 1).max(table.len() * 2);
            table.resize(grown, 0);
            self.record.table.set(table.as_ptr().addr());
            self.record.table_len.set(table.len());
        }
        table[key] = std::ptr::from_ref(task).addr();
    }

    /// Takes the task under `key` off the list.
    pub(crate) fn remove(&self, key: usize) {
        if let Some(slot) = self.table.borrow_mut().get_mut(key) {
            *slot = 0;
        }
    }

    /// Takes every task off the list.
    pub(crate) fn clear(&self) {
        self.table.borrow_mut().fill(0);
    }
}

impl Drop for DebugWorker {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            GREEN_DEBUG_ROOT.workers[slot].store(0, Ordering::Release);
        }
    }
}
