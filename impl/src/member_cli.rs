//! `raft-node client member list|add|remove|change`: the operator's side of
//! the admin service's membership RPCs (issue 15).
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

fn members_line(members: &[pb::Member]) -> String {
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

fn changed(what: &str, response: &pb::ChangeMembersResponse, started: std::time::Instant) {
    println!(
        "OK: {what}; the voters are now {} (configuration index {}, term {}, {} ms)",
        members_line(&response.members),
        response.config_index,
        response.term,
        started.elapsed().as_millis()
    );
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
        MemberOp::Change { members, addresses } => {
            let response = client.change_members(members, addresses).await?;
            changed("configuration changed", &response, started);
        }
    }
    Ok(())
}
