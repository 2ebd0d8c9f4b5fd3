package natsbus

import (
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// liveQueueMax bounds the frames waiting for one follow; past it the
// frames that come are dropped (a slow consumer) and the follow catches up
// from JetStream instead.
const liveQueueMax = 1024

// liveFrames registers the follows of this instance. Each follow receives
// the frames of its own answer only, as they are published, on a core NATS
// subscription to that answer's subject made when the follow starts (so
// an instance receives the frames of the answers its tabs follow, not
// every answer's), delivered by the connection's read loop straight into
// the follow's channel. Frames this instance publishes reach its follows
// from Publish (the connection does not echo them). A frame missed here (a
// reconnect, a full channel, interest that had not yet reached the NATS
// server of the publisher) is read from JetStream by the follow.
type liveFrames struct {
	mu    sync.Mutex
	byTok map[string]map[*liveSub]struct{} // by answer token
	bySub map[*nats.Subscription]*liveSub
	// drop, set by tests, loses the frames it returns true for, as a
	// network fault would.
	drop atomic.Pointer[func(*nats.Msg) bool]
}

func newLiveFrames() *liveFrames {
	return &liveFrames{byTok: make(map[string]map[*liveSub]struct{}), bySub: make(map[*nats.Subscription]*liveSub)}
}

// liveSub is one follow's live frames, read by its goroutine.
type liveSub struct {
	tok    string
	ch     chan *nats.Msg // filled by the connection's read loop and by Publish
	sub    *nats.Subscription
	resync atomic.Bool   // frames may have been missed: read JetStream
	wake   chan struct{} // buffered (1): resync was set
}

// add subscribes a follow to subj, the subject of the answer whose token
// is tok. remove ends it.
func (l *liveFrames) add(nc *nats.Conn, subj, tok string) (*liveSub, error) {
	s := &liveSub{tok: tok, ch: make(chan *nats.Msg, liveQueueMax), wake: make(chan struct{}, 1)}
	// Registered before the subscription exists: a slow-consumer report
	// for it finds it.
	l.mu.Lock()
	if l.byTok[tok] == nil {
		l.byTok[tok] = make(map[*liveSub]struct{})
	}
	l.byTok[tok][s] = struct{}{}
	l.mu.Unlock()
	sub, err := nc.ChanSubscribe(subj, s.ch)
	if err != nil {
		l.remove(s)
		return nil, fmt.Errorf("natsbus: subscribe to %s: %w", subj, err)
	}
	l.mu.Lock()
	s.sub = sub
	l.bySub[sub] = s
	l.mu.Unlock()
	return s, nil
}

// remove unsubscribes s.
func (l *liveFrames) remove(s *liveSub) {
	l.mu.Lock()
	delete(l.byTok[s.tok], s)
	if len(l.byTok[s.tok]) == 0 {
		delete(l.byTok, s.tok)
	}
	if s.sub != nil {
		delete(l.bySub, s.sub)
	}
	l.mu.Unlock()
	if s.sub != nil {
		_ = s.sub.Unsubscribe() // fails only on a closed connection: nothing left to undo
	}
}

// deliver hands m, a frame this instance published, to its follows here;
// it never blocks.
func (l *liveFrames) deliver(tok string, m *nats.Msg) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for s := range l.byTok[tok] {
		select {
		case s.ch <- m:
		default:
			s.markResync()
		}
	}
}

// slow makes the follow of sub, whose frames the connection dropped (its
// channel was full), read what it missed.
func (l *liveFrames) slow(sub *nats.Subscription) {
	l.mu.Lock()
	s := l.bySub[sub]
	l.mu.Unlock()
	if s != nil {
		s.markResync()
	}
}

// resyncAll makes every follow check JetStream for frames it may have
// missed (after a reconnect).
func (l *liveFrames) resyncAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, set := range l.byTok {
		for s := range set {
			s.markResync()
		}
	}
}

// lost reports whether a test's fault loses m.
func (l *liveFrames) lost(m *nats.Msg) bool {
	drop := l.drop.Load()
	return drop != nil && (*drop)(m)
}

func (s *liveSub) markResync() {
	s.resync.Store(true)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}
