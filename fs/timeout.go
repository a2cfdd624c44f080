package fs

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DefaultRequestTimeout is the FUSE request timeout Mount asks for when
// Options.RequestTimeout is zero.
const DefaultRequestTimeout = 30 * time.Second

// The kernel's FUSE request timeout (Linux 6.14 and later). A connection's
// timeout is fixed when the kernel processes the daemon's reply to FUSE_INIT:
// the value in that reply if the daemon sets FUSE_REQUEST_TIMEOUT, else
// default_request_timeout, in either case capped by max_request_timeout.
// go-fuse (v2.12.1) never fills InitOut.RequestTimeout and offers no hook on
// the INIT reply, so the daemon sets the default for the moment its own INIT
// is answered and puts the old value back.
const (
	defaultTimeoutSysctl = "/proc/sys/fs/fuse/default_request_timeout"
	maxTimeoutSysctl     = "/proc/sys/fs/fuse/max_request_timeout"
	// The sysctls take seconds up to this (the INIT field is 16 bits).
	maxTimeoutSeconds = 65535
)

// timeoutSeconds turns an Options.RequestTimeout into the sysctl's seconds:
// 0 for none, else rounded up and at most maxTimeoutSeconds.
func timeoutSeconds(d time.Duration) int {
	switch {
	case d == 0:
		d = DefaultRequestTimeout
	case d < 0:
		return 0
	}
	s := int((d + time.Second - 1) / time.Second)
	return min(s, maxTimeoutSeconds)
}

// withRequestTimeout runs mount, which must mount and answer FUSE_INIT
// before it returns (fuse.NewServer does), with the kernel's default request
// timeout set to secs; it restores the value it found. The sysctl is
// host-wide, so another FUSE filesystem that is answering its own INIT in
// the same instant gets the timeout too; cgprocfs daemons serialise on an
// flock of the sysctl file so that none restores a value another has set.
// secs 0, or a kernel without the sysctl, runs mount alone.
func withRequestTimeout(secs int, sysctlPath string, log *slog.Logger, mount func() error) error {
	if secs == 0 {
		return mount()
	}
	f, err := os.OpenFile(sysctlPath, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		log.Info("this kernel has no FUSE request timeout (Linux 6.14 and later have one): a hung daemon blocks its readers until it continues or is killed")
		return mount()
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", sysctlPath, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", sysctlPath, err)
	}
	old, err := readSysctl(f)
	if err != nil {
		return err
	}
	if old != secs {
		if err := writeSysctl(f, secs); err != nil {
			return err
		}
		defer func() {
			if err := writeSysctl(f, old); err != nil {
				log.Error("restoring the FUSE default request timeout failed", "sysctl", sysctlPath, "value", old, "err", err)
			}
		}()
	}
	effective := secs
	if mf, err := os.Open(maxTimeoutSysctl); err == nil {
		if limit, err := readSysctl(mf); err == nil && limit != 0 && limit < secs {
			effective = limit
		}
		mf.Close()
	}
	if err := mount(); err != nil {
		return err
	}
	if effective != secs {
		log.Warn("the kernel caps the FUSE request timeout", "asked", time.Duration(secs)*time.Second, "max_request_timeout", time.Duration(effective)*time.Second)
	}
	log.Info("FUSE request timeout set: a request the daemon leaves unanswered this long aborts the connection", "timeout", time.Duration(effective)*time.Second)
	return nil
}

func readSysctl(f *os.File) (int, error) {
	buf := make([]byte, 32)
	n, err := f.ReadAt(buf, 0)
	if n == 0 && err != nil {
		return 0, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	return v, nil
}

func writeSysctl(f *os.File, v int) error {
	if _, err := f.WriteAt([]byte(strconv.Itoa(v)+"\n"), 0); err != nil {
		return fmt.Errorf("writing %d to %s: %w", v, f.Name(), err)
	}
	return nil
}
