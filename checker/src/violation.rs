//! A violated property, named concretely: which servers, which term, which
//! index. `properties.rs` answers "does it hold?"; this answers "where does
//! it not?", for the last state of a counterexample.

use raft_model::Role;

use crate::describe::server_name;
use crate::model;
use crate::state::{RaftState, entry_at, log_length};

/// What breaks `property` in `state`, or `None` if it holds there (or is not
/// a safety property).
pub fn explain(property: &str, state: &RaftState) -> Option<String> {
    match property {
        model::ELECTION_SAFETY => election_safety(state),
        model::LEADER_APPEND_ONLY => state
            .leader_append_only_violated
            .then(|| "a leader's log lost or changed an entry within its own term".to_string()),
        model::LOG_MATCHING => log_matching(state),
        model::LEADER_COMPLETENESS => leader_completeness(state),
        model::STATE_MACHINE_SAFETY => state_machine_safety(state),
        model::READ_INDEX_SAFETY => read_index_safety(state),
        _ => None,
    }
}

fn election_safety(state: &RaftState) -> Option<String> {
    let elected: Vec<_> = state.elected.iter().collect();
    elected.windows(2).find_map(|pair| {
        let ((t1, a), (t2, b)) = (pair[0], pair[1]);
        (t1 == t2 && a != b).then(|| {
            format!(
                "two leaders of term {t1}: {} and {}",
                server_name(*a),
                server_name(*b)
            )
        })
    })
}

fn log_matching(state: &RaftState) -> Option<String> {
    for (i, a) in state.servers.iter().enumerate() {
        for b in &state.servers[i + 1..] {
            let common = log_length(a).min(log_length(b));
            let Some(first_difference) =
                (1..=common).find(|&index| entry_at(a, index) != entry_at(b, index))
            else {
                continue;
            };
            let same_term_later = (first_difference..=common).find(|&index| {
                let (x, y) = (entry_at(a, index), entry_at(b, index));
                x.is_some() && x.map(|e| e.term) == y.map(|e| e.term)
            });
            if let Some(index) = same_term_later {
                let term = entry_at(a, index).map_or(0, |e| e.term);
                return Some(format!(
                    "{} and {} both hold an entry of term {term} at index {index}, but their logs differ at index {first_difference}",
                    server_name(a.id()),
                    server_name(b.id())
                ));
            }
        }
    }
    None
}

fn leader_completeness(state: &RaftState) -> Option<String> {
    state
        .committed
        .iter()
        .find_map(|&(index, term, commit_term)| {
            state
                .servers
                .iter()
                .filter(|l| l.role() == Role::Leader && l.current_term() > commit_term)
                .find(|l| {
                    index > l.log().snapshot_index && l.log().term_at(index) != Some(term)
                })
                .map(|l| {
                    format!(
                        "the entry of term {term} at index {index}, committed in term {commit_term}, is missing from {}, leader of term {}",
                        server_name(l.id()),
                        l.current_term()
                    )
                })
        })
}

fn state_machine_safety(state: &RaftState) -> Option<String> {
    for (i, a) in state.servers.iter().enumerate() {
        for b in &state.servers[i + 1..] {
            let both = a.commit_index().min(b.commit_index());
            if let Some(index) = (1..=both).find(|&index| {
                entry_at(a, index) != entry_at(b, index) || entry_at(a, index).is_none()
            }) {
                let term =
                    |s| entry_at(s, index).map_or("none".to_string(), |e| e.term.to_string());
                return Some(format!(
                    "{} and {} both applied index {index}, with entries of term {} and {}",
                    server_name(a.id()),
                    server_name(b.id()),
                    term(a),
                    term(b)
                ));
            }
        }
    }
    None
}

fn read_index_safety(state: &RaftState) -> Option<String> {
    state.reads_ready.iter().find_map(|&(id, index)| {
        let bound = usize::try_from(id)
            .ok()
            .and_then(|id| id.checked_sub(1))
            .and_then(|k| state.read_bound.get(k).copied());
        match bound {
            Some(bound) if index >= bound => None,
            Some(bound) => Some(format!(
                "read {id} answered at index {index}, below index {bound}, committed before the read arrived"
            )),
            None => Some(format!("read {id} answered but never registered")),
        }
    })
}
