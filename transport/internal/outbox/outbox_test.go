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

// take receives the next frame the way a writer does: from C (then
// Taken), or Pop after More.
func take(t *testing.T, q *outbox.Queue) *protocol.Frame {
	t.Helper()
	for {
		select {
		case f := <-q.C():
			q.Taken(f)
			return f
		case <-q.More():
			if f, ok := q.Pop(); ok {
				return f
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no frame with %d waiting", q.Len())
		}
	}
}

// idle reports whether neither C nor More has anything (taking a More value).
func idle(q *outbox.Queue) bool {
	select {
	case <-q.C():
		return false
	case <-q.More():
		_, ok := q.Pop()
		return !ok
	default:
		return true
	}
}

// TestQueue: frames come out in order, at most max wait, the channel part
// takes the first ChanFrames and the rest spills into an array that grows
// with what waits and is released after a burst.
func TestQueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		max      int
		push     int // frames pushed before taking
		accepted int
		spills   bool // frames spilled beyond the channel part
		capAfter int  // spill array once taken empty
	}{
		{"fits the channel", 512, outbox.ChanFrames, outbox.ChanFrames, false, 0},
		{"a few more keep their room", 512, outbox.ChanFrames + 10, outbox.ChanFrames + 10, true, 16},
		{"a burst gives its room back", 512, 100, 100, true, 0},
		{"over the bound", 11, 20, 11, true, 4},
		{"a bound below the channel's size", 3, 5, 3, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := outbox.New(tc.max, 0)
			if q.SpillCap() != 0 || q.Len() != 0 || !idle(q) {
				t.Fatalf("new queue: spill %d, len %d, or not idle", q.SpillCap(), q.Len())
			}
			in := frames(tc.push)
			accepted := 0
			for _, f := range in {
				if q.Push(f) {
					accepted++
				}
			}
			if accepted != tc.accepted || q.Len() != tc.accepted {
				t.Fatalf("accepted %d, len %d; want %d", accepted, q.Len(), tc.accepted)
			}
			if spill := q.SpillCap(); (spill > 0) != tc.spills || spill > 0 && spill < tc.accepted-outbox.ChanFrames {
				t.Fatalf("spill array of %d for %d frames", spill, tc.accepted)
			}
			for i := range tc.accepted {
				if f := take(t, q); f != in[i] {
					t.Fatalf("frame %d: got seq %d", i, f.Seq)
				}
			}
			if !idle(q) {
				t.Fatal("frames left")
			}
			if q.Len() != 0 || q.SpillCap() != tc.capAfter {
				t.Fatalf("emptied: len %d, spill %d, want %d", q.Len(), q.SpillCap(), tc.capAfter)
			}
		})
	}
}

// TestQueueInterleaved: pushing while taking keeps the order and the
// bound, and reuses the spill array rather than growing it.
func TestQueueInterleaved(t *testing.T) {
	t.Parallel()
	const max = outbox.ChanFrames + 4
	q := outbox.New(max, 0)
	in := frames(1000)
	next := 0
	for i, f := range in {
		if !q.Push(f) {
			t.Fatalf("push %d refused with %d waiting", i, q.Len())
		}
		if q.Len() == max {
			for range max - 1 {
				if got := take(t, q); got != in[next] {
					t.Fatalf("frame %d out of order (got %d)", next, got.Seq)
				}
				next++
			}
		}
	}
	if c := q.SpillCap(); c > 2*max {
		t.Fatalf("spill array grew to %d with at most %d waiting", c, max)
	}
}

// TestQueueConcurrent: several producers and one writer that takes a frame
// per wake-up lose nothing and keep each producer's order.
func TestQueueConcurrent(t *testing.T) {
	t.Parallel()
	const producers, each = 4, 500
	q := outbox.New(producers*each, 0)
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
	for got := 0; got < producers*each; got++ {
		f := take(t, q)
		var p int
		fmt.Sscan(f.ConversationID, &p)
		if i := int(f.Seq); i != last[p]+1 {
			t.Fatalf("producer %d: frame %d after %d", p, i, last[p])
		}
		last[p] = int(f.Seq)
	}
	wg.Wait()
}

