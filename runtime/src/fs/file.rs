//! [`File`]: `std::fs::File` whose every disk operation runs on the pool.
//!
//! # Why the data is copied
//!
//! The `std` file sits in an `Arc`, and each operation sends a clone of
//! it to a pool thread (`std` implements `Read`, `Write` and `Seek` for
//! `&std::fs::File`, so shared access is all it needs). The caller's
//! buffer cannot go along: a `&mut [u8]` borrowed from the coroutine's
//! stack is not `'static`, and if the coroutine were torn down while the
//! pool thread still wrote into it, that would be a write into freed
//! memory. So the pool thread reads into a buffer of its own, which comes
//! back with the result and is copied into the caller's; a write copies
//! the caller's bytes into one first.
//!
//! ```text
//!   coroutine                     pool thread
//!   ---------                     -----------
//!   read(&mut buf)
//!     take scratch Vec  ──move──▶ read(2) into scratch[..len]
//!     (parked)                      │
//!   copy scratch[..n] ◀──move──── (scratch, n)
//!     into buf, keep scratch
//! ```
//!
//! The buffer is kept in the `File` between calls (up to
//! [`KEPT_SCRATCH`] bytes), so a steady stream of reads or writes does not
//! allocate, fault in and zero one per call: for reads of 1 MiB, fresh
//! buffers made each call about four times slower on a 2-core VM. A
//! single `read` or `write` moves at most [`CHUNK`] bytes, a short read
//! or write as `std` allows, so a `read` into a 1 GiB buffer does not
//! allocate 1 GiB; the loops (`read_exact`, `read_to_end`, `write_all`)
//! move everything in one hand-off, in a buffer of their size that is not
//! kept when it is larger than that.

use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use std::fs::{Metadata, Permissions};

use crate::blocking::{unblock_io, unblock_whole_io};

/// Most bytes one `read` or `write` call moves.
const CHUNK: usize = 2 * 1024 * 1024;

/// Largest buffer a `File` keeps between calls: as large as one `read`
/// or `write` can use (tokio's `File` keeps the same 2 MiB). A larger one,
/// from a `read_exact` or `write_all`, is dropped after its call, so an
/// idle file holds at most this much: the buffer of its largest call.
const KEPT_SCRATCH: usize = CHUNK;

/// An open file: [`std::fs::File`] for coroutines.
///
/// Every operation that may wait for the disk is one hand-off to the
/// [blocking pool](crate::blocking) (see the [module documentation](super)
/// for the cost and for what a cancellation does). [`Read`], [`Write`] and
/// [`Seek`] are implemented for `File` and for `&File`, as by `std`; the
/// looping methods `read_exact`, `read_to_end`, `read_to_string`,
/// `write_all` and `write_fmt` run their whole loop on the pool thread,
/// in one hand-off (`write_fmt` formats first, so when an argument's
/// `Display` fails nothing is written, where `std` would have written the
/// text before it). A single `read` or `write` moves at most 2 MiB (a short
/// read or write, which `std`'s contract allows). `flush` does nothing, as
/// for `std`'s unbuffered file: use [`sync_all`](File::sync_all) to reach
/// the disk, and [`std::io::BufReader`] or [`std::io::BufWriter`] to batch
/// small reads and writes.
///
/// ```
/// use std::io::{Read, Seek, SeekFrom, Write};
/// use green::fs::File;
///
/// # let path = std::env::temp_dir().join(format!("green-fs-doc-file-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     let mut file = File::create_new(&path)?;
///     file.write_all(b"hello, world")?;
///     file.seek(SeekFrom::Start(7))?;
///     let mut word = String::new();
///     file.read_to_string(&mut word)?;
///     assert_eq!(word, "world");
///     green::fs::remove_file(&path)
/// }).unwrap();
/// ```
pub struct File {
    /// The `std` file, shared with the pool thread running an operation
    /// on it (and, after a pure read was abandoned, with the pool thread
    /// finishing it).
    std: Arc<std::fs::File>,
    /// A buffer to carry data to and from the pool thread, kept between
    /// calls; see [`Scratch`].
    scratch: Scratch,
}

impl File {
    /// Opens the file at `path` for reading, on the pool; as
    /// [`std::fs::File::open`].
    ///
    /// ```
    /// use std::io::Read;
    ///
    /// # let path = std::env::temp_dir().join(format!("green-fs-doc-file-open-{}", std::process::id()));
    /// # std::fs::write(&path, "contents").unwrap();
    /// green::run(|| -> std::io::Result<()> {
    ///     let mut file = green::fs::File::open(&path)?;
    ///     let mut contents = String::new();
    ///     file.read_to_string(&mut contents)?;
    ///     assert_eq!(contents, "contents");
    ///     Ok(())
    /// }).unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::open`] (`NotFound`, `PermissionDenied`, ...); a
    /// cancellation error (a pure read).
    pub fn open(path: impl AsRef<Path>) -> io::Result<File> {
        File::open_with(std::fs::OpenOptions::new().read(true), path, Opening::ReadOnly)
    }

