package hub

import (
	"sync"
	"time"
)

// flushSlots is how many buckets (and ticks) one coalescing interval spans.
const flushSlots = 8

// flusher sends coalesced text when it is due. A generation whose last
// delta went out less than CoalesceInterval ago waits, with the instant it
// is due (its last delta plus the interval), in a ring of buckets each one
// tick long; the hub's Run loop wakes at every bucket's start while any
// text waits, and sends the text of the buckets that began. Each answer is
// flushed on its own cadence, so the writers of hundreds of sockets wake a
// few at a time rather than all together at one global tick (which, on a
// busy machine, made the last of them wait for all the others), and
// coalescing still costs no goroutine or timer per answer. Text is sent at
// most one tick before it is due, never after (but for scheduling), so no
// delta waits longer than the interval.
type flusher struct {
	base time.Time     // bucket i begins at base + i*step
	step time.Duration // the length of a bucket
	wake chan struct{} // buffered (1): the wheel went from empty to busy

	mu      sync.Mutex
	next    int64           // the first bucket not yet sent
	buckets [][]*generation // ring: bucket i is buckets[i % len]
	entries int             // queued entries (a generation flushed early may leave a stale one)

	due []*generation // scratch of tick, which only the Run goroutine calls
}

// newFlusher returns a flusher whose buckets are an eighth of interval
// long, in a ring that spans the longest wait, maxInterval.
func newFlusher(interval, maxInterval time.Duration) *flusher {
	step := max(interval/flushSlots, time.Millisecond)
	return &flusher{
		base:    time.Now(),
		step:    step,
		wake:    make(chan struct{}, 1),
		buckets: make([][]*generation, int((max(interval, maxInterval)+step-1)/step)+2),
	}
}

// index is the bucket instant t falls in.
func (f *flusher) index(t time.Time) int64 { return int64(t.Sub(f.base) / f.step) }

// untilNext is the time from now to the start of the next bucket.
func (f *flusher) untilNext(now time.Time) time.Duration {
	return f.base.Add(time.Duration(f.index(now)+1) * f.step).Sub(now)
}

// add queues g, due at due (at most one interval after now), and stores
// its bucket in g.flushAt (before tick can take it). The caller holds
// g.conv.mu (flusher.mu is taken inside it).
func (f *flusher) add(g *generation, due, now time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.entries == 0 {
		f.next = max(f.next, f.index(now)) // the wheel was idle: Run's timer restarts
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
	n := int64(len(f.buckets))
	i := min(max(f.index(due), f.next), f.next+n-1) // never beyond the ring (only if ticks run late)
	f.buckets[i%n] = append(f.buckets[i%n], g)
	f.entries++
	g.flushAt.Store(i + 1)
}

// tick sends the waiting text of the generations in every bucket that has
// begun by now, and reports whether text still waits.
func (f *flusher) tick(now time.Time) (more bool) {
	f.mu.Lock()
	cur := f.index(now)
	n := int64(len(f.buckets))
	for ; f.next <= cur && f.entries > 0; f.next++ {
		b := &f.buckets[f.next%n]
		f.due = append(f.due, *b...)
		f.entries -= len(*b)
		clear(*b)
		*b = (*b)[:0]
	}
	more = f.entries > 0
	f.mu.Unlock()
	for _, g := range f.due {
		// A stale entry (g was sent early, by its next token or a drain,
		// and maybe queued again with an entry of its own) is passed over
		// without taking the conversation's lock, which the answer's
		// goroutine holds at every token: with widened coalescing most
		// deltas go out early, so most entries are stale.
		if !g.dueBy(cur) {
			continue
		}
		g.conv.mu.Lock()
		if g.dueBy(cur) { // it may have been sent since
			g.flushLocked(now)
		}
		g.conv.mu.Unlock()
	}
	clear(f.due)
	f.due = f.due[:0]
	return more
}
