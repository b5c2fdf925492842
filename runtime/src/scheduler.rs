//! The scheduler: one per OS thread, owning every coroutine spawned on it.
//!
//! # The loop
//!
//! The full diagram, with what each step costs, is in DESIGN.md ("The
//! scheduler loop"); in short:
//!
//! ```text
//!   loop {
//!       pop a Runnable task, switch to it, until it parks/yields/finishes
//!       every EVENT_INTERVAL switches: drain the inbox; poll epoll without
//!           waiting if anyone waits for I/O, else fire due timers
//!       run queue empty:
//!           no timer and no I/O: the stall check (`stall`): a deadlock ends
//!               the loop with a report, else wait for something from outside
//!           trim the stack pool; poll epoll until the earliest deadline,
//!           an I/O event or an inbox wake-up; wake, drain, fire timers
//!   }
//! ```
//!
//! The loop ends when the main coroutine finishes, or with a report it
//! cannot go on after (a deadlock, a failed `epoll_wait`), which `run`
//! raises as a panic once every task is torn down. An idle runtime sits in
//! `epoll_wait` and uses no CPU.
//!
//! # Invariants
//!
//! * **A coroutine never changes OS thread once started.** The scheduler is
//!   reachable only through a thread-local of the thread that created it,
//!   tasks (`TaskCell`) are `!Send`, and no API moves a coroutine. Values on
//!   a coroutine's stack may therefore be `!Send` and may use thread-locals,
//!   exactly as on a thread.
//! * **No coroutine is resumed while a borrow of scheduler state is held.**
//!   Every borrow of the scheduler's own `RefCell`s ends before `resume`;
//!   wakers found while polling are collected first and woken after the
//!   reactor's borrows end. The one borrow held across `resume` is of the
//!   resumed task's own `coroutine` cell, which only this loop touches.
//! * **The scheduler outlives its coroutines.** `run` tears down every task
//!   (see `task/teardown.rs`) before the scheduler is dropped, and the
//!   thread-local pointer is cleared last. A coroutine that refuses to die
//!   is leaked with its stack, never freed.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::panic::{self, Location};
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;
use slab::Slab;

use crate::inbox::{Inbox, Posted, TaskRef};
use crate::park::{self, WakeReason, Waker};
use crate::reactor::Reactor;
use crate::stack::{Protection, Stack, StackBounds, StackPool, overflow};
use crate::sync::touch;
use crate::task::cell::{State, TaskCell, TaskCoroutine, TaskYielder};
use crate::task::teardown::{self, Step, Teardown};
use crate::timer::Timers;

/// Task switches between two non-blocking polls of the reactor, so that a
/// busy run queue cannot starve I/O and timers (tokio uses 61 as well).
const EVENT_INTERVAL: u32 = 61;

thread_local! {
    /// The scheduler running on this thread, or null. Set by `run` for its
    /// whole duration.
    static CURRENT: Cell<*const Scheduler> = const { Cell::new(ptr::null()) };
}

/// What a task tells the loop when it switches out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Switch {
    /// It called `yield_now`: put it at the back of the run queue.
    Yield,
    /// It parked: a waker will queue it.
    Park,
}

/// Settings a runtime was built with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Stack size of tasks that do not ask for one.
    pub(crate) stack_size: usize,
    /// How stack guard pages are protected.
    pub(crate) protection: Protection,
}

/// One thread's scheduler. See the module documentation.
pub(crate) struct Scheduler {
    /// Tasks ready to run, oldest first. A task is here at most once.
    run_queue: RunQueue,
    /// Every task spawned and not yet finished, for teardown.
    tasks: RefCell<Slab<Rc<TaskCell>>>,
    /// The task being executed, if any: points to the `Rc` that `run_task`
    /// (or `tear_down`) holds in its frame for as long as the task runs,
    /// and is null otherwise. Read through [`Scheduler::with_current`].
    current: Cell<*const Rc<TaskCell>>,
    /// Deadlines of parked tasks.
    timers: RefCell<Timers<Waker>>,
    /// The epoll event loop.
    pub(crate) reactor: Reactor,
    /// Wake-ups posted by other threads.
    inbox: Arc<Inbox>,
    /// This runtime's identity (the reactor's), kept here because every
    /// wake-up compares it.
    id: u64,
    /// The time at the last turn of the loop that looked at the clock:
    /// when tasks parked, roughly, for the deadlock report.
    clock: Cell<Instant>,
    /// Reused buffer for draining the inbox.
    posted: RefCell<Vec<Posted>>,
    /// Stacks of finished tasks, for reuse.
    stacks: RefCell<StackPool>,
    /// Defaults for spawned tasks.
    config: Config,
    /// Set once the main task has finished: the remaining tasks are being
    /// torn down (see `task/teardown.rs`).
    shutting_down: Cell<bool>,
    /// Tasks whose `panicking` flag is set: every one but the running
    /// task is suspended in the middle of an unwind, and while there are
    /// any, `std::thread::panicking` is true for every coroutine of the
    /// thread (see [`Scheduler::panicking`]).
    panicking_tasks: Cell<usize>,
    /// Every task was leaked (see [`Scheduler::leak_all`]): the stack pool
    /// is never unmapped.
    stacks_leaked: Cell<bool>,
    /// Reused buffer for wakers found due while polling.
    due: RefCell<Vec<Waker>>,
}

