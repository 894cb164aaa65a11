//! A fault-injecting TCP proxy for each directed peer link.
//!
//! Node `a` reaches node `b` through its own proxy `a→b` (every node is
//! configured with proxy addresses for its peers), so the harness can cut
//! any direction of any link without root privileges or network namespaces.
//! A peer connection carries `a`'s requests to `b` and `b`'s responses back,
//! so "bytes from `a` to `b`" flow on proxy `a→b` (requests) and on proxy
//! `b→a` (responses). [`Network`] tracks which byte directions are cut, and
//! every proxy consults it for every chunk it forwards:
//!
//! - a cut direction reads and discards: packets vanish, the sender's RPCs
//!   time out, exactly as on a lossy network (not a polite connection reset);
//! - one cut direction with the other open is asymmetric loss;
//! - once a connection has lost bytes its HTTP/2 stream is garbage, so when
//!   the cut heals the connection is closed and the node reconnects.
//!
//! Everything listens on 127.0.0.1. Each proxy owns a task per connection,
//! all aborted when the proxy is dropped.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use raft_model::NodeId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Which byte directions between nodes are cut.
#[derive(Clone, Default)]
pub struct Network {
    cut: Arc<Mutex<BTreeSet<(NodeId, NodeId)>>>,
    /// Bumped on every change so idle connections notice a heal.
    changes: Arc<watch::Sender<u64>>,
    /// Connections to per-target proxies whose sender was found, and those
    /// whose sender was not (the harness's own, or a lookup that failed:
    /// no cut applies to them).
    senders: Arc<Mutex<(u64, u64)>>,
}

impl Network {
    pub fn new() -> Network {
        Network {
            cut: Arc::default(),
            changes: Arc::new(watch::channel(0).0),
            senders: Arc::default(),
        }
    }

    /// Connections to per-target proxies: (sender found, sender unknown).
    pub fn senders(&self) -> (u64, u64) {
        *self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn count_sender(&self, found: bool) {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        if found {
            senders.0 += 1;
        } else {
            senders.1 += 1;
        }
    }

    /// Bytes sent by `from` no longer reach `to`.
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.lock().insert((from, to));
        self.changes.send_modify(|n| *n += 1);
    }

    /// Bytes sent by `from` reach `to` again (other cuts stay).
    pub fn restore(&self, from: NodeId, to: NodeId) {
        self.lock().remove(&(from, to));
        self.changes.send_modify(|n| *n += 1);
    }

    /// Every link works again.
    pub fn heal(&self) {
        self.lock().clear();
        self.changes.send_modify(|n| *n += 1);
    }

    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.lock().contains(&(from, to))
    }

    /// The cut directions, for reports.
    pub fn cuts(&self) -> Vec<(NodeId, NodeId)> {
        self.lock().iter().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeSet<(NodeId, NodeId)>> {
        // A poisoned lock only means a proxy task panicked mid-update of a
        // plain set; the set itself is still meaningful.
        self.cut.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Who is sending on a connection a proxy accepted: one fixed node (a proxy
/// per directed link), or found from the connection's peer address (a proxy
/// per target node, shared by every sender: [`Resolver`]).
#[derive(Clone)]
pub enum Source {
    Fixed(NodeId),
    Resolve(Resolver),
}

/// Maps a connection's peer address (the sender's local address) to the
/// node that owns that socket, if any.
pub type Resolver = Arc<dyn Fn(SocketAddr) -> Option<NodeId> + Send + Sync>;

/// The proxy that `from` uses to reach `to`.
pub struct LinkProxy {
    pub address: SocketAddr,
    accept: JoinHandle<()>,
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl LinkProxy {
    /// Listens on an ephemeral loopback port and forwards to `target`.
    pub async fn start(
        network: Network,
        from: NodeId,
        to: NodeId,
        target: SocketAddr,
    ) -> std::io::Result<LinkProxy> {
        Self::start_on(
            std::net::Ipv4Addr::LOCALHOST,
            network,
            Source::Fixed(from),
            to,
            target,
        )
        .await
    }

    /// [`LinkProxy::start`], listening on `ip` (the bridge's address when
    /// the nodes live in network namespaces).
    pub async fn start_on(
        ip: std::net::Ipv4Addr,
        network: Network,
        source: Source,
        to: NodeId,
        target: SocketAddr,
    ) -> std::io::Result<LinkProxy> {
        let listener = TcpListener::bind((ip, 0)).await?;
        let address = listener.local_addr()?;
        let accept = tokio::spawn(async move {
            // Connection tasks are aborted with this one.
            let mut connections = Tasks(Vec::new());
            loop {
                let Ok((inbound, peer)) = listener.accept().await else {
                    continue;
                };
                let network = network.clone();
                let source = source.clone();
                let task = tokio::spawn(async move {
                    // A sender nobody can name (not a node: the harness
                    // itself) is 0, which no cut names.
                    let from = match source {
                        Source::Fixed(from) => from,
                        Source::Resolve(resolve) => {
                            let from = tokio::task::spawn_blocking(move || resolve(peer))
                                .await
                                .ok()
                                .flatten();
                            network.count_sender(from.is_some());
                            from.unwrap_or(0)
                        }
                    };
                    // The target may be down (killed); then the connection
                    // just closes, like a refused connect.
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        relay(network, from, to, inbound, outbound).await;
                    }
                });
                connections.0.retain(|t| !t.is_finished());
                connections.0.push(task);
            }
        });
        Ok(LinkProxy { address, accept })
    }
}

/// Which of the processes `pids` (node id to process id) owns the TCP socket
/// whose local address is `peer`: read from `/proc/<pid>/net/tcp` (the
/// socket's inode; that file lists the whole network namespace) and
/// `/proc/<pid>/fd` (whether that process holds it). Linux only; None when
/// nobody listed owns it.
pub fn socket_owner(pids: &[(NodeId, u32)], peer: SocketAddr) -> Option<NodeId> {
    let SocketAddr::V4(peer) = peer else {
        return None;
    };
    let local = format!(
        "{:08X}:{:04X}",
        u32::from_le_bytes(peer.ip().octets()),
        peer.port()
    );
    let mut inodes: BTreeMap<String, String> = BTreeMap::new();
    for (id, pid) in pids {
        let inode = match inodes.get(&local) {
            Some(inode) => inode.clone(),
            None => {
                let Ok(table) = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")) else {
                    continue;
                };
                let Some(inode) = table.lines().skip(1).find_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    (fields.get(1) == Some(&local.as_str()))
                        .then(|| fields.get(9).map(|s| (*s).to_owned()))
                        .flatten()
                }) else {
                    continue;
                };
                inodes.insert(local.clone(), inode.clone());
                inode
            }
        };
        let wanted = format!("socket:[{inode}]");
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == wanted.as_str()) {
                return Some(*id);
            }
        }
    }
    None
}

struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in self.0.iter() {
            task.abort();
        }
    }
}

/// Pumps both directions until either side closes, or until a direction
/// that lost bytes is healed (the stream is then corrupt: close it).
async fn relay(
    network: Network,
    from: NodeId,
    to: NodeId,
    inbound: TcpStream,
    outbound: TcpStream,
) {
    let (in_read, in_write) = inbound.into_split();
    let (out_read, out_write) = outbound.into_split();
    let lost = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let forward = pump(network.clone(), from, to, in_read, out_write, lost.clone());
    let backward = pump(network, to, from, out_read, in_write, lost);
    // Either direction ending ends the connection (both halves drop).
    tokio::select! {
        () = forward => {}
        () = backward => {}
    }
}

async fn pump(
    network: Network,
    sender: NodeId,
    receiver: NodeId,
    mut read: tokio::net::tcp::OwnedReadHalf,
    mut write: tokio::net::tcp::OwnedWriteHalf,
    lost: Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    let mut changes = network.changes.subscribe();
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        tokio::select! {
            read = read.read(&mut buffer) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                if network.is_cut(sender, receiver) {
                    lost.store(true, Ordering::Relaxed);
                    continue;
                }
                if lost.load(Ordering::Relaxed) {
                    return;
                }
                if write.write_all(&buffer[..n]).await.is_err() {
                    return;
                }
            }
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
                let healed = !network.is_cut(sender, receiver) && !network.is_cut(receiver, sender);
                if healed && lost.load(Ordering::Relaxed) {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A server on loopback that echoes what each connection sends.
    async fn echo_server() -> SocketAddr {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 || socket.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        address
    }

    #[tokio::test]
    async fn forwards_drops_and_closes_after_a_heal() {
        let target = echo_server().await;
        let network = Network::new();
        let proxy = LinkProxy::start(network.clone(), 1, 2, target)
            .await
            .unwrap();
        let mut client = TcpStream::connect(proxy.address).await.unwrap();
        let mut buf = [0u8; 5];
        client.write_all(b"hello").await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");

        network.cut(1, 2);
        client.write_all(b"lost!").await.unwrap();
        let silent = tokio::time::timeout(Duration::from_millis(200), client.read(&mut buf)).await;
        assert!(silent.is_err(), "a cut link delivers nothing");

        network.heal();
        // The connection lost bytes: it is closed rather than resumed.
        let closed = tokio::time::timeout(Duration::from_secs(2), client.read(&mut buf))
            .await
            .expect("closed promptly");
        assert!(matches!(closed, Ok(0) | Err(_)));
        let mut fresh = TcpStream::connect(proxy.address).await.unwrap();
        fresh.write_all(b"again").await.unwrap();
        fresh.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"again");
    }

    /// A proxy in front of a node (shared by every sender) cuts by the
    /// sender its resolver names, and counts whom it found.
    #[tokio::test]
    async fn a_shared_proxy_cuts_by_the_sender_it_finds() {
        let target = echo_server().await;
        let network = Network::new();
        let me = std::process::id();
        let resolver: Resolver = Arc::new(move |peer| socket_owner(&[(3, me)], peer));
        let proxy = LinkProxy::start_on(
            std::net::Ipv4Addr::LOCALHOST,
            network.clone(),
            Source::Resolve(resolver),
            2,
            target,
        )
        .await
        .unwrap();
        network.cut(1, 2);
        let mut buf = [0u8; 5];
        let mut client = TcpStream::connect(proxy.address).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello", "a cut of another sender does not apply");
        network.cut(3, 2);
        let mut cut = TcpStream::connect(proxy.address).await.unwrap();
        cut.write_all(b"lost!").await.unwrap();
        let silent = tokio::time::timeout(Duration::from_millis(200), cut.read(&mut buf)).await;
        assert!(silent.is_err(), "this sender (node 3) is cut from node 2");
        assert_eq!(network.senders(), (2, 0));
    }

    /// A connection's sender is found from its peer address: this process
    /// owns the client socket, nobody else does.
    #[tokio::test]
    async fn the_owner_of_a_socket_is_found_by_its_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (_server, peer) = listener.accept().await.unwrap();
        assert_eq!(client.local_addr().unwrap(), peer);
        let me = std::process::id();
        assert_eq!(socket_owner(&[(7, me)], peer), Some(7));
        assert_eq!(socket_owner(&[(7, 1)], peer), None);
    }
}
