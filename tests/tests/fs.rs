//! `green::fs`: every function and `File` operation gives what `std::fs`
//! gives for the same call (values and error kinds), from coroutines, from
//! plain threads and on a multi-worker runtime; a thousand coroutines work
//! on files at once; a coroutine keeps running while another waits for
//! the disk; and a cancelled operation either completed or had no effect,
//! a cancelled `File` read leaving the offset where its result says.
//!
//! Each test works in a directory of its own ([`TempDir`]), removed at the
//! end. Cancellation tests that depend on when a deadline lands accept
//! every outcome the documentation allows and check that the outcome is
//! consistent; the ones that need a definite order get it from a blocked
//! pool thread or a FIFO, never from a sleep.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::ffi::{CString, OsString};
use std::fmt::Debug;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use green::fs::{self, File, OpenOptions};
use green_tests::{describe, open_fds, run_in_child};

/// A directory of one test's own, removed (with what is in it) when
/// dropped.
struct TempDir {
    /// Its path, unique to the process and the test.
    path: PathBuf,
}

impl TempDir {
    /// Creates `green-fs-<test>-<pid>-<n>` in the system's temporary
    /// directory.
    fn new(test: &str) -> io::Result<TempDir> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("green-fs-{test}-{}-{n}", std::process::id()));
        std::fs::create_dir(&path)?;
        Ok(TempDir { path })
    }

    fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// `len` bytes that differ with `seed` and repeat only every 251 bytes, so
/// that a byte out of place shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// Asserts that `green` and `std` gave the same outcome: equal values, or
/// errors of one kind and one OS error code.
#[track_caller]
fn same<T: PartialEq + Debug>(what: &str, green: io::Result<T>, std: io::Result<T>) {
    match (&green, &std) {
        (Ok(g), Ok(s)) => assert_eq!(g, s, "{what}"),
        (Err(g), Err(s)) => {
            assert_eq!(g.kind(), s.kind(), "{what}: green gave {g}, std gave {s}");
            assert_eq!(g.raw_os_error(), s.raw_os_error(), "{what}: green gave {g}, std gave {s}");
        }
        _ => panic!("{what}: green gave {green:?}, std gave {std:?}"),
    }
}

/// The error of `result`, which must have failed.
#[track_caller]
fn error_of<T: Debug>(what: &str, result: io::Result<T>) -> io::Error {
    match result {
        Ok(value) => panic!("{what}: expected an error, got {value:?}"),
        Err(err) => err,
    }
}

/// A joined coroutine's own result.
fn joined<T>(result: Result<io::Result<T>, green::JoinError>) -> io::Result<T> {
    result.map_err(|err| io::Error::other(format!("the coroutine failed: {err}")))?
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Makes a FIFO at `path`.
fn mkfifo(path: &Path) -> io::Result<()> {
    let name = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: `name` is a NUL-terminated string that lives across the call.
    if unsafe { libc::mkfifo(name.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Parks (in 1 ms sleeps) until `done` holds. A condition to wait for, not
/// a timing: the limit, far beyond need, only turns a hang into a failure.
#[track_caller]
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..60_000 {
        if done() {
            return;
        }
        green::sleep(Duration::from_millis(1)).expect("this coroutine is not cancelled");
    }
    panic!("gave up waiting until {what}");
}

/// Durations for a deadline to land at every stage of an operation: before
/// it is queued, while queued, while running, after; and never.
const DEADLINES: [Duration; 9] = [
    Duration::ZERO,
    Duration::from_nanos(1),
    Duration::from_micros(10),
    Duration::from_micros(50),
    Duration::from_micros(200),
    Duration::from_millis(1),
    Duration::from_millis(3),
    Duration::from_millis(10),
    Duration::from_secs(3600),
];

/// Runs `body` under a timeout of `deadline` and returns what `body`
/// itself returned, whether or not the scope reports that it elapsed.
fn under_timeout<T>(deadline: Duration, body: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let outcome = RefCell::new(None);
    let _ = green::timeout(deadline, || *outcome.borrow_mut() = Some(body()));
    outcome.into_inner().expect("the body ran")
}

// ---------------------------------------------------------------------------
// Round trips

#[test]
fn write_read_and_metadata_round_trip() -> io::Result<()> {
    let dir = TempDir::new("round-trip")?;
    green::run(|| -> io::Result<()> {
        let path = dir.join("data");
        let bytes = pattern(100_000, 3);
        fs::write(&path, &bytes)?;
        assert_eq!(fs::read(&path)?, bytes);
        fs::write(&path, "text, é")?;
        assert_eq!(fs::read_to_string(&path)?, "text, é");
        let metadata = fs::metadata(&path)?;
        assert!(metadata.is_file());
        assert_eq!(metadata.len(), "text, é".len() as u64);
        assert_eq!(metadata.modified()?, std::fs::metadata(&path)?.modified()?);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o604))?;
        assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o604);
        assert!(fs::exists(&path)?);
        assert!(fs::try_exists(&path)?);
        fs::remove_file(&path)?;
        assert!(!fs::exists(&path)?);
        assert!(!fs::try_exists(&path)?);
        Ok(())
    })
}

#[test]
fn copy_rename_and_links_round_trip() -> io::Result<()> {
    let dir = TempDir::new("links")?;
    green::run(|| -> io::Result<()> {
        let bytes = pattern(300_000, 9);
        fs::write(dir.join("a"), &bytes)?;
        fs::set_permissions(dir.join("a"), fs::Permissions::from_mode(0o640))?;

        assert_eq!(fs::copy(dir.join("a"), dir.join("b"))?, bytes.len() as u64);
        assert_eq!(fs::read(dir.join("b"))?, bytes);
        assert_eq!(
            fs::metadata(dir.join("b"))?.permissions().mode() & 0o777,
            0o640,
            "copy keeps permissions"
        );

        fs::rename(dir.join("b"), dir.join("c"))?;
        assert!(!fs::exists(dir.join("b"))?);
        assert_eq!(fs::read(dir.join("c"))?, bytes);
        fs::write(dir.join("d"), "replaced")?;
        fs::rename(dir.join("c"), dir.join("d"))?;
        assert_eq!(fs::read(dir.join("d"))?, bytes, "rename replaces its target");

        fs::hard_link(dir.join("a"), dir.join("hard"))?;
        assert_eq!(fs::metadata(dir.join("a"))?.len(), bytes.len() as u64);
        assert_eq!(std::os::unix::fs::MetadataExt::nlink(&fs::metadata(dir.join("a"))?), 2);
        fs::remove_file(dir.join("a"))?;
        assert_eq!(fs::read(dir.join("hard"))?, bytes);

        fs::symlink("hard", dir.join("soft"))?;
        assert_eq!(fs::read_link(dir.join("soft"))?, Path::new("hard"));
        assert!(fs::symlink_metadata(dir.join("soft"))?.is_symlink());
        assert!(fs::metadata(dir.join("soft"))?.is_file(), "metadata follows the link");
        assert_eq!(fs::canonicalize(dir.join("soft"))?, std::fs::canonicalize(dir.join("hard"))?);
        fs::symlink("missing", dir.join("broken"))?;
        assert!(!fs::exists(dir.join("broken"))?, "a broken link does not exist");
        Ok(())
    })
}