impl Scheduler {
    /// Runs `main` as the main coroutine of a new scheduler on this thread
    /// and returns once it has finished and every other task is torn down.
    pub(crate) fn run<T>(config: Config, name: Option<Arc<str>>, main: impl FnOnce() -> T) -> T {
        if !CURRENT.get().is_null() {
            panic!(
                "green::run called inside a running green runtime: a thread runs one runtime at a \
                 time; use green::spawn to start more coroutines"
            );
        }
        if let Err(err) = overflow::install() {
            panic!("green: cannot install the stack overflow handler: {err}");
        }
        crate::task::install_panic_hook();
        let reactor = match Reactor::new() {
            Ok(reactor) => reactor,
            Err(err) => panic!("green: cannot create the epoll instance: {err}"),
        };
        let inbox = Arc::new(Inbox::new(reactor.shared().clone()));
        let scheduler = Scheduler {
            run_queue: RunQueue::default(),
            tasks: RefCell::new(Slab::new()),
            current: Cell::new(ptr::null()),
            timers: RefCell::new(Timers::default()),
            id: reactor.id(),
            reactor,
            inbox,
            clock: Cell::new(Instant::now()),
            posted: RefCell::new(Vec::new()),
            stacks: RefCell::new(StackPool::new(config.protection)),
            config,
            shutting_down: Cell::new(false),
            panicking_tasks: Cell::new(0),
            stacks_leaked: Cell::new(false),
            due: RefCell::new(Vec::new()),
        };
        // Cleared by `Drop for Scheduler`, also when `run` unwinds.
        CURRENT.set(&scheduler);
        let result = crate::task::Packet::new();
        let size = scheduler.config.stack_size;
        let body = crate::task::body(main, |outcome| result.set(outcome));
        let main_task: Rc<TaskCell> = Rc::new(TaskCell::new(name, ()));
        // SAFETY: `body` borrows from `run`'s caller, and the coroutine cannot outlive this call: `shutdown`
        // below ends every coroutine (or leaks it, never to run again) before `run` returns, and dropping
        // `scheduler` does the same if `run` unwinds.
        let spawned = unsafe { scheduler.spawn_unchecked(main_task.clone(), size, body) };
        if let Err(err) = spawned {
            panic!("{err}");
        }
        let stopped = scheduler.run_until_done(&main_task);
        scheduler.shutdown();
        drop(main_task);
        if let Err(report) = stopped {
            panic!("{report}");
        }
        match result.take() {
            Some(Ok(value)) => value,
            Some(Err(err)) => panic::resume_unwind(err.into_panic()),
            None => unreachable!("the main task finished without a result"),
        }
    }

    /// Calls `f` with the scheduler of this thread, if a runtime is running
    /// here.
    #[inline]
    pub(crate) fn with<R>(f: impl FnOnce(&Scheduler) -> R) -> Option<R> {
        let current = CURRENT.get();
        if current.is_null() {
            return None;
        }
        // SAFETY: `run` sets the pointer to a scheduler on its own stack
        // frame, which never moves, and the scheduler's destructor clears it;
        // every caller on this thread in between sees a live value.
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
        // SAFETY: a non-null `current` points to the `Rc` that `run_task` or `tear_down` keeps in its frame,
        // unmoved, until it resets `current` after the task switches back; the task runs only meanwhile, so
        // the `Rc` is alive, and `f` cannot keep the reference beyond this call.
        let task = unsafe { &*current };
        Some(f(task))
    }

    /// Whether a task is running (as opposed to the loop itself).
    #[inline]
    pub(crate) fn has_current(&self) -> bool {
        !self.current.get().is_null()
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
        let key = self.tasks.borrow_mut().insert(task.clone());
        task.registry_key.set(key);
        self.run_queue.push(task);
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
        task.info.stack.set(stack.bounds());
        // SAFETY: forwarded to this function's caller (see `# Safety`).
        let coroutine = unsafe { crate::task::cell::new_coroutine_unchecked(stack, body) };
        *task.coroutine.borrow_mut() = Some(coroutine);
        let key = self.tasks.borrow_mut().insert(task.clone());
        task.registry_key.set(key);
        self.run_queue.push(task);
        Ok(())
    }

