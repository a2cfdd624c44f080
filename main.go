// Command cgprocfs serves container-scoped /proc and /sys files from one
// host-level FUSE mount. See README.md.
package main

import (
	"log/slog"
	"os"
	"runtime"

	"github.com/urfave/cli/v2"
)

// The main goroutine keeps the main thread for good. Goroutines that enter
// another mount namespace (nsthread: attach, fs.AbortConnection) lock their
// thread and end with it, and the runtime cannot end the main thread: it would
// park it, still in that namespace, and /proc/self (the main thread's) would
// then show that namespace's mounts to every later mountinfo read.
func init() { runtime.LockOSThread() }

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := newApp().Run(os.Args); err != nil {
		slog.Error(err.Error())
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "cgprocfs",
		Usage: "give every container its own view of /proc/meminfo, /proc/stat and friends",
		Description: "cgprocfs mounts one read-only FUSE filesystem on the host. Containers bind-mount its files\n" +
			"over their own /proc files; every read is answered for the cgroup of the process that reads.",
		// Gives --version and -v, printed as `cgprocfs version VERSION`.
		Version:      version,
		OnUsageError: oneLineUsageError,
		Commands: []*cli.Command{
			mountCommand(),
			attachCommand(),
			detachCommand(),
			statusCommand(),
			showCommand(),
			ociHookCommand(),
			seccompProfileCommand(),
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(c *cli.Context) error {
					cli.ShowVersion(c)
					return nil
				},
			},
		},
	}
}

// oneLineUsageError makes a flag the parser rejects (a duration that does
// not parse, say) one error line, like every other refusal, instead of the
// usage text.
func oneLineUsageError(_ *cli.Context, err error, _ bool) error {
	return err
}
