//! Distributed spawns: a `Send` closure placed on any worker of the
//! runtime, and the `Send` handle that joins or cancels it from anywhere.
//!
//! The closure crosses threads only before it starts (`workers.rs`); the
//! worker that takes it spawns it as a local task, which never moves. Its
//! result comes back through a one-shot channel, and a cancellation goes to
//! its worker's inbox.

use std::io;
use std::panic::{self, AssertUnwindSafe, Location};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::error::{EndCancelled, JoinError};
use super::id::{Task, TaskId};
use super::spawn::{Builder, TaskAddress, spawn_as};
use super::teardown;
use crate::channel::{OneshotReceiver, OneshotSender, RecvError, oneshot};
use crate::context::Context;
use crate::inbox::Inbox;
use crate::park;
use crate::workers::{self, Job};

/// What a distributed task and its handle share.
#[derive(Debug)]
struct Remote {
    /// The task's identity, made at spawn so that the handle knows it
    /// before the task starts.
    task: Task,
    /// Where the task runs, once it has started; `cancelled` is read and
    /// written under this lock too, so that a cancellation racing the start
    /// is never lost.
    address: Mutex<Option<TaskAddress>>,
    /// `cancel` was called: a task that has not started never will.
    cancelled: AtomicBool,
}

impl Remote {
    /// Asks the task to stop: marks it cancelled and, if it has started,
    /// cancels it on its worker (directly on the caller's own runtime,
    /// through the inbox on another).
    fn cancel(&self) {
        let address = self.address.lock().unwrap_or_else(PoisonError::into_inner);
        self.cancelled.store(true, Ordering::Release);
        if let Some(address) = address.as_ref() {
            cancel_at(address);
        }
    }
}

/// Cancels the started task at `address`.
fn cancel_at(address: &TaskAddress) {
    let here = Context::with(|cx| {
        (cx.id() == address.inbox.runtime()).then(|| park::cancel_ref(cx, address.key, address.id))
    });
    if here.flatten().is_none() {
        address.inbox.post_cancel(address.key, address.id);
    }
}

/// A handle to a task started with [`spawn_distributed`]: `Send`, so any
/// worker (or thread) can join it, cancel it or drop it.
///
/// Dropping it detaches the task: it runs on, and its result is dropped
/// inside it when it finishes.
#[derive(Debug)]
pub struct DistributedHandle<T> {
    /// Where the result arrives.
    result: OneshotReceiver<Result<T, JoinError>>,
    /// Shared with the task.
    remote: Arc<Remote>,
}

impl<T> DistributedHandle<T> {
    /// Waits for the task to finish and returns its result, parking the
    /// calling coroutine (or blocking the calling thread).
    ///
    /// # Errors
    ///
    /// As [`JoinHandle::join`](crate::JoinHandle::join): the task panicked
    /// ([`JoinError::is_panic`]), was cancelled before it finished
    /// ([`JoinError::is_cancelled`]), or the caller was cancelled while it
    /// waited ([`JoinError::is_interrupted`]).
    pub fn join(self) -> Result<T, JoinError> {
        self.wait()
    }

    /// [`DistributedHandle::join`], keeping the handle.
    fn wait(&self) -> Result<T, JoinError> {
        match self.result.recv_again() {
            Ok(result) => result,
            Err(RecvError::Disconnected) => Err(JoinError::cancelled(&self.remote.task)),
            Err(RecvError::Cancelled) => Err(JoinError::interrupted(&self.remote.task)),
        }
    }

    /// Asks the task to stop, as [`JoinHandle::cancel`](crate::JoinHandle::cancel)
    /// does, from any worker or thread: a task that has not started never
    /// runs; a started one gets a cancellation at its current or next
    /// blocking call.
    pub fn cancel(&self) {
        self.remote.cancel();
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.remote.task.id()
    }

    /// The task's identity.
    pub fn task(&self) -> Task {
        self.remote.task.clone()
    }
}

impl Builder {
    /// Spawns the coroutine on any worker of the current runtime (see
    /// [`green::Builder::workers`](crate::Builder::workers)), where it then
    /// stays: `f` and its result cross threads, which is why they must be
    /// `Send`. Until it starts, an idle worker may take it over from the
    /// worker that spawned it. In a runtime of one worker it runs on that
    /// one, as [`Builder::spawn`] would.
    ///
    /// The handle is `Send`: join, cancel or drop it from any worker.
    ///
    /// # Errors
    ///
    /// Outside a runtime. (A stack that cannot be had is found when the
    /// task starts, on its worker: the error is printed there, and the
    /// join reports the task cancelled.)
    ///
    /// ```
    /// let ids = green::Builder::new().workers(2).run(|| {
    ///     let handles: Vec<_> = (0..4)
    ///         .map(|i| green::task::Builder::new().name(format!("job-{i}")).spawn_distributed(move || i * 2))
    ///         .collect::<Result<_, _>>()
    ///         .expect("inside a runtime");
    ///     handles.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
    /// });
    /// assert_eq!(ids, 12);
    /// ```
    #[track_caller]
    pub fn spawn_distributed<F, T>(self, f: F) -> io::Result<DistributedHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        place(self.name, self.stack_size, None, f)
    }
}