    /// Runs tasks until the main one finishes. An `Err` is a report the
    /// runtime cannot go on after (a deadlock, a failed `epoll_wait`):
    /// `run` panics with it once every task is torn down, so that no
    /// teardown runs while the thread is panicking.
    fn run_until_done(&self, main: &TaskCell) -> Result<(), String> {
        let mut budget = EVENT_INTERVAL;
        let mut stalled = None;
        loop {
            let mut ran = false;
            loop {
                let next = self.run_queue.pop();
                let Some(task) = next else { break };
                ran = true;
                self.run_task(task);
                if main.is_done() {
                    return Ok(());
                }
                budget -= 1;
                if budget == 0 {
                    budget = EVENT_INTERVAL;
                    self.poll_if_waiting()?;
                }
            }
            if ran {
                stalled = None;
            }
            self.clock.set(Instant::now());
            let timeout = if self.timers.borrow().len() == 0 && self.reactor.waiters() == 0 {
                self.stall(main, &mut stalled)?
            } else {
                let timers = self.timers.borrow();
                timers.next_deadline().map(|d| d.saturating_duration_since(self.clock.get()))
            };
            if timeout.is_none_or(|t| !t.is_zero()) {
                self.stacks.borrow_mut().trim();
            }
            self.poll(timeout)?;
        }
    }

    /// Every task is parked, and no timer or I/O can wake one: is it a
    /// deadlock? `Err` with the report if so; otherwise how long to wait
    /// for something from outside (`None`: until it comes).
    ///
    /// * A wait on a primitive another thread or runtime has used (see
    ///   `sync/touch.rs`), or in several queues at once (a select), can be
    ///   ended from outside: wait.
    /// * Otherwise, if this is the only thread of the process, or no task
    ///   waits on a primitive at all (joins, scopes, a sleep with no
    ///   deadline), nothing can ever wake them: a deadlock.
    /// * Otherwise a thread may hold a handle it has not used yet (a
    ///   sender moved to a thread that is still computing): the runtime
    ///   waits for [`STALL_GRACE`], and reports the deadlock only if
    ///   nothing arrived meanwhile and the process's other threads used no
    ///   CPU time (a thread that computes keeps the grace going). What it
    ///   cannot see is a thread blocked for longer than that (in a read or
    ///   a sleep) that will then use its handle; DESIGN.md lists it.
    #[cold]
    fn stall(&self, main: &TaskCell, stalled: &mut Option<Stalled>) -> Result<Option<Duration>, String> {
        let mut on_primitives = false;
        for (_, task) in self.tasks.borrow().iter() {
            if task.state.get() != State::Parked {
                continue;
            }
            let waits_on = task.waits_on.get();
            if waits_on.is_null() {
                continue;
            }
            if waits_on == touch::several() {
                return Ok(None);
            }
            // SAFETY: `waits_on` (not null, not `several()`) is the touch in a queue of the primitive this
            // parked task waits on, set when the wait began, cleared when it ends; the waiting frame borrows
            // the primitive until then, and no task runs during this loop, so the touch is alive.
            if unsafe { &*waits_on }.is_shared() {
                return Ok(None);
            }
            on_primitives = true;
        }
        if !on_primitives || other_threads() == Some(0) {
            return Err(self.deadlock_report(main));
        }
        let now = self.clock.get();
        let others = others_cpu_time();
        let since = match stalled {
            Some(Stalled { since, cpu }) if others.saturating_sub(*cpu) <= STALL_ACTIVE => *since,
            _ => {
                *stalled = Some(Stalled { since: now, cpu: others });
                now
            }
        };
        match STALL_GRACE.checked_sub(now.saturating_duration_since(since)) {
            Some(left) if !left.is_zero() => Ok(Some(left)),
            _ => Err(self.deadlock_report(main)),
        }
    }

    #[cold]
    fn deadlock_report(&self, main: &TaskCell) -> String {
        use std::fmt::Write as _;
        let tasks = self.tasks.borrow();
        let now = Instant::now();
        let mut report = format!(
            "green: deadlock: all {} coroutines (main coroutine {:?}, id {}) are parked and nothing can \
             wake them: no timer is armed, no I/O is awaited, and no other thread or runtime has used \
             what they wait on",
            tasks.len(),
            main.info.owner.name.as_deref().unwrap_or("<unnamed>"),
            main.info.owner.id
        );
        let mut listed: Vec<&Rc<TaskCell>> = tasks.iter().map(|(_, task)| task).collect();
        listed.sort_by_key(|task| task.info.owner.id);
        for task in listed {
            let waited = task.parked_at.get().map(|at| now.saturating_duration_since(at));
            let waits_on = task.waits_on.get();
            let what = if waits_on.is_null() || task.state.get() != State::Parked {
                touch::describe(task.parked_by.get())
            } else if waits_on == touch::several() {
                "a select over several channels (or a wait in no known queue)"
            } else {
                // SAFETY: the touch of a queue of the primitive this parked task waits on, set when the wait
                // began and cleared when it ends; the waiting frame borrows the primitive until then, and no
                // task runs while the report is written, so the touch is alive.
                touch::describe(unsafe { &*waits_on }.at())
            };
            let _ = write!(
                report,
                "\n  coroutine '{}' (id {}) waits on {what}",
                task.info.owner.name.as_deref().unwrap_or("<unnamed>"),
                task.info.owner.id,
            );
            if let Some(waited) = waited {
                let _ = write!(report, " for {waited:.1?}");
            }
        }
        report
    }