// BenchmarkHandOff compares the queue, its writer selecting over C and
// More or waiting in Wait, with the channel it replaced: one goroutine
// adds frames, another takes them; "paced" waits for each frame
// to be taken before adding the next (a writer that keeps up: the usual
// case), "backlog" adds as fast as it can (frames pile up and spill).
func BenchmarkHandOff(b *testing.B) {
	f := &protocol.Frame{Type: protocol.TypeDelta}
	for _, paced := range []bool{true, false} {
		name := map[bool]string{true: "paced", false: "backlog"}[paced]
		b.Run("outbox/"+name, func(b *testing.B) {
			q := outbox.New(512, 0)
			handOff(b, paced, func() {
				for !q.Push(f) {
				}
			}, func() int {
				select {
				case <-q.C():
				case <-q.More():
					if _, ok := q.Pop(); !ok {
						return 0
					}
				}
				return 1
			})
		})
		b.Run("wait/"+name, func(b *testing.B) { // the writer as transport/ws waits
			q := outbox.New(512, 0)
			handOff(b, paced, func() {
				for !q.Push(f) {
				}
			}, func() int {
				n := 0
				for f := q.Wait(); ; f, _ = q.Pop() {
					if f != nil {
						n++
					}
					if q.Len() == 0 {
						return n
					}
				}
			})
		})
		b.Run("channel/"+name, func(b *testing.B) {
			ch := make(chan *protocol.Frame, 512)
			handOff(b, paced, func() { ch <- f }, func() int {
				<-ch
				return 1
			})
		})
	}
}

// handOff pushes b.N frames with push while a writer goroutine takes them
// with take, which returns how many it took; paced waits for each frame to
// be taken before pushing the next.
func handOff(b *testing.B, paced bool, push func(), take func() int) {
	taken := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for n := 0; n < b.N; {
			k := take()
			n += k
			for range k {
				if paced {
					taken <- struct{}{}
				}
			}
		}
	}()
	for range b.N {
		push()
		if paced {
			<-taken
		}
	}
	<-done
}

