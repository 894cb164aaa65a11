//! Storage tests: what survives a reopen, compaction, and the refusals.

use std::fs;

use raft_model::{Config, Entry, Payload, SnapshotMeta};

use super::data_dir::{self, IDENTITY_FILE, LOCK_FILE, LOG_FILE};
use super::records::{self, init_record};
use super::*;
use crate::kv::KvOp;

fn identity() -> Identity {
    Identity {
        cluster_id: "test".into(),
        node_id: 1,
        members: vec![1, 2, 3],
    }
}

/// Initialises `dir` for `identity` and opens it (a node's first start).
fn init_and_open(dir: &Path, identity: &Identity) -> (Storage, Recovered) {
    Storage::init(dir, identity).unwrap();
    Storage::open(dir, identity).unwrap()
}

fn entry(term: Term, key: &str) -> Entry<KvCommand> {
    Entry {
        term,
        payload: Payload::Command(KvCommand::new(
            1,
            1,
            KvOp::Put {
                key: key.into(),
                value: "v".into(),
            },
        )),
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
        let (storage, recovered) = init_and_open(&path, &identity());
        assert_eq!(recovered.log.last_index(), 0);
        let mut batch = WriteBatch {
            hard_state: Some((3, Some(2))),
            ..Default::default()
        };
        batch.set_log_from(&log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "c")]), 1);
        storage.write(batch).unwrap();
        // A new leader overwrites entry 2 and drops entry 3.
        let mut batch = WriteBatch::default();
        batch.set_log_from(&log_of(&[entry(1, "a"), entry(3, "x")]), 2);
        storage.write(batch).unwrap();
    }
    let (_storage, recovered) = Storage::open(&path, &identity()).unwrap();
    assert_eq!((recovered.current_term, recovered.voted_for), (3, Some(2)));
    assert_eq!(recovered.log, log_of(&[entry(1, "a"), entry(3, "x")]));
}

#[test]
fn compaction_keeps_the_suffix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    {
        let (storage, _) = init_and_open(&path, &identity());
        let mut batch = WriteBatch::default();
        let log = log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "c")]);
        batch.set_log_from(&log, 1);
        storage.write(batch).unwrap();
        let mut image = KvImage::default();
        image
            .apply(
                1,
                &KvCommand::new(
                    0,
                    0,
                    KvOp::Put {
                        key: "a".into(),
                        value: "v".into(),
                    },
                ),
            )
            .unwrap();
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
    let (_storage, recovered) = Storage::open(&path, &identity()).unwrap();
    assert_eq!(recovered.snapshot.meta.last_index, 2);
    assert_eq!(recovered.log.snapshot_index, 2);
    assert_eq!(recovered.log.last_index(), 3);
    assert_eq!(recovered.log.entry(3), Some(&entry(2, "c")));
    assert_eq!(
        recovered
            .snapshot
            .data
            .get(b"a")
            .map(|kv| (kv.value.as_slice(), kv.create_revision)),
        Some((&b"v"[..], 2))
    );
}

#[test]
fn refuses_missing_foreign_and_changed_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    assert!(matches!(
        Storage::open(&path, &identity()),
        Err(StorageError::Missing(_))
    ));
    drop(init_and_open(&path, &identity()));
    let other = Identity {
        node_id: 2,
        ..identity()
    };
    let err = Storage::open(&path, &other).err().unwrap();
    assert!(matches!(err, StorageError::Foreign { .. }), "{err}");
    let grown = Identity {
        members: vec![1, 2, 3, 4],
        ..identity()
    };
    assert!(matches!(
        Storage::open(&path, &grown),
        Err(StorageError::MembersChanged { .. })
    ));
    let stray = dir.path().join("stray");
    fs::create_dir_all(&stray).unwrap();
    fs::write(stray.join("notes.txt"), "hi").unwrap();
    assert!(matches!(
        Storage::init(&stray, &identity()),
        Err(StorageError::NotADataDir(_))
    ));
    assert!(matches!(
        Storage::open(&stray, &identity()),
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
        Storage::open(&path, &identity()),
        Err(StorageError::Uninitialised(_))
    ));
    let (storage, recovered) = init_and_open(&path, &identity());
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
        Storage::init(&path, &identity()),
        Err(StorageError::NotADataDir(_))
    ));
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    let _first = init_and_open(&path, &identity());
    assert!(matches!(
        Storage::open(&path, &identity()),
        Err(StorageError::Locked(_))
    ));
}

