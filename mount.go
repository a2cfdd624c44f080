package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"
	"github.com/urfave/cli/v2"

	"github.com/cgprocfs/cgprocfs/attach"
	"github.com/cgprocfs/cgprocfs/caller"
	"github.com/cgprocfs/cgprocfs/cgroupview"
	"github.com/cgprocfs/cgprocfs/fs"
	"github.com/cgprocfs/cgprocfs/holder"
	"github.com/cgprocfs/cgprocfs/kernelfs"
	"github.com/cgprocfs/cgprocfs/metrics"
	"github.com/cgprocfs/cgprocfs/provider"
)

// DefaultMountpoint is where cgprocfs mounts when given no mount point.
const DefaultMountpoint = "/var/lib/cgprocfs"

func mountCommand() *cli.Command {
	return &cli.Command{
		Name:      "mount",
		Usage:     "mount and serve in the foreground until SIGINT or SIGTERM",
		ArgsUsage: "[MOUNTPOINT (default " + DefaultMountpoint + ")]",
		Flags: append([]cli.Flag{
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
			&cli.IntFlag{Name: "max-open-per-container", Value: fs.DefaultMaxOpenPerOwner, Usage: "how many served files one container (memory cgroup) may hold open at once; past it its opens fail with EMFILE (0: no cap)"},
			&cli.Int64Flag{Name: "max-snapshot-bytes-per-container", Value: fs.DefaultMaxBytesPerOwner, Usage: "how many bytes of open files' content one container may hold in the daemon; past it its opens fail with EMFILE (0: no cap)"},
			&cli.DurationFlag{Name: "fuse-request-timeout", Value: fs.DefaultRequestTimeout, Usage: "ask the kernel (6.14+) to abort the connection when a request stays unanswered this long, so a hung daemon fails its readers instead of hanging them (0: never)"},
			&cli.IntFlag{Name: "gomaxprocs", Value: 1, Usage: "run the daemon's Go code on at most this many CPUs at once (0: Go's default, every CPU it may use); a read is a ping-pong of short requests, which one P and one reader of /dev/fuse answer fastest and with the least CPU (README, Speed)"},
			&cli.BoolFlag{Name: "io-uring", Usage: "serve through FUSE over io_uring (Linux 6.14+; turns the fuse module's enable_uring parameter on): each request is answered on its caller's CPU, about twice the reads/s of /dev/fuse with one reader (README, Speed); needs --holder=false, as the kernel cannot hand a request sent over io_uring to a restarted server"},
			&cli.BoolFlag{Name: "holder", Value: true, Usage: "keep the FUSE connection in this process and serve from a child, restarted without failing any read when it dies; SIGHUP upgrades to the binary at this path (--holder=false: one process, which the mount does not outlive)"},
			&cli.StringFlag{Name: "seccomp-listener", Value: DefaultSeccompListener, Usage: "answer containers' sysinfo(2) as the seccomp agent on this socket, a seccomp profile's listenerPath (empty: off)"},
			// For profiling the read path under `make bench`.
			&cli.StringFlag{Name: "cpuprofile", Hidden: true, Usage: "write a CPU profile to this file until exit"},
		}, append(nriFlags(), observabilityFlags()...)...),
		OnUsageError: oneLineUsageError,
		// Before the action, so that a bad value stops the daemon before
		// it touches the host.
		Before: validateFlags,
		Action: runMount,
	}
}

