#!/bin/sh
# Starts one raft-node of a StatefulSet (k8s/raft-node.yaml).
#
# The pod's ordinal (raft-node-2 -> 2) gives the node id (ordinal + 1, since
# id 0 is reserved), and the StatefulSet's stable names give every member's
# address: <statefulset>-<ordinal>.<headless service>.<namespace>.svc:7001.
# The config file is written afresh at every start from these and from the
# environment the manifest sets, so it never holds anything a start must
# not repeat.
#
# Initialising the data directory is the one thing a start must not repeat
# (impl/README.md, "Initialise once, then run"): a pod whose volume was lost
# must not come back as the same member with an empty log. So a pod
# initialises only while RAFT_BOOTSTRAP is "true", which the operator sets for
# the cluster's first deployment and then turns off (impl/README.md,
# "Kubernetes"). Otherwise raft-node refuses a missing or empty data
# directory and says what to do.
#
# `entrypoint.sh --print-config` prints the config and exits (for tests).
set -eu

: "${RAFT_CLUSTER_ID:?set RAFT_CLUSTER_ID, the cluster id}"
: "${RAFT_REPLICAS:?set RAFT_REPLICAS, the StatefulSet replicas of the first configuration}"
: "${RAFT_SERVICE:?set RAFT_SERVICE, the headless service name}"
: "${RAFT_NAMESPACE:?set RAFT_NAMESPACE, the pod namespace}"
POD_NAME="${POD_NAME:-$(hostname)}"
PORT="${RAFT_PORT:-7001}"
METRICS_PORT="${RAFT_METRICS_PORT:-9001}"
DATA_DIR="${RAFT_DATA_DIR:-/var/lib/raft-node/data}"
CONFIG="${RAFT_CONFIG:-/tmp/raft-node.toml}"

ORDINAL="${POD_NAME##*-}"
SET="${POD_NAME%-*}"
case "$ORDINAL" in
    ''|*[!0-9]*)
        echo "raft-node-entrypoint: pod name $POD_NAME does not end in -<ordinal>: run me in a StatefulSet" >&2
        exit 2
        ;;
esac
if [ "$ORDINAL" -ge "$RAFT_REPLICAS" ]; then
    echo "raft-node-entrypoint: pod $POD_NAME is beyond the $RAFT_REPLICAS members of the first configuration; add members with membership changes, not by scaling" >&2
    exit 2
fi
ID=$((ORDINAL + 1))

{
    echo "cluster_id = \"$RAFT_CLUSTER_ID\""
    echo "id = $ID"
    echo "listen = \"0.0.0.0:$PORT\""
    echo "data_dir = \"$DATA_DIR\""
    echo "metrics = \"0.0.0.0:$METRICS_PORT\""
    [ -n "${RAFT_ELECTION_TIMEOUT_MS:-}" ] && echo "election_timeout_ms = [$RAFT_ELECTION_TIMEOUT_MS]"
    [ -n "${RAFT_HEARTBEAT_MS:-}" ] && echo "heartbeat_ms = $RAFT_HEARTBEAT_MS"
    echo "members = ["
    i=0
    while [ "$i" -lt "$RAFT_REPLICAS" ]; do
        echo "  { id = $((i + 1)), address = \"$SET-$i.$RAFT_SERVICE.$RAFT_NAMESPACE.svc:$PORT\" },"
        i=$((i + 1))
    done
    echo "]"
} > "$CONFIG"

if [ "${1:-}" = "--print-config" ]; then
    cat "$CONFIG"
    exit 0
fi

if [ "${RAFT_BOOTSTRAP:-false}" = "true" ] && [ ! -e "$DATA_DIR" ]; then
    echo "raft-node-entrypoint: RAFT_BOOTSTRAP is true and $DATA_DIR does not exist: initialising node $ID of cluster $RAFT_CLUSTER_ID" >&2
    exec raft-node run --config "$CONFIG" --init
fi
exec raft-node run --config "$CONFIG"
