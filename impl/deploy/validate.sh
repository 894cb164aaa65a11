#!/bin/sh
# Validates the Kubernetes manifests against the Kubernetes API schemas
# (PyPI's kubernetes-validate, strict: unknown fields are errors), installing
# what it needs: Debian's python3-venv if missing (as root), then
# kubernetes-validate into a virtual environment at $1 (reused by later runs).
#
#   impl/deploy/validate.sh [VENV_DIR]        # default: target/k8s-venv
set -eu
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${1:-$HERE/../../target/k8s-venv}"
VERSION=1.37.0      # kubernetes-validate, which bundles the schemas
K8S=1.31.0          # the Kubernetes version the manifests must suit

if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get update -qq && apt-get install -y -q python3-venv >/dev/null
        else
            echo "validate.sh: needs python3 with venv (Debian: apt-get install python3-venv)" >&2
            exit 2
        fi
    fi
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "kubernetes-validate==$VERSION"
fi
"$VENV/bin/kubernetes-validate" --strict --kubernetes-version "$K8S" "$HERE"/k8s/*.yaml
