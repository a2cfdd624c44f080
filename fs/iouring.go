package fs

import (
	"bytes"
	"fmt"
	"os"
)

// FuseURingParam is the fuse module's switch for FUSE over io_uring
// (Linux 6.14 and later). It is off by default; the kernel offers io_uring
// in FUSE_INIT only while it is on, and a connection that took it keeps
// it.
const FuseURingParam = "/sys/module/fuse/parameters/enable_uring"

// EnableIOUring turns the fuse module's io_uring switch (param, normally
// FuseURingParam) on, and tells whether it was off. It affects only FUSE
// servers that ask for io_uring in their INIT reply.
func EnableIOUring(param string) (changed bool, err error) {
	b, err := os.ReadFile(param)
	if os.IsNotExist(err) {
		return false, fmt.Errorf("this kernel has no FUSE over io_uring (%s is missing; it needs Linux 6.14 or later)", param)
	}
	if err != nil {
		return false, fmt.Errorf("reading the fuse module's io_uring switch: %w", err)
	}
	if v := bytes.TrimSpace(b); bytes.Equal(v, []byte("Y")) || bytes.Equal(v, []byte("1")) {
		return false, nil
	}
	if err := os.WriteFile(param, []byte("Y"), 0o644); err != nil {
		return false, fmt.Errorf("turning on the fuse module's io_uring switch: %w", err)
	}
	return true, nil
}

// RestoreIOUringSwitch puts the fuse module's io_uring switch (param) back
// to was, what it read before it was turned on, unless it holds that: for
// tests and benchmarks, which leave the host as they found it.
func RestoreIOUringSwitch(param string, was []byte) error {
	if now, err := os.ReadFile(param); err == nil && bytes.Equal(now, was) {
		return nil
	}
	if err := os.WriteFile(param, bytes.TrimSpace(was), 0o644); err != nil {
		return fmt.Errorf("putting the fuse module's io_uring switch back: %w", err)
	}
	return nil
}
