//! [`OpenOptions`]: `std::fs::OpenOptions`, opening on the pool.

use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::fs::file::{File, Opening};

/// How to open a file: the builder of [`std::fs::OpenOptions`], whose
/// [`open`](OpenOptions::open) runs on the blocking pool and returns a
/// [`File`].
///
/// ```
/// use std::io::{Read, Write};
/// use green::fs::OpenOptions;
///
/// # let path = std::env::temp_dir().join(format!("green-fs-doc-open-options-{}", std::process::id()));
/// green::run(|| -> std::io::Result<()> {
///     let mut log = OpenOptions::new().append(true).create(true).open(&path)?;
///     log.write_all(b"one\n")?;
///     let mut log = OpenOptions::new().append(true).open(&path)?;
///     log.write_all(b"two\n")?;
///     assert_eq!(green::fs::read_to_string(&path)?, "one\ntwo\n");
///     green::fs::remove_file(&path)
/// }).unwrap();
/// ```
///
/// An `open` that may create or truncate a file is an operation with an
/// effect: once started, a cancellation waits for it and returns its
/// outcome. Any other `open` is a pure read, abandoned on cancellation
/// (see [Cancellation](super#cancellation)).
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// `std`'s builder, cloned to the pool thread by `open`.
    std: std::fs::OpenOptions,
    /// `create` as set last: together with the next two, tells whether
    /// `open` can change the file system.
    create: bool,
    /// `create_new` as set last.
    create_new: bool,
    /// `truncate` as set last.
    truncate: bool,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl From<std::fs::OpenOptions> for OpenOptions {
    /// Takes over `std`'s builder. Its settings cannot be read back, so the
    /// open it makes counts as one that may create a file (it is waited for
    /// when cancelled once started).
    fn from(std: std::fs::OpenOptions) -> OpenOptions {
        OpenOptions { std, create: true, create_new: true, truncate: true }
    }
}

impl OpenOptions {
    /// Options with every flag off, as [`std::fs::OpenOptions::new`]: set
    /// at least `read`, `write` or `append` before opening.
    ///
    /// ```
    /// green::run(|| {
    ///     let nothing_asked = green::fs::OpenOptions::new().open(std::env::temp_dir());
    ///     assert_eq!(nothing_asked.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// });
    /// ```
    pub fn new() -> OpenOptions {
        OpenOptions { std: std::fs::OpenOptions::new(), create: false, create_new: false, truncate: false }
    }

