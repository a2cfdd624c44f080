package main

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

// runCLI runs the real app with the mount command's action replaced by one
// that only records the config, so nothing touches the host.
func runCLI(t *testing.T, args ...string) (cfg *mountConfig, out string, err error) {
	t.Helper()
	app := newApp()
	var buf bytes.Buffer
	app.Writer, app.ErrWriter = &buf, &buf
	for _, c := range app.Commands {
		if c.Name == "mount" {
			c.Action = func(c *cli.Context) error {
				got, err := configFromFlags(c)
				cfg = &got
				return err
			}
		}
	}
	err = app.Run(append([]string{"cgprocfs"}, args...))
	return cfg, buf.String(), err
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-v"}, {"version"}} {
		_, out, err := runCLI(t, args...)
		if err != nil || out != "cgprocfs version "+version+"\n" {
			t.Errorf("cgprocfs %v: %q, %v; want the version line", args, out, err)
		}
	}
}

func TestBadFlagsAreRefused(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--log-level", "loud"}, `--log-level must be debug, info, warn or error, not "loud"`},
		{[]string{"--loadavg-counter", "psi"}, `--loadavg-counter must be auto, bpf, threads or cgroupstats, not "psi"`},
		{[]string{"--loadavg-idle-timeout", "-1s"}, `--loadavg-idle-timeout must be 0 (never) or a positive duration, not "-1s"`},
		{[]string{"--active-file-used-percent", "101"}, `--active-file-used-percent must be 0 to 100, not "101"`},
		{[]string{"--gomaxprocs", "-1"}, `--gomaxprocs must be 0 (Go's default) or a positive number, not "-1"`},
		{[]string{"--loadavg-idle-timeout", "soon"}, `invalid value "soon"`},
		{[]string{"--no-such-flag"}, "not defined"},
	} {
		cfg, out, err := runCLI(t, append(append([]string{"mount"}, c.args...), "/mnt")...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("mount %v: %v, want an error containing %q", c.args, err, c.want)
		}
		if cfg != nil {
			t.Errorf("mount %v reached the action", c.args)
		}
		if out != "" {
			t.Errorf("mount %v printed %q besides the error", c.args, out)
		}
	}
}

func TestConfigFromFlags(t *testing.T) {
	cfg, _, err := runCLI(t, "mount", "--log-level", "DEBUG", "--loadavg-idle-timeout", "0", "--active-file-used-percent", "100",
		"--loadavg-counter", "threads", "--hide-swap", "--cpus-from-quota=false", "rel/mnt")
	if err != nil {
		t.Fatal(err)
	}
	abs, err := filepath.Abs("rel/mnt")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.mountpoint != abs || cfg.logLevel != slog.LevelDebug || cfg.cgroupRoot != "/sys/fs/cgroup" {
		t.Errorf("config %+v", cfg)
	}
	p := cfg.provider
	if p.ProcRoot != "/proc" || p.Memory.ActiveFileUsedPercent != 100 || !p.Memory.HideSwap || p.CPUsFromQuota ||
		!p.Load.Enabled || p.Load.IdleTimeout != 0 || p.Load.Counter != "threads" {
		t.Errorf("provider config %+v", p)
	}

	cfg, _, err = runCLI(t, "mount")
	if err != nil || cfg.mountpoint != DefaultMountpoint || cfg.provider.Load.IdleTimeout != time.Hour || cfg.logLevel != slog.LevelInfo {
		t.Errorf("defaults: %+v, %v", cfg, err)
	}
	if _, _, err := runCLI(t, "mount", "a", "b"); err == nil || !strings.Contains(err.Error(), "at most one") {
		t.Errorf("two mount points: %v", err)
	}
}