    /// Opens the file at `path` for writing, creating it if it does not
    /// exist and emptying it if it does, on the pool; as
    /// [`std::fs::File::create`].
    ///
    /// ```
    /// use std::io::Write;
    ///
    /// # let path = std::env::temp_dir().join(format!("green-fs-doc-file-create-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     green::fs::write(&path, "old and long")?;
    ///     green::fs::File::create(&path)?.write_all(b"new")?;
    ///     assert_eq!(green::fs::read_to_string(&path)?, "new");
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::create`]; a cancellation error only if the open
    /// never started.
    pub fn create(path: impl AsRef<Path>) -> io::Result<File> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        File::open_with(&options, path, Opening::MayChangeFiles)
    }

    /// Creates the file at `path` and opens it for reading and writing,
    /// failing if something is already there, on the pool; as
    /// [`std::fs::File::create_new`].
    ///
    /// ```
    /// # let path = std::env::temp_dir()
    /// #     .join(format!("green-fs-doc-file-create-new-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     green::fs::File::create_new(&path)?;
    ///     let taken = green::fs::File::create_new(&path).unwrap_err();
    ///     assert_eq!(taken.kind(), std::io::ErrorKind::AlreadyExists);
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::create_new`] (`AlreadyExists`, ...); a
    /// cancellation error only if the open never started.
    pub fn create_new(path: impl AsRef<Path>) -> io::Result<File> {
        let mut options = std::fs::OpenOptions::new();
        options.read(true).write(true).create_new(true);
        File::open_with(&options, path, Opening::MayChangeFiles)
    }

    /// Opens `path` with `std`'s `options` on the pool: the one way a
    /// path becomes a `File` ([`OpenOptions::open`](crate::fs::OpenOptions::open)
    /// comes here too). `opening` says whether the open may change the file
    /// system, which decides what a cancellation does (see
    /// [Cancellation](super#cancellation)).
    pub(super) fn open_with(
        options: &std::fs::OpenOptions,
        path: impl AsRef<Path>,
        opening: Opening,
    ) -> io::Result<File> {
        let (options, path) = (options.clone(), path.as_ref().to_path_buf());
        let open = move || options.open(path);
        let file = match opening {
            Opening::ReadOnly => unblock_io(open)?,
            Opening::MayChangeFiles => unblock_whole_io(open)?,
        };
        Ok(File::from(file))
    }

    /// The metadata of the open file (`fstat`), on the pool.
    ///
    /// ```
    /// use std::io::Write;
    ///
    /// # let path = std::env::temp_dir().join(format!("green-fs-doc-file-metadata-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     let mut file = green::fs::File::create(&path)?;
    ///     file.write_all(b"1234")?;
    ///     assert_eq!(file.metadata()?.len(), 4);
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::metadata`]; a cancellation error (a pure read).
    pub fn metadata(&self) -> io::Result<Metadata> {
        let file = self.std.clone();
        unblock_io(move || file.metadata())
    }

    /// Truncates or extends the file to `size` bytes (extending with
    /// zeros), on the pool; the offset does not move. As
    /// [`std::fs::File::set_len`].
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("green-fs-doc-file-set-len-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     let file = green::fs::File::create(&path)?;
    ///     file.set_len(3)?;
    ///     assert_eq!(green::fs::read(&path)?, [0, 0, 0]);
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::set_len`] (`InvalidInput` for a file not open
    /// for writing, ...); a cancellation error only if it never started.
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        let file = self.std.clone();
        unblock_whole_io(move || file.set_len(size))
    }

    /// Waits until the file's data and metadata have reached the disk
    /// (`fsync`), on the pool; as [`std::fs::File::sync_all`].
    ///
    /// ```
    /// use std::io::Write;
    ///
    /// # let path = std::env::temp_dir().join(format!("green-fs-doc-file-sync-all-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     let mut file = green::fs::File::create(&path)?;
    ///     file.write_all(b"durable")?;
    ///     file.sync_all()?;
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::sync_all`]; a cancellation error only if it
    /// never started.
    pub fn sync_all(&self) -> io::Result<()> {
        let file = self.std.clone();
        unblock_whole_io(move || file.sync_all())
    }

    /// Waits until the file's data has reached the disk, and the metadata
    /// needed to read it back (`fdatasync`), on the pool; as
    /// [`std::fs::File::sync_data`].
    ///
    /// ```
    /// use std::io::Write;
    ///
    /// # let path = std::env::temp_dir().join(format!("green-fs-doc-file-sync-data-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     let mut file = green::fs::File::create(&path)?;
    ///     file.write_all(b"durable data")?;
    ///     file.sync_data()?;
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::sync_data`]; a cancellation error only if it
    /// never started.
    pub fn sync_data(&self) -> io::Result<()> {
        let file = self.std.clone();
        unblock_whole_io(move || file.sync_data())
    }

    /// Sets the permissions of the open file (`fchmod`), on the pool; as
    /// [`std::fs::File::set_permissions`].
    ///
    /// ```
    /// # let path = std::env::temp_dir()
    /// #     .join(format!("green-fs-doc-file-set-permissions-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     let file = green::fs::File::create(&path)?;
    ///     let mut permissions = file.metadata()?.permissions();
    ///     permissions.set_readonly(true);
    ///     file.set_permissions(permissions)?;
    ///     assert!(file.metadata()?.permissions().readonly());
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::set_permissions`]; a cancellation error only if
    /// it never started.
    pub fn set_permissions(&self, permissions: Permissions) -> io::Result<()> {
        let file = self.std.clone();
        unblock_whole_io(move || file.set_permissions(permissions))
    }

    /// A second handle to the same open file (a duplicated descriptor:
    /// one offset, shared by both), made on the calling thread, since a
    /// `dup` never waits for the disk. As [`std::fs::File::try_clone`].
    ///
    /// ```
    /// use std::io::{Read, Write};
    ///
    /// # let path = std::env::temp_dir().join(format!("green-fs-doc-file-try-clone-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     green::fs::write(&path, "abcd")?;
    ///     let mut first = green::fs::File::open(&path)?;
    ///     let mut second = first.try_clone()?;
    ///     let mut two = [0; 2];
    ///     first.read_exact(&mut two)?;
    ///     second.read_exact(&mut two)?; // goes on where `first` stopped
    ///     assert_eq!(&two, b"cd");
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::fs::File::try_clone`]: `EMFILE` ("Too many open files")
    /// when the process is at its descriptor limit (`ulimit -n`).
    pub fn try_clone(&self) -> io::Result<File> {
        Ok(File::from(self.std.try_clone()?))
    }

    /// The `std` file, to hand to code that expects one. Its calls block
    /// the thread.
    ///
    /// ```
    /// # let path = std::env::temp_dir().join(format!("green-fs-doc-file-into-std-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     let file = green::fs::File::create(&path)?;
    ///     let std_file: std::fs::File = file.into_std()?;
    ///     drop(std_file);
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// Normally none: the `std` file is handed over as it is. Only while
    /// an operation on this file still runs on a pool thread, which holds
    /// the file too (its `metadata` abandoned by a cancellation, or any
    /// operation cut short by the runtime's shutdown), is a duplicate
    /// descriptor returned instead, and that can fail with `EMFILE` ("Too
    /// many open files") at the process's descriptor limit (`ulimit -n`).
    pub fn into_std(self) -> io::Result<std::fs::File> {
        match Arc::try_unwrap(self.std) {
            Ok(file) => Ok(file),
            Err(shared) => shared.try_clone(),
        }
    }
}