#[test]
fn directories_round_trip() -> io::Result<()> {
    let dir = TempDir::new("directories")?;
    green::run(|| -> io::Result<()> {
        fs::create_dir(dir.join("one"))?;
        fs::create_dir_all(dir.join("one/two/three/four"))?;
        fs::create_dir_all(dir.join("one/two/three/four"))?; // exists already: fine
        assert!(fs::metadata(dir.join("one/two/three/four"))?.is_dir());
        fs::write(dir.join("one/two/file"), "x")?;
        let not_empty = error_of("remove_dir of a full directory", fs::remove_dir(dir.join("one/two")));
        assert_eq!(not_empty.kind(), io::ErrorKind::DirectoryNotEmpty);
        fs::remove_dir(dir.join("one/two/three/four"))?;
        assert!(!fs::exists(dir.join("one/two/three/four"))?);
        fs::remove_dir_all(dir.join("one"))?;
        assert!(!fs::exists(dir.join("one"))?);
        Ok(())
    })
}

#[test]
fn read_dir_lists_every_name_with_its_type() -> io::Result<()> {
    let dir = TempDir::new("read-dir")?;
    green::run(|| -> io::Result<()> {
        let mut expected = BTreeSet::new();
        for i in 0..200 {
            let name = format!("file-{i}");
            fs::write(dir.join(&name), vec![b'x'; i])?;
            expected.insert((OsString::from(name), false, i as u64));
        }
        for i in 0..5 {
            let name = format!("dir-{i}");
            fs::create_dir(dir.join(&name))?;
            let len = std::fs::metadata(dir.join(&name))?.len();
            expected.insert((OsString::from(name), true, len));
        }
        let listing = fs::read_dir(&dir.path)?;
        assert_eq!(listing.len(), 205);
        let mut seen = BTreeSet::new();
        for entry in listing {
            let entry = entry?;
            assert_eq!(entry.path(), dir.path.join(entry.file_name()));
            assert!(format!("{entry:?}").contains(&*entry.file_name().to_string_lossy()));
            let is_dir = entry.file_type()?.is_dir();
            assert_eq!(is_dir, entry.metadata()?.is_dir());
            seen.insert((entry.file_name(), is_dir, entry.metadata()?.len()));
        }
        assert_eq!(seen, expected);
        Ok(())
    })
}

