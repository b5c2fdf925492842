//! A dump as text for people: a header, the cycles, the workers that did
//! not answer, then one block per coroutine, except that coroutines in the
//! same state, waiting on the same kind of thing, spawned at the same
//! place under the same name, with the same backtrace, share one block (as
//! Go's goroutine profile groups identical stacks): "37 coroutines parked
//! in channel recv, spawned at src/main.rs:12:5", then their frames.

use std::collections::HashMap;
use std::fmt::{self, Write as _};
use std::panic::Location;
use std::sync::Arc;

use super::backtrace::{Backtrace, Frame};
use super::entry::{Coroutine, Holder, Silent, State, Wait};
use super::graph::Cycle;
use super::kind::WaitKind;
use crate::task::id::TaskId;

/// Ids listed in a shared block before "and N more".
const IDS_SHOWN: usize = 20;

/// A dump (its coroutines, its silent workers, its cycles) as text.
pub(super) fn write(
    f: &mut fmt::Formatter<'_>,
    coroutines: &[Coroutine],
    silent: &[Silent],
    cycles: &[Cycle],
) -> fmt::Result {
    let names: HashMap<TaskId, &Coroutine> = coroutines.iter().map(|c| (c.id, c)).collect();
    let who = |id: TaskId| match names.get(&id) {
        Some(c) => format!("coroutine {id} '{}'", c.display_name()),
        None => format!("coroutine {id}"),
    };
    header(coroutines, silent, cycles, f)?;
    for cycle in cycles {
        let mut line = String::from("\ndeadlock: a cycle of coroutines waiting on each other:");
        for id in &cycle.members {
            let what = names.get(id).and_then(|c| c.waits_on.as_ref()).map(|w| what(w, &who));
            let _ = write!(line, "\n  {} waits on {}", who(*id), what.unwrap_or_default());
        }
        writeln!(f, "{line}")?;
    }
    for quiet in silent {
        let why = match &quiet.running {
            Some(task) => {
                let site = task.spawned_at().map(|at| format!(" (spawned at {at})")).unwrap_or_default();
                format!(
                    "coroutine {} '{}'{site} has been running for {} ms without parking or yielding",
                    task.id(),
                    task.display_name(),
                    quiet.running_for.as_millis()
                )
            }
            None => quiet.reason.clone(),
        };
        writeln!(
            f,
            "\n{} (runtime {}) did not answer: {why}; the coroutines of that worker are not listed",
            quiet.label, quiet.runtime
        )?;
    }
    for group in groups(coroutines) {
        match group.as_slice() {
            [one] => block(one, &who, f)?,
            many => shared_block(many, f)?,
        }
    }
    Ok(())
}

/// The first line: how many coroutines, workers and runtimes.
fn header(
    coroutines: &[Coroutine],
    silent: &[Silent],
    cycles: &[Cycle],
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
    let mut workers: Vec<(u64, usize)> = coroutines.iter().map(|c| (c.runtime, c.worker)).collect();
    workers.extend(silent.iter().map(|s| (s.runtime, s.worker)));
    workers.sort_unstable();
    workers.dedup();
    let mut runtimes: Vec<u64> = workers.iter().map(|(runtime, _)| *runtime).collect();
    runtimes.dedup();
    let count = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    write!(
        f,
        "green: task dump: {} on {} of {}",
        count(coroutines.len(), "coroutine", "coroutines"),
        count(workers.len(), "worker", "workers"),
        count(runtimes.len(), "runtime", "runtimes")
    )?;
    let parked = coroutines.iter().filter(|c| c.state == State::Parked).count();
    let runnable = coroutines.iter().filter(|c| c.state == State::Runnable).count();
    let running = coroutines.iter().filter(|c| c.state == State::Running).count();
    writeln!(f, " ({parked} parked, {runnable} runnable, {running} running)")?;
    if !cycles.is_empty() {
        writeln!(f, "{} found", count(cycles.len(), "cycle", "cycles"))?;
    }
    if !silent.is_empty() {
        writeln!(f, "{} did not answer", count(silent.len(), "worker", "workers"))?;
    }
    Ok(())
}

