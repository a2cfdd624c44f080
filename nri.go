package main

import (
	"context"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/cgprocfs/cgprocfs/attach"
	"github.com/cgprocfs/cgprocfs/nriplugin"
)

// nriConfig is what `cgprocfs mount --nri` was asked to do.
type nriConfig struct {
	enabled bool
	socket  string
	policy  nriplugin.Policy
	// sysinfo sends the containers' sysinfo(2) to the seccomp agent.
	sysinfo bool
}

func nriFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "nri", Usage: "also register as the NRI plugin " + nriplugin.Name + " (containerd, CRI-O): bind the files into every container as it is created"},
		&cli.StringFlag{Name: "nri-socket", Value: nriplugin.DefaultSocket, Usage: "the runtime's NRI socket; waited for when absent"},
		&cli.BoolFlag{Name: "nri-opt-in", Usage: "with --nri, only containers (or pods) annotated cgprocfs.io/enabled=true get the files"},
		&cli.BoolFlag{Name: "nri-sysinfo", Usage: "with --nri, also send containers' sysinfo(2) to the seccomp agent (--seccomp-listener) through their seccomp policies, while it serves; such containers lose sysinfo (ENOSYS) when the daemon stops"},
		&cli.StringSliceFlag{Name: "nri-exclude-namespaces", Value: cli.NewStringSlice("kube-system"), Usage: "with --nri, Kubernetes namespaces whose pods never get the files (repeat or comma-separate; --nri-exclude-namespaces='' for none)"},
	}
}

func nriConfigFromFlags(c *cli.Context) nriConfig {
	var exclude []string
	for _, ns := range c.StringSlice("nri-exclude-namespaces") {
		if ns != "" {
			exclude = append(exclude, ns)
		}
	}
	return nriConfig{
		enabled: c.Bool("nri"),
		socket:  c.String("nri-socket"),
		policy:  nriplugin.Policy{OptIn: c.Bool("nri-opt-in"), ExcludeNamespaces: exclude},
		sysinfo: c.Bool("nri-sysinfo"),
	}
}

// startNRI runs the NRI plugin, when asked for, until ctx ends or stop is
// called; stop returns once the plugin stopped. agent is the seccomp
// agent, nil when it did not start.
func startNRI(ctx context.Context, cfg nriConfig, a *attach.Attacher, agent *agentServing, log *slog.Logger) (stop func()) {
	if !cfg.enabled {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var sysinfo nriplugin.Agent
	switch {
	case cfg.sysinfo && agent != nil:
		sysinfo = agent
	case cfg.sysinfo:
		log.Warn("nri: --nri-sysinfo without a seccomp agent: containers' sysinfo(2) stays the kernel's")
	}
	p := nriplugin.NewPlugin(cfg.policy, nriplugin.LiveMount{Attacher: a}, sysinfo, log)
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, cfg.socket)
	}()
	return func() { cancel(); <-done }
}
