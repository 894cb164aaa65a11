//! `raft-node client member list|add|remove|change|add-learner|promote|
//! remove-learner|replace`: the operator's side of the admin service's
//! membership RPCs (issue 15).
//!
//! Adding a server, step by step (impl/README.md, "Membership changes"):
//! on the new machine, `raft-node init --join --config new.toml` (its config
//! names this node and its address), `raft-node run --config new.toml`; then,
//! from anywhere, `raft-node client member add --id N --address HOST:PORT`.

use clap::Subcommand;

use crate::client::KvClient;
use crate::proto::admin as pb;

#[derive(Subcommand, Clone, Debug)]
pub enum MemberOp {
    /// The voters as the first answering endpoint sees them, with their
    /// addresses, the leader, and whether a change is under way (joint).
    List,
    /// Add a voter. Its server must be running, its data directory
    /// initialised with `raft-node init --join`. Answers once the change has
    /// committed (the new member caught up and counted).
    Add {
        /// The new member's id (not in use in this cluster, ever: an id
        /// removed once must not come back with an empty data directory).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        id: u64,
        /// Where the other servers and clients reach it, HOST:PORT.
        #[arg(long, value_parser = parse_address)]
        address: String,
    },
    /// Remove a voter (the leader too: it steps down once the change has
    /// committed). Answers once the change has committed.
    Remove {
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        id: u64,
    },
    /// Add a learner: a non-voting member that receives the log and
    /// snapshots and counts in no quorum, so it can catch up without
    /// stalling the cluster. Its server is prepared as for `add`. Promote
    /// it once caught up.
    AddLearner {
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        id: u64,
        /// Where the other servers and clients reach it, HOST:PORT.
        #[arg(long, value_parser = parse_address)]
        address: String,
    },
    /// Make a learner a voter, once it is within `--max-lag` entries of the
    /// leader (the leader waits up to 60 s for it to catch up).
    Promote {
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        id: u64,
        /// Entries the learner may lag behind the leader (default 256).
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        max_lag: u64,
    },
    /// Remove a learner.
    RemoveLearner {
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        id: u64,
    },
    /// Replace voter `--old` by a new server in three steps: add the new
    /// server as a learner, wait until it has caught up, then swap it in for
    /// the old one in one joint change (the cluster never counts a voter
    /// that is still catching up). Then stop the old server.
    Replace {
        /// The voter to remove.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        old: u64,
        /// The new server's id (never used in this cluster before).
        #[arg(long = "new", value_parser = clap::value_parser!(u64).range(1..))]
        new_id: u64,
        /// The new server's HOST:PORT.
        #[arg(long, value_parser = parse_address)]
        address: String,
        /// Entries the new server may lag behind the leader when swapped in
        /// (default 256).
        #[arg(long, default_value_t = 0, hide_default_value = true)]
        max_lag: u64,
    },
    /// Change to exactly these voters in one joint step, e.g. `--members
    /// 1,2,4 --address 4=10.0.0.4:7001`.
    Change {
        /// Every voter of the new configuration, comma-separated ids.
        #[arg(long, value_delimiter = ',', required = true,
              value_parser = clap::value_parser!(u64).range(1..))]
        members: Vec<u64>,
        /// A new member's address, ID=HOST:PORT; repeat for each.
        #[arg(long = "address", value_name = "ID=HOST:PORT", value_parser = parse_member)]
        addresses: Vec<(u64, String)>,
    },
}

fn parse_address(text: &str) -> Result<String, String> {
    crate::members::check_address(text)?;
    Ok(text.to_owned())
}

fn parse_member(text: &str) -> Result<(u64, String), String> {
    let (id, address) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not ID=HOST:PORT"))?;
    let id: u64 = id
        .trim()
        .parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| format!("{text:?}: the id must be a number from 1"))?;
    Ok((id, parse_address(address.trim())?))
}

