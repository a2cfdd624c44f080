package fs

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTimeoutSeconds(t *testing.T) {
	for _, c := range []struct {
		in   time.Duration
		want int
	}{
		{0, 30}, {-1, 0}, {time.Second, 1}, {1500 * time.Millisecond, 2}, {time.Nanosecond, 1}, {100 * time.Hour, 65535},
	} {
		if got := timeoutSeconds(c.in); got != c.want {
			t.Errorf("timeoutSeconds(%v) = %d, want %d", c.in, got, c.want)
		}
	}
}

// The default is the asked timeout only while mount runs, and is put back
// after, also when mount fails.
func TestRequestTimeoutIsSetForTheMountOnly(t *testing.T) {
	sysctl := filepath.Join(t.TempDir(), "default_request_timeout")
	if err := os.WriteFile(sysctl, []byte("7\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	read := func() string {
		b, err := os.ReadFile(sysctl)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	var during string
	err := withRequestTimeout(30, sysctl, slog.Default(), func() error { during = read(); return nil })
	if err != nil || during != "30" || read() != "7" {
		t.Errorf("during mount %q, after %q (%v); want 30 then 7", during, read(), err)
	}
	boom := errors.New("boom")
	if err := withRequestTimeout(30, sysctl, slog.Default(), func() error { return boom }); !errors.Is(err, boom) || read() != "7" {
		t.Errorf("failed mount: %v, sysctl %q after; want boom and 7", err, read())
	}
	// No timeout asked, or no sysctl: mount runs, nothing is written.
	for _, c := range []struct {
		secs int
		path string
	}{{0, sysctl}, {30, filepath.Join(t.TempDir(), "missing")}} {
		ran := false
		if err := withRequestTimeout(c.secs, c.path, slog.Default(), func() error { ran = true; return nil }); err != nil || !ran || read() != "7" {
			t.Errorf("secs %d path %s: ran %v, %v, sysctl %q", c.secs, c.path, ran, err, read())
		}
	}
}

// The real sysctl, where the kernel has it, is as it was after Mount.
func TestMountRestoresTheKernelDefault(t *testing.T) {
	before, err := os.ReadFile(defaultTimeoutSysctl)
	if errors.Is(err, os.ErrNotExist) {
		t.Skip("no FUSE request timeout in this kernel (Linux 6.14 and later)")
	}
	if err != nil {
		t.Fatal(err)
	}
	mountForTest(t, []File{{Path: "f", Content: func(ctx context.Context, pid uint32) ([]byte, error) { return nil, nil }}})
	if after, err := os.ReadFile(defaultTimeoutSysctl); err != nil || string(after) != string(before) {
		t.Errorf("%s is %q after Mount (%v), was %q", defaultTimeoutSysctl, after, err, before)
	}
}
