//! The deployment recipe (impl/deploy): the Kubernetes manifests validate
//! against the Kubernetes API schemas, and the container's entrypoint turns
//! a StatefulSet pod's name into a config the node accepts.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Runs the entrypoint with `--print-config` as pod `pod` would.
fn entrypoint(pod: &str, config: &Path) -> Output {
    Command::new("sh")
        .arg(deploy_dir().join("k8s/entrypoint.sh"))
        .arg("--print-config")
        .env("POD_NAME", pod)
        .env("RAFT_CLUSTER_ID", "k8s-kv")
        .env("RAFT_REPLICAS", "3")
        .env("RAFT_SERVICE", "raft-node-peers")
        .env("RAFT_NAMESPACE", "prod")
        .env("RAFT_ELECTION_TIMEOUT_MS", "300, 600")
        .env("RAFT_CONFIG", config)
        .output()
        .expect("sh runs")
}

#[test]
fn the_entrypoint_derives_the_node_id_and_members_from_the_pod_name() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("raft-node.toml");
    let output = entrypoint("raft-node-1", &file);
    assert!(output.status.success(), "{output:?}");
    let parsed = raft_node::config::FileConfig::load(&file).expect("the node parses it");
    let config = raft_node::config::NodeConfig::from_file_config(parsed)
        .expect("the node accepts it, though no peer name resolves here");
    assert_eq!(config.id, 2, "ordinal 1 is node 2");
    assert_eq!(config.cluster_id, "k8s-kv");
    assert_eq!(config.election_timeout.0.as_millis(), 300);
    let members: Vec<(u64, String)> = config
        .members
        .iter()
        .map(|(id, address)| (*id, address.clone()))
        .collect();
    assert_eq!(
        members,
        (0..3)
            .map(|i| (
                i + 1,
                format!("raft-node-{i}.raft-node-peers.prod.svc:7001")
            ))
            .collect::<Vec<_>>()
    );

    // A pod beyond the first configuration, or not of a StatefulSet, is
    // refused with the reason.
    for (pod, complaint) in [
        ("raft-node-3", "beyond the 3 members"),
        ("raft-node", "does not end in -<ordinal>"),
    ] {
        let output = entrypoint(pod, &file);
        let error = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{pod}: {error}");
        assert!(error.contains(complaint), "{pod}: {error}");
    }
}

/// The manifests validate strictly (unknown fields are errors) against the
/// Kubernetes schemas, and the StatefulSet's replicas match the first
/// configuration's size the entrypoint is told.
#[test]
fn the_kubernetes_manifests_validate() {
    let manifest = std::fs::read_to_string(deploy_dir().join("k8s/raft-node.yaml")).unwrap();
    assert!(
        manifest.contains("\n  replicas: 3\n"),
        "the StatefulSet runs 3"
    );
    assert!(
        manifest.contains("RAFT_REPLICAS: \"3\""),
        "the first configuration has 3"
    );
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("k8s-venv");
    let output = Command::new("sh")
        .arg(deploy_dir().join("validate.sh"))
        .arg(&venv)
        .output()
        .expect("sh runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    for kind in [
        "configmap/raft-node",
        "service/raft-node-peers",
        "statefulset/raft-node",
        "poddisruptionbudget/raft-node",
    ] {
        assert!(
            said.contains(&format!("passed for resource {kind}")),
            "{kind}: {said}"
        );
    }
    assert!(!said.contains("ERROR"), "{said}");
}
