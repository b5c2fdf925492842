//! Workers: one runtime per OS thread, sharing the tasks that have not
//! started yet.
//!
//! A runtime built with `Builder::workers(n)` is `n` runtimes, each on its
//! own thread with its own scheduler, reactor, timers and stacks; the
//! calling thread is worker 0 and runs `main`. What crosses between them is
//! only work that has not started: a distributed spawn (`F: Send`) becomes
//! a [`Job`] in a worker's queue, and whichever worker takes it spawns it
//! there as a local task, which then never moves (DESIGN.md, "Every
//! core"). Wake-ups of started tasks cross through the inbox as before.
//!
//! Each worker runs a *service* coroutine that takes jobs: from its own
//! queue first, then, when that is empty, from the other workers' queues
//! (stealing half of what one holds), and only then parks, ringing for
//! work. A spawn goes to the spawning worker's own queue; it rings that
//! worker's bell if its service is parked, and, if some other worker is
//! idle, that one worker's bell too, so that it comes and steals: one
//! worker is woken per spawn at most, never all of them.
//!
//! A queue is a `VecDeque` under a mutex, and a bell is a `green`
//! channel of capacity 1 that carries nothing: a worker parked on its
//! bell is woken through its inbox like any coroutine waiting on a channel,
//! and an idle worker sits in `epoll_wait`, using no CPU. The jobs never
//! travel through the bell, so a job is always in a queue where any worker
//! can steal it until one starts it: a worker that is stuck (a coroutine
//! spinning on the CPU) strands none.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::board::Board;
use crate::channel::{self, Receiver, RecvError, Sender};

/// The most workers a runtime may have.
pub(crate) const MAX_WORKERS: usize = 1024;

/// How often the monitor looks for stuck workers (see `Group::monitor`):
/// the longest a job queued behind a coroutine that holds its worker's
/// thread waits for an idle worker, give or take one tick.
const MONITOR_TICK: Duration = Duration::from_millis(2);

/// Looks in a row that find every queue empty before the monitor sleeps.
const MONITOR_NAPS: u32 = 50;

pub(crate) use crate::inbox::Job;

/// One worker's share of the group.
struct Worker {
    /// Its queue of unstarted tasks.
    queue: Mutex<Queue>,
    /// How many jobs `queue.jobs` holds, read without the lock by stealers
    /// looking for work.
    len: AtomicUsize,
    /// Its service is parked on its bell.
    idle: AtomicBool,
    /// Jobs its service has taken so far: the monitor's sign that the
    /// worker is not stuck.
    progress: AtomicU64,
    /// Rings the bell: wakes the service if it is parked, or makes its next
    /// wait end at once.
    ring: Sender<()>,
    /// The bell the service parks on.
    bell: Receiver<()>,
}

/// A worker's queue.
#[derive(Default)]
struct Queue {
    /// Tasks to start, by this worker or one that steals them, oldest
    /// first.
    jobs: VecDeque<Job>,
    /// Tasks to start on this worker only.
    pinned: VecDeque<Job>,
    /// The group has stopped: nothing is queued any more.
    closed: bool,
}

/// The workers of one runtime.
pub(crate) struct Group {
    /// One per worker.
    workers: Vec<Worker>,
    /// How many services are parked on their bells.
    idle_count: AtomicUsize,
    /// `main` has returned: jobs still queued are dropped, not started.
    stopping: AtomicBool,
    /// Where a spawn from outside any worker goes next (round robin).
    next: AtomicUsize,
    /// Where the workers say they have stalled (`board.rs`).
    board: Arc<Board>,
    /// The monitor sleeps on it once every queue has been empty for a
    /// while; `true` while it does.
    monitor: (Mutex<bool>, Condvar),
    /// The monitor is asleep: read without the lock by a spawn that rings
    /// nobody.
    monitor_asleep: AtomicBool,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("workers", &self.workers.len()).finish_non_exhaustive()
    }
}

thread_local! {
    /// The group this thread is a worker of, and its index in it.
    static SEAT: RefCell<Option<(Arc<Group>, usize)>> = const { RefCell::new(None) };
}

/// What a service takes from its own queue.
enum Own {
    /// A job to start.
    Job(Job),
    /// Nothing queued.
    Empty,
    /// The group has stopped.
    Closed,
}

