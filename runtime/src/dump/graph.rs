//! The wait-for graph of a dump, and its cycles: coroutines that wait on
//! each other, so that none of them can ever go on.
//!
//! Each parked coroutine waits for one thing, so it has at most one edge:
//! to the coroutine that holds the lock it waits for, or that its join
//! waits for ([`Coroutine::blocked_by`]). A graph whose nodes have at most
//! one outgoing edge is a set of chains, each ending at a coroutine that
//! waits on nothing held (or on a thread) or in exactly one cycle; a single
//! walk along the edges, colouring as it goes, finds every cycle in time
//! linear in the number of coroutines.
//!
//! Only parked coroutines have edges, so a cycle is made of coroutines
//! that were all parked when their workers answered. On one worker that
//! is one moment, and the cycle is a deadlock. Across workers the answers
//! come at slightly different moments; a deadlock stays put, so it is
//! found all the same, but a cycle found while those coroutines were
//! moving could be one that never existed at a single moment: a dump made
//! twice tells them apart.

use std::collections::HashMap;

use super::entry::Coroutine;
use crate::task::id::TaskId;

/// Coroutines that wait on each other in a ring: each waits on a lock the
/// next one holds (or joins it), and the last waits on the first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Cycle {
    /// The coroutines of the ring, in order, starting at the one with the
    /// smallest id: each is blocked by the next, the last by the first. A
    /// coroutine waiting for a lock it holds itself is a ring of one.
    pub members: Vec<TaskId>,
}

/// Every cycle of the wait-for graph of `coroutines`.
pub(crate) fn cycles(coroutines: &[Coroutine]) -> Vec<Cycle> {
    // Only coroutines with an edge can be in a cycle: the graph is made of
    // those alone (often none, or a few among a million).
    let blocked: Vec<(usize, TaskId)> =
        coroutines.iter().enumerate().filter_map(|(i, c)| Some((i, c.blocked_by()?))).collect();
    if blocked.is_empty() {
        return Vec::new();
    }
    let index: HashMap<TaskId, usize> =
        blocked.iter().enumerate().map(|(node, &(i, _))| (coroutines[i].id, node)).collect();
    let next: Vec<Option<usize>> = blocked.iter().map(|(_, to)| index.get(to).copied()).collect();
    let members = |ring: Vec<usize>| ring.into_iter().map(|node| blocked[node].0).collect();
    cycles_of(&next).into_iter().map(|ring| ring_of(coroutines, members(ring))).collect()
}

/// The ring `ring` (positions in `coroutines`) as a [`Cycle`], rotated to
/// start at its smallest id.
fn ring_of(coroutines: &[Coroutine], ring: Vec<usize>) -> Cycle {
    let mut members: Vec<TaskId> = ring.into_iter().map(|i| coroutines[i].id).collect();
    if let Some(first) = members.iter().enumerate().min_by_key(|(_, id)| **id).map(|(at, _)| at) {
        members.rotate_left(first);
    }
    Cycle { members }
}

/// The cycles of the graph whose node `i` has the one edge `next[i]`, each
/// as its nodes in edge order. Linear: every node is entered once.
fn cycles_of(next: &[Option<usize>]) -> Vec<Vec<usize>> {
    /// Not visited yet.
    const NEW: usize = 0;
    /// Visited by a walk that has ended: whatever lies ahead is known.
    const DONE: usize = 1;
    // Walk `w` marks the nodes it enters with `w + 2`, so that it knows
    // its own trail when it comes back to it.
    let mut mark = vec![NEW; next.len()];
    let mut found = Vec::new();
    for start in 0..next.len() {
        if mark[start] != NEW {
            continue;
        }
        let walk = start + 2;
        let mut at = start;
        loop {
            mark[at] = walk;
            match next[at] {
                Some(to) if mark[to] == NEW => at = to,
                Some(to) if mark[to] == walk => {
                    // Back on this walk's own trail: `to` starts a ring.
                    let mut ring = vec![to];
                    let mut node = next[to];
                    while let Some(n) = node.filter(|&n| n != to) {
                        ring.push(n);
                        node = next[n];
                    }
                    found.push(ring);
                    break;
                }
                _ => break,
            }
        }
        // Everything this walk entered is settled.
        let mut at = Some(start);
        while let Some(node) = at.filter(|&n| mark[n] == walk) {
            mark[node] = DONE;
            at = next[node];
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rings_are_found_once_and_chains_into_them_are_not_rings() {
        // 0 -> 1 -> 2 -> 0 (a ring), 3 -> 1 (a chain into it), 4 -> 4 (a
        // ring of one), 5 -> 6, 6 waits on nothing.
        let next = [Some(1), Some(2), Some(0), Some(1), Some(4), Some(6), None];
        let mut found = cycles_of(&next);
        found.sort();
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(found.contains(&vec![4]));
        let ring = found.iter().find(|r| r.len() == 3).expect("the ring of three");
        let mut sorted = ring.clone();
        sorted.sort();
        assert_eq!(sorted, [0, 1, 2]);
    }

    #[test]
    fn a_long_chain_is_walked_in_linear_time() {
        // 0 -> 1 -> ... -> n-1 -> 0, entered from every node: one ring.
        let n = 100_000;
        let next: Vec<Option<usize>> = (0..n).map(|i| Some((i + 1) % n)).collect();
        let found = cycles_of(&next);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].len(), n);
    }
}
