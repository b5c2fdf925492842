//! Files and directories with the names and semantics of `std::fs`, done on
//! the [blocking pool](crate::blocking) so that a coroutine never holds its
//! thread while the disk works.
//!
//! Linux has no readiness for regular files: a `read(2)` from a file whose
//! pages are not cached sleeps in the kernel, and nothing can tell in
//! advance. So every operation here that touches the file system (opening,
//! reading, writing, seeking, listing, syncing, asking for metadata) is one
//! closure sent to a pool thread, which makes the `std` call; the calling
//! coroutine parks until the result comes back, and the others of its
//! worker run meanwhile. On a plain thread, outside any runtime, which
//! would block anyway, the `std` call is made in place, with no hand-off.
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("green-fs-doc-module-{}", std::process::id()));
//! green::run(|| -> std::io::Result<()> {
//!     green::fs::create_dir_all(dir.join("notes"))?;
//!     green::fs::write(dir.join("notes/monday.txt"), "buy bread")?;
//!     let text = green::fs::read_to_string(dir.join("notes/monday.txt"))?;
//!     assert_eq!(text, "buy bread");
//!     let names: Vec<_> = green::fs::read_dir(dir.join("notes"))?
//!         .map(|entry| entry.map(|entry| entry.file_name()))
//!         .collect::<Result<_, _>>()?;
//!     assert_eq!(names, ["monday.txt"]);
//!     green::fs::remove_dir_all(&dir)
//! }).unwrap();
//! ```
//!
//! # What a call costs
//!
//! One hand-off to a pool thread and back, on top of the system call
//! itself: each call of a free function, and each call of [`File`]'s
//! `read`, `write`, `seek`, `read_exact`, `read_to_end`, `read_to_string`,
//! `write_all` and `write_fmt` (the loops of the last ones run on the pool
//! thread, not one hand-off per turn). A hand-off is a wake-up of a pool
//! thread and a wake-up back: around ten microseconds on the 2-core CI VM
//! (the `unblock_round_trip` bench; DESIGN.md, "Blocking work"), where a
//! `std` read of 64 bytes from the page cache takes 0.2 µs. Data crosses in owned buffers: a `read` fills one on the pool
//! thread and copies it into yours, a `write` copies your bytes into one.
//! For many small reads or writes, wrap the file in [`std::io::BufReader`]
//! or [`std::io::BufWriter`], exactly as with `std`: then one hand-off
//! moves a whole buffer.
//!
//! # Cancellation
//!
//! Waiting for the pool is a cancellation point (a [`timeout`](crate::timeout)
//! scope, a cancelled task or group). The rule is that a cancelled
//! operation **either completed or had no effect**:
//!
//! * **Pure reads**, which change nothing: [`read`], [`read_to_string`],
//!   [`metadata`], [`symlink_metadata`], [`read_link`], [`canonicalize`],
//!   [`exists`], [`try_exists`], [`read_dir`], [`File::metadata`],
//!   [`DirEntry::metadata`], [`DirEntry::file_type`], and
//!   [`OpenOptions::open`] without `create`, `create_new` or `truncate`
//!   (so [`File::open`]). Cancelled before a pool thread took it, the read
//!   never runs; cancelled while it runs, the call returns at once, and
//!   the read runs to its end on the pool thread, where its result is
//!   dropped (a file it opened is closed there). Either way the call fails
//!   with a cancellation error ([`is_cancelled`](crate::is_cancelled)).
//! * **Operations with an effect**: [`write()`], [`create_dir`],
//!   [`create_dir_all`], [`remove_file`], [`remove_dir`],
//!   [`remove_dir_all`], [`rename`], [`copy`], [`hard_link`], [`symlink`],
//!   [`set_permissions`], [`OpenOptions::open`] with `create`, `create_new`
//!   or `truncate` (so [`File::create`] and [`File::create_new`]), and
//!   every [`File`] operation that moves the file's offset or changes the
//!   file: `read`, `write`, `seek` and their loops,
//!   [`set_len`](File::set_len), [`sync_all`](File::sync_all),
//!   [`sync_data`](File::sync_data),
//!   [`set_permissions`](File::set_permissions). Cancelled before a pool
//!   thread took it, the operation never runs and the call fails with a
//!   cancellation error; cancelled while it runs, the coroutine waits for
//!   it to end (shielded) and the call returns what really happened, so
//!   the cancellation shows at the next blocking call instead. Only the
//!   runtime's shutdown cuts that wait short: the call then fails with a
//!   cancellation error, and the operation still ends on its pool thread.
//!
//! So after a cancelled [`File`] read the file's offset is where the
//! result says: moved by the bytes returned if the read completed, not at
//! all if it failed with the cancellation error. A thread cannot be
//! interrupted safely, so a started operation is never cut short: a
//! cancelled [`copy`] of a large file waits for the copy, and a read from a
//! FIFO that never gets a writer keeps its pool thread (and, for a
//! [`File`] read, its coroutine) until it ends. `File` is meant for files
//! on a disk; for sockets, use [`green::net`](crate::net).
//!
//! # What is not done on the pool
//!
//! Calls that never wait for the disk run on the calling thread:
//! [`File::try_clone`] (a `dup`), `AsFd`/`AsRawFd`, and closing a file when
//! a [`File`] is dropped (`close(2)` of a local file does not wait for its
//! data to reach the disk; [`File::sync_all`] does).

