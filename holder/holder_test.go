package holder

import (
	"log/slog"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/cgprocfs/cgprocfs/fs"
)

func unixPair(t *testing.T) (*net.UnixConn, *net.UnixConn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_SEQPACKET|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var cs [2]*net.UnixConn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "pair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		cs[i] = c.(*net.UnixConn)
		t.Cleanup(func() { cs[i].Close() })
	}
	return cs[0], cs[1]
}

// The server's connection reaches the holder as the same open file, with
// its INIT; then the server's ready.
func TestMountedAndReadyReachTheHolder(t *testing.T) {
	ours, theirs := unixPair(t)
	h := &holder{Config: Config{Log: slog.New(slog.DiscardHandler)}}
	s := &server{events: make(chan string, 4), conn: make(chan *fs.Conn, 1)}
	go h.listen(ours, s)

	f, err := os.CreateTemp(t.TempDir(), "conn")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	init := fuse.InitIn{Major: 7, Minor: 41, Flags2: 0x80}
	link := &Link{conn: theirs}
	if err := link.Mounted(&fs.Conn{File: f, Init: init}); err != nil {
		t.Fatal(err)
	}
	if err := link.Ready(); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-s.conn:
		defer c.File.Close()
		if c.Init != init {
			t.Errorf("INIT %+v, want %+v", c.Init, init)
		}
		var a, b syscall.Stat_t
		syscall.Fstat(int(f.Fd()), &a)
		syscall.Fstat(int(c.File.Fd()), &b)
		if a.Ino != b.Ino || a.Dev != b.Dev {
			t.Error("the holder got another file")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no connection reached the holder")
	}
	select {
	case ev := <-s.events:
		if ev != msgReady {
			t.Errorf("event %q, want %q", ev, msgReady)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no ready reached the holder")
	}
}

func TestFromEnvWithoutAHolder(t *testing.T) {
	t.Setenv(envLink, "")
	if l, err := FromEnv(); l != nil || err != nil {
		t.Fatalf("FromEnv outside a holder: %v, %v", l, err)
	}
}
