package provider

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/cgprocfs/cgprocfs/procfiles"
)

type dcs = map[procfiles.Dev]procfiles.DiskCounters

var (
	vda = procfiles.Dev{Major: 254}
	sda = procfiles.Dev{Major: 8}
)

func hostLines(devs ...procfiles.Dev) []procfiles.DiskstatsLine {
	var ls []procfiles.DiskstatsLine
	for _, d := range devs {
		ls = append(ls, procfiles.DiskstatsLine{Dev: d, Name: fmt.Sprintf("%d:%d", d.Major, d.Minor), Counters: make([]uint64, 17)})
	}
	return ls
}

// A sequence of reads by one container, with devices appearing and
// disappearing from the cgroup's counters and from the host.
func TestDiskStateMonotonic(t *testing.T) {
	dir := t.TempDir()
	var s diskState
	steps := []struct {
		name string
		raw  dcs
		host []procfiles.DiskstatsLine
		want dcs
	}{
		{"quiet container: nothing kept", dcs{}, hostLines(vda, sda), dcs{}},
		{"first I/O on vda", dcs{vda: {5, 0, 100}}, hostLines(vda, sda), dcs{vda: {5, 0, 100}}},
		{"vda grows, sda appears", dcs{vda: {7, 0, 140}, sda: {1}}, hostLines(vda, sda), dcs{vda: {7, 0, 140}, sda: {1}}},
		// v1: the throttle rule is removed and vda's counters vanish.
		{"vda's counters vanish: last values stay", dcs{sda: {2}}, hostLines(vda, sda), dcs{vda: {7, 0, 140}, sda: {2}}},
		// The rule is back and counting starts again from 0.
		{"vda restarts from zero: offset", dcs{vda: {1, 0, 8}, sda: {2}}, hostLines(vda, sda), dcs{vda: {8, 0, 148}, sda: {2}}},
		{"vda grows after the restart", dcs{vda: {3, 0, 20}, sda: {2}}, hostLines(vda, sda), dcs{vda: {10, 0, 160}, sda: {2}}},
		{"sda unplugged: its line and state go", dcs{vda: {3, 0, 20}, sda: {2}}, hostLines(vda), dcs{vda: {10, 0, 160}}},
		{"a new sda starts at zero", dcs{vda: {3, 0, 20}, sda: {1}}, hostLines(vda, sda), dcs{vda: {10, 0, 160}, sda: {1}}},
	}
	for _, st := range steps {
		got := s.update("v1:blkio:/c", dir, st.raw, st.host)
		if !reflect.DeepEqual(got, st.want) {
			t.Fatalf("%s: got %v, want %v", st.name, got, st.want)
		}
	}
}

// A cgroup removed and made again under the same path is another container.
func TestDiskStateNewCgroupSamePath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ctr")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var s diskState
	s.update("k", dir, dcs{vda: {100, 0, 1000}}, hostLines(vda))
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	// Hold the old inode number so the new directory gets another.
	hold := filepath.Join(filepath.Dir(dir), "hold")
	os.Mkdir(hold, 0o755)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	got := s.update("k", dir, dcs{vda: {1, 0, 8}}, hostLines(vda))
	if want := (dcs{vda: {1, 0, 8}}); !reflect.DeepEqual(got, want) {
		t.Fatalf("new cgroup at the old path got %v, want %v (not the old one's counters)", got, want)
	}
}

func TestDiskStateForget(t *testing.T) {
	root := t.TempDir()
	gone, live := filepath.Join(root, "gone"), filepath.Join(root, "live")
	for _, d := range []string{gone, live} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var s diskState
	s.update("gone", gone, dcs{vda: {1}}, hostLines(vda))
	s.update("live", live, dcs{vda: {1}}, hostLines(vda))
	if s.len() != 2 {
		t.Fatalf("%d containers kept, want 2", s.len())
	}
	os.Remove(gone)
	s.forget()
	if s.len() != 1 {
		t.Fatalf("%d containers kept after one cgroup went, want 1", s.len())
	}
	// A read while the cgroup is being removed keeps nothing.
	got := s.update("gone", gone, dcs{vda: {2}}, hostLines(vda))
	if s.len() != 1 || !reflect.DeepEqual(got, dcs{vda: {2}}) {
		t.Fatalf("read of a vanished cgroup: %v, %d kept", got, s.len())
	}
}
