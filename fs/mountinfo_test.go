package fs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mountedAt finds cgprocfs mounts by type and unescaped mount point only.
func TestMountedAtFixture(t *testing.T) {
	lines := []string{
		`22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro`,
		`25 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw`,
		`601 22 0:77 / /var/lib/cgprocfs rw,nosuid,nodev,relatime shared:300 - fuse.cgprocfs cgprocfs rw,user_id=0,group_id=0,default_permissions,allow_other`,
		`602 22 0:78 / /tmp/with\040space/mnt rw,nosuid,nodev,relatime - fuse.cgprocfs cgprocfs rw,user_id=0,group_id=0,allow_other`,
		`603 22 0:79 / /tmp/sshfs rw,nosuid,nodev,relatime shared:301 - fuse.sshfs host:/ rw,user_id=0,group_id=0`,
		`604 22 0:80 / /tmp/lxcfs rw,nosuid,nodev,relatime shared:302 - fuse.lxcfs lxcfs rw,user_id=0,group_id=0,allow_other`,
	}
	proc := t.TempDir()
	if err := os.Mkdir(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "self", "mountinfo"), []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for mp, want := range map[string]bool{
		"/var/lib/cgprocfs":      true,
		"/tmp/with space/mnt":    true,
		`/tmp/with\040space/mnt`: false,
		"/tmp/sshfs":             false,
		"/tmp/lxcfs":             false,
		"/proc":                  false,
		"/var/lib":               false,
		"/elsewhere":             false,
	} {
		got, err := mountedAt(proc, mp)
		if err != nil {
			t.Fatalf("mountedAt(%q): %v", mp, err)
		}
		if got != want {
			t.Errorf("mountedAt(%q) = %v, want %v", mp, got, want)
		}
	}
}

func TestMountedAtUnreadable(t *testing.T) {
	if _, err := mountedAt(t.TempDir(), "/var/lib/cgprocfs"); err == nil || !strings.Contains(err.Error(), "reading mounts") {
		t.Errorf("mountedAt without a mountinfo file: %v, want a reading mounts error", err)
	}
}