// validateFlags refuses the flag values the parser accepts but the daemon
// cannot use, naming the first such flag and what it takes.
func validateFlags(c *cli.Context) error {
	_, levelOK := logLevel(c.String("log-level"))
	for _, f := range []struct {
		name string
		ok   bool
		want string
	}{
		{"log-level", levelOK, "debug, info, warn or error"},
		{"loadavg-counter", slices.Contains([]string{"auto", "bpf", "threads", "cgroupstats"}, c.String("loadavg-counter")), "auto, bpf, threads or cgroupstats"},
		{"loadavg-idle-timeout", c.Duration("loadavg-idle-timeout") >= 0, "0 (never) or a positive duration"},
		{"fuse-request-timeout", c.Duration("fuse-request-timeout") >= 0, "0 (never) or a positive duration"},
		{"max-open-per-container", c.Int("max-open-per-container") >= 0, "0 (no cap) or a positive number"},
		{"gomaxprocs", c.Int("gomaxprocs") >= 0, "0 (Go's default) or a positive number"},
		{"max-snapshot-bytes-per-container", c.Int64("max-snapshot-bytes-per-container") >= 0, "0 (no cap) or a positive number"},
		{"active-file-used-percent", c.Uint("active-file-used-percent") <= 100, "0 to 100"},
		{"seccomp-listener", validListener(c.String("seccomp-listener")), "empty (off) or an absolute path under 108 bytes"},
		{"nri-sysinfo", !c.Bool("nri-sysinfo") || c.String("seccomp-listener") != "", "off when --seccomp-listener is empty (no agent to send sysinfo to)"},
		{"io-uring", !c.Bool("io-uring") || !c.Bool("holder"), "off unless --holder=false is given too (the kernel cannot hand a request sent over io_uring to a restarted server, so the holder could not keep reads from failing)"},
	} {
		if !f.ok {
			return fmt.Errorf("--%s must be %s, not %q", f.name, f.want, fmt.Sprint(c.Value(f.name)))
		}
	}
	return checkObservabilityFlags(c)
}

// logLevel maps a --log-level name, in any case, to its level.
func logLevel(name string) (slog.Level, bool) {
	switch strings.ToLower(name) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return 0, false
}

// mountConfig is what `cgprocfs mount` was asked to do.
type mountConfig struct {
	mountpoint string
	cgroupRoot string
	logLevel   slog.Level
	logFormat  string
	// metricsListen is where metrics are served ("": nowhere);
	// metricsAll covers every cgroup rather than those read lately.
	metricsListen    string
	metricsListenSet bool
	metricsAll       bool
	// fsOptions are the FUSE tree's options but for its logger.
	fsOptions  fs.Options
	cpuprofile string
	// seccompListener is the seccomp agent's socket; empty: no agent.
	seccompListener string
	// Without Cgroups, Resolver, FS and Logger, which come from the host.
	provider provider.Config
	nri      nriConfig
}

// configFromFlags builds the config from flags validateFlags accepted and
// the mount point argument.
func configFromFlags(c *cli.Context) (mountConfig, error) {
	mountpoint := DefaultMountpoint
	switch c.NArg() {
	case 0:
	case 1:
		mountpoint = c.Args().First()
	default:
		return mountConfig{}, errors.New("mount takes at most one argument, the mount point")
	}
	mountpoint, err := filepath.Abs(mountpoint)
	if err != nil {
		return mountConfig{}, fmt.Errorf("mount point %s: %w", mountpoint, err)
	}
	level, _ := logLevel(c.String("log-level"))
	return mountConfig{
		mountpoint:    mountpoint,
		cgroupRoot:    c.String("cgroup-root"),
		logLevel:      level,
		logFormat:     c.String("log-format"),
		metricsListen: c.String("metrics-listen"),
		// Only an address asked for is worth failing the mount over.
		metricsListenSet: c.IsSet("metrics-listen"),
		metricsAll:       c.Bool("metrics-all-cgroups"),
		fsOptions: fs.Options{
			Debug:            c.Bool("fuse-debug"),
			RequestTimeout:   zeroIsNone(c.Duration("fuse-request-timeout")),
			MaxOpenPerOwner:  int(zeroIsNone(int64(c.Int("max-open-per-container")))),
			MaxBytesPerOwner: zeroIsNone(c.Int64("max-snapshot-bytes-per-container")),
			IOUring:          c.Bool("io-uring"),
		},
		cpuprofile:      c.String("cpuprofile"),
		seccompListener: c.String("seccomp-listener"),
		provider: provider.Config{
			ProcRoot: c.String("proc-root"),
			Memory: provider.MemoryPolicy{
				ActiveFileUsedPercent: uint64(c.Uint("active-file-used-percent")),
				HideSwap:              c.Bool("hide-swap"),
			},
			CPUsFromQuota: c.Bool("cpus-from-quota"),
			Load: provider.LoadConfig{
				Enabled:     c.Bool("loadavg"),
				IdleTimeout: c.Duration("loadavg-idle-timeout"),
				Counter:     c.String("loadavg-counter"),
			},
			ContainerIdle: c.Duration("loadavg-idle-timeout"),
		},
		nri: nriConfigFromFlags(c),
	}, nil
}

