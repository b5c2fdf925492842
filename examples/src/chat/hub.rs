//! The chat's member list and the rules for passing lines around: who
//! gets which line, who is dropped when its queue is full or closed, and
//! how many are online after each departure. Knows nothing of sockets:
//! the `chat` example keeps a connection per member in `C`.
//!
//! The hub never waits on a member: it hands each line to every other
//! member's bounded queue with `try_send`, and a member whose queue is full
//! (it does not read fast enough) or closed (its writer stopped) is dropped
//! and the others are told.
//!
//! # The online count
//!
//! One departure can set off others: telling the rest that a member left
//! finds more whose writers have stopped. Every removal therefore records
//! the count right after it ([`Departure::online`], [`Dropped::online`]),
//! so a log line per removal reads N-1, N-2, ... down to the true number,
//! and never a later count printed next to an earlier departure.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use green::channel::{Sender, TrySendError};

/// The chat's members and the rules for passing lines around; knows
/// nothing of sockets (`C` is whatever the caller keeps per member).
#[derive(Debug)]
pub struct Hub<C> {
    /// The members, by id (so that lines go out in joining order).
    members: BTreeMap<u64, Member<C>>,
}

/// One member of the chat.
#[derive(Debug)]
pub struct Member<C> {
    /// Its name in the chat.
    pub name: String,
    /// Its outgoing queue.
    outgoing: Sender<Arc<str>>,
    /// What the caller keeps for it (its connection).
    pub conn: C,
}

/// A member the hub dropped while passing a line on.
#[derive(Debug)]
pub struct Dropped<C> {
    /// The member, removed from the hub.
    pub member: Member<C>,
    /// Why.
    pub why: DropReason,
    /// Members online right after it was dropped, for the log.
    pub online: usize,
}

/// A member that left or was disconnected, and the members dropped while
/// the others were told.
#[derive(Debug)]
pub struct Departure<C> {
    /// The member, removed from the hub.
    pub member: Member<C>,
    /// Members online right after it was removed, before any in `dropped`
    /// went.
    pub online: usize,
    /// Members whose queues could not take the news, each with the count
    /// right after it went.
    pub dropped: Vec<Dropped<C>>,
}

/// Why the hub dropped a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Its outgoing queue was full.
    TooSlow,
    /// Its outgoing queue was closed: its writer has stopped.
    Gone,
}

impl<C> Default for Hub<C> {
    fn default() -> Self {
        Hub::new()
    }
}

impl<C> Hub<C> {
    /// A chat with no members.
    pub fn new() -> Hub<C> {
        Hub { members: BTreeMap::new() }
    }

    /// Members online.
    pub fn online(&self) -> usize {
        self.members.len()
    }

    /// A member's name.
    pub fn name(&self, id: u64) -> Option<&str> {
        self.members.get(&id).map(|m| m.name.as_str())
    }

    /// Adds a member, greets it and tells the others.
    pub fn join(&mut self, id: u64, name: String, outgoing: Sender<Arc<str>>, conn: C) -> Vec<Dropped<C>> {
        let others = self.members.len();
        let line: Arc<str> = format!("*** {name} joined\n").into();
        self.members.insert(id, Member { name: name.clone(), outgoing, conn });
        let mut dropped = self.tell(id, &format!("*** welcome, {name}; {others} other(s) here\n"));
        dropped.extend(self.send_to_all(Some(id), line));
        dropped
    }

    /// Removes a member and tells the others; `None` if it was not there.
    pub fn leave(&mut self, id: u64) -> Option<Departure<C>> {
        let member = self.members.remove(&id)?;
        let online = self.members.len();
        let dropped = self.send_to_all(None, format!("*** {} left\n", member.name).into());
        Some(Departure { member, online, dropped })
    }

    /// Removes a member after queueing `farewell` for it (its writer sends
    /// what is queued, then closes), and tells the others it was
    /// disconnected for `reason`; `None` if it was not there.
    pub fn expel(&mut self, id: u64, farewell: &str, reason: &str) -> Option<Departure<C>> {
        let member = self.members.remove(&id)?;
        // A full queue drops the farewell: the member does not read anyway.
        let _ = member.outgoing.try_send(farewell.into());
        let online = self.members.len();
        let line = format!("*** {} was disconnected: {reason}\n", member.name);
        let dropped = self.send_to_all(None, line.into());
        Some(Departure { member, online, dropped })
    }

