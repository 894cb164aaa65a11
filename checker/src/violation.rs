//! A violated property, named concretely: which servers, which term, which
//! index. `properties.rs` finds where a property fails (the same search
//! decides whether it holds); this renders it for the last state of a
//! counterexample.

use crate::describe::server_name;
use crate::model;
use crate::properties;
use crate::state::{RaftState, entry_at};

/// What breaks `property` in `state`, or `None` if it holds there (or is not
/// a safety property).
pub fn explain(property: &str, state: &RaftState) -> Option<String> {
    match property {
        model::ELECTION_SAFETY => {
            properties::two_leaders_of_one_term(state).map(|(term, a, b)| {
                format!(
                    "two leaders of term {term}: {} and {}",
                    server_name(a),
                    server_name(b)
                )
            })
        }
        model::PRE_VOTE_RAISES_NO_TERM => (!properties::pre_vote_raises_no_term(state)).then(|| {
            "a server's term rose by a pre-vote: neither its own campaign nor a real message \
             of that term raised it"
                .to_string()
        }),
        model::CANDIDATE_KNOWS_NO_LEADER => properties::candidate_with_a_leader(state).map(|s| {
            format!(
                "{} is a {} of term {} and still knows leader {}: it would refuse other \
                 pre-candidates for a leader it no longer hears (etcd#9586)",
                server_name(s.id()),
                crate::describe::role(s.role()),
                s.current_term(),
                crate::describe::optional_server(s.leader_id())
            )
        }),
        model::PRE_VOTE_RESPECTS_LEASE => (!properties::pre_vote_respects_lease(state)).then(|| {
            "PreVote's lease was broken: a pre-vote granted by a server that heard from a leader \
             (or restarted) since its election timer last fired, a restart without a lease, or \
             an election timeout that kept one"
                .to_string()
        }),
        model::TIMEOUT_NOW_CAMPAIGNS => (!properties::timeout_now_campaigns(state)).then(|| {
            "a voting member received a TimeoutNow of its term and did not campaign in that \
             step: a leadership transfer left to a pre-election the followers refuse"
                .to_string()
        }),
        model::TRANSFER_FREEZES_LOG => (!properties::transfer_freezes_log(state)).then(|| {
            "a leader appended to its log while handing leadership over: the target may \
             never catch up with its last entry"
                .to_string()
        }),
        model::SINGLE_UNCOMMITTED_CHANGE => {
            (!properties::single_uncommitted_change(state)).then(|| {
                "two configuration changes are uncommitted at once in logs that may still \
                 commit them"
                    .to_string()
            })
        }
        model::QUORUMS_INTERSECT => properties::disjoint_quorums(state).map(|(a, b)| {
            format!(
                "configurations {} and {} could both decide the next index, and have disjoint \
                 quorums",
                crate::describe::config(&a),
                crate::describe::config(&b)
            )
        }),
        model::REMOVED_LEADER_STEPS_DOWN => {
            (!properties::removed_leader_steps_down(state)).then(|| {
                "a leader outside its configuration leads on after that configuration committed"
                    .to_string()
            })
        }
        model::TRANSFER_NOT_DURING_CHANGE => {
            (!properties::transfer_not_during_change(state)).then(|| {
                "a leader is handing leadership over while a configuration change is pending"
                    .to_string()
            })
        }
        model::LEADER_APPEND_ONLY => (!properties::leader_append_only(state)).then(|| {
            "a leader's log lost or changed an entry within its own term".to_string()
        }),
        model::LOG_MATCHING => properties::logs_that_do_not_match(state).map(|m| {
            format!(
                "{} and {} both hold an entry of term {} at index {}, but their logs differ at index {}",
                server_name(m.a),
                server_name(m.b),
                m.term,
                m.index,
                m.first_difference
            )
        }),
        model::LOG_TERMS_MONOTONIC => {
            properties::log_term_that_decreases(state).map(|(server, index, before, term)| {
                format!(
                    "{}'s log holds an entry of term {term} at index {index} after one of term {before}",
                    server_name(server)
                )
            })
        }
        model::LEADER_COMPLETENESS => properties::committed_entry_missing_from_a_leader(state)
            .map(|((index, term, commit_term), leader)| {
                format!(
                    "the entry of term {term} at index {index}, committed in term {commit_term}, is missing from {}, leader of term {}",
                    server_name(leader.id()),
                    leader.current_term()
                )
            }),
        model::STATE_MACHINE_SAFETY => {
            properties::applied_entries_that_differ(state).map(|(a, b, index)| {
                let term = |s| entry_at(s, index).map_or("none".to_string(), |e| e.term.to_string());
                format!(
                    "{} and {} both applied index {index}, with entries of term {} and {}",
                    server_name(a.id()),
                    server_name(b.id()),
                    term(a),
                    term(b)
                )
            })
        }
        model::READ_INDEX_SAFETY => {
            properties::read_answered_too_early(state).map(|(id, index, bound)| match bound {
                Some(bound) => format!(
                    "read {id} answered at index {index}, below index {bound}, committed before the read arrived"
                ),
                None => format!("read {id} answered but never registered"),
            })
        }
        _ => None,
    }
}
