package fs

import (
	"fmt"
	"net"
	"os"
)

// NotifyReady tells a supervisor that speaks systemd's notify protocol
// (Type=notify units) that the daemon serves: it writes READY=1 to the
// datagram socket named by $NOTIFY_SOCKET. Without that variable it does
// nothing. The protocol is one datagram, so no library is needed for it.
func NotifyReady() error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return nil
	}
	if addr[0] == '@' { // an abstract socket
		addr = "\x00" + addr[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("notifying the supervisor: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("READY=1")); err != nil {
		return fmt.Errorf("notifying the supervisor: %w", err)
	}
	return nil
}
