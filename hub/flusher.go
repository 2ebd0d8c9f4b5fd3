package hub

import (
	"sync"
	"time"
)

// flusher holds generations with coalesced text waiting to be sent; the
// hub's Run loop sends it every CoalesceInterval. One flusher serves every
// generation, so coalescing costs no goroutine or timer per answer.
type flusher struct {
	mu      sync.Mutex
	pending map[*generation]struct{}
}

// add queues g; the caller holds g.conv.mu (flusher.mu is taken inside it).
func (f *flusher) add(g *generation) {
	f.mu.Lock()
	f.pending[g] = struct{}{}
	f.mu.Unlock()
}

// tick sends the waiting text of every queued generation.
func (f *flusher) tick() {
	f.mu.Lock()
	if len(f.pending) == 0 {
		f.mu.Unlock()
		return
	}
	gens := make([]*generation, 0, len(f.pending))
	for g := range f.pending {
		gens = append(gens, g)
	}
	clear(f.pending)
	f.mu.Unlock()
	now := time.Now()
	for _, g := range gens {
		g.conv.mu.Lock()
		if g.queued {
			g.flushLocked(now)
		}
		g.conv.mu.Unlock()
	}
}
