//! Generates the gRPC code from `proto/`. `protoc` comes from the
//! protoc-bin-vendored crate, never from the system, so a fresh machine builds.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        // Server reflection (grpcurl) serves this descriptor set.
        .file_descriptor_set_path(out_dir.join("raft_descriptor.bin"))
        .compile_with_config(
            config,
            &[
                "proto/raft_peer.proto",
                "proto/kv.proto",
                "proto/admin.proto",
                "proto/etcd/rpc.proto",
            ],
            &["proto"],
        )?;
    // The disk format (storage's log records and snapshot images): messages
    // only, and outside the descriptor set, for it is no wire protocol.
    let mut disk_config = tonic_prost_build::Config::new();
    disk_config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(false)
        .compile_with_config(disk_config, &["proto/raft_disk.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
