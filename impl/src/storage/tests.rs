//! Storage tests: what survives a reopen, compaction, and the refusals.

use std::fs;

use raft_model::{Config, Entry, Payload, SnapshotMeta};

use super::data_dir::{IDENTITY_FILE, LOCK_FILE, LOG_FILE};
use super::records::init_record;
use super::*;
use crate::kv::KvOp;

fn identity() -> Identity {
    Identity {
        cluster_id: "test".into(),
        node_id: 1,
        members: vec![1, 2, 3],
    }
}

fn entry(term: Term, key: &str) -> Entry<KvCommand> {
    Entry {
        term,
        payload: Payload::Command(KvCommand {
            client_id: 1,
            seq: 1,
            op: KvOp::Put {
                key: key.into(),
                value: "v".into(),
            },
        }),
    }
}

fn log_of(entries: &[Entry<KvCommand>]) -> Log<KvCommand> {
    let mut log = Log::default();
    for e in entries {
        log.append(e.clone());
    }
    log
}

#[test]
fn state_survives_reopen_and_truncation_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    {
        let (storage, recovered) = Storage::open(&path, &identity(), true).unwrap();
        assert_eq!(recovered.log.last_index(), 0);
        let mut batch = WriteBatch {
            hard_state: Some((3, Some(2))),
            ..Default::default()
        };
        log_batch(
            &log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "c")]),
            1,
            &mut batch,
        );
        storage.write(batch).unwrap();
        // A new leader overwrites entry 2 and drops entry 3.
        let mut batch = WriteBatch::default();
        log_batch(&log_of(&[entry(1, "a"), entry(3, "x")]), 2, &mut batch);
        storage.write(batch).unwrap();
    }
    let (_storage, recovered) = Storage::open(&path, &identity(), false).unwrap();
    assert_eq!((recovered.current_term, recovered.voted_for), (3, Some(2)));
    assert_eq!(recovered.log, log_of(&[entry(1, "a"), entry(3, "x")]));
}

#[test]
fn compaction_keeps_the_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    {
        let (storage, _) = Storage::open(&path, &identity(), true).unwrap();
        let mut batch = WriteBatch::default();
        let log = log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "c")]);
        log_batch(&log, 1, &mut batch);
        storage.write(batch).unwrap();
        let mut image = KvImage::default();
        image.data.insert("a".into(), "v".into());
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                last_index: 2,
                last_term: 1,
                config: Config::new([1, 2, 3]),
            },
            data: image,
        };
        storage
            .write(WriteBatch {
                snapshot: Some(snapshot),
                ..Default::default()
            })
            .unwrap();
    }
    let (_storage, recovered) = Storage::open(&path, &identity(), false).unwrap();
    assert_eq!(recovered.snapshot.meta.last_index, 2);
    assert_eq!(recovered.log.snapshot_index, 2);
    assert_eq!(recovered.log.last_index(), 3);
    assert_eq!(recovered.log.entry(3), Some(&entry(2, "c")));
    assert_eq!(
        recovered.snapshot.data.get("a").map(String::as_str),
        Some("v")
    );
}

#[test]
fn refuses_missing_foreign_and_changed_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    assert!(matches!(
        Storage::open(&path, &identity(), false),
        Err(StorageError::Missing(_))
    ));
    drop(Storage::open(&path, &identity(), true).unwrap());
    let other = Identity {
        node_id: 2,
        ..identity()
    };
    let err = Storage::open(&path, &other, true).err().unwrap();
    assert!(matches!(err, StorageError::Foreign { .. }), "{err}");
    let grown = Identity {
        members: vec![1, 2, 3, 4],
        ..identity()
    };
    assert!(matches!(
        Storage::open(&path, &grown, false),
        Err(StorageError::MembersChanged { .. })
    ));
    let stray = dir.path().join("stray");
    fs::create_dir_all(&stray).unwrap();
    fs::write(stray.join("notes.txt"), "hi").unwrap();
    assert!(matches!(
        Storage::open(&stray, &identity(), true),
        Err(StorageError::NotADataDir(_))
    ));
}

