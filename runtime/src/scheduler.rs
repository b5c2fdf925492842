//! The scheduler: one per OS thread, owning every coroutine spawned on it.
//!
//! # The loop
//!
//! ```text
//!   loop {
//!       pop a Runnable task, switch to it, until it parks/yields/finishes
//!       every EVENT_INTERVAL switches: poll epoll with timeout 0, fire due timers
//!       run queue empty:
//!           block in epoll_wait until the earliest timer deadline or an I/O event
//!           fire due timers
//!   }
//! ```
//!
//! The loop ends when the main coroutine finishes. An idle runtime sits in
//! `epoll_wait` and uses no CPU. If the run queue is empty and nothing could
//! ever wake a task (no timer armed, no I/O awaited) the loop panics with a
//! deadlock report instead of sleeping forever.
//!
//! # Invariants
//!
//! * **A coroutine never changes OS thread once started.** The scheduler is
//!   reachable only through a thread-local of the thread that created it,
//!   tasks (`TaskCell`) are `!Send`, and no API moves a coroutine. Values on
//!   a coroutine's stack may therefore be `!Send` and may use thread-locals,
//!   exactly as on a thread.
//! * **No coroutine is resumed while a borrow of scheduler state is held.**
//!   Every `RefCell` borrow below ends before `resume`; wakers found while
//!   polling are collected first and woken after the reactor's borrows end.
//! * **The scheduler outlives its coroutines.** `run` tears down every task
//!   (unwinding its stack) before the scheduler is dropped, also when `run`
//!   itself unwinds, and the thread-local pointer is cleared last.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use corosensei::CoroutineResult;
use slab::Slab;

