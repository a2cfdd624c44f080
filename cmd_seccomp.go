package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/cgprocfs/cgprocfs/seccompprofile"
)

func seccompProfileCommand() *cli.Command {
	return &cli.Command{
		Name:  "seccomp-profile",
		Usage: "print a seccomp profile that sends containers' sysinfo(2) to the daemon's seccomp agent",
		Description: "The profile is --base (a runtime's default profile, such as containers-common's\n" +
			"/usr/share/containers/seccomp.json or docker's, or a config.json's linux.seccomp) with sysinfo\n" +
			"taken out of its rules, one SCMP_ACT_NOTIFY rule for it and --listener as its listenerPath;\n" +
			"without --base, a profile that allows every call. Use it with podman or docker\n" +
			"--security-opt seccomp=FILE, or as linux.seccomp in runc's config.json. A container with it\n" +
			"does not start while no daemon serves --listener (see README: sysinfo(2)).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "base", Usage: "the profile to add the rule to (JSON file)"},
			&cli.StringFlag{Name: "listener", Value: DefaultSeccompListener, Usage: "the daemon's --seccomp-listener"},
		},
		OnUsageError: oneLineUsageError,
		Action:       runSeccompProfile,
	}
}

func runSeccompProfile(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("seccomp-profile takes no arguments (got %q); the base profile is --base FILE", c.Args().First())
	}
	listener := c.String("listener")
	if listener == "" || !validListener(listener) {
		return fmt.Errorf("--listener must be an absolute path shorter than 108 bytes, not %q", listener)
	}
	var out []byte
	if base := c.String("base"); base != "" {
		data, err := os.ReadFile(base)
		if err != nil {
			return fmt.Errorf("reading the base profile: %w", err)
		}
		if out, err = seccompprofile.Add(data, listener); err != nil {
			return fmt.Errorf("base profile %s: %w", base, err)
		}
	} else {
		var err error
		if out, err = json.MarshalIndent(seccompprofile.Default(listener), "", "  "); err != nil {
			return err
		}
		out = append(out, '\n')
	}
	_, err := c.App.Writer.Write(out)
	return err
}