impl Group {
    /// A group of `workers` queues, none taken yet, whose workers mark
    /// their stalls on `board`.
    pub(crate) fn new(workers: usize, board: Arc<Board>) -> Group {
        // Every worker rings every bell, but they all count as one runtime
        // (see `board.rs`): a bell stays local until a thread outside the
        // runtime spawns through a `green::Handle`.
        let workers = (0..workers)
            .map(|_| {
                let (ring, bell) = channel::bounded(1);
                bell.waits_as(crate::dump::kind::WaitKind::Jobs);
                Worker {
                    queue: Mutex::new(Queue::default()),
                    len: AtomicUsize::new(0),
                    idle: AtomicBool::new(false),
                    progress: AtomicU64::new(0),
                    ring,
                    bell,
                }
            })
            .collect();
        Group {
            workers,
            idle_count: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            next: AtomicUsize::new(0),
            board,
            monitor: (Mutex::new(false), Condvar::new()),
            monitor_asleep: AtomicBool::new(false),
        }
    }

    /// The identity the group's workers record on primitives
    /// (`board.rs`).
    pub(crate) fn home(&self) -> u64 {
        self.board.home()
    }

    /// How many workers the group has.
    pub(crate) fn len(&self) -> usize {
        self.workers.len()
    }

    /// Makes this thread worker `me` of `group` for as long as the returned
    /// guard lives.
    pub(crate) fn sit(group: &Arc<Group>, me: usize) -> Seat {
        SEAT.with(|seat| *seat.borrow_mut() = Some((group.clone(), me)));
        Seat(())
    }

    /// Queues `job` on the calling worker's own queue (on each worker's in
    /// turn, from a thread that is no worker of this group), and rings for
    /// it: that worker's bell if its service is parked, and one other idle
    /// worker's, to come and steal it. Returns the job if the group is
    /// stopping.
    pub(crate) fn push(&self, me: Option<usize>, job: Job) -> Result<(), Job> {
        let target = me.unwrap_or_else(|| self.next.fetch_add(1, Ordering::Relaxed) % self.len());
        let worker = &self.workers[target];
        let queued_before = {
            let mut queue = lock(&worker.queue);
            if queue.closed {
                return Err(job);
            }
            queue.jobs.push_back(job);
            worker.len.store(queue.jobs.len(), Ordering::Relaxed);
            queue.jobs.len() - 1
        };
        // With the fence in `serve`: a service that marks itself idle after
        // this looks at the queues again before it parks, and finds the job;
        // one that marked itself before is seen idle here.
        fence(Ordering::SeqCst);
        let target_idle = self.claim(target);
        if target_idle {
            self.ring(target);
        }
        // Another worker comes to steal when there is more than the target
        // takes next, or when the target's service was parked (the spawner
        // is no job it started, and may hold the thread for long), or the
        // spawn comes from outside. Otherwise the spawner is a task the
        // target's service has just started and which will likely end or
        // park soon, and the job stays where it is, as a chain of spawns
        // would (Go's `runnext`, tokio's LIFO slot): if the spawner holds
        // the thread instead, the monitor sees the worker make no progress
        // and rings an idle worker (`Group::monitor`).
        if queued_before > 0 || target_idle || me.is_none() {
            if self.idle_count.load(Ordering::Relaxed) > 0
                && let Some(other) = self.others(target).find(|&other| self.claim(other))
            {
                self.ring(other);
            }
        } else if self.monitor_asleep.load(Ordering::Relaxed) {
            self.wake_monitor();
        }
        Ok(())
    }

    /// Queues `job` for worker `worker` only (no other worker steals it).
    /// Returns the job if the group is stopping.
    pub(crate) fn pin(&self, worker: usize, job: Job) -> Result<(), Job> {
        {
            let mut queue = lock(&self.workers[worker].queue);
            if queue.closed {
                return Err(job);
            }
            queue.pinned.push_back(job);
        }
        fence(Ordering::SeqCst);
        // Rung whether or not its service is parked: a busy one finds the
        // ring at its next wait and looks again.
        self.claim(worker);
        self.ring(worker);
        Ok(())
    }

    /// Takes worker `worker` off the idle ones, if it is idle: the caller
    /// rings it.
    fn claim(&self, worker: usize) -> bool {
        let idle = &self.workers[worker].idle;
        if idle.load(Ordering::Relaxed) && idle.swap(false, Ordering::AcqRel) {
            self.idle_count.fetch_sub(1, Ordering::Relaxed);
            return true;
        }
        false
    }