/// Writes a few entries and a snapshot, returning the node's directory.
fn populated(dir: &tempfile::TempDir) -> PathBuf {
    let path = dir.path().join("node");
    let (storage, _) = init_and_open(&path, &identity());
    let log = log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "c")]);
    let mut batch = WriteBatch::default();
    batch.set_log_from(&log, 1);
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
    let err = Storage::open(&path, &identity()).err().expect("refused");
    assert!(err.to_string().contains("lost its beginning"), "{err}");
    // Deleted: the same.
    std::fs::remove_file(&log).unwrap();
    let err = Storage::open(&path, &identity()).err().expect("refused");
    assert!(err.to_string().contains("lost its beginning"), "{err}");

    // Cut so that INIT itself is gone: refused.
    let dir = tempfile::tempdir().unwrap();
    let path = populated(&dir);
    let log = path.join(LOG_FILE);
    let bytes = std::fs::read(&log).unwrap();
    let records = log_file::parse(&log, &bytes).unwrap().records;
    std::fs::write(&log, &bytes[records[1].0 as usize..]).unwrap();
    let err = Storage::open(&path, &identity()).err().expect("refused");
    assert!(err.to_string().contains("corrupt"), "{err}");

    // Cut at any later record boundary: refused too (the file is shorter
    // than its batch records say), not taken for a shorter log.
    for (at, _) in &records[1..] {
        std::fs::write(&log, &bytes[..*at as usize]).unwrap();
        let err = Storage::open(&path, &identity()).err().expect("refused");
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
    let err = Storage::open(&path, &identity()).err().unwrap().to_string();
    assert!(
        err.contains("checksum") && err.contains("snapshot-"),
        "{err}"
    );
    fs::remove_file(&file).unwrap();
    let err = Storage::open(&path, &identity()).err().unwrap().to_string();
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
        let (storage, _) = init_and_open(&path, &identity());
        let mut batch = WriteBatch::default();
        batch.set_log_from(&log_of(&[entry(1, "a"), entry(1, "b")]), 1);
        storage.write(batch).unwrap();
        // A second batch, one sector of which a crash keeps from the disk.
        let mut batch = WriteBatch::default();
        // (Entry 3 is long enough to span two sectors.)
        let long = "c".repeat(700);
        batch.set_log_from(&log_of(&[entry(1, "a"), entry(1, "b"), entry(1, &long)]), 3);
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
    let (storage, recovered) = Storage::open(&path, &identity()).unwrap();
    assert!(recovered.repaired);
    assert_eq!(recovered.log, log_of(&[entry(1, "a"), entry(1, "b")]));
    // Appending resumes after the cut, and the result reads back cleanly.
    let mut batch = WriteBatch::default();
    batch.set_log_from(&log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "d")]), 3);
    storage.write(batch).unwrap();
    drop(storage);
    let (_, recovered) = Storage::open(&path, &identity()).unwrap();
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
        let (storage, _) = init_and_open(&path, &identity());
        let mut batch = WriteBatch::default();
        batch.set_log_from(&log_of(&[entry(1, "a"), entry(1, "b")]), 1);
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
        let text = Storage::open(&path, &identity()).err().unwrap().to_string();
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
    let text = Storage::open(&path, &identity()).err().unwrap().to_string();
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
        let (storage, _) = init_and_open(&path, &identity());
        let mut batch = WriteBatch::default();
        let log = log_of(&[entry(1, "a"), entry(1, "b"), entry(1, "c"), entry(1, "d")]);
        batch.set_log_from(&log, 1);
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
        batch.set_log_from(&log, 4);
        storage.write(batch).unwrap();
    }
    let (_, recovered) = Storage::open(&path, &identity()).unwrap();
    assert_eq!((recovered.current_term, recovered.voted_for), (2, Some(3)));
    assert_eq!(recovered.log.snapshot_index, 3);
    assert_eq!(recovered.log.last_index(), 5);
    assert_eq!(recovered.log.entry(4), Some(&entry(2, "x")));
    assert_eq!(recovered.log.entry(5), Some(&entry(2, "y")));
}