#[test]
fn read_dir_is_the_listing_at_the_call() -> io::Result<()> {
    let dir = TempDir::new("read-dir-snapshot")?;
    green::run(|| -> io::Result<()> {
        fs::write(dir.join("before"), "")?;
        let listing = fs::read_dir(&dir.path)?;
        fs::write(dir.join("after"), "")?;
        fs::remove_file(dir.join("before"))?;
        let entries = listing.collect::<io::Result<Vec<_>>>()?;
        assert_eq!(entries.len(), 1, "the file created after the call is not listed");
        let entry = &entries[0];
        assert_eq!(entry.file_name(), "before");
        assert!(entry.file_type()?.is_file(), "the type was read at the listing");
        // Its metadata is read now, and it is gone: as std's entry says.
        let gone = error_of("metadata of a removed entry", entry.metadata());
        assert_eq!(gone.kind(), io::ErrorKind::NotFound);
        assert_eq!(fs::read_dir(&dir.path)?.count(), 1);
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Errors

#[test]
fn errors_have_the_kinds_std_gives() -> io::Result<()> {
    let dir = TempDir::new("errors")?;
    let (missing, file, full_dir, empty_dir) =
        (dir.join("missing"), dir.join("file"), dir.join("full"), dir.join("empty"));
    std::fs::write(&file, "contents")?;
    std::fs::create_dir(&full_dir)?;
    std::fs::write(full_dir.join("inside"), "")?;
    std::fs::create_dir(&empty_dir)?;
    let through_file = file.join("sub");
    green::run(|| {
        let kind = |result: io::Result<()>| result.map_err(|err| err.kind());
        assert_eq!(kind(fs::read(&missing).map(drop)), Err(io::ErrorKind::NotFound));
        assert_eq!(kind(File::open(&missing).map(drop)), Err(io::ErrorKind::NotFound));
        assert_eq!(
            kind(OpenOptions::new().write(true).open(&dir.path).map(drop)),
            Err(io::ErrorKind::IsADirectory)
        );

        same("read missing", fs::read(&missing), std::fs::read(&missing));
        same("read_to_string missing", fs::read_to_string(&missing), std::fs::read_to_string(&missing));
        same("read a directory", fs::read(&full_dir), std::fs::read(&full_dir));
        same("write a directory", fs::write(&full_dir, "x"), std::fs::write(&full_dir, "x"));
        same("write through a file", fs::write(&through_file, "x"), std::fs::write(&through_file, "x"));
        let len = |m: io::Result<fs::Metadata>| m.map(|m| m.len());
        same("metadata missing", len(fs::metadata(&missing)), len(std::fs::metadata(&missing)));
        same(
            "metadata through a file",
            len(fs::metadata(&through_file)),
            len(std::fs::metadata(&through_file)),
        );
        same(
            "symlink_metadata missing",
            len(fs::symlink_metadata(&missing)),
            len(std::fs::symlink_metadata(&missing)),
        );
        same("create_dir existing", fs::create_dir(&full_dir), std::fs::create_dir(&full_dir));
        let orphan = missing.join("child");
        same("create_dir without parent", fs::create_dir(&orphan), std::fs::create_dir(&orphan));
        same(
            "create_dir_all through a file",
            fs::create_dir_all(&through_file),
            std::fs::create_dir_all(&through_file),
        );
        same("remove_file missing", fs::remove_file(&missing), std::fs::remove_file(&missing));
        same("remove_file a directory", fs::remove_file(&empty_dir), std::fs::remove_file(&empty_dir));
        same("remove_dir missing", fs::remove_dir(&missing), std::fs::remove_dir(&missing));
        same("remove_dir full", fs::remove_dir(&full_dir), std::fs::remove_dir(&full_dir));
        same("remove_dir a file", fs::remove_dir(&file), std::fs::remove_dir(&file));
        same("remove_dir_all missing", fs::remove_dir_all(&missing), std::fs::remove_dir_all(&missing));
        same("rename missing", fs::rename(&missing, &orphan), std::fs::rename(&missing, &orphan));
        same(
            "rename onto a full dir",
            fs::rename(&empty_dir, &full_dir),
            std::fs::rename(&empty_dir, &full_dir),
        );
        same("rename a dir onto a file", fs::rename(&empty_dir, &file), std::fs::rename(&empty_dir, &file));
        let copied = dir.join("copied");
        same("copy missing", fs::copy(&missing, &copied), std::fs::copy(&missing, &copied));
        same("copy a directory", fs::copy(&full_dir, &copied), std::fs::copy(&full_dir, &copied));
        same(
            "hard_link onto existing",
            fs::hard_link(&file, &full_dir),
            std::fs::hard_link(&file, &full_dir),
        );
        same("hard_link missing", fs::hard_link(&missing, &copied), std::fs::hard_link(&missing, &copied));
        same(
            "symlink onto existing",
            fs::symlink(&file, &full_dir),
            std::os::unix::fs::symlink(&file, &full_dir),
        );
        same("read_link of a file", fs::read_link(&file), std::fs::read_link(&file));
        same("read_link missing", fs::read_link(&missing), std::fs::read_link(&missing));
        same("canonicalize missing", fs::canonicalize(&missing), std::fs::canonicalize(&missing));
        let permissions = std::fs::Permissions::from_mode(0o600);
        same(
            "set_permissions missing",
            fs::set_permissions(&missing, permissions.clone()),
            std::fs::set_permissions(&missing, permissions),
        );
        same("exists through a file", fs::exists(&through_file), std::fs::exists(&through_file));
        same("exists missing", fs::exists(&missing), std::fs::exists(&missing));
        same(
            "read_dir missing",
            fs::read_dir(&missing).map(Iterator::count),
            std::fs::read_dir(&missing).map(Iterator::count),
        );
        same(
            "read_dir of a file",
            fs::read_dir(&file).map(Iterator::count),
            std::fs::read_dir(&file).map(Iterator::count),
        );

        let opened = |green: io::Result<File>, std: io::Result<std::fs::File>, what: &str| {
            same(what, green.map(drop), std.map(drop));
        };
        opened(File::open(&missing), std::fs::File::open(&missing), "File::open missing");
        opened(
            File::create(&through_file),
            std::fs::File::create(&through_file),
            "File::create through a file",
        );
        opened(File::create_new(&file), std::fs::File::create_new(&file), "File::create_new existing");
        opened(
            OpenOptions::new().open(&file),
            std::fs::OpenOptions::new().open(&file),
            "open with no access",
        );
        #[expect(clippy::nonsensical_open_options, reason = "the error it gives is what is compared")]
        let std_truncate_read_only = std::fs::OpenOptions::new().read(true).truncate(true).open(&file);
        opened(
            OpenOptions::new().read(true).truncate(true).open(&file),
            std_truncate_read_only,
            "truncate without write",
        );
        opened(
            OpenOptions::new().write(true).open(&full_dir),
            std::fs::OpenOptions::new().write(true).open(&full_dir),
            "a directory opened for writing",
        );
        opened(
            OpenOptions::new().append(true).open(&missing),
            std::fs::OpenOptions::new().append(true).open(&missing),
            "append to a missing file without create",
        );

        // Errors of an open file's operations, which root gets too.
        let (mut green_dir, mut std_dir) = (File::open(&full_dir)?, std::fs::File::open(&full_dir)?);
        same(
            "read_to_end of a directory",
            green_dir.read_to_end(&mut Vec::new()),
            std_dir.read_to_end(&mut Vec::new()),
        );
        same("read of a directory", green_dir.read(&mut [0; 8]), std_dir.read(&mut [0; 8]));
        let (mut green_file, mut std_file) = (File::open(&file)?, std::fs::File::open(&file)?);
        same("write to a file opened to read", green_file.write(b"x"), std_file.write(b"x"));
        same("write_all to a file opened to read", green_file.write_all(b"x"), std_file.write_all(b"x"));
        same("set_len of a file opened to read", green_file.set_len(0), std_file.set_len(0));
        same(
            "seek before the start",
            green_file.seek(SeekFrom::Current(-1)),
            std_file.seek(SeekFrom::Current(-1)),
        );
        assert_eq!(std::fs::read_to_string(&file)?, "contents", "no failed call changed the file");
        Ok::<(), io::Error>(())
    })
}

/// The checks of a file in a directory the user cannot search, for a user
/// whom permission checks apply to.
fn check_permission_denied() -> io::Result<()> {
    let dir = TempDir::new("permission-denied")?;
    let locked = dir.join("locked");
    std::fs::create_dir(&locked)?;
    let secret = locked.join("secret");
    std::fs::write(&secret, "s")?;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000))?;
    let outcome = green::run(|| -> io::Result<()> {
        let denied = error_of("read in a locked directory", fs::read(&secret));
        assert_eq!(denied.kind(), io::ErrorKind::PermissionDenied);
        same("read", fs::read(&secret), std::fs::read(&secret));
        same("File::open", File::open(&secret).map(drop), std::fs::File::open(&secret).map(drop));
        same("write", fs::write(&secret, "w"), std::fs::write(&secret, "w"));
        let len = |m: io::Result<fs::Metadata>| m.map(|m| m.len());
        same("metadata", len(fs::metadata(&secret)), len(std::fs::metadata(&secret)));
        same("exists", fs::exists(&secret), std::fs::exists(&secret));
        same(
            "read_dir",
            fs::read_dir(&locked).map(Iterator::count),
            std::fs::read_dir(&locked).map(Iterator::count),
        );
        same("create_dir inside", fs::create_dir(locked.join("d")), std::fs::create_dir(locked.join("d")));
        Ok(())
    });
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755))?;
    outcome
}

