#!/usr/bin/env bash
# Benchmark this node against etcd on this machine, in one command:
#
#   impl/lab/compare-etcd.sh [raft-lab compare flags...]
#   e.g. impl/lab/compare-etcd.sh --duration 3s --rounds 2
#
# Installs Debian's etcd-server (etcd 3.4) if no `etcd` is on the PATH, builds
# the lab (the node library plus its harnesses) in release mode, and runs
# `raft-lab compare`: a 3-node cluster of each system on 127.0.0.1, data under
# one temporary directory, the same closed-loop gRPC load for both. Prints the
# table and writes compare-etcd.json (in the current directory unless --json
# PATH is given).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

if ! command -v etcd >/dev/null 2>&1; then
    echo "etcd not found: installing Debian's etcd-server" >&2
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    # The package's service is not started here (no systemd in most
    # containers); the bench starts its own etcd processes.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq etcd-server >/dev/null
fi
etcd --version | sed -n 1p >&2

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"
cargo build --release -p raft-lab --manifest-path "$repo/Cargo.toml"
exec "$CARGO_TARGET_DIR/release/raft-lab" compare "$@"