/// The format version the log file in `dir` names.
fn format_version(dir: &Path) -> u64 {
    let path = dir.join(LOG_FILE);
    let contents = log_file::parse(&path, &fs::read(&path).unwrap()).unwrap();
    records::init_version(&contents.records[0].1).unwrap()
}

/// A copy of `impl/tests/fixtures/datadir-v1`: a data directory written by
/// the storage of format version 1 (before the disk had messages of its own
/// and a recorded version), through `Storage::write`: hard states (1, vote
/// 1), (2, vote 3), (3, no vote); entries 1..=5 of term 1, a truncation to
/// 4, entry 4 overwritten in term 2 and entry 5 appended; a snapshot at
/// index 3, term 1 (keys a=1 and b=2, client 7's session); entries 6 and 7
/// of term 2 after it.
fn version_1_directory(root: &tempfile::TempDir) -> (PathBuf, Identity) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datadir-v1");
    let path = root.path().join("node");
    fs::create_dir_all(&path).unwrap();
    for item in fs::read_dir(&fixture).unwrap() {
        let item = item.unwrap();
        fs::copy(item.path(), path.join(item.file_name())).unwrap();
    }
    let identity = Identity {
        cluster_id: "fixture".into(),
        node_id: 1,
        members: vec![1, 2, 3],
    };
    (path, identity)
}

/// Format version 3 added etcd's revisions to the snapshot image, which a
/// version-1 image lacks and which cannot be rebuilt as the other members
/// hold them (`snapshot_file`): the directory is refused, by name, and left
/// as it was (not upgraded).
#[test]
fn a_version_1_data_directory_with_a_snapshot_is_refused_by_name() {
    let root = tempfile::tempdir().unwrap();
    let (path, identity) = version_1_directory(&root);
    assert_eq!(format_version(&path), 1);
    let before = fs::read(path.join(LOG_FILE)).unwrap();
    let err = Storage::open(&path, &identity)
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("snapshot image is of format 1 (RAFTSNP1"),
        "{err}"
    );
    assert!(err.contains(&snapshot_file::file_name(3, 1)), "{err}");
    assert_eq!(format_version(&path), 1, "not upgraded");
    assert_eq!(fs::read(path.join(LOG_FILE)).unwrap(), before);
}

#[test]
fn a_later_format_version_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = populated(&dir);
    let log = path.join(LOG_FILE);
    for init in [
        records::init_record_of(FORMAT_VERSION + 1),
        // A later INIT record may be longer; its first 17 bytes still say
        // which version it is.
        {
            let mut longer = Vec::new();
            let mut body = records::init_record_of(99)[log_file::HEADER..].to_vec();
            body.extend_from_slice(b"more to come");
            log_file::frame(&mut longer, &body);
            longer
        },
    ] {
        let version = format!(
            "disk format version {}",
            u64::from_le_bytes(init[log_file::HEADER + 9..][..8].try_into().unwrap())
        );
        LogFile::create(&log, &init).unwrap();
        let err = Storage::open(&path, &identity())
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(&version), "{err}");
        assert!(
            err.contains(&format!("reads versions 1 to {FORMAT_VERSION}")),
            "{err}"
        );
        assert!(err.contains("raft.log"), "{err}");
    }
}

/// A directory holding entries 1..=3 of term 1, the first two committed,
/// and the hard state (2, vote 2).
fn committed_two(dir: &tempfile::TempDir) -> Storage {
    let (storage, _) = init_and_open(&dir.path().join("node"), &identity());
    let mut batch = WriteBatch::default();
    batch.set_hard_state(2, Some(2));
    batch.set_log_from(&log_of(&[entry(1, "a"), entry(1, "b"), entry(1, "c")]), 1);
    batch.set_commit_index(2);
    storage.write(batch).unwrap();
    storage
}

#[test]
fn uncommitted_entries_may_be_overwritten_and_committed_ones_rewritten_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let storage = committed_two(&dir);
    // Entry 3 was not committed: a new leader may replace it.
    let mut batch = WriteBatch::default();
    batch.set_log_from(&log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "x")]), 3);
    storage.write(batch).unwrap();
    // Committed entries written again as they are: no loss.
    let mut batch = WriteBatch::default();
    batch.set_log_from(&log_of(&[entry(1, "a"), entry(1, "b"), entry(2, "x")]), 2);
    storage.write(batch).unwrap();
}

