#!/bin/sh
# Prepares .cache/go-fuse, the go-fuse that go.mod's replace directive names:
# the module's source from the Go module cache with hack/go-fuse.patch
# applied (README, "Upgrade and crash without failed reads"). Every build,
# vet and test needs it; it is quick when already done (a stamp of the
# version and the patch).
set -eu
cd "$(dirname "$0")/.."
mod=github.com/hanwen/go-fuse/v2
dest=.cache/go-fuse
ver=$(awk -v m="$mod" '$1 == m && $2 ~ /^v/ { print $2; exit }' go.mod)
[ -n "$ver" ] || { echo "hack/gofuse-patch.sh: no $mod version in go.mod" >&2; exit 1; }
stamp="$ver $(sha256sum hack/go-fuse.patch | cut -d' ' -f1)"
if [ -f "$dest/.cgprocfs-stamp" ] && [ "$(cat "$dest/.cgprocfs-stamp")" = "$stamp" ]; then
	exit 0
fi
src="$(go env GOMODCACHE)/$mod@$ver"
if [ ! -d "$src" ]; then
	# Outside the module, so that the replace directive (whose
	# directory this makes) does not stand in the way.
	(cd / && GOFLAGS=-mod=mod GO111MODULE=on go mod download "$mod@$ver")
fi
tmp="$dest.tmp.$$"
rm -rf "$tmp"
mkdir -p .cache
cp -R "$src" "$tmp"
chmod -R u+w "$tmp"
patch -s -p1 -d "$tmp" <hack/go-fuse.patch
echo "$stamp" >"$tmp/.cgprocfs-stamp"
rm -rf "$dest"
mv "$tmp" "$dest"