    /// Rings worker `worker`'s bell.
    fn ring(&self, worker: usize) {
        // Full: it has been rung already and has not looked yet.
        let _ = self.workers[worker].ring.try_send(());
    }

    /// The service loop of worker `me`: starts queued jobs, steals when its
    /// queue is empty, parks on its bell when every queue is. Returns when
    /// the group stops (or the worker is torn down while it waits).
    pub(crate) fn serve(&self, me: usize) {
        // A deadlock report leaves this coroutine out: it waits for work.
        self.board.set_service(me, crate::task::current().id().as_u64());
        loop {
            let job = match self.take_own(me) {
                Own::Job(job) => job,
                Own::Closed => return,
                Own::Empty => match self.steal(me) {
                    Some(job) => job,
                    None => {
                        self.workers[me].idle.store(true, Ordering::Relaxed);
                        self.idle_count.fetch_add(1, Ordering::Relaxed);
                        fence(Ordering::SeqCst);
                        // Work queued between the look above and the idle
                        // mark rang nobody: look once more before parking.
                        let nothing = !self.has_own(me) && !self.stealable(me);
                        let rang = if nothing { self.workers[me].bell.recv() } else { Ok(()) };
                        // Rung by a spawner, which took the mark down; or
                        // not: take it down here.
                        self.claim(me);
                        match rang {
                            Ok(()) => continue,
                            // This worker is being torn down.
                            Err(RecvError::Cancelled | RecvError::Disconnected) => return,
                        }
                    }
                },
            };
            self.workers[me].progress.fetch_add(1, Ordering::Relaxed);
            if self.stopping.load(Ordering::Acquire) {
                drop(job);
                continue;
            }
            job();
            // The task just spawned, and every other runnable one, run
            // before this worker takes another job: the rest stay queued,
            // where idle workers can take them.
            crate::time::yield_now();
        }
    }

    /// Takes the next job of worker `me`'s own queue, pinned ones first.
    /// Once the group has stopped, drops what is left (here, inside the
    /// service coroutine: a closure's destructor may wait) and says so.
    fn take_own(&self, me: usize) -> Own {
        let worker = &self.workers[me];
        let mut queue = lock(&worker.queue);
        if queue.closed {
            let jobs = std::mem::take(&mut queue.jobs);
            let pinned = std::mem::take(&mut queue.pinned);
            worker.len.store(0, Ordering::Relaxed);
            drop(queue);
            drop((jobs, pinned));
            return Own::Closed;
        }
        if let Some(job) = queue.pinned.pop_front() {
            return Own::Job(job);
        }
        match queue.jobs.pop_front() {
            Some(job) => {
                worker.len.store(queue.jobs.len(), Ordering::Relaxed);
                Own::Job(job)
            }
            None => Own::Empty,
        }
    }

    /// Whether worker `me`'s own queue has something to take (or has
    /// closed).
    fn has_own(&self, me: usize) -> bool {
        let queue = lock(&self.workers[me].queue);
        queue.closed || !queue.pinned.is_empty() || !queue.jobs.is_empty()
    }

    /// Whether another worker's queue has a job to steal.
    fn stealable(&self, me: usize) -> bool {
        self.others(me).any(|other| self.workers[other].len.load(Ordering::Relaxed) > 0)
    }

