package outbox_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"chatd/hub/protocol"
	"chatd/transport/internal/outbox"
)

func frames(n int) []*protocol.Frame {
	fs := make([]*protocol.Frame, n)
	for i := range fs {
		fs[i] = &protocol.Frame{Type: protocol.TypeDelta, Seq: int64(i)}
	}
	return fs
}

// ready reports whether Ready holds a value, taking it.
func ready(q *outbox.Queue) bool {
	select {
	case <-q.Ready():
		return true
	default:
		return false
	}
}

// TestQueue: frames come out in order, at most max wait, Ready holds a
// value exactly while frames wait, and the backing array grows with what
// waits and is released after a burst.
func TestQueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		max      int
		push     int // frames pushed before popping
		accepted int
		capAfter int // backing array once popped empty
	}{
		{"one frame", 512, 1, 1, 1},
		{"a few frames keep their room", 512, 10, 10, 16},
		{"a burst gives its room back", 512, 100, 100, 0},
		{"over the bound", 3, 5, 3, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := outbox.New(tc.max)
			if q.Cap() != 0 || q.Len() != 0 || ready(q) {
				t.Fatalf("new queue: cap %d, len %d, or ready", q.Cap(), q.Len())
			}
			in := frames(tc.push)
			accepted := 0
			for _, f := range in {
				if q.Push(f) {
					accepted++
				}
			}
			if accepted != tc.accepted || q.Len() != tc.accepted {
				t.Fatalf("accepted %d, len %d, want %d", accepted, q.Len(), tc.accepted)
			}
			for i := range tc.accepted {
				if !ready(q) {
					t.Fatalf("not ready with %d frames waiting", q.Len())
				}
				f, ok := q.Pop()
				if !ok || f != in[i] {
					t.Fatalf("pop %d: got %v %v, want frame %d", i, f, ok, i)
				}
			}
			if ready(q) {
				t.Fatal("ready while empty")
			}
			if _, ok := q.Pop(); ok {
				t.Fatal("popped from an empty queue")
			}
			if q.Len() != 0 || q.Cap() != tc.capAfter {
				t.Fatalf("emptied: len %d, cap %d, want cap %d", q.Len(), q.Cap(), tc.capAfter)
			}
		})
	}
}

// TestQueueInterleaved: pushing while popping keeps the order and the
// bound, and reuses the backing array rather than growing it.
func TestQueueInterleaved(t *testing.T) {
	t.Parallel()
	q := outbox.New(4)
	in := frames(1000)
	next := 0
	for i, f := range in {
		if !q.Push(f) {
			t.Fatalf("push %d refused with %d waiting", i, q.Len())
		}
		if q.Len() == 4 {
			for range 3 {
				got, _ := q.Pop()
				if got != in[next] {
					t.Fatalf("frame %d out of order", next)
				}
				next++
			}
		}
	}
	if c := q.Cap(); c > 4 {
		t.Fatalf("backing array grew to %d with at most 4 waiting", c)
	}
}

// TestQueueConcurrent: several producers and one writer that takes a frame
// per wake-up lose nothing and keep each producer's order.
func TestQueueConcurrent(t *testing.T) {
	t.Parallel()
	const producers, each = 4, 500
	q := outbox.New(producers * each)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if !q.Push(&protocol.Frame{Type: protocol.TypeDelta, ConversationID: fmt.Sprint(p), Seq: int64(i)}) {
					t.Errorf("push refused")
					return
				}
			}
		})
	}
	last := make([]int, producers)
	for i := range last {
		last[i] = -1
	}
	deadline := time.After(20 * time.Second)
	for got := 0; got < producers*each; {
		select {
		case <-q.Ready():
		case <-deadline:
			t.Fatalf("got %d of %d frames", got, producers*each)
		}
		f, ok := q.Pop()
		if !ok {
			continue
		}
		var p int
		fmt.Sscan(f.ConversationID, &p)
		if i := int(f.Seq); i != last[p]+1 {
			t.Fatalf("producer %d: frame %d after %d", p, i, last[p])
		}
		last[p] = int(f.Seq)
		got++
	}
	wg.Wait()
}