#[test]
fn a_file_in_a_directory_without_permission_is_permission_denied() -> io::Result<()> {
    if !is_root() {
        return check_permission_denied();
    }
    // Root passes every permission check: the checks run in a child
    // process that gives root up first (to `nobody`).
    let output = run_in_child("a_file_in_a_directory_without_permission_is_permission_denied", || {
        // SAFETY: setgroups with an empty list reads no memory.
        assert_eq!(
            unsafe { libc::setgroups(0, std::ptr::null()) },
            0,
            "setgroups: {}",
            io::Error::last_os_error()
        );
        // SAFETY: setgid has no memory preconditions.
        assert_eq!(unsafe { libc::setgid(65534) }, 0, "setgid: {}", io::Error::last_os_error());
        // SAFETY: setuid has no memory preconditions.
        assert_eq!(unsafe { libc::setuid(65534) }, 0, "setuid: {}", io::Error::last_os_error());
        assert!(!is_root());
        if let Err(err) = check_permission_denied() {
            panic!("as nobody: {err}");
        }
    })?;
    assert!(output.status.success(), "{}", describe(&output));
    Ok(())
}

#[test]
fn permissions_give_what_std_gives_for_whoever_runs_the_test() -> io::Result<()> {
    // As root both succeed, as another user both fail: either way, alike.
    let dir = TempDir::new("permission-parity")?;
    let locked = dir.join("locked");
    std::fs::create_dir(&locked)?;
    std::fs::write(locked.join("secret"), "s")?;
    std::fs::write(dir.join("unreadable"), "u")?;
    std::fs::set_permissions(dir.join("unreadable"), std::fs::Permissions::from_mode(0o000))?;
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000))?;
    green::run(|| {
        same("read in a locked dir", fs::read(locked.join("secret")), std::fs::read(locked.join("secret")));
        same(
            "read an unreadable file",
            fs::read(dir.join("unreadable")),
            std::fs::read(dir.join("unreadable")),
        );
        same(
            "open an unreadable file",
            File::open(dir.join("unreadable")).map(drop),
            std::fs::File::open(dir.join("unreadable")).map(drop),
        );
    });
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