mod file;
mod open_options;
mod read_dir;

use std::io;
use std::path::{Path, PathBuf};

use crate::blocking::{unblock_io, unblock_whole_io};

pub use file::File;
pub use open_options::OpenOptions;
pub use read_dir::{DirEntry, ReadDir};
// Plain data, with no method that waits for the disk: `std`'s own types.
pub use std::fs::{FileType, Metadata, Permissions};

/// The owned path to send to a pool thread.
fn owned(path: impl AsRef<Path>) -> PathBuf {
    path.as_ref().to_path_buf()
}

/// Reads the whole file at `path`; [`std::fs::read`] on the pool.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("green-fs-doc-read-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::write(&path, [1, 2, 3])?;
///     assert_eq!(green::fs::read(&path)?, [1, 2, 3]);
///     green::fs::remove_file(&path)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::read`] (`NotFound`, `PermissionDenied`, ...); a
/// cancellation error (a pure read: see [Cancellation](self#cancellation)).
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = owned(path);
    unblock_io(move || std::fs::read(path))
}

/// Reads the whole file at `path` as UTF-8; [`std::fs::read_to_string`] on
/// the pool.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("green-fs-doc-read-to-string-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::write(&path, "héllo")?;
///     assert_eq!(green::fs::read_to_string(&path)?, "héllo");
///     green::fs::remove_file(&path)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::read_to_string`]: `InvalidData` if the file is not UTF-8;
/// a cancellation error (a pure read).
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = owned(path);
    unblock_io(move || std::fs::read_to_string(path))
}

/// Creates or truncates the file at `path` and writes `contents` to it;
/// [`std::fs::write`] on the pool. `contents` is copied to send it.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("green-fs-doc-write-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::write(&path, "first")?;
///     green::fs::write(&path, "second")?; // replaces the contents
///     assert_eq!(green::fs::read_to_string(&path)?, "second");
///     green::fs::remove_file(&path)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::write`]; a cancellation error only if the write never
/// started (see [Cancellation](self#cancellation)).
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let (path, contents) = (owned(path), contents.as_ref().to_vec());
    unblock_whole_io(move || std::fs::write(path, contents))
}

/// The metadata of `path`, following symbolic links; [`std::fs::metadata`]
/// on the pool.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("green-fs-doc-metadata-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::write(&path, "12345")?;
///     let metadata = green::fs::metadata(&path)?;
///     assert!(metadata.is_file());
///     assert_eq!(metadata.len(), 5);
///     green::fs::remove_file(&path)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::metadata`]; a cancellation error (a pure read).
pub fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = owned(path);
    unblock_io(move || std::fs::metadata(path))
}

/// The metadata of `path` itself, not following a symbolic link;
/// [`std::fs::symlink_metadata`] on the pool.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-symlink-metadata-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir(&dir)?;
///     green::fs::symlink("nowhere", dir.join("link"))?;
///     assert!(green::fs::symlink_metadata(dir.join("link"))?.is_symlink());
///     green::fs::remove_dir_all(&dir)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::symlink_metadata`]; a cancellation error (a pure read).
pub fn symlink_metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
    let path = owned(path);
    unblock_io(move || std::fs::symlink_metadata(path))
}

/// Creates the directory `path`; [`std::fs::create_dir`] on the pool.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-create-dir-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir(&dir)?;
///     let again = green::fs::create_dir(&dir).unwrap_err();
///     assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
///     green::fs::remove_dir(&dir)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::create_dir`] (`AlreadyExists`, `NotFound` for a missing
/// parent, ...); a cancellation error only if it never started.
pub fn create_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = owned(path);
    unblock_whole_io(move || std::fs::create_dir(path))
}

