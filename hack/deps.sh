#!/bin/sh
# Installs what building and testing cgprocfs need on a fresh Debian machine,
# as root. Only what is missing is installed, so it is quick on a second run.
# Usage: hack/deps.sh [run|test|bench|vm]
set -eu
need=""
want() { # want COMMAND PACKAGE
	command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || need="$need $2"
}
want_file() { # want_file PATH PACKAGE
	[ -e "$1" ] || need="$need $2"
}

want mount mount
want unshare util-linux
want_file /dev/fuse fuse3
# hack/gofuse-patch.sh applies hack/go-fuse.patch before every build.
want patch patch
case "${1:-test}" in
test|bench|vm)
	want /usr/bin/free procps
	want lscpu util-linux
	want iostat sysstat
	want setpriv util-linux
	want runc runc
	want_file /bin/busybox busybox-static
	want dd coreutils
	# integration/cputree_test.go builds a static probe of glibc's
	# sysconf (libc.a is in libc6-dev).
	want gcc gcc
	want_file /usr/lib/x86_64-linux-gnu/libc.a libc6-dev
	;;
esac
case "${1:-test}" in
test|vm)
	want qemu-system-x86_64 qemu-system-x86
	want cpio cpio
	want mkfs.ext4 e2fsprogs
	# hack/vm/build.sh: kernel modules may be xz-compressed; the VM's
	# tools at the host's paths (fusermount3, mawk, grep, sed).
	want xz xz-utils
	want gzip gzip
	want fusermount3 fuse3
	want mawk mawk
	want grep grep
	want sed sed
	;;
esac
case "${1:-test}" in
test)
	# The OCI hook's tests under podman (runc runtime, no network, so
	# neither crun nor the CNI plugins are needed). The VM has no podman:
	# they skip there.
	want podman podman
	# The metrics tests scrape the daemon with a real Prometheus on
	# loopback and lint with promtool (the VM has neither: they skip
	# that part there).
	want prometheus prometheus
	want promtool prometheus
	;;
esac
case "${1:-test}" in
bench)
	want lxcfs lxcfs
	# The C floor (hack/bench/floor/floor.c) is built against libfuse3.
	want gcc gcc
	want pkg-config pkg-config
	want_file /usr/include/fuse3/fuse_lowlevel.h libfuse3-dev
	;;
esac

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
	echo "note: Go is at /usr/local/go/bin; add it to PATH" >&2
fi
if [ -n "$need" ]; then
	echo "installing:$need" >&2
	if [ "$(id -u)" != 0 ]; then
		echo "hack/deps.sh: installing packages needs root" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
# The fuse module may not be loaded on a fresh machine.
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || true
