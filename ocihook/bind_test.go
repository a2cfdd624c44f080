package ocihook

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// served is what a daemon of today serves, with one disk.
var served = []string{
	"proc/cpuinfo", "proc/diskstats", "proc/loadavg", "proc/meminfo", "proc/stat", "proc/swaps", "proc/uptime",
	"sys/block/sda/stat", "sys/block/sdb/stat", "sys/block/vda/stat",
	// Directories served whole end in a slash (fs.ServedFiles).
	"sys/devices/system/cpu/", "sys/devices/system/memory/", "sys/devices/system/node/",
}

func TestTargets(t *testing.T) {
	rootfs := t.TempDir()
	host := t.TempDir()
	mkfiles(t, host, "sys/block/vda/stat")
	mkfiles(t, rootfs,
		"proc/meminfo", "proc/cpuinfo", "proc/uptime",
		"proc/stat/", // a directory: left alone
		"sys/devices/pci0/block/sda/stat",
		"sys/devices/system/cpu/online", "sys/devices/system/cpu/present",
		"sys/devices/system/memory", // a file: left alone
		"etc/passwd", "sys/block/",
	)
	for _, l := range []struct{ target, link string }{
		// Resolved inside the rootfs, as the container sees it.
		{"../devices/pci0/block/sda", "sys/block/sda"},
		// Absolute and climbing links stay inside the rootfs too, so
		// they find nothing rather than the host's files.
		{filepath.Join(host, "sys/block/vda"), "sys/block/vda"},
		{"../../../../../../../../.." + host + "/sys/block/vda", "sys/block/sdb"},
		// A symlink as the file itself is not a file to bind over.
		{"/etc/passwd", "proc/swaps"},
		{"/etc/passwd", "sys/devices/system/node"},
	} {
		if err := os.Symlink(l.target, filepath.Join(rootfs, l.link)); err != nil {
			t.Fatal(err)
		}
	}
	root, err := OpenRootfs(rootfs)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	targets, notes := root.Targets(served)
	want := []string{"proc/cpuinfo", "proc/meminfo", "proc/uptime", "sys/block/sda/stat", "sys/devices/system/cpu/"}
	if !slices.Equal(targets, want) {
		t.Errorf("targets %q, want %q", targets, want)
	}
	for _, n := range []string{"proc/stat: not a regular file", "proc/swaps: not a regular file", "sys/devices/system/memory: not a directory", "sys/devices/system/node: not a directory"} {
		if !slices.ContainsFunc(notes, func(note string) bool { return strings.HasPrefix(note, n) }) {
			t.Errorf("no note says %q: %q", n, notes)
		}
	}
	if len(notes) != 4 {
		t.Errorf("notes %q, want 4", notes)
	}
}

func TestTargetsEmptyRootfs(t *testing.T) {
	// A container whose runtime mounts neither /proc nor /sys.
	root, err := OpenRootfs(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if targets, notes := root.Targets(served); len(targets) != 0 || len(notes) != 0 {
		t.Errorf("empty rootfs: targets %q, notes %q", targets, notes)
	}
}

func TestOpenRootfsMissing(t *testing.T) {
	if _, err := OpenRootfs(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "rootfs") {
		t.Errorf("OpenRootfs of a missing directory: %v", err)
	}
}
