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
//! (stealing), and only then parks on its own queue. A spawn goes to the
//! spawning worker's own queue and, if some worker is parked idle, sends
//! that one worker a nudge to come and steal: one worker is woken per
//! spawn at most, never all of them.
//!
//! The queues are `green` channels (unbounded, many senders, many
//! receivers): a worker parked on its queue is woken through its inbox
//! like any coroutine waiting on a channel, and an idle worker sits in
//! `epoll_wait`, using no CPU.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::board::Board;
use crate::channel::{self, Receiver, Sender, TryRecvError};

/// The most workers a runtime may have.
pub(crate) const MAX_WORKERS: usize = 1024;

pub(crate) use crate::inbox::Job;

/// What a worker's queue carries.
enum Message {
    /// A task to start, by this worker or one that steals it.
    Run(Job),
    /// A task to start on this worker only: a stealer puts it back.
    Pinned(Job),
    /// A nudge to an idle worker: work may wait in another queue.
    Steal,
    /// The group stops: the worker's service loop ends.
    Stop,
}

/// The workers of one runtime.
pub(crate) struct Group {
    /// Each worker's queue of unstarted tasks.
    senders: Vec<Sender<Message>>,
    /// The same queues' receiving ends: a worker takes from its own, and
    /// steals from the others'.
    receivers: Vec<Receiver<Message>>,
    /// Workers parked on their empty queues, the most recent last.
    idle: Mutex<Vec<usize>>,
    /// How many are in `idle`, read without the lock by every spawn: most
    /// spawns find no idle worker and take no lock.
    idle_count: AtomicUsize,
    /// `main` has returned: jobs still queued are dropped, not started.
    stopping: AtomicBool,
    /// Where a spawn from outside any worker goes next (round robin).
    next: AtomicUsize,
    /// Where the workers say they have stalled (`board.rs`).
    board: Arc<Board>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group").field("workers", &self.senders.len()).finish_non_exhaustive()
    }
}

thread_local! {
    /// The group this thread is a worker of, and its index in it.
    static SEAT: RefCell<Option<(Arc<Group>, usize)>> = const { RefCell::new(None) };
}