/// The coroutines in blocks: those alike share one, in the order of their
/// first member.
fn groups(coroutines: &[Coroutine]) -> Vec<Vec<&Coroutine>> {
    type Key<'a> =
        (u64, State, Option<WaitKind>, Option<&'static Location<'static>>, Option<&'a Arc<str>>, usize);
    let mut order: Vec<Vec<&Coroutine>> = Vec::new();
    let mut index: HashMap<Key<'_>, usize> = HashMap::new();
    for coroutine in coroutines {
        let key = (
            coroutine.runtime,
            coroutine.state,
            coroutine.waits_on.as_ref().map(|w| w.kind),
            coroutine.spawned_at,
            coroutine.name.as_ref(),
            // Identical stacks share one list of frames.
            coroutine.backtrace.frames().map_or(0, |frames| frames.as_ptr().addr()),
        );
        let at = *index.entry(key).or_insert_with(|| {
            order.push(Vec::new());
            order.len() - 1
        });
        order[at].push(coroutine);
    }
    order
}

/// The block of one coroutine.
fn block(c: &Coroutine, who: &dyn Fn(TaskId) -> String, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    write!(
        f,
        "\ncoroutine {} '{}' (runtime {}, worker {}): {}",
        c.id,
        c.display_name(),
        c.runtime,
        c.worker,
        c.state.as_str()
    )?;
    if let Some(time) = c.in_state_for {
        write!(f, " for {time:.1?}")?;
    }
    if let Some(wait) = &c.waits_on {
        write!(f, " in {}", what(wait, who))?;
    }
    writeln!(f)?;
    match c.spawned_at {
        Some(at) => writeln!(f, "    spawned at {at}")?,
        None => writeln!(f, "    the main coroutine of its runtime, or one of the runtime's own")?,
    }
    let mut notes = Vec::new();
    if c.cancel_requested {
        notes.push("cancellation requested".to_owned());
    }
    if let Some(left) = c.deadline {
        notes.push(format!("deadline in {left:.1?}"));
    }
    if let Some(parent) = c.parent {
        notes.push(format!("a scope child of {}", who(parent)));
    }
    if !c.children.is_empty() {
        notes.push(format!("scope children {}", ids(c.children.iter().copied(), c.children.len())));
    }
    if !notes.is_empty() {
        writeln!(f, "    {}", notes.join("; "))?;
    }
    frames(&c.backtrace, f)
}

/// A backtrace's frames, one a line, or why there are none (nothing if
/// none was asked for). The frames of the program itself are shown with
/// the call into the runtime they made; the runtime's frames above that
/// call and the plumbing below the program's first frame (the spawn, the
/// panic catching, the coroutine's entry) are counted, not shown. The
/// JSON has every frame.
fn frames(backtrace: &Backtrace, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let frames = match backtrace {
        Backtrace::NotRequested => return Ok(()),
        Backtrace::Captured(frames) => frames,
        missing => return writeln!(f, "    no backtrace: {}", missing.missing().unwrap_or("unavailable")),
    };
    let own = |frame: &Frame| !frame.function.as_deref().is_some_and(is_plumbing);
    let (first, last) = match (frames.iter().position(own), frames.iter().rposition(own)) {
        // The call into the runtime the program's innermost frame made.
        (Some(first), Some(last)) => (first.saturating_sub(1), last),
        // A coroutine of the runtime's own: its frames down to its body.
        _ => {
            let body = frames.iter().rposition(|frame| {
                frame.function.as_deref().is_some_and(|name| {
                    name.starts_with("green::") && !name.starts_with("green::task::spawn::")
                })
            });
            (0, body.unwrap_or(frames.len().saturating_sub(1)))
        }
    };
    if first > 0 {
        writeln!(f, "      ... {} frames of the runtime", first)?;
    }
    for frame in frames.iter().take(last + 1).skip(first) {
        writeln!(f, "      {frame}")?;
    }
    let below = frames.len().saturating_sub(last + 1);
    if below > 0 {
        writeln!(f, "      ... {below} frames of the coroutine's start")?;
    }
    Ok(())
}

/// Whether `function` belongs to the runtime, the standard library or the
/// coroutine machinery rather than to the program.
fn is_plumbing(function: &str) -> bool {
    const CRATES: [&str; 5] = ["green::", "core::", "std::", "alloc::", "corosensei::"];
    // `<T as Trait>::f`, `<&T as Trait>::f`: the type's crate.
    let path = function.trim_start_matches(['<', '&']).trim_start_matches("mut ");
    CRATES.iter().any(|krate| path.starts_with(krate)) || function == "stack_init_trampoline"
}

/// The block of several coroutines alike.
fn shared_block(group: &[&Coroutine], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let first = group[0];
    write!(f, "\n{} coroutines {}", group.len(), first.state.as_str())?;
    if let Some(wait) = &first.waits_on {
        write!(f, " in {}", wait.kind)?;
    }
    match first.spawned_at {
        Some(at) => write!(f, ", spawned at {at}")?,
        None => write!(f, ", not spawned (main coroutines, or the runtime's own)")?,
    }
    if let Some(name) = &first.name {
        write!(f, ", named '{name}'")?;
    }
    writeln!(f)?;
    writeln!(f, "    ids {}", ids(group.iter().map(|c| c.id), group.len()))?;
    let mut workers: Vec<usize> = group.iter().map(|c| c.worker).collect();
    workers.sort_unstable();
    workers.dedup();
    let mut notes = vec![format!(
        "on worker{} {}",
        if workers.len() == 1 { "" } else { "s" },
        workers.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
    )];
    let times: Vec<_> = group.iter().filter_map(|c| c.in_state_for).collect();
    if let (Some(shortest), Some(longest)) = (times.iter().min(), times.iter().max()) {
        let (shortest, longest) = (format!("{shortest:.1?}"), format!("{longest:.1?}"));
        notes.push(if shortest == longest {
            format!("for {shortest}")
        } else {
            format!("for {shortest} to {longest}")
        });
    }
    let mut objects: Vec<u64> = group.iter().filter_map(|c| c.waits_on.as_ref()).map(|w| w.object).collect();
    objects.sort_unstable();
    objects.dedup();
    if objects.len() > 1 {
        notes.push(format!("on {} different objects", objects.len()));
    } else if let Some(object) = objects.first().filter(|o| **o != 0) {
        notes.push(format!(
            "all on {}",
            object_name(first.waits_on.as_ref().map_or(WaitKind::Unknown, |w| w.kind), *object)
        ));
    }
    let cancelled = group.iter().filter(|c| c.cancel_requested).count();
    if cancelled > 0 {
        notes.push(format!("{cancelled} with cancellation requested"));
    }
    let timed = group.iter().filter(|c| c.deadline.is_some()).count();
    if timed > 0 {
        notes.push(format!("{timed} with a deadline"));
    }
    writeln!(f, "    {}", notes.join("; "))?;
    frames(&first.backtrace, f)
}

/// What a wait is, in words: its kind, its object, its holder or peer.
fn what(wait: &Wait, who: &dyn Fn(TaskId) -> String) -> String {
    let mut text = match wait.kind {
        WaitKind::Join => {
            return format!(
                "join of {}",
                wait.holder.map_or_else(|| "a coroutine".to_owned(), |h| holder(h, who))
            );
        }
        kind => object_name(kind, wait.object),
    };
    if let Some(peer) = &wait.peer {
        let _ = write!(text, " ({peer})");
    }
    match (wait.kind, wait.holder) {
        (WaitKind::Mutex | WaitKind::RwLock, Some(h)) => {
            let _ = write!(text, " held by {}", holder(h, who));
        }
        (WaitKind::Mutex, None) => text.push_str(", holder unknown"),
        (WaitKind::RwLock, None) => text.push_str(", held by readers"),
        _ => {}
    }
    text
}

/// The kind and its object: "mutex 0x55d0c3a0", "socket read on fd 7".
fn object_name(kind: WaitKind, object: u64) -> String {
    match (kind, object) {
        (_, 0) => kind.as_str().to_owned(),
        (WaitKind::Read | WaitKind::Write, fd) => format!("{kind} on fd {fd}"),
        (WaitKind::Join, id) => format!("join of coroutine {id}"),
        (kind, address) => format!("{kind} {address:#x}"),
    }
}

/// A holder in words.
fn holder(holder: Holder, who: &dyn Fn(TaskId) -> String) -> String {
    match holder {
        Holder::Coroutine(id) => who(id),
        Holder::Thread => "a thread (or a coroutine of a runtime not listed)".to_owned(),
    }
}

/// Up to [`IDS_SHOWN`] ids, then how many more.
fn ids(ids: impl Iterator<Item = TaskId>, count: usize) -> String {
    let mut text: Vec<String> = ids.take(IDS_SHOWN).map(|id| id.to_string()).collect();
    if count > IDS_SHOWN {
        text.push(format!("and {} more", count - IDS_SHOWN));
    }
    text.join(", ")
}
