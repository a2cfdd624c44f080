package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/fs"
	"github.com/cgprocfs/cgprocfs/kernelfs"
	"github.com/cgprocfs/cgprocfs/provider"
)

// DefaultMountpoint is where cgprocfs mounts when given no mount point.
const DefaultMountpoint = "/var/lib/cgprocfs"

func mountCommand() *cli.Command {
	return &cli.Command{
		Name:      "mount",
		Usage:     "mount and serve in the foreground until SIGINT or SIGTERM",
		ArgsUsage: "[MOUNTPOINT (default " + DefaultMountpoint + ")]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cgroup-root", Value: "/sys/fs/cgroup", Usage: "where the cgroup hierarchy is mounted (v1 controller directories or a v2 tree)"},
			&cli.StringFlag{Name: "proc-root", Value: "/proc", Usage: "where host data (meminfo, stat, ...) is read from; callers are always looked up in /proc"},
			&cli.UintFlag{Name: "active-file-used-percent", Value: 0, Usage: "count this share (0-100) of a container's active file pages (its working set) as used memory"},
			&cli.BoolFlag{Name: "hide-swap", Usage: "show containers no swap (SwapTotal 0, empty /proc/swaps)"},
			&cli.BoolFlag{Name: "cpus-from-quota", Value: true, Usage: "show a container no more CPUs than its CFS quota rounded up (--cpus-from-quota=false: its cpuset only)"},
			&cli.BoolFlag{Name: "loadavg", Value: true, Usage: "per-container /proc/loadavg (--loadavg=false: the host's)"},
			&cli.DurationFlag{Name: "loadavg-idle-timeout", Value: time.Hour, Usage: "stop tracking a container's load after this long without a read of its /proc/loadavg (0: never)"},
			&cli.StringFlag{Name: "loadavg-counter", Value: "auto", Usage: "how to count R and D threads: bpf (thread list + one BPF task iterator run per round: exact, cheapest; needs kernel BTF, 5.14+, CAP_BPF), threads (thread list + /proc/<tid>/stat: exact), cgroupstats (netlink, cgroup v1 only; misses killable or freezable D sleeps that are not I/O waits), auto (bpf where it loads, else threads)"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error"},
			&cli.BoolFlag{Name: "fuse-debug", Usage: "log every FUSE request"},
			// For profiling the read path under `make bench`.
			&cli.StringFlag{Name: "cpuprofile", Hidden: true, Usage: "write a CPU profile to this file until exit"},
		},
		Action: runMount,
	}
}

func runMount(c *cli.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	if p := c.String("cpuprofile"); p != "" {
		f, err := os.Create(p)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}

	mountpoint := DefaultMountpoint
	switch c.NArg() {
	case 0:
	case 1:
		mountpoint = c.Args().First()
	default:
		return errors.New("mount takes at most one argument, the mount point")
	}
	mountpoint, err := filepath.Abs(mountpoint)
	if err != nil {
		return err
	}
	if lc := c.String("loadavg-counter"); lc != "auto" && lc != "bpf" && lc != "threads" && lc != "cgroupstats" {
		return fmt.Errorf("--loadavg-counter must be auto, bpf, threads or cgroupstats, not %q", lc)
	}
	if pct := c.Uint("active-file-used-percent"); pct > 100 {
		return fmt.Errorf("--active-file-used-percent must be 0 to 100, not %d", pct)
	}

	if os.Geteuid() != 0 {
		return errors.New("cgprocfs mount must run as root (it mounts a filesystem that every user may read)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("/dev/fuse is missing (load the fuse module: modprobe fuse): %w", err)
	}
	// Callers are always looked up in the real /proc; --proc-root only
	// moves where host data comes from.
	kfs := kernelfs.New("/proc", kernelfs.Options{})
	defer kfs.Close()
	cgroups, err := cgroupview.New(c.String("cgroup-root"), kfs)
	if err != nil {
		return err
	}
	h := cgroups.Hierarchy()
	if err := claimMountpoint(mountpoint, log); err != nil {
		return err
	}
	resolver, err := caller.NewResolver(cgroups, kfs)
	if err != nil {
		return err
	}
	p := provider.New(provider.Config{
		Cgroups:  cgroups,
		Resolver: resolver,
		FS:       kfs,
		ProcRoot: c.String("proc-root"),
		Memory: provider.MemoryPolicy{
			ActiveFileUsedPercent: uint64(c.Uint("active-file-used-percent")),
			HideSwap:              c.Bool("hide-swap"),
		},
		Logger:        log,
		CPUsFromQuota: c.Bool("cpus-from-quota"),
		Load: provider.LoadConfig{
			Enabled:     c.Bool("loadavg"),
			IdleTimeout: c.Duration("loadavg-idle-timeout"),
			Counter:     c.String("loadavg-counter"),
		},
	})
	server, err := fs.Mount(mountpoint, p.Files(), fs.Options{Logger: log, Debug: c.Bool("fuse-debug")})
	if err != nil {
		return fmt.Errorf("mounting %s: %w", mountpoint, err)
	}
	log.Info("serving", "mountpoint", mountpoint, "cgroup", h.Mode.String(), "cgroup-root", h.Root, "version", version)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer p.Close()
	served := make(chan struct{})
	go func() { server.Wait(); close(served) }()
	select {
	case <-ctx.Done():
		log.Info("signal received, unmounting", "mountpoint", mountpoint)
		if err := syscall.Unmount(mountpoint, 0); err != nil {
			// Busy: a container still bind-mounts a file, or a reader
			// holds one open. Detach so the mount goes away as its
			// users do; our exit ends the FUSE connection.
			log.Warn("unmount failed, detaching", "err", err)
			if err := syscall.Unmount(mountpoint, syscall.MNT_DETACH); err != nil {
				return fmt.Errorf("detaching %s: %w", mountpoint, err)
			}
			return nil
		}
		select {
		case <-served:
		case <-time.After(time.Second):
		}
	case <-served:
		log.Warn("mount went away", "mountpoint", mountpoint)
	}
	return nil
}

// claimMountpoint makes mountpoint ready: created if missing, a stale
// cgprocfs mount left by a crash detached, a live one refused.
func claimMountpoint(mountpoint string, log *slog.Logger) error {
	mounted, err := isCgprocfsMount(mountpoint)
	if err != nil {
		return err
	}
	if mounted {
		if live(mountpoint) {
			return fmt.Errorf("a live cgprocfs already serves %s", mountpoint)
		}
		log.Warn("replacing stale cgprocfs mount", "mountpoint", mountpoint)
		if err := syscall.Unmount(mountpoint, syscall.MNT_DETACH); err != nil {
			return fmt.Errorf("detaching stale mount %s: %w", mountpoint, err)
		}
	}
	if err := os.MkdirAll(mountpoint, 0o755); err != nil {
		return fmt.Errorf("creating mount point: %w", err)
	}
	return nil
}

// live tells whether the filesystem at mountpoint answers. A dead FUSE
// daemon's mount answers ENOTCONN at once; a hung one is treated as live.
// statfs always reaches the daemon, where stat may be answered from the
// kernel's attribute cache.
func live(mountpoint string) bool {
	done := make(chan error, 1)
	go func() {
		var st syscall.Statfs_t
		done <- syscall.Statfs(mountpoint, &st)
	}()
	select {
	case err := <-done:
		return !errors.Is(err, syscall.ENOTCONN) && !errors.Is(err, syscall.ECONNABORTED)
	case <-time.After(2 * time.Second):
		return true
	}
}