func runMount(c *cli.Context) error {
	cfg, err := configFromFlags(c)
	if err != nil {
		return err
	}
	h, _ := logHandler(os.Stderr, cfg.logFormat, cfg.logLevel)
	log := slog.New(h)
	slog.SetDefault(log)
	procs := c.Int("gomaxprocs")
	if cfg.fsOptions.IOUring && !c.IsSet("gomaxprocs") {
		// Each CPU's queue has a thread of its own, which needs a P
		// of its own to answer without waiting for another's.
		procs = 0
	}
	setMaxProcs(procs)
	link, err := holder.FromEnv()
	if err != nil {
		return err
	}
	if link == nil && c.Bool("holder") {
		return runHolder(cfg, log)
	}
	if cfg.cpuprofile != "" {
		stop, err := startCPUProfile(cfg.cpuprofile)
		if err != nil {
			return err
		}
		defer stop()
	}
	return serve(cfg, log, link)
}

// setMaxProcs applies --gomaxprocs: n > 0 caps the CPUs that run Go code
// at once, 0 leaves Go's default. It runs before the FUSE server starts, so
// that fsOptions and go-fuse's reader pool follow it.
//
// Serving a read is a ping-pong: the reader waits while the daemon answers
// OPEN, READ and the READ that finds the end, each a few microseconds of
// work between blocking reads of /dev/fuse. With one P the thread that read
// a request answers it; with more, each request also cost wake-ups and
// context switches across CPUs (5.2 against 3.3 per read). On the bench's 2
// CPUs, one P against the two spare ones fs.Mount used to add: 1.2x to 1.9x
// the reads/s with 1 and with 8 readers, and half the daemon's CPU per read
// (make bench, one run, both side by side); two or three Ps were as slow as
// four. The content a request builds is mostly short syscalls, so one P
// serves some 23,000 meminfo reads/s here; the background work (load
// rounds, thread scans, the descriptor sweep) yields as it goes. With one P
// the FUSE tree also reads with one goroutine (fsOptions, fs.Options.Readers).
func setMaxProcs(n int) {
	if n > 0 {
		runtime.GOMAXPROCS(n)
	}
}

// runHolder runs this process as the holder of the mount's connection, and
// the binary at its path, with the same arguments, as its server.
func runHolder(cfg mountConfig, log *slog.Logger) error {
	if err := checkHost(); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("finding this binary to run the server: %w", err)
	}
	err = holder.Run(holder.Config{Exe: exe, Args: os.Args[1:], Mountpoint: cfg.mountpoint, Log: log})
	if se := (*holder.ServerExit)(nil); errors.As(err, &se) {
		return cli.Exit("", max(se.Code, 1))
	}
	return err
}

