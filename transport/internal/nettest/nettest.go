// Package nettest holds the socket tweaks the transports' tests use to
// make a client that stops reading block the server quickly: small kernel
// buffers on both ends of a real TCP connection.
package nettest

import (
	"net"
	"syscall"
)

// BufferBytes is the socket buffer size asked for (the kernel may round it up).
const BufferBytes = 4096

// SmallSendBuffers wraps l so that accepted connections get a small send buffer.
func SmallSendBuffers(l net.Listener) net.Listener { return smallSend{l} }

type smallSend struct{ net.Listener }

func (l smallSend) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(BufferBytes)
	}
	return c, err
}

// SmallReceiveBuffer is a dialer whose connections get a small receive
// buffer, set before connecting so the TCP window starts small.
func SmallReceiveBuffer() *net.Dialer {
	return &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, BufferBytes)
		})
	}}
}
