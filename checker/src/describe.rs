//! Short, readable renderings of core values for traces and diagrams.

use raft_model::{Body, Entry, NodeId, Payload, Role};

use crate::state::{Command, Msg, RaftServer};

pub fn server_name(id: NodeId) -> String {
    format!("s{id}")
}

/// `t2:noop` or `t2:c1`: the term that created the entry and its payload.
pub fn entry(entry: &Entry<Command>) -> String {
    match &entry.payload {
        Payload::Noop => format!("t{}:noop", entry.term),
        Payload::Command(command) => format!("t{}:c{command}", entry.term),
        Payload::Config(c) => format!("t{}:{}", entry.term, config(c)),
    }
}

/// `{s1, s2, s3}`, or `{s1, s2, s3}->{s1, s2, s4}` while joint.
pub fn config(config: &raft_model::Config) -> String {
    let set = |ids: &imbl::OrdSet<NodeId>| {
        let names: Vec<String> = ids.iter().map(|id| server_name(*id)).collect();
        format!("{{{}}}", names.join(", "))
    };
    match &config.old {
        Some(old) => format!("{}->{}", set(old), set(&config.members)),
        None => set(&config.members),
    }
}

pub fn entries<'a>(entries: impl IntoIterator<Item = &'a Entry<Command>>) -> String {
    let items: Vec<String> = entries.into_iter().map(entry).collect();
    format!("[{}]", items.join(", "))
}

/// A server's log: the snapshot summary (when there is one) then held entries.
pub fn log(server: &RaftServer) -> String {
    let held = entries(server.log().entries.iter());
    if server.log().snapshot_index == 0 {
        held
    } else {
        format!(
            "snapshot(1..{} @t{}) + {held}",
            server.log().snapshot_index,
            server.log().snapshot_term
        )
    }
}

pub fn role(role: Role) -> &'static str {
    match role {
        Role::Follower => "Follower",
        Role::Candidate => "Candidate",
        Role::Leader => "Leader",
        Role::PreCandidate => "PreCandidate",
    }
}

pub fn optional_server(id: Option<NodeId>) -> String {
    id.map_or_else(|| "None".to_string(), server_name)
}

/// `s1->s2 AppendEntriesRequest t2 prev=1/t1 entries=[t2:noop] commit=1`.
pub fn message(message: &Msg) -> String {
    format!(
        "{}->{} {} t{} {}",
        server_name(message.from),
        server_name(message.to),
        message.body.kind(),
        message.term,
        body(&message.body)
    )
}

/// The fields of a message body, without its kind.
pub fn body(body: &raft_model::Body<Command, crate::state::Image>) -> String {
    match body {
        Body::RequestVoteRequest {
            last_log_index,
            last_log_term,
            pre_vote,
        } => {
            let pre = if *pre_vote { "pre-vote " } else { "" };
            format!("{pre}last={last_log_index}/t{last_log_term}")
        }
        Body::RequestVoteResponse {
            vote_granted,
            pre_vote,
        } => {
            let pre = if *pre_vote { "pre-vote " } else { "" };
            let verdict = if *vote_granted { "granted" } else { "refused" };
            format!("{pre}{verdict}")
        }
        Body::AppendEntriesRequest {
            prev_log_index,
            prev_log_term,
            entries: sent,
            leader_commit,
            ..
        } => format!(
            "prev={prev_log_index}/t{prev_log_term} entries={} commit={leader_commit}",
            entries(sent.iter())
        ),
        Body::AppendEntriesResponse {
            success: true,
            match_index,
            ..
        } => format!("ok match={match_index}"),
        Body::AppendEntriesResponse {
            success: false,
            match_index,
            conflict_term: 0,
            ..
        } => format!("fail last={match_index}"),
        Body::AppendEntriesResponse {
            success: false,
            match_index,
            conflict_term,
            conflict_index,
            ..
        } => format!("fail last={match_index} conflict=t{conflict_term} from {conflict_index}"),
        Body::InstallSnapshotRequest { snapshot } => format!(
            "snapshot=1..{}@t{} image={}",
            snapshot.meta.last_index,
            snapshot.meta.last_term,
            entries(snapshot.data.iter())
        ),
        Body::InstallSnapshotResponse { match_index } => format!("match={match_index}"),
        Body::TimeoutNow {} => String::new(),
    }
}

/// A whole state, one line per server, message and history: what the
/// Explorer shows for each step.
pub fn state(state: &crate::state::RaftState) -> String {
    let mut lines = Vec::new();
    for s in &state.servers {
        let mut line = format!(
            "{}: {} t{} votedFor {} log {} commit {}",
            server_name(s.id()),
            role(s.role()),
            s.current_term(),
            optional_server(s.voted_for()),
            log(s),
            s.commit_index()
        );
        if s.snapshot().meta.last_index > 0 {
            line += &format!(" image {}", entries(s.snapshot().data.iter()));
        }
        if let Some(leader) = s.leader_id() {
            line += &format!(" leader {}", server_name(leader));
        }
        if !s.votes_granted().is_empty() {
            let votes: Vec<String> = s
                .votes_granted()
                .iter()
                .map(|id| server_name(*id))
                .collect();
            line += &format!(" votes {{{}}}", votes.join(", "));
        }
        if !s.match_index().is_empty() {
            let peers: Vec<String> = s
                .next_index()
                .iter()
                .map(|(id, next)| {
                    let matched = s.match_index().get(id).copied().unwrap_or(0);
                    format!("{} next {next} match {matched}", server_name(*id))
                })
                .collect();
            line += &format!(" [{}]", peers.join("; "));
        }
        lines.push(line);
    }
    lines.push(format!("network ({} in flight):", state.network.copies()));
    for (m, copies) in state.network.iter() {
        let times = if copies > 1 {
            format!(" (x{copies})")
        } else {
            String::new()
        };
        lines.push(format!("  {}{times}", message(m)));
    }
    let elected: Vec<String> = state
        .elected
        .iter()
        .map(|(term, id)| format!("(t{term}, {})", server_name(*id)))
        .collect();
    lines.push(format!("elected: {}", elected.join(" ")));
    let committed: Vec<String> = state
        .committed
        .iter()
        .map(|(index, term, by)| format!("({index}, t{term}, by t{by})"))
        .collect();
    lines.push(format!("committed: {}", committed.join(" ")));
    if state.reads > 0 {
        let bounds: Vec<String> = state
            .read_bound
            .iter()
            .enumerate()
            .map(|(k, bound)| format!("(read {}, {bound})", k + 1))
            .collect();
        lines.push(format!("readBound: {}", bounds.join(" ")));
        let ready: Vec<String> = state
            .reads_ready
            .iter()
            .map(|(id, index)| format!("(read {id}, index {index})"))
            .collect();
        lines.push(format!("readsReady: {}", ready.join(" ")));
    }
    lines.push(format!(
        "clientRequests {} restarts {} compactions {} reads {} duplicates {} drops {} transfers {} configChanges {} learnerChanges {}",
        state.client_requests,
        state.restarts,
        state.compactions,
        state.reads,
        state.duplicates,
        state.drops,
        state.transfers,
        state.config_changes,
        state.learner_changes
    ));
    // The checker's own guards, counted only when bounded.
    for (label, used) in [
        ("timeouts", state.timeouts),
        ("heartbeats", state.heartbeats),
    ] {
        if let Some(used) = used {
            lines.push(format!("{label} {used}"));
        }
    }
    lines.join("\n")
}