    /// The non-blocking poll between task switches: skipped entirely (no
    /// syscall, no clock read) when no task waits for I/O or a timer.
    fn poll_if_waiting(&self) -> Result<(), String> {
        self.drain_inbox();
        if self.reactor.waiters() > 0 {
            self.poll(Some(Duration::ZERO))?;
        } else if self.timers.borrow().len() > 0 {
            self.fire_timers();
        }
        Ok(())
    }

    /// Waits for I/O up to `timeout` (None = until an event), then wakes
    /// the tasks whose I/O is ready and whose timers are due.
    fn poll(&self, timeout: Option<Duration>) -> Result<(), String> {
        let mut due = self.due.take();
        if let Err(err) = self.reactor.poll(timeout, &mut due) {
            return Err(format!("green: epoll_wait failed: {err}"));
        }
        for waker in due.drain(..) {
            waker.wake(WakeReason::Ready);
        }
        self.due.replace(due);
        self.drain_inbox();
        self.fire_timers();
        Ok(())
    }

    /// Performs the wake-ups other threads have posted.
    fn drain_inbox(&self) {
        let mut posted = self.posted.take();
        self.inbox.take(&mut posted);
        for wake in posted.drain(..) {
            self.wake_local(wake, WakeReason::Ready);
        }
        self.posted.replace(posted);
    }

    /// Wakes a task of this runtime by registry key, id and epoch; a task
    /// that has finished, or moved past that park, is left alone.
    pub(crate) fn wake_local(&self, wake: Posted, reason: WakeReason) {
        self.wake_local_then(wake, reason, |_| {});
    }

    /// Like [`Scheduler::wake_local`], then calls `then` with the task's
    /// record if the task is still alive.
    #[inline]
    pub(crate) fn wake_local_then(&self, wake: Posted, reason: WakeReason, then: impl FnOnce(&Rc<TaskCell>)) {
        let tasks = self.tasks.borrow();
        if let Some(task) = tasks.get(wake.key).filter(|t| t.info.owner.id == wake.id) {
            self.wake_task(task, wake.epoch, reason);
            then(task);
        }
    }

    /// The rules of `park.rs`: wakes `task` if it is still in `epoch`;
    /// returns whether this call was the one that woke it.
    #[inline]
    pub(crate) fn wake_task(&self, task: &Rc<TaskCell>, epoch: u32, reason: WakeReason) -> bool {
        self.wake_record(task, task, epoch, reason)
    }

    /// [`Scheduler::wake_task`] for a caller that has found the task's
    /// record `cell` already (see `FoundTask`).
    #[inline]
    pub(crate) fn wake_record(
        &self,
        task: &Rc<TaskCell>,
        cell: &TaskCell,
        epoch: u32,
        reason: WakeReason,
    ) -> bool {
        debug_assert!(std::ptr::addr_eq(Rc::as_ptr(task), cell), "the record is the task's");
        if cell.epoch.get() != epoch {
            return false;
        }
        match cell.state.get() {
            State::Parked => {
                cell.reason.set(reason);
                cell.state.set(State::Runnable);
                self.run_queue.push(task.clone());
                true
            }
            State::Running if cell.pending.get().is_none() => {
                cell.pending.set(Some(reason));
                true
            }
            _ => false,
        }
    }

    /// This runtime's identity.
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// This runtime's inbox, where other threads post wake-ups. It lives
    /// as long as the scheduler, which does not move while it runs.
    #[inline]
    pub(crate) fn inbox(&self) -> std::ptr::NonNull<Arc<Inbox>> {
        std::ptr::NonNull::from(&self.inbox)
    }

    /// A handle any thread can use to wake `task`, a task of this runtime.
    pub(crate) fn task_ref(&self, task: &TaskCell) -> TaskRef {
        TaskRef::new(self.inbox.clone(), task.registry_key.get(), task.info.owner.id)
    }

    /// Wakes the tasks whose deadlines have passed.
    fn fire_timers(&self) {
        if self.timers.borrow().len() == 0 {
            return;
        }
        let mut due = self.due.take();
        self.timers.borrow_mut().expire(Instant::now(), &mut due);
        for waker in due.drain(..) {
            waker.wake(WakeReason::TimedOut);
        }
        self.due.replace(due);
    }