/// A crash during a first start leaves a log holding only INIT and no
/// identity: `--init` finishes the job. Anything more in the log (or
/// anything else in the directory) is not a first start, and is refused.
#[test]
fn an_interrupted_first_start_can_be_redone_with_init_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    fs::create_dir_all(&path).unwrap();
    LogFile::create(&path.join(LOG_FILE), &init_record()).unwrap();
    fs::write(path.join("identity.json.tmp"), b"{").unwrap();
    assert!(matches!(
        Storage::open(&path, &identity(), false),
        Err(StorageError::Missing(_))
    ));
    let (storage, recovered) = Storage::open(&path, &identity(), true).unwrap();
    assert_eq!((recovered.current_term, recovered.voted_for), (0, None));
    storage
        .write(WriteBatch {
            hard_state: Some((3, Some(2))),
            ..Default::default()
        })
        .unwrap();
    drop(storage);
    // A log with state in it, but its identity gone: not a first start.
    fs::remove_file(path.join(IDENTITY_FILE)).unwrap();
    fs::remove_file(path.join(LOCK_FILE)).unwrap();
    assert!(matches!(
        Storage::open(&path, &identity(), true),
        Err(StorageError::NotADataDir(_))
    ));
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    let _first = Storage::open(&path, &identity(), true).unwrap();
    assert!(matches!(
        Storage::open(&path, &identity(), false),
        Err(StorageError::Locked(_))
    ));
}

/// Writes a few entries and a snapshot, returning the node's directory.
fn populated(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("node");
    let (storage, _) = Storage::open(&path, &identity(), true).unwrap();
    let log = log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "c")]);
    let mut batch = WriteBatch::default();
    log_batch(&log, 1, &mut batch);
    storage.write(batch).unwrap();
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            last_index: 2,
            last_term: 1,
            config: Config::new([1, 2, 3]),
        },
        data: KvImage::default(),
    };
    storage
        .write(WriteBatch {
            snapshot: Some(snapshot),
            ..Default::default()
        })
        .unwrap();
    path
}

#[test]
fn a_log_file_that_lost_its_beginning_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(&dir);
    let log = path.join(LOG_FILE);
    // Emptied: before the INIT record, this started a fresh node (term 0,
    // no vote) that could vote twice.
    std::fs::write(&log, b"").unwrap();
    let err = Storage::open(&path, &identity(), true)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("lost its beginning"), "{err}");
    // Deleted: the same.
    std::fs::remove_file(&log).unwrap();
    let err = Storage::open(&path, &identity(), true)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("lost its beginning"), "{err}");

    // Cut so that INIT itself is gone: refused.
    let dir = tempfile::tempdir().unwrap();
    let path = populated(&dir);
    let log = path.join(LOG_FILE);
    let bytes = std::fs::read(&log).unwrap();
    let records = log_file::parse(&log, &bytes).unwrap().records;
    std::fs::write(&log, &bytes[records[1].0 as usize..]).unwrap();
    let err = Storage::open(&path, &identity(), true)
        .err()
        .expect("refused");
    assert!(err.to_string().contains("corrupt"), "{err}");

    // Cut at any later record boundary: refused too (the file is shorter
    // than its batch records say), not taken for a shorter log.
    for (at, _) in &records[1..] {
        std::fs::write(&log, &bytes[..*at as usize]).unwrap();
        let err = Storage::open(&path, &identity(), false)
            .err()
            .expect("refused");
        assert!(err.to_string().contains("cut short"), "{err}");
    }
}

#[test]
fn a_torn_snapshot_file_is_reported_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(&dir);
    let file = path.join(snapshot_file::file_name(2, 1));
    let bytes = fs::read(&file).unwrap();
    fs::write(&file, &bytes[..bytes.len() - 3]).unwrap();
    let err = Storage::open(&path, &identity(), false)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("checksum") && err.contains("snapshot-"),
        "{err}"
    );
    fs::remove_file(&file).unwrap();
    let err = Storage::open(&path, &identity(), false)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("snapshot-"),
        "a missing snapshot is named: {err}"
    );
}