impl Builder {
    /// Spawns the coroutine on worker `worker` of the current runtime
    /// (0 is the one that runs `main`), and nowhere else: no other worker
    /// takes it over. For work that belongs to each worker, such as one
    /// listener per worker bound with
    /// [`TcpListener::bind_reuse_port`](crate::net::TcpListener::bind_reuse_port).
    ///
    /// # Errors
    ///
    /// Outside a runtime, or `InvalidInput` if the runtime has no worker
    /// `worker` (see [`workers`](crate::task::workers)).
    ///
    /// ```
    /// let threads = green::Builder::new().workers(2).run(|| {
    ///     let on = |worker| {
    ///         green::task::Builder::new()
    ///             .spawn_on_worker(worker, || std::thread::current().id())
    ///             .expect("the runtime has this worker")
    ///     };
    ///     let (first, second) = (on(0), on(1));
    ///     (first.join().unwrap(), second.join().unwrap())
    /// });
    /// assert_ne!(threads.0, threads.1, "two workers, two threads");
    /// ```
    #[track_caller]
    pub fn spawn_on_worker<F, T>(self, worker: usize, f: F) -> io::Result<DistributedHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let count = workers();
        if worker >= count {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("green: no worker {worker}: this runtime has {count} (numbered from 0)"),
            ));
        }
        place(self.name, self.stack_size, Some(worker), f)
    }
}

/// How many workers the current runtime has: 1 for [`green::run`](crate::run),
/// `n` for [`Builder::workers(n)`](crate::Builder::workers); 0 outside a
/// runtime.
pub fn workers() -> usize {
    workers::with_seat(|seat| match seat {
        Some((group, _)) => group.len(),
        None => usize::from(Context::with(|_| ()).is_some()),
    })
}

/// Spawns `f` on any worker of the current runtime; see
/// [`Builder::spawn_distributed`](crate::task::Builder::spawn_distributed).
///
/// `f` crosses threads before it starts, so it must be `Send`; a closure
/// holding an `Rc` goes through the local [`spawn`](crate::spawn) instead:
///
/// ```compile_fail
/// green::Builder::new().workers(2).run(|| {
///     let local = std::rc::Rc::new(1);
///     green::spawn_distributed(move || *local + 1).join()
/// });
/// ```
///
/// The handle is `Send`, unlike a [`JoinHandle`](crate::JoinHandle):
///
/// ```
/// fn send<T: Send>(_: T) {}
/// green::Builder::new().workers(2).run(|| send(green::spawn_distributed(|| 1)));
/// ```
///
/// # Panics
///
/// Outside a runtime.
#[track_caller]
pub fn spawn_distributed<F, T>(f: F) -> DistributedHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match Builder::new().spawn_distributed(f) {
        Ok(handle) => handle,
        Err(err) => panic!("{err}"),
    }
}

/// Spawns the boxed `job` as a distributed task of the current runtime
/// (for `Scope::spawn_distributed`, which boxes a closure whose lifetime
/// it guarantees itself).
#[track_caller]
pub(crate) fn spawn_boxed(job: Box<dyn FnOnce() + Send>) -> io::Result<DistributedHandle<()>> {
    place(None, None, None, job)
}

/// What a *stand-in* does: a local task that stands for the distributed
/// task `child` where only local tasks can be (a `TaskGroup`'s member).
/// It waits for `child`, passes a cancellation of its own on to it, and
/// ends as `child` ended: with its value, its panic, or cancelled.
pub(crate) fn stand_in<T>(child: &DistributedHandle<T>) -> T {
    let result = match child.wait() {
        Err(err) if err.is_interrupted() => {
            child.cancel();
            crate::shield(|| child.wait())
        }
        result => result,
    };
    match result {
        Ok(value) => value,
        Err(err) => match err.try_into_panic() {
            Ok(payload) => panic::resume_unwind(payload),
            Err(_) => panic::resume_unwind(Box::new(EndCancelled)),
        },
    }
}

/// Places `f` as a task named `name` with stacks of `stack_size` on a
/// worker of the current runtime: `worker` if given, else the calling
/// one's queue, where another may take it over.
#[track_caller]
fn place<F, T>(
    name: Option<Arc<str>>,
    stack_size: Option<usize>,
    worker: Option<usize>,
    f: F,
) -> io::Result<DistributedHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let Some(home) = Context::with(Context::home) else {
        return Err(io::Error::other(
            "green::spawn_distributed called outside a green runtime: start one with green::run(|| ...) \
             or green::Builder::new().workers(n).run(|| ...) and spawn from inside it",
        ));
    };
    let (job, handle) = prepare(name, stack_size, home, f);
    let refused = workers::with_seat(|seat| match seat {
        Some((group, me)) => match worker {
            Some(worker) => group.pin(worker, job).err(),
            None => group.push(Some(me), job).err(),
        },
        // A runtime of one worker: start it here (below, outside the
        // thread-local's borrow).
        None => Some(job),
    });
    if let Some(job) = refused {
        if workers::with_seat(|seat| seat.is_some()) {
            // The runtime is stopping: the task never starts, and a join
            // reports it cancelled.
            drop(job);
        } else {
            job();
        }
    }
    Ok(handle)
}