    /// Switches to `task` until it parks, yields or finishes.
    fn run_task(&self, task: Rc<TaskCell>) {
        // The record itself, found once: every access through the `Rc`
        // would look the record's offset up in the slot's vtable again.
        let running: &TaskCell = &task;
        // The task's own coroutine cell, not scheduler state: the coroutine
        // never touches it, so holding it across the switch cannot
        // conflict.
        let mut coroutine = running.coroutine.borrow_mut();
        if coroutine.is_none() {
            // First run. A task cancelled before it started runs too: its
            // body drops the closure inside the coroutine, where the
            // waits of its destructors work (see `task::body`).
            drop(coroutine);
            self.start(running);
            coroutine = running.coroutine.borrow_mut();
        }
        running.state.set(State::Running);
        overflow::enter(&running.info);
        let previous = self.current.replace(&task);
        debug_assert!(previous.is_null(), "run_task is not re-entrant");
        let result = coroutine.as_mut().expect("a runnable task has a coroutine").resume(());
        drop(coroutine);
        self.current.set(ptr::null());
        overflow::leave();
        if running.panicking.get() {
            self.note_switch_out(running, matches!(result, CoroutineResult::Return(())));
        }
        // Read twice rather than copied once: the check needs two fields,
        // and a copy kept for the rare report costs the whole bounds.
        if !running.info.stack.get().canary_top_intact() {
            overflow::report_canary(&running.info.owner, &running.info.stack.get());
        }
        match result {
            CoroutineResult::Yield(Switch::Yield) => {
                running.state.set(State::Runnable);
                self.run_queue.push_back(task);
            }
            // Whoever wakes it holds it now.
            CoroutineResult::Yield(Switch::Park) => {}
            CoroutineResult::Return(()) => self.finish(running),
        }
    }

    /// Builds the coroutine of a task that runs for the first time, on the
    /// stack reserved for it at spawn.
    fn start(&self, task: &TaskCell) {
        let stack = self.stacks.borrow_mut().take_reserved(task.info.stack.get().class);
        task.info.stack.set(stack.bounds());
        match task.slot.start(stack) {
            Ok(coroutine) => *task.coroutine.borrow_mut() = Some(coroutine),
            Err(_) => unreachable!("a queued task without a coroutine has a closure waiting"),
        }
    }