/// Creates the directory `path` and its missing parents;
/// [`std::fs::create_dir_all`] on the pool, in one hand-off.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-create-dir-all-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir_all(dir.join("a/b/c"))?;
///     assert!(green::fs::metadata(dir.join("a/b/c"))?.is_dir());
///     green::fs::remove_dir_all(&dir)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::create_dir_all`]; a cancellation error only if it never
/// started.
pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = owned(path);
    unblock_whole_io(move || std::fs::create_dir_all(path))
}

/// Removes the file (or symbolic link) `path`; [`std::fs::remove_file`] on
/// the pool.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("green-fs-doc-remove-file-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::write(&path, "")?;
///     green::fs::remove_file(&path)?;
///     assert!(!green::fs::exists(&path)?);
///     Ok(())
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::remove_file`]; a cancellation error only if it never
/// started.
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = owned(path);
    unblock_whole_io(move || std::fs::remove_file(path))
}

/// Removes the empty directory `path`; [`std::fs::remove_dir`] on the pool.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-remove-dir-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir(&dir)?;
///     green::fs::remove_dir(&dir)?;
///     assert!(!green::fs::exists(&dir)?);
///     Ok(())
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::remove_dir`] (`DirectoryNotEmpty`, ...); a cancellation
/// error only if it never started.
pub fn remove_dir(path: impl AsRef<Path>) -> io::Result<()> {
    let path = owned(path);
    unblock_whole_io(move || std::fs::remove_dir(path))
}

/// Removes the directory `path` and everything in it;
/// [`std::fs::remove_dir_all`] on the pool, in one hand-off.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-remove-dir-all-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir_all(dir.join("inner"))?;
///     green::fs::write(dir.join("inner/file"), "x")?;
///     green::fs::remove_dir_all(&dir)?;
///     assert!(!green::fs::exists(&dir)?);
///     Ok(())
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::remove_dir_all`]; a cancellation error only if it never
/// started (once started, it runs to its end, however large the tree).
pub fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
    let path = owned(path);
    unblock_whole_io(move || std::fs::remove_dir_all(path))
}

/// Renames `from` to `to`, replacing `to` if it exists; [`std::fs::rename`]
/// on the pool.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-rename-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir(&dir)?;
///     green::fs::write(dir.join("draft"), "text")?;
///     green::fs::rename(dir.join("draft"), dir.join("final"))?;
///     assert_eq!(green::fs::read_to_string(dir.join("final"))?, "text");
///     assert!(!green::fs::exists(dir.join("draft"))?);
///     green::fs::remove_dir_all(&dir)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::rename`]; a cancellation error only if it never started.
pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
    let (from, to) = (owned(from), owned(to));
    unblock_whole_io(move || std::fs::rename(from, to))
}

