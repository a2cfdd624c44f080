package seccompagent

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The seccomp user-notification structs of include/uapi/linux/seccomp.h,
// which golang.org/x/sys/unix does not define (it has the ioctl numbers).

// seccompData is struct seccomp_data: the system call as the filter saw it.
type seccompData struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

// seccompNotif is struct seccomp_notif, what SECCOMP_IOCTL_NOTIF_RECV
// fills: the notification's cookie, the calling thread (as the receiver's
// pid namespace numbers it; 0 when it is not visible there) and its call.
type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Data  seccompData
}

// seccompNotifResp is struct seccomp_notif_resp, the answer given with
// SECCOMP_IOCTL_NOTIF_SEND: the call returns Val, or fails with -Error, or
// with Flags SECCOMP_USER_NOTIF_FLAG_CONTINUE runs as if no filter had
// stopped it (Val and Error then must be 0).
type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

// seccompNotifSizes is struct seccomp_notif_sizes, what
// SECCOMP_GET_NOTIF_SIZES tells about the running kernel.
type seccompNotifSizes struct {
	Notif, NotifResp, Data uint16
}

// checkKernelSizes refuses a kernel whose notification structs are not the
// ones above: RECV would write past ours (the kernel copies its own size)
// and SEND would read garbage.
func checkKernelSizes() error {
	var s seccompNotifSizes
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_GET_NOTIF_SIZES, 0, uintptr(unsafe.Pointer(&s))); errno != 0 {
		return fmt.Errorf("seccomp(SECCOMP_GET_NOTIF_SIZES): %w (the kernel has no seccomp user notification: 5.0 or later needed)", errno)
	}
	want := seccompNotifSizes{uint16(unsafe.Sizeof(seccompNotif{})), uint16(unsafe.Sizeof(seccompNotifResp{})), uint16(unsafe.Sizeof(seccompData{}))}
	if s != want {
		return fmt.Errorf("the kernel's seccomp notification sizes %+v differ from ours %+v", s, want)
	}
	return nil
}

func ioctl(fd uintptr, req uint, arg unsafe.Pointer) error {
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
		switch errno {
		case 0:
			return nil
		case unix.EINTR:
			continue
		}
		return errno
	}
}

// recv takes the next notification into n, which must be zero (the
// kernel refuses, EINVAL, a struct that is not): a slot's struct, which the
// kernel fills in the ioctl itself, or the caller's. It must be called only
// when the fd polls readable: the ioctl itself waits for one, with no
// timeout. It fails with ENOENT when the caller was killed after the poll.
func recv(fd uintptr, n *seccompNotif) error {
	return ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(n))
}

// send answers a notification; ENOENT means the caller is no longer
// waiting (killed, or its wait interrupted by a signal).
func send(fd uintptr, r seccompNotifResp) error {
	return ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&r))
}

// idValid tells whether notification id still waits for its answer: the
// caller has not been killed or interrupted since it was received.
func idValid(fd uintptr, id uint64) error {
	return ioctl(fd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id))
}

// continueResp lets the kernel run the call itself.
func continueResp(id uint64) seccompNotifResp {
	return seccompNotifResp{ID: id, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
}

// nativeArch is the AUDIT_ARCH_* of this build's own system call ABI: the
// only one whose sysinfo the agent answers, since procfiles.EncodeSysinfo
// lays the struct out for it (compat callers, such as i386 programs on
// amd64, use another struct and syscall number). 0 where the agent answers
// nothing.
func nativeArch() uint32 {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64
	}
	return 0
}

// errNotNotifyFd is returned for a received descriptor that is not a
// seccomp listener.
var errNotNotifyFd = errors.New("not a seccomp notification fd")
