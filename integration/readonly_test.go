package integration

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// The mount is read-only: the kernel refuses writes with EROFS before the
// daemon is asked, for root and everyone else, O_TRUNC on a read-only open
// included.
func TestMountIsReadOnly(t *testing.T) {
	d := startDaemon(t)
	mounts, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var opts string
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 3 && f[1] == d.Mountpoint {
			opts = f[3]
		}
	}
	if !strings.HasPrefix(opts, "ro,") {
		t.Errorf("mount options %q, want ro", opts)
	}
	f := d.Path("proc/meminfo")
	for _, c := range []struct {
		name  string
		flags int
	}{
		{"O_WRONLY", os.O_WRONLY},
		{"O_RDWR", os.O_RDWR},
		{"O_RDONLY|O_TRUNC", os.O_RDONLY | os.O_TRUNC},
		{"O_WRONLY|O_TRUNC", os.O_WRONLY | os.O_TRUNC},
		{"O_WRONLY|O_APPEND", os.O_WRONLY | os.O_APPEND},
	} {
		if fd, err := syscall.Open(f, c.flags, 0); !errors.Is(err, syscall.EROFS) {
			t.Errorf("open %s: %v, want EROFS", c.name, err)
			if err == nil {
				syscall.Close(fd)
			}
		}
	}
	if err := os.Truncate(f, 0); !errors.Is(err, syscall.EROFS) {
		t.Errorf("truncate: %v, want EROFS", err)
	}
	// Any user: the shell's redirection opens O_WRONLY|O_CREAT|O_TRUNC.
	out, err := exec.Command("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/sh", "-c", "echo x > "+f).CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("Read-only file system")) {
		t.Errorf("writing as nobody: %v, %q; want a read-only file system error", err, out)
	}
	// Reads still work, and the file is unchanged.
	if b, err := os.ReadFile(f); err != nil || !bytes.HasPrefix(b, []byte("MemTotal:")) {
		t.Errorf("reading after refused writes: %v %q", err, b)
	}
}
