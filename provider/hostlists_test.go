package provider

import (
	"errors"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

// The host's disk list is read once, and again only after a block uevent:
// a socket pair stands in for the kernel's uevent socket.
func TestHostDisksReadAgainOnlyAfterBlockEvent(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	kernel := fds[1]
	t.Cleanup(func() { unix.Close(kernel) })
	h := &hostDisks{subsystem: "block", events: fds[0], buf: make([]byte, ueventBuf)}
	t.Cleanup(h.close)

	file := " 254       0 vda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n"
	reads := 0
	var fail error
	read := func() ([]procfiles.DiskstatsLine, error) {
		reads++
		if fail != nil {
			return nil, fail
		}
		return procfiles.ParseDiskstats([]byte(file))
	}
	get := func(wantReads int, wantDisks ...string) {
		t.Helper()
		lines, err := h.get(read)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, l := range lines {
			names = append(names, l.Name)
		}
		if reads != wantReads || !slices.Equal(names, wantDisks) {
			t.Fatalf("after %d reads of the file the list is %q; want %d reads and %q", reads, names, wantReads, wantDisks)
		}
	}
	send := func(ev string) {
		t.Helper()
		if _, err := unix.Write(kernel, []byte(ev)); err != nil {
			t.Fatal(err)
		}
	}

	get(1, "vda")
	get(1, "vda")
	file += " 7       200 loop200 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	send("add@/devices/virtual/net/veth1\x00ACTION=add\x00SUBSYSTEM=net\x00")
	get(1, "vda")
	send("add@/devices/virtual/block/loop200\x00ACTION=add\x00DEVPATH=/devices/virtual/block/loop200\x00SUBSYSTEM=block\x00")
	send("change@/devices/virtual/block/loop200\x00ACTION=change\x00SUBSYSTEM=block\x00")
	get(2, "vda", "loop200")
	get(2, "vda", "loop200")

	// A failed read keeps no list: the next open reads again.
	send("remove@/devices/virtual/block/loop200\x00ACTION=remove\x00SUBSYSTEM=block\x00")
	fail = errors.New("no diskstats")
	if _, err := h.get(read); err == nil {
		t.Fatal("a failed read of the host's file gave no error")
	}
	fail = nil
	file = " 254       0 vda 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\n"
	get(4, "vda")
	get(4, "vda")
}

// Without a socket, every open reads the host's file.
func TestHostListWithoutEventsReadsEveryTime(t *testing.T) {
	h, err := newHostList[[]int]("cpu", false)
	if err != nil {
		t.Fatal(err)
	}
	reads := 0
	for range 3 {
		if _, err := h.get(func() ([]int, error) { reads++; return []int{0, 1}, nil }); err != nil {
			t.Fatal(err)
		}
	}
	if reads != 3 {
		t.Errorf("3 opens read the file %d times, want 3", reads)
	}
}

func TestUeventOf(t *testing.T) {
	for msg, want := range map[string]bool{
		"add@/devices/virtual/block/loop7\x00ACTION=add\x00SUBSYSTEM=block\x00DEVTYPE=disk\x00": true,
		"remove@/devices/pci0000:00/0000:00:04.0/virtio1/block/vda/vda1\x00SUBSYSTEM=block\x00": true,
		"add@/devices/virtual/net/veth1\x00ACTION=add\x00SUBSYSTEM=net\x00":                     false,
		"add@/devices/virtual/bdi/7:7\x00ACTION=add\x00SUBSYSTEM=bdi\x00":                       false,
		"offline@/devices/system/cpu/cpu1\x00ACTION=offline\x00SUBSYSTEM=cpu\x00":               false,
		"add@/devices/virtual/block/x\x00SUBSYSTEM=blockish\x00":                                false,
		"libudev\x00\xfe\xed\xca\xfe SUBSYSTEM=block":                                           false,
		"": false,
	} {
		if got := ueventOf([]byte(msg), "block"); got != want {
			t.Errorf("ueventOf(%q, block) = %v, want %v", msg, got, want)
		}
	}
	cpu := "online@/devices/system/cpu/cpu1\x00ACTION=online\x00DEVPATH=/devices/system/cpu/cpu1\x00SUBSYSTEM=cpu\x00"
	if !ueventOf([]byte(cpu), "cpu") {
		t.Errorf("ueventOf(%q, cpu) = false, want true", cpu)
	}
}
