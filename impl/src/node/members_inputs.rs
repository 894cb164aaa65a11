//! Whether anything `refresh_members` reads has changed since its last
//! run, found without deriving the address book.
//!
//! The event loop refreshes its view of the members after every batch
//! (`refresh_members`): the address book (`members::derive`: the config
//! file, the applied book, and every address command appended but not yet
//! applied), the peer senders, the published directory. Deriving the book
//! walks every unapplied entry and clones the book; under load that was
//! 2-3 % of the leader's CPU at 16 and 256 clients (issue 17's profiles),
//! for a book that changes only during a membership change.
//!
//! What the refresh reads, and how each is compared here:
//! - the applied book, `KvImage::addresses` and `::incarnations`:
//!   imbl maps, compared by pointer (an apply that writes neither leaves
//!   them shared; a snapshot installed replaces them — a false "changed"
//!   only costs one derive);
//! - the unapplied address commands: indexes of the `SetMemberAddress`
//!   entries past the applied index, kept by scanning only the entries
//!   appended since the last call (exact by Log Matching: `ScannedTo`).
//!   While any
//!   is unapplied, the book is derived every batch, as before;
//! - the configuration in force, its index, and whether that is committed:
//!   compared by value.
//!
//! Debug builds check every "unchanged" against a fresh derive
//! (`refresh_members`).

use raft_model::{Config, Index, Log, Payload};

use super::scanned_to::ScannedTo;
use crate::kv::{KvCommand, KvImage, KvOp};

#[derive(Default)]
pub(crate) struct MembersInputs {
    /// What the last refresh read (None before the first).
    last: Option<Inputs>,
    /// How far the log was scanned for `unapplied`.
    scanned: Option<ScannedTo>,
    /// Indexes of `SetMemberAddress` entries in the log past the applied
    /// index, as of the last scan, ascending.
    unapplied: Vec<Index>,
}

struct Inputs {
    addresses: imbl::OrdMap<raft_model::NodeId, String>,
    incarnations: imbl::OrdMap<raft_model::NodeId, String>,
    config: Config,
    config_index: Index,
    committed: bool,
}

impl MembersInputs {
    /// Records what a refresh is about to read and says whether it differs
    /// from what the last one read: false means the last refresh's book,
    /// senders and directory stand unchanged.
    pub(crate) fn changed(
        &mut self,
        image: &KvImage,
        log: &Log<KvCommand>,
        applied: Index,
        config: &Config,
        config_index: Index,
        committed: bool,
    ) -> bool {
        if self.scan(log, applied) {
            // Address commands unapplied: the refresh derives the book from
            // them, and the next one must not call its result current.
            self.last = None;
            return true;
        }
        let unchanged = self.last.as_ref().is_some_and(|last| {
            last.addresses.ptr_eq(&image.addresses)
                && last.incarnations.ptr_eq(&image.incarnations)
                && last.config == *config
                && last.config_index == config_index
                && last.committed == committed
        });
        if !unchanged {
            self.last = Some(Inputs {
                addresses: image.addresses.clone(),
                incarnations: image.incarnations.clone(),
                config: config.clone(),
                config_index,
                committed,
            });
        }
        !unchanged
    }

    /// Updates `unapplied` to the log's address commands past `applied`
    /// and says whether there are any.
    fn scan(&mut self, log: &Log<KvCommand>, applied: Index) -> bool {
        let last = log.last_index();
        let from = match self.scanned.and_then(|scanned| scanned.still_in(log)) {
            Some(scanned) => scanned + 1,
            None => {
                self.unapplied.clear();
                log.snapshot_index + 1
            }
        };
        self.unapplied.retain(|index| *index > applied);
        for index in from.max(applied + 1)..=last {
            if let Some(entry) = log.entry(index)
                && let Payload::Command(command) = &entry.payload
                && matches!(command.op(), KvOp::SetMemberAddress { .. })
            {
                self.unapplied.push(index);
            }
        }
        self.scanned = ScannedTo::end_of(log);
        !self.unapplied.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use raft_model::{Entry, Term};

    use super::*;

    fn put(term: Term) -> Entry<KvCommand> {
        let op = KvOp::Put {
            key: "k".into(),
            value: "v".into(),
        };
        Entry {
            term,
            payload: Payload::Command(KvCommand::new(1, 1, op)),
        }
    }

    fn address(term: Term) -> Entry<KvCommand> {
        let op = KvOp::SetMemberAddress {
            id: 4,
            address: "127.0.0.1:4".into(),
            incarnation: String::new(),
        };
        Entry {
            term,
            payload: Payload::Command(KvCommand::new(1, 2, op)),
        }
    }

    fn changed(
        inputs: &mut MembersInputs,
        image: &KvImage,
        log: &Log<KvCommand>,
        applied: Index,
    ) -> bool {
        inputs.changed(image, log, applied, &Config::new([1, 2]), 0, true)
    }

    #[test]
    fn unchanged_until_an_address_command_is_appended_and_until_it_is_applied() {
        let (mut inputs, image, mut log) =
            (MembersInputs::default(), KvImage::default(), Log::default());
        log.append(put(1));
        assert!(changed(&mut inputs, &image, &log, 0), "the first refresh");
        log.append(put(1));
        assert!(!changed(&mut inputs, &image, &log, 1));
        // Appended, not applied: derived every batch until applied.
        log.append(address(1));
        log.append(put(1));
        assert!(changed(&mut inputs, &image, &log, 2));
        assert!(changed(&mut inputs, &image, &log, 2));
        // Applied (the image's book is replaced): once more, then settled.
        let mut applied_image = image.clone();
        applied_image.addresses.insert(4, "127.0.0.1:4".into());
        assert!(changed(&mut inputs, &applied_image, &log, 4));
        assert!(!changed(&mut inputs, &applied_image, &log, 4));
    }

    #[test]
    fn an_address_command_in_a_rewritten_suffix_is_seen() {
        let (mut inputs, image, mut log) =
            (MembersInputs::default(), KvImage::default(), Log::default());
        log.append(put(1));
        log.append(put(1));
        assert!(changed(&mut inputs, &image, &log, 0));
        // A new leader's log replaces entry 2 with an address command of
        // its term: the same length, a different term at the last index.
        log.truncate_from(2);
        log.append(address(2));
        assert!(changed(&mut inputs, &image, &log, 0));
    }

    #[test]
    fn a_configuration_change_is_a_change() {
        let (mut inputs, image, log) =
            (MembersInputs::default(), KvImage::default(), Log::default());
        assert!(inputs.changed(&image, &log, 0, &Config::new([1, 2]), 0, true));
        assert!(!inputs.changed(&image, &log, 0, &Config::new([1, 2]), 0, true));
        assert!(inputs.changed(&image, &log, 0, &Config::new([1, 2]), 0, false));
        assert!(inputs.changed(&image, &log, 0, &Config::new([1, 2]), 3, false));
        let config = Config::new([1, 2, 3]);
        assert!(inputs.changed(&image, &log, 0, &config, 3, false));
        assert!(!inputs.changed(&image, &log, 0, &config, 3, false));
    }
}
