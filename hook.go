package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cgprocfs/cgprocfs/ocihook"
)

func ociHookCommand() *cli.Command {
	return &cli.Command{
		Name:  "oci-hook",
		Usage: "OCI createContainer hook: bind the served files into the container being created (reads the state on stdin)",
		Description: "Install it for podman or CRI-O with the oci-hooks.d file (deploy/oci-hooks.d/cgprocfs.json),\n" +
			"or in config.json's hooks.createContainer for runc. It never stops a container: whatever it meets,\n" +
			"it prints one line per problem on stderr and exits 0. Only a command line it does not understand\n" +
			"fails (exit 1), so that a broken hooks.d file shows at the first container start.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mountpoint", Value: DefaultMountpoint, Usage: "where cgprocfs is mounted on the host"},
			&cli.BoolFlag{Name: "opt-in", Usage: "bind only into containers annotated " + ocihook.AnnotationEnabled + "=true (default: all but those annotated =false)"},
			&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "give up (binding what is bound by then) after this long, so a hung daemon cannot hold up a container"},
		},
		OnUsageError: oneLineUsageError,
		Action:       runOCIHook,
	}
}

func runOCIHook(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("oci-hook takes no arguments (the runtime passes the state on stdin), not %q", c.Args().First())
	}
	if c.Duration("timeout") <= 0 {
		return fmt.Errorf("--timeout must be a positive duration, not %v", c.Duration("timeout"))
	}
	mountpoint, err := filepath.Abs(c.String("mountpoint"))
	if err != nil {
		return fmt.Errorf("--mountpoint %s: %w", c.String("mountpoint"), err)
	}
	cfg := ocihook.Config{Mountpoint: mountpoint, OptIn: c.Bool("opt-in")}
	hookOutcome(os.Stderr, cfg, os.Stdin, c.Duration("timeout"))
	// Every outcome, errors included, is reported and the container goes
	// on: nothing cgprocfs adds may stop a container from starting.
	return nil
}

// hookOutcome runs the hook and reports on w. A filesystem call stuck on a
// hung FUSE daemon cannot be cancelled, so on timeout the hook reports and
// returns, and the process's exit ends the stuck call.
func hookOutcome(w io.Writer, cfg ocihook.Config, stdin io.Reader, timeout time.Duration) {
	type outcome struct {
		res ocihook.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := ocihook.Run(cfg, stdin)
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		report(w, cfg, o.res, o.err)
	case <-time.After(timeout):
		report(w, cfg, ocihook.Result{}, fmt.Errorf("gave up after %v: cgprocfs at %s does not answer", timeout, cfg.Mountpoint))
	}
}

// report writes what the hook did, one line, then a line per note.
func report(w io.Writer, cfg ocihook.Config, res ocihook.Result, err error) {
	prefix := "cgprocfs oci-hook: "
	if res.ID != "" {
		prefix += "container " + res.ID + ": "
	}
	switch {
	case err != nil:
		fmt.Fprintf(w, "%sbound nothing: %v\n", prefix, oneLine(err))
	case res.Skipped != "":
		fmt.Fprintf(w, "%sbound nothing: %s\n", prefix, res.Skipped)
	default:
		fmt.Fprintf(w, "%sbound %d files from %s read-only: %s\n", prefix, len(res.Bound), cfg.Mountpoint, strings.Join(res.Bound, " "))
	}
	for _, n := range res.Notes {
		fmt.Fprintf(w, "%s%s\n", prefix, n)
	}
}

// oneLine keeps an error on one line: a JSON error may quote a newline.
func oneLine(err error) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(err.Error())
}
