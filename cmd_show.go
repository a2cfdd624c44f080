package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/kernelfs"
	"github.com/cgprocfs/cgprocfs/provider"
)

func showCommand() *cli.Command {
	return &cli.Command{
		Name:  "show",
		Usage: "print what a process's container sees in served files, computed here from the host without entering it",
		Description: "FILE is a path under the mount, such as proc/meminfo or /proc/stat. The content comes from the\n" +
			"same code the daemon serves it with, for --pid's container or for the cgroup --cgroup names (as a\n" +
			"process of the host's pid namespace in it would see it). Load averages need the daemon's\n" +
			"sampling history, which this command lacks: they start at 0 here.",
		ArgsUsage: "FILE...",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "pid", Usage: "the process whose view to show (its container's, as a read through the mount would get)"},
			&cli.StringFlag{Name: "cgroup", Usage: "a cgroup path from the hierarchy's root (/system.slice/docker-ID.scope) whose view to show"},
			&cli.BoolFlag{Name: "explain", Usage: "after each file, the cgroup and host files and values its computed lines came from"},
			&cli.StringFlag{Name: "cgroup-root", Value: "/sys/fs/cgroup", Usage: "as for mount"},
			&cli.StringFlag{Name: "proc-root", Value: "/proc", Usage: "as for mount"},
			&cli.UintFlag{Name: "active-file-used-percent", Value: 0, Usage: "as for mount: give the daemon's value"},
			&cli.BoolFlag{Name: "hide-swap", Usage: "as for mount"},
			&cli.BoolFlag{Name: "cpus-from-quota", Value: true, Usage: "as for mount"},
		},
		OnUsageError: oneLineUsageError,
		Action:       runShow,
	}
}

func runShow(c *cli.Context) error {
	if c.NArg() == 0 {
		return errors.New("show: name at least one FILE, such as proc/meminfo")
	}
	if c.IsSet("pid") == c.IsSet("cgroup") {
		return errors.New("show: give exactly one of --pid PID and --cgroup PATH")
	}
	if c.Uint("active-file-used-percent") > 100 {
		return fmt.Errorf("--active-file-used-percent must be 0 to 100, not %d", c.Uint("active-file-used-percent"))
	}
	pid := c.Int("pid")
	if c.IsSet("pid") {
		if pid <= 0 {
			return fmt.Errorf("--pid must be a process id, not %d", pid)
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
			return fmt.Errorf("no process %d (gone, or never was)", pid)
		}
	}
	// Warnings only: the provider's info lines are the daemon's business.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	kfs := kernelfs.New("/proc", kernelfs.Options{})
	defer kfs.Close()
	cgroups, err := cgroupview.New(c.String("cgroup-root"), kfs)
	if err != nil {
		return err
	}
	var resolver provider.Resolver
	if c.IsSet("cgroup") {
		cg, err := namedCgroup(cgroups.Hierarchy(), c.String("cgroup"))
		if err != nil {
			return err
		}
		self := os.Getpid()
		pid = self
		resolver = fixedCaller{&caller.Caller{Pid: self, HostNS: true, InitPid: self, Cgroup: cg}}
	} else if resolver, err = caller.NewResolver(cgroups, kfs); err != nil {
		return err
	}
	p := provider.New(provider.Config{
		Cgroups: cgroups, Resolver: resolver, FS: kfs, Logger: log,
		ProcRoot: c.String("proc-root"),
		Memory: provider.MemoryPolicy{
			ActiveFileUsedPercent: uint64(c.Uint("active-file-used-percent")),
			HideSwap:              c.Bool("hide-swap"),
		},
		CPUsFromQuota: c.Bool("cpus-from-quota"),
		// Counting threads: nothing to load for one reading.
		Load: provider.LoadConfig{Enabled: true, Counter: "threads"},
	})
	defer p.Close()

	served := map[string]func(context.Context, uint32) ([]byte, error){}
	var names []string
	for _, f := range p.Files() {
		if f.Dir != nil {
			// A file under a served directory: sys/block/sda/stat.
			names = append(names, f.Path+"/...")
			continue
		}
		names = append(names, f.Path)
	}
	files := c.Args().Slice()
	for i, f := range files {
		files[i] = strings.TrimPrefix(path.Clean("/"+f), "/")
		if served[files[i]] = p.Content(files[i]); served[files[i]] == nil {
			return fmt.Errorf("%s is not a served file; these are: %s", f, strings.Join(names, " "))
		}
	}
	w := c.App.Writer
	for i, f := range files {
		var data []byte
		var why string
		if c.Bool("explain") {
			data, why, err = p.Explain(context.Background(), uint32(pid), f)
		} else {
			data, err = served[f](context.Background(), uint32(pid))
		}
		if err != nil {
			if errors.Is(err, caller.ErrGone) {
				return fmt.Errorf("process %d is gone: %w", pid, err)
			}
			return fmt.Errorf("%s: %w", f, err)
		}
		if len(files) > 1 || c.Bool("explain") {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "==> %s <==\n", f)
		}
		w.Write(data)
		if why != "" {
			fmt.Fprintf(w, "--- where the computed lines of %s came from:\n%s", f, why)
		}
	}
	return nil
}

// namedCgroup is the cgroup at p (from the hierarchy's root), which must
// exist.
func namedCgroup(h *cgroupview.Hierarchy, p string) (*cgroupview.Cgroup, error) {
	p = path.Clean("/" + p)
	cg := cgroupview.NewCgroup(h, p)
	dir, err := cg.Dir(cgroupview.MemoryResource)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("no cgroup %s (%s is not a directory)", p, dir)
	}
	return cg, nil
}

// fixedCaller answers every pid with one caller: a process of the host's
// pid namespace in the cgroup --cgroup names.
type fixedCaller struct{ c *caller.Caller }

func (r fixedCaller) Resolve(int) (*caller.Caller, error) { return r.c, nil }
func (r fixedCaller) Forget()                             {}
