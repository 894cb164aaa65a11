//! `powerfs`: a FUSE file system that loses power.
//!
//! SIGKILL leaves the kernel's page cache intact, so a node that skips an
//! fdatasync, or speaks before its write is durable, passes any number of
//! kill -9 runs. This file system is mounted over each node's data
//! directory by the chaos harness (and by tests): it passes everything
//! through to a *backing directory* (the disk), but keeps every write,
//! create, rename, unlink and truncate in a volatile layer until the file
//! (for directory entries: the directory) is fsynced or fdatasynced. At a
//! simulated power cut ([`PowerFs::power_cut`]) it drops the unsynced part,
//! optionally tearing it at 512-byte sector granularity, and mounts again
//! from the backing directory. The rules are in [`state`].
//!
//! It also injects disk faults ([`DiskFaults`]): fsync or write failing
//! with EIO, a full disk (ENOSPC), a slow fsync.
//!
//! Mounting needs /dev/fuse and root (or the `fusermount3` helper, from
//! Debian's `fuse3`); [`available`] says whether it can run here and why
//! not. Everything runs in the calling process: the FUSE requests are
//! served by the session's threads, so the node must be another process
//! (as in the chaos harness), or at least never touch the mount from a
//! thread the file system needs.

pub mod state;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request, TimeOrNow,
    WriteFlags,
};
use rand::SeedableRng;
use rand::rngs::StdRng;

use state::State;
pub use state::{CutReport, DiskFaults};

/// How long the kernel may cache names and attributes. Every change goes
/// through this file system, and a cut remounts, so the caches never go
/// stale behind the kernel's back.
const TTL: Duration = Duration::from_secs(1);

/// Whether a FUSE file system can be mounted here: `Err` says why not.
pub fn available() -> Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse does not exist (no FUSE in this kernel or container)".into());
    }
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/fuse")
        .is_err()
    {
        return Err("/dev/fuse cannot be opened (not root, no access)".into());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0
        && !["/usr/bin/fusermount3", "/bin/fusermount3"]
            .iter()
            .any(|p| Path::new(p).exists())
    {
        return Err("not root, and no fusermount3 (Debian's fuse3) to mount as a user".into());
    }
    Ok(())
}

/// A mounted power-loss file system.
pub struct PowerFs {
    state: Arc<Mutex<State>>,
    session: Option<BackgroundSession>,
    mountpoint: PathBuf,
    backing: PathBuf,
    /// Cuts so far.
    pub cuts: u64,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

impl PowerFs {
    /// Mounts at `mountpoint` (created if missing) a file system whose disk
    /// is `backing` (created if missing; what it holds is the initial,
    /// durable, content).
    pub fn mount(backing: &Path, mountpoint: &Path) -> std::io::Result<PowerFs> {
        std::fs::create_dir_all(mountpoint)?;
        let state = Arc::new(Mutex::new(State::load(backing)?));
        let session = Self::spawn(&state, mountpoint)?;
        Ok(PowerFs {
            state,
            session: Some(session),
            mountpoint: mountpoint.to_owned(),
            backing: backing.to_owned(),
            cuts: 0,
        })
    }

    fn spawn(state: &Arc<Mutex<State>>, mountpoint: &Path) -> std::io::Result<BackgroundSession> {
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("powerfs".into()),
            MountOption::Subtype("powerfs".into()),
            MountOption::RW,
            MountOption::NoAtime,
        ];
        // More than one thread: a slow fsync must not stall every read.
        config.n_threads = Some(4);
        fuser::spawn_mount(
            Fs {
                state: state.clone(),
            },
            mountpoint,
            &config,
        )
    }

    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    pub fn backing(&self) -> &Path {
        &self.backing
    }

    /// Injects (or clears, with the default) disk faults from now on.
    pub fn set_faults(&self, faults: DiskFaults) {
        lock(&self.state).faults = faults;
    }

    pub fn faults(&self) -> DiskFaults {
        lock(&self.state).faults.clone()
    }

