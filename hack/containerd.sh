#!/bin/sh
# Builds containerd (with its shim and ctr) and crictl from the Go module
# proxy into .cache/containerd/CONTAINERD_VERSION-CRICTL_VERSION/bin, once:
# a second run finds them there and only prints the directory. The NRI
# integration tests (integration/nri_test.go) use them through
# CGPROCFS_CONTAINERD_BIN; nothing is installed on the host.
# Usage: hack/containerd.sh   (prints the bin directory on stdout)
set -eu
CONTAINERD_VERSION=${CONTAINERD_VERSION:-v2.4.2}
CRICTL_VERSION=${CRICTL_VERSION:-v1.37.0}
cd "$(dirname "$0")/.."
dir=$PWD/.cache/containerd/$CONTAINERD_VERSION-$CRICTL_VERSION
bin=$dir/bin
if [ -f "$dir/done" ]; then
	echo "$bin"
	exit 0
fi
command -v go >/dev/null 2>&1 || PATH=$PATH:/usr/local/go/bin
start=$(date +%s)
echo "hack/containerd.sh: building containerd $CONTAINERD_VERSION and crictl $CRICTL_VERSION into $bin (about 2 minutes, once)" >&2
rm -rf "$dir"
mkdir -p "$bin"
# Static binaries; no_btrfs drops the btrfs snapshotter, whose cgo headers
# are not installed. GOFLAGS is cleared so that a -mod setting of this
# module does not reach the builds of others.
GOFLAGS= GOBIN=$bin CGO_ENABLED=0 go install -trimpath -tags no_btrfs \
	"github.com/containerd/containerd/v2/cmd/containerd@$CONTAINERD_VERSION" \
	"github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION" \
	"github.com/containerd/containerd/v2/cmd/ctr@$CONTAINERD_VERSION" >&2
GOFLAGS= GOBIN=$bin CGO_ENABLED=0 go install -trimpath "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" >&2
touch "$dir/done"
echo "hack/containerd.sh: built in $(($(date +%s) - start)) s" >&2
echo "$bin"
