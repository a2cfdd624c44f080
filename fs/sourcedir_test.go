package fs

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// fakeSource serves "cpu0".."cpu<n-1>", each holding a file "id" and a
// link "up"; n changes between calls, as it does between two callers.
type fakeSource struct{ n atomic.Int32 }

func (s *fakeSource) cpu(rel string) (string, string, error) {
	name, rest, _ := strings.Cut(rel, "/")
	i := cpuNum(name)
	if i < 0 || i >= int(s.n.Load()) {
		return "", "", os.ErrNotExist
	}
	return name, rest, nil
}

func cpuNum(name string) int {
	if len(name) == 4 && strings.HasPrefix(name, "cpu") && name[3] >= '0' && name[3] <= '9' {
		return int(name[3] - '0')
	}
	return -1
}

func (s *fakeSource) Stat(ctx context.Context, pid uint32, rel string) (uint32, error) {
	_, rest, err := s.cpu(rel)
	switch {
	case err != nil:
		return 0, err
	case rest == "":
		return syscall.S_IFDIR | 0o755, nil
	case rest == "id":
		return syscall.S_IFREG | 0o444, nil
	case rest == "up":
		return syscall.S_IFLNK | 0o777, nil
	case rest == "denied":
		return syscall.S_IFREG | 0o200, nil
	}
	return 0, os.ErrNotExist
}

func (s *fakeSource) List(ctx context.Context, pid uint32, rel string) ([]DirEntry, error) {
	if rel == "" {
		var out []DirEntry
		for i := range int(s.n.Load()) {
			out = append(out, DirEntry{Name: "cpu" + string(rune('0'+i)), Mode: syscall.S_IFDIR | 0o755})
		}
		return out, nil
	}
	if _, _, err := s.cpu(rel); err != nil {
		return nil, err
	}
	return []DirEntry{{Name: "id", Mode: syscall.S_IFREG | 0o444}, {Name: "up", Mode: syscall.S_IFLNK | 0o777}, {Name: "fifo", Mode: syscall.S_IFIFO}}, nil
}

func (s *fakeSource) Content(ctx context.Context, pid uint32, rel string) ([]byte, error) {
	name, rest, err := s.cpu(rel)
	if err != nil {
		return nil, err
	}
	if rest == "denied" {
		return nil, syscall.EACCES
	}
	return []byte(name + " of " + string(rune('0'+s.n.Load())) + "\n"), nil
}

// EntryTimeout: 0 for the cpuN entries, as the provider's CPU tree says.
func (s *fakeSource) EntryTimeout(rel string) time.Duration {
	if strings.Contains(rel, "/") {
		return time.Hour
	}
	return 0
}

func (s *fakeSource) Readlink(ctx context.Context, pid uint32, rel string) (string, error) {
	if _, _, err := s.cpu(rel); err != nil {
		return "", err
	}
	return "../node", nil
}

// What one caller was shown is never answered to the next from the
// kernel's caches: entries, listings and contents all follow the source at
// once.
func TestSourceDirFollowsCaller(t *testing.T) {
	src := &fakeSource{}
	src.n.Store(2)
	mp := mountForTest(t, []File{{Path: "proc/x", Content: func(context.Context, uint32) ([]byte, error) { return nil, nil }},
		{Path: "sys/cpu", Dir: src, Whole: true}})
	dir := filepath.Join(mp, "sys/cpu")
	list := func() []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	for round := range 3 {
		src.n.Store(2)
		if got := list(); !slices.Equal(got, []string{"cpu0", "cpu1"}) {
			t.Fatalf("round %d: listing with 2 CPUs: %q", round, got)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "cpu1/id")); err != nil || string(b) != "cpu1 of 2\n" {
			t.Fatalf("round %d: cpu1/id: %q, %v", round, b, err)
		}
		if l, err := os.Readlink(filepath.Join(dir, "cpu1/up")); err != nil || l != "../node" {
			t.Fatalf("round %d: cpu1/up: %q, %v", round, l, err)
		}
		src.n.Store(1)
		if got := list(); !slices.Equal(got, []string{"cpu0"}) {
			t.Fatalf("round %d: listing with 1 CPU: %q", round, got)
		}
		for _, p := range []string{"cpu1", "cpu1/id", "cpu1/up"} {
			if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("round %d: %s with 1 CPU: %v, want ENOENT", round, p, err)
			}
		}
		if b, err := os.ReadFile(filepath.Join(dir, "cpu0/id")); err != nil || string(b) != "cpu0 of 1\n" {
			t.Fatalf("round %d: cpu0/id: %q, %v", round, b, err)
		}
	}
	// A fifo is not served; a source's errno reaches the reader.
	entries, err := os.ReadDir(filepath.Join(dir, "cpu0"))
	if err != nil || len(entries) != 2 {
		t.Errorf("cpu0 lists %v, %v; want id and up", entries, err)
	}
	if _, err := os.ReadFile(filepath.Join(dir, "cpu0/denied")); !errors.Is(err, syscall.EACCES) {
		t.Errorf("cpu0/denied: %v, want EACCES", err)
	}
	// Read-only like the rest of the tree.
	if err := os.WriteFile(filepath.Join(dir, "cpu0/id"), []byte("1"), 0); err == nil {
		t.Error("writing cpu0/id succeeded")
	}
	// Served whole: ServedFiles lists the directory, not its files.
	got, err := ServedFiles(mp)
	if err != nil || !slices.Equal(got, []string{"proc/x", "sys/cpu/"}) {
		t.Errorf("ServedFiles: %q, %v", got, err)
	}
}