    /// Arms a power cut for the next write: the disk stops answering right
    /// after it (every later operation fails with EIO), so that the cut
    /// [`PowerFs::power_cut`] then applies falls between a write and its
    /// fsync. (A cut at a uniformly random moment almost never does: a
    /// node's batch spends well under a millisecond between its write and
    /// its fdatasync.)
    pub fn arm_cut(&self) {
        lock(&self.state).cut_on_write = true;
    }

    /// Whether the disk has stopped answering (an armed cut went off).
    pub fn is_dead(&self) -> bool {
        lock(&self.state).dead
    }

    /// Bytes of file data now (what `DiskFaults::capacity` limits).
    pub fn used_bytes(&self) -> u64 {
        lock(&self.state).space().0
    }

    /// Successful fsyncs/fdatasyncs of files so far (since the last mount).
    pub fn syncs(&self) -> u64 {
        lock(&self.state).syncs
    }

    /// A power cut: whatever was not synced is lost (with `tear_seed`, each
    /// unsynced sector reaches the disk or not, drawn from that seed), then
    /// the file system is mounted again from what the disk holds. The
    /// processes using it must be dead (killed and reaped) first: their
    /// open files would keep the unmount from completing. Injected faults
    /// stay in force.
    pub fn power_cut(&mut self, tear_seed: Option<u64>) -> std::io::Result<CutReport> {
        let mut rng = tear_seed.map(StdRng::seed_from_u64);
        let report = lock(&self.state).cut(rng.as_mut())?;
        self.unmount_session()?;
        let faults = lock(&self.state).faults.clone();
        let mut reloaded = State::load(&self.backing)?;
        reloaded.faults = faults;
        self.state = Arc::new(Mutex::new(reloaded));
        self.session = Some(Self::spawn(&self.state, &self.mountpoint)?);
        self.cuts += 1;
        Ok(report)
    }

    /// Detaches the mount (lazily: a process that still holds a file open
    /// keeps the old mount alive, but its state is dead and answers EIO),
    /// then lets the session end on its own.
    fn unmount_session(&mut self) -> std::io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        use std::os::unix::ffi::OsStrExt;
        let path = std::ffi::CString::new(self.mountpoint.as_os_str().as_bytes())
            .map_err(std::io::Error::other)?;
        // SAFETY: a valid NUL-terminated path; umount2 has no other
        // preconditions.
        let detached = unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        if detached != 0 {
            let err = std::io::Error::last_os_error();
            // Not root: fuser's own unmount (fusermount3 -u) is the way.
            return session.umount_and_join().map_err(|_| err);
        }
        // The kernel closes the connection once nothing uses the old mount;
        // the session's threads then end. Not joined: a process that keeps a
        // file open must not stall the harness.
        drop(session);
        Ok(())
    }

    /// Unmounts cleanly: what is not synced is lost too (as at a cut, but
    /// never torn). The backing directory holds the disk's content.
    pub fn unmount(mut self) -> std::io::Result<()> {
        let _ = lock(&self.state).cut(None)?;
        self.unmount_session()
    }
}

impl Drop for PowerFs {
    fn drop(&mut self) {
        let _ = self.unmount_session();
    }
}

struct Fs {
    state: Arc<Mutex<State>>,
}

