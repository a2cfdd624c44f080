package cgroupview

import (
	"testing"

	"github.com/cgprocfs/cgprocfs/kernelfs"
)

// testFS is a kernel-file reader closed when the test ends.
func testFS(t testing.TB) *kernelfs.FS {
	fs := kernelfs.New("/proc", kernelfs.Options{})
	t.Cleanup(func() { fs.Close() })
	return fs
}

func testFiles(t testing.TB) files { return files{testFS(t)} }

func memoryOf(t testing.TB, c *Cgroup) (Memory, error) {
	return NewReader(c.h, testFS(t)).Memory(c)
}

func cpuUsageOf(t testing.TB, c *Cgroup) (CPUUsage, error) {
	return NewReader(c.h, testFS(t)).CPUUsage(c)
}

func cpuQuotaOf(t testing.TB, c *Cgroup) (int, error) {
	return NewReader(c.h, testFS(t)).CPUQuota(c)
}

func cpuSetOf(t testing.TB, c *Cgroup) ([]int, error) {
	return NewReader(c.h, testFS(t)).CPUSet(c)
}

func ioOf(t testing.TB, c *Cgroup) (IO, error) {
	return NewReader(c.h, testFS(t)).IO(c)
}