// serve mounts, or adopts the holder's connection (link, nil without a
// holder), and serves until SIGINT or SIGTERM.
func serve(cfg mountConfig, log *slog.Logger, link *holder.Link) error {
	// Caught from here on, so that a signal during the set-up still ends
	// in an unmount rather than a stale mount.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	defer passUpgrades(link, log)()
	if err := checkHost(); err != nil {
		return err
	}
	if link != nil {
		defer endWithHolder(cfg.mountpoint, log)()
	}
	var adopt *fs.Conn
	// In an upgrade the old server still serves: what cannot be shared
	// (listening sockets, the NRI plugin) starts once it is gone.
	var predecessorGone <-chan struct{}
	if link != nil {
		adopt = link.Adopt
		if link.Predecessor != 0 {
			predecessorGone = link.PredecessorGone(ctx)
		}
	}
	// Callers are always looked up in the real /proc; --proc-root only
	// moves where host data comes from.
	kfs := kernelfs.New("/proc", kernelfs.Options{})
	defer kfs.Close()
	cgroups, err := cgroupview.New(cfg.cgroupRoot, kfs)
	if err != nil {
		return err
	}
	if adopt == nil {
		if err := fs.ClaimMountpoint(cfg.mountpoint, log); err != nil {
			return err
		}
	}
	m, stopMetrics, err := startMetrics(cfg.metricsListen, cfg.metricsListenSet, log, predecessorGone)
	if err != nil {
		return err
	}
	defer stopMetrics()
	resolver, err := caller.NewResolver(cgroups, kfs)
	if err != nil {
		return err
	}
	pc := cfg.provider
	pc.Cgroups, pc.Resolver, pc.FS, pc.Logger = cgroups, resolver, kfs, log
	fo := fsOptions(cfg, log)
	if m != nil {
		pc.Observer, fo.Observer = m, m
	}
	p := provider.New(pc)
	defer p.Close()
	if m != nil {
		m.WatchContainers(func() []provider.ContainerStats { return p.Containers(cfg.metricsAll) }, metrics.ContainerMaxAge)
	}
	// Written before the mount appears, so that `cgprocfs status` knows
	// the daemon as soon as the mount answers.
	st := fs.State{Mountpoint: cfg.mountpoint, ServerPid: os.Getpid(), Version: version}
	if link != nil {
		st.HolderPid = link.HolderPid()
	}
	if err := fs.WriteState(fs.StateDir, st); err != nil {
		log.Warn("cgprocfs status will not know this daemon", "err", err)
	}
	defer fs.RemoveState(fs.StateDir, cfg.mountpoint, os.Getpid())
	fo.Adopt = adopt
	if fo.IOUring {
		if changed, err := fs.EnableIOUring(fs.FuseURingParam); err != nil {
			log.Warn("serving through /dev/fuse, not io_uring", "err", err)
			fo.IOUring = false
		} else if changed {
			log.Info("turned on the fuse module's io_uring switch", "param", fs.FuseURingParam)
		}
	}
	server, err := fs.Mount(cfg.mountpoint, p.Files(), fo)
	if err != nil {
		return fmt.Errorf("mounting %s: %w", cfg.mountpoint, err)
	}
	attacher := &attach.Attacher{Mountpoint: cfg.mountpoint, FS: kfs, Log: log}
	if adopt != nil {
		// The containers' binds are of this very connection.
		if err := link.Ready(); err != nil {
			log.Warn("the holder does not know this server serves", "err", err)
		}
		log.Info("adopted the FUSE connection", "mountpoint", cfg.mountpoint, "holder-pid", link.HolderPid(), "resend", fs.CanResend(adopt.Init))
	} else {
		if link != nil {
			handConn(link, server, log)
		}
		// Containers still holding binds of a previous cgprocfs at
		// this mount point get binds of this one before we say we
		// serve.
		replaced := reattach(attacher, log)
		if m != nil {
			m.Reattached(replaced)
		}
	}
	// The seccomp agent answers containers' sysinfo(2); the NRI plugin
	// binds the files into containers as the runtime creates them. Neither
	// ever stops the daemon from serving.
	defer after(predecessorGone, func() func() {
		stopAgent := func() {}
		var agent *agentServing
		if cfg.seccompListener != "" {
			stopAgent, agent = startSeccompAgent(cfg.seccompListener, p, log, link)
		}
		stopNRI := startNRI(ctx, cfg.nri, attacher, agent, log)
		return func() { stopNRI(); stopAgent() }
	})()
	h := cgroups.Hierarchy()
	log.Info("serving", "mountpoint", cfg.mountpoint, "cgroup", h.Mode.String(), "cgroup-root", h.Root, "version", version)
	// Ready only once a read through the mount works.
	if _, err := os.ReadFile(filepath.Join(cfg.mountpoint, "proc", "meminfo")); err != nil {
		log.Warn("a read through the new mount failed; not telling the supervisor we are ready", "err", err)
	} else if err := fs.NotifyReady(); err != nil {
		log.Warn("telling the supervisor we are ready", "err", err)
	}
	if link != nil && adopt == nil {
		if err := link.Ready(); err != nil {
			log.Warn("the holder does not know this server serves", "err", err)
		}
	}
	return fs.Serve(ctx, server, cfg.mountpoint, log)
}

