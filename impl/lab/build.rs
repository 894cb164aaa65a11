//! Generates the etcd client for `raft-lab compare` from `proto/etcd_kv.proto`
//! (client side only; the node never compiles, serves or advertises it).
//! `protoc` comes from the protoc-bin-vendored crate, never from the system.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .build_server(false)
        .compile_with_config(config, &["proto/etcd_kv.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