pub(crate) fn members_line(members: &[pb::Member]) -> String {
    members
        .iter()
        .map(|m| {
            let address = if m.address.is_empty() {
                "(address unknown)"
            } else {
                &m.address
            };
            format!("{}={address}", m.id)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Each voter's recorded incarnation (crate::incarnation), its first 8
/// hex digits: enough to tell two servers under one id apart.
fn incarnations_line(members: &[pb::Member]) -> String {
    members
        .iter()
        .map(|m| match m.incarnation.get(..8) {
            Some(short) => format!("{}={short}", m.id),
            None if m.incarnation.is_empty() => format!("{}=(not recorded yet)", m.id),
            None => format!("{}={}", m.id, m.incarnation),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn changed(
    what: &str,
    response: &pb::ChangeMembersResponse,
    started: std::time::Instant,
) {
    let learners = if response.learners.is_empty() {
        String::new()
    } else {
        format!("; learners {}", members_line(&response.learners))
    };
    println!(
        "OK: {what}; the voters are now {}{learners} (configuration index {}, term {}, {} ms)",
        members_line(&response.members),
        response.config_index,
        response.term,
        started.elapsed().as_millis()
    );
}

pub(crate) fn learners_line(list: &pb::MemberListResponse) -> String {
    list.learners
        .iter()
        .map(|l| {
            let address = if l.address.is_empty() {
                "(address unknown)"
            } else {
                &l.address
            };
            let lag = if l.progress_known {
                format!(
                    " ({} entries behind)",
                    list.last_index.saturating_sub(l.matched)
                )
            } else {
                String::new()
            };
            format!("{}={address}{lag}", l.id)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs one membership command, printing its outcome.
pub async fn run(client: &mut KvClient, op: MemberOp) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    match op {
        MemberOp::List => {
            let list = client.member_list().await?;
            println!("answered by node {} (term {})", list.id, list.term);
            if list.leader_id == 0 {
                println!("leader: none known");
            } else {
                println!("leader: node {} at {}", list.leader_id, list.leader_address);
            }
            println!("voters: {}", members_line(&list.members));
            println!("incarnations: {}", incarnations_line(&list.members));
            if !list.learners.is_empty() {
                println!("learners: {}", learners_line(&list));
            }
            if !list.old_members.is_empty() {
                println!(
                    "changing from: {} (joint configuration: both must agree)",
                    members_line(&list.old_members)
                );
            }
            println!(
                "configuration entry: index {} ({})",
                list.config_index,
                if list.committed {
                    "committed"
                } else {
                    "not yet known committed"
                }
            );
        }
        MemberOp::Add { id, address } => {
            let response = client.add_member(id, &address).await?;
            changed(&format!("node {id} at {address} added"), &response, started);
        }
        MemberOp::Remove { id } => {
            let response = client.remove_member(id).await?;
            changed(&format!("node {id} removed"), &response, started);
        }
        MemberOp::AddLearner { id, address } => {
            let response = client.add_learner(id, &address).await?;
            changed(
                &format!("node {id} at {address} added as a learner"),
                &response,
                started,
            );
        }
        MemberOp::Promote { id, max_lag } => {
            let response = client.promote_learner(id, max_lag, 0).await?;
            changed(
                &format!("learner {id} promoted to voter"),
                &response,
                started,
            );
        }
        MemberOp::RemoveLearner { id } => {
            let response = client.remove_learner(id).await?;
            changed(&format!("learner {id} removed"), &response, started);
        }
        MemberOp::Replace {
            old,
            new_id,
            address,
            max_lag,
        } => {
            let response = client.add_learner(new_id, &address).await?;
            changed(
                &format!("step 1 of 2: node {new_id} at {address} added as a learner"),
                &response,
                started,
            );
            let response = client.promote_learner(new_id, max_lag, old).await?;
            changed(
                &format!("step 2 of 2: node {new_id} caught up and replaced node {old}"),
                &response,
                started,
            );
        }
        MemberOp::Change { members, addresses } => {
            let response = client.change_members(members, addresses).await?;
            changed("configuration changed", &response, started);
        }
    }
    Ok(())
}