impl Group {
    /// A group of `workers` queues, none taken yet, whose workers mark
    /// their stalls on `board`.
    pub(crate) fn new(workers: usize, board: Arc<Board>) -> Group {
        // Every worker uses every queue, but they all count as one runtime
        // (see `board.rs`): a queue stays local until a thread outside the
        // runtime spawns on it through a `green::Handle`.
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..workers).map(|_| channel::unbounded()).unzip();
        Group {
            senders,
            receivers,
            idle: Mutex::new(Vec::new()),
            idle_count: AtomicUsize::new(0),
            stopping: AtomicBool::new(false),
            next: AtomicUsize::new(0),
            board,
        }
    }

    /// The identity the group's workers record on primitives
    /// (`board.rs`).
    pub(crate) fn home(&self) -> u64 {
        self.board.home()
    }

    /// How many workers the group has.
    pub(crate) fn len(&self) -> usize {
        self.senders.len()
    }

    /// Makes this thread worker `me` of `group` for as long as the returned
    /// guard lives.
    pub(crate) fn sit(group: &Arc<Group>, me: usize) -> Seat {
        SEAT.with(|seat| *seat.borrow_mut() = Some((group.clone(), me)));
        Seat(())
    }

    /// Queues `job` on the calling worker's own queue (on worker 0's, round
    /// robin, from a thread that is no worker of this group), and nudges
    /// one idle worker to come and steal it. Returns the job if the group
    /// is stopping.
    pub(crate) fn push(&self, me: Option<usize>, job: Job) -> Result<(), Job> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(job);
        }
        let target = me.unwrap_or_else(|| self.next.fetch_add(1, Ordering::Relaxed) % self.len());
        if let Err(err) = self.senders[target].send(Message::Run(job)) {
            return match err.into_inner() {
                Message::Run(job) | Message::Pinned(job) => Err(job),
                Message::Steal | Message::Stop => Ok(()),
            };
        }
        // SeqCst, with the store in `set_idle` and the queue's own lock:
        // a worker that marks itself idle after this load looks at the
        // queues again before it parks, and finds the job.
        if self.idle_count.load(Ordering::SeqCst) == 0 {
            return Ok(());
        }
        let idle = {
            let mut list = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            let worker = list.pop();
            self.idle_count.store(list.len(), Ordering::SeqCst);
            worker
        };
        if let Some(worker) = idle.filter(|&worker| worker != target) {
            // The nudge may find the worker awake already: it then steals,
            // finds nothing or something, and parks again; nothing is lost.
            let _ = self.senders[worker].send(Message::Steal);
        }
        Ok(())
    }

    /// Queues `job` for worker `worker` only (no other worker steals it).
    /// Returns the job if the group is stopping.
    pub(crate) fn pin(&self, worker: usize, job: Job) -> Result<(), Job> {
        if self.stopping.load(Ordering::Acquire) {
            return Err(job);
        }
        self.senders[worker].send(Message::Pinned(job)).map_err(|err| match err.into_inner() {
            Message::Run(job) | Message::Pinned(job) => job,
            Message::Steal | Message::Stop => unreachable!("a job was sent"),
        })
    }

    /// The service loop of worker `me`: starts queued jobs, steals when its
    /// queue is empty, parks when every queue is. Returns when the group
    /// stops (or the worker is torn down while it waits).
    pub(crate) fn serve(&self, me: usize) {
        // A deadlock report leaves this coroutine out: it waits for work.
        self.board.set_service(me, crate::task::current().id().as_u64());
        let own = &self.receivers[me];
        loop {
            let message = match own.try_recv() {
                Ok(message) => message,
                Err(TryRecvError::Disconnected) => return,
                Err(TryRecvError::Empty) => match self.steal(me) {
                    Some(job) => Message::Run(job),
                    None => {
                        self.set_idle(me, true);
                        // Work pushed elsewhere between the steal and the
                        // idle mark found no idle worker to nudge: look once
                        // more before parking.
                        let message = match self.steal(me) {
                            Some(job) => Ok(Message::Run(job)),
                            None => own.recv(),
                        };
                        self.set_idle(me, false);
                        match message {
                            Ok(message) => message,
                            // This worker is being torn down.
                            Err(_) => return,
                        }
                    }
                },
            };
            match message {
                Message::Run(job) | Message::Pinned(job) if self.stopping.load(Ordering::Acquire) => {
                    drop(job)
                }
                Message::Run(job) | Message::Pinned(job) => {
                    job();
                    // The task just spawned, and every other runnable one,
                    // run before this worker takes another job: the rest
                    // stay queued, where idle workers can take them.
                    crate::time::yield_now();
                }
                Message::Steal => {}
                Message::Stop => return,
            }
        }
    }

    /// Takes a job from another worker's queue, if any has one.
    fn steal(&self, me: usize) -> Option<Job> {
        let n = self.len();
        (1..n).map(|offset| (me + offset) % n).find_map(|other| {
            loop {
                match self.receivers[other].try_recv() {
                    Ok(Message::Run(job)) => break Some(job),
                    // A nudge meant for that worker: it will look anyway.
                    Ok(Message::Steal) => continue,
                    // That worker's own (its stop, or a job pinned to
                    // it): put it back for it.
                    Ok(message @ (Message::Stop | Message::Pinned(_))) => {
                        let _ = self.senders[other].send(message);
                        break None;
                    }
                    Err(_) => break None,
                }
            }
        })
    }

    /// Marks worker `me` idle (parked on its empty queue) or busy.
    fn set_idle(&self, me: usize, idle: bool) {
        let mut list = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        list.retain(|&worker| worker != me);
        if idle {
            list.push(me);
        }
        self.idle_count.store(list.len(), Ordering::SeqCst);
    }

    /// Stops the group once `main` has returned: no job starts any more, and
    /// every worker's service loop ends.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        for sender in &self.senders {
            // Jobs queued before it are dropped unstarted by the worker
            // that takes them (see `serve`).
            let _ = sender.send(Message::Stop);
        }
    }
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