use crate::inbox::{Inbox, Posted, TaskRef};
use crate::park::{self, WakeReason, Waker};
use crate::reactor::Reactor;
use crate::stack::{Protection, Stack, StackBounds, StackPool, overflow};
use crate::task::cell::{State, TaskCell, TaskCoroutine, TaskYielder};
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
    /// Tasks parked on a shared primitive, where another thread may wake
    /// them; while non-zero, a stall cannot be called a deadlock.
    remote_waits: Cell<usize>,
    /// Reused buffer for draining the inbox.
    posted: RefCell<Vec<Posted>>,
    /// Stacks of finished tasks, for reuse.
    stacks: RefCell<StackPool>,
    /// Defaults for spawned tasks.
    config: Config,
    /// Set once the main task has finished: parks no longer suspend.
    shutting_down: Cell<bool>,
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
            remote_waits: Cell::new(0),
            posted: RefCell::new(Vec::new()),
            stacks: RefCell::new(StackPool::new(config.protection)),
            config,
            shutting_down: Cell::new(false),
            due: RefCell::new(Vec::new()),
        };
        // Cleared by `Drop for Scheduler`, also when `run` unwinds.
        CURRENT.set(&scheduler);
        let result = crate::task::Packet::new();
        let size = scheduler.config.stack_size;
        let body = crate::task::body(main, |outcome| result.set(outcome));
        let main_task: Rc<TaskCell> = Rc::new(TaskCell::new(name, ()));
        // The main coroutine cannot outlive this call: `shutdown` below
        // drops every coroutine before `run` returns, and so does dropping
        // `scheduler` if `run` unwinds.
        // SAFETY: so what `main` borrows from the caller outlives it.
        let spawned = unsafe { scheduler.spawn_unchecked(main_task.clone(), size, body) };
        if let Err(err) = spawned {
            panic!("{err}");
        }
        scheduler.run_until_done(&main_task);
        scheduler.shutdown();
        drop(main_task);
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
    fn with_current<R>(&self, f: impl FnOnce(&Rc<TaskCell>) -> R) -> Option<R> {
        let current = self.current.get();
        if current.is_null() {
            return None;
        }
        // The `Rc` that `run_task` or `tear_down` keeps in its frame, unmoved,
        // until it resets `current` after the task switches back; the task
        // runs only meanwhile, and `f` cannot keep the reference.
        // SAFETY: so a non-null `current` points to a live `Rc`.
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
        let coroutine = unsafe { TaskCoroutine::with_stack_unchecked(stack, body) };
        *task.coroutine.borrow_mut() = Some(coroutine);
        let key = self.tasks.borrow_mut().insert(task.clone());
        task.registry_key.set(key);
        self.run_queue.push(task);
        Ok(())
    }

    fn run_until_done(&self, main: &TaskCell) {
        let mut budget = EVENT_INTERVAL;
        loop {
            loop {
                let next = self.run_queue.pop();
                let Some(task) = next else { break };
                self.run_task(task);
                if main.is_done() {
                    return;
                }
                budget -= 1;
                if budget == 0 {
                    budget = EVENT_INTERVAL;
                    self.poll_if_waiting();
                }
            }
            let timeout = {
                let timers = self.timers.borrow();
                if timers.len() == 0 && self.reactor.waiters() == 0 && self.remote_waits.get() == 0 {
                    drop(timers);
                    self.report_deadlock(main);
                }
                timers.next_deadline().map(|d| d.saturating_duration_since(Instant::now()))
            };
            if timeout.is_none_or(|t| !t.is_zero()) {
                self.stacks.borrow_mut().trim();
            }
            self.poll(timeout);
        }
    }

    #[cold]
    fn report_deadlock(&self, main: &TaskCell) -> ! {
        let parked = self.tasks.borrow().len();
        panic!(
            "green: deadlock: all {parked} coroutines (main coroutine {:?}, id {}) are parked and \
             nothing can wake them: no timer is armed and no I/O is awaited",
            main.info.owner.name.as_deref().unwrap_or("<unnamed>"),
            main.info.owner.id
        );
    }

    /// The non-blocking poll between task switches: skipped entirely (no
    /// syscall, no clock read) when no task waits for I/O or a timer.
    fn poll_if_waiting(&self) {
        self.drain_inbox();
        if self.reactor.waiters() > 0 {
            self.poll(Some(Duration::ZERO));
        } else if self.timers.borrow().len() > 0 {
            self.fire_timers();
        }
    }

    /// Waits for I/O up to `timeout` (None = until an event), then wakes
    /// the tasks whose I/O is ready and whose timers are due.
    fn poll(&self, timeout: Option<Duration>) {
        let mut due = self.due.take();
        if let Err(err) = self.reactor.poll(timeout, &mut due) {
            panic!("green: epoll_wait failed: {err}");
        }
        for waker in due.drain(..) {
            waker.wake(WakeReason::Ready);
        }
        self.due.replace(due);
        self.drain_inbox();
        self.fire_timers();
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

    /// Counts a task that parks where another thread may wake it.
    #[inline]
    pub(crate) fn remote_wait_begins(&self) {
        self.remote_waits.set(self.remote_waits.get() + 1);
    }

    /// Undoes [`Scheduler::remote_wait_begins`].
    #[inline]
    pub(crate) fn remote_wait_ends(&self) {
        self.remote_waits.set(self.remote_waits.get() - 1);
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
            drop(coroutine);
            if running.cancel.is_requested() {
                // Cancelled before it ever ran: its closure never runs.
                self.discard_unstarted(running);
                self.finish(running);
                return;
            }
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

    /// Drops the closure of a task that never started and gives up its
    /// stack reservation.
    fn discard_unstarted(&self, task: &TaskCell) {
        self.stacks.borrow_mut().unreserve(task.info.stack.get().class);
        if panic::catch_unwind(AssertUnwindSafe(|| task.slot.drop_body())).is_err() {
            report_discarded_panic(task);
        }
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

    /// See [`park::park`].
    #[inline(always)]
    pub(crate) fn park(&self, deadline: Option<Instant>) -> WakeReason {
        let task = self.current_task();
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
            return WakeReason::Cancelled;
        }
        // The common case, no deadline, no scope and no request, reads no
        // clock and arms no timer; the rest is out of line, so that the
        // common case needs few registers round the switch.
        if deadline.is_some() || !task.cancel.is_idle() {
            return self.park_timed(task, deadline);
        }
        task.state.set(State::Parked);
        self.suspend(task, Switch::Park);
        task.reason.get()
    }

    /// [`Scheduler::park_task`] with a deadline, a scope or a cancellation
    /// request: looks at the clock, and arms a timer for the nearest
    /// deadline.
    #[inline(never)]
    fn park_timed(&self, task: &TaskCell, deadline: Option<Instant>) -> WakeReason {
        let now = Instant::now();
        if !task.cancel.is_idle() && task.cancel.deliver(now) {
            return WakeReason::Cancelled;
        }
        if deadline.is_some_and(|d| d <= now) {
            return WakeReason::TimedOut;
        }
        let mut wake_at = deadline;
        if let Some(scope) = task.cancel.next_deadline() {
            wake_at = Some(wake_at.map_or(scope, |d| d.min(scope)));
        }
        let timer = wake_at.map(|d| self.timers.borrow_mut().insert(d, park::waker_for(self.current_task())));
        task.state.set(State::Parked);
        self.suspend(task, Switch::Park);
        let reason = task.reason.get();
        if let Some(timer) = timer {
            if reason != WakeReason::TimedOut {
                self.timers.borrow_mut().cancel(timer);
            }
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
        if self.shutting_down.get() {
            return self.has_current();
        }
        let Some(yielder) = self.with_current(|task| task.yielder.get()) else { return false };
        // SAFETY: as in `suspend`: the yielder lives on the running task's
        // own stack, which is live while it runs.
        unsafe { &*yielder }.suspend(Switch::Yield);
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

    /// Records the running task's yielder; called once when it starts.
    pub(crate) fn set_yielder(&self, yielder: &TaskYielder) {
        self.current_task().yielder.set(yielder);
    }

    /// Cancels and unwinds every task still alive after the main one
    /// finished, so that their destructors run; loops because destructors
    /// may spawn.
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

    /// Unwinds one task's stack (running its destructors) and recycles it.
    fn tear_down(&self, task: &Rc<TaskCell>) {
        if task.is_done() {
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
        let coroutine = task.coroutine.borrow_mut().take();
        if let Some(mut coroutine) = coroutine {
            overflow::enter(&task.info);
            self.current.set(task);
            let unwound = panic::catch_unwind(AssertUnwindSafe(|| coroutine.force_unwind()));
            self.current.set(ptr::null());
            overflow::leave();
            match unwound {
                Ok(()) => self.recycle(coroutine, task),
                Err(_) => {
                    // Reached only if the coroutine never ran (in one that
                    // has, a destructor that panics during the unwind aborts
                    // the process, as it would on a thread): dropping its
                    // closure panicked part-way and the coroutine cannot tell
                    // what is left to drop. Forgetting it leaks the rest and
                    // its stack (unmapped with the pool); dropping it would
                    // drop the closure twice.
                    report_discarded_panic(task);
                    std::mem::forget(coroutine);
                }
            }
        } else {
            self.discard_unstarted(task);
        }
        task.state.set(State::Done);
        task.join_waiter.borrow_mut().take();
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
        // Reached normally after `shutdown`; on a panic out of `run` (a
        // deadlock report, say), tear down what is left so that no coroutine
        // outlives its stack pool. The destructors that run meanwhile still
        // find this scheduler, which has not moved since `run` published it.
        if !self.tasks.borrow().is_empty() {
            self.shutdown();
        }
        CURRENT.set(ptr::null());
    }
}

/// Says on stderr that dropping the closure of a never-started task
/// panicked and that the panic was dropped.
fn report_discarded_panic(task: &TaskCell) {
    eprintln!(
        "green: dropping the closure of coroutine '{}' (id {}), which was cancelled before it started, \
         panicked; the panic was discarded",
        task.info.owner.name.as_deref().unwrap_or("<unnamed>"),
        task.info.owner.id
    );
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
