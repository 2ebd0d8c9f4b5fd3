package natsbus

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// The user events this instance broadcasts while it is cut off from NATS
// past OutageGrace wait in its outbox and are published, in the order
// they were broadcast and each with the id it was given then, once the
// connection is back (within OutageGrace, nats.go's own reconnect buffer
// holds them). The receivers hand each to their hub once (Bus.seen), as
// they do events read twice. What is kept is bounded like the events
// stream on the receiving side: an event older than eventsMaxAge when the
// connection comes back is dropped (a tab learns of it at its next
// reload, as after an outage longer than the stream keeps events), and
// past outboxMaxEvents or outboxMaxBytes the oldest is dropped to make
// room; one the connection refuses once back (larger than the servers'
// max_payload) is dropped too. Drops are logged and counted
// (Bus.EventsDropped).
const (
	outboxMaxEvents = 4096
	outboxMaxBytes  = 4 << 20
)

// outboxEntry is one event waiting for the connection: its message (id
// and origin set) and when it was broadcast.
type outboxEntry struct {
	seq uint64 // numbers the entries, to pop the one published
	msg *nats.Msg
	at  time.Time
}

// outbox holds the user events broadcast while the bus was down, oldest
// first. Its methods do no I/O.
type outbox struct {
	maxEvents, maxBytes int
	maxAge              time.Duration
	now                 func() time.Time
	// kick (capacity 1) wakes the flushing goroutine: an event was
	// queued, or the connection came back.
	kick chan struct{}

	mu    sync.Mutex
	queue []outboxEntry
	bytes int
	seq   uint64
	// flying numbers the entry being published (head, until done, keep
	// or dropFailed; 0 for none): it stays first, is not dropped for
	// room and counts in neither bound, being no longer waiting.
	flying  uint64
	dropped int64 // events dropped since the start (full, too old, or refused)
	// full is how many were dropped for room since the last flush (the
	// first one is logged, the total when the rest is sent).
	full int
}

func newOutbox() *outbox {
	return &outbox{maxEvents: outboxMaxEvents, maxBytes: outboxMaxBytes, maxAge: eventsMaxAge,
		now: time.Now, kick: make(chan struct{}, 1)}
}

// hold queues msg when down is true or events wait already (an event
// published at once would overtake them) and reports whether it did.
// Past the bounds it drops the oldest waiting event, never the one being
// published. It returns true for the first event dropped for room since
// the last flush, to be logged.
func (o *outbox) hold(msg *nats.Msg, down bool) (held, firstDrop bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !down && len(o.queue) == 0 {
		return false, false
	}
	o.seq++
	o.queue = append(o.queue, outboxEntry{seq: o.seq, msg: msg, at: o.now()})
	o.bytes += len(msg.Data)
	before := o.full
	oldest, flyingBytes := 0, 0 // the oldest waiting entry, and the bytes of the one in flight
	if o.queue[0].seq == o.flying {
		oldest, flyingBytes = 1, len(o.queue[0].msg.Data)
	}
	for n := len(o.queue) - oldest; n > 1 && (n > o.maxEvents || o.bytes-flyingBytes > o.maxBytes); n-- {
		o.dropForRoomLocked(oldest)
	}
	o.wake()
	return true, before == 0 && o.full > 0
}

// dropForRoomLocked drops the entry at i, 0 or 1 (when the first is
// being published, which stays first).
func (o *outbox) dropForRoomLocked(i int) {
	o.bytes -= len(o.queue[i].msg.Data)
	o.queue[i] = o.queue[0]
	o.queue[0] = outboxEntry{}
	o.queue = o.queue[1:]
	o.full++
	o.dropped++
}

// wake kicks the flushing goroutine without blocking.
func (o *outbox) wake() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// head returns the oldest event to publish, dropping those older than
// maxAge first (counted in expired); ok is false when none waits. The
// event returned is in flight until done, keep or dropFailed.
func (o *outbox) head() (e outboxEntry, expired int, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for len(o.queue) > 0 && o.now().Sub(o.queue[0].at) > o.maxAge {
		o.popLocked()
		o.dropped++
		expired++
	}
	if len(o.queue) == 0 {
		return outboxEntry{}, expired, false
	}
	o.flying = o.queue[0].seq
	return o.queue[0], expired, true
}