    /// Bookkeeping for [`Scheduler::panicking`] after `task`, flagged as
    /// unwinding, switched back (`finished`: its body returned): its
    /// unwind is over if it finished or the thread no longer panics.
    #[cold]
    #[inline(never)]
    fn note_switch_out(&self, task: &TaskCell, finished: bool) {
        if finished || !thread::panicking() {
            self.set_panicking(task, false);
        }
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

    /// Requests cancellation of a task of this runtime (see
    /// `JoinHandle::cancel`): wakes it with `Cancelled` if it is parked
    /// where the request can reach it; otherwise its next park sees it.
    pub(crate) fn cancel<S: ?Sized>(&self, task: &TaskCell<S>) {
        if task.is_done() || !task.cancel.request() || task.state.get() != State::Parked {
            return;
        }
        let wake = Posted { key: task.registry_key.get(), id: task.info.owner.id, epoch: task.epoch.get() };
        self.wake_local(wake, WakeReason::Cancelled);
    }

    /// Bookkeeping after a task's closure has returned.
    fn finish(&self, task: &TaskCell) {
        task.state.set(State::Done);
        let coroutine = task.coroutine.borrow_mut().take();
        if let Some(coroutine) = coroutine {
            self.recycle(coroutine, task);
        }
        self.tasks.borrow_mut().try_remove(task.registry_key.get());
        let waiter = task.join_waiter.borrow_mut().take();
        if let Some(waiter) = waiter {
            waiter.wake(WakeReason::Ready);
        }
    }

    fn recycle(&self, coroutine: TaskCoroutine, task: &TaskCell) {
        let stack: Stack = coroutine.into_stack();
        self.stacks.borrow_mut().put(stack, &task.info.owner);
    }

    /// See [`park::park`]; `at` is where in the runtime the wait was
    /// made.
    #[inline(always)]
    pub(crate) fn park(&self, deadline: Option<Instant>, at: &'static Location<'static>) -> WakeReason {
        let task = self.current_task();
        task.parked_by.set(Some(at));
        let reason = self.park_task(&task, deadline);
        task.epoch.set(task.epoch.get().wrapping_add(1));
        reason
    }

    /// Parks `task`, the running task, without moving its epoch (see
    /// `park::end_epoch`). Takes the record, not its `Rc`, so that a caller
    /// that parks in a loop finds the record once (see `run_task`).
    #[inline(always)]
    pub(crate) fn park_task(&self, task: &TaskCell, deadline: Option<Instant>) -> WakeReason {
        debug_assert_eq!(
            self.with_current(|running| std::ptr::addr_eq(Rc::as_ptr(running), task)),
            Some(true),
            "only the running task parks"
        );
        if let Some(reason) = task.pending.take() {
            return reason;
        }
        if self.shutting_down.get() {
            return self.teardown_point(task);
        }
        // The common case, no deadline, no scope and no request, reads no
        // clock and arms no timer; the rest is out of line, so that the
        // common case needs few registers round the switch.
        if deadline.is_some() || !task.cancel.is_idle() {
            return self.park_timed(task, deadline);
        }
        task.parked_at.set(Some(self.clock.get()));
        task.state.set(State::Parked);
        self.suspend(task, Switch::Park);
        if task.unwinding.get() {
            return self.teardown_point(task);
        }
        task.reason.get()
    }

    /// A suspension point of `task` while the runtime tears it down: fail
    /// the wait, start the teardown unwind, or, for a coroutine that
    /// refuses to die, switch back to the scheduler for good (see
    /// `task/teardown.rs`).
    #[cold]
    #[inline(never)]
    fn teardown_point(&self, task: &TaskCell) -> WakeReason {
        match teardown::step(task, thread::panicking()) {
            Step::Return(reason) => reason,
            Step::Unwind => teardown::unwind(self, task),
            Step::Refuse => loop {
                task.state.set(State::Parked);
                self.suspend(task, Switch::Park);
            },
        }
    }

    /// The wait of a cancelled task ends at once, but only after the
    /// others had a turn: a loop that ignores the error would otherwise
    /// never give up the thread.
    #[cold]
    #[inline(never)]
    fn deliver_cancellation(&self, task: &TaskCell) -> WakeReason {
        task.state.set(State::Runnable);
        self.suspend(task, Switch::Yield);
        if task.unwinding.get() {
            return self.teardown_point(task);
        }
        WakeReason::Cancelled
    }

    /// [`Scheduler::park_task`] with a deadline, a scope or a cancellation
    /// request: looks at the clock, and arms a timer for the nearest
    /// deadline.
    #[inline(never)]
    fn park_timed(&self, task: &TaskCell, deadline: Option<Instant>) -> WakeReason {
        let now = Instant::now();
        if !task.cancel.is_idle() && task.cancel.deliver(now) {
            return self.deliver_cancellation(task);
        }
        if deadline.is_some_and(|d| d <= now) {
            return WakeReason::TimedOut;
        }
        let mut wake_at = deadline;
        if let Some(scope) = task.cancel.next_deadline() {
            wake_at = Some(wake_at.map_or(scope, |d| d.min(scope)));
        }
        let timer = wake_at.map(|d| self.timers.borrow_mut().insert(d, park::waker_for(self.current_task())));
        task.parked_at.set(Some(now));
        task.state.set(State::Parked);
        self.suspend(task, Switch::Park);
        if task.unwinding.get() {
            return self.teardown_point(task);
        }
        let reason = task.reason.get();
        if let Some(timer) = timer
            && reason != WakeReason::TimedOut
        {
            self.timers.borrow_mut().cancel(timer);
        }
        if reason == WakeReason::TimedOut && deadline != wake_at {
            // The timer was a scope's deadline, unless the operation's own
            // deadline has passed too (then the operation times out, and the
            // scope's cancellation comes at the next park).
            let now = Instant::now();
            if deadline.is_none_or(|d| d > now) && task.cancel.deliver(now) {
                return WakeReason::Cancelled;
            }
        }
        reason
    }

    /// Puts the running task at the back of the run queue and switches
    /// away; returns whether the caller is a task of this runtime.
    ///
    /// Everything from the public `yield_now` down to the switch is inlined
    /// into the caller. The switch returns into the other context with a
    /// `ret` that the CPU's return-stack predictor expects to match the
    /// `call` that entered the coroutine; every function frame between the
    /// user's code and the switch adds a `ret` on resumption that was pushed
    /// before the scheduler ran, and each of those mispredicts. With three
    /// frames in between a yield cost about 50 ns on the development
    /// machine; inlined, under 10 ns of it is the switch.
    #[inline(always)]
    pub(crate) fn yield_now(&self) -> bool {
        let Some(task) = self.with_current(|task| -> *const TaskCell { &**task }) else { return false };
        // SAFETY: `task` points to the running task's record, which the `Rc` that `run_task` (or `tear_down`)
        // keeps in its frame holds alive until the task has switched back; this frame is inside the task, so
        // it ends first.
        let task = unsafe { &*task };
        if self.shutting_down.get() {
            self.teardown_point(task);
            return true;
        }
        // A task torn down while it waits in the run queue after a yield
        // goes on to its next suspension point, where the check above
        // starts its teardown: a check here would cost every yield.
        self.suspend(task, Switch::Yield);
        true
    }

    /// Switches from the running task back to the loop. The task must have
    /// arranged its wake-up first. Inlined for the reason given at
    /// `yield_now`.
    #[inline(always)]
    fn suspend(&self, task: &TaskCell, why: Switch) {
        let yielder = task.yielder.get();
        debug_assert!(!yielder.is_null(), "a running task has recorded its yielder");
        // SAFETY: the yielder lives on this task's own stack (recorded by
        // `task::body` when the coroutine started) and the task is running,
        // so its stack is live; only this task suspends through it.
        unsafe { &*yielder }.suspend(why);
    }

    /// Records the running task's yielder, once, when it starts; returns
    /// whether its body runs: not at shutdown, nor after a cancellation if
    /// `skip_if_cancelled` (then the body drops its closure instead).
    pub(crate) fn begin_task(&self, yielder: &TaskYielder, skip_if_cancelled: bool) -> bool {
        let task = self.current_task();
        task.yielder.set(yielder);
        if task.unwinding.get() {
            task.teardown.set(Teardown::DroppingBody);
            return false;
        }
        !(skip_if_cancelled && task.cancel.is_requested())
    }

    /// Cancels and unwinds every task still alive after the main one
    /// finished, so that their destructors run; loops because destructors
    /// may spawn. Always finishes: a task that refuses to die is leaked
    /// (see `task/teardown.rs`).
    fn shutdown(&self) {
        self.shutting_down.set(true);
        self.run_queue.clear();
        loop {
            let tasks: Vec<Rc<TaskCell>> = self.tasks.borrow_mut().drain().collect();
            if tasks.is_empty() {
                break;
            }
            for task in tasks {
                self.tear_down(&task);
            }
        }
        *self.timers.borrow_mut() = Timers::default();
        self.reactor.clear();
    }

    /// Unwinds one task's stack (running its destructors) and recycles it;
    /// a task that never started drops its closure inside its coroutine.
    fn tear_down(&self, task: &Rc<TaskCell>) {
        if task.is_done() || task.unwinding.get() {
            return; // a scoped child torn down with its parent
        }
        // Children of a `green::scope` borrow from their parent's stack:
        // they go first.
        let children = task.scoped_children.take();
        for child in &children {
            self.tear_down(child);
        }
        task.cancel.request();
        task.unwinding.set(true);
        // Suspended in the middle of an unwind of its own, or perhaps (the
        // thread panics and no task is flagged: an unwind the hook did not
        // see): a second unwind from a destructor would abort the process.
        let in_unwind = thread::panicking() && (task.panicking.get() || self.panicking_tasks.get() == 0);
        task.teardown.set(if in_unwind { Teardown::RequestedInUnwind } else { Teardown::Requested });
        if task.coroutine.borrow().is_none() {
            self.start(task);
        }
        let Some(mut coroutine) = task.coroutine.borrow_mut().take() else { return };
        task.state.set(State::Running);
        overflow::enter(&task.info);
        self.current.set(task);
        let result = coroutine.resume(());
        self.current.set(ptr::null());
        overflow::leave();
        task.state.set(State::Done);
        task.join_waiter.borrow_mut().take();
        match result {
            CoroutineResult::Return(()) => {
                self.set_panicking(&**task, false);
                self.recycle(coroutine, task);
            }
            CoroutineResult::Yield(_) => {
                // Never resumed again: it no longer counts.
                self.set_panicking(&**task, false);
                self.leak(coroutine, task);
            }
        }
    }

    /// Gives up on a coroutine that refuses to die: it is never resumed,
    /// and its stack is never freed, because primitives' queues may still
    /// point into it.
    #[cold]
    fn leak(&self, mut coroutine: TaskCoroutine, task: &TaskCell) {
        eprintln!(
            "green: coroutine '{}' (id {}) caught the unwind that tears it down at shutdown and went on \
             waiting; it is left suspended and its stack is leaked",
            task.info.owner.name.as_deref().unwrap_or("<unnamed>"),
            task.info.owner.id
        );
        // SAFETY: abandoning frames without their destructors is sound if their memory is never reused or
        // freed (values may be pinned, queues may point in): the stack goes to `StackPool::leak`, which
        // never reuses nor unmaps it, and the coroutine is never resumed: as if suspended for good.
        unsafe { coroutine.force_reset() };
        self.stacks.borrow_mut().leak(coroutine.into_stack());
    }

    /// Leaks every task left and the whole stack pool (see `Drop`).
    #[cold]
    fn leak_all(&self) {
        let tasks: Vec<Rc<TaskCell>> = self.tasks.borrow_mut().drain().collect();
        eprintln!("green: the runtime stopped with {} coroutines alive; they are leaked", tasks.len());
        self.run_queue.clear();
        self.stacks_leaked.set(true);
        std::mem::forget(tasks);
    }
}

/// The tasks ready to run, oldest first.
///
/// The oldest is kept apart, in `first`, when it went in while the queue
/// was empty: a coroutine waking one other and then parking (a hand-off
/// through a channel, a join) is the common case, and then nothing moves
/// through the `VecDeque`, whose push and pop are each a few dozen
/// instructions. Order is unchanged: `first`, when set, is older than
/// anything in `rest`.
#[derive(Default)]
struct RunQueue {
    /// The oldest task, if it arrived while the queue was empty.
    first: Cell<Option<Rc<TaskCell>>>,
    /// Whether `first` is set: read on every pop, where taking `first` to
    /// look at it would cost more.
    has_first: Cell<bool>,
    /// Every other task, oldest first.
    rest: RefCell<VecDeque<Rc<TaskCell>>>,
}

impl RunQueue {
    /// Adds `task` at the back, apart if the queue is empty: for a task
    /// that was woken.
    #[inline]
    fn push(&self, task: Rc<TaskCell>) {
        if !self.has_first.get() && self.rest.borrow().is_empty() {
            self.first.set(Some(task));
            self.has_first.set(true);
        } else {
            self.rest.borrow_mut().push_back(task);
        }
    }

