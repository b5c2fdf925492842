//! A dump as JSON, written by hand (the runtime depends on no JSON
//! library). The schema is in the module documentation of `dump`; this
//! file follows it field for field.

use std::fmt::Write as _;
use std::panic::Location;
use std::time::Duration;

use super::backtrace::Frame;
use super::entry::{Coroutine, Holder, Silent, Wait};
use super::graph::Cycle;
use crate::task::id::TaskId;

/// The schema's version, the first field of every dump.
const VERSION: u32 = 2;

/// A dump (its coroutines, its silent workers, its cycles) as one JSON
/// object.
pub(super) fn write(coroutines: &[Coroutine], silent: &[Silent], cycles: &[Cycle]) -> String {
    let mut out = String::with_capacity(64 + coroutines.len() * 256);
    let _ = write!(out, "{{\"version\":{VERSION},\"coroutines\":[");
    for (at, coroutine) in coroutines.iter().enumerate() {
        if at > 0 {
            out.push(',');
        }
        write_coroutine(&mut out, coroutine);
    }
    out.push_str("],\"silent_workers\":[");
    for (at, silent) in silent.iter().enumerate() {
        if at > 0 {
            out.push(',');
        }
        write_silent(&mut out, silent);
    }
    out.push_str("],\"cycles\":[");
    for (at, cycle) in cycles.iter().enumerate() {
        if at > 0 {
            out.push(',');
        }
        write_ids(&mut out, &cycle.members);
    }
    out.push_str("]}");
    out
}

fn write_coroutine(out: &mut String, c: &Coroutine) {
    let _ = write!(out, "{{\"id\":{},\"name\":", c.id);
    write_opt_str(out, c.name.as_deref());
    out.push_str(",\"spawned_at\":");
    write_location(out, c.spawned_at);
    let _ = write!(
        out,
        ",\"runtime\":{},\"worker\":{},\"state\":\"{}\",\"in_state_ms\":",
        c.runtime,
        c.worker,
        c.state.as_str()
    );
    write_millis(out, c.in_state_for);
    out.push_str(",\"waits_on\":");
    match &c.waits_on {
        Some(wait) => write_wait(out, wait),
        None => out.push_str("null"),
    }
    let _ = write!(out, ",\"cancel_requested\":{},\"deadline_ms\":", c.cancel_requested);
    write_millis(out, c.deadline);
    out.push_str(",\"parent\":");
    write_opt_number(out, c.parent);
    out.push_str(",\"children\":");
    write_ids(out, &c.children);
    out.push_str(",\"backtrace\":");
    match c.backtrace.frames() {
        Some(frames) => write_frames(out, frames),
        None => out.push_str("null"),
    }
    out.push_str(",\"backtrace_missing\":");
    write_opt_str(out, c.backtrace.missing());
    out.push('}');
}

fn write_frames(out: &mut String, frames: &[Frame]) {
    out.push('[');
    for (at, frame) in frames.iter().enumerate() {
        if at > 0 {
            out.push(',');
        }
        let _ = write!(out, "{{\"ip\":{},\"function\":", frame.ip);
        write_opt_str(out, frame.function.as_deref());
        out.push_str(",\"file\":");
        write_opt_str(out, frame.file.as_deref());
        out.push_str(",\"line\":");
        write_opt_number(out, frame.line);
        out.push('}');
    }
    out.push(']');
}

fn write_wait(out: &mut String, wait: &Wait) {
    out.push_str("{\"kind\":");
    write_str(out, wait.kind.as_str());
    let _ = write!(out, ",\"object\":{},\"holder\":", wait.object);
    match wait.holder {
        Some(Holder::Coroutine(id)) => {
            let _ = write!(out, "{id}");
        }
        Some(Holder::Thread) => out.push_str("\"thread\""),
        None => out.push_str("null"),
    }
    out.push_str(",\"peer\":");
    write_opt_str(out, wait.peer.as_deref());
    out.push('}');
}

fn write_silent(out: &mut String, s: &Silent) {
    let _ = write!(out, "{{\"runtime\":{},\"worker\":{},\"label\":", s.runtime, s.worker);
    write_str(out, &s.label);
    out.push_str(",\"running\":");
    match &s.running {
        Some(task) => {
            let _ = write!(out, "{{\"id\":{},\"name\":", task.id());
            write_opt_str(out, task.name());
            out.push_str(",\"spawned_at\":");
            write_location(out, task.spawned_at());
            out.push('}');
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"running_ms\":");
    write_millis(out, Some(s.running_for));
    out.push_str(",\"reason\":");
    write_str(out, &s.reason);
    out.push('}');
}

fn write_ids(out: &mut String, ids: &[TaskId]) {
    out.push('[');
    for (at, id) in ids.iter().enumerate() {
        if at > 0 {
            out.push(',');
        }
        let _ = write!(out, "{id}");
    }
    out.push(']');
}

fn write_millis(out: &mut String, time: Option<Duration>) {
    match time {
        Some(time) => {
            let _ = write!(out, "{:.3}", time.as_secs_f64() * 1000.0);
        }
        None => out.push_str("null"),
    }
}

fn write_location(out: &mut String, at: Option<&'static Location<'static>>) {
    match at {
        Some(at) => write_str(out, &at.to_string()),
        None => out.push_str("null"),
    }
}

/// A number (an id, a line), or `null`.
fn write_opt_number(out: &mut String, number: Option<impl std::fmt::Display>) {
    match number {
        Some(number) => {
            let _ = write!(out, "{number}");
        }
        None => out.push_str("null"),
    }
}

fn write_opt_str(out: &mut String, text: Option<&str>) {
    match text {
        Some(text) => write_str(out, text),
        None => out.push_str("null"),
    }
}

/// `text` as a JSON string: quoted, with `"`, `\` and control characters
/// escaped (RFC 8259, section 7).
fn write_str(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        write_str(&mut out, "a \"quoted\" \\ name\n\u{1}é");
        assert_eq!(out, "\"a \\\"quoted\\\" \\\\ name\\n\\u0001é\"");
    }
}
