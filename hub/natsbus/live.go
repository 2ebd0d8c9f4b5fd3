package natsbus

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// liveQueueMax bounds the frames waiting in one follow's queue; past it
// the follow drops what comes and catches up from JetStream instead.
const liveQueueMax = 4096

// Pending limits of the instance's subscription to every answer's frames:
// far above what the hub publishes (tens of frames per second per answer).
const (
	livePendingMsgs  = 1 << 20
	livePendingBytes = 512 << 20
)

// liveFrames receives the frames of every answer as they are published,
// on one core NATS subscription per instance made when the bus starts
// (so its interest has spread through the cluster long before any follow),
// and hands each to the follows of its answer. A frame missed here (a
// reconnect, a slow consumer) is read from JetStream by the follow.
type liveFrames struct {
	prefix string // subject prefix up to the answer's token
	mu     sync.Mutex
	queues map[string]map[*liveQueue]struct{} // by answer token
	// drop, set by tests, loses the frames it returns true for, as a
	// network fault would.
	drop atomic.Pointer[func(*nats.Msg) bool]
}

func newLiveFrames(prefix string) *liveFrames {
	return &liveFrames{prefix: prefix, queues: make(map[string]map[*liveQueue]struct{})}
}

// subscribe starts receiving the frames of every answer on nc.
func (l *liveFrames) subscribe(nc *nats.Conn) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(l.prefix+"*", l.deliver)
	if err != nil {
		return nil, fmt.Errorf("natsbus: subscribe to answers: %w", err)
	}
	if err := sub.SetPendingLimits(livePendingMsgs, livePendingBytes); err != nil {
		return nil, fmt.Errorf("natsbus: subscribe to answers: %w", err)
	}
	return sub, nil
}

// add registers a follow of the answer whose subject token is tok.
func (l *liveFrames) add(tok string) *liveQueue {
	q := &liveQueue{wake: make(chan struct{}, 1)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.queues[tok] == nil {
		l.queues[tok] = make(map[*liveQueue]struct{})
	}
	l.queues[tok][q] = struct{}{}
	return q
}

// remove unregisters q.
func (l *liveFrames) remove(tok string, q *liveQueue) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.queues[tok], q)
	if len(l.queues[tok]) == 0 {
		delete(l.queues, tok)
	}
}

// deliver hands m to the follows of its answer; it never blocks.
func (l *liveFrames) deliver(m *nats.Msg) {
	tok, ok := strings.CutPrefix(m.Subject, l.prefix)
	if drop := l.drop.Load(); !ok || drop != nil && (*drop)(m) {
		return
	}
	l.mu.Lock()
	qs := make([]*liveQueue, 0, len(l.queues[tok]))
	for q := range l.queues[tok] {
		qs = append(qs, q)
	}
	l.mu.Unlock()
	for _, q := range qs {
		q.push(m)
	}
}

// resyncAll makes every follow check JetStream for frames it may have
// missed (after a reconnect or a slow consumer drop).
func (l *liveFrames) resyncAll() {
	l.mu.Lock()
	var qs []*liveQueue
	for _, set := range l.queues {
		for q := range set {
			qs = append(qs, q)
		}
	}
	l.mu.Unlock()
	for _, q := range qs {
		q.markResync()
	}
}

// liveQueue is one follow's queue of live frames, drained by its goroutine.
type liveQueue struct {
	mu     sync.Mutex
	msgs   []*nats.Msg
	resync bool // frames may have been missed: read JetStream
	wake   chan struct{}
}

func (q *liveQueue) push(m *nats.Msg) {
	q.mu.Lock()
	if len(q.msgs) < liveQueueMax {
		q.msgs = append(q.msgs, m)
	} else {
		q.resync = true
	}
	q.mu.Unlock()
	q.signal()
}

func (q *liveQueue) markResync() {
	q.mu.Lock()
	q.resync = true
	q.mu.Unlock()
	q.signal()
}

func (q *liveQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take empties the queue.
func (q *liveQueue) take() (msgs []*nats.Msg, resync bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	msgs, resync = q.msgs, q.resync
	q.msgs, q.resync = nil, false
	return msgs, resync
}