    /// Adds `task` at the back, never apart: for a task that yields, when
    /// others are usually waiting (and then the check would be wasted).
    /// Always in order, as `first` is older than anything in `rest`.
    #[inline]
    fn push_back(&self, task: Rc<TaskCell>) {
        self.rest.borrow_mut().push_back(task);
    }

    /// Takes the oldest task.
    #[inline]
    fn pop(&self) -> Option<Rc<TaskCell>> {
        if self.has_first.replace(false) { self.first.take() } else { self.rest.borrow_mut().pop_front() }
    }

    /// Drops every task.
    fn clear(&self) {
        self.has_first.set(false);
        self.first.take();
        self.rest.borrow_mut().clear();
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // Reached with tasks left only when `run` itself unwinds past the
        // loop (a bug in the runtime). A teardown needs a thread that is
        // not panicking (see `task/teardown.rs`), so then every task is
        // leaked, stacks included: nothing is freed that a suspended
        // coroutine or a queue pointing into its stack could touch.
        if !self.tasks.borrow().is_empty() {
            if thread::panicking() {
                self.leak_all();
            } else {
                self.shutdown();
            }
        }
        if self.stacks_leaked.get() {
            // The stacks of the leaked coroutines lie in the pool's regions.
            let protection = self.config.protection;
            std::mem::forget(self.stacks.replace(StackPool::new(protection)));
        }
        CURRENT.set(ptr::null());
    }
}

/// How long a stalled runtime whose tasks wait on primitives nobody else
/// has used waits before it reports a deadlock, when other threads exist
/// (see `Scheduler::stall`).
const STALL_GRACE: Duration = Duration::from_secs(1);

/// CPU time the other threads of the process may use during the grace
/// and still count as idle (the test harness's threads, say).
const STALL_ACTIVE: Duration = Duration::from_millis(20);

/// A stall that may be a deadlock: since when, and the CPU time the
/// process's other threads had used then.
#[derive(Debug, Clone, Copy)]
struct Stalled {
    /// When the stall began (or the other threads were last seen busy).
    since: Instant,
    /// [`others_cpu_time`] then.
    cpu: Duration,
}

/// Threads of the process besides the calling one, from
/// `/proc/self/stat`; `None` if it cannot be read.
fn other_threads() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, field 2, is in parentheses and may hold spaces:
    // count fields after its closing one. `num_threads` is field 20.
    let after = stat.rsplit_once(')')?.1;
    let threads: usize = after.split_whitespace().nth(17)?.parse().ok()?;
    threads.checked_sub(1)
}