#[test]
#[should_panic(expected = "refusing to overwrite log entry 2, committed")]
fn a_committed_entry_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let storage = committed_two(&dir);
    let mut batch = WriteBatch::default();
    batch.set_log_from(&log_of(&[entry(1, "a"), entry(2, "x")]), 2);
    let _ = storage.write(batch);
}

#[test]
#[should_panic(expected = "refusing to truncate the log after entry 1")]
fn committed_entries_are_never_truncated_away() {
    let dir = tempfile::tempdir().unwrap();
    let storage = committed_two(&dir);
    let mut batch = WriteBatch::default();
    batch.set_log_from(&log_of(&[entry(1, "a")]), 2);
    let _ = storage.write(batch);
}

#[test]
#[should_panic(expected = "a node votes once in a term")]
fn a_second_vote_in_a_term_is_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let storage = committed_two(&dir);
    let mut batch = WriteBatch::default();
    batch.set_hard_state(2, Some(3));
    let _ = storage.write(batch);
}

#[test]
#[should_panic(expected = "a term never decreases")]
fn the_term_never_goes_down() {
    let dir = tempfile::tempdir().unwrap();
    let storage = committed_two(&dir);
    let mut batch = WriteBatch::default();
    batch.set_hard_state(1, None);
    let _ = storage.write(batch);
}

#[test]
#[should_panic(expected = "a snapshot never goes backwards")]
fn a_snapshot_never_goes_backwards() {
    let dir = tempfile::tempdir().unwrap();
    let storage = committed_two(&dir);
    let snapshot_at = |index| Snapshot {
        meta: SnapshotMeta {
            last_index: index,
            last_term: 1,
            config: Config::new([1, 2, 3]),
        },
        data: KvImage::default(),
    };
    let mut log = log_of(&[entry(1, "a"), entry(1, "b"), entry(1, "c")]);
    log.compact_to(2, 1);
    let mut batch = WriteBatch::default();
    batch.set_snapshot(&snapshot_at(2), &log);
    storage.write(batch).unwrap();
    let mut log = log_of(&[entry(1, "a"), entry(1, "b"), entry(1, "c")]);
    log.compact_to(1, 1);
    let mut batch = WriteBatch::default();
    batch.set_snapshot(&snapshot_at(1), &log);
    let _ = storage.write(batch);
}

#[test]
#[should_panic(expected = "the durable (term, vote) is not the core's")]
fn a_core_state_never_persisted_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let storage = committed_two(&dir);
    let log = log_of(&[entry(1, "a"), entry(1, "b"), entry(1, "c")]);
    storage.assert_durable(2, Some(2), &log, 3);
    // The core voted in term 3, and nobody asked to persist it.
    storage.assert_durable(3, Some(1), &log, 3);
}

/// A leader writing its own entries in parallel holds entries its disk
/// may lack, past what its core knows durable: a durable log that ends
/// between the two passes; one that ends before the core's durable index
/// (an entry the core counts on, gone) is caught.
#[test]
#[should_panic(expected = "outside the core's durable index 4")]
fn a_leader_s_durable_log_may_lag_its_log_but_not_its_durable_index() {
    let dir = tempfile::tempdir().unwrap();
    let storage = committed_two(&dir);
    let log = log_of(&[
        entry(1, "a"),
        entry(1, "b"),
        entry(1, "c"),
        entry(2, "d"),
        entry(2, "e"),
    ]);
    // Entries 4 and 5 are still being written; the core knows 3 durable.
    storage.assert_durable(2, Some(2), &log, 3);
    // The core counts on entry 4, which the disk does not hold.
    storage.assert_durable(2, Some(2), &log, 4);
}

