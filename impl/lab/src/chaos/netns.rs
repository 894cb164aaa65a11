//! Real partitions: each node in its own network namespace, with its own
//! address, as on separate hosts, joined to the harness by a veth link to a
//! bridge. Cutting a node's link (`ip link set ... down`) cuts it off from
//! every peer and client at the kernel's level: no proxy sees the
//! difference, connections time out as across a failed switch port.
//!
//! ```text
//!   netns rl<tag>n<id>: eth0 10.X.Y.<id>/24 ── veth rl<tag>h<id> ── bridge rl<tag>br 10.X.Y.254/24 (the harness)
//! ```
//!
//! The nodes still reach their peers through the harness's proxies (which
//! listen on the bridge's address), so the proxy faults work beside these.
//! Needs root and `ip` (iproute2); [`available`] says why not otherwise.
//! Every namespace, link and bridge is deleted when [`NetNs`] is dropped.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;
use std::sync::Arc;

use anyhow::Context;
use raft_model::NodeId;

/// Whether namespaces can be made here: `Err` says why not.
pub fn available() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("network namespaces need root".into());
    }
    match Command::new("ip").arg("-V").output() {
        Ok(out) if out.status.success() => Ok(()),
        _ => Err("no `ip` command (iproute2)".into()),
    }
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run ip")?;
    anyhow::ensure!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// The namespaces of one run.
pub struct NetNs {
    tag: String,
    subnet: [u8; 3],
    ids: Vec<NodeId>,
}

impl NetNs {
    /// Makes a namespace per node and the bridge joining them to the
    /// harness; `tag` (a few characters) names them uniquely per run.
    pub fn setup(tag: u32, ids: &[NodeId]) -> anyhow::Result<NetNs> {
        available().map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            ids.iter().all(|id| (1..=250).contains(id)),
            "node ids 1 to 250"
        );
        let tag_text = format!("{:04}", tag % 10_000);
        let net = NetNs {
            subnet: [10, 200 + (tag % 50) as u8, ((tag / 50) % 250) as u8],
            tag: tag_text,
            ids: ids.to_vec(),
        };
        net.create()?;
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("rl{}br", self.tag)
    }

    pub fn namespace(&self, id: NodeId) -> String {
        format!("rl{}n{id}", self.tag)
    }

    fn host_link(&self, id: NodeId) -> String {
        format!("rl{}h{id}", self.tag)
    }

    fn address(&self, last: u8) -> Ipv4Addr {
        Ipv4Addr::new(self.subnet[0], self.subnet[1], self.subnet[2], last)
    }

    /// The harness's address on the bridge (where the proxies listen).
    pub fn harness_address(&self) -> Ipv4Addr {
        self.address(254)
    }

    /// Node `id`'s address.
    pub fn node_address(&self, id: NodeId) -> Ipv4Addr {
        self.address(id as u8)
    }

    fn create(&self) -> anyhow::Result<()> {
        let bridge = self.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/24", self.harness_address()),
            "dev",
            &bridge,
        ])?;
        ip(&["link", "set", &bridge, "up"])?;
        for &id in &self.ids {
            let ns = self.namespace(id);
            let host = self.host_link(id);
            let inner = format!("rl{}i{id}", self.tag);
            ip(&["netns", "add", &ns])?;
            ip(&["link", "add", &host, "type", "veth", "peer", "name", &inner])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &host, "master", &bridge])?;
            ip(&["link", "set", &host, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", self.node_address(id)),
                "dev",
                &inner,
            ])?;
            ip(&["-n", &ns, "link", "set", &inner, "up"])?;
        }
        Ok(())
    }

    /// A listening socket bound to node `id`'s address inside its
    /// namespace (a socket keeps the namespace it was made in, whichever
    /// process then holds it).
    pub fn listener(&self, id: NodeId) -> anyhow::Result<Arc<TcpListener>> {
        let ns = self.namespace(id);
        let address = SocketAddr::from((self.node_address(id), 0));
        std::thread::spawn(move || -> anyhow::Result<TcpListener> {
            enter(&ns)?;
            Ok(TcpListener::bind(address)?)
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the thread binding in the namespace panicked"))?
        .map(Arc::new)
    }

    /// Every node's listener.
    pub fn listeners(&self) -> anyhow::Result<BTreeMap<NodeId, Arc<TcpListener>>> {
        self.ids
            .iter()
            .map(|id| Ok((*id, self.listener(*id)?)))
            .collect()
    }

    /// Takes node `id`'s link down: it reaches no one, no one reaches it.
    pub fn cut(&self, id: NodeId) {
        let _ = ip(&["link", "set", &self.host_link(id), "down"]);
    }

    /// Brings every link up again.
    pub fn heal(&self) {
        for &id in &self.ids {
            let _ = ip(&["link", "set", &self.host_link(id), "up"]);
        }
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        for &id in &self.ids {
            let _ = ip(&["link", "del", &self.host_link(id)]);
            let _ = ip(&["netns", "del", &self.namespace(id)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}

/// Moves the calling thread into network namespace `name` (made by
/// `ip netns add`). In a process's main thread before any other thread
/// starts, the whole process then lives there.
pub fn enter(name: &str) -> anyhow::Result<()> {
    let path = format!("/var/run/netns/{name}");
    let file = std::fs::File::open(&path).with_context(|| format!("no namespace {path}"))?;
    use std::os::fd::AsRawFd;
    // SAFETY: a valid namespace file descriptor; setns changes only this
    // thread's network namespace.
    let done = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    anyhow::ensure!(
        done == 0,
        "setns into {path}: {}",
        std::io::Error::last_os_error()
    );
    Ok(())
}
