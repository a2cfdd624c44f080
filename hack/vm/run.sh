#!/bin/bash
# Runs the integration tests on a pure cgroup v2 kernel: boots Debian's
# kernel under qemu with an initramfs built by hack/vm/build.sh, streams the
# console to stdout and bin/vm.log, and exits 0 only when the VM reports
# that the test binary exited 0. `make test-v2` runs this.
#
# Environment:
#   VM_TIMEOUT   seconds the VM may run (after the build) before it is
#                killed and the run fails (2400: the suite takes about
#                450 s here under TCG, and CI machines have been seen
#                2.6 times slower)
#   VM_ACCEL     kvm, tcg or auto (kvm when /dev/kvm works, else tcg)
#   VM_KVM_WAIT  seconds a KVM guest may stay silent before the run
#                falls back to TCG (90)
#   VM_RUN       a -test.run regex, to run only some tests
#   VM_MEM       guest memory in MiB (2048)
#   VM_CPUS      guest vCPUs (2)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
timeout=${VM_TIMEOUT:-2400}
out=$repo/.cache/vm/build
log=$repo/bin/vm.log
mkdir -p "$repo/bin"

if [ "$(id -u)" != 0 ]; then
	echo "hack/vm/run.sh: needs root (installs packages, builds the VM)" >&2
	exit 1
fi
"$repo/hack/deps.sh" vm

# One VM run at a time per checkout: runs share the build directory, the
# disk images and bin/vm.log (and two emulated VMs would starve each other).
mkdir -p "$repo/.cache/vm"
exec 9>"$repo/.cache/vm/lock"
if ! flock -n 9; then
	echo "vm: another VM run holds $repo/.cache/vm/lock; waiting for it"
	flock 9
fi

t0=$(date +%s)
"$repo/hack/vm/build.sh" "$out"
t1=$(date +%s)

# Fresh disks each run: an ext4 /tmp (sparse, so cheap) and a swap disk.
truncate -s 0 "$out/tmp.img" "$out/swap.img"
truncate -s 4G "$out/tmp.img"
truncate -s 512M "$out/swap.img"
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$out/tmp.img"

# psi=1: Debian's kernel is built with PSI off by default
# (CONFIG_PSI_DEFAULT_DISABLED), which hides /proc/pressure and the
# cgroups' *.pressure files.
append="console=ttyS0 panic=-1 loglevel=4 psi=1"
[ -n "${VM_RUN:-}" ] && append="$append cgprocfs_run=\"$VM_RUN\""
# The test binary's own limit stays under ours so that it reports which
# test hung rather than being killed silently.
append="$append cgprocfs_timeout=$((timeout > 90 ? timeout - 60 : timeout))s"

boot() { # boot ACCEL CPU: runs the VM, console to stdout and $log
	echo "vm: booting $(basename "$(readlink -f "$out/vmlinuz")") ($1) with ${VM_CPUS:-2} vCPUs, ${VM_MEM:-2048} MiB, limit ${timeout}s; console also in $log"
	set +e
	# stdin from /dev/null: qemu must not take over the terminal.
	timeout -k 10 "$timeout" qemu-system-x86_64 \
		-accel "$1" -cpu "$2" -smp "${VM_CPUS:-2}" -m "${VM_MEM:-2048}" \
		-kernel "$out/vmlinuz" -initrd "$out/initramfs.cpio.gz" -append "$append" \
		-drive file="$out/tmp.img",format=raw,if=virtio,cache=unsafe \
		-drive file="$out/swap.img",format=raw,if=virtio,cache=unsafe \
		-nic none -display none -monitor none -serial stdio -no-reboot \
		-pidfile "$out/qemu.pid" \
		</dev/null 2>&1 | tr -d '\r' | tee "$log"
	qemu_rc=${PIPESTATUS[0]}
	set -e
}

accel=${VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
	accel=tcg
	[ -r /dev/kvm ] && [ -w /dev/kvm ] && accel=kvm
fi
if [ "$accel" = kvm ]; then
	# /dev/kvm can exist and still fail: under some nested virtualisation
	# qemu dies before the guest prints anything (an MSR refused), under
	# other it spins without the guest ever printing. A guest whose init
	# has not spoken within kvm_wait seconds (it does within 2 here when
	# KVM works, 6 under TCG) is stopped, and the run goes on under TCG.
	kvm_wait=${VM_KVM_WAIT:-90}
	rm -f "$out/qemu.pid" "$out/kvm-stalled"
	: >"$log"
	(
		for _ in $(seq "$kvm_wait"); do
			sleep 1
			grep -q -a '^vm-init:' "$log" 2>/dev/null && exit 0
		done
		if [ -s "$out/qemu.pid" ]; then
			: >"$out/kvm-stalled"
			kill "$(cat "$out/qemu.pid")" 2>/dev/null
		fi
	) &
	watcher=$!
	boot kvm host
	kill "$watcher" 2>/dev/null || true
	wait "$watcher" 2>/dev/null || true
	if [ -e "$out/kvm-stalled" ]; then
		echo "vm: KVM gave no guest output within ${kvm_wait}s; retrying under TCG"
		accel=tcg
	elif [ "$qemu_rc" != 0 ] && ! grep -q -a '^vm-init:' "$log"; then
		echo "vm: KVM failed (qemu exit $qemu_rc); retrying under TCG"
		accel=tcg
	fi
fi
[ "$accel" = tcg ] && boot tcg max
t2=$(date +%s)

echo "vm: build $((t1 - t0)) s, VM run $((t2 - t1)) s under $accel"

# summary: what a reader of only the last lines (a CI log) needs to see
# why the run failed: the failed tests, a test binary's timeout with the
# tests it was running, and the slowest tests.
summary() {
	echo "vm: summary of $log"
	grep -a -E '^(--- FAIL|FAIL|panic:)' "$log" | head -n 20 || true
	grep -a -A 12 '^panic: test timed out' "$log" | grep -a -E '^(running tests:|	Test)' | head -n 12 || true
	echo "vm: slowest tests:"
	grep -a -E '^--- (PASS|FAIL|SKIP)' "$log" |
		sed -E 's/^--- ([A-Z]+): ([^ ]+) \(([0-9.]+)s\)$/\3 \2 \1/' | sort -rn | head -n 8 || true
}
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
	summary
	echo "vm: FAIL: the VM did not finish within ${timeout}s (VM_TIMEOUT); killed" >&2
	exit 1
fi
marker=$(grep -a '^CGPROCFS-VM-RESULT exit=' "$log" | tail -n1 || true)
if [ -z "$marker" ]; then
	summary
	echo "vm: FAIL: the VM stopped without reporting a result (qemu exit $qemu_rc); see $log" >&2
	exit 1
fi
if [ "$marker" != "CGPROCFS-VM-RESULT exit=0" ]; then
	summary
	echo "vm: FAIL: integration tests failed on cgroup v2 ($marker); see $log" >&2
	exit 1
fi
grep -q '^integration: cgroup mode cgroup2.*unified=true' "$log" || {
	echo "vm: FAIL: the tests did not run on cgroup2" >&2
	exit 1
}
summary | tail -n 9
echo "vm: PASS: $(grep -c '^--- PASS' "$log") passed, $(grep -c '^--- SKIP' "$log") skipped on cgroup v2"
