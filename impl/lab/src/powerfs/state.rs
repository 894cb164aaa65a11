//! The power-loss file system's state: the namespace and file contents as
//! programs see them (*current*), and as the disk holds them (*durable*),
//! with no FUSE in it, so that the rules can be tested on their own.
//!
//! The rules (those of a careful reading of POSIX, as ext4 and XFS behave
//! after a crash, minus their accidental extra safety):
//!
//! - a file's data and size become durable when the file is fsynced or
//!   fdatasynced (the two are the same here: a size change is data);
//! - a directory entry (create, mkdir, unlink, rmdir, rename) becomes
//!   durable when its directory is fsynced; a new file whose data was
//!   synced but whose directory was not is gone after a cut;
//! - at a cut, everything not durable is dropped; a *torn* cut also lets
//!   each 512-byte sector of each file's unsynced writes reach the disk or
//!   not, independently (disks reorder writes in their cache), within the
//!   file's durable size;
//! - a failed fsync (an injected EIO) drops the data it was syncing from the
//!   set of dirty data, as Linux does: the page cache still shows it, a
//!   second fsync succeeds, and a cut loses it (the trap of retrying an
//!   fsync and trusting the cache).
//!
//! The durable state is written through to a backing directory at every
//! sync (files at their durable paths); a cut writes the torn sectors there
//! and reloads everything from it, so the backing directory is the disk.
//! Hard links and symbolic links are refused (the node makes none).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rand::RngExt;

/// The unit a power cut keeps or loses whole.
pub const SECTOR: u64 = 512;
/// The root directory's inode number (FUSE's).
pub const ROOT: u64 = 1;
/// Dirty ranges kept per file before they are merged into one covering
/// range (which a torn cut then treats as written, sector by sector).
const MAX_RANGES: usize = 1024;

/// Errors of the file system's operations, as errno values.
pub type Errno = i32;

/// Disk faults to inject, changed while the file system is mounted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiskFaults {
    /// Every fsync/fdatasync of a file fails with EIO (and, as on Linux,
    /// the data it was to sync is no longer dirty: it is lost at a cut).
    pub fsync_eio: bool,
    /// Every write to a file fails with EIO.
    pub write_eio: bool,
    /// The disk holds this many bytes of file data: a write, fallocate or
    /// truncate that would need more fails with ENOSPC, and statfs reports
    /// what is left.
    pub capacity: Option<u64>,
    /// Every fsync/fdatasync (of files and directories) takes this long.
    pub fsync_delay: Duration,
}

/// What a cut dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Files with unsynced data or size at the cut.
    pub files_dirty: usize,
    /// Bytes written but never synced (before tearing).
    pub bytes_unsynced: u64,
    /// Unsynced sectors that reached the disk anyway (a torn cut).
    pub sectors_kept: u64,
    /// Unsynced sectors lost.
    pub sectors_lost: u64,
    /// Directories whose entries differed from their durable ones.
    pub dirs_dirty: usize,
}

#[derive(Clone, Debug)]
pub enum Kind {
    File {
        cur: Vec<u8>,
        dur: Vec<u8>,
        /// Byte ranges (start, end) written since the last sync, and
        /// whether the size changed.
        pending: Vec<(u64, u64)>,
        size_dirty: bool,
    },
    Dir {
        cur: BTreeMap<OsString, u64>,
        dur: BTreeMap<OsString, u64>,
    },
}

#[derive(Clone, Debug)]
pub struct Inode {
    pub kind: Kind,
    pub perm: u16,
    pub mtime: SystemTime,
    /// Where the durable namespace names it (no hard links: one place).
    dur_parent: Option<(u64, OsString)>,
}

impl Inode {
    fn file(perm: u16, data: Vec<u8>) -> Inode {
        Inode {
            kind: Kind::File {
                cur: data.clone(),
                dur: data,
                pending: Vec::new(),
                size_dirty: false,
            },
            perm,
            mtime: SystemTime::now(),
            dur_parent: None,
        }
    }

    fn dir(perm: u16) -> Inode {
        Inode {
            kind: Kind::Dir {
                cur: BTreeMap::new(),
                dur: BTreeMap::new(),
            },
            perm,
            mtime: SystemTime::now(),
            dur_parent: None,
        }
    }

    pub fn is_dir(&self) -> bool {
        matches!(self.kind, Kind::Dir { .. })
    }

