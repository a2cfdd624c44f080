package ocihook

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// stateJSON is the state a runtime passes for a container in bundle.
func stateJSON(t *testing.T, pid int, bundle string) string {
	t.Helper()
	data, err := json.Marshal(specs.State{Version: specs.Version, ID: "c1", Status: specs.StateCreating, Pid: pid, Bundle: bundle})
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// exitedPid is the pid of a process that has exited and been reaped.
func exitedPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestRunBadInput(t *testing.T) {
	withConfig := t.TempDir()
	writeSpec(t, withConfig, specs.Spec{Version: specs.Version, Root: &specs.Root{Path: "rootfs"}})
	for _, c := range []struct {
		name, stdin, wantErr string
	}{
		{"garbage", "garbage", "not an OCI container state"},
		{"exited pid", stateJSON(t, exitedPid(t), withConfig), "has exited"},
		{"no config.json", stateJSON(t, os.Getpid(), t.TempDir()), "has no config.json"},
	} {
		res, err := Run(Config{Mountpoint: t.TempDir()}, strings.NewReader(c.stdin))
		if err == nil || !strings.Contains(err.Error(), c.wantErr) || len(res.Bound) != 0 {
			t.Errorf("%s: %+v, %v; want an error saying %q", c.name, res, err, c.wantErr)
		}
	}
}

func TestRunSkips(t *testing.T) {
	bundle := t.TempDir()
	mp := t.TempDir()
	for _, c := range []struct {
		annotation string
		optIn      bool
		want       string
	}{
		{"false", false, "annotation cgprocfs.io/enabled=false"},
		{"", true, "opt-in mode"},
		// Enabled, but nothing serves the mount point.
		{"", false, fmt.Sprintf("no cgprocfs is mounted at %s", mp)},
		{"true", true, fmt.Sprintf("no cgprocfs is mounted at %s", mp)},
	} {
		spec := specs.Spec{Version: specs.Version, Root: &specs.Root{Path: filepath.Join(bundle, "rootfs")}}
		if c.annotation != "" {
			spec.Annotations = map[string]string{AnnotationEnabled: c.annotation}
		}
		writeSpec(t, bundle, spec)
		res, err := Run(Config{Mountpoint: mp, OptIn: c.optIn}, strings.NewReader(stateJSON(t, os.Getpid(), bundle)))
		if err != nil || !strings.Contains(res.Skipped, c.want) || res.ID != "c1" {
			t.Errorf("annotation %q, opt-in %v: %+v, %v; want skipped with %q", c.annotation, c.optIn, res, err, c.want)
		}
	}
}
