//! The power-loss file system (`raft_lab::powerfs`), mounted for real:
//! what was fsynced survives a power cut, what was not does not, directory
//! entries need their directory fsynced, a torn cut keeps or loses whole
//! sectors, and the injected disk faults behave as documented.
//!
//! These mount FUSE, which needs /dev/fuse and root (or Debian's fuse3 for
//! `fusermount3`). Where that is missing each test says why and returns
//! without checking anything; set `RAFT_LAB_REQUIRE_FUSE=1` (as `.ci/run`
//! does) to make a missing FUSE a failure instead.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use raft_lab::powerfs::{self, DiskFaults, PowerFs};

/// Mounts a fresh file system, or says why it cannot.
fn mount(dir: &Path) -> Option<PowerFs> {
    if let Err(why) = powerfs::available() {
        assert!(
            std::env::var_os("RAFT_LAB_REQUIRE_FUSE").is_none(),
            "RAFT_LAB_REQUIRE_FUSE is set, but FUSE cannot be mounted: {why}"
        );
        eprintln!("SKIPPED: the power-loss file system needs FUSE: {why}");
        return None;
    }
    Some(PowerFs::mount(&dir.join("disk"), &dir.join("mnt")).expect("mount"))
}

fn sync_dir(path: &Path) {
    File::open(path).unwrap().sync_all().unwrap();
}

#[test]
fn synced_data_survives_a_cut_and_unsynced_data_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut fs) = mount(tmp.path()) else {
        return;
    };
    let mnt = fs.mountpoint().to_owned();
    let path = mnt.join("log");
    let mut file = File::create(&path).unwrap();
    file.write_all(b"durable").unwrap();
    file.sync_data().unwrap();
    sync_dir(&mnt);
    file.write_all(b" and then lost").unwrap();
    file.write_all_at(b"D", 0).unwrap();
    // Before the cut the page cache (ours) shows everything...
    assert_eq!(fs::read(&path).unwrap(), b"Durable and then lost");
    drop(file);
    let report = fs.power_cut(None).unwrap();
    // ...after it, only what was synced.
    assert_eq!(fs::read(&path).unwrap(), b"durable");
    assert_eq!(report.files_dirty, 1);
    assert_eq!(report.sectors_kept, 0);
    // The disk is the backing directory.
    assert_eq!(fs::read(tmp.path().join("disk/log")).unwrap(), b"durable");

    // fsync (not only fdatasync) makes data durable too, and so does a
    // truncate once synced.
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(3).unwrap();
    file.write_all_at(b"!", 3).unwrap();
    file.sync_all().unwrap();
    drop(file);
    fs.power_cut(None).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"dur!");
    fs.unmount().unwrap();
}

#[test]
fn a_new_file_needs_its_directory_synced() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut fs) = mount(tmp.path()) else {
        return;
    };
    let mnt = fs.mountpoint().to_owned();
    fs::create_dir(mnt.join("data")).unwrap();
    sync_dir(&mnt);
    // Data synced, directory not: the file is gone.
    let mut orphan = File::create(mnt.join("data/orphan")).unwrap();
    orphan.write_all(b"synced data, unsynced name").unwrap();
    orphan.sync_all().unwrap();
    drop(orphan);
    // Both synced: it stays.
    let mut kept = File::create(mnt.join("data/kept")).unwrap();
    kept.write_all(b"kept").unwrap();
    kept.sync_all().unwrap();
    drop(kept);
    // The directory is synced between the two creations of the second
    // file's name only.
    fs::remove_file(mnt.join("data/orphan")).unwrap();
    sync_dir(&mnt.join("data"));
    let mut late = File::create(mnt.join("data/late")).unwrap();
    late.write_all(b"late").unwrap();
    late.sync_all().unwrap();
    drop(late);
    // A directory made but its parent never synced is gone with its files.
    fs::create_dir(mnt.join("unsynced-dir")).unwrap();
    let mut inner = File::create(mnt.join("unsynced-dir/f")).unwrap();
    inner.write_all(b"x").unwrap();
    inner.sync_all().unwrap();
    sync_dir(&mnt.join("unsynced-dir"));
    drop(inner);

    fs.power_cut(None).unwrap();
    let mut names: Vec<String> = fs::read_dir(mnt.join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["kept"]);
    assert_eq!(fs::read(mnt.join("data/kept")).unwrap(), b"kept");
    assert!(!mnt.join("unsynced-dir").exists());
    fs.unmount().unwrap();
}