/// CPU time used by the process's threads other than the calling one.
fn others_cpu_time() -> Duration {
    fn used(who: libc::c_int) -> Duration {
        // SAFETY: `rusage` is plain data for which all zeroes is valid.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `usage` is a valid, writable `rusage` for the call.
        if unsafe { libc::getrusage(who, &mut usage) } != 0 {
            return Duration::ZERO;
        }
        let micros = |t: libc::timeval| {
            Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
        };
        micros(usage.ru_utime) + micros(usage.ru_stime)
    }
    used(libc::RUSAGE_SELF).saturating_sub(used(libc::RUSAGE_THREAD))
}

/// Whether the caller is unwinding from a panic: in a coroutine, whether
/// that coroutine is (see [`Scheduler::panicking`]); elsewhere,
/// `std::thread::panicking`.
#[inline]
pub(crate) fn panicking() -> bool {
    // The common case, nobody panics, reads one global counter.
    thread::panicking() && Scheduler::with(|s| s.panicking()).unwrap_or(true)
}

/// Whether the caller runs on the thread of a running runtime but outside
/// its coroutines (the scheduler itself, dropping a value): there a wait
/// must fail at once rather than block the thread, which would freeze the
/// runtime (see `sync::waiter::park_thread`).
pub(crate) fn outside_coroutines_of_running_runtime() -> bool {
    Scheduler::with(|s| !s.has_current()).unwrap_or(false)
}

/// Whether the caller runs inside a coroutine of a green runtime.
pub(crate) fn in_coroutine() -> bool {
    Scheduler::with(|s| s.has_current()).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task record that never runs.
    fn task() -> Rc<TaskCell> {
        Rc::new(TaskCell::new(None, ()))
    }

    #[test]
    fn the_run_queue_keeps_arrival_order_whether_a_task_waits_apart_or_not() {
        let queue = RunQueue::default();
        let [a, b, c, d] = [task(), task(), task(), task()];
        // `a` arrives in an empty queue (apart), `b` yields behind it, `c`
        // is woken behind both.
        queue.push(a.clone());
        queue.push_back(b.clone());
        queue.push(c.clone());
        let popped = queue.pop().map(|t| t.id());
        assert_eq!(popped, Some(a.id()));
        // `a` is out, `b` and `c` are still queued: `d` goes behind them.
        queue.push(d.clone());
        let order: Vec<_> = std::iter::from_fn(|| queue.pop()).map(|t| t.id()).collect();
        assert_eq!(order, [b.id(), c.id(), d.id()]);
        queue.push(a.clone());
        queue.clear();
        assert!(queue.pop().is_none());
        assert_eq!(Rc::strong_count(&a), 1, "clear drops what was queued");
    }
}
