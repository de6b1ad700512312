//! File-system primitives of the local store, all relative to a directory handle and none following a symlink:
//! each path segment is opened with `openat(O_NOFOLLOW)` from the handle of its parent, so neither a `..` (the
//! domain refuses those anyway) nor a symlink planted inside the tree, nor one swapped in while we work, leads
//! out of the root. Blocking: call from `spawn_blocking`.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::time::SystemTime;

use rustix::fs::{self as rfs, AtFlags, Dir, FileType, Mode, OFlags};
use rustix::io::Errno;

/// An error of the tree, sorted by what callers do with it.
#[derive(Debug)]
pub(super) enum TreeError {
    /// A segment is missing.
    Missing,
    /// A segment is a symlink or some other thing that is not a directory (or not a regular file at the end).
    NotAllowed(&'static str),
    /// A segment is longer than the file system takes.
    NameTooLong,
    Io(io::Error),
}

impl From<Errno> for TreeError {
    fn from(e: Errno) -> Self {
        match e {
            Errno::NOENT => TreeError::Missing,
            // O_NOFOLLOW on a symlink gives ELOOP; O_DIRECTORY on a file gives ENOTDIR.
            Errno::LOOP | Errno::MLINK => TreeError::NotAllowed("a symlink is in the way"),
            Errno::NOTDIR => TreeError::NotAllowed("an object is in the way"),
            Errno::NAMETOOLONG => TreeError::NameTooLong,
            other => TreeError::Io(io::Error::from(other)),
        }
    }
}

impl From<io::Error> for TreeError {
    fn from(e: io::Error) -> Self {
        match Errno::from_io_error(&e) {
            Some(errno) => errno.into(),
            None => TreeError::Io(e),
        }
    }
}

pub(super) type TreeResult<T> = Result<T, TreeError>;

const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::NOFOLLOW)
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC);

/// Opens the directory `name` under `dir`, refusing symlinks.
pub(super) fn open_dir(dir: &OwnedFd, name: &str) -> TreeResult<OwnedFd> {
    Ok(rfs::openat(dir, name, DIR_FLAGS, Mode::empty())?)
}

/// Opens (and with `create`, makes) each directory of `segments` in turn below `dir`.
pub(super) fn open_dirs<'a>(
    dir: &OwnedFd,
    segments: impl IntoIterator<Item = &'a str>,
    create: bool,
) -> TreeResult<OwnedFd> {
    let mut current = rfs::openat(dir, ".", DIR_FLAGS, Mode::empty())?;
    for segment in segments {
        current = match open_dir(&current, segment) {
            Err(TreeError::Missing) if create => {
                match rfs::mkdirat(&current, segment, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(e.into()),
                }
                open_dir(&current, segment)?
            }
            other => other?,
        };
    }
    Ok(current)
}

/// Opens the regular file `name` under `dir` for reading; a symlink or a directory is `NotAllowed`.
pub(super) fn open_file(dir: &OwnedFd, name: &str) -> TreeResult<File> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )?;
    let stat = rfs::fstat(&fd)?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
        return Err(TreeError::NotAllowed("not a regular file"));
    }
    Ok(File::from(fd))
}

/// Creates `name` under `dir`, which must not exist.
pub(super) fn create_file(dir: &OwnedFd, name: &str) -> TreeResult<File> {
    let fd = rfs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o644),
    )?;
    Ok(File::from(fd))
}