#[test]
fn rename_and_unlink_are_durable_once_the_directory_is_synced() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut fs) = mount(tmp.path()) else {
        return;
    };
    let mnt = fs.mountpoint().to_owned();
    fs::write(mnt.join("current"), b"old").unwrap();
    File::open(mnt.join("current")).unwrap().sync_all().unwrap();
    fs::write(mnt.join("doomed"), b"doomed").unwrap();
    File::open(mnt.join("doomed")).unwrap().sync_all().unwrap();
    sync_dir(&mnt);

    // The atomic-replace pattern without its directory fsync.
    fs::write(mnt.join("current.tmp"), b"new").unwrap();
    File::open(mnt.join("current.tmp"))
        .unwrap()
        .sync_all()
        .unwrap();
    fs::rename(mnt.join("current.tmp"), mnt.join("current")).unwrap();
    fs::remove_file(mnt.join("doomed")).unwrap();
    assert_eq!(fs::read(mnt.join("current")).unwrap(), b"new");
    fs.power_cut(None).unwrap();
    assert_eq!(fs::read(mnt.join("current")).unwrap(), b"old");
    assert_eq!(fs::read(mnt.join("doomed")).unwrap(), b"doomed");
    assert!(!mnt.join("current.tmp").exists());

    // With it.
    fs::write(mnt.join("current.tmp"), b"new").unwrap();
    File::open(mnt.join("current.tmp"))
        .unwrap()
        .sync_all()
        .unwrap();
    fs::rename(mnt.join("current.tmp"), mnt.join("current")).unwrap();
    fs::remove_file(mnt.join("doomed")).unwrap();
    sync_dir(&mnt);
    fs.power_cut(None).unwrap();
    assert_eq!(fs::read(mnt.join("current")).unwrap(), b"new");
    assert!(!mnt.join("doomed").exists());
    assert!(!mnt.join("current.tmp").exists());
    fs.unmount().unwrap();
}

#[test]
fn a_torn_cut_keeps_or_loses_whole_sectors() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut fs) = mount(tmp.path()) else {
        return;
    };
    let mnt = fs.mountpoint().to_owned();
    let path = mnt.join("prealloc");
    const SECTORS: usize = 64;
    let file = File::create(&path).unwrap();
    file.set_len((SECTORS * 512) as u64).unwrap();
    file.sync_all().unwrap();
    sync_dir(&mnt);
    let mut kept_seen = false;
    let mut lost_seen = false;
    for seed in 0..4u64 {
        let fill = b'a' + seed as u8;
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        // One write of 64 sectors starting mid-sector, never synced.
        file.write_all_at(&vec![fill; SECTORS * 512 - 100], 100)
            .unwrap();
        drop(file);
        let before = fs::read(&path).unwrap();
        let report = fs.power_cut(Some(seed)).unwrap();
        let after = fs::read(&path).unwrap();
        assert_eq!(after.len(), SECTORS * 512, "the durable size stays");
        let previous = if seed == 0 { 0 } else { fill - 1 };
        let mut kept = 0;
        for sector in 0..SECTORS {
            let range = sector * 512..(sector + 1) * 512;
            let range = if sector == 0 { 100..512 } else { range };
            let new = &before[range.clone()];
            let got = &after[range.clone()];
            let old_sector: Vec<u8> = if seed == 0 {
                vec![0; range.len()]
            } else {
                vec![previous; range.len()]
            };
            assert!(
                got == new || got == old_sector.as_slice(),
                "seed {seed}: sector {sector} is neither old nor new: a sector is kept or lost whole"
            );
            if got == new {
                kept += 1;
            }
        }
        assert_eq!(kept, report.sectors_kept as usize, "seed {seed}");
        kept_seen |= kept > 0;
        lost_seen |= kept < SECTORS;
        // Make the next round's "old" content uniform and durable.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&vec![fill; SECTORS * 512 - 100], 100)
            .unwrap();
        file.write_all_at(&[fill; 100], 0).unwrap();
        file.sync_data().unwrap();
    }
    assert!(
        kept_seen && lost_seen,
        "a torn cut keeps some sectors and loses others"
    );
    fs.unmount().unwrap();
}