    /// The other workers, from the one after `me` round.
    fn others(&self, me: usize) -> impl Iterator<Item = usize> + '_ {
        let n = self.len();
        (1..n).map(move |offset| (me + offset) % n)
    }

    /// Takes half of the jobs of the first other worker that has any (the
    /// oldest, at least one): returns the first and queues the rest on
    /// worker `me`'s own queue.
    fn steal(&self, me: usize) -> Option<Job> {
        let (first, rest) = self.others(me).find_map(|other| {
            let victim = &self.workers[other];
            if victim.len.load(Ordering::Relaxed) == 0 {
                return None;
            }
            let mut queue = lock(&victim.queue);
            if queue.closed || queue.jobs.is_empty() {
                return None;
            }
            let take = queue.jobs.len().div_ceil(2);
            let mut taken: VecDeque<Job> = queue.jobs.drain(..take).collect();
            victim.len.store(queue.jobs.len(), Ordering::Relaxed);
            drop(queue);
            taken.pop_front().map(|first| (first, taken))
        })?;
        crate::context::Context::with(|cx| cx.metrics.stole(1 + rest.len()));
        if !rest.is_empty() {
            let mine = &self.workers[me];
            let mut queue = lock(&mine.queue);
            if queue.closed {
                drop(queue);
                // Stopping: dropped unstarted, here in the service.
                drop(rest);
            } else {
                queue.jobs.extend(rest);
                mine.len.store(queue.jobs.len(), Ordering::Relaxed);
            }
        }
        Some(first)
    }

    /// Stops the group once `main` has returned: no job starts any more, and
    /// every worker's service loop ends, dropping the jobs left in its queue;
    /// the monitor ends too.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        for worker in &self.workers {
            lock(&worker.queue).closed = true;
        }
        for me in 0..self.len() {
            self.claim(me);
            self.ring(me);
        }
        self.wake_monitor();
    }

    /// The monitor: a thread of its own that, every [`MONITOR_TICK`], looks
    /// for a worker whose queue holds jobs while its service has taken none
    /// since the last look (a coroutine holds its thread: it is stuck, or
    /// computing), and rings an idle worker to come and steal them. Once
    /// every queue has been empty for [`MONITOR_NAPS`] looks in a row it
    /// sleeps until a spawn that rang nobody wakes it, so that an idle
    /// runtime uses no CPU. Returns when the group stops.
    pub(crate) fn monitor(&self) {
        let mut last: Vec<u64> = vec![u64::MAX; self.len()];
        let mut empty_looks = 0;
        let (asleep, bell) = &self.monitor;
        let mut guard = asleep.lock().unwrap_or_else(PoisonError::into_inner);
        while !self.stopping.load(Ordering::Acquire) {
            let mut queued = false;
            for (index, worker) in self.workers.iter().enumerate() {
                let progress = worker.progress.load(Ordering::Relaxed);
                if worker.len.load(Ordering::Relaxed) > 0 {
                    queued = true;
                    if progress == last[index]
                        && let Some(other) = self.others(index).find(|&other| self.claim(other))
                    {
                        self.ring(other);
                    }
                }
                last[index] = progress;
            }
            empty_looks = if queued { 0 } else { empty_looks + 1 };
            if empty_looks >= MONITOR_NAPS {
                *guard = true;
                self.monitor_asleep.store(true, Ordering::SeqCst);
                // A spawn queued between the look and the mark found the
                // monitor awake and did not wake it: look once more.
                if self.workers.iter().all(|worker| worker.len.load(Ordering::SeqCst) == 0) {
                    while *guard && !self.stopping.load(Ordering::Acquire) {
                        guard = bell.wait(guard).unwrap_or_else(PoisonError::into_inner);
                    }
                }
                *guard = false;
                self.monitor_asleep.store(false, Ordering::SeqCst);
                empty_looks = 0;
            } else {
                guard = bell.wait_timeout(guard, MONITOR_TICK).unwrap_or_else(PoisonError::into_inner).0;
            }
        }
    }

    /// Wakes the monitor if it sleeps.
    fn wake_monitor(&self) {
        let (asleep, bell) = &self.monitor;
        *asleep.lock().unwrap_or_else(PoisonError::into_inner) = false;
        bell.notify_one();
    }
}

/// Locks a queue; a panic cannot leave one half-changed, so poisoning is
/// ignored.
fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The group the calling thread is a worker of, if any: for a runtime
/// handle, which keeps it.
pub(crate) fn current_group() -> Option<Arc<Group>> {
    SEAT.with(|seat| seat.borrow().as_ref().map(|(group, _)| group.clone()))
}

/// Calls `f` with the calling thread's group and its index in it, if it is
/// a worker of a runtime of several.
pub(crate) fn with_seat<R>(f: impl FnOnce(Option<(&Group, usize)>) -> R) -> R {
    SEAT.with(|seat| f(seat.borrow().as_ref().map(|(group, me)| (&**group, *me))))
}

/// A thread's place in a group; leaving it when dropped.
#[derive(Debug)]
pub(crate) struct Seat(());

impl Drop for Seat {
    fn drop(&mut self) {
        SEAT.with(|seat| seat.borrow_mut().take());
    }
}
