package holder

import (
	"fmt"
	"log/slog"
	"sync"
	"syscall"

	"github.com/cgprocfs/cgprocfs/seccompagent"
)

// The holder keeps the seccomp listener fds of the containers whose
// sysinfo(2) the servers answer, as it keeps the FUSE connection: the
// kernel fails a container's notified calls with ENOSYS once the last copy
// of its fd is closed, so a server's death must not close it. Each fd
// comes with its slot (see seccompagent.Keeper): after a server's death the
// holder answers the notification it had received and not answered with
// CONTINUE, since the kernel never sends it again, and only then does the
// next server get the fds.

// keptNotify is one container's listener fd and its slot, the holder's
// copies.
type keptNotify struct {
	container    string
	notify, slot int
	// owner is the pid of the server that watches the fd: the one that
	// kept it, or was handed it.
	owner int
	// slotIno names the fd in a server's msgDrop.
	slotIno uint64
}

// notifyKeep is the holder's set of kept listener fds. Its methods may be
// called from any goroutine.
type notifyKeep struct {
	mu   sync.Mutex
	kept []keptNotify
	// gone and answerLeft are seccompagent's, but in tests.
	gone       func(notify int) bool
	answerLeft func(notify, slot int) (bool, error)
}

func newNotifyKeep() *notifyKeep {
	return &notifyKeep{gone: seccompagent.Gone, answerLeft: seccompagent.AnswerLeft}
}

// add keeps a container's fds, and drops those of containers that ended.
func (k *notifyKeep) add(owner int, container string, notify, slot int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pruneLocked()
	var st syscall.Stat_t
	syscall.Fstat(slot, &st)
	k.kept = append(k.kept, keptNotify{container: container, notify: notify, slot: slot, owner: owner, slotIno: st.Ino})
}

// drop closes the fds kept with the slot of inode slotIno.
func (k *notifyKeep) drop(slotIno uint64) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for i, n := range k.kept {
		if n.slotIno == slotIno {
			n.close()
			k.kept = append(k.kept[:i], k.kept[i+1:]...)
			return nil
		}
	}
	return fmt.Errorf("no listener kept with slot inode %d", slotIno)
}

// pruneLocked closes the fds of filters with no task left: nobody will
// call through them again.
func (k *notifyKeep) pruneLocked() {
	live := k.kept[:0]
	for _, n := range k.kept {
		if k.gone(n.notify) {
			n.close()
			continue
		}
		live = append(live, n)
	}
	clear(k.kept[len(live):])
	k.kept = live
}

// settle answers, with CONTINUE, every notification a dead server left
// received and unanswered (its callers then run the real call and get
// the host's values); it must run once no server watches the fds, before
// the next one does. It returns how many it answered.
func (k *notifyKeep) settle(log *slog.Logger) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pruneLocked()
	answered := 0
	for _, n := range k.kept {
		ok, err := k.answerLeft(n.notify, n.slot)
		if err != nil {
			log.Error("answering a notification the dead server left", "container", n.container, "err", err)
		}
		if ok {
			answered++
		}
	}
	return answered
}

// handTo is the kept fds for server to watch from now on (still the
// holder's: the socket copies them), but those it watches already (which
// it kept itself while asking): two watchers of one fd would share its
// slot.
func (k *notifyKeep) handTo(server int) []keptNotify {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pruneLocked()
	var out []keptNotify
	for i := range k.kept {
		if k.kept[i].owner != server {
			k.kept[i].owner = server
			out = append(out, k.kept[i])
		}
	}
	return out
}

// closeAll closes every kept fd: the holder ends.
func (k *notifyKeep) closeAll() {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, n := range k.kept {
		n.close()
	}
	k.kept = nil
}

func (n keptNotify) close() {
	syscall.Close(n.notify)
	syscall.Close(n.slot)
}
