package provider

import (
	"math/rand/v2"
	"os"
	"testing"

	"github.com/cgprocfs/cgprocfs/cgroupview"
)

const sec = uint64(1e9)

// A busy loop at half a CPU of quota: half user, half steal, no idle.
func TestCPUAcctBusyAtQuota(t *testing.T) {
	var a cpuAcct
	now := int64(100 * sec)
	u := cgroupview.CPUUsage{}
	a.update(now, now, []int{0}, u)
	for range 10 {
		now += int64(sec)
		u.User += sec / 2
		u.Throttled += sec / 2
		a.update(now, 0, []int{0}, u)
	}
	lines, total := a.update(now, 0, []int{0}, u)
	want := cpuTimes{User: 5 * sec, Steal: 5 * sec}
	if total != want || lines[0] != want {
		t.Errorf("total %+v line %+v, want %+v", total, lines[0], want)
	}
}

// An idle container is idle, from its start on.
func TestCPUAcctIdleSinceStart(t *testing.T) {
	var a cpuAcct
	_, total := a.update(int64(50*sec), int64(40*sec), []int{0, 1}, cgroupview.CPUUsage{User: sec})
	if total != (cpuTimes{User: sec, Idle: 19 * sec}) {
		t.Errorf("first read: %+v, want 1 s user and 19 s idle over 2 CPUs × 10 s", total)
	}
	lines, total := a.update(int64(51*sec), 0, []int{0, 1}, cgroupview.CPUUsage{User: sec})
	if total.Idle != 21*sec || lines[0].Idle+lines[1].Idle != total.Idle {
		t.Errorf("after a second idle: %+v, lines %+v", total, lines)
	}
}

// History before the daemon saw the container is not owed: a cgroup that
// used more than its wall time since start does not lose idle later.
func TestCPUAcctFirstReadForgivesHistory(t *testing.T) {
	var a cpuAcct
	a.update(int64(10*sec), int64(10*sec), []int{0}, cgroupview.CPUUsage{User: 100 * sec})
	_, total := a.update(int64(11*sec), 0, []int{0}, cgroupview.CPUUsage{User: 100 * sec})
	if total != (cpuTimes{User: 100 * sec, Idle: sec}) {
		t.Errorf("%+v, want 100 s user then 1 s idle", total)
	}
}

// A burst over a short interval is paid back from later idle.
func TestCPUAcctBurstOwes(t *testing.T) {
	var a cpuAcct
	now := int64(10 * sec)
	a.update(now, now, []int{0}, cgroupview.CPUUsage{})
	_, total := a.update(now+int64(sec), 0, []int{0}, cgroupview.CPUUsage{User: 2 * sec})
	if total != (cpuTimes{User: 2 * sec}) {
		t.Fatalf("burst: %+v", total)
	}
	_, total = a.update(now+int64(3*sec), 0, []int{0}, cgroupview.CPUUsage{User: 2 * sec})
	if total != (cpuTimes{User: 2 * sec, Idle: sec}) {
		t.Errorf("after the burst: %+v, want 1 s idle (3 s wall - 2 s user)", total)
	}
}

// v1: each host CPU's time goes to the line showing it; time on CPUs not
// shown is spread. v2: all of it is spread.
func TestCPUAcctPerCPU(t *testing.T) {
	var a cpuAcct
	now := int64(10 * sec)
	a.update(now, now, []int{2, 5}, cgroupview.CPUUsage{PerCPU: make([]cgroupview.CPUTime, 8)})
	per := make([]cgroupview.CPUTime, 8)
	per[2] = cgroupview.CPUTime{User: 300, System: 30}
	per[5] = cgroupview.CPUTime{User: 100}
	per[7] = cgroupview.CPUTime{User: 11, System: 2}
	lines, _ := a.update(now+int64(sec), 0, []int{2, 5}, cgroupview.CPUUsage{User: 411, System: 32, PerCPU: per})
	if lines[0].User != 306 || lines[1].User != 105 || lines[0].System != 31 || lines[1].System != 1 {
		t.Errorf("v1 lines %+v", lines)
	}

	var b cpuAcct
	b.update(now, now, []int{0, 1, 2}, cgroupview.CPUUsage{})
	lines, _ = b.update(now+int64(sec), 0, []int{0, 1, 2}, cgroupview.CPUUsage{User: 3 * sec, System: 301})
	if lines[0].User != sec || lines[2].User != sec || lines[0].System != 101 || lines[2].System != 100 {
		t.Errorf("v2 lines %+v", lines)
	}
}

