package natsbus

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"chatd/hub"
	"chatd/hub/natsbus/natstest"
	"chatd/hub/protocol"
)

// BenchmarkConcurrentAnswers measures what the bus adds to a follower's
// lateness with many answers at once, as the hub drives it: each answer
// produces a coalesced frame every 25 ms; its publisher (one goroutine per
// answer, as hub/publish.go) hands whatever queued to Publish in order;
// another instance Follows the answer from its first frame. Lateness is
// from when a frame was produced until Follow delivers it on the other
// instance, p50 and p99 over every frame of every answer ("all") and over
// the frames produced after the follower got its first one ("steady": the
// per-frame path without the start of the follow), and the start of the
// follows: from the Follow call to its first frame ("start"), and the
// process's CPU time per frame ("cpu-µs/frame": both instances and the
// three NATS servers, all in this process). One
// iteration is one round of 50 answers of 40 frames on the embedded
// three-node cluster.
//
// The owner's writes and the peer's reads per frame ("owner-writes/frame",
// "peer-reads/frame", its connections' system calls) say how many frames
// share one.
//
//	go test -run '^$' -bench ConcurrentAnswers -benchtime 2x ./hub/natsbus/
func BenchmarkConcurrentAnswers(b *testing.B) {
	const answers, frames, every = 50, 40, 25 * time.Millisecond
	c := natstest.Start(b, natstest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var ownerIO, peerIO connIO
	owner, peer := benchBus(ctx, b, c, "bench-owner", &ownerIO), benchBus(ctx, b, c, "bench-peer", &peerIO)
	var mu sync.Mutex
	var late []lateness
	var starts []time.Duration
	cpu0 := processCPU(b)
	ownerW0, peerR0 := ownerIO.writes.Load(), peerIO.reads.Load()
	b.ResetTimer()
	for round := range b.N {
		var wg sync.WaitGroup
		for i := range answers {
			a := answer(fmt.Sprintf("conv-%d-%d", round, i), fmt.Sprintf("msg-%d-%d", round, i), owner.InstanceID())
			wg.Add(1)
			go func() {
				defer wg.Done()
				got, start := benchAnswer(ctx, b, owner, peer, a, frames, every)
				mu.Lock()
				late = append(late, got...)
				starts = append(starts, start)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	b.StopTimer()
	frameCount := float64(b.N * answers * frames)
	b.ReportMetric(float64((processCPU(b)-cpu0).Microseconds())/frameCount, "cpu-µs/frame")
	b.ReportMetric(float64(ownerIO.writes.Load()-ownerW0)/frameCount, "owner-writes/frame")
	b.ReportMetric(float64(peerIO.reads.Load()-peerR0)/frameCount, "peer-reads/frame")
	var all, steady []time.Duration
	for _, l := range late {
		all = append(all, l.d)
		if l.steady {
			steady = append(steady, l.d)
		}
	}
	for _, s := range []struct {
		name string
		d    []time.Duration
	}{{"all", all}, {"steady", steady}, {"start", starts}} {
		slices.Sort(s.d)
		b.ReportMetric(float64(s.d[len(s.d)/2].Microseconds()), s.name+"-p50-µs")
		b.ReportMetric(float64(s.d[len(s.d)*99/100].Microseconds()), s.name+"-p99-µs")
	}
	b.ReportMetric(float64(all[len(all)-1].Microseconds()), "max-µs")
}

// processCPU is the CPU time (user and system) this process used so far:
// the embedded NATS servers' too, so only differences between builds
// measured alike mean something.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// lateness is one frame's: steady when it was produced after the follower
// got its first frame (the per-frame path), else it waited for the follow
// to start (the Follow's consumer being created).
type lateness struct {
	d      time.Duration
	steady bool
}

func benchBus(ctx context.Context, b *testing.B, c *natstest.Cluster, id string, io *connIO) *Bus {
	bus, err := New(Options{URLs: c.URLs(), InstanceID: id, Stream: StreamLimits{MaxBytes: 256 << 20},
		clientOptions: []nats.Option{nats.SetCustomDialer(io)}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bus.Close(context.Background()) })
	for bus.Health(ctx) != nil {
		time.Sleep(20 * time.Millisecond) // polling the bus's state
	}
	return bus
}

// benchAnswer runs one answer: a producer queues a frame every interval,
// a publisher publishes what queued in order, and the peer follows from
// after the first frame was published (as the Started event makes it).
// It returns each frame's lateness at the follower, and how long the
// follow took from its start to its first frame.
func benchAnswer(ctx context.Context, b *testing.B, owner, peer *Bus, a hub.AnswerRef, n int, every time.Duration) ([]lateness, time.Duration) {
	produced := make([]time.Time, n)
	var mu sync.Mutex
	var queue []*protocol.Frame
	wake := make(chan struct{}, 1)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for i := range n {
			typ := protocol.TypeDelta
			if i == n-1 {
				typ = protocol.TypeDone
			}
			f := &protocol.Frame{Type: typ, ConversationID: a.ConversationID, MessageID: a.MessageID,
				Seq: int64(i), Data: []byte(strconv.Itoa(i))}
			mu.Lock()
			produced[i] = time.Now()
			queue = append(queue, f)
			mu.Unlock()
			select {
			case wake <- struct{}{}:
			default:
			}
			<-t.C
		}
	}()
	late := make([]lateness, 0, n)
	var first time.Time // when the follower got its first frame
	var begun time.Time // when the follow started
	followed := make(chan struct{})
	follow := sync.OnceFunc(func() {
		mu.Lock()
		begun = time.Now()
		mu.Unlock()
		go func() {
			defer close(followed)
			_ = peer.Follow(ctx, a, func(f *protocol.Frame) {
				i, _ := strconv.Atoi(string(f.Data))
				mu.Lock()
				now := time.Now()
				if first.IsZero() {
					first = now
				}
				l := lateness{d: now.Sub(produced[i]), steady: produced[i].After(first)}
				late = append(late, l)
				mu.Unlock()
			})
		}()
	})
	for done := false; !done; {
		<-wake
		mu.Lock()
		fs := queue
		queue = nil
		mu.Unlock()
		if len(fs) == 0 {
			continue // woken for frames an earlier pass took
		}
		for _, f := range fs {
			if err := owner.Publish(ctx, a, f); err != nil {
				b.Error(err)
				return nil, 0
			}
		}
		follow()
		done = fs[len(fs)-1].Type == protocol.TypeDone
	}
	<-followed
	mu.Lock()
	defer mu.Unlock()
	return late, first.Sub(begun)
}

// connIO is a NATS client's dialer that counts the system calls of its
// connections: writes (nats.go's flusher writes what was published since
// its last write) and reads.
type connIO struct {
	writes, reads atomic.Int64
}

func (c *connIO) Dial(network, address string) (net.Conn, error) {
	conn, err := (&net.Dialer{Timeout: 2 * time.Second}).Dial(network, address)
	if err != nil {
		return nil, err
	}
	return &countedConn{Conn: conn, io: c}, nil
}

type countedConn struct {
	net.Conn
	io *connIO
}

func (c *countedConn) Write(b []byte) (int, error) {
	c.io.writes.Add(1)
	return c.Conn.Write(b)
}

func (c *countedConn) Read(b []byte) (int, error) {
	c.io.reads.Add(1)
	return c.Conn.Read(b)
}