// endWithHolder makes this server end the connection at mountpoint and exit
// when its holder dies (holder.GoneSignal), so that no thread of it is left
// waiting for an answer from its own mount (see holder.GoneSignal). A clean
// stop reaches the server as SIGTERM, not this way.
func endWithHolder(mountpoint string, log *slog.Logger) (stop func()) {
	gone := make(chan os.Signal, 1)
	signal.Notify(gone, holder.GoneSignal)
	done := make(chan struct{})
	go func() {
		select {
		case <-gone:
		case <-done:
			return
		}
		log.Error("the holder died: ending the FUSE connection and exiting; the next cgprocfs mount re-attaches the containers", "mountpoint", mountpoint)
		// Whatever happens below, the server does not outlive its
		// holder by more than this.
		time.AfterFunc(5*time.Second, func() { os.Exit(1) })
		if id, err := fs.ConnectionID(mountpoint); err == nil {
			if err := fs.AbortConnection(id); err != nil {
				log.Error("ending the FUSE connection", "err", err)
			}
		}
		fs.RemoveState(fs.StateDir, mountpoint, os.Getpid())
		os.Exit(1)
	}()
	return func() { signal.Stop(gone); close(done) }
}

// handConn gives the holder the connection this server mounted, so that
// it outlives this process.
func handConn(link *holder.Link, server *fuse.Server, log *slog.Logger) {
	f, err := fs.OpenConnFile()
	if err == nil {
		err = link.Mounted(&fs.Conn{File: f, Init: *server.KernelSettings()})
		f.Close()
	}
	if err != nil {
		log.Warn("the holder does not have the connection: it ends with this server", "err", err)
	}
}

// passUpgrades makes SIGHUP to the server an upgrade: it is passed to the
// holder. Without one there is nothing to upgrade to; the signal is only
// logged (by default it would end the daemon).
func passUpgrades(link *holder.Link, log *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				if link == nil {
					log.Warn("SIGHUP ignored: upgrading in place needs the holder (cgprocfs mount --holder)")
					continue
				}
				syscall.Kill(link.HolderPid(), syscall.SIGHUP)
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}

// after runs start once gone is closed (at once when gone is nil); the
// returned stop stops what start started, or keeps it from starting.
func after(gone <-chan struct{}, start func() (stop func())) (stop func()) {
	if gone == nil {
		return start()
	}
	var mu sync.Mutex
	var stopped bool
	var stopStarted func()
	go func() {
		<-gone
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			stopStarted = start()
		}
	}()
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		if stopStarted != nil {
			stopStarted()
		}
	}
}

// reattach replaces the binds of a dead connection in every container with
// binds of the live mount, and says how many it replaced; failures are
// logged and never stop the daemon.
func reattach(a *attach.Attacher, log *slog.Logger) int {
	start := time.Now()
	nss, err := attach.Scan(a.FS)
	if err != nil {
		log.Warn("looking for containers to re-attach", "err", err)
		return 0
	}
	r, err := a.Reattach(nss)
	if r.Replaced > 0 || err != nil {
		log.Info("re-attach done", "binds", r.Replaced, "namespaces-seen", len(nss), "took", time.Since(start).Round(time.Millisecond), "failed", err != nil)
	}
	return r.Replaced
}

// zeroIsNone maps a flag's 0, "none", to fs.Options' negative "none" (its
// 0 is the default).
func zeroIsNone[T ~int64](v T) T {
	if v == 0 {
		return -1
	}
	return v
}

// fsOptions are the FUSE tree's options, once setMaxProcs has run: with one
// P, one goroutine reads and answers the requests (fs.Options.Readers).
func fsOptions(cfg mountConfig, log *slog.Logger) fs.Options {
	o := cfg.fsOptions
	o.Logger = log
	if runtime.GOMAXPROCS(0) == 1 {
		o.Readers = 1
	}
	return o
}

// checkHost refuses a host where mounting cannot work, before any change.
func checkHost() error {
	if os.Geteuid() != 0 {
		return errors.New("cgprocfs mount must run as root (it mounts a filesystem that every user may read)")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("/dev/fuse is missing (load the fuse module: modprobe fuse): %w", err)
	}
	return nil
}

// startCPUProfile profiles to path until the returned stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