impl From<std::fs::File> for File {
    /// Takes over a `std` file; its operations then run on the pool.
    fn from(file: std::fs::File) -> File {
        File { std: Arc::new(file), scratch: Scratch::default() }
    }
}

impl From<OwnedFd> for File {
    /// Takes over an open file's descriptor.
    fn from(fd: OwnedFd) -> File {
        File::from(std::fs::File::from(fd))
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.std.as_fd()
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.std.as_raw_fd()
    }
}

impl fmt::Debug for File {
    /// As `std` shows a file: its descriptor, path and access mode.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.std, f)
    }
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let len = buf.len().min(CHUNK);
        let (file, mut scratch) = (self.std.clone(), self.scratch.take());
        let (scratch, n) = unblock_whole_io(move || {
            fill_to(&mut scratch, len);
            let n = (&*file).read(&mut scratch[..len])?;
            Ok((scratch, n))
        })?;
        buf[..n].copy_from_slice(&scratch[..n]);
        self.scratch.keep(scratch);
        Ok(n)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let len = buf.len();
        let (file, mut scratch) = (self.std.clone(), self.scratch.take());
        let (scratch, result) = unblock_whole_io(move || {
            fill_to(&mut scratch, len);
            let result = (&*file).read_exact(&mut scratch[..len]);
            Ok((scratch, result))
        })?;
        // On an error `buf` is left as it was: `std` leaves its contents
        // unspecified then.
        if result.is_ok() {
            buf.copy_from_slice(&scratch[..len]);
        }
        self.scratch.keep(scratch);
        result
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        let file = self.std.clone();
        // An empty `buf` itself travels to the pool thread and back, and
        // is filled there with no copy. Otherwise the bytes come back in a
        // vector of their own, appended here: if the hand-off failed
        // (cancelled before it started), `buf` is as it was.
        let mut bytes = if buf.is_empty() { mem::take(buf) } else { Vec::new() };
        let (bytes, result) = unblock_whole_io(move || {
            let result = (&*file).read_to_end(&mut bytes);
            Ok((bytes, result))
        })?;
        // What was read before an error is kept, as `std` keeps it.
        if buf.is_empty() {
            *buf = bytes;
        } else {
            buf.extend_from_slice(&bytes);
        }
        result
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        let file = self.std.clone();
        // As `read_to_end`; `std`'s `read_to_string` on the pool thread
        // leaves its string unchanged when the bytes are not UTF-8.
        let mut text = if buf.is_empty() { mem::take(buf) } else { String::new() };
        let (text, result) = unblock_whole_io(move || {
            let result = (&*file).read_to_string(&mut text);
            Ok((text, result))
        })?;
        if buf.is_empty() {
            *buf = text;
        } else {
            buf.push_str(&text);
        }
        result
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let bytes = &buf[..buf.len().min(CHUNK)];
        let (file, mut scratch) = (self.std.clone(), self.scratch.take());
        scratch.clear();
        scratch.extend_from_slice(bytes);
        let (scratch, n) = unblock_whole_io(move || {
            let n = (&*file).write(&scratch)?;
            Ok((scratch, n))
        })?;
        self.scratch.keep(scratch);
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let (file, mut scratch) = (self.std.clone(), self.scratch.take());
        scratch.clear();
        scratch.extend_from_slice(buf);
        let (scratch, result) = unblock_whole_io(move || {
            let result = (&*file).write_all(&scratch);
            Ok((scratch, result))
        })?;
        self.scratch.keep(scratch);
        result
    }

    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        // Formatted here, written in one hand-off (`std` would write each
        // piece of the format string and each argument separately).
        match args.as_str() {
            Some(text) => self.write_all(text.as_bytes()),
            None => {
                let mut text = String::new();
                fmt::Write::write_fmt(&mut text, args).map_err(|_| {
                    io::Error::other(
                        "green::fs::File::write_fmt: a Display or Debug implementation of an argument \
                         returned an error, so nothing was written; fix that implementation",
                    )
                })?;
                self.write_all(text.as_bytes())
            }
        }
    }

    /// Nothing to do: the file has no buffer of its own, as `std`'s.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for &File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let file = self.std.clone();
        unblock_whole_io(move || (&*file).seek(pos))
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        (&*self).read_exact(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        (&*self).read_to_end(buf)
    }

    fn read_to_string(&mut self, buf: &mut String) -> io::Result<usize> {
        (&*self).read_to_string(buf)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (&*self).write_all(buf)
    }

    fn write_fmt(&mut self, args: fmt::Arguments<'_>) -> io::Result<()> {
        (&*self).write_fmt(args)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        (&*self).seek(pos)
    }
}

