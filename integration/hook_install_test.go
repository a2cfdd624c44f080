package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// makeInstall runs `make install` or `make uninstall` with the repository's
// Makefile in dir, into destdir with PREFIX /opt/cgp, installing the binary
// under test.
func makeInstall(t *testing.T, dir, target, destdir string) {
	t.Helper()
	makefile, err := filepath.Abs("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("make", "-s", "-C", dir, "-f", makefile, target, "DESTDIR="+destdir, "PREFIX=/opt/cgp", "BINARY="+binary)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make %s: %v\n%s", target, err, out)
	}
}

func TestHookMakeInstall(t *testing.T) {
	needRoot(t)
	if !exists("../Makefile") || !exists("../deploy/oci-hooks.d/cgprocfs.json") {
		t.Skip("no repository here (the cgroup v2 VM runs the test binary alone)")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	// The repository as it is, and a copy of deploy/ with a systemd unit
	// (written in another change) to see it installed with the prefix.
	withUnit := t.TempDir()
	if err := os.CopyFS(filepath.Join(withUnit, "deploy"), os.DirFS("../deploy")); err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(withUnit, "deploy/systemd/cgprocfs.service")
	if err := os.MkdirAll(filepath.Dir(unit), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(unit, []byte("[Service]\nExecStart=/usr/local/bin/cgprocfs mount\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{"..", withUnit} {
		dest := t.TempDir()
		makeInstall(t, src, "install", dest)
		bin := filepath.Join(dest, "opt/cgp/bin/cgprocfs")
		if st, err := os.Stat(bin); err != nil || st.Mode().Perm() != 0o755 {
			t.Fatalf("installed binary: %v, %v", st, err)
		}
		if out, err := exec.Command(bin, "oci-hook", "--help").CombinedOutput(); err != nil || !strings.Contains(string(out), "--mountpoint") {
			t.Errorf("installed binary: oci-hook --help: %v\n%s", err, out)
		}
		hooksFile := filepath.Join(dest, "usr/share/containers/oci/hooks.d/cgprocfs.json")
		data, err := os.ReadFile(hooksFile)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Version string     `json:"version"`
			Hook    specs.Hook `json:"hook"`
			Stages  []string   `json:"stages"`
		}
		if err := json.Unmarshal(data, &f); err != nil {
			t.Fatalf("installed hooks file: %v\n%s", err, data)
		}
		if f.Hook.Path != "/opt/cgp/bin/cgprocfs" || !slices.Equal(f.Hook.Args, []string{"cgprocfs", "oci-hook"}) || f.Version != "1.0.0" || !slices.Equal(f.Stages, []string{"createContainer"}) {
			t.Errorf("installed hooks file, want the path under PREFIX:\n%s", data)
		}
		installedUnit := filepath.Join(dest, "etc/systemd/system/cgprocfs.service")
		if exists(filepath.Join(src, "deploy/systemd/cgprocfs.service")) {
			data, err := os.ReadFile(installedUnit)
			if err != nil || !strings.Contains(string(data), "ExecStart=/opt/cgp/bin/cgprocfs mount") {
				t.Errorf("installed unit from %s: %v\n%s", src, err, data)
			}
		} else if exists(installedUnit) {
			t.Errorf("a unit was installed from %s, which has none", src)
		}

		makeInstall(t, src, "uninstall", dest)
		for _, p := range []string{bin, hooksFile, installedUnit} {
			if exists(p) {
				t.Errorf("make uninstall left %s", p)
			}
		}
	}
}
