package cgroupview

import (
	"errors"
	"fmt"
	"strconv"
)

// Dev is a block device number as cgroup files and /proc/diskstats name it.
type Dev struct{ Major, Minor uint32 }

func (d Dev) String() string { return fmt.Sprintf("%d:%d", d.Major, d.Minor) }

// ParseDev parses "MAJ:MIN".
func ParseDev(s string) (Dev, error) {
	for i := 0; i < len(s); i++ {
		if s[i] != ':' {
			continue
		}
		maj, err1 := strconv.ParseUint(s[:i], 10, 32)
		min, err2 := strconv.ParseUint(s[i+1:], 10, 32)
		if err := errors.Join(err1, err2); err != nil {
			return Dev{}, fmt.Errorf("malformed device %q: %w", s, err)
		}
		return Dev{uint32(maj), uint32(min)}, nil
	}
	return Dev{}, fmt.Errorf("malformed device %q: no colon", s)
}

// DeviceIO is what a cgroup's counters say about its I/O to one block
// device, normalised over v1 and v2. Counters include descendant cgroups.
// The kernel keys them by whole disk, never by partition.
type DeviceIO struct {
	ReadIOs, WriteIOs, DiscardIOs       uint64
	ReadBytes, WriteBytes, DiscardBytes uint64
	// HasTimes is set when the source also gives the time I/Os spent
	// queued plus in service (v1 bfq with CONFIG_BFQ_CGROUP_DEBUG); the
	// *Nsec fields are then that time in nanoseconds.
	HasTimes                         bool
	ReadNsec, WriteNsec, DiscardNsec uint64
}

// IO is a cgroup's per-device I/O counters. A device the cgroup never did
// I/O to (or, on v1, that no source counts for it) is absent.
type IO map[Dev]DeviceIO