#[test]
fn a_failed_fsync_loses_the_data_even_though_a_retry_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(mut fs) = mount(tmp.path()) else {
        return;
    };
    let mnt = fs.mountpoint().to_owned();
    let path = mnt.join("wal");
    let mut file = File::create(&path).unwrap();
    file.write_all(b"first").unwrap();
    file.sync_data().unwrap();
    sync_dir(&mnt);
    file.write_all(b"+second").unwrap();
    fs.set_faults(DiskFaults {
        fsync_eio: true,
        ..DiskFaults::default()
    });
    let err = file.sync_data().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    fs.set_faults(DiskFaults::default());
    // The trap: the retry succeeds and the cache still shows the data...
    file.sync_data().unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"first+second");
    drop(file);
    // ...but it never reached the disk.
    fs.power_cut(None).unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"first");

    // A failing write fails at once.
    fs.set_faults(DiskFaults {
        write_eio: true,
        ..DiskFaults::default()
    });
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    let err = file.write_all_at(b"x", 0).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    fs.unmount().unwrap();
}

#[test]
fn a_full_disk_refuses_writes_and_says_how_much_is_left() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) = mount(tmp.path()) else {
        return;
    };
    let mnt = fs.mountpoint().to_owned();
    fs.set_faults(DiskFaults {
        capacity: Some(1 << 20),
        ..DiskFaults::default()
    });
    let file = File::create(mnt.join("big")).unwrap();
    file.write_all_at(&vec![1; 512 << 10], 0).unwrap();
    let free = fs4::available_space(&mnt).unwrap();
    assert!(
        (500 << 10..=512 << 10).contains(&free),
        "statfs reports {free} bytes free"
    );
    let err = file
        .write_all_at(&vec![2; 600 << 10], 512 << 10)
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    assert_eq!(err.kind(), ErrorKind::StorageFull);
    // fallocate (the node's way of growing its log) too.
    let err = fs4::fs_std::FileExt::allocate(&file, 2 << 20).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
    // Overwriting in place needs no space.
    file.write_all_at(&[3; 4096], 0).unwrap();
    file.sync_all().unwrap();
    drop(file);
    fs.unmount().unwrap();
}

#[test]
fn a_slow_disk_takes_its_time_per_fsync() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) = mount(tmp.path()) else {
        return;
    };
    let mnt = fs.mountpoint().to_owned();
    let mut file = File::create(mnt.join("slow")).unwrap();
    fs.set_faults(DiskFaults {
        fsync_delay: Duration::from_millis(700),
        ..DiskFaults::default()
    });
    file.write_all(b"x").unwrap();
    let started = Instant::now();
    file.sync_data().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(700));
    // Reads are not stalled meanwhile (more than one FUSE thread).
    let reader = {
        let path = mnt.join("slow");
        std::thread::spawn(move || {
            let started = Instant::now();
            fs::read(path).unwrap();
            started.elapsed()
        })
    };
    let started = Instant::now();
    file.sync_data().unwrap();
    assert!(started.elapsed() >= Duration::from_millis(700));
    assert!(reader.join().unwrap() < Duration::from_millis(500));
    drop(file);
    fs.unmount().unwrap();
}