// done removes the event numbered seq, the one head returned, published.
func (o *outbox) done(seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.landLocked(seq)
}

// dropFailed removes the event numbered seq, the one head returned,
// given up because the connection refused it while up, and counts it
// dropped.
func (o *outbox) dropFailed(seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.landLocked(seq) {
		o.dropped++
	}
}

// keep leaves the event numbered seq, the one head returned, first: its
// publish failed because the connection went again. It waits as the
// others do until the connection is back.
func (o *outbox) keep(seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.flying == seq {
		o.flying = 0
	}
}

// landLocked ends the flight of the event numbered seq and removes it,
// reporting whether it did (it is first, never dropped for room).
func (o *outbox) landLocked(seq uint64) bool {
	if o.flying == seq {
		o.flying = 0
	}
	if len(o.queue) == 0 || o.queue[0].seq != seq {
		return false
	}
	o.popLocked()
	return true
}

func (o *outbox) popLocked() {
	o.bytes -= len(o.queue[0].msg.Data)
	o.queue[0] = outboxEntry{}
	o.queue = o.queue[1:]
	if len(o.queue) == 0 {
		o.queue = nil // let the backing array go
	}
}

// takeFull returns and resets the count of events dropped for room
// since the last flush.
func (o *outbox) takeFull() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := o.full
	o.full = 0
	return n
}

// len is how many events wait.
func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queue)
}

// droppedTotal is how many events were dropped since the start.
func (o *outbox) droppedTotal() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dropped
}

// EventsDropped is how many user events broadcast here while the bus was
// down were dropped: past the outbox's bounds (the oldest go first),
// older than the events stream keeps events when the connection came
// back, or refused by the connection then (larger than the servers'
// max_payload, a JetStream publish error). Each was delivered to this
// instance's tabs only.
func (b *Bus) EventsDropped() int { return int(b.out.droppedTotal()) }

// outboxLoop publishes the events of the outbox whenever it is woken
// (an event queued, the connection back) and connected, until ctx ends.
func (b *Bus) outboxLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.out.kick:
		}
		b.flushOutbox()
	}
}

// flushOutbox publishes the waiting events in order while the connection
// is up; an event whose publish fails because the connection went again
// stays first, for the next connection; one refused while it is up is
// dropped (counted). Each is removed only once published or dropped, so
// that a Broadcast meanwhile queues behind it.
func (b *Bus) flushOutbox() {
	sent, expired, refused := 0, 0, 0
	defer func() { b.logFlush(sent, expired, refused) }()
	for b.nc.IsConnected() {
		e, exp, ok := b.out.head()
		expired += exp
		if !ok {
			return
		}
		if err := b.publishEvent(e.msg); err != nil {
			if !b.nc.IsConnected() {
				b.out.keep(e.seq)
				return
			}
			b.log.Warn("publish a user event queued while cut off from NATS; dropped",
				slog.String("subject", e.msg.Subject), slog.Any("err", err))
			refused++
			b.out.dropFailed(e.seq)
			continue
		}
		sent++
		b.out.done(e.seq)
	}
}

// logFlush logs what a flush of the outbox did, if anything.
func (b *Bus) logFlush(sent, expired, refused int) {
	full := 0
	if sent > 0 || expired > 0 || refused > 0 {
		full = b.out.takeFull()
	}
	if sent == 0 && expired == 0 && refused == 0 && full == 0 {
		return
	}
	lvl := slog.LevelInfo
	if expired > 0 || refused > 0 || full > 0 {
		lvl = slog.LevelWarn
	}
	b.log.Log(context.Background(), lvl, "user events broadcast while cut off from NATS sent",
		slog.Int("sent", sent), slog.Int("dropped_too_old", expired), slog.Int("dropped_for_room", full),
		slog.Int("dropped_refused", refused), slog.Int("waiting", b.out.len()))
}
