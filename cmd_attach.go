package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cgprocfs/cgprocfs/attach"
	"github.com/cgprocfs/cgprocfs/fs"
	"github.com/cgprocfs/cgprocfs/kernelfs"
)

func mountpointFlag() cli.Flag {
	return &cli.StringFlag{Name: "mountpoint", Value: DefaultMountpoint, Usage: "the cgprocfs mount whose files to bind"}
}

func attachCommand() *cli.Command {
	return &cli.Command{
		Name:         "attach",
		Usage:        "bind every served file into the containers of the given pids (over the files they have)",
		ArgsUsage:    "PID...",
		Flags:        []cli.Flag{mountpointFlag()},
		OnUsageError: oneLineUsageError,
		Action: func(c *cli.Context) error {
			pids, err := pidArgs(c)
			if err != nil {
				return err
			}
			mp, err := liveMountpoint(c.String("mountpoint"))
			if err != nil {
				return err
			}
			kfs := kernelfs.New("/proc", kernelfs.Options{})
			defer kfs.Close()
			a := &attach.Attacher{Mountpoint: mp, FS: kfs, Log: slog.Default()}
			var errs []error
			for _, pid := range pids {
				r, err := a.Attach(pid)
				fmt.Fprintf(c.App.Writer, "pid %d: %d bound, %d replaced\n", pid, r.Bound, r.Replaced)
				if err != nil {
					errs = append(errs, fmt.Errorf("pid %d: %w", pid, err))
				}
			}
			return errors.Join(errs...)
		},
	}
}

func detachCommand() *cli.Command {
	return &cli.Command{
		Name:         "detach",
		Usage:        "remove cgprocfs's binds from the containers of the given pids (or all), which then see the kernel's files",
		ArgsUsage:    "PID...|--all",
		Flags:        []cli.Flag{&cli.BoolFlag{Name: "all", Usage: "every mount namespace that holds cgprocfs binds"}},
		OnUsageError: oneLineUsageError,
		Action: func(c *cli.Context) error {
			kfs := kernelfs.New("/proc", kernelfs.Options{})
			defer kfs.Close()
			var pids []int
			if c.Bool("all") {
				if c.NArg() > 0 {
					return errors.New("detach takes pids or --all, not both")
				}
				nss, err := attach.Scan(kfs)
				if err != nil {
					return err
				}
				for _, ns := range nss {
					pids = append(pids, ns.Pid)
				}
			} else {
				var err error
				if pids, err = pidArgs(c); err != nil {
					return err
				}
			}
			var errs []error
			for _, pid := range pids {
				r, err := attach.Detach(kfs, pid)
				fmt.Fprintf(c.App.Writer, "pid %d: %d removed\n", pid, r.Removed)
				if err != nil {
					errs = append(errs, fmt.Errorf("pid %d: %w", pid, err))
				}
			}
			return errors.Join(errs...)
		},
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:         "status",
		Usage:        "print whether the mount is served, by whom, and how many containers bind it; exit 1 when not healthy",
		ArgsUsage:    "[MOUNTPOINT (default " + DefaultMountpoint + ")]",
		OnUsageError: oneLineUsageError,
		Action: func(c *cli.Context) error {
			mp := DefaultMountpoint
			if c.NArg() > 1 {
				return errors.New("status takes at most one argument, the mount point")
			}
			if c.NArg() == 1 {
				mp = c.Args().First()
			}
			mp, err := filepath.Abs(mp)
			if err != nil {
				return err
			}
			w := c.App.Writer
			h, err := fs.Probe(mp)
			if err != nil {
				return err
			}
			healthy := h == fs.Serving
			fmt.Fprintf(w, "mountpoint: %s\n", mp)
			fmt.Fprintf(w, "live: %s\n", yesNo(healthy))
			fmt.Fprintf(w, "mount: %s\n", h)
			if h == fs.Serving {
				// statfs is answered without building any content:
				// a served file must read, and soon.
				took, err := readWithin(filepath.Join(mp, statusFile), statusReadTimeout)
				healthy = healthy && err == nil
				if err != nil {
					fmt.Fprintf(w, "read: failed (%v)\n", err)
				} else {
					fmt.Fprintf(w, "read: ok (%s in %s)\n", statusFile, took.Round(time.Microsecond))
				}
			}
			if st, err := fs.ReadState(fs.StateDir, mp); err == nil {
				alive := syscall.Kill(st.ServerPid, 0) == nil
				healthy = healthy && alive
				fmt.Fprintf(w, "server-pid: %d\n", st.ServerPid)
				fmt.Fprintf(w, "server-running: %s\n", yesNo(alive))
				if st.HolderPid != 0 && st.HolderPid != st.ServerPid {
					fmt.Fprintf(w, "holder-pid: %d\n", st.HolderPid)
				}
				fmt.Fprintf(w, "version: %s\n", st.Version)
			} else {
				healthy = false
				fmt.Fprintf(w, "server-pid: unknown (%v)\n", err)
			}
			if h != fs.NotMounted {
				kfs := kernelfs.New("/proc", kernelfs.Options{})
				defer kfs.Close()
				n, err := attach.CountBinding(kfs, mp)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "containers: %d\n", n)
			}
			if !healthy {
				return cli.Exit("", 1)
			}
			return nil
		},
	}
}

// statusFile is what `cgprocfs status` reads through the mount, within
// statusReadTimeout.
const (
	statusFile        = "proc/meminfo"
	statusReadTimeout = time.Second
)

// readWithin reads the file at p and says how long it took; past timeout
// it gives up (the read stays blocked in its goroutine until the daemon
// answers or the process exits).
func readWithin(p string, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		data, err := os.ReadFile(p)
		if err == nil && len(data) == 0 {
			err = errors.New("empty")
		}
		done <- err
	}()
	select {
	case err := <-done:
		return time.Since(start), err
	case <-time.After(timeout):
		return timeout, fmt.Errorf("no answer within %s", timeout)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func pidArgs(c *cli.Context) ([]int, error) {
	if c.NArg() == 0 {
		return nil, errors.New("give at least one pid")
	}
	var pids []int
	for _, a := range c.Args().Slice() {
		pid, err := strconv.Atoi(a)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("not a pid: %q", a)
		}
		if _, err := os.Stat("/proc/" + a); err != nil {
			return nil, fmt.Errorf("no process %d", pid)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// liveMountpoint checks that a live cgprocfs serves mp.
func liveMountpoint(mp string) (string, error) {
	mp, err := filepath.Abs(mp)
	if err != nil {
		return "", err
	}
	h, err := fs.Probe(mp)
	if err != nil {
		return "", err
	}
	if h != fs.Serving {
		return "", fmt.Errorf("the cgprocfs at %s is %s", mp, h)
	}
	return mp, nil
}