/// The identity file of a directory `--init` created has a checksum, and a
/// flipped bit anywhere in it (each byte, each bit), or a cut anywhere, is
/// refused as corruption of identity.json.
#[test]
fn every_flipped_bit_and_every_cut_of_the_identity_file_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("node");
    drop(init_and_open(&dir, &identity()));
    let path = dir.join(IDENTITY_FILE);
    let pristine = fs::read(&path).unwrap();
    assert!(
        String::from_utf8_lossy(&pristine).contains("\"crc32\""),
        "no checksum in {}",
        String::from_utf8_lossy(&pristine)
    );
    let refused = |bytes: &[u8], what: &str| {
        fs::write(&path, bytes).unwrap();
        match Storage::open(&dir, &identity()) {
            Ok(_) => panic!("identity.json {what}: accepted"),
            Err(err @ StorageError::Corrupt { .. }) => {
                let text = err.to_string();
                assert!(
                    text.contains("identity.json")
                        && ["checksum mismatch", "does not parse", "byte for byte"]
                            .iter()
                            .any(|word| text.contains(word)),
                    "identity.json {what}: {text}"
                );
            }
            Err(err) => panic!("identity.json {what}: refused, but not as corruption: {err}"),
        }
    };
    for at in 0..pristine.len() {
        for bit in 0..8 {
            let mut bytes = pristine.clone();
            bytes[at] ^= 1 << bit;
            refused(&bytes, &format!("with bit {bit} of byte {at} flipped"));
        }
    }
    for len in 0..pristine.len() {
        refused(&pristine[..len], &format!("cut to {len} bytes"));
    }
    fs::write(&path, &pristine).unwrap();
    drop(Storage::open(&dir, &identity()).unwrap());
}

/// An identity file written before the checksum existed (the fixture's) is
/// read, and rewritten with its checksum. The fixture's snapshot is of an
/// image format that disk format 3 refuses, so the old identity file is put
/// into a directory of the current format: what is under test is the
/// identity file alone.
#[test]
fn an_identity_file_without_a_checksum_is_read_and_given_one() {
    let root = tempfile::tempdir().unwrap();
    let (fixture, identity) = version_1_directory(&root);
    let path = root.path().join("current");
    Storage::init(&path, &identity).unwrap();
    fs::copy(fixture.join(IDENTITY_FILE), path.join(IDENTITY_FILE)).unwrap();
    let old = fs::read_to_string(path.join(IDENTITY_FILE)).unwrap();
    assert!(!old.contains("crc32"), "the fixture has no checksum: {old}");
    assert!(!old.contains("incarnation"), "{old}");
    let (storage, recovered) = Storage::open(&path, &identity).unwrap();
    drop(storage);
    let new = fs::read_to_string(path.join(IDENTITY_FILE)).unwrap();
    assert!(new.contains("\"crc32\""), "not upgraded: {new}");
    // It is given an incarnation too, once: the same at every later start.
    assert!(new.contains(&recovered.incarnation), "{new}");
    assert_eq!(recovered.incarnation.len(), 32);
    let (_, again) = Storage::open(&path, &identity).unwrap();
    assert_eq!(again.incarnation, recovered.incarnation);
    assert_eq!(fs::read_to_string(path.join(IDENTITY_FILE)).unwrap(), new);
}

/// A node's data directory is initialised once: opening never creates
/// one, and initialising one that holds a node's data is refused.
#[test]
fn a_data_directory_is_initialised_once() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("node");
    let incarnation = Storage::init(&path, &identity()).unwrap();
    assert_eq!(incarnation.len(), 32, "{incarnation}");
    let identity_file = fs::read_to_string(path.join(IDENTITY_FILE)).unwrap();
    assert!(identity_file.contains(&incarnation), "{identity_file}");
    let (storage, recovered) = Storage::open(&path, &identity()).unwrap();
    assert_eq!(recovered.incarnation, incarnation);
    storage
        .write(WriteBatch {
            hard_state: Some((3, Some(2))),
            ..Default::default()
        })
        .unwrap();
    drop(storage);
    let err = Storage::init(&path, &identity()).expect_err("refused");
    assert!(
        matches!(err, StorageError::AlreadyInitialised { .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("already initialised") && text.contains(&incarnation),
        "{text}"
    );
    // Refused, and nothing was changed: the vote is still there.
    let (_, recovered) = Storage::open(&path, &identity()).unwrap();
    assert_eq!((recovered.current_term, recovered.voted_for), (3, Some(2)));
    // Another directory draws another incarnation.
    let other = Storage::init(&root.path().join("other"), &identity()).unwrap();
    assert_ne!(other, incarnation);
}

/// A node whose data directory is gone (a wiped disk), or empty (a volume
/// that did not mount), refuses to start, saying what happened and what to
/// do; it never comes back at term 0, free to vote again.
#[test]
fn a_missing_or_empty_data_directory_is_refused_with_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("node");
    let (storage, _) = init_and_open(&path, &identity());
    storage
        .write(WriteBatch {
            hard_state: Some((3, Some(2))),
            ..Default::default()
        })
        .unwrap();
    drop(storage);
    fs::remove_dir_all(&path).unwrap();
    let err = Storage::open(&path, &identity()).err().expect("refused");
    assert!(matches!(err, StorageError::Missing(_)), "{err}");
    let text = err.to_string();
    for words in [
        "does not exist",
        "must not rejoin as the same member",
        "new member",
        "mounted",
        "raft-node init",
    ] {
        assert!(text.contains(words), "{words:?} not in: {text}");
    }
    assert!(!path.exists(), "opening created the directory");
    // An empty directory (a mount point without its volume; a fresh file
    // system holds lost+found) is refused the same way.
    fs::create_dir_all(path.join("lost+found")).unwrap();
    let err = Storage::open(&path, &identity()).err().expect("refused");
    assert!(matches!(err, StorageError::Uninitialised(_)), "{err}");
    assert!(err.to_string().contains("must not rejoin"), "{err}");
    assert!(!path.join(LOG_FILE).exists(), "opening wrote a log");
}