fn attr(ino: u64, inode: &state::Inode) -> FileAttr {
    let size = inode.size();
    FileAttr {
        ino: INodeNo(ino),
        size,
        blocks: size.div_ceil(512),
        atime: inode.mtime,
        mtime: inode.mtime,
        ctime: inode.mtime,
        crtime: inode.mtime,
        kind: if inode.is_dir() {
            FileType::Directory
        } else {
            FileType::RegularFile
        },
        perm: inode.perm,
        nlink: if inode.is_dir() { 2 } else { 1 },
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn errno(code: i32) -> Errno {
    Errno::from_i32(code)
}

impl Fs {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn entry(&self, result: Result<u64, i32>, reply: ReplyEntry) {
        let state = self.state();
        match result.and_then(|ino| Ok((ino, state.get(ino)?))) {
            Ok((ino, inode)) => reply.entry(&TTL, &attr(ino, inode), Generation(0)),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn attr(&self, ino: u64, reply: ReplyAttr) {
        let state = self.state();
        match state.get(ino) {
            Ok(inode) => reply.attr(&TTL, &attr(ino, inode)),
            Err(code) => reply.error(errno(code)),
        }
    }

    /// Waits out an injected slow fsync, without holding the state.
    fn fsync_delay(&self) {
        let delay = self.state().faults.fsync_delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
    }
}

fn empty(result: Result<(), i32>, reply: ReplyEmpty) {
    match result {
        Ok(()) => reply.ok(),
        Err(code) => reply.error(errno(code)),
    }
}

impl Filesystem for Fs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let found = self.state().lookup(parent.0, name);
        self.entry(found, reply);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        self.attr(ino.0, reply);
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        _uid: Option<u32>,
        _gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<TimeOrNow>,
        _mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let result = {
            let mut state = self.state();
            let mut result = Ok(());
            if let Some(len) = size {
                result = state.set_len(ino.0, len);
            }
            if let (Ok(()), Some(mode)) = (result, mode) {
                result = state.set_perm(ino.0, (mode & 0o7777) as u16);
            }
            result
        };
        match result {
            Ok(()) => self.attr(ino.0, reply),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let made = self
            .state()
            .create(parent.0, name, (mode & !umask & 0o7777) as u16, true);
        self.entry(made, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.state().remove(parent.0, name, false), reply);
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        empty(self.state().remove(parent.0, name, true), reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.intersects(RenameFlags::RENAME_EXCHANGE | RenameFlags::RENAME_WHITEOUT) {
            reply.error(Errno::EINVAL);
            return;
        }
        let no_replace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        empty(
            self.state()
                .rename(parent.0, name, newparent.0, newname, no_replace),
            reply,
        );
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.state().get(ino.0) {
            Ok(inode) if inode.is_dir() => reply.error(Errno::EISDIR),
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        match self.state().read(ino.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.state().write(ino.0, offset, data) {
            Ok(()) => reply.written(data.len() as u32),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: fuser::LockOwner,
        reply: ReplyEmpty,
    ) {
        // close() makes nothing durable.
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.fsync_delay();
        empty(self.state().sync_file(ino.0), reply);
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let entries = match self.state().list(ino.0) {
            Ok(entries) => entries,
            Err(code) => {
                reply.error(errno(code));
                return;
            }
        };
        for (i, (child, is_dir, name)) in entries.into_iter().enumerate().skip(offset as usize) {
            let kind = if is_dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            if reply.add(INodeNo(child), (i + 1) as u64, kind, name) {
                break;
            }
        }
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.fsync_delay();
        empty(self.state().sync_dir(ino.0), reply);
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        const BLOCK: u64 = 4096;
        let (used, capacity) = self.state().space();
        let total = capacity.unwrap_or(1 << 40);
        let free = total.saturating_sub(used) / BLOCK;
        reply.statfs(
            total / BLOCK,
            free,
            free,
            1 << 20,
            1 << 20,
            BLOCK as u32,
            255,
            BLOCK as u32,
        );
    }

    fn access(&self, _req: &Request, _ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        reply.ok();
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let mut state = self.state();
        let made = state
            .create(parent.0, name, (mode & !umask & 0o7777) as u16, false)
            .and_then(|ino| Ok((ino, state.get(ino)?)));
        match made {
            Ok((ino, inode)) => reply.created(
                &TTL,
                &attr(ino, inode),
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(code) => reply.error(errno(code)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        if mode != 0 {
            reply.error(Errno::from_i32(libc::EOPNOTSUPP));
            return;
        }
        empty(self.state().allocate(ino.0, offset, length), reply);
    }
}

/// For tests: whether the directory's durable state is what the backing
/// directory holds (every durable file's bytes).
pub fn durable_files(backing: &Path) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(root, &path, out)?;
            } else {
                let relative = path.strip_prefix(root).unwrap_or(&path).to_owned();
                out.push((relative, std::fs::read(&path)?));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(backing, backing, &mut out)?;
    Ok(out)
}