    /// Passes a member's line to every other member.
    pub fn say(&mut self, from: u64, text: &str) -> Vec<Dropped<C>> {
        match self.members.get(&from) {
            Some(member) => {
                let line = format!("{}: {text}\n", member.name).into();
                self.send_to_all(Some(from), line)
            }
            None => Vec::new(),
        }
    }

    /// Sends a line to one member.
    pub fn tell(&mut self, to: u64, line: &str) -> Vec<Dropped<C>> {
        let Some(member) = self.members.get(&to) else { return Vec::new() };
        match member.outgoing.try_send(line.into()) {
            Ok(()) => Vec::new(),
            Err(err) => {
                let Some(gone) = self.drop_member(to, &err) else { return Vec::new() };
                let announcement = gone.announcement();
                let mut dropped = vec![gone];
                dropped.extend(self.send_to_all(None, announcement));
                dropped
            }
        }
    }

    /// Sends `line` to every member but `except`, without ever waiting;
    /// drops the members it cannot reach and tells the rest about them, in
    /// the order they were dropped.
    fn send_to_all(&mut self, except: Option<u64>, line: Arc<str>) -> Vec<Dropped<C>> {
        let mut dropped = Vec::new();
        let mut pending = VecDeque::from([(except, line)]);
        while let Some((except, line)) = pending.pop_front() {
            let mut unreachable = Vec::new();
            for (&id, member) in &self.members {
                if Some(id) == except {
                    continue;
                }
                if let Err(err) = member.outgoing.try_send(line.clone()) {
                    unreachable.push((id, err));
                }
            }
            for (id, err) in unreachable {
                if let Some(gone) = self.drop_member(id, &err) {
                    pending.push_back((None, gone.announcement()));
                    dropped.push(gone);
                }
            }
        }
        dropped
    }

    /// Removes a member that a `try_send` failed for.
    fn drop_member<T>(&mut self, id: u64, err: &TrySendError<T>) -> Option<Dropped<C>> {
        let why = if err.is_full() { DropReason::TooSlow } else { DropReason::Gone };
        let member = self.members.remove(&id)?;
        Some(Dropped { member, why, online: self.members.len() })
    }
}

impl<C> Dropped<C> {
    /// What the remaining members are told.
    fn announcement(&self) -> Arc<str> {
        let what = match self.why {
            DropReason::TooSlow => "was disconnected: too slow to read",
            DropReason::Gone => "left",
        };
        format!("*** {} {what}\n", self.member.name).into()
    }
}

#[cfg(test)]
mod tests {
    use green::channel::{self, Receiver};

    use super::*;

    /// A member's queue of `capacity` lines; the test keeps the receiving end.
    fn member(hub: &mut Hub<()>, id: u64, capacity: usize) -> (Receiver<Arc<str>>, Vec<Dropped<()>>) {
        let (tx, rx) = channel::bounded(capacity);
        let dropped = hub.join(id, format!("guest{id}"), tx, ());
        (rx, dropped)
    }

    fn received(rx: &Receiver<Arc<str>>) -> Vec<String> {
        rx.try_iter().map(|line| line.to_string()).collect()
    }

    #[test]
    fn a_line_goes_to_every_other_member_and_not_back() {
        let mut hub = Hub::new();
        let (a, _) = member(&mut hub, 1, 8);
        let (b, _) = member(&mut hub, 2, 8);
        let (c, _) = member(&mut hub, 3, 8);
        assert_eq!(
            received(&a),
            ["*** welcome, guest1; 0 other(s) here\n", "*** guest2 joined\n", "*** guest3 joined\n"]
        );
        assert_eq!(received(&b), ["*** welcome, guest2; 1 other(s) here\n", "*** guest3 joined\n"]);
        assert_eq!(received(&c), ["*** welcome, guest3; 2 other(s) here\n"]);
        assert!(hub.say(2, "hello").is_empty());
        assert_eq!(received(&a), ["guest2: hello\n"]);
        assert_eq!(received(&b), Vec::<String>::new());
        assert_eq!(received(&c), ["guest2: hello\n"]);
    }

