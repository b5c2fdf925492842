//! The runtime's context: the state of one runtime that every layer above
//! it reaches through this thread's pointer to it, [`Context::with`].
//!
//! The context holds what coroutines and primitives touch: the run queue,
//! the registry of live tasks, the running task, timers, the reactor, the
//! inbox, the stack pool. It does no scheduling itself: the rules that
//! park and wake tasks are in `park.rs`, and the loop that runs them is in
//! `scheduler.rs`, which owns the context and installs it for as long as
//! the runtime runs.
//!
//! Everything here is `!Send` (`Cell`, `RefCell`, `Rc`): a context is only
//! ever used on the thread that made it, and so are its tasks. Other
//! threads reach a runtime through its inbox only.

use std::cell::{Cell, RefCell};
use std::io;
use std::ptr::{self, NonNull};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Instant;

use slab::Slab;

use crate::board::Board;
use crate::debugger::DebugWorker;
use crate::inbox::Inbox;
use crate::metrics::Recorder;
use crate::reactor::Reactor;
use crate::run_queue::RunQueue;
use crate::stack::{Protection, StackBounds, StackPool};
use crate::sync::wait::core::Spares;
use crate::task::cell::{DEBUG_LAYOUT, TaskCell, Waker};
use crate::task::coroutine::{self, TaskYielder};
use crate::timer::Timers;

thread_local! {
    /// The context of the runtime running on this thread, or null. Set by
    /// the scheduler for the whole of `run`.
    static CURRENT: Cell<*const Context> = const { Cell::new(ptr::null()) };
}

/// Settings a runtime was built with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Stack size of tasks that do not ask for one.
    pub(crate) stack_size: usize,
    /// How stack guard pages are protected.
    pub(crate) protection: Protection,
    /// Before it sleeps in `epoll_wait`, the loop watches its inbox this
    /// long for a wake-up from another thread (zero: not at all). A worker
    /// of a runtime of several gets a short spin: a hand-off to a worker
    /// about to sleep then costs no thread wake-up.
    pub(crate) spin_before_sleep: std::time::Duration,
    /// For a worker of a runtime of several: the runtime's stall board and
    /// the worker's index on it (`board.rs`).
    pub(crate) board: Option<(Arc<Board>, usize)>,
    /// How long a coroutine may hold the thread before the stall watchdog
    /// reports it; `None`: not watched (`watchdog.rs`).
    pub(crate) stall_threshold: Option<std::time::Duration>,
    /// One wake-up in this many is timed for the scheduling-delay
    /// histogram, on average; 0: none (`metrics/counters.rs`).
    pub(crate) delay_sample_every: u32,
}