    /// The size programs see.
    pub fn size(&self) -> u64 {
        match &self.kind {
            Kind::File { cur, .. } => cur.len() as u64,
            Kind::Dir { cur, .. } => cur.len() as u64,
        }
    }
}

/// The whole file system.
pub struct State {
    backing: PathBuf,
    pub inodes: BTreeMap<u64, Inode>,
    next_ino: u64,
    /// Bytes of current file data (what `capacity` limits).
    used: u64,
    pub faults: DiskFaults,
    /// fsyncs and fdatasyncs of files that succeeded.
    pub syncs: u64,
    /// Set by a cut until the state is reloaded: every operation fails.
    pub dead: bool,
    /// Armed for a cut: the power goes out right after the next write to a
    /// file (the disk stops answering: every later operation fails with
    /// EIO), so that the cut falls inside a batch, between its write and
    /// its fsync.
    pub cut_on_write: bool,
}

fn io_errno(err: &io::Error) -> Errno {
    err.raw_os_error().unwrap_or(libc::EIO)
}

impl State {
    /// Loads the durable state from `backing` (created if missing): every
    /// directory and regular file in it, current and durable alike.
    pub fn load(backing: &Path) -> io::Result<State> {
        fs::create_dir_all(backing)?;
        let mut state = State {
            backing: backing.to_owned(),
            inodes: BTreeMap::new(),
            next_ino: ROOT + 1,
            used: 0,
            faults: DiskFaults::default(),
            syncs: 0,
            dead: false,
            cut_on_write: false,
        };
        state.inodes.insert(ROOT, Inode::dir(0o755));
        state.load_dir(ROOT, backing)?;
        Ok(state)
    }