// TestQueueWake: Wake leaves a value in More without a frame (Pop then
// reports false), once however often it is called, and wakes a writer
// blocked on C and More.
func TestQueueWake(t *testing.T) {
	t.Parallel()
	q := outbox.New(8, 0)
	woke := make(chan bool)
	go func() {
		select {
		case <-q.C():
			woke <- false
		case <-q.More():
			woke <- true
		}
	}()
	q.Wake()
	select {
	case more := <-woke:
		if !more {
			t.Fatal("the writer got a frame, not the wake-up")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wake did not wake the writer")
	}
	q.Wake()
	q.Wake()
	<-q.More()
	select {
	case <-q.More():
		t.Fatal("two Wakes left two values")
	default:
	}
	if f, ok := q.Pop(); ok || q.Len() != 0 {
		t.Fatalf("Pop after a Wake returned %v, len %d", f, q.Len())
	}
}

// waitFor runs q.Wait on its own goroutine and returns what it returned,
// failing when it does not return.
func waitFor(t *testing.T, q *outbox.Queue, started chan<- struct{}) *protocol.Frame {
	t.Helper()
	got := make(chan *protocol.Frame, 1)
	go func() {
		if started != nil {
			close(started)
		}
		got <- q.Wait()
	}()
	select {
	case f := <-got:
		return f
	case <-time.After(20 * time.Second):
		t.Fatalf("Wait did not return with %d waiting", q.Len())
		return nil
	}
}

// TestQueueWait: a writer waiting in Wait alone gets every frame in order
// (the spilled ones with Pop), and is woken by Wake and WatchDrain whether
// they come before it waits, while it waits or while its channel is full;
// a wake-up left over is passed over by Pop and never counted as a frame
// once taken.
func TestQueueWait(t *testing.T) {
	t.Parallel()
	t.Run("frames in order, spilled ones with Pop", func(t *testing.T) {
		t.Parallel()
		const n = outbox.ChanFrames + 5
		q := outbox.New(64, 0)
		fs := frames(n)
		for _, f := range fs {
			q.Push(f)
		}
		var got []*protocol.Frame
		for f := waitFor(t, q, nil); ; {
			if f != nil {
				got = append(got, f)
			}
			if q.Len() == 0 {
				break
			}
			f, _ = q.Pop()
		}
		if len(got) != n {
			t.Fatalf("took %d frames, want %d", len(got), n)
		}
		for i, f := range got {
			if f != fs[i] {
				t.Fatalf("frame %d is seq %d, want %d", i, f.Seq, i)
			}
		}
	})
	for _, tc := range []struct {
		name string
		wake func(q *outbox.Queue)
	}{
		{"Wake", (*outbox.Queue).Wake},
		{"WatchDrain", (*outbox.Queue).WatchDrain},
	} {
		t.Run(tc.name+" before Wait", func(t *testing.T) {
			t.Parallel()
			q := outbox.New(8, 0)
			tc.wake(q)
			if f := waitFor(t, q, nil); f != nil {
				t.Fatalf("Wait returned frame %v, want the wake-up", f)
			}
		})
		t.Run(tc.name+" during Wait", func(t *testing.T) {
			t.Parallel()
			q := outbox.New(8, 0)
			started, stop := make(chan struct{}), make(chan struct{})
			defer close(stop)
			go func() {
				<-started
				// Wake until Wait has returned (polled): once it waits, one
				// is enough.
				for {
					select {
					case <-stop:
						return
					default:
					}
					tc.wake(q)
					time.Sleep(time.Millisecond)
				}
			}()
			if f := waitFor(t, q, started); f != nil {
				t.Fatalf("Wait returned frame %v, want the wake-up", f)
			}
		})
		t.Run(tc.name+" with the channel full", func(t *testing.T) {
			t.Parallel()
			q := outbox.New(outbox.ChanFrames, 0)
			fs := frames(outbox.ChanFrames)
			for _, f := range fs {
				q.Push(f)
			}
			tc.wake(q) // must not block
			var got []*protocol.Frame
			for f := waitFor(t, q, nil); ; { // the wake-up or the first frame
				if f != nil {
					got = append(got, f)
				}
				if q.Len() == 0 {
					break
				}
				f, _ = q.Pop()
			}
			if len(got) != len(fs) || got[0] != fs[0] || got[len(got)-1] != fs[len(fs)-1] {
				t.Fatalf("took %d frames after the wake-up, want the %d queued in order", len(got), len(fs))
			}
		})
	}
	t.Run("a leftover wake-up is not a frame", func(t *testing.T) {
		t.Parallel()
		q := outbox.New(8, 0)
		started, woke, pushed := make(chan struct{}), make(chan struct{}), make(chan struct{})
		f0 := frames(1)[0]
		go func() {
			<-started
			for { // Wake until Wait has returned (polled), then push a frame
				select {
				case <-woke:
					q.Push(f0)
					close(pushed)
					return
				default:
				}
				q.Wake()
				time.Sleep(time.Millisecond)
			}
		}()
		waitFor(t, q, started) // the wake-up; maybe a second one is left in the channel
		close(woke)
		// Len counts a leftover wake-up too: wait for the push itself.
		select {
		case <-pushed:
		case <-time.After(20 * time.Second):
			t.Fatal("the frame never came")
		}
		var got *protocol.Frame
		for q.Len() > 0 {
			if f, ok := q.Pop(); ok {
				got = f
			}
		}
		if got != f0 || q.Len() != 0 {
			t.Fatalf("Pop returned %v with %d left, want the frame and nothing left", got, q.Len())
		}
	})
}

// sized returns a frame of n bytes of data.
func sized(n int) *protocol.Frame {
	return &protocol.Frame{Type: protocol.TypeDelta, Data: make([]byte, n)}
}

// TestQueueBytes: the queue refuses a frame that would take the bytes
// waiting over its bound (whatever the room in frames), takes a frame of
// any size into an empty queue, and counts the bytes of what the writer
// takes back out, however it takes it (C then Taken, Wait, Pop).
func TestQueueBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		maxBytes int
		sizes    []int // frames pushed in order
		accepted []bool
	}{
		{"under the bound", 1000, []int{400, 400, 200}, []bool{true, true, true}},
		{"over the bound", 1000, []int{400, 400, 201, 200}, []bool{true, true, false, true}},
		{"spilled frames count", 100, []int{10, 10, 10, 10, 10, 10, 10, 10, 10, 10, 10}, []bool{true, true, true, true, true, true, true, true, true, true, false}},
		{"a large frame into an empty queue", 100, []int{500, 1}, []bool{true, false}},
		{"no bound given", 0, []int{64 << 20, 64 << 20}, []bool{true, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			q := outbox.New(512, tc.maxBytes)
			want := 0
			for i, n := range tc.sizes {
				if got := q.Push(sized(n)); got != tc.accepted[i] {
					t.Fatalf("push %d of %d bytes with %d waiting: %v, want %v", i, n, q.Bytes(), got, tc.accepted[i])
				}
				if tc.accepted[i] {
					want += n
				}
				if q.Bytes() != want {
					t.Fatalf("after push %d: %d bytes counted, want %d", i, q.Bytes(), want)
				}
			}
			for q.Len() > 0 {
				take(t, q)
			}
			if q.Bytes() != 0 {
				t.Fatalf("emptied: %d bytes counted", q.Bytes())
			}
		})
	}
}

// TestQueueBytesTaken: each way a writer takes a frame gives its bytes
// back, so a writer that keeps up never meets the bound, however many
// bytes pass through.
func TestQueueBytesTaken(t *testing.T) {
	t.Parallel()
	takers := map[string]func(q *outbox.Queue) *protocol.Frame{
		"C": func(q *outbox.Queue) *protocol.Frame {
			f := <-q.C()
			q.Taken(f)
			return f
		},
		"Wait": (*outbox.Queue).Wait,
		"Pop": func(q *outbox.Queue) *protocol.Frame {
			f, _ := q.Pop()
			return f
		},
	}
	for name, takeOne := range takers {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			q := outbox.New(512, 1000)
			for i := range 100 {
				if !q.Push(sized(600)) {
					t.Fatalf("frame %d refused with %d bytes waiting", i, q.Bytes())
				}
				if f := takeOne(q); f == nil || q.Bytes() != 0 {
					t.Fatalf("frame %d: took %v, %d bytes still counted", i, f, q.Bytes())
				}
			}
		})
	}
}
