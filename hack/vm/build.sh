#!/bin/bash
# Builds the cgroup v2 test VM: Debian's kernel (downloaded with apt-get,
# cached) and an initramfs holding a static bin/cgprocfs, the integration
# test binary, busybox, the real tools the tests call (with their shared
# libraries) and the modules the VM needs. Called by hack/vm/run.sh.
#
# Usage: hack/vm/build.sh OUTDIR
# Leaves OUTDIR/vmlinuz and OUTDIR/initramfs.cpio.gz.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: build.sh OUTDIR}
cache=$repo/.cache/vm
mkdir -p "$cache" "$out"
export PATH=$PATH:/usr/local/go/bin
log() { echo "vm-build: $*" >&2; }

# --- kernel -----------------------------------------------------------------
# The kernel package linux-image-amd64 points at (6.1 on Debian 12). It is
# only unpacked, never installed.
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}' || true)
if [ -z "$kpkg" ]; then
	log "apt-get update (no linux-image-amd64 in the package lists)"
	apt-get update -qq
	kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
fi
[ -n "$kpkg" ] || { log "cannot resolve linux-image-amd64"; exit 1; }
kdir=$cache/$kpkg
if [ ! -d "$kdir/lib/modules" ]; then
	deb=$(ls "$cache/${kpkg}"_*.deb 2>/dev/null | tail -n1 || true)
	if [ -z "$deb" ]; then
		log "downloading $kpkg"
		# -o APT::Sandbox::User=root: _apt may not write to this directory.
		dl() { (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$kpkg" >/dev/null); }
		# Stale package lists name a version the mirror has dropped.
		dl || { apt-get update -qq && dl; }
		deb=$(ls "$cache/${kpkg}"_*.deb | tail -n1)
	fi
	rm -rf "$kdir.tmp"
	dpkg -x "$deb" "$kdir.tmp"
	mv "$kdir.tmp" "$kdir"
fi
kver=$(ls "$kdir/lib/modules" | head -n1)
cp "$kdir/boot/vmlinuz-$kver" "$out/vmlinuz"
log "kernel $kpkg ($kver)"

# --- Go binaries -----------------------------------------------------------
# CGO off so both are static and need no libraries in the VM.
(cd "$repo" &&
	hack/gofuse-patch.sh &&
	CGO_ENABLED=0 go build -trimpath -o bin/cgprocfs . &&
	CGO_ENABLED=0 go test -c -o bin/integration.test ./integration)
for b in "$repo/bin/cgprocfs" "$repo/bin/integration.test"; do
	if ldd "$b" >/dev/null 2>&1; then
		log "$b is not static"
		exit 1
	fi
done

# --- root tree ---------------------------------------------------------------
root=$out/root
rm -rf "$root"
mkdir -p "$root"/{usr/bin,usr/sbin,usr/lib,usr/lib64,etc,proc,sys,dev,tmp,run,root,mnt,newroot}
# Merged /usr as on Debian 12, so /bin/mount and /usr/bin/mount are one file.
for d in bin sbin lib lib64; do ln -s "usr/$d" "$root/$d"; done

# inroot maps a host path to its path in the merged-/usr root.
inroot() {
	case "$1" in
	/bin/* | /sbin/* | /lib/* | /lib64/*) echo "$root/usr$1" ;;
	*) echo "$root$1" ;;
	esac
}

# copy_file HOSTPATH [DEST]: the file (symlinks resolved) at the same path.
copy_file() {
	local dst
	dst=$(inroot "${2:-$1}")
	[ -e "$dst" ] && return 0
	mkdir -p "$(dirname "$dst")"
	cp -L "$1" "$dst"
}

# copy_bin HOSTPATH: a binary at the same path plus the libraries (and the
# dynamic loader) ldd lists for it.
copy_bin() {
	local src=$1 lib
	if [ ! -e "$src" ]; then
		log "missing on this host: $src (run hack/deps.sh vm)"
		exit 1
	fi
	copy_file "$src"
	for lib in $(ldd "$src" 2>/dev/null | grep -oE '/[^ ]+' || true); do
		copy_file "$lib"
	done
}

# The real tools the tests call, at the paths they have on the host; busybox
# fills in the rest and never shadows these.
tools=(
	# procps
	/usr/bin/free /usr/bin/top /usr/bin/uptime /usr/bin/vmstat /usr/bin/ps /usr/bin/pgrep
	/usr/bin/pkill /usr/bin/kill /usr/bin/pidwait /usr/bin/slabtop /usr/bin/w /usr/bin/watch
	# util-linux
	/usr/bin/lscpu /usr/bin/setpriv /usr/bin/unshare /usr/bin/nsenter /usr/bin/mount
	/usr/bin/umount /usr/bin/findmnt /usr/bin/mountpoint /usr/bin/taskset /usr/bin/lsblk
	/usr/bin/chrt /usr/bin/flock /usr/bin/prlimit /usr/sbin/mkswap /usr/sbin/swapon
	/usr/sbin/swapoff /usr/sbin/losetup /usr/bin/dmesg
	# sysstat
	/usr/bin/iostat /usr/bin/mpstat /usr/bin/pidstat
	# containers and FUSE
	/usr/sbin/runc /usr/bin/fusermount3
	# coreutils, shell, text tools
	/usr/bin/dash /usr/bin/dd /usr/bin/stat /usr/bin/seq /usr/bin/head /usr/bin/tail /usr/bin/cat
	/usr/bin/sync /usr/bin/mkdir /usr/bin/rmdir /usr/bin/rm /usr/bin/sleep /usr/bin/ls /usr/bin/cp
	/usr/bin/mv /usr/bin/ln /usr/bin/touch /usr/bin/wc /usr/bin/sort /usr/bin/uniq /usr/bin/tr
	/usr/bin/cut /usr/bin/date /usr/bin/env /usr/bin/nproc /usr/bin/id /usr/bin/tee
	/usr/bin/timeout /usr/bin/true /usr/bin/false /usr/bin/echo /usr/bin/printf /usr/bin/basename
	/usr/bin/dirname /usr/bin/readlink /usr/bin/realpath /usr/bin/mktemp /usr/bin/chmod
	/usr/bin/chown /usr/bin/uname /usr/bin/df /usr/bin/du /usr/bin/yes /usr/bin/nice
	/usr/bin/truncate /usr/bin/fallocate /usr/bin/od /usr/bin/expr /usr/bin/test
	/usr/bin/grep /usr/bin/sed /usr/bin/mawk
)
for t in "${tools[@]}"; do copy_bin "$t"; done
ln -s dash "$root/usr/bin/sh"
ln -s mawk "$root/usr/bin/awk"
ln -s ../sbin/runc "$root/usr/bin/runc"
# top and watch look up the terminal in terminfo.
mkdir -p "$root/usr/lib"
cp -a /lib/terminfo "$root/usr/lib/terminfo"

# busybox for everything else, as symlinks where no real tool is.
copy_file /bin/busybox /usr/bin/busybox
busybox --list-full | while read -r p; do
	dst=$(inroot "/$p")
	[ -e "$dst" ] || [ -L "$dst" ] || { mkdir -p "$(dirname "$dst")" && ln -s /usr/bin/busybox "$dst"; }
done

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
ln -s /proc/self/mounts "$root/etc/mtab"

# Every absolute tool path the integration tests name must be in the VM.
missing=0
for p in $(grep -rhoE '"/(usr/)?s?bin/[A-Za-z0-9_.+-]+' "$repo/integration" | tr -d '"' | sort -u); do
	if [ ! -e "$(inroot "$p")" ] && [ ! -L "$(inroot "$p")" ]; then
		log "integration tests call $p, which the VM lacks: add it to tools in hack/vm/build.sh"
		missing=1
	fi
done
[ "$missing" = 0 ] || exit 1

# --- modules -----------------------------------------------------------------
# The package has no modules.dep (depmod runs at install), so dependencies
# come from each module's own "depends=" field, as depmod reads them.
mdir=$kdir/lib/modules/$kver
modpath() { # modpath NAME: the module file, - and _ being the same
	local n=${1//-/_} f
	f=$(find "$mdir/kernel" \( -name "$n.ko*" -o -name "${n//_/-}.ko*" \) | head -n1)
	[ -n "$f" ] || { log "module $1 not found in $kpkg"; exit 1; }
	echo "$f"
}
modcat() { case "$1" in *.xz) xz -dc "$1" ;; *.zst) zstd -qdc "$1" ;; *.gz) gzip -dc "$1" ;; *) cat "$1" ;; esac; }
order=()
add_module() { # depth-first: dependencies before the module
	local n=${1//-/_} d f
	for d in "${order[@]}"; do [ "$d" = "$n" ] && return 0; done
	f=$(modpath "$n")
	for d in $(modcat "$f" | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '); do
		add_module "$d"
	done
	order+=("$n")
	modcat "$f" >"$root/lib/modules/$n.ko"
}
mkdir -p "$root/lib/modules"
# virtio disks, FUSE, ext4 (with crc32c for its metadata checksums), loop
# (TestBlockDiskAppears makes a loop device after the daemon started).
for m in virtio_pci virtio_blk fuse crc32c_generic ext4 loop; do add_module "$m"; done
printf '%s\n' "${order[@]}" >"$root/etc/vm-modules"
log "modules: ${order[*]}"

# --- init and the binaries under test ---------------------------------------
cp "$repo/hack/vm/init" "$root/init"
chmod 755 "$root/init"
cp "$repo/bin/cgprocfs" "$root/usr/bin/cgprocfs"
cp "$repo/bin/integration.test" "$root/integration.test"
mkdir -p "$root/src/integration"
[ -d "$repo/integration/testdata" ] && cp -a "$repo/integration/testdata" "$root/src/integration/"

(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 >"$out/initramfs.cpio.gz"
log "initramfs $(du -h "$out/initramfs.cpio.gz" | cut -f1) ($(du -sh "$root" | cut -f1) unpacked)"
