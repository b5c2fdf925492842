//! The scheduler: the loop that runs one runtime's coroutines on its
//! thread.
//!
//! The scheduler owns the runtime's [`Context`] (run queue, registry,
//! timers, reactor, inbox, stacks) and installs it for the whole of `run`.
//! It is the only code that switches *into* a coroutine (`run_task`,
//! `tear_down`) and that moves a task to Running or Done; everything that
//! parks or wakes one follows the rules in `park.rs`.
//!
//! # The loop
//!
//! DESIGN.md ("The scheduler loop") draws the loop with every step and
//! what it costs; it is not copied here, where it would drift. In order,
//! [`Scheduler::run_until_done`] runs the queued tasks, polls the reactor
//! without waiting every `EVENT_INTERVAL` switches, and when the queue is
//! empty runs the deadlock check (`stall`), trims the stack pool and waits
//! in `epoll_wait` until the next deadline, an I/O event or an inbox
//! wake-up.
//!
//! # Invariants
//!
//! * **A coroutine never changes OS thread once started.** The scheduler is
//!   reachable only through a thread-local of the thread that created it
//!   (`Context::with`), tasks (`TaskCell`) are `!Send`, and no API moves a
//!   coroutine. Values on
//!   a coroutine's stack may therefore be `!Send` and may use thread-locals,
//!   exactly as on a thread.
//! * **No coroutine is resumed while a borrow of runtime state is held.**
//!   Every borrow of the context's and the scheduler's `RefCell`s ends
//!   before `resume`;
//!   wakers found while polling are collected first and woken after the
//!   reactor's borrows end. The one borrow held across `resume` is of the
//!   resumed task's own `coroutine` cell, which only this loop touches.
//! * **The scheduler outlives its coroutines.** `run` tears down every task
//!   (see `task/teardown.rs`) before the scheduler is dropped, and the
//!   context's thread-local pointer is cleared last. A coroutine that refuses to die
//!   is leaked with its stack, never freed.

use std::cell::{Cell, RefCell};
use std::fmt::Write as _;
use std::panic;
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;

use crate::board::{Stall, Verdict};
use crate::context::{Config, Context};
use crate::dump::Dump;
use crate::dump::collect;
use crate::dump::entry::{Coroutine, Holder};
use crate::dump::kind::WaitKind;
use crate::inbox::Post;
use crate::metrics;
use crate::park;
use crate::runtimes::{self, Listed, Listing};
use crate::stack::{Stack, StackPool, overflow};
use crate::sync::wait::touch;
use crate::task::cell::{TaskCell, Waker};
use crate::task::coroutine::TaskCoroutine;
use crate::task::id::TaskId;
use crate::task::slot::Packet;
use crate::task::spawn;
use crate::task::state::{Switch, TaskState, Teardown, WakeReason};
use crate::timer::Timers;
use crate::watchdog::{self, Stamp, Watched};

/// How long a runtime with a coroutine waiting for the blocking pool
/// watches its inbox before it sleeps (see [`Scheduler::spin_for_posts`]).
const POOL_SPIN: Duration = Duration::from_micros(50);

/// Task switches between two non-blocking polls of the reactor, so that a
/// busy run queue cannot starve I/O and timers (tokio uses 61 as well).
const EVENT_INTERVAL: u32 = 61;

/// One thread's scheduler. See the module documentation.
pub(crate) struct Scheduler {
    /// The runtime's state, installed as this thread's context.
    cx: Context,
    /// Reused buffer for draining the inbox.
    posted: RefCell<Vec<Post>>,
    /// Reused buffer for wakers found due while polling.
    due: RefCell<Vec<Waker>>,
    /// Every task was leaked (see [`Scheduler::leak_all`]): the stack pool
    /// is never unmapped.
    stacks_leaked: Cell<bool>,
    /// This worker of a runtime of several is marked stalled on the
    /// runtime's board (`board.rs`).
    marked: Cell<bool>,
    /// The last wake-up came from another thread: spin before the next
    /// sleep (see [`Scheduler::spin_for_posts`]).
    spin_pays: Cell<bool>,
    /// What the stall watchdog sees of this worker (`watchdog.rs`).
    stamp: Arc<Stamp>,
    /// Switches into coroutines so far, the stamp's count.
    switches: Cell<u64>,
    /// The stamp's registration with the watchdog, if it watches.
    _watched: Option<Watched>,
    /// This worker's place on the process's list, where a task dump finds
    /// it (`runtimes.rs`).
    _listed: Listing,
}

