// Package silentserver is a test server that accepts TCP connections and
// never answers on them, as a hung mongod does: a client's handshake waits
// on it until its timeout or its context ends.
package silentserver

import (
	"net"
	"sync"
	"testing"
)

// Start listens on a free local port and returns its address; dialled is
// closed once the first connection is accepted. The listener and every
// connection are closed when the test ends.
func Start(t testing.TB) (addr string, dialled <-chan struct{}) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{})
	var once sync.Once
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			once.Do(func() { close(first) })
		}
	})
	t.Cleanup(func() {
		_ = ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String(), first
}