/// Initialising creates the directory and any missing parent, and fsyncs
/// the directory holding each one created (else a crash could lose the new
/// directory's entry, and every file in it).
#[test]
fn creating_a_data_directory_fsyncs_its_parents() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("a/b/node");
    let synced = data_dir::create_dir_durably(&path).unwrap();
    assert_eq!(
        synced,
        [
            root.path().to_owned(),
            root.path().join("a"),
            root.path().join("a/b")
        ]
    );
    assert!(path.is_dir());
    assert!(data_dir::create_dir_durably(&path).unwrap().is_empty());
}

/// A batch that installs a snapshot over a conflicting log: its records are
/// the hard state, the snapshot pointer, and the truncation of the old
/// entries the snapshot does not cover. `value` pads the entries written
/// before it. Returns the node's directory and where, in the log file, the
/// snapshot batch's truncation record starts and the batch ends.
fn snapshot_over_a_conflicting_log(
    root: &tempfile::TempDir,
    value: usize,
) -> (PathBuf, usize, usize) {
    let path = root.path().join("node");
    let (storage, _) = init_and_open(&path, &identity());
    let long = "v".repeat(value);
    let old = log_of(&[
        entry(1, &long),
        entry(1, "b"),
        entry(1, "c"),
        entry(1, "d"),
        entry(1, "e"),
    ]);
    let mut batch = WriteBatch::default();
    batch.set_hard_state(1, Some(1));
    batch.set_log_from(&old, 1);
    storage.write(batch).unwrap();
    let before = records_end(&path) as usize;
    // The leader of term 2 sends a snapshot at (3, 2): entries 4 and 5 of
    // term 1 conflict with it, and the log after it is empty.
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            last_index: 3,
            last_term: 2,
            config: Config::new([1, 2, 3]),
        },
        data: KvImage::default(),
    };
    let log = Log {
        snapshot_index: 3,
        snapshot_term: 2,
        ..Log::default()
    };
    let mut batch = WriteBatch::default();
    batch.set_hard_state(2, None);
    batch.set_snapshot(&snapshot, &log);
    storage.write(batch).unwrap();
    drop(storage);
    let file = path.join(LOG_FILE);
    let contents = log_file::parse(&file, &fs::read(&file).unwrap()).unwrap();
    let kinds: Vec<(u64, u8)> = contents
        .records
        .iter()
        .filter(|(at, _)| *at as usize > before)
        .map(|(at, body)| (*at, body[0]))
        .collect();
    // Hard state (1), snapshot (2), truncation (4): in this order.
    assert_eq!(
        kinds.iter().map(|(_, kind)| *kind).collect::<Vec<_>>(),
        [1, 2, 4]
    );
    (path, kinds[2].0 as usize, contents.end as usize)
}