impl Scheduler {
    /// Runs `main` as the main coroutine of a new scheduler on this thread
    /// and returns once it has finished and every other task is torn down.
    pub(crate) fn run<T>(config: Config, name: Option<Arc<str>>, main: impl FnOnce() -> T) -> T {
        if Context::is_installed() {
            panic!(
                "green::run called inside a running green runtime: a thread runs one runtime at a \
                 time; use green::spawn to start more coroutines"
            );
        }
        if let Err(err) = overflow::install() {
            panic!("green: cannot install the stack overflow handler: {err}");
        }
        spawn::install_panic_hook();
        let cx = match Context::new(config) {
            Ok(cx) => cx,
            Err(err) => panic!("green: cannot create the epoll instance: {err}"),
        };
        let label = match &config_label(&cx) {
            Some(k) => format!("worker {k}"),
            None => format!("the thread '{}'", thread::current().name().unwrap_or("<unnamed>")),
        };
        let stamp = Arc::new(Stamp::new(cx.config.stall_threshold.unwrap_or_default(), label));
        let watched = cx.config.stall_threshold.map(|_| watchdog::watch_stamp(stamp.clone()));
        let listed = runtimes::list(Listed {
            runtime: cx.home(),
            id: cx.id(),
            worker: config_label(&cx).unwrap_or(0),
            inbox: cx.inbox_ref().clone(),
            stamp: stamp.clone(),
        });
        metrics::join(config_label(&cx).unwrap_or(0), cx.metrics.counters().clone(), stamp.clone());
        let scheduler = Scheduler {
            _listed: listed,
            stamp,
            switches: Cell::new(0),
            _watched: watched,
            cx,
            posted: RefCell::new(Vec::new()),
            due: RefCell::new(Vec::new()),
            stacks_leaked: Cell::new(false),
            marked: Cell::new(false),
            spin_pays: Cell::new(false),
        };
        // SAFETY: `scheduler` stays in this frame, unmoved, until it is dropped, and its destructor calls
        // `uninstall` (also when `run` unwinds).
        unsafe { scheduler.cx.install() };
        let result = Packet::new();
        let size = scheduler.cx.config.stack_size;
        let body = spawn::body(main, |outcome| result.set(outcome));
        let main_task: Rc<TaskCell> = Rc::new(TaskCell::new(name, ()));
        // SAFETY: `body` borrows from `run`'s caller, and the coroutine cannot outlive this call: `shutdown`
        // below ends every coroutine (or leaks it, never to run again) before `run` returns, and dropping
        // `scheduler` does the same if `run` unwinds.
        let spawned = unsafe { scheduler.cx.spawn_unchecked(main_task.clone(), size, body) };
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
                let next = self.cx.run_queue.pop();
                let Some(task) = next else { break };
                ran = true;
                let alone = self.run_task(task);
                if main.is_done() {
                    return Ok(());
                }
                budget -= 1;
                if budget == 0 {
                    budget = EVENT_INTERVAL;
                    self.publish_gauges();
                    self.poll_if_waiting()?;
                } else if alone {
                    // A task that yields with nothing else to run (a CPU
                    // loop that yields now and then, as the caveats advise)
                    // would otherwise run 61 times before a timer or an I/O
                    // event got its turn: with nothing else runnable, look
                    // now.
                    self.poll_if_waiting()?;
                }
            }
            if ran {
                stalled = None;
            }
            self.publish_gauges();
            self.cx.clock.set(Instant::now());
            let idle = self.cx.timers.borrow().len() == 0 && self.cx.reactor.waiters() == 0;
            let mut timeout = if idle {
                None
            } else {
                let timers = self.cx.timers.borrow();
                timers.next_deadline().map(|d| d.saturating_duration_since(self.cx.clock.get()))
            };
            if timeout.is_none_or(|t| !t.is_zero()) && self.spin_for_posts(timeout) {
                self.drain_inbox();
                continue;
            }
            // After the spin: a hand-off it caught is no stall.
            if idle {
                timeout = self.stall(main, &mut stalled)?;
            }
            if timeout.is_none_or(|t| !t.is_zero()) {
                self.cx.stacks.borrow_mut().trim();
            }
            self.poll(timeout)?;
        }
    }

    /// Watches the inbox for up to `Config::spin_before_sleep` (and never
    /// past `timeout`) before the loop sleeps; returns whether a wake-up
    /// was posted meanwhile. Zero for a runtime of one worker.
    ///
    /// Only while spinning pays: after a wake-up from another thread
    /// (posted while the loop slept, spun or ran), not after a spin that
    /// caught nothing. A worker whose wake-ups come from I/O or timers
    /// (each connection served where it was accepted) never spins, and
    /// leaves the CPU to whoever needs it.
    ///
    /// While a coroutine waits for the blocking pool, every runtime spins
    /// for at least [`POOL_SPIN`]: the result comes from another thread,
    /// and a short call (a `stat`, a cached read) returns well within it,
    /// where a sleep in `epoll_wait` would add a thread wake-up (15 to 30
    /// µs on the CI VM) to each call. Not with more calls waiting than
    /// there are cores: then the pool's threads need the cores more than
    /// this thread needs a quick wake-up.
    fn spin_for_posts(&self, timeout: Option<Duration>) -> bool {
        let mut spin = self.cx.config.spin_before_sleep;
        let waits = self.cx.pool_waits.get() as usize;
        if waits > 0 && waits <= crate::blocking::cores() {
            spin = spin.max(POOL_SPIN);
        }
        if spin.is_zero() || !self.spin_pays.get() {
            return false;
        }
        let spin = timeout.map_or(spin, |t| t.min(spin));
        let start = Instant::now();
        loop {
            for _ in 0..64 {
                if self.cx.inbox_ref().has_posts() {
                    return true;
                }
                std::hint::spin_loop();
            }
            if start.elapsed() >= spin {
                self.spin_pays.set(false);
                return false;
            }
        }
    }

    /// Every task is parked, and no timer or I/O can wake one: is it a
    /// deadlock? `Err` with the report if so; otherwise how long to wait
    /// for something from outside (`None`: until it comes).
    ///
    /// * A wait on a primitive another thread or runtime has used (see
    ///   `sync/wait/touch.rs`), or in several queues at once (a select), can be
    ///   ended from outside: wait.
    /// * A worker of a runtime of several marks itself stalled on the
    ///   runtime's board and waits; worker 0 judges the runtime as a whole
    ///   when every worker is marked (`board.rs`), by the rules below.
    /// * Otherwise, if this is the only thread of the process (the only
    ///   threads are the runtime's workers), or no task waits on a
    ///   primitive at all (joins, scopes, a sleep with no deadline),
    ///   nothing can ever wake them: a deadlock.
    /// * Otherwise a thread may hold a handle it has not used yet (a
    ///   sender moved to a thread that is still computing): the runtime
    ///   waits for [`STALL_GRACE`], and reports the deadlock only if
    ///   nothing arrived meanwhile and the process's other threads used no
    ///   CPU time (a thread that computes keeps the grace going). What it
    ///   cannot see is a thread blocked for longer than that (in a read or
    ///   a sleep) that will then use its handle; DESIGN.md lists it.
    #[cold]
    fn stall(&self, main: &TaskCell, stalled: &mut Option<Stalled>) -> Result<Option<Duration>, String> {
        let board = self.cx.config.board.as_ref();
        // A worker's service coroutine waits for work on a queue of its
        // runtime: it keeps nothing alive, and a report leaves it out.
        let service = board.and_then(|(board, me)| board.service(*me));
        let mut on_primitives = false;
        for (_, task) in self.cx.tasks.borrow().iter() {
            if task.state.get() != TaskState::Parked {
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
            on_primitives |= Some(task.id().as_u64()) != service;
        }
        let Some((board, me)) = board else {
            let threads = other_threads();
            return self.judge(on_primitives, threads == Some(0), stalled, || self.deadlock_report(main));
        };
        let tasks = self.cx.tasks.borrow().len();
        let mut coroutines = collect::collect(&self.cx, collect::Stacks::Skip);
        coroutines.retain(|c| Some(c.id.as_u64()) != service);
        board.mark(*me, Stall { tasks, on_primitives, coroutines, at: Instant::now() });
        self.marked.set(true);
        if *me != 0 {
            // Worker 0 judges, once every worker is marked.
            return Ok(None);
        }
        match board.judge() {
            Verdict::Busy => {
                *stalled = None;
                Ok(None)
            }
            Verdict::Stalled { tasks, on_primitives, coroutines } => {
                // The other workers and their monitor thread.
                let alone = other_threads() == Some(board.len());
                let report = || {
                    let mut report = format!(
                        "green: deadlock: all {tasks} coroutines on the {} workers (main coroutine {:?}, id {}) \
                         are parked and nothing can wake them: no timer is armed, no I/O is awaited, and no \
                         thread outside the runtime has used what they wait on",
                        board.len(),
                        main.task().display_name(),
                        main.id()
                    );
                    report.push_str(&report_lines(coroutines, true));
                    report
                };
                self.judge(on_primitives, alone, stalled, report)
            }
        }
    }

    /// The last rules of [`Scheduler::stall`], for a runtime (or a runtime
    /// of several workers) stalled as a whole.
    fn judge(
        &self,
        on_primitives: bool,
        alone: bool,
        stalled: &mut Option<Stalled>,
        report: impl FnOnce() -> String,
    ) -> Result<Option<Duration>, String> {
        if !on_primitives || alone {
            return Err(report());
        }
        let now = self.cx.clock.get();
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
            _ => Err(report()),
        }
    }

    #[cold]
    fn deadlock_report(&self, main: &TaskCell) -> String {
        let mut report = format!(
            "green: deadlock: all {} coroutines (main coroutine {:?}, id {}) are parked and nothing can \
             wake them: no timer is armed, no I/O is awaited, and no other thread or runtime has used \
             what they wait on",
            self.cx.tasks.borrow().len(),
            main.task().display_name(),
            main.id()
        );
        report.push_str(&report_lines(collect::collect(&self.cx, collect::Stacks::Skip), false));
        report
    }

    /// The non-blocking poll between task switches: skipped entirely (no
    /// syscall, no clock read) when no task waits for I/O or a timer and
    /// no wake-up was posted, which costs three loads.
    #[inline(always)]
    fn poll_if_waiting(&self) -> Result<(), String> {
        if self.cx.reactor.waiters() == 0
            && self.cx.timers.borrow().len() == 0
            && !self.cx.inbox_ref().has_posts()
        {
            return Ok(());
        }
        self.poll_now()
    }

    /// [`Scheduler::poll_if_waiting`] when something may be waiting.
    #[inline(never)]
    fn poll_now(&self) -> Result<(), String> {
        self.drain_inbox();
        if self.cx.reactor.waiters() > 0 {
            self.poll(Some(Duration::ZERO))?;
        } else if self.cx.timers.borrow().len() > 0 {
            self.fire_timers();
        }
        Ok(())
    }

    /// Stores the parked and queued counts for `green::metrics`, between
    /// two task runs (no task is running).
    fn publish_gauges(&self) {
        let queued = self.cx.run_queue.len();
        let alive = self.cx.tasks.borrow().len();
        self.cx.metrics.publish(alive.saturating_sub(queued), queued);
    }

    /// Waits for I/O up to `timeout` (None = until an event), then wakes
    /// the tasks whose I/O is ready and whose timers are due.
    fn poll(&self, timeout: Option<Duration>) -> Result<(), String> {
        let mut due = self.due.take();
        match self.cx.reactor.poll(timeout, &mut due) {
            Ok(events) => self.cx.metrics.polled(events),
            Err(err) => return Err(format!("green: epoll_wait failed: {err}")),
        }
        // The poll may have slept: tasks that park next go by this time
        // (one clock read per poll, beside its system calls).
        self.cx.clock.set(Instant::now());
        for waker in due.drain(..) {
            park::wake(&self.cx, &waker, WakeReason::Ready);
        }
        self.due.replace(due);
        self.drain_inbox();
        self.fire_timers();
        Ok(())
    }

    /// Performs the wake-ups other threads have posted.
    fn drain_inbox(&self) {
        if !self.cx.inbox_ref().has_posts() {
            return;
        }
        if self.marked.get() {
            // Before the posts are taken: see `board.rs`.
            self.marked.set(false);
            if let Some((board, me)) = &self.cx.config.board {
                board.unmark(*me);
            }
        }
        let mut posted = self.posted.take();
        self.cx.inbox_ref().take(&mut posted);
        if !posted.is_empty() {
            self.spin_pays.set(true);
        }
        for post in posted.drain(..) {
            match post {
                Post::Wake(at) => {
                    park::wake_ref(&self.cx, at, WakeReason::Ready);
                }
                Post::Cancel { key, id } => park::cancel_ref(&self.cx, key, id),
                // A spawn from outside the runtime: the job spawns its task
                // here (it runs no user code itself).
                Post::Run(job) => job(),
            }
        }
        self.posted.replace(posted);
    }

    /// Wakes the tasks whose deadlines have passed.
    fn fire_timers(&self) {
        if self.cx.timers.borrow().len() == 0 {
            return;
        }
        let mut due = self.due.take();
        let now = Instant::now();
        self.cx.clock.set(now);
        self.cx.timers.borrow_mut().expire(now, &mut due);
        for waker in due.drain(..) {
            park::wake(&self.cx, &waker, WakeReason::TimedOut);
        }
        self.due.replace(due);
    }

    /// Switches to `task` until it parks, yields or finishes; returns
    /// whether it yielded with no other task runnable.
    fn run_task(&self, task: Rc<TaskCell>) -> bool {
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
            // waits of its destructors work (see `task/spawn.rs`).
            drop(coroutine);
            self.start(running);
            coroutine = running.coroutine.borrow_mut();
        }
        running.state.set(TaskState::Running);
        overflow::enter(&running.info);
        let switches = self.switches.get() + 1;
        self.switches.set(switches);
        self.stamp.enter(running.task(), switches);
        let previous = self.cx.current.replace(&task);
        debug_assert!(previous.is_null(), "run_task is not re-entrant");
        let result = coroutine.as_mut().expect("a runnable task has a coroutine").resume(());
        drop(coroutine);
        self.cx.current.set(ptr::null());
        self.stamp.leave();
        overflow::leave();
        if running.panicking.get() {
            self.note_switch_out(running, matches!(result, CoroutineResult::Return(())));
        }
        // Read twice rather than copied once: the check needs two fields,
        // and a copy kept for the rare report costs the whole bounds.
        if !running.info.stack.get().canary_top_intact() {
            overflow::report_canary(running.task(), &running.info.stack.get());
        }
        match result {
            CoroutineResult::Yield(Switch::Yield) => {
                running.state.set(TaskState::Runnable);
                let alone = self.cx.run_queue.is_empty();
                self.cx.run_queue.push_back(task);
                return alone;
            }
            // Whoever wakes it holds it now.
            CoroutineResult::Yield(Switch::Park) => {}
            CoroutineResult::Return(()) => self.finish(running),
        }
        false
    }

    /// Builds the coroutine of a task that runs for the first time, on the
    /// stack reserved for it at spawn.
    fn start(&self, task: &TaskCell) {
        let stack = self.cx.stacks.borrow_mut().take_reserved(task.info.stack.get().class);
        let bounds = stack.bounds();
        task.info.stack.set(bounds);
        task.debug.set_stack(bounds.limit, bounds.base);
        match task.slot.start(stack) {
            Ok(coroutine) => *task.coroutine.borrow_mut() = Some(coroutine),
            Err(_) => unreachable!("a queued task without a coroutine has a closure waiting"),
        }
    }

    /// Bookkeeping for [`Context::panicking`] after `task`, flagged as
    /// unwinding, switched back (`finished`: its body returned): its
    /// unwind is over if it finished or the thread no longer panics.
    #[cold]
    #[inline(never)]
    fn note_switch_out(&self, task: &TaskCell, finished: bool) {
        if finished || !thread::panicking() {
            self.cx.set_panicking(task, false);
        }
    }

    /// Bookkeeping after a task's closure has returned.
    fn finish(&self, task: &TaskCell) {
        task.state.set(TaskState::Done);
        self.cx.metrics.finished();
        let coroutine = task.coroutine.borrow_mut().take();
        if let Some(coroutine) = coroutine {
            self.recycle(coroutine, task);
        }
        self.cx.tasks.borrow_mut().try_remove(task.registry_key.get());
        self.cx.debug.remove(task.registry_key.get());
        let waiter = task.join_waiter.borrow_mut().take();
        if let Some(waiter) = waiter {
            park::wake(&self.cx, &waiter, WakeReason::Ready);
        }
    }

    fn recycle(&self, coroutine: TaskCoroutine, task: &TaskCell) {
        let stack: Stack = coroutine.into_stack();
        self.cx.stacks.borrow_mut().put(stack, task.task());
    }

    /// Cancels and unwinds every task still alive after the main one
    /// finished, so that their destructors run; loops because destructors
    /// may spawn. Always finishes: a task that refuses to die is leaked
    /// (see `task/teardown.rs`).
    fn shutdown(&self) {
        self.cx.shutting_down.set(true);
        self.cx.run_queue.clear();
        // A timed task may never resume now.
        self.cx.metrics.stop_sampling();
        loop {
            let tasks: Vec<Rc<TaskCell>> = self.cx.tasks.borrow_mut().drain().collect();
            self.cx.debug.clear();
            if tasks.is_empty() {
                break;
            }
            for task in tasks {
                self.tear_down(&task);
            }
        }
        *self.cx.timers.borrow_mut() = Timers::default();
        self.cx.reactor.clear();
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
        let in_unwind = thread::panicking() && (task.panicking.get() || !self.cx.any_task_panicking());
        task.teardown.set(if in_unwind { Teardown::RequestedInUnwind } else { Teardown::Requested });
        if task.coroutine.borrow().is_none() {
            self.start(task);
        }
        // Off its cell while it unwinds: no longer where debuggers look.
        task.debug.set_stack(0, 0);
        let Some(mut coroutine) = task.coroutine.borrow_mut().take() else { return };
        task.state.set(TaskState::Running);
        overflow::enter(&task.info);
        let switches = self.switches.get() + 1;
        self.switches.set(switches);
        self.stamp.enter(task.task(), switches);
        self.cx.current.set(task);
        let result = coroutine.resume(());
        self.cx.current.set(ptr::null());
        self.stamp.leave();
        overflow::leave();
        task.state.set(TaskState::Done);
        self.cx.metrics.finished();
        task.join_waiter.borrow_mut().take();
        match result {
            CoroutineResult::Return(()) => {
                self.cx.set_panicking(&**task, false);
                self.recycle(coroutine, task);
            }
            CoroutineResult::Yield(_) => {
                // Never resumed again: it no longer counts.
                self.cx.set_panicking(&**task, false);
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
            "green: coroutine '{}' (id {}) did not end when it was torn down at shutdown (it caught the \
             unwind and went on waiting, or it must outlive what another worker still uses); it is left \
             suspended and its stack is leaked",
            task.task().display_name(),
            task.id()
        );
        // SAFETY: abandoning frames without their destructors is sound if their memory is never reused or
        // freed (values may be pinned, queues may point in): the stack goes to `StackPool::leak`, which
        // never reuses nor unmaps it, and the coroutine is never resumed: as if suspended for good.
        unsafe { coroutine.force_reset() };
        self.cx.stacks.borrow_mut().leak(coroutine.into_stack());
    }

    /// Leaks every task left and the whole stack pool (see `Drop`).
    #[cold]
    fn leak_all(&self) {
        let tasks: Vec<Rc<TaskCell>> = self.cx.tasks.borrow_mut().drain().collect();
        self.cx.debug.clear();
        eprintln!("green: the runtime stopped with {} coroutines alive; they are leaked", tasks.len());
        self.cx.run_queue.clear();
        self.stacks_leaked.set(true);
        std::mem::forget(tasks);
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        // Spawns from outside are refused from now on.
        self.cx.inbox_ref().close();
        // Reached with tasks left only when `run` itself unwinds past the
        // loop (a bug in the runtime). A teardown needs a thread that is
        // not panicking (see `task/teardown.rs`), so then every task is
        // leaked, stacks included: nothing is freed that a suspended
        // coroutine or a queue pointing into its stack could touch.
        if !self.cx.tasks.borrow().is_empty() {
            if thread::panicking() {
                self.leak_all();
            } else {
                self.shutdown();
            }
        }
        if self.stacks_leaked.get() {
            // The stacks of the leaked coroutines lie in the pool's regions.
            let protection = self.cx.config.protection;
            std::mem::forget(self.cx.stacks.replace(StackPool::new(protection)));
        }
        Context::uninstall();
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

/// The lines of a deadlock report for `coroutines` (from one worker or
/// all of them; `workers`: name each one's worker): one per coroutine, in
/// order of ids, saying what it waits on and for how long, then one per
/// cycle of coroutines waiting on each other.
fn report_lines(coroutines: Vec<Coroutine>, workers: bool) -> String {
    let dump = Dump::new(coroutines, Vec::new());
    let mut listed: Vec<&Coroutine> = dump.coroutines().iter().collect();
    listed.sort_by_key(|c| c.id);
    let name = |id: TaskId| match dump.coroutine(id) {
        Some(c) => format!("coroutine '{}' (id {id})", c.display_name()),
        None => format!("coroutine {id}"),
    };
    let mut report = String::new();
    for c in listed {
        let on = if workers { format!(" on worker {}", c.worker) } else { String::new() };
        let what = match &c.waits_on {
            Some(wait) => {
                let holder = match wait.holder {
                    Some(Holder::Coroutine(id)) if wait.kind == WaitKind::Join => format!(" ({})", name(id)),
                    Some(Holder::Coroutine(id)) => format!(" held by {}", name(id)),
                    Some(Holder::Thread) => " held by a thread".to_owned(),
                    _ => String::new(),
                };
                format!("{}{holder}", wait.kind.phrase())
            }
            None => WaitKind::Unknown.phrase().to_owned(),
        };
        let _ = write!(report, "\n  {} (id {}){on} waits on {what}", quoted(c), c.id);
        if let Some(time) = c.in_state_for {
            let _ = write!(report, " for {time:.1?}");
        }
    }
    for cycle in dump.cycles() {
        let ring: Vec<String> = cycle.members.iter().map(|id| name(*id)).collect();
        let _ = write!(report, "\n  cycle: {}", ring[0]);
        for (at, next) in ring.iter().skip(1).chain(ring.first()).enumerate() {
            let _ = write!(report, "{} {next}", if at == 0 { " waits on" } else { ", which waits on" });
        }
    }
    report
}

/// A coroutine's name in quotes, as the report has always named it.
fn quoted(c: &Coroutine) -> String {
    format!("coroutine '{}'", c.display_name())
}

/// Threads of the process besides the calling one, from
/// `/proc/self/stat`; `None` if it cannot be read.
fn other_threads() -> Option<usize> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name, field 2, is in parentheses and may hold spaces:
    // count fields after its closing one. `num_threads` is field 20.
    let after = stat.rsplit_once(')')?.1;
    let threads: usize = after.split_whitespace().nth(17)?.parse().ok()?;
    // The watchdog's thread and the SIGQUIT dump's never wake a coroutine.
    threads.checked_sub(1 + crate::watchdog::threads() + crate::dump::signal::threads())
}

/// This worker's index in a runtime of several.
fn config_label(cx: &Context) -> Option<usize> {
    cx.config.board.as_ref().map(|(_, k)| *k)
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