/// Renames `from` under `from_dir` to `to` under `to_dir`, replacing a file there. An empty directory in the
/// way (left by deleted objects) is removed first; a non-empty one is `NotAllowed`.
pub(super) fn rename_into(from_dir: &OwnedFd, from: &str, to_dir: &OwnedFd, to: &str) -> TreeResult<()> {
    match rfs::renameat(from_dir, from, to_dir, to) {
        Ok(()) => Ok(()),
        Err(Errno::ISDIR) | Err(Errno::NOTEMPTY) | Err(Errno::EXIST) => {
            match rfs::unlinkat(to_dir, to, AtFlags::REMOVEDIR) {
                Ok(()) | Err(Errno::NOENT) => Ok(rfs::renameat(from_dir, from, to_dir, to)?),
                Err(Errno::NOTEMPTY) | Err(Errno::EXIST) => {
                    Err(TreeError::NotAllowed("a folder of objects is in the way"))
                }
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// Removes the file `name` under `dir`; a missing one is fine.
pub(super) fn remove_file(dir: &OwnedFd, name: &str) -> TreeResult<()> {
    match rfs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::ISDIR) => Err(TreeError::NotAllowed("a folder is not an object")),
        Err(e) => Err(e.into()),
    }
}

/// Removes `name` under `dir` and everything in it. Symlinks are unlinked, never followed. With `dirs_only`,
/// stops with `NotAllowed` at the first file instead (an "is it empty" removal that cannot race a writer).
pub(super) fn remove_tree(dir: &OwnedFd, name: &str, dirs_only: bool) -> TreeResult<()> {
    let sub = match open_dir(dir, name) {
        Ok(sub) => sub,
        Err(TreeError::Missing) => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries(&sub)? {
        if entry.kind == FileType::Directory {
            remove_tree(&sub, &entry.name, dirs_only)?;
        } else if dirs_only {
            return Err(TreeError::NotAllowed("not empty"));
        } else {
            remove_file(&sub, &entry.name)?;
        }
    }
    match rfs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(Errno::NOTEMPTY) | Err(Errno::EXIST) => Err(TreeError::NotAllowed("not empty")),
        Err(e) => Err(e.into()),
    }
}

/// One entry of a directory, without following it.
pub(super) struct Entry {
    pub name: String,
    pub kind: FileType,
}

/// The entries of `dir` whose names are UTF-8 (others cannot be keys), without `.` and `..`.
pub(super) fn entries(dir: &OwnedFd) -> TreeResult<Vec<Entry>> {
    let mut out = Vec::new();
    for entry in Dir::read_from(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        let kind = match entry.file_type() {
            FileType::Unknown => match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) => FileType::from_raw_mode(stat.st_mode),
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            },
            kind => kind,
        };
        out.push(Entry {
            name: name.to_owned(),
            kind,
        });
    }
    Ok(out)
}

/// Size, modification time and inode of a regular file under `dir`, not following a symlink.
pub(super) struct FileStat {
    pub size: u64,
    pub modified: SystemTime,
    pub inode: u64,
}

impl FileStat {
    pub fn of(file: &File) -> io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let meta = file.metadata()?;
        Ok(Self {
            size: meta.len(),
            modified: meta.modified()?,
            inode: meta.ino(),
        })
    }

    pub fn at(dir: &OwnedFd, name: &str) -> TreeResult<Option<Self>> {
        let stat = match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Ok(None);
        }
        let modified = std::time::UNIX_EPOCH
            + std::time::Duration::new(
                u64::try_from(stat.st_mtime).unwrap_or(0),
                u32::try_from(stat.st_mtime_nsec).unwrap_or(0),
            );
        Ok(Some(Self {
            size: u64::try_from(stat.st_size).unwrap_or(0),
            modified,
            inode: stat.st_ino,
        }))
    }

    /// Changes whenever the file is replaced (a new inode) or rewritten in place (time, size).
    pub fn etag(&self) -> String {
        let nanos = self
            .modified
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{:x}-{:x}-{:x}", self.inode, nanos, self.size)
    }
}

/// Opens a root directory given by path (the one place a path is followed: the configured root may be a
/// symlink itself).
pub(super) fn open_root(path: &std::path::Path) -> io::Result<OwnedFd> {
    Ok(rfs::open(
        path,
        OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// Makes `name` under `dir`; `false` when it exists.
pub(super) fn make_dir(dir: &OwnedFd, name: &str) -> TreeResult<bool> {
    match rfs::mkdirat(dir, name, Mode::from_raw_mode(0o755)) {
        Ok(()) => Ok(true),
        Err(Errno::EXIST) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Renames `from` under `dir` to `to` under `to_dir` when `to` does not exist (for moving a tree aside).
pub(super) fn move_aside(dir: &OwnedFd, from: &str, to_dir: &OwnedFd, to: &str) -> TreeResult<bool> {
    match rfs::renameat(dir, from, to_dir, to) {
        Ok(()) => Ok(true),
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
