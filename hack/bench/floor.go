package main

import (
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// floorSource is the C floor: a minimal libfuse3 low-level server serving
// fixed bytes with direct_io and noflush (floor/floor.c).
//
//go:embed floor/floor.c
var floorSource []byte

// startCFloor builds the C floor with gcc against libfuse3-dev and mounts
// it, as name under the bench's directory, serving contents, in order, as
// files 0, 1, ... of its root. It is stopped and unmounted at cleanup.
func startCFloor(e *env, name string, contents [][]byte) (*daemon, error) {
	dir := filepath.Join(e.tmp, name+"-src")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	src := filepath.Join(dir, "floor.c")
	if err := os.WriteFile(src, floorSource, 0o644); err != nil {
		return nil, err
	}
	flags, err := exec.Command("pkg-config", "--cflags", "--libs", "fuse3").Output()
	if err != nil {
		return nil, fmt.Errorf("pkg-config fuse3 (hack/deps.sh bench installs libfuse3-dev and pkg-config): %w", err)
	}
	bin := filepath.Join(dir, "floor")
	args := append([]string{"-O2", "-Wall", "-o", bin, src}, strings.Fields(string(flags))...)
	if out, err := exec.Command("gcc", args...).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the C floor: %w: %s", err, out)
	}
	files := []string{filepath.Join(e.tmp, name)}
	for i, c := range contents {
		f := filepath.Join(dir, strconv.Itoa(i))
		if err := os.WriteFile(f, c, 0o644); err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return e.startDaemonReady("C floor", files[0], "0", bin, files...)
}