// Whatever happens to the cpuset, the quota and the cgroup's counters,
// no counter of the file goes down, and the total keeps up with wall time.
func TestCPUAcctMonotonic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var a cpuAcct
	now := int64(1000 * sec)
	var u cgroupview.CPUUsage
	var prevTotal cpuTimes
	prevLines := map[int]cpuTimes{}
	var capacity uint64
	for step := range 5000 {
		n := 1 + r.IntN(4)
		cpus := r.Perm(8)[:n]
		wall := uint64(r.Int64N(int64(sec)))
		now += int64(wall)
		capacity += uint64(n) * wall
		switch r.IntN(20) {
		case 0: // counters reset
			u = cgroupview.CPUUsage{}
		case 1: // v1 <-> v2 style
			if u.PerCPU == nil {
				u.PerCPU = make([]cgroupview.CPUTime, 8)
			} else {
				u.PerCPU = nil
			}
		}
		if u.PerCPU != nil {
			per := append([]cgroupview.CPUTime(nil), u.PerCPU...)
			for i := range per {
				per[i].User += uint64(r.Int64N(int64(wall/2 + 1)))
				per[i].System += uint64(r.Int64N(int64(wall/4 + 1)))
			}
			u.PerCPU = per
		} else {
			u.User += uint64(r.Int64N(int64(uint64(n)*wall + 1)))
			u.System += uint64(r.Int64N(int64(wall + 1)))
		}
		u.Throttled += uint64(r.Int64N(int64(wall + 1)))
		lines, total := a.update(now, now-int64(sec), cpus, u)
		if len(lines) != n {
			t.Fatalf("step %d: %d lines for %d CPUs", step, len(lines), n)
		}
		if !grew(prevTotal, total) {
			t.Fatalf("step %d: total went down: %+v then %+v", step, prevTotal, total)
		}
		for i, l := range lines {
			if !grew(prevLines[i], l) {
				t.Fatalf("step %d: cpu%d went down: %+v then %+v", step, i, prevLines[i], l)
			}
			prevLines[i] = l
		}
		prevTotal = total
	}
	// Steal and idle fill what user and system leave of the wall time;
	// with user+system up to the full wall time the sum can only run
	// ahead of it.
	if s := prevTotal.sum(); s < capacity {
		t.Errorf("counters add up to %d, less than the %d of capacity", s, capacity)
	}
}

func grew(a, b cpuTimes) bool {
	return b.User >= a.User && b.System >= a.System && b.Steal >= a.Steal && b.Idle >= a.Idle
}

func TestMulDivSpread(t *testing.T) {
	if got := mulDiv(^uint64(0), ^uint64(0)-1, ^uint64(0)); got != ^uint64(0)-1 {
		t.Errorf("mulDiv at the edge = %d", got)
	}
	if mulDiv(1, 2, 0) != 0 {
		t.Error("mulDiv by 0")
	}
	to := make([]uint64, 3)
	spread(to, 5)
	if to[0] != 2 || to[1] != 2 || to[2] != 1 {
		t.Errorf("spread = %v", to)
	}
}

// Runqueue wait is steal too: a container whose thread waited for a busy
// host CPU was denied it. Threads that left take their wait with them; a
// new thread brings all of its wait. A scan's wait counts once, however
// many updates (reads) come before the next scan.
func TestCPUAcctWaitIsSteal(t *testing.T) {
	var a cpuAcct
	now := int64(10 * sec)
	scan := func(waits map[int]uint64) { a.noteScan(taskScan{waits: waits}, now) }
	scan(map[int]uint64{7: 5 * sec})
	a.update(now, now, []int{0}, cgroupview.CPUUsage{})
	scan(map[int]uint64{7: 5*sec + sec/2})
	_, total := a.update(now+int64(sec), 0, []int{0}, cgroupview.CPUUsage{User: sec / 4, Throttled: sec / 10})
	if total != (cpuTimes{User: sec / 4, Steal: sec / 2, Idle: sec / 4}) {
		t.Errorf("wait over throttling: %+v", total)
	}
	scan(map[int]uint64{8: sec / 5})
	_, total = a.update(now+int64(2*sec), 0, []int{0}, cgroupview.CPUUsage{User: sec / 4, Throttled: sec / 10})
	if total.Steal != sec/2+sec/5 || total.Idle != sec/4+sec*4/5 {
		t.Errorf("new thread: %+v", total)
	}
	_, total = a.update(now+int64(3*sec), 0, []int{0}, cgroupview.CPUUsage{User: sec / 4, Throttled: sec / 10})
	if total.Steal != sec/2+sec/5 {
		t.Errorf("an update with no new scan added steal: %+v", total)
	}
}

// The state of a cgroup goes when its directory does.
func TestCPUStateForget(t *testing.T) {
	dir := t.TempDir()
	var s cpuState
	a, fresh := s.get("k", dir)
	if b, again := s.get("k", dir); !fresh || again || a != b {
		t.Fatalf("get: fresh %v, again %v, same %v", fresh, again, a == b)
	}
	s.forget()
	if _, fresh := s.get("k", dir); fresh {
		t.Fatal("forgot a cgroup that exists")
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	s.forget()
	if _, fresh := s.get("k", dir); !fresh {
		t.Error("kept a cgroup that is gone")
	}
}