/// A new runtime identity, never 0 and never given out twice: a runtime's
/// id, or the identity the workers of a runtime of several share.
pub(crate) fn fresh_id() -> u64 {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// One runtime's state. See the module documentation.
pub(crate) struct Context {
    /// This runtime's identity: every wake-up compares it.
    id: u64,
    /// What its coroutines record on the primitives they use (see
    /// [`Context::home`]); kept here too, next to `id`, for the waits that
    /// read it.
    home: u64,
    /// Tasks ready to run, oldest first. A task is here at most once.
    pub(crate) run_queue: RunQueue<Rc<TaskCell>>,
    /// Every task spawned and not yet finished: for wake-ups by address
    /// (`ParkRef`), the deadlock check and the teardown.
    pub(crate) tasks: RefCell<Slab<Rc<TaskCell>>>,
    /// The task being executed, if any: points to the `Rc` that the
    /// scheduler holds in its frame for as long as the task runs, and is
    /// null otherwise. Read through [`Context::with_current`].
    pub(crate) current: Cell<*const Rc<TaskCell>>,
    /// Deadlines of parked tasks.
    pub(crate) timers: RefCell<Timers<Waker>>,
    /// The epoll event loop.
    pub(crate) reactor: Reactor<Waker>,
    /// Wake-ups posted by other threads.
    inbox: Arc<Inbox>,
    /// The time at the last turn of the loop that looked at the clock, or
    /// the last poll: when tasks parked, roughly, for the deadlock report
    /// and the task dump.
    pub(crate) clock: Cell<Instant>,
    /// Stacks of finished tasks, for reuse.
    pub(crate) stacks: RefCell<StackPool>,
    /// Defaults for spawned tasks.
    pub(crate) config: Config,
    /// Set once the main task has finished: the remaining tasks are being
    /// torn down (see `task/teardown.rs`).
    pub(crate) shutting_down: Cell<bool>,
    /// I/O operations left before the coroutine that completes the next
    /// one without waiting yields (see `net/io.rs`, "The I/O budget").
    pub(crate) io_budget: Cell<u32>,
    /// Coroutines of this runtime waiting for a result of the blocking
    /// pool: the loop spins a little before it sleeps while there are any
    /// (`Scheduler::spin_for_posts`).
    pub(crate) pool_waits: Cell<u32>,
    /// Cores of shared waiters kept for the next waits of this runtime's
    /// coroutines (see `sync/wait/waiter.rs`).
    pub(crate) waiter_spares: Spares,
    /// This worker's counters for `green::metrics`, and the sampler that
    /// times wake-ups (`metrics/counters.rs`).
    pub(crate) metrics: Recorder,
    /// Tasks whose `panicking` flag is set: every one but the running
    /// task is suspended in the middle of an unwind, and while there are
    /// any, `std::thread::panicking` is true for every coroutine of the
    /// thread (see [`Context::panicking`]).
    panicking_tasks: Cell<usize>,
    /// This worker's part of what debuggers read (`debugger.rs`).
    pub(crate) debug: DebugWorker,
}

impl Context {
    /// A new runtime's context, with its own epoll instance.
    ///
    /// # Errors
    ///
    /// The error of creating the epoll instance.
    pub(crate) fn new(config: Config) -> io::Result<Context> {
        let id = fresh_id();
        let reactor = Reactor::new(id)?;
        let home = config.board.as_ref().map_or(id, |(board, _)| board.home());
        let inbox = Arc::new(Inbox::new(reactor.poller().clone(), id, home));
        if let Some((board, worker)) = &config.board {
            board.join(*worker, inbox.clone());
        }
        let metrics = Recorder::new(config.delay_sample_every);
        let worker = config.board.as_ref().map_or(0, |(_, worker)| *worker);
        let debug = DebugWorker::new(home, worker, DEBUG_LAYOUT);
        Ok(Context {
            id,
            home,
            run_queue: RunQueue::default(),
            tasks: RefCell::new(Slab::new()),
            current: Cell::new(ptr::null()),
            timers: RefCell::new(Timers::default()),
            reactor,
            inbox,
            clock: Cell::new(Instant::now()),
            stacks: RefCell::new(StackPool::for_runtime(config.protection)),
            config,
            shutting_down: Cell::new(false),
            io_budget: Cell::new(crate::net::IO_BUDGET),
            pool_waits: Cell::new(0),
            waiter_spares: Spares::default(),
            metrics,
            panicking_tasks: Cell::new(0),
            debug,
        })
    }

    /// Whether a runtime runs on this thread already.
    pub(crate) fn is_installed() -> bool {
        !CURRENT.get().is_null()
    }

    /// Makes `self` the context [`Context::with`] finds on this thread.
    ///
    /// # Safety
    ///
    /// `self` must stay alive at this address until [`Context::uninstall`]
    /// is called on this thread.
    pub(crate) unsafe fn install(&self) {
        CURRENT.set(self);
        self.debug.set_thread();
    }

    /// Ends [`Context::install`]: no context runs on this thread any more.
    pub(crate) fn uninstall() {
        CURRENT.set(ptr::null());
    }

    /// Calls `f` with the context of the runtime running on this thread,
    /// if one is.
    #[inline]
    pub(crate) fn with<R>(f: impl FnOnce(&Context) -> R) -> Option<R> {
        let current = CURRENT.get();
        if current.is_null() {
            return None;
        }
        // SAFETY: `install`'s caller keeps the context alive at this address
        // until `uninstall` clears the pointer, and the pointer is not null.
        Some(f(unsafe { &*current }))
    }

    /// The running task. Panics if called from the scheduler loop itself.
    #[inline]
    pub(crate) fn current_task(&self) -> Rc<TaskCell> {
        self.running_task().expect("no task is running")
    }

    /// The running task, if any (`None` in the loop itself).
    #[inline]
    pub(crate) fn running_task(&self) -> Option<Rc<TaskCell>> {
        self.with_current(Rc::clone)
    }

    /// Calls `f` with the running task, if any.
    #[inline]
    pub(crate) fn with_current<R>(&self, f: impl FnOnce(&Rc<TaskCell>) -> R) -> Option<R> {
        let current = self.current.get();
        if current.is_null() {
            return None;
        }
        // SAFETY: a non-null `current` points to the `Rc` the scheduler keeps in its frame, unmoved, until it
        // resets `current` after the task switches back; the task runs only meanwhile, so the `Rc` is alive,
        // and `f` cannot keep the reference beyond this call.
        let task = unsafe { &*current };
        Some(f(task))
    }

    /// Whether a task is running (as opposed to the loop itself).
    #[inline]
    pub(crate) fn has_current(&self) -> bool {
        !self.current.get().is_null()
    }

    /// This runtime's identity.
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// The identity this runtime's coroutines record on the primitives they
    /// use (see `sync/wait/touch.rs`): its id, or the one identity of the
    /// workers of a runtime of several.
    #[inline]
    pub(crate) fn home(&self) -> u64 {
        self.home
    }

    /// This runtime's inbox, where other threads post wake-ups. It lives
    /// as long as the context, which does not move while it runs.
    #[inline]
    pub(crate) fn inbox(&self) -> NonNull<Arc<Inbox>> {
        NonNull::from(&self.inbox)
    }

    /// The inbox itself: for the scheduler to drain, and for waiters that
    /// keep a reference to it.
    pub(crate) fn inbox_ref(&self) -> &Arc<Inbox> {
        &self.inbox
    }

    /// Default stack size for tasks of this runtime.
    pub(crate) fn default_stack_size(&self) -> usize {
        self.config.stack_size
    }

    /// Registers a spawned task, whose closure waits in its slot, and
    /// queues it. A stack is reserved now and taken when the task first
    /// runs (see `task/slot.rs`).
    pub(crate) fn spawn(&self, task: Rc<TaskCell>, stack_size: usize) -> io::Result<()> {
        let class = self.stacks.borrow_mut().reserve(stack_size)?;
        // Until the task starts, its stack bounds hold only the class of
        // the stack reserved for it.
        task.info.stack.set(StackBounds { class, ..StackBounds::EMPTY });
        self.register(task);
        Ok(())
    }

    /// Gives `task` a stack and a coroutine running `body` right away, and
    /// queues it: for the main task, whose closure may borrow from `run`'s
    /// caller and so cannot wait in a `'static` slot.
    ///
    /// # Safety
    ///
    /// Everything `body` borrows must outlive the task: either `body` is
    /// `'static`, or the caller guarantees the task finishes or is torn
    /// down before the borrow ends.
    pub(crate) unsafe fn spawn_unchecked<F>(
        &self,
        task: Rc<TaskCell>,
        stack_size: usize,
        body: F,
    ) -> io::Result<()>
    where
        F: FnOnce(&TaskYielder, ()),
    {
        let stack = self.stacks.borrow_mut().get(stack_size)?;
        let bounds = stack.bounds();
        task.info.stack.set(bounds);
        task.debug.set_stack(bounds.limit, bounds.base);
        // SAFETY: forwarded to this function's caller (see `# Safety`).
        let coroutine = unsafe { coroutine::new_coroutine_unchecked(stack, body) };
        *task.coroutine.borrow_mut() = Some(coroutine);
        self.register(task);
        Ok(())
    }

    /// Adds `task` to the registry and the run queue.
    fn register(&self, task: Rc<TaskCell>) {
        let key = self.tasks.borrow_mut().insert(task.clone());
        task.registry_key.set(key);
        let identity = task.task();
        task.debug.register(identity.id().as_u64(), identity.name());
        self.debug.insert(key, &task.debug);
        self.run_queue.push(task);
        self.metrics.spawned();
    }

    /// Sets `task`'s `panicking` flag, keeping count of the flagged tasks.
    pub(crate) fn set_panicking<S: ?Sized>(&self, task: &TaskCell<S>, panicking: bool) {
        if task.panicking.replace(panicking) != panicking {
            let count = self.panicking_tasks.get();
            self.panicking_tasks.set(if panicking { count + 1 } else { count - 1 });
        }
    }

    /// Whether the caller is unwinding from a panic: `thread::panicking`,
    /// told apart per coroutine.
    ///
    /// std counts panics per OS thread, so while one coroutine is
    /// suspended in the middle of an unwind (a destructor that waits),
    /// `thread::panicking` is true for every coroutine of the thread. The
    /// runtime's panic hook flags the coroutine that panics (and the
    /// teardown the one it unwinds); the flag is cleared when the
    /// coroutine switches away while the thread no longer panics, or
    /// finishes. A flagged caller is unwinding; an unflagged one is if no
    /// other task is flagged (then the thread's count is its own: an
    /// unwind started by `resume_unwind`, or with the hook replaced).
    /// What this cannot tell: whether a flagged coroutine caught its panic
    /// and has not switched away since, while another is suspended
    /// mid-unwind (it is taken to be still unwinding); and an unflagged
    /// unwind while another coroutine is flagged (taken to be none).
    pub(crate) fn panicking(&self) -> bool {
        if !thread::panicking() {
            return false;
        }
        // Flagged: unwinding. Unflagged: unwinding unless another task is
        // suspended in the middle of an unwind (then the count is theirs).
        self.with_current(|task| task.panicking.get()).unwrap_or(false) || self.panicking_tasks.get() == 0
    }

    /// Whether any task is flagged as unwinding.
    pub(crate) fn any_task_panicking(&self) -> bool {
        self.panicking_tasks.get() > 0
    }
}

/// Whether the caller is unwinding from a panic: in a coroutine, whether
/// that coroutine is (see [`Context::panicking`]); elsewhere,
/// `std::thread::panicking`.
#[inline]
pub(crate) fn panicking() -> bool {
    // The common case, nobody panics, reads one global counter.
    thread::panicking() && Context::with(Context::panicking).unwrap_or(true)
}

/// Whether the caller runs on the thread of a running runtime but outside
/// its coroutines (the scheduler itself, dropping a value): there a wait
/// must fail at once rather than block the thread, which would freeze the
/// runtime (see `sync::wait::party::park_thread`).
pub(crate) fn outside_coroutines_of_running_runtime() -> bool {
    Context::with(|cx| !cx.has_current()).unwrap_or(false)
}

/// Whether the caller runs inside a coroutine of a green runtime.
pub(crate) fn in_coroutine() -> bool {
    Context::with(Context::has_current).unwrap_or(false)
}
