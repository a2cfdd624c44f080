package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestSeccompProfileCommand(t *testing.T) {
	// No base: allow everything, notify sysinfo, the default listener.
	_, out, err := runCLI(t, "seccomp-profile")
	if err != nil {
		t.Fatal(err)
	}
	var p specs.LinuxSeccomp
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if p.DefaultAction != specs.ActAllow || p.ListenerPath != DefaultSeccompListener || len(p.Syscalls) != 1 ||
		p.Syscalls[0].Action != specs.ActNotify || p.Syscalls[0].Names[0] != "sysinfo" {
		t.Errorf("profile without a base: %s", out)
	}

	// A base in the runtime-spec's format, another listener.
	base := filepath.Join(t.TempDir(), "base.json")
	if err := os.WriteFile(base, []byte(`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read","sysinfo"],"action":"SCMP_ACT_ALLOW"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, out, err = runCLI(t, "seccomp-profile", "--base", base, "--listener", "/run/x.sock")
	if err != nil {
		t.Fatal(err)
	}
	p = specs.LinuxSeccomp{}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("%v in %q", err, out)
	}
	if p.ListenerPath != "/run/x.sock" || len(p.Syscalls) != 2 || len(p.Syscalls[0].Names) != 1 || p.Syscalls[1].Action != specs.ActNotify {
		t.Errorf("profile from a base: %s", out)
	}
}

func TestSeccompProfileRefuses(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"defaultAction":"SCMP_ACT_ERRNO"}`), 0o644)
	garbage := filepath.Join(dir, "garbage.json")
	os.WriteFile(garbage, []byte("not json"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--base", filepath.Join(dir, "missing.json")}, "reading the base profile"},
		{[]string{"--base", garbage}, "garbage.json: not a JSON object"},
		{[]string{"--base", bad}, "does not let sysinfo run"},
		{[]string{"--listener", "relative.sock"}, `--listener must be an absolute path`},
		{[]string{"--listener", ""}, `--listener must be an absolute path`},
		{[]string{"profile.json"}, "takes no arguments"},
	} {
		_, out, err := runCLI(t, append([]string{"seccomp-profile"}, c.args...)...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("seccomp-profile %v: %v, want an error containing %q", c.args, err, c.want)
		}
		if out != "" {
			t.Errorf("seccomp-profile %v printed %q besides the error", c.args, out)
		}
	}
}

func TestNRISysinfoNeedsAListener(t *testing.T) {
	_, _, err := runCLI(t, "mount", "--nri", "--nri-sysinfo", "--seccomp-listener", "", "/mnt")
	if err == nil || !strings.Contains(err.Error(), "--nri-sysinfo") {
		t.Errorf("--nri-sysinfo without a listener: %v", err)
	}
	cfg, _, err := runCLI(t, "mount", "--nri", "--nri-sysinfo", "/mnt")
	if err != nil || !cfg.nri.sysinfo {
		t.Errorf("--nri-sysinfo: %v, %+v", err, cfg)
	}
}
