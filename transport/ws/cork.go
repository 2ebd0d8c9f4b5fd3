package ws

import (
	"net"
	"sync"
)

// corkLimit bounds what a corked connection keeps: a write that would take
// it past this sends what waits first, and a larger one goes out as it is.
const corkLimit = 32 << 10

// corkBufs holds the buffers of corked connections between batches, so an
// idle connection keeps none.
var corkBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, 4<<10)
	return &b
}}

// corkConn is the socket under the WebSocket library. While the writer
// holds it corked (several frames wait in its queue), what the library
// writes is kept, and goes to the socket in one write when the writer
// uncorks it: a send's ack, its two messages and its conversation frame
// are one system call, and one read for the client, instead of four.
// Frames are written whole to it (the library writes each frame under its
// own lock, and the writer uncorks between frames), so the control frames
// the library writes from other goroutines (pongs, pings) keep their place
// between frames; the lock here orders every byte that reaches the socket.
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    *[]byte // from corkBufs while bytes wait; nil otherwise
}

// Write sends p, or keeps it while the connection is corked.
func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	if c.buf != nil && len(*c.buf)+len(p) > corkLimit {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	if len(p) >= corkLimit {
		return c.Conn.Write(p)
	}
	if c.buf == nil {
		c.buf = corkBufs.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// cork keeps what is written from now on until uncork.
func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

// uncork writes what was kept, in one write, and lets writes through again.
func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

// flushLocked writes what waits and gives its buffer back; c.mu is held.
func (c *corkConn) flushLocked() error {
	if c.buf == nil {
		return nil
	}
	b := c.buf
	c.buf = nil
	_, err := c.Conn.Write(*b)
	if cap(*b) <= corkLimit {
		*b = (*b)[:0]
		corkBufs.Put(b)
	}
	return err
}
