// Package gate counts the calls of some work under way until it is
// closed: from then on none enters, and Wait waits for those under way
// (account deletions at shutdown, a cluster drain's ends of users' live
// work, a router's model list fetches).
package gate

import (
	"context"
	"sync"

	"chatd/internal/waitctx"
)

// Gate is open when made (the zero value); it is safe for concurrent use.
type Gate struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// Enter counts a call that begins; false once closed (nothing counted).
func (g *Gate) Enter() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return false
	}
	g.wg.Add(1)
	return true
}

// Leave counts a call that entered as done.
func (g *Gate) Leave() { g.wg.Done() }

// Go runs f on a goroutine counted as a call, and reports whether it
// did: not once closed.
func (g *Gate) Go(f func()) bool {
	if !g.Enter() {
		return false
	}
	go func() {
		defer g.Leave()
		f()
	}()
	return true
}

// Close makes every later Enter fail.
func (g *Gate) Close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// Wait waits until the calls under way are done, or ctx ends (its error
// then, wrapped by waitctx).
func (g *Gate) Wait(ctx context.Context) error {
	return waitctx.Wait(ctx, &g.wg)
}