    #[test]
    fn a_member_whose_queue_is_full_is_dropped_and_the_others_are_told() {
        let mut hub = Hub::new();
        let (talker, _) = member(&mut hub, 1, 100);
        let (slow, _) = member(&mut hub, 2, 3);
        let (fast, _) = member(&mut hub, 3, 100);
        // The slow member's queue: its welcome, guest3 joined, then one line.
        assert!(hub.say(1, "one").is_empty());
        let dropped = hub.say(1, "two");
        assert_eq!(dropped.len(), 1);
        assert_eq!((dropped[0].member.name.as_str(), dropped[0].why), ("guest2", DropReason::TooSlow));
        assert_eq!(hub.online(), 2);
        let told = ["guest1: one\n", "guest1: two\n", "*** guest2 was disconnected: too slow to read\n"];
        assert_eq!(received(&fast)[1..], told[..], "the others got every line, in order");
        assert!(received(&talker).ends_with(&[told[2].to_owned()]));
        // The dropped member's queue is closed once its sender is dropped:
        // its writer sends what is queued, then stops.
        drop(dropped);
        assert_eq!(received(&slow).len(), 3);
        assert!(slow.is_disconnected());
        // Nothing more goes to it.
        assert!(hub.say(3, "three").is_empty());
        assert_eq!(received(&talker), ["guest3: three\n"]);
    }

    #[test]
    fn a_member_whose_writer_stopped_is_dropped_quietly() {
        let mut hub = Hub::new();
        let (a, _) = member(&mut hub, 1, 8);
        let (b, _) = member(&mut hub, 2, 8);
        drop(b);
        let dropped = hub.say(1, "anyone?");
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].why, DropReason::Gone);
        assert!(received(&a).ends_with(&[String::from("*** guest2 left\n")]));
        assert_eq!(hub.leave(2).map(|d| d.member.name), None, "a later Left event finds nobody");
    }

    #[test]
    fn leaving_tells_the_others() {
        let mut hub = Hub::new();
        let (a, _) = member(&mut hub, 1, 8);
        let (_b, _) = member(&mut hub, 2, 8);
        let departure = hub.leave(2).expect("guest2 is a member");
        assert_eq!((departure.member.name.as_str(), departure.online), ("guest2", 1));
        assert!(departure.dropped.is_empty());
        assert!(received(&a).ends_with(&[String::from("*** guest2 left\n")]));
        assert_eq!(hub.online(), 1);
    }

    /// Regression: when one departure set off others, every log line gave
    /// the count after all of them (`guest2 closed the connection; 8
    /// online` with 18 still there), so a burst of departures read as
    /// members vanishing uncounted.
    #[test]
    fn when_many_leave_at_once_each_departure_has_the_count_right_after_it() {
        let mut hub = Hub::new();
        let mut queues: Vec<_> = (1..=5).map(|id| member(&mut hub, id, 8).0).collect();
        // The writers of guest2..guest4 have stopped (their clients are
        // gone too); guest1's reader notices first.
        queues.drain(1..4);
        let departure = hub.leave(1).expect("guest1 is a member");
        assert_eq!(departure.online, 4);
        let counts: Vec<(String, usize)> =
            departure.dropped.iter().map(|d| (d.member.name.clone(), d.online)).collect();
        let expected = [("guest2", 3), ("guest3", 2), ("guest4", 1)].map(|(name, n)| (name.to_owned(), n));
        assert_eq!(counts, expected);
        assert_eq!(hub.online(), 1);
        let told = ["*** guest1 left\n", "*** guest2 left\n", "*** guest3 left\n", "*** guest4 left\n"];
        assert!(received(&queues[1]).ends_with(&told.map(String::from)), "in the order they went");
    }

    #[test]
    fn an_expelled_member_gets_its_farewell_last_and_the_others_are_told() {
        let mut hub = Hub::new();
        let (a, _) = member(&mut hub, 1, 8);
        let (b, _) = member(&mut hub, 2, 8);
        let departure = hub.expel(2, "*** line too long (max 10 bytes); disconnecting\n", "line too long");
        let departure = departure.expect("guest2 is a member");
        assert_eq!((departure.online, departure.dropped.len()), (1, 0));
        drop(departure);
        assert!(received(&b).ends_with(&[String::from("*** line too long (max 10 bytes); disconnecting\n")]));
        assert!(b.is_disconnected(), "its writer ends after the farewell");
        assert!(received(&a).ends_with(&[String::from("*** guest2 was disconnected: line too long\n")]));
        assert!(hub.expel(2, "", "").is_none());
    }
}
