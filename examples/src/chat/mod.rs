//! The parts of the `chat` example that touch no socket, so that their
//! tests run without a network: the member list and its rules
//! ([`Hub`]) and the line splitter ([`LineReader`]).
//!
//! They live in this library rather than in `chat.rs` so that `chat` stays
//! an ordinary example: `cargo test` builds ordinary examples as programs,
//! which the integration tests in `tests/cli.rs` run, whereas an example
//! with unit tests of its own (`test = true`) is built only as a test
//! harness.

mod hub;
mod lines;

pub use hub::{Departure, DropReason, Dropped, Hub, Member};
pub use lines::{Line, LineReader, READ_CHUNK};
