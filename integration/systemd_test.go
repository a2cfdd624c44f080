package integration

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The shipped unit passes systemd-analyze verify, with its ExecStart pointed
// at the binary under test, as make install points it at the installed one.
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed")
	}
	unit, err := os.ReadFile("../deploy/systemd/cgprocfs.service")
	if err != nil {
		t.Skipf("the unit file is not here (the VM runs the tests without the repository): %v", err)
	}
	for _, want := range []string{"Type=notify", "Restart=always", "OOMScoreAdjust=-"} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	p := filepath.Join(t.TempDir(), "cgprocfs.service")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/cgprocfs", binary)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", p).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// Under a notify supervisor the daemon says READY=1 once a read through its
// mount works, and not before.
func TestNotifiesReadyAfterMount(t *testing.T) {
	needRoot(t)
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	d := startDaemon(t)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("supervisor got %q, %v; daemon log:\n%s", buf[:n], err, d.logs())
	}
	if _, err := os.ReadFile(d.Path("proc/meminfo")); err != nil {
		t.Fatalf("ready, yet a read fails: %v", err)
	}
}
