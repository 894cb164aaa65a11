//! Free loopback ports for clusters of separate processes (the chaos
//! harness, the etcd comparison, the process tests), which must put every
//! node's address in every node's configuration before any of them binds.

use std::net::TcpListener;

/// Asks the OS for `count` distinct free ports on 127.0.0.1. The listeners
/// are all held until every port is known (so no port is handed out twice),
/// then released: another program could take a port before the node binds
/// it, and the node then fails with "address in use".
pub fn free_loopback_ports(count: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}
