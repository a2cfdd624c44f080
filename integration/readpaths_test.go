package integration

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
)

// servedFiles lists the daemon's files, relative to its mount point.
func (d *daemon) servedFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(d.Mountpoint, func(p string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// Of a directory served whole, its online file stands for the
		// rest (the host's files, passed through).
		if info, err := e.Info(); err == nil && e.IsDir() && p != d.Mountpoint && info.Mode().Perm() == 0o755 {
			if rel, _ := filepath.Rel(d.Mountpoint, p); exists(filepath.Join(p, "online")) {
				files = append(files, rel+"/online")
			}
			return filepath.SkipDir
		}
		if e.Type().IsRegular() {
			rel, _ := filepath.Rel(d.Mountpoint, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("listing served files: %v (%d found)", err, len(files))
	}
	return files
}

// stablePart is the part of a served file that stays put for a second, so
// that two reads made one after the other must agree on it: the values in
// the other lines move with every read.
func stablePart(rel string, content []byte) string {
	lines := strings.Split(strings.TrimRight(string(content), "\n"), "\n")
	var out []string
	switch filepath.Base(rel) {
	case "meminfo":
		for _, l := range lines {
			if strings.HasPrefix(l, "MemTotal:") || strings.HasPrefix(l, "SwapTotal:") {
				out = append(out, l)
			}
		}
	case "cpuinfo":
		for _, l := range lines {
			// The frequency is sampled per read.
			if !strings.HasPrefix(l, "cpu MHz") {
				out = append(out, l)
			}
		}
	case "online", "present", "possible":
		out = lines
	case "stat":
		if strings.HasPrefix(rel, "proc/") {
			n := 0
			for _, l := range lines {
				if strings.HasPrefix(l, "cpu") {
					n++
				}
			}
			out = append(out, fmt.Sprintf("%d cpu lines", n))
			break
		}
		fallthrough
	default:
		// The layout: each line's first field and its number of fields.
		for _, l := range lines {
			f := strings.Fields(l)
			// A first field that is a number (uptime, loadavg, a
			// disk's stat) moves too.
			first := ""
			if len(f) > 0 && strings.Trim(f[0], "0123456789.") != "" {
				first = f[0]
			}
			if filepath.Base(rel) == "diskstats" && len(f) > 2 {
				first = f[2]
			}
			out = append(out, fmt.Sprintf("%s/%d", first, len(f)))
		}
	}
	return strings.Join(out, "\n")
}

// kernelVersion is the running kernel's major and minor version.
func kernelVersion(t *testing.T) (int, int) {
	t.Helper()
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	var major, minor int
	if _, err := fmt.Sscanf(string(b), "%d.%d", &major, &minor); err != nil {
		t.Fatalf("kernel release %q: %v", b, err)
	}
	return major, minor
}

// copier copies src to the new file dst one way.
type copier struct {
	name string
	copy func(src, dst string) error
	// pageCache: on kernels 6.5 and later the kernel splices a
	// FOPEN_DIRECT_IO file from the page cache, bounded by the size 0 that
	// the files report, so this way copies nothing there.
	pageCache bool
}

func copiers(t *testing.T) []copier {
	cs := []copier{
		{name: "cp", copy: func(src, dst string) error {
			if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}},
		{name: "io.Copy to *os.File", copy: func(src, dst string) error {
			return withFiles(src, dst, func(in, out *os.File) error {
				// os.File.ReadFrom tries copy_file_range (EXDEV from
				// another filesystem), then falls back to read.
				_, err := io.Copy(out, in)
				return err
			})
		}},
		{name: "sendfile", pageCache: true, copy: func(src, dst string) error {
			return withFiles(src, dst, func(in, out *os.File) error {
				for {
					n, err := syscall.Sendfile(int(out.Fd()), int(in.Fd()), nil, 1<<20)
					if err != nil {
						return fmt.Errorf("sendfile: %w", err)
					}
					if n == 0 {
						return nil
					}
				}
			})
		}},
		{name: "splice through a pipe", pageCache: true, copy: func(src, dst string) error {
			return withFiles(src, dst, func(in, out *os.File) error {
				pr, pw, err := os.Pipe()
				if err != nil {
					return err
				}
				defer pr.Close()
				defer pw.Close()
				for {
					n, err := syscall.Splice(int(in.Fd()), nil, int(pw.Fd()), nil, 1<<16, 0)
					if err != nil {
						return fmt.Errorf("splice: %w", err)
					}
					if n == 0 {
						return nil
					}
					if _, err := io.CopyN(out, pr, n); err != nil {
						return err
					}
				}
			})
		}},
	}
	if py, err := exec.LookPath("python3"); err == nil {
		cs = append(cs, copier{name: "python shutil.copyfile", pageCache: true, copy: func(src, dst string) error {
			// shutil.copyfile uses sendfile on Linux and falls back to
			// read only when the first call fails.
			out, err := exec.Command(py, "-c", "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2])", src, dst).CombinedOutput()
			if err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		}})
	} else {
		t.Logf("no python3 here: shutil.copyfile not checked")
	}
	return cs
}

func withFiles(src, dst string, f func(in, out *os.File) error) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if err := f(in, out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// Every way of copying a served file gives what read(2) gives, except where
// the kernel itself cannot (README, "Read paths"): kernels 6.5 and later
// splice and sendfile FOPEN_DIRECT_IO files from the page cache, and there
// such a copy must be empty, never a part of the file or another reader's
// bytes.
func TestReadPathsGiveWhatReadGives(t *testing.T) {
	d := startDaemon(t)
	major, minor := kernelVersion(t)
	// Kernels before 6.5 splice through ->read_iter, i.e. our direct I/O.
	mustWork := major < 6 || major == 6 && minor < 5
	dir := t.TempDir()
	cs := copiers(t)
	// A kernel with the splice fix gives whole files; one without gives
	// empty ones; either way every file and page-cache copier agrees.
	pageCacheEmpty := map[bool]int{}
	for _, rel := range d.servedFiles(t) {
		for i, c := range cs {
			src := d.Path(rel)
			dst := filepath.Join(dir, fmt.Sprintf("copy-%d", i))
			want, err := os.ReadFile(src)
			if err != nil {
				t.Fatalf("reading %s: %v", rel, err)
			}
			if err := c.copy(src, dst); err != nil {
				t.Errorf("%s of %s: %v", c.name, rel, err)
				continue
			}
			got, err := os.ReadFile(dst)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(want) > 0 && c.pageCache && !mustWork {
				pageCacheEmpty[true]++
				continue
			}
			if c.pageCache && len(want) > 0 {
				pageCacheEmpty[false]++
			}
			if stablePart(rel, got) != stablePart(rel, want) {
				t.Errorf("%s of %s gave %d bytes:\n%s\nread(2) gave %d bytes:\n%s", c.name, rel, len(got), got, len(want), want)
			}
		}
	}
	if pageCacheEmpty[true] > 0 && pageCacheEmpty[false] > 0 {
		t.Errorf("splice-based copies were empty %d times and whole %d times: the kernel should do one or the other", pageCacheEmpty[true], pageCacheEmpty[false])
	}
	t.Logf("kernel %d.%d: splice-based copies empty %d times, whole %d times", major, minor, pageCacheEmpty[true], pageCacheEmpty[false])
}

// mmap: MAP_SHARED fails with ENODEV (FOPEN_DIRECT_IO without
// FUSE_DIRECT_IO_ALLOW_MMAP). MAP_PRIVATE is mapped through the page cache by
// every kernel, whatever the daemon says; with the size 0 the files report
// the first access faults (SIGBUS), as it would on an empty file, and never
// shows anyone's bytes.
func TestMmap(t *testing.T) {
	d := startDaemon(t)
	f, err := os.Open(d.Path("proc/meminfo"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := syscall.Mmap(int(f.Fd()), 0, 4096, syscall.PROT_READ, syscall.MAP_SHARED); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("MAP_SHARED: %v, want ENODEV", err)
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, 4096, syscall.PROT_READ, syscall.MAP_PRIVATE)
	if err != nil {
		t.Logf("MAP_PRIVATE refused: %v", err)
		return
	}
	defer syscall.Munmap(m)
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil || st.Size != 0 {
		t.Fatalf("size %d (%v), want 0", st.Size, err)
	}
	b, faulted := firstByte(m)
	if !faulted {
		t.Errorf("reading a MAP_PRIVATE mapping gave %q, want a fault (size 0)", b)
	}
}

// firstByte reads m[0], reporting a fault (SIGBUS) instead of crashing.
func firstByte(m []byte) (b byte, faulted bool) {
	old := debug.SetPanicOnFault(true)
	defer debug.SetPanicOnFault(old)
	defer func() {
		if recover() != nil {
			faulted = true
		}
	}()
	return m[0], false
}
