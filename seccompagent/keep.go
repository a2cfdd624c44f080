package seccompagent

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A listener fd outlives the agent's process when a Keeper holds a copy of
// it (the holder of `cgprocfs mount`): the kernel answers ENOSYS only once
// the last copy is closed. But the kernel never sends a notification twice:
// one the agent had received and not answered when it died would leave its
// caller waiting for as long as the copy is held. So the agent receives
// each notification straight into a slot, a page of a memfd the keeper
// holds too: the kernel writes the notification there in the RECV ioctl
// itself, so no kill can fall between receiving and recording it, and the
// agent zeroes it once answered. After the agent's death the keeper
// answers a slot's id that is still valid with CONTINUE (AnswerLeft).

// Keeper holds copies of the listener fds this agent watches, with their
// slots, and hands them to the next agent (Resume).
type Keeper interface {
	// Keep holds a copy of notify and slot (the agent keeps its own) for
	// the container named container.
	Keep(container string, notify, slot int) error
	// Drop closes the copies kept with the slot whose inode is slotIno:
	// the agent stopped answering on it for a reason of its own (a bug,
	// an unexpected error), and the container's calls must get ENOSYS
	// from the kernel rather than wait for a next agent.
	Drop(slotIno uint64) error
}

// Held is a listener fd a previous agent watched, and its slot.
type Held struct {
	Container    string
	Notify, Slot int
}

// slotSize is one page: the slot holds one struct seccomp_notif.
const slotSize = 4096

// slot is where one listener fd's notification is received.
type slot struct {
	fd  int
	mem []byte
	// ino names the slot to the keeper (each memfd is its own inode).
	ino uint64
}

func newSlot() (*slot, error) {
	fd, err := unix.MemfdCreate("cgprocfs-seccomp-slot", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd for the notification slot: %w", err)
	}
	if err := unix.Ftruncate(fd, slotSize); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sizing the notification slot: %w", err)
	}
	s, err := mapSlot(fd)
	if err != nil {
		unix.Close(fd)
	}
	return s, err
}

// mapSlot maps a slot's memfd; the slot owns fd from then on.
func mapSlot(fd int) (*slot, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("the notification slot: %w", err)
	}
	if st.Size < slotSize {
		return nil, fmt.Errorf("the notification slot is %d bytes, not %d", st.Size, slotSize)
	}
	mem, err := unix.Mmap(fd, 0, slotSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("mapping the notification slot: %w", err)
	}
	return &slot{fd: fd, mem: mem, ino: st.Ino}, nil
}

// notif is the slot's struct, which RECV fills.
func (s *slot) notif() *seccompNotif { return (*seccompNotif)(unsafe.Pointer(&s.mem[0])) }

// id is the notification id in the slot (0: none), as another process may
// have written it.
func (s *slot) id() uint64 { return atomic.LoadUint64(&s.notif().ID) }

// clear empties the slot once its notification is answered: the id first,
// so that a kill in between leaves no id; RECV wants the whole struct zero.
func (s *slot) clear() {
	atomic.StoreUint64(&s.notif().ID, 0)
	*s.notif() = seccompNotif{}
}

func (s *slot) close() {
	unix.Munmap(s.mem)
	unix.Close(s.fd)
}

// AnswerLeft answers the notification a dead agent left in slot (a memfd a
// Keeper holds) with CONTINUE, so that its caller runs the real call
// rather than wait for ever; answered is false when there was none, or its
// caller no longer waits. Only for a slot no live agent uses.
func AnswerLeft(notify, slotFd int) (answered bool, err error) {
	// Mapped here and unmapped below; slotFd stays the caller's.
	s, err := mapSlot(slotFd)
	if err != nil {
		return false, err
	}
	defer unix.Munmap(s.mem)
	id := s.id()
	if id == 0 {
		return false, nil
	}
	if idValid(uintptr(notify), id) != nil {
		// Answered before the agent cleared its slot, or the caller
		// was killed or interrupted.
		return false, nil
	}
	err = send(uintptr(notify), continueResp(id))
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("answering notification %d: %w", id, err)
	}
	return true, nil
}

// Gone tells whether a listener fd's filter has no task left (its
// container ended): it then polls POLLHUP and its copies can be closed.
func Gone(notify int) bool {
	ev, err := pollNow(notify)
	return err == nil && ev&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
}