#[test]
fn a_torn_final_write_is_cut_off_and_reported_as_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    {
        let (storage, _) = Storage::open(&path, &identity(), true).unwrap();
        let mut batch = WriteBatch::default();
        log_batch(&log_of(&[entry(1, "a"), entry(1, "b")]), 1, &mut batch);
        storage.write(batch).unwrap();
        // A second batch, one sector of which a crash keeps from the disk.
        let mut batch = WriteBatch::default();
        // (Entry 3 is long enough to span two sectors.)
        let long = "c".repeat(700);
        log_batch(
            &log_of(&[entry(1, "a"), entry(1, "b"), entry(1, &long)]),
            3,
            &mut batch,
        );
        storage.write(batch).unwrap();
    }
    let file = path.join(LOG_FILE);
    let mut bytes = fs::read(&file).unwrap();
    let contents = log_file::parse(&file, &bytes).unwrap();
    let (third, body) = contents.records.last().unwrap();
    let middle = *third as usize + body.len() / 2;
    let lost = middle / 512 * 512;
    bytes[lost.max(*third as usize)..(lost + 512).min(contents.end as usize)].fill(0);
    fs::write(&file, &bytes).unwrap();
    let (storage, recovered) = Storage::open(&path, &identity(), false).unwrap();
    assert!(recovered.repaired);
    assert_eq!(recovered.log, log_of(&[entry(1, "a"), entry(1, "b")]));
    // Appending resumes after the cut, and the result reads back cleanly.
    let mut batch = WriteBatch::default();
    log_batch(
        &log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "d")]),
        3,
        &mut batch,
    );
    storage.write(batch).unwrap();
    drop(storage);
    let (_, recovered) = Storage::open(&path, &identity(), false).unwrap();
    assert!(!recovered.repaired);
    assert_eq!(
        recovered.log,
        log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "d")])
    );
}

#[test]
fn a_corrupted_record_is_reported_with_its_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    {
        let (storage, _) = Storage::open(&path, &identity(), true).unwrap();
        let mut batch = WriteBatch::default();
        log_batch(&log_of(&[entry(1, "a"), entry(1, "b")]), 1, &mut batch);
        storage.write(batch).unwrap();
    }
    // Flip a bit in the first (batch) record's header or body: damage
    // to acknowledged data, never a torn write.
    let file = path.join(LOG_FILE);
    let clean = fs::read(&file).unwrap();
    for at in [log_file::HEADER + 3, 1, 5, 9] {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x10;
        fs::write(&file, &bytes).unwrap();
        let text = Storage::open(&path, &identity(), false)
            .err()
            .unwrap()
            .to_string();
        assert!(
            text.contains("raft.log") && text.contains("byte 0"),
            "{text}"
        );
    }
    // Damage in the last record is reported too, not taken for a torn write.
    let mut bytes = clean.clone();
    let last = log_file::parse(&file, &clean).unwrap().end as usize - 1;
    bytes[last] ^= 1;
    fs::write(&file, &bytes).unwrap();
    let text = Storage::open(&path, &identity(), false)
        .err()
        .unwrap()
        .to_string();
    assert!(text.contains("checksum"), "{text}");
}

/// Where the log file's records end (the zeros after them not counted).
fn records_end(dir: &Path) -> u64 {
    let path = dir.join(LOG_FILE);
    log_file::parse(&path, &fs::read(&path).unwrap())
        .unwrap()
        .end
}

#[test]
fn compaction_rewrites_the_file_and_overwrites_survive() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    {
        let (storage, _) = Storage::open(&path, &identity(), true).unwrap();
        let mut batch = WriteBatch::default();
        let log = log_of(&[entry(1, "a"), entry(1, "b"), entry(1, "c"), entry(1, "d")]);
        log_batch(&log, 1, &mut batch);
        storage.write(batch).unwrap();
        let before = records_end(&path);
        // Any dead record is worth a rewrite here.
        storage.durable.lock().unwrap().rewrite_bytes = 0;
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                last_index: 3,
                last_term: 1,
                config: Config::new([1, 2, 3]),
            },
            data: KvImage::default(),
        };
        storage
            .write(WriteBatch {
                snapshot: Some(snapshot),
                hard_state: Some((2, Some(3))),
                ..Default::default()
            })
            .unwrap();
        assert!(records_end(&path) < before);
        // Entry 4 is overwritten by a new leader's entry, then 5 added.
        let mut log = Log {
            snapshot_index: 3,
            snapshot_term: 1,
            ..Log::default()
        };
        log.append(entry(2, "x"));
        log.append(entry(2, "y"));
        let mut batch = WriteBatch::default();
        log_batch(&log, 4, &mut batch);
        storage.write(batch).unwrap();
    }
    let (_, recovered) = Storage::open(&path, &identity(), false).unwrap();
    assert_eq!((recovered.current_term, recovered.voted_for), (2, Some(3)));
    assert_eq!(recovered.log.snapshot_index, 3);
    assert_eq!(recovered.log.last_index(), 5);
    assert_eq!(recovered.log.entry(4), Some(&entry(2, "x")));
    assert_eq!(recovered.log.entry(5), Some(&entry(2, "y")));
}
