//! [`Dump`]: the coroutines of one dump, the workers that did not answer,
//! and the cycles among the coroutines; as text and as JSON.

use std::fmt;

use super::backtrace::{Backtrace, Namer, Raw};
use super::collect;
use super::entry::{Coroutine, Silent};
use super::graph::{self, Cycle};
use super::{json, text};

/// A snapshot of coroutines: see the [module documentation](mod@crate::dump).
#[derive(Debug, Clone)]
pub struct Dump {
    /// Every coroutine that answered, by runtime, worker and id.
    coroutines: Vec<Coroutine>,
    /// The workers that did not answer.
    silent: Vec<Silent>,
    /// The cycles of the wait-for graph.
    cycles: Vec<Cycle>,
}

impl Dump {
    /// A dump of `coroutines` (from any number of workers) and of the
    /// workers that did not answer: resolves what the parts could not
    /// alone, sorts, and finds the cycles.
    pub(crate) fn new(mut coroutines: Vec<Coroutine>, mut silent: Vec<Silent>) -> Dump {
        collect::resolve(&mut coroutines);
        let mut namer = Namer::default();
        for coroutine in &mut coroutines {
            let raw = std::mem::replace(&mut coroutine.raw_backtrace, Raw::Missing(Backtrace::NotRequested));
            coroutine.backtrace = namer.name(raw);
        }
        coroutines.sort_unstable_by_key(|c| (c.runtime, c.worker, c.id));
        silent.sort_by_key(|s| (s.runtime, s.worker));
        let cycles = graph::cycles(&coroutines);
        Dump { coroutines, silent, cycles }
    }

    /// Every coroutine that was listed, ordered by runtime, worker and id.
    pub fn coroutines(&self) -> &[Coroutine] {
        &self.coroutines
    }

    /// The coroutine with id `id`, if it was listed.
    pub fn coroutine(&self, id: crate::TaskId) -> Option<&Coroutine> {
        self.coroutines.iter().find(|c| c.id == id)
    }

    /// The workers that did not answer in time (a coroutine holds the
    /// thread), with what the stall watchdog's stamps say about them.
    pub fn silent_workers(&self) -> &[Silent] {
        &self.silent
    }

    /// Coroutines that wait on each other in a ring: a lock-order deadlock
    /// (each waits for a lock the next holds), joins in a circle, or a
    /// coroutine waiting for a lock it holds itself. Found among the
    /// coroutines parked at the moment of the dump, whatever the others do
    /// (see [`Cycle`] for what a cycle across workers means).
    pub fn cycles(&self) -> &[Cycle] {
        &self.cycles
    }

    /// The dump as JSON, in the schema of the [module documentation](mod@crate::dump)
    /// (`"version": 1`).
    pub fn to_json(&self) -> String {
        json::write(&self.coroutines, &self.silent, &self.cycles)
    }
}

impl fmt::Display for Dump {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        text::write(f, &self.coroutines, &self.silent, &self.cycles)
    }
}