/// A crash tears the snapshot batch between its snapshot record and its
/// truncation record (the disk kept its sectors up to the truncation). The
/// batch is one step of the core's state: recovery keeps it whole or drops
/// it whole — never the new snapshot followed by the old conflicting
/// entries (4 and 5 of term 1 after a snapshot of term 2), which no Raft
/// state allows.
#[test]
fn a_torn_batch_is_recovered_whole_or_not_at_all() {
    // Pad the earlier entries so that the truncation record starts at a
    // sector boundary: a crash keeps or loses whole sectors.
    let probe = tempfile::tempdir().unwrap();
    let (_, at, _) = snapshot_over_a_conflicting_log(&probe, 300);
    let value = 300 + (512 - at % 512) % 512;
    let root = tempfile::tempdir().unwrap();
    let (path, truncation, end) = snapshot_over_a_conflicting_log(&root, value);
    assert_eq!(truncation % 512, 0, "the truncation record starts a sector");
    let file = path.join(LOG_FILE);
    let mut bytes = fs::read(&file).unwrap();
    bytes[truncation..end].fill(0);
    fs::write(&file, &bytes).unwrap();

    let (_storage, recovered) = Storage::open(&path, &identity()).unwrap();
    // The state before the batch, all of it.
    assert_eq!(
        (recovered.log.snapshot_index, recovered.log.snapshot_term),
        (0, 0),
        "the new snapshot was recovered without its truncation: entries {:?} follow it",
        (recovered.log.snapshot_index + 1..=recovered.log.last_index())
            .map(|index| recovered.log.term_at(index))
            .collect::<Vec<_>>()
    );
    assert_eq!((recovered.current_term, recovered.voted_for), (1, Some(1)));
    assert_eq!(recovered.log.last_index(), 5);
    assert_eq!(recovered.log.entry(2), Some(&entry(1, "b")));
    assert!(recovered.repaired, "the torn batch is reported");
}

/// A data directory initialised to join (no members recorded) opens
/// whatever its config file lists, and starts with no configuration.
#[test]
fn a_directory_initialised_to_join_starts_with_no_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    let joining = Identity {
        members: Vec::new(),
        ..identity()
    };
    Storage::init(&path, &joining).unwrap();
    // The config file names this node (and maybe others): only addresses.
    let (_, recovered) = Storage::open(&path, &identity()).unwrap();
    assert_eq!(recovered.snapshot.meta.config, Config::new([]));
    assert!(recovered.initial_members.is_empty());
}

/// A stored snapshot whose configuration is not the starting one (a
/// membership change happened before it) is read with its configuration.
#[test]
fn a_stored_snapshot_of_other_members_is_read_with_them() {
    for members in [vec![1, 2, 3, 4], vec![1, 2]] {
        let dir = tempfile::tempdir().unwrap();
        let path = populated(&dir);
        let file = path.join(snapshot_file::file_name(2, 1));
        let meta = SnapshotMeta {
            last_index: 2,
            last_term: 1,
            config: Config::new(members.clone()),
        };
        fs::write(&file, snapshot_file::encode(&meta, &KvImage::default())).unwrap();
        let (_, recovered) = Storage::open(&path, &identity()).unwrap();
        assert_eq!(recovered.snapshot.meta.config, Config::new(members));
    }
}

/// The data directory's size: every file's length, and the part that is
/// state — the log's records, not the room its file holds ahead of them.
#[test]
fn disk_usage_counts_every_file_and_the_logs_records_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node");
    let (storage, _) = init_and_open(&path, &identity());
    let mut batch = WriteBatch::default();
    batch.set_log_from(&log_of(&[entry(1, "a"), entry(1, "b"), entry(1, "c")]), 1);
    storage.write(batch).unwrap();
    let usage = storage.disk_usage().unwrap();

    let files: u64 = fs::read_dir(&path)
        .unwrap()
        .map(|entry| entry.unwrap().metadata().unwrap())
        .filter(|meta| meta.is_file())
        .map(|meta| meta.len())
        .sum();
    assert_eq!(usage.bytes, files);
    let log_len = fs::metadata(path.join(LOG_FILE)).unwrap().len();
    let records = storage.durable.lock().unwrap().file.size();
    assert!(
        records < log_len,
        "the log file holds room ahead: {records} of {log_len}"
    );
    assert_eq!(usage.in_use, files - (log_len - records));
}