/// A distributed task ready to be queued: the job that starts it, and its
/// handle.
#[track_caller]
fn prepare<F, T>(
    name: Option<Arc<str>>,
    stack_size: Option<usize>,
    home: u64,
    f: F,
) -> (Job, DistributedHandle<T>)
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let remote = Arc::new(Remote {
        task: Task::new(name, Some(Location::caller())),
        address: Mutex::new(None),
        cancelled: AtomicBool::new(false),
    });
    let (sender, result) = oneshot();
    // The result comes from the runtime whose identity is `home`; a join
    // from anywhere else waits on something from outside its own runtime.
    result.used_by(home);
    let job_remote = remote.clone();
    let job: Job = Box::new(move || start(&job_remote, stack_size, f, sender));
    (job, DistributedHandle { result, remote })
}

/// A handle to a running runtime, to spawn on it from any thread: `Send`
/// and `Clone`. Get one inside the runtime with [`Handle::current`] and
/// give it to threads of your own.
///
/// ```
/// let answer = green::Builder::new().workers(2).run(|| {
///     let handle = green::Handle::current();
///     // A plain thread spawns a coroutine on the runtime and joins it.
///     let thread = std::thread::spawn(move || handle.spawn(|| 6 * 7).join());
///     thread.join().unwrap()
/// });
/// assert_eq!(answer.unwrap(), 42);
/// ```
#[derive(Clone)]
pub struct Handle {
    /// Where its spawns go.
    target: Target,
}

/// Where a handle's spawns go.
#[derive(Clone)]
enum Target {
    /// The queues of a runtime of several workers, in turn.
    Workers(Arc<workers::Group>),
    /// The inbox of a runtime of one worker.
    Single(Arc<Inbox>),
}

impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let workers = match &self.target {
            Target::Workers(group) => group.len(),
            Target::Single(_) => 1,
        };
        f.debug_struct("Handle").field("workers", &workers).finish()
    }
}

impl Handle {
    /// The runtime the caller runs in.
    ///
    /// # Panics
    ///
    /// Outside a runtime; [`Handle::try_current`] returns `None` there.
    pub fn current() -> Handle {
        Handle::try_current().expect("green::Handle::current called outside a green runtime")
    }

    /// The runtime the caller runs in, or `None` on a thread that runs
    /// none.
    pub fn try_current() -> Option<Handle> {
        if let Some(group) = workers::current_group() {
            return Some(Handle { target: Target::Workers(group) });
        }
        Context::with(|cx| Handle { target: Target::Single(cx.inbox_ref().clone()) })
    }

    /// Spawns `f` on the runtime, from any thread, as
    /// [`spawn_distributed`] does from inside it (on a runtime of several
    /// workers, the spawns go to their queues in turn). If the runtime has
    /// ended (or ends before the task starts), the task never runs and its
    /// join reports it cancelled.
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> DistributedHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let home = match &self.target {
            Target::Workers(group) => group.home(),
            Target::Single(inbox) => inbox.home(),
        };
        let (job, handle) = prepare(None, None, home, f);
        let refused = match &self.target {
            Target::Workers(group) => group.push(None, job),
            Target::Single(inbox) => inbox.post_job(job),
        };
        // Refused: the task never starts.
        drop(refused);
        handle
    }
}

/// Starts a distributed task on the calling worker: what its job does.
fn start<F, T>(
    remote: &Arc<Remote>,
    stack_size: Option<usize>,
    f: F,
    sender: OneshotSender<Result<T, JoinError>>,
) where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    if remote.cancelled.load(Ordering::Acquire) {
        return; // never started: `f` and `sender` are dropped here
    }
    let body_remote = remote.clone();
    let body = move || {
        let result = match panic::catch_unwind(AssertUnwindSafe(f)) {
            Ok(value) => Ok(value),
            // Torn down at shutdown: let the unwind go on.
            Err(payload) if teardown::is_teardown(&*payload) => panic::resume_unwind(payload),
            Err(payload) => Err(JoinError::panicked(payload, &body_remote.task)),
        };
        // A handle dropped meanwhile: the result is dropped here, inside
        // the task.
        let _ = sender.send(result);
    };
    match spawn_as(remote.task.clone(), stack_size, body) {
        Some(Ok((handle, address))) => {
            drop(handle); // detached: the result travels through `sender`
            let mut slot = remote.address.lock().unwrap_or_else(PoisonError::into_inner);
            if remote.cancelled.load(Ordering::Acquire) {
                cancel_at(&address);
            }
            *slot = Some(address);
        }
        Some(Err(err)) => eprintln!(
            "green: distributed task '{}' (id {}) could not start: {err}; its join reports it cancelled",
            remote.task.display_name(),
            remote.task.id()
        ),
        None => unreachable!("a job runs on a worker, inside its runtime"),
    }
}