#[test]
fn invalid_utf8_is_invalid_data_and_leaves_the_string_alone() -> io::Result<()> {
    let dir = TempDir::new("utf8")?;
    let path = dir.join("latin1");
    std::fs::write(&path, b"caf\xe9")?;
    green::run(|| -> io::Result<()> {
        let err = error_of("read_to_string of Latin-1", fs::read_to_string(&path));
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        same("read_to_string", fs::read_to_string(&path), std::fs::read_to_string(&path));
        let mut text = String::from("kept");
        let err = error_of("File::read_to_string", File::open(&path)?.read_to_string(&mut text));
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(text, "kept");
        let mut empty = String::new();
        let err = error_of(
            "File::read_to_string into an empty string",
            File::open(&path)?.read_to_string(&mut empty),
        );
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(empty, "");
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// File

#[test]
fn file_read_write_seek_round_trip() -> io::Result<()> {
    let dir = TempDir::new("file")?;
    green::run(|| -> io::Result<()> {
        let path = dir.join("digits");
        let mut file = File::options().read(true).write(true).create_new(true).open(&path)?;
        file.write_all(b"0123456789")?;
        assert_eq!(file.stream_position()?, 10);
        assert_eq!(file.seek(SeekFrom::Start(2))?, 2);
        let mut three = [0; 3];
        file.read_exact(&mut three)?;
        assert_eq!(&three, b"234");
        assert_eq!(file.seek(SeekFrom::Current(-1))?, 4);
        let mut one = [0; 1];
        assert_eq!(file.read(&mut one)?, 1);
        assert_eq!(&one, b"4");
        assert_eq!(file.seek(SeekFrom::End(-2))?, 8);
        let mut rest = Vec::new();
        assert_eq!(file.read_to_end(&mut rest)?, 2);
        assert_eq!(rest, b"89");
        assert_eq!(file.read(&mut one)?, 0, "at the end");
        assert_eq!(file.read(&mut [])?, 0);
        assert_eq!(file.seek(SeekFrom::End(5))?, 15, "past the end, as std allows");
        file.write_all(b"!")?;
        writeln!(file, " {} + {} = {}", 1, 2, 3)?;
        write!(file, "plain")?;
        file.flush()?;
        file.rewind()?;
        let mut all = String::from("before:");
        file.read_to_string(&mut all)?;
        assert_eq!(all, "before:0123456789\0\0\0\0\0! 1 + 2 = 3\nplain");
        let mut appended = vec![b'>'];
        file.seek(SeekFrom::Start(7))?;
        assert_eq!(file.read_to_end(&mut appended)?, 25);
        assert_eq!(appended, b">789\0\0\0\0\0! 1 + 2 = 3\nplain");
        assert_eq!(std::fs::read(&path)?, &all.as_bytes()[7..]);
        Ok(())
    })
}

#[test]
fn file_methods_work_as_std_does() -> io::Result<()> {
    let dir = TempDir::new("file-methods")?;
    green::run(|| -> io::Result<()> {
        let path = dir.join("file");
        let file = File::create(&path)?;
        (&file).write_all(b"abcdef")?;
        file.set_len(3)?;
        assert_eq!(fs::read(&path)?, b"abc");
        file.set_len(5)?;
        assert_eq!(fs::read(&path)?, b"abc\0\0");
        assert_eq!((&file).stream_position()?, 6, "set_len does not move the offset");
        file.sync_all()?;
        file.sync_data()?;
        assert_eq!(file.metadata()?.len(), 5);
        let mut permissions = file.metadata()?.permissions();
        permissions.set_mode(0o444);
        file.set_permissions(permissions)?;
        assert!(file.metadata()?.permissions().readonly());
        assert!(format!("{file:?}").contains("File"), "Debug shows the std file: {file:?}");

        // A clone shares the offset.
        let clone = file.try_clone()?;
        assert_ne!(clone.as_raw_fd(), file.as_raw_fd());
        (&clone).seek(SeekFrom::Start(1))?;
        assert_eq!((&file).stream_position()?, 1);

        // Into std and back: the same descriptor, and the same offset.
        let fd = file.as_raw_fd();
        let mut std_file = file.into_std()?;
        assert_eq!(std_file.as_raw_fd(), fd);
        assert_eq!(std_file.stream_position()?, 1);
        let mut back = File::from(std_file);
        let mut rest = Vec::new();
        // Opened for writing only: reading fails as std's does.
        same(
            "read of a write-only file",
            back.read_to_end(&mut rest),
            std::fs::File::create(dir.join("w"))?.read_to_end(&mut Vec::new()),
        );
        let reader = File::from(std::os::fd::OwnedFd::from(std::fs::File::open(&path)?));
        let mut text = Vec::new();
        (&reader).read_to_end(&mut text)?;
        assert_eq!(text, b"abc\0\0");
        Ok(())
    })
}

#[test]
fn write_fmt_writes_once_or_not_at_all() -> io::Result<()> {
    /// An argument whose formatting fails.
    struct Failing;
    impl std::fmt::Display for Failing {
        fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            Err(std::fmt::Error)
        }
    }
    let dir = TempDir::new("write-fmt")?;
    green::run(|| -> io::Result<()> {
        let path = dir.join("formatted");
        let mut file = File::create(&path)?;
        write!(file, "{}-{:>4}|{:?}", 1, 2, "three")?;
        let err = error_of("write! with a failing argument", write!(file, "before {Failing} after"));
        assert!(err.to_string().contains("Display"), "the message names the cause: {err}");
        assert_eq!(fs::read_to_string(&path)?, "1-   2|\"three\"", "the failed write! wrote nothing");
        Ok(())
    })
}

#[test]
fn shared_references_and_clones_share_the_offset() -> io::Result<()> {
    let dir = TempDir::new("shared")?;
    // Blocks of 4 KiB, each starting with its number.
    const BLOCK: usize = 4096;
    const BLOCKS: u32 = 256;
    let mut data = Vec::new();
    for n in 0..BLOCKS {
        let mut block = pattern(BLOCK, n as u8);
        block[..4].copy_from_slice(&n.to_le_bytes());
        data.extend_from_slice(&block);
    }
    std::fs::write(dir.join("blocks"), &data)?;
    green::run(|| -> io::Result<()> {
        let file = Rc::new(File::open(dir.join("blocks"))?);
        // Eight coroutines read blocks through `&File` at once: the offset is
        // one, so together they read each block exactly once.
        let readers: Vec<_> = (0..8)
            .map(|_| {
                let file = file.clone();
                green::spawn(move || -> io::Result<Vec<(u32, Vec<u8>)>> {
                    let mut blocks = Vec::new();
                    loop {
                        let mut block = vec![0; BLOCK];
                        match (&*file).read_exact(&mut block) {
                            Ok(()) => {
                                let n = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
                                blocks.push((n, block));
                            }
                            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => return Ok(blocks),
                            Err(err) => return Err(err),
                        }
                    }
                })
            })
            .collect();
        let mut blocks = Vec::new();
        for reader in readers {
            blocks.extend(joined(reader.join())?);
        }
        blocks.sort_by_key(|(n, _)| *n);
        assert_eq!(blocks.len(), BLOCKS as usize);
        let joined_blocks: Vec<u8> = blocks.into_iter().flat_map(|(_, block)| block).collect();
        assert!(joined_blocks == data, "the blocks read are the file, each once");

        // Writes through a clone go on where the original stopped.
        let path = dir.join("two-handles");
        let first = File::create(&path)?;
        let second = first.try_clone()?;
        (&first).write_all(b"abc")?;
        (&second).write_all(b"def")?;
        write!(&first, "{}", 123)?;
        assert_eq!(fs::read_to_string(&path)?, "abcdef123");
        Ok(())
    })
}

#[test]
fn read_exact_past_the_end_is_unexpected_eof() -> io::Result<()> {
    let dir = TempDir::new("read-exact")?;
    let path = dir.join("five");
    std::fs::write(&path, "12345")?;
    green::run(|| -> io::Result<()> {
        let mut file = File::open(&path)?;
        let mut ten = [0; 10];
        let err = error_of("read_exact of 10 from 5", file.read_exact(&mut ten));
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        let mut std_file = std::fs::File::open(&path)?;
        same("read_exact past the end", file.read_exact(&mut ten), std_file.read_exact(&mut ten));
        file.rewind()?;
        let mut five = [0; 5];
        file.read_exact(&mut five)?;
        assert_eq!(&five, b"12345");
        file.read_exact(&mut [])?;
        Ok(())
    })
}

#[test]
fn write_all_of_10_mib_then_read_to_end_is_equal() -> io::Result<()> {
    let dir = TempDir::new("ten-mib")?;
    let bytes = pattern(10 << 20, 77);
    green::run(|| -> io::Result<()> {
        let path = dir.join("big");
        let mut file = File::options().read(true).write(true).create(true).truncate(true).open(&path)?;
        file.write_all(&bytes)?;
        assert_eq!(file.metadata()?.len(), bytes.len() as u64);
        file.rewind()?;
        let mut back = Vec::new();
        assert_eq!(file.read_to_end(&mut back)?, bytes.len());
        assert!(back == bytes, "read_to_end gives back what write_all wrote");
        assert!(fs::read(&path)? == bytes);
        // Through a buffered reader, in small reads.
        let mut buffered = io::BufReader::new(File::open(&path)?);
        let mut again = Vec::new();
        let mut piece = [0; 1000];
        loop {
            let n = buffered.read(&mut piece)?;
            if n == 0 {
                break;
            }
            again.extend_from_slice(&piece[..n]);
        }
        assert!(again == bytes);
        Ok(())
    })
}

#[test]
fn a_read_into_a_huge_buffer_and_a_huge_write_are_short_at_most() -> io::Result<()> {
    let dir = TempDir::new("huge-buffer")?;
    let small = pattern(100, 1);
    let big = pattern(5 << 20, 2);
    std::fs::write(dir.join("small"), &small)?;
    green::run(|| -> io::Result<()> {
        let mut huge = vec![0u8; 64 << 20];
        let mut file = File::open(dir.join("small"))?;
        assert_eq!(file.read(&mut huge)?, 100);
        assert_eq!(&huge[..100], &small[..]);
        assert_eq!(file.read(&mut huge)?, 0);

        // A single write or read may be short (std allows it); in a loop
        // they move everything.
        let mut out = File::create(dir.join("big"))?;
        let mut written = 0;
        while written < big.len() {
            let n = out.write(&big[written..])?;
            assert!(n > 0, "a write to a file moves something");
            written += n;
        }
        let mut input = File::open(dir.join("big"))?;
        let mut read = 0;
        loop {
            let n = input.read(&mut huge[read..])?;
            if n == 0 {
                break;
            }
            read += n;
        }
        assert_eq!(read, big.len());
        assert!(huge[..read] == big[..]);
        Ok(())
    })
}

#[test]
fn the_types_are_send_and_sync() {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<File>();
    send_and_sync::<OpenOptions>();
    send_and_sync::<fs::ReadDir>();
    send_and_sync::<fs::DirEntry>();
}

// ---------------------------------------------------------------------------
// Many coroutines, other coroutines, other threads

#[test]
fn a_thousand_coroutines_each_with_its_own_file() -> io::Result<()> {
    let dir = TempDir::new("thousand")?;
    let root = dir.path.clone();
    green::run(move || -> io::Result<()> {
        let workers: Vec<_> = (0..1000)
            .map(|i| {
                let path = root.join(format!("file-{i}"));
                green::spawn(move || -> io::Result<()> {
                    let text = format!("coroutine {i}; ").repeat(10 + i % 90);
                    let mut file = File::create(&path)?;
                    file.write_all(text.as_bytes())?;
                    drop(file);
                    assert_eq!(fs::read_to_string(&path)?, text);
                    let mut back = String::new();
                    File::open(&path)?.read_to_string(&mut back)?;
                    assert_eq!(back, text);
                    assert_eq!(fs::metadata(&path)?.len(), text.len() as u64);
                    fs::remove_file(&path)
                })
            })
            .collect();
        for worker in workers {
            joined(worker.join())?;
        }
        assert_eq!(fs::read_dir(&root)?.count(), 0, "every coroutine removed its file");
        Ok(())
    })
}

#[test]
fn a_coroutine_keeps_running_while_another_writes_50_mib() -> io::Result<()> {
    let dir = TempDir::new("ticker")?;
    let chunk = pattern(1 << 20, 5);
    green::run(|| -> io::Result<()> {
        let writing = Rc::new(Cell::new(false));
        let done = Rc::new(Cell::new(false));
        let ticks_while_writing = Rc::new(Cell::new(0u64));
        let ticker = {
            let (writing, done, ticks) = (writing.clone(), done.clone(), ticks_while_writing.clone());
            green::spawn(move || {
                while !done.get() {
                    if writing.get() {
                        ticks.set(ticks.get() + 1);
                    }
                    green::yield_now();
                }
            })
        };
        let mut file = File::create(dir.join("fifty"))?;
        for _ in 0..50 {
            writing.set(true);
            file.write_all(&chunk)?;
            writing.set(false);
        }
        done.set(true);
        ticker.join().map_err(|err| io::Error::other(err.to_string()))?;
        assert!(ticks_while_writing.get() > 0, "the ticker ran while the writer waited for the disk");
        assert_eq!(fs::metadata(dir.join("fifty"))?.len(), 50 << 20);
        Ok(())
    })
}

#[test]
fn fs_works_on_plain_threads() -> io::Result<()> {
    let dir = TempDir::new("plain-threads")?;
    let work = |path: PathBuf, seed: u8| -> io::Result<()> {
        assert!(green::try_current().is_none(), "a plain thread");
        let bytes = pattern(200_000, seed);
        fs::write(&path, &bytes)?;
        assert!(fs::read(&path)? == bytes);
        let mut file = File::options().read(true).write(true).open(&path)?;
        file.seek(SeekFrom::End(-10))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)?;
        assert_eq!(tail, bytes[bytes.len() - 10..]);
        file.write_all(b"end")?;
        assert_eq!(fs::metadata(&path)?.len(), bytes.len() as u64 + 3);
        let listed = fs::read_dir(path.parent().expect("a parent"))?.collect::<io::Result<Vec<_>>>()?;
        assert!(listed.iter().any(|entry| entry.path() == path));
        fs::remove_file(&path)
    };
    // The test's own thread, and eight more at once.
    work(dir.join("main"), 0)?;
    let threads: Vec<_> = (0..8u8)
        .map(|i| {
            let path = dir.path.join(format!("thread-{i}"));
            std::thread::spawn(move || work(path, i))
        })
        .collect();
    for thread in threads {
        thread.join().map_err(|_| io::Error::other("a plain thread panicked"))??;
    }
    Ok(())
}

#[test]
fn fs_works_on_a_multi_worker_runtime() -> io::Result<()> {
    let dir = TempDir::new("workers")?;
    let root = dir.path.clone();
    green::Builder::new().workers(2).run(move || -> io::Result<()> {
        let handles: Vec<_> = (0..64u8)
            .map(|i| {
                let path = root.join(format!("distributed-{i}"));
                green::spawn_distributed(move || -> io::Result<()> {
                    let bytes = pattern(50_000 + usize::from(i) * 1000, i);
                    let mut file = File::create(&path)?;
                    file.write_all(&bytes)?;
                    file.sync_data()?;
                    let mut back = Vec::new();
                    File::open(&path)?.read_to_end(&mut back)?;
                    assert!(back == bytes);
                    fs::rename(&path, path.with_extension("done"))?;
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle.join().map_err(|err| io::Error::other(err.to_string()))??;
        }
        assert_eq!(fs::read_dir(&root)?.count(), 64);
        Ok(())
    })
}

// ---------------------------------------------------------------------------
// Cancellation

#[test]
fn a_timeout_around_a_large_read_gives_the_data_or_a_cancellation() -> io::Result<()> {
    let dir = TempDir::new("cancel-read")?;
    let path = dir.join("large");
    let bytes = pattern(32 << 20, 11);
    std::fs::write(&path, &bytes)?;
    green::run(|| -> io::Result<()> {
        let (mut completed, mut cancelled) = (0, 0);
        for _ in 0..3 {
            for deadline in DEADLINES {
                match under_timeout(deadline, || fs::read(&path)) {
                    Ok(data) => {
                        assert!(data == bytes, "a read that returns has all the data");
                        completed += 1;
                    }
                    Err(err) => {
                        assert!(green::is_cancelled(&err), "only a cancellation: {err}");
                        cancelled += 1;
                    }
                }
                match under_timeout(deadline, || fs::read_to_string(&path)) {
                    Ok(_) => panic!("the pattern is not UTF-8"),
                    Err(err) => assert!(
                        green::is_cancelled(&err) || err.kind() == io::ErrorKind::InvalidData,
                        "{err}"
                    ),
                }
            }
        }
        assert!(completed >= 3, "the reads without a deadline completed");
        assert!(cancelled >= 3, "the reads with a deadline already passed were cancelled");
        Ok(())
    })
}

#[test]
fn a_cancelled_write_happened_whole_or_not_at_all() -> io::Result<()> {
    let dir = TempDir::new("cancel-write")?;
    let path = dir.join("target");
    let (old, new) = (pattern(8 << 20, 1), pattern(6 << 20, 2));
    green::run(|| -> io::Result<()> {
        for deadline in DEADLINES.into_iter().chain(DEADLINES) {
            fs::write(&path, &old)?;
            let outcome = under_timeout(deadline, || fs::write(&path, &new));
            let now = fs::read(&path)?;
            match outcome {
                Ok(()) => assert!(now == new, "a write that reports success happened ({deadline:?})"),
                Err(err) => {
                    assert!(green::is_cancelled(&err), "{err}");
                    assert!(now == old, "a write that reports cancellation never started ({deadline:?})");
                }
            }

            // The same through a File, over bytes of the same length.
            fs::write(&path, &old)?;
            let mut file = OpenOptions::new().write(true).open(&path)?;
            let same_length = pattern(old.len(), 3);
            let outcome = under_timeout(deadline, || file.write_all(&same_length));
            let now = fs::read(&path)?;
            match outcome {
                Ok(()) => {
                    assert!(now == same_length, "write_all that reports success happened");
                    assert_eq!(file.stream_position()?, old.len() as u64);
                }
                Err(err) => {
                    assert!(green::is_cancelled(&err), "{err}");
                    assert!(now == old, "write_all that reports cancellation never started");
                    assert_eq!(file.stream_position()?, 0);
                }
            }
        }
        Ok(())
    })
}

#[test]
fn a_cancelled_file_read_leaves_the_offset_where_its_result_says() -> io::Result<()> {
    let dir = TempDir::new("cancel-offset")?;
    let path = dir.join("large");
    let bytes = pattern(16 << 20, 13);
    std::fs::write(&path, &bytes)?;
    green::run(|| -> io::Result<()> {
        for deadline in DEADLINES.into_iter().chain(DEADLINES) {
            // `read`: either it returned `n` bytes, the file's first `n`,
            // and the offset moved by `n`; or it was cancelled and the
            // offset did not move.
            let mut file = File::open(&path)?;
            let mut buf = vec![0; 4 << 20];
            match under_timeout(deadline, || file.read(&mut buf)) {
                Ok(n) => {
                    assert!(n > 0 && buf[..n] == bytes[..n]);
                    assert_eq!(file.stream_position()?, n as u64);
                }
                Err(err) => {
                    assert!(green::is_cancelled(&err), "{err}");
                    assert_eq!(file.stream_position()?, 0, "a cancelled read did not move the offset");
                }
            }

            // `read_to_end` from the middle, into a vector that already
            // holds something.
            file.seek(SeekFrom::Start(1000))?;
            let mut all = b"prefix".to_vec();
            match under_timeout(deadline, || file.read_to_end(&mut all)) {
                Ok(n) => {
                    assert_eq!(n, bytes.len() - 1000);
                    assert!(all[..6] == *b"prefix" && all[6..] == bytes[1000..]);
                    assert_eq!(file.stream_position()?, bytes.len() as u64);
                }
                Err(err) => {
                    assert!(green::is_cancelled(&err), "{err}");
                    assert_eq!(all, b"prefix", "a cancelled read_to_end appended nothing");
                    assert_eq!(file.stream_position()?, 1000);
                }
            }

            // `read_exact`, and a `seek` under the same deadline.
            file.rewind()?;
            let mut exact = vec![0; 8 << 20];
            let outcome = under_timeout(deadline, || {
                file.read_exact(&mut exact)?;
                file.seek(SeekFrom::Current(100))
            });
            match outcome {
                Ok(at) => {
                    assert_eq!(at, (8 << 20) + 100);
                    assert!(exact[..] == bytes[..8 << 20]);
                }
                Err(err) => {
                    assert!(green::is_cancelled(&err), "{err}");
                    let at = file.stream_position()?;
                    assert!(at == 0 || at == 8 << 20, "the read happened whole or not at all: {at}");
                    if at == 8 << 20 {
                        assert!(exact[..] == bytes[..8 << 20], "a read that happened filled the buffer");
                    }
                }
            }
        }
        Ok(())
    })
}

/// An operation on the file system, named in a list of them.
type Effect<'a> = Box<dyn Fn() -> io::Result<()> + 'a>;

#[test]
fn operations_queued_behind_a_busy_pool_never_happen_when_cancelled() -> io::Result<()> {
    let dir = TempDir::new("cancel-queued")?;
    let (file, other, sub) = (dir.join("file"), dir.join("other"), dir.join("sub"));
    std::fs::write(&file, "old")?;
    std::fs::create_dir(&sub)?;
    std::fs::write(sub.join("inside"), "")?;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644))?;
    green::Builder::new().blocking_threads(1).run(|| -> io::Result<()> {
        // The pool's only thread waits here until released.
        let (release, released) = std::sync::mpsc::channel::<()>();
        let blocker = green::blocking::spawn(move || released.recv()).map_err(io::Error::from)?;
        wait_until("the blocker runs", || green::blocking::stats().busy == 1);

        let effects: Vec<(&str, Effect<'_>)> = vec![
            ("write", Box::new(|| fs::write(&file, "new"))),
            ("create_dir", Box::new(|| fs::create_dir(&other))),
            ("create_dir_all", Box::new(|| fs::create_dir_all(other.join("a/b")))),
            ("remove_file", Box::new(|| fs::remove_file(&file))),
            ("remove_dir_all", Box::new(|| fs::remove_dir_all(&sub))),
            ("rename", Box::new(|| fs::rename(&file, &other))),
            ("copy", Box::new(|| fs::copy(&file, &other).map(drop))),
            ("hard_link", Box::new(|| fs::hard_link(&file, &other))),
            ("symlink", Box::new(|| fs::symlink(&file, &other))),
            ("set_permissions", Box::new(|| fs::set_permissions(&file, fs::Permissions::from_mode(0o600)))),
            ("File::create", Box::new(|| File::create(&file).map(drop))),
            ("File::create_new", Box::new(|| File::create_new(&other).map(drop))),
            ("read", Box::new(|| fs::read(&file).map(drop))),
        ];
        for (what, effect) in &effects {
            let outcome = under_timeout(Duration::from_millis(2), effect);
            let err = error_of(what, outcome);
            assert!(green::is_cancelled(&err), "{what}: {err}");
        }
        assert_eq!(green::blocking::stats().cancelled_queued, effects.len() as u64);
        release.send(()).map_err(io::Error::other)?;
        blocker.join().map_err(io::Error::from)?.map_err(io::Error::other)?;
        assert_eq!(green::blocking::stats().started, 1, "only the blocker ever ran");

        assert_eq!(fs::read_to_string(&file)?, "old", "not written, truncated or removed");
        assert_eq!(fs::metadata(&file)?.permissions().mode() & 0o777, 0o644);
        assert!(!fs::exists(&other)?, "nothing created, renamed, copied or linked");
        assert!(fs::exists(sub.join("inside"))?, "not removed");
        Ok(())
    })
}

#[test]
fn a_started_file_read_finishes_despite_a_cancellation() -> io::Result<()> {
    let dir = TempDir::new("cancel-started-read")?;
    let fifo = dir.join("fifo");
    mkfifo(&fifo)?;
    green::run(|| -> io::Result<()> {
        // Read and write ends at once, so that opening does not wait.
        let file = Rc::new(OpenOptions::new().read(true).write(true).open(&fifo)?);
        let started_before = green::blocking::stats().started;
        let reader = {
            let file = file.clone();
            green::spawn(move || {
                let mut buf = [0; 16];
                let read = (&*file).read(&mut buf).map(|n| buf[..n].to_vec());
                let next = green::sleep(Duration::ZERO);
                (read, next)
            })
        };
        // The read is on a pool thread, waiting for data, when it is
        // cancelled: it has started, so its coroutine waits for it.
        wait_until("the read runs", || green::blocking::stats().started > started_before);
        reader.cancel();
        for _ in 0..3 {
            green::yield_now();
        }
        (&*file).write_all(b"late data")?;
        let (read, next) = reader.join().map_err(|err| io::Error::other(err.to_string()))?;
        assert_eq!(read?, b"late data", "the started read returned what it read");
        assert!(next.is_err(), "the cancellation shows at the next blocking call");
        let stats = green::blocking::stats();
        assert_eq!((stats.cancelled_queued, stats.cancelled_running), (0, 0));
        Ok(())
    })
}

#[test]
fn a_started_pure_open_is_abandoned_on_cancellation() -> io::Result<()> {
    let dir = TempDir::new("cancel-started-open")?;
    let fifo = dir.join("fifo");
    mkfifo(&fifo)?;
    green::run(|| -> io::Result<()> {
        let started_before = green::blocking::stats().started;
        let opener = {
            let fifo = fifo.clone();
            // Opening a FIFO to read waits for a writer.
            green::spawn(move || File::open(&fifo).map(drop))
        };
        wait_until("the open runs", || green::blocking::stats().started > started_before);
        opener.cancel();
        let outcome = green::timeout(Duration::from_secs(60), || opener.join())
            .expect("the abandoned open returned without its writer")
            .map_err(|err| io::Error::other(err.to_string()))?;
        let err = error_of("the cancelled open", outcome);
        assert!(green::is_cancelled(&err), "{err}");
        assert_eq!(green::blocking::stats().cancelled_running, 1);
        // Its pool thread is still in `open`: a writer lets it finish, and
        // the file it opened is closed there.
        let writer = OpenOptions::new().write(true).open(&fifo)?;
        wait_until("the abandoned open finishes", || {
            let stats = green::blocking::stats();
            stats.busy == 0 && stats.completed == stats.started
        });
        drop(writer);
        Ok(())
    })
}

#[test]
fn cancelled_operations_leave_no_descriptor_open() -> io::Result<()> {
    let output = run_in_child("cancelled_operations_leave_no_descriptor_open", || {
        // Made and removed in the child: it ends with `exit`, which runs no
        // destructor after the body.
        let checked = || -> io::Result<()> {
            let dir = TempDir::new("cancel-fds")?;
            let path = dir.join("data");
            std::fs::write(&path, pattern(4 << 20, 21))?;
            green::run(|| -> io::Result<()> {
                let before = open_fds()?;
                for round in 0..20 {
                    for deadline in DEADLINES {
                        let _ = under_timeout(deadline, || fs::read(&path));
                        let _ = under_timeout(deadline, || File::open(&path)?.read_to_end(&mut Vec::new()));
                        let _ =
                            under_timeout(deadline, || fs::write(dir.path.join(format!("w{round}")), b"w"));
                        let _ = under_timeout(deadline, || {
                            fs::read_dir(&dir.path).map(|listing| listing.count())
                        });
                        let _ = under_timeout(deadline, || File::open(&path)?.metadata().map(drop));
                    }
                }
                // Abandoned reads finish on their pool threads and close what
                // they opened there: wait for that (a leak fails the wait).
                wait_until("every descriptor opened is closed", || open_fds().ok() == Some(before));
                Ok(())
            })
        };
        if let Err(err) = checked() {
            panic!("{err}");
        }
    })?;
    assert!(output.status.success(), "{}", describe(&output));
    Ok(())
}
