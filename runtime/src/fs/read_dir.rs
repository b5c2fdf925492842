//! [`ReadDir`] and [`DirEntry`]: a directory listing taken in one hand-off.
//!
//! `std`'s `ReadDir` calls `readdir(3)` as it is iterated, and each call
//! may wait for the disk; sending every step to the pool would cost a
//! hand-off per entry. So [`super::read_dir`] walks the whole directory on
//! a pool thread and brings back the entries, and the iterator here only
//! hands them out.
//!
//! `std`'s `DirEntry` is not plain data either: its `metadata` is an
//! `fstatat(2)` and its `file_type` may be an `lstat(2)`. So [`DirEntry`]
//! wraps it and sends those calls to the pool. The file type is read on
//! the pool thread during the listing: most file systems store it in the
//! directory itself, so it is free there, and `file_type` then needs no
//! hand-off.

use std::ffi::OsString;
use std::fmt;
use std::fs::{FileType, Metadata};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::blocking::unblock_io;

/// Lists the directory `path`, on a pool thread: every entry, or the
/// errors met on the way, as `std`'s iterator yields them.
pub(super) fn list(path: &Path) -> io::Result<ReadDir> {
    let entries: Vec<io::Result<DirEntry>> = std::fs::read_dir(path)?
        .map(|entry| entry.map(|entry| DirEntry { file_type: entry.file_type().ok(), std: Arc::new(entry) }))
        .collect();
    Ok(ReadDir { entries: entries.into_iter() })
}

/// The entries of a directory, as listed by [`read_dir`](super::read_dir).
///
/// An iterator of `io::Result<DirEntry>`, like [`std::fs::ReadDir`], but the
/// listing was taken whole when `read_dir` was called: iterating never
/// waits, and never sees a file created or removed after the call. The
/// entries are in memory until the iterator and every entry taken from it
/// are dropped, and so is the directory's descriptor (as for `std`'s
/// entries, which keep it to read their metadata).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-struct-read-dir-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir(&dir)?;
///     for name in ["a", "b", "c"] {
///         green::fs::write(dir.join(name), name)?;
///     }
///     let listing = green::fs::read_dir(&dir)?;
///     assert_eq!(listing.len(), 3);
///     let mut names = Vec::new();
///     for entry in listing {
///         names.push(entry?.file_name());
///     }
///     names.sort();
///     assert_eq!(names, ["a", "b", "c"]);
///     green::fs::remove_dir_all(&dir)
/// }).unwrap();
/// ```
#[derive(Debug)]
pub struct ReadDir {
    /// The entries and errors met, in the order the listing met them.
    entries: std::vec::IntoIter<io::Result<DirEntry>>,
}

impl Iterator for ReadDir {
    type Item = io::Result<DirEntry>;

    fn next(&mut self) -> Option<io::Result<DirEntry>> {
        self.entries.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.entries.size_hint()
    }
}

impl ExactSizeIterator for ReadDir {}

/// One entry of a directory listing; see [`ReadDir`].
///
/// The methods of [`std::fs::DirEntry`]: [`path`](DirEntry::path) and
/// [`file_name`](DirEntry::file_name) are in memory,
/// [`metadata`](DirEntry::metadata) is one hand-off to the pool, and
/// [`file_type`](DirEntry::file_type) was read during the listing (it takes
/// a hand-off only if that failed).
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("green-fs-doc-dir-entry-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     green::fs::create_dir(&dir)?;
///     green::fs::write(dir.join("only"), "four")?;
///     let entry = green::fs::read_dir(&dir)?.next().expect("one entry")?;
///     assert_eq!(entry.path(), dir.join("only"));
///     assert!(entry.file_type()?.is_file());
///     assert_eq!(entry.metadata()?.len(), 4);
///     green::fs::remove_dir_all(&dir)
/// }).unwrap();
/// ```
pub struct DirEntry {
    /// `std`'s entry, shared with the pool thread that reads its metadata.
    std: Arc<std::fs::DirEntry>,
    /// Its type, read on the pool thread during the listing; `None` if
    /// that failed, and then [`DirEntry::file_type`] asks again.
    file_type: Option<FileType>,
}

impl DirEntry {
    /// The full path of the entry: the directory given to `read_dir`
    /// joined with [`file_name`](DirEntry::file_name).
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("green-fs-doc-dir-entry-path-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     green::fs::create_dir(&dir)?;
    ///     green::fs::write(dir.join("x"), "")?;
    ///     let entry = green::fs::read_dir(&dir)?.next().expect("one entry")?;
    ///     assert_eq!(entry.path(), dir.join("x"));
    ///     green::fs::remove_dir_all(&dir)
    /// }).unwrap();
    /// ```
    pub fn path(&self) -> PathBuf {
        self.std.path()
    }

    /// The name of the entry within its directory.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("green-fs-doc-dir-entry-name-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     green::fs::create_dir(&dir)?;
    ///     green::fs::write(dir.join("x"), "")?;
    ///     let entry = green::fs::read_dir(&dir)?.next().expect("one entry")?;
    ///     assert_eq!(entry.file_name(), "x");
    ///     green::fs::remove_dir_all(&dir)
    /// }).unwrap();
    /// ```
    pub fn file_name(&self) -> OsString {
        self.std.file_name()
    }

    /// The metadata of the entry, not following a symbolic link (as
    /// [`std::fs::DirEntry::metadata`]), read now on the pool.
    ///
    /// ```
    /// # let dir = std::env::temp_dir()
    /// #     .join(format!("green-fs-doc-dir-entry-metadata-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     green::fs::create_dir(&dir)?;
    ///     green::fs::write(dir.join("x"), "abc")?;
    ///     let entry = green::fs::read_dir(&dir)?.next().expect("one entry")?;
    ///     assert_eq!(entry.metadata()?.len(), 3);
    ///     green::fs::remove_dir_all(&dir)
    /// }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::fs::DirEntry::metadata`] (`NotFound` if the entry was
    /// removed since the listing); a cancellation error (a pure read).
    pub fn metadata(&self) -> io::Result<Metadata> {
        let entry = self.std.clone();
        unblock_io(move || entry.metadata())
    }

    /// The type of the entry, not following a symbolic link (as
    /// [`std::fs::DirEntry::file_type`]), as it was at the listing.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("green-fs-doc-dir-entry-type-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     green::fs::create_dir_all(dir.join("sub"))?;
    ///     let entry = green::fs::read_dir(&dir)?.next().expect("one entry")?;
    ///     assert!(entry.file_type()?.is_dir());
    ///     green::fs::remove_dir_all(&dir)
    /// }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// Only when the listing could not tell the type and asking again on
    /// the pool fails, as [`std::fs::DirEntry::file_type`] does; a
    /// cancellation error (a pure read).
    pub fn file_type(&self) -> io::Result<FileType> {
        if let Some(file_type) = self.file_type {
            return Ok(file_type);
        }
        let entry = self.std.clone();
        unblock_io(move || entry.file_type())
    }
}

impl fmt::Debug for DirEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DirEntry").field(&self.path()).finish()
    }
}