    fn load_dir(&mut self, dir: u64, path: &Path) -> io::Result<()> {
        for entry in fs::read_dir(path)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let ino = self.next_ino;
            let name = entry.file_name();
            let mut inode = if kind.is_dir() {
                Inode::dir(0o755)
            } else if kind.is_file() {
                let data = fs::read(entry.path())?;
                self.used += data.len() as u64;
                Inode::file(0o644, data)
            } else {
                continue;
            };
            self.next_ino += 1;
            inode.dur_parent = Some((dir, name.clone()));
            self.inodes.insert(ino, inode);
            if let Some(Kind::Dir { cur, dur }) = self.inodes.get_mut(&dir).map(|d| &mut d.kind) {
                cur.insert(name.clone(), ino);
                dur.insert(name, ino);
            }
            if kind.is_dir() {
                self.load_dir(ino, &entry.path())?;
            }
        }
        Ok(())
    }

    fn alive(&self) -> Result<(), Errno> {
        if self.dead { Err(libc::EIO) } else { Ok(()) }
    }

    pub fn get(&self, ino: u64) -> Result<&Inode, Errno> {
        self.alive()?;
        self.inodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn dir_entries(&self, dir: u64) -> Result<&BTreeMap<OsString, u64>, Errno> {
        match &self.get(dir)?.kind {
            Kind::Dir { cur, .. } => Ok(cur),
            Kind::File { .. } => Err(libc::ENOTDIR),
        }
    }

    fn dir_entries_mut(&mut self, dir: u64) -> Result<&mut BTreeMap<OsString, u64>, Errno> {
        self.alive()?;
        match &mut self.inodes.get_mut(&dir).ok_or(libc::ENOENT)?.kind {
            Kind::Dir { cur, .. } => Ok(cur),
            Kind::File { .. } => Err(libc::ENOTDIR),
        }
    }

    pub fn lookup(&self, dir: u64, name: &OsStr) -> Result<u64, Errno> {
        self.dir_entries(dir)?
            .get(name)
            .copied()
            .ok_or(libc::ENOENT)
    }

    /// The entries of a directory, with `.` and `..` first.
    pub fn list(&self, dir: u64) -> Result<Vec<(u64, bool, OsString)>, Errno> {
        let entries = self.dir_entries(dir)?;
        let mut out = vec![(dir, true, ".".into()), (dir, true, "..".into())];
        for (name, ino) in entries {
            out.push((*ino, self.inodes[ino].is_dir(), name.clone()));
        }
        Ok(out)
    }

    /// Creates a file or directory `name` in `dir` (not yet durable).
    pub fn create(
        &mut self,
        dir: u64,
        name: &OsStr,
        perm: u16,
        is_dir: bool,
    ) -> Result<u64, Errno> {
        if self.dir_entries(dir)?.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let inode = if is_dir {
            Inode::dir(perm)
        } else {
            let mut file = Inode::file(perm, Vec::new());
            // A new file's durable data is nothing; its size counts as dirty.
            if let Kind::File { size_dirty, .. } = &mut file.kind {
                *size_dirty = true;
            }
            file
        };
        self.inodes.insert(ino, inode);
        self.dir_entries_mut(dir)?.insert(name.to_owned(), ino);
        self.touch(dir);
        Ok(ino)
    }

    fn touch(&mut self, ino: u64) {
        if let Some(inode) = self.inodes.get_mut(&ino) {
            inode.mtime = SystemTime::now();
        }
    }

    /// Unlinks a file, or removes an empty directory.
    pub fn remove(&mut self, dir: u64, name: &OsStr, want_dir: bool) -> Result<(), Errno> {
        let ino = self.lookup(dir, name)?;
        let inode = &self.inodes[&ino];
        match (&inode.kind, want_dir) {
            (Kind::Dir { cur, .. }, true) if !cur.is_empty() => return Err(libc::ENOTEMPTY),
            (Kind::Dir { .. }, false) => return Err(libc::EISDIR),
            (Kind::File { .. }, true) => return Err(libc::ENOTDIR),
            _ => {}
        }
        self.dir_entries_mut(dir)?.remove(name);
        self.touch(dir);
        self.collect(ino);
        Ok(())
    }

    pub fn rename(
        &mut self,
        dir: u64,
        name: &OsStr,
        new_dir: u64,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        let ino = self.lookup(dir, name)?;
        let replaced = self.dir_entries(new_dir)?.get(new_name).copied();
        if let Some(old) = replaced {
            if old == ino {
                return Ok(());
            }
            if no_replace {
                return Err(libc::EEXIST);
            }
            match (&self.inodes[&old].kind, self.inodes[&ino].is_dir()) {
                (Kind::Dir { cur, .. }, true) if !cur.is_empty() => return Err(libc::ENOTEMPTY),
                (Kind::Dir { .. }, false) => return Err(libc::EISDIR),
                (Kind::File { .. }, true) => return Err(libc::ENOTDIR),
                _ => {}
            }
        }
        self.dir_entries_mut(dir)?.remove(name);
        self.dir_entries_mut(new_dir)?
            .insert(new_name.to_owned(), ino);
        self.touch(dir);
        self.touch(new_dir);
        if let Some(old) = replaced {
            self.collect(old);
        }
        Ok(())
    }

    /// Whether any directory names `ino`, now or durably.
    fn linked(&self, ino: u64) -> bool {
        ino == ROOT
            || self.inodes[&ino].dur_parent.is_some()
            || self.inodes.values().any(|inode| match &inode.kind {
                Kind::Dir { cur, .. } => cur.values().any(|i| *i == ino),
                Kind::File { .. } => false,
            })
    }

    /// Frees an inode no directory names any more, now or durably. (An
    /// open handle to it then reads ENOENT: the node never reads a file it
    /// unlinked.)
    fn collect(&mut self, ino: u64) {
        if self.inodes.contains_key(&ino) && !self.linked(ino) {
            if let Some(inode) = self.inodes.remove(&ino) {
                if let Kind::File { cur, .. } = &inode.kind {
                    self.used -= cur.len() as u64;
                }
            }
        }
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut Inode, Errno> {
        self.alive()?;
        let inode = self.inodes.get_mut(&ino).ok_or(libc::ENOENT)?;
        if inode.is_dir() {
            return Err(libc::EISDIR);
        }
        Ok(inode)
    }

    fn check_space(&self, old_len: u64, new_len: u64) -> Result<(), Errno> {
        if let Some(capacity) = self.faults.capacity
            && new_len > old_len
            && self.used + (new_len - old_len) > capacity
        {
            return Err(libc::ENOSPC);
        }
        Ok(())
    }

    pub fn read(&self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        match &self.get(ino)?.kind {
            Kind::File { cur, .. } => {
                let start = (offset as usize).min(cur.len());
                let end = (start + size as usize).min(cur.len());
                Ok(cur[start..end].to_vec())
            }
            Kind::Dir { .. } => Err(libc::EISDIR),
        }
    }

    pub fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<(), Errno> {
        if self.faults.write_eio {
            self.alive()?;
            return Err(libc::EIO);
        }
        let old_len = self.file_mut(ino)?.size();
        let end = offset + data.len() as u64;
        self.check_space(old_len, end)?;
        let inode = self.file_mut(ino)?;
        inode.mtime = SystemTime::now();
        let Kind::File {
            cur,
            pending,
            size_dirty,
            ..
        } = &mut inode.kind
        else {
            unreachable!()
        };
        if end as usize > cur.len() {
            cur.resize(end as usize, 0);
            *size_dirty = true;
        }
        cur[offset as usize..end as usize].copy_from_slice(data);
        add_range(pending, offset, end);
        let new_len = cur.len() as u64;
        self.used = self.used + new_len - old_len;
        if self.cut_on_write {
            self.dead = true;
        }
        Ok(())
    }

    /// Sets a file's size (truncate, or extend with zeros).
    pub fn set_len(&mut self, ino: u64, len: u64) -> Result<(), Errno> {
        let old_len = self.file_mut(ino)?.size();
        self.check_space(old_len, len)?;
        let inode = self.file_mut(ino)?;
        inode.mtime = SystemTime::now();
        let Kind::File {
            cur,
            pending,
            size_dirty,
            ..
        } = &mut inode.kind
        else {
            unreachable!()
        };
        if len != old_len {
            cur.resize(len as usize, 0);
            *size_dirty = true;
            // The bytes between the two sizes changed (cut off, or zeros).
            add_range(pending, len.min(old_len), len.max(old_len));
        }
        self.used = self.used + len - old_len;
        Ok(())
    }

    /// `fallocate` mode 0: at least `offset + length` bytes, zeros added.
    pub fn allocate(&mut self, ino: u64, offset: u64, length: u64) -> Result<(), Errno> {
        let old_len = self.file_mut(ino)?.size();
        if offset + length > old_len {
            self.set_len(ino, offset + length)?;
        }
        Ok(())
    }

    pub fn set_perm(&mut self, ino: u64, perm: u16) -> Result<(), Errno> {
        self.alive()?;
        self.inodes.get_mut(&ino).ok_or(libc::ENOENT)?.perm = perm;
        Ok(())
    }

    /// The backing path of `ino`, if the durable namespace names it.
    fn durable_path(&self, ino: u64) -> Option<PathBuf> {
        if ino == ROOT {
            return Some(self.backing.clone());
        }
        let (parent, name) = self.inodes.get(&ino)?.dur_parent.as_ref()?;
        match &self.inodes.get(parent)?.kind {
            Kind::Dir { dur, .. } if dur.get(name) == Some(&ino) => {
                Some(self.durable_path(*parent)?.join(name))
            }
            _ => None,
        }
    }

    /// fsync or fdatasync of a file: its data and size become durable.
    /// With `fsync_eio` injected, fails, and the dirty data is forgotten
    /// (no longer dirty, never durable).
    pub fn sync_file(&mut self, ino: u64) -> Result<(), Errno> {
        let fail = self.faults.fsync_eio;
        let path = self.durable_path(ino);
        let inode = self.file_mut(ino)?;
        let Kind::File {
            cur,
            dur,
            pending,
            size_dirty,
        } = &mut inode.kind
        else {
            unreachable!()
        };
        if fail {
            pending.clear();
            *size_dirty = false;
            return Err(libc::EIO);
        }
        let len = cur.len() as u64;
        let mut written = Vec::new();
        if *size_dirty || !pending.is_empty() {
            dur.resize(cur.len(), 0);
            for &(start, end) in pending.iter() {
                let end = end.min(len);
                if start < end {
                    dur[start as usize..end as usize]
                        .copy_from_slice(&cur[start as usize..end as usize]);
                    written.push((start, end));
                }
            }
        }
        let resized = *size_dirty;
        pending.clear();
        *size_dirty = false;
        if let Some(path) = path {
            let file = fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| io_errno(&e))?;
            if resized {
                file.set_len(len).map_err(|e| io_errno(&e))?;
            }
            for (start, end) in written {
                file.write_all_at(&dur[start as usize..end as usize], start)
                    .map_err(|e| io_errno(&e))?;
            }
        }
        self.syncs += 1;
        Ok(())
    }

    /// fsync of a directory: its entries become durable (the entries'
    /// contents are whatever of them is durable).
    pub fn sync_dir(&mut self, dir: u64) -> Result<(), Errno> {
        self.alive()?;
        let (cur, old) = match &self.inodes.get(&dir).ok_or(libc::ENOENT)?.kind {
            Kind::Dir { cur, dur } => (cur.clone(), dur.clone()),
            Kind::File { .. } => return Err(libc::ENOTDIR),
        };
        let path = self.durable_path(dir);
        let mut gone = Vec::new();
        for (name, ino) in &old {
            if cur.get(name) != Some(ino) {
                if let Some(path) = &path {
                    remove_path(&path.join(name)).map_err(|e| io_errno(&e))?;
                }
                gone.push(*ino);
            }
        }
        if let Some(Kind::Dir { dur, .. }) = self.inodes.get_mut(&dir).map(|d| &mut d.kind) {
            *dur = cur.clone();
        }
        for ino in &gone {
            if let Some(inode) = self.inodes.get_mut(ino)
                && inode
                    .dur_parent
                    .as_ref()
                    .is_some_and(|(p, n)| *p == dir && cur.get(n) != Some(ino))
            {
                inode.dur_parent = None;
            }
        }
        for (name, ino) in &cur {
            if old.get(name) != Some(ino) {
                if let Some(inode) = self.inodes.get_mut(ino) {
                    inode.dur_parent = Some((dir, name.clone()));
                }
                if let Some(path) = &path {
                    self.materialize(*ino, &path.join(name))
                        .map_err(|e| io_errno(&e))?;
                }
            }
        }
        for ino in gone {
            self.collect(ino);
        }
        Ok(())
    }

    /// Writes the durable state of `ino` (and, for a directory, of its
    /// durable entries) at `path` in the backing directory.
    fn materialize(&self, ino: u64, path: &Path) -> io::Result<()> {
        remove_path(path)?;
        match &self.inodes[&ino].kind {
            Kind::File { dur, .. } => fs::write(path, dur),
            Kind::Dir { dur, .. } => {
                fs::create_dir(path)?;
                for (name, child) in dur {
                    self.materialize(*child, &path.join(name))?;
                }
                Ok(())
            }
        }
    }

    /// The power cut: marks the state dead and writes to the backing
    /// directory whatever of the unsynced data reaches the disk (nothing,
    /// or with `tear`, each unsynced sector with probability one half,
    /// within the file's durable size). Reload the state from the backing
    /// directory afterwards ([`State::load`]).
    pub fn cut(&mut self, mut tear: Option<&mut rand::rngs::StdRng>) -> io::Result<CutReport> {
        self.dead = true;
        let mut report = CutReport::default();
        let files: Vec<u64> = self.inodes.keys().copied().collect();
        for ino in files {
            let path = self.durable_path(ino);
            match &self.inodes[&ino].kind {
                Kind::Dir { cur, dur } => {
                    if cur != dur {
                        report.dirs_dirty += 1;
                    }
                }
                Kind::File {
                    cur,
                    dur,
                    pending,
                    size_dirty,
                } => {
                    if pending.is_empty() && !size_dirty {
                        continue;
                    }
                    report.files_dirty += 1;
                    let mut sectors = BTreeSet::new();
                    for &(start, end) in pending {
                        report.bytes_unsynced += end - start;
                        let mut sector = start / SECTOR;
                        while sector * SECTOR < end {
                            sectors.insert(sector);
                            sector += 1;
                        }
                    }
                    let durable_len = dur.len() as u64;
                    let file = match (&path, tear.is_some()) {
                        (Some(path), true) => Some(fs::OpenOptions::new().write(true).open(path)?),
                        _ => None,
                    };
                    for sector in sectors {
                        let start = sector * SECTOR;
                        let end = ((sector + 1) * SECTOR)
                            .min(durable_len)
                            .min(cur.len() as u64);
                        let kept = match tear.as_deref_mut() {
                            Some(rng) if start < end => rng.random_bool(0.5),
                            _ => false,
                        };
                        if kept && let Some(file) = &file {
                            file.write_all_at(&cur[start as usize..end as usize], start)?;
                            report.sectors_kept += 1;
                        } else {
                            report.sectors_lost += 1;
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Bytes of file data, and what `capacity` leaves.
    pub fn space(&self) -> (u64, Option<u64>) {
        (self.used, self.faults.capacity)
    }
}

fn add_range(pending: &mut Vec<(u64, u64)>, start: u64, end: u64) {
    if let Some(last) = pending.last_mut()
        && start <= last.1
        && end >= last.0
    {
        *last = (last.0.min(start), last.1.max(end));
        return;
    }
    pending.push((start, end));
    if pending.len() > MAX_RANGES {
        let low = pending.iter().map(|r| r.0).min().unwrap_or(0);
        let high = pending.iter().map(|r| r.1).max().unwrap_or(0);
        *pending = vec![(low, high)];
    }
}

fn remove_path(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}
