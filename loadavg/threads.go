package loadavg

import "github.com/cgprocfs/cgprocfs/kernelfs"

// ThreadsCounter lists a cgroup's threads (v1 "tasks", v2
// "cgroup.threads") and reads each thread's state from /proc/<tid>/stat:
// exact, since the stat letter D is the kernel's own test for a task that
// contributes to the load (TASK_UNINTERRUPTIBLE set, TASK_NOLOAD not).
// The stat files are read through kernelfs, which keeps their descriptors
// open between samples (an open costs far more than a read) and lets them
// go when the thread exits.
type ThreadsCounter struct {
	fs   *kernelfs.FS
	list threadList
}

// NewThreadsCounter makes a counter that reads threads from the cgroup file
// tidsFile ("tasks" on v1, "cgroup.threads" on v2) and their states through
// fs.
func NewThreadsCounter(fs *kernelfs.FS, tidsFile string) *ThreadsCounter {
	return &ThreadsCounter{fs: fs, list: threadList{fs: fs, file: tidsFile}}
}

func (c *ThreadsCounter) Name() string { return "threads" }

func (c *ThreadsCounter) Count(dirfd int, dir string) (Counts, error) {
	tids, err := c.list.read(dirfd, dir)
	if err != nil {
		return Counts{}, err
	}
	var n Counts
	for _, tid := range tids {
		st, err := c.fs.PidState(tid)
		if err != nil {
			continue // exited since the list was read
		}
		n.Total++
		n.NoteNewest(tid)
		switch st {
		case 'R':
			n.Running++
		case 'D':
			n.Uninterruptible++
		}
	}
	return n, nil
}

// EndRound has nothing to do: kernelfs lets exited threads' descriptors go.
func (c *ThreadsCounter) EndRound() {}

func (c *ThreadsCounter) Close() error { return nil }