    /// Opens for reading.
    ///
    /// ```
    /// use std::io::Read;
    ///
    /// # let path = std::env::temp_dir()
    /// #     .join(format!("green-fs-doc-open-options-read-{}", std::process::id()));
    /// # std::fs::write(&path, "to read").unwrap();
    /// green::run(|| -> std::io::Result<()> {
    ///     let mut text = String::new();
    ///     green::fs::OpenOptions::new().read(true).open(&path)?.read_to_string(&mut text)?;
    ///     assert_eq!(text, "to read");
    ///     Ok(())
    /// }).unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.std.read(read);
        self
    }

    /// Opens for writing (from the start, over what is there, unless
    /// `append` or `truncate` says otherwise).
    ///
    /// ```
    /// use std::io::Write;
    ///
    /// # let path = std::env::temp_dir()
    /// #     .join(format!("green-fs-doc-open-options-write-{}", std::process::id()));
    /// # std::fs::write(&path, "abcdef").unwrap();
    /// green::run(|| -> std::io::Result<()> {
    ///     green::fs::OpenOptions::new().write(true).open(&path)?.write_all(b"XY")?;
    ///     assert_eq!(green::fs::read_to_string(&path)?, "XYcdef");
    ///     Ok(())
    /// }).unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.std.write(write);
        self
    }

    /// Opens for writing at the end: every write appends, whatever the
    /// offset (`O_APPEND`).
    ///
    /// ```
    /// use std::io::Write;
    ///
    /// # let path = std::env::temp_dir()
    /// #     .join(format!("green-fs-doc-open-options-append-{}", std::process::id()));
    /// # std::fs::write(&path, "abc").unwrap();
    /// green::run(|| -> std::io::Result<()> {
    ///     green::fs::OpenOptions::new().append(true).open(&path)?.write_all(b"def")?;
    ///     assert_eq!(green::fs::read_to_string(&path)?, "abcdef");
    ///     Ok(())
    /// }).unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.std.append(append);
        self
    }

    /// Empties the file when opening it (needs `write`).
    ///
    /// ```
    /// # let path = std::env::temp_dir()
    /// #     .join(format!("green-fs-doc-open-options-truncate-{}", std::process::id()));
    /// # std::fs::write(&path, "abc").unwrap();
    /// green::run(|| -> std::io::Result<()> {
    ///     green::fs::OpenOptions::new().write(true).truncate(true).open(&path)?;
    ///     assert_eq!(green::fs::metadata(&path)?.len(), 0);
    ///     Ok(())
    /// }).unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.std.truncate(truncate);
        self.truncate = truncate;
        self
    }

    /// Creates the file if it does not exist (needs `write` or `append`).
    ///
    /// ```
    /// # let path = std::env::temp_dir()
    /// #     .join(format!("green-fs-doc-open-options-create-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     green::fs::OpenOptions::new().write(true).create(true).open(&path)?;
    ///     green::fs::OpenOptions::new().write(true).create(true).open(&path)?; // opens it again
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.std.create(create);
        self.create = create;
        self
    }

    /// Creates the file, failing with `AlreadyExists` if something is at
    /// the path, even a broken symbolic link (`O_CREAT | O_EXCL`); `create`
    /// and `truncate` are then ignored.
    ///
    /// ```
    /// # let path = std::env::temp_dir()
    /// #     .join(format!("green-fs-doc-open-options-create-new-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     green::fs::symlink("missing target", &path)?;
    ///     let taken = green::fs::OpenOptions::new().write(true).create_new(true).open(&path).unwrap_err();
    ///     assert_eq!(taken.kind(), std::io::ErrorKind::AlreadyExists);
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.std.create_new(create_new);
        self.create_new = create_new;
        self
    }

    /// The permission bits a created file gets, before the umask (default
    /// `0o666`); [`std::os::unix::fs::OpenOptionsExt::mode`].
    ///
    /// ```
    /// use std::os::unix::fs::PermissionsExt;
    ///
    /// # let path = std::env::temp_dir()
    /// #     .join(format!("green-fs-doc-open-options-mode-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     green::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
    ///     assert_eq!(green::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    pub fn mode(&mut self, mode: u32) -> &mut OpenOptions {
        self.std.mode(mode);
        self
    }

    /// Opens the file at `path` with these options, on the pool.
    ///
    /// ```
    /// use green::fs::OpenOptions;
    ///
    /// # let path = std::env::temp_dir()
    /// #     .join(format!("green-fs-doc-open-options-open-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     OpenOptions::new().write(true).create_new(true).open(&path)?;
    ///     let again = OpenOptions::new().write(true).create_new(true).open(&path).unwrap_err();
    ///     assert_eq!(again.kind(), std::io::ErrorKind::AlreadyExists);
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    ///
    /// # Errors
    ///
    /// As [`std::fs::OpenOptions::open`]: `NotFound`, `AlreadyExists`,
    /// `PermissionDenied`, `IsADirectory` (a directory opened for writing),
    /// `InvalidInput` (a combination of options that makes no sense); a
    /// cancellation error (see the type's documentation for when).
    pub fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let opening = if self.create || self.create_new || self.truncate {
            Opening::MayChangeFiles
        } else {
            Opening::ReadOnly
        };
        File::open_with(&self.std, path, opening)
    }
}

// `File::options` lives here, with the builder it returns, so that this
// module depends on `file` and not the other way round.
impl File {
    /// A new [`OpenOptions`] with every flag off, as
    /// [`std::fs::File::options`].
    ///
    /// ```
    /// use std::io::Write;
    ///
    /// # let path = std::env::temp_dir().join(format!("green-fs-doc-file-options-{}", std::process::id()));
    /// green::run(|| -> std::io::Result<()> {
    ///     let mut file = green::fs::File::options().append(true).create(true).open(&path)?;
    ///     file.write_all(b"appended")?;
    ///     green::fs::remove_file(&path)
    /// }).unwrap();
    /// ```
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }
}