/// Copies the contents and permissions of the file `from` to `to` and
/// returns the number of bytes copied; [`std::fs::copy`] on the pool, in
/// one hand-off (the kernel copies, with `copy_file_range` where it can).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-copy-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir(&dir)?;
///     green::fs::write(dir.join("original"), "same bytes")?;
///     assert_eq!(green::fs::copy(dir.join("original"), dir.join("copy"))?, 10);
///     assert_eq!(green::fs::read(dir.join("copy"))?, b"same bytes");
///     green::fs::remove_dir_all(&dir)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::copy`]; a cancellation error only if it never started
/// (once started, the copy runs to its end).
pub fn copy(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<u64> {
    let (from, to) = (owned(from), owned(to));
    unblock_whole_io(move || std::fs::copy(from, to))
}

/// Makes `link` a new name (a hard link) of the file `original`;
/// [`std::fs::hard_link`] on the pool.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-hard-link-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir(&dir)?;
///     green::fs::write(dir.join("one"), "shared")?;
///     green::fs::hard_link(dir.join("one"), dir.join("two"))?;
///     green::fs::remove_file(dir.join("one"))?;
///     assert_eq!(green::fs::read_to_string(dir.join("two"))?, "shared");
///     green::fs::remove_dir_all(&dir)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::hard_link`]; a cancellation error only if it never
/// started.
pub fn hard_link(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (owned(original), owned(link));
    unblock_whole_io(move || std::fs::hard_link(original, link))
}

/// Makes `link` a symbolic link to `original` (which need not exist);
/// [`std::os::unix::fs::symlink`] on the pool.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-symlink-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir(&dir)?;
///     green::fs::write(dir.join("target"), "behind the link")?;
///     green::fs::symlink("target", dir.join("link"))?;
///     assert_eq!(green::fs::read_to_string(dir.join("link"))?, "behind the link");
///     green::fs::remove_dir_all(&dir)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::os::unix::fs::symlink`]; a cancellation error only if it never
/// started.
pub fn symlink(original: impl AsRef<Path>, link: impl AsRef<Path>) -> io::Result<()> {
    let (original, link) = (owned(original), owned(link));
    unblock_whole_io(move || std::os::unix::fs::symlink(original, link))
}

/// The path a symbolic link points to; [`std::fs::read_link`] on the pool.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-read-link-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir(&dir)?;
///     green::fs::symlink("somewhere/else", dir.join("link"))?;
///     assert_eq!(green::fs::read_link(dir.join("link"))?, std::path::Path::new("somewhere/else"));
///     green::fs::remove_dir_all(&dir)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::read_link`] (`InvalidInput` if `path` is not a symbolic
/// link); a cancellation error (a pure read).
pub fn read_link(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = owned(path);
    unblock_io(move || std::fs::read_link(path))
}

/// The absolute form of `path` with every symbolic link, `.` and `..`
/// resolved; [`std::fs::canonicalize`] on the pool.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-canonicalize-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir_all(dir.join("real"))?;
///     let roundabout = dir.join("real/../real/.");
///     assert_eq!(green::fs::canonicalize(&roundabout)?, green::fs::canonicalize(dir.join("real"))?);
///     green::fs::remove_dir_all(&dir)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::canonicalize`] (`NotFound` if a component is missing); a
/// cancellation error (a pure read).
pub fn canonicalize(path: impl AsRef<Path>) -> io::Result<PathBuf> {
    let path = owned(path);
    unblock_io(move || std::fs::canonicalize(path))
}

/// Sets the permissions of `path`; [`std::fs::set_permissions`] on the pool.
///
/// ```
/// use std::os::unix::fs::PermissionsExt;
///
/// # let path = std::env::temp_dir().join(format!("green-fs-doc-set-permissions-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::write(&path, "")?;
///     green::fs::set_permissions(&path, green::fs::Permissions::from_mode(0o640))?;
///     assert_eq!(green::fs::metadata(&path)?.permissions().mode() & 0o777, 0o640);
///     green::fs::remove_file(&path)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::set_permissions`]; a cancellation error only if it never
/// started.
pub fn set_permissions(path: impl AsRef<Path>, permissions: Permissions) -> io::Result<()> {
    let path = owned(path);
    unblock_whole_io(move || std::fs::set_permissions(path, permissions))
}

/// Whether `path` exists (following symbolic links): `Ok(false)` for a
/// missing file or a broken link, an error when that cannot be told (for
/// example a parent directory that cannot be searched); [`std::fs::exists`]
/// on the pool.
///
/// ```
/// # let path = std::env::temp_dir().join(format!("green-fs-doc-exists-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     assert!(!green::fs::exists(&path)?);
///     green::fs::write(&path, "")?;
///     assert!(green::fs::exists(&path)?);
///     green::fs::remove_file(&path)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::exists`]; a cancellation error (a pure read).
pub fn exists(path: impl AsRef<Path>) -> io::Result<bool> {
    let path = owned(path);
    unblock_io(move || std::fs::exists(path))
}

/// [`exists`] under the name of [`Path::try_exists`], which it equals.
///
/// ```
/// green::run(|| {
///     assert!(green::fs::try_exists(std::env::temp_dir()).unwrap());
/// });
/// ```
///
/// # Errors
///
/// As [`exists`].
pub fn try_exists(path: impl AsRef<Path>) -> io::Result<bool> {
    exists(path)
}

/// The entries of the directory `path`, listed now in one hand-off;
/// [`std::fs::read_dir`] on the pool, collected.
///
/// The whole listing is taken at the call, so the iterator never waits: it
/// shows the directory as it was then, in the order the file system gave
/// (which is no particular order), without `.` and `..`. An error met
/// while listing is an `Err` item, as with `std`. A huge directory is held
/// in memory whole; see [`ReadDir`].
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-read-dir-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir_all(dir.join("sub"))?;
///     green::fs::write(dir.join("file"), "")?;
///     let mut names = Vec::new();
///     for entry in green::fs::read_dir(&dir)? {
///         let entry = entry?;
///         names.push((entry.file_name(), entry.file_type()?.is_dir()));
///     }
///     names.sort();
///     assert_eq!(names, [("file".into(), false), ("sub".into(), true)]);
///     green::fs::remove_dir_all(&dir)
/// }).unwrap();
/// ```
///
/// # Errors
///
/// As [`std::fs::read_dir`] (`NotFound`, `NotADirectory`, ...); a
/// cancellation error (a pure read).
pub fn read_dir(path: impl AsRef<Path>) -> io::Result<ReadDir> {
    let path = owned(path);
    unblock_io(move || read_dir::list(&path))
}