/// Whether an open may change the file system, for [`File::open_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Opening {
    /// Opens what is there: a pure read, abandoned when cancelled.
    ReadOnly,
    /// May create or truncate a file (`create`, `create_new`, `truncate`):
    /// once started, it is waited for when cancelled.
    MayChangeFiles,
}

/// Makes the first `len` bytes of `buf` initialized, to read into; bytes
/// already there are reused, not zeroed again.
fn fill_to(buf: &mut Vec<u8>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0);
    }
}

/// The buffer a [`File`] keeps between calls.
///
/// A call takes it (leaving an empty vector), sends it to the pool thread
/// with the work, and puts back what comes back. Calls through several
/// `&File` at once each take their own: the one that finds the place empty
/// allocates. What a call abandoned by a cancellation took is dropped with
/// its closure. The lock is held only to swap a vector, never across a
/// wait.
#[derive(Default)]
struct Scratch {
    /// The kept buffer (its initialized length is kept too, so a later read
    /// of no more bytes need not zero it again).
    kept: Mutex<Vec<u8>>,
}

impl Scratch {
    /// The kept buffer, or an empty one if another call has it.
    fn take(&self) -> Vec<u8> {
        mem::take(&mut *self.kept.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Keeps `buf` for the next call, if it is small enough to hold on
    /// to and larger than what is kept now.
    fn keep(&self, buf: Vec<u8>) {
        if buf.capacity() > KEPT_SCRATCH {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if buf.capacity() > kept.capacity() {
            *kept = buf;
        }
    }
}
