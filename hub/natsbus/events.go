package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
)

// User events travel twice: on core NATS (chatd.events.<userId>, at once,
// to every connected instance) and stored in the stream CHATD_EVENTS for
// eventsMaxAge, which each instance reads with one ordered consumer
// started when the bus is set up. An instance cut off for a moment gets
// from the stream what core NATS could not bring it; each event carries
// an id (hdrEventID) and is handed to the hub once.

// Limits of the events stream: events are small (a conversation's title,
// a close, an answer's start) and only needed by an instance that missed
// them for a moment.
const (
	eventsMaxAge   = 2 * time.Minute
	eventsMaxBytes = 64 << 20
)

// hdrEventID names a user event for deduplication ("<instance>.<random>.<n>",
// see Bus.eventOrigin).
const hdrEventID = "Chatd-Event"

// eventAckTimeout is how long the events stream's acknowledgement of a
// user event broadcast here is waited for before it is given up (and the
// failure logged): acknowledgements come within milliseconds.
const eventAckTimeout = 5 * time.Second

// eventsAttemptTimeout bounds one attempt to create the events consumer.
const eventsAttemptTimeout = time.Second

// eventsHeartbeat is the idle heartbeat of the events consumer: a
// consumer that goes silent is recreated after two missed ones.
const eventsHeartbeat = 2 * time.Second

// eventsInactive is how long NATS keeps an events consumer nobody reads:
// a crashed instance's is gone a minute later (the library's default
// kept it five), and an instance cut off for longer makes its own again
// from where it read (an ordered consumer recreates a consumer it lost).
const eventsInactive = time.Minute

// eventsStream is the events stream's name and its last sequence when
// the bus was set up: the bus reads the events after it. created tells
// the stream from one made again under its name (NATS lost its data),
// whose sequences start again from 1.
type eventsStream struct {
	name    string
	lastSeq uint64
	created time.Time
}

// provisionEvents creates or updates the events stream (never lowering
// its replicas: keepReplicas).
func (b *Bus) provisionEvents(ctx context.Context, replicas int) (eventsStream, error) {
	cfg := jetstream.StreamConfig{
		Name:       "CHATD_EVENTS",
		Subjects:   []string{b.subject("events", "*")},
		Storage:    jetstream.FileStorage,
		Replicas:   replicas,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		MaxAge:     eventsMaxAge,
		MaxBytes:   eventsMaxBytes,
		MaxMsgSize: b.opts.Stream.MaxMsgSize,
		Duplicates: time.Minute,
	}
	if b.opts.Prefix != DefaultPrefix {
		cfg.Name = "CHATD_" + b.opts.Prefix + "_EVENTS"
	}
	have, err := b.streamConfig(ctx, cfg.Name)
	if err != nil {
		return eventsStream{}, err
	}
	b.keepReplicas(have, &cfg)
	st, err := b.js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return eventsStream{}, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	info := st.CachedInfo()
	return eventsStream{name: cfg.Name, lastSeq: info.State.LastSeq, created: info.Created}, nil
}

// checkEvents makes the events consumer start again from the first event
// of a stream made again under the events stream's name since it was
// last checked (see eventsStream; judgeLoop calls it each round): the
// ordered consumer would go on after the last sequence it read of the
// stream lost, and miss every event of the new one up to that number.
// Events read again are dropped as handed over already (Bus.seen). The
// stream made again means NATS lost its data: every user's count of
// connections held here is written again at the next repair.
func (b *Bus) checkEvents(ctx context.Context) {
	cur := b.eventsNow
	if cur.name == "" {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, b.opts.LeaseTTL/2)
	st, err := b.js.Stream(cctx, cur.name)
	cancel()
	if err != nil {
		return // NATS trouble, or not set up again yet: the next round looks again
	}
	if created := st.CachedInfo().Created; !created.Equal(cur.created) {
		b.log.Warn("the events stream was made again (NATS lost its data?); reading it from its start",
			slog.String("stream", cur.name))
		// The connection counts were lost with it, this instance's too
		// (also when another instance set JetStream up again, so that
		// this one never ran relostLeases): they are written again.
		b.tally.allLost()
		b.held.lost() // the locks too (relock)
		b.eventsNow = eventsStream{name: cur.name, created: created}
		select {
		case b.eventsRestart <- b.eventsNow:
		default:
		}
	}
}

// consumeEvents reads the events stream after es.lastSeq until ctx ends,
// handing every event to receiveEvent.
func (b *Bus) consumeEvents(ctx context.Context, es eventsStream) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{b.subject("events", "*")},
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: es.lastSeq + 1,
		InactiveThreshold: eventsInactive}
	handle := func(m jetstream.Msg) {
		b.eventsRead.Add(1)
		b.receiveEvent(m.Headers(), m.Data())
	}
	for attempt := 0; ; attempt++ {
		// A short bound: a request lost with the connection is retried
		// at once instead of waited out.
		cctx, cancel := context.WithTimeout(ctx, eventsAttemptTimeout)
		c, err := b.js.OrderedConsumer(cctx, es.name, cfg)
		cancel()
		var cc jetstream.ConsumeContext
		if err == nil {
			cc, err = c.Consume(handle, jetstream.PullHeartbeat(eventsHeartbeat))
		}
		if err == nil {
			select {
			case <-ctx.Done():
				cc.Stop()
				b.deleteEventsConsumer(es.name, c)
				return
			case es = <-b.eventsRestart: // the stream was made again, its consumers gone with it
				cc.Stop()
				cfg.OptStartSeq = es.lastSeq + 1
				attempt = -1
				continue
			}
		}
		if attempt%20 == 0 && ctx.Err() == nil {
			b.log.Warn("read the events stream; retrying", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff(attempt)):
		}
	}
}

// deleteEventsConsumer deletes the consumer an instance that stops read
// the events with, within eventsAttemptTimeout: stopping it only ends the
// subscription, and NATS kept the consumer, with its goroutines and a
// place under the account's consumer limit, until eventsInactive ran out
// (each restart of each instance left one).
func (b *Bus) deleteEventsConsumer(stream string, c jetstream.Consumer) {
	info := c.CachedInfo()
	if info == nil || !b.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), eventsAttemptTimeout)
	defer cancel()
	if err := b.js.DeleteConsumer(ctx, stream, info.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		b.log.Debug("delete the events consumer at close; NATS drops it once inactive", slog.Any("err", err))
	}
}

// receiveEvent hands an event another instance broadcast to the hub,
// once, and in order with the other events it reads (see Bus.handing; the
// hub's handler only queues frames, it does no I/O).
func (b *Bus) receiveEvent(h nats.Header, data []byte) {
	if h.Get(hdrOrigin) == b.id {
		return
	}
	var ev hub.UserEvent
	if err := json.Unmarshal(data, &ev); err != nil {
		b.log.Warn("bad user event", slog.Any("err", err))
		return
	}
	b.handing.Lock()
	defer b.handing.Unlock()
	if id := h.Get(hdrEventID); id != "" && !b.seen.add(id) {
		return
	}
	if hd := b.handler(); hd != nil {
		hd.UserEvent(ev)
	}
}

// recentIDs remembers the ids of the events handed over in the last one
// to two eventsMaxAge (longer than the stream keeps them).
type recentIDs struct {
	mu       sync.Mutex
	cur, old map[string]struct{}
	rotated  time.Time
}

// add records id; false when it was recorded already.
func (r *recentIDs) add(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cur == nil || time.Since(r.rotated) > eventsMaxAge {
		r.old, r.cur, r.rotated = r.cur, make(map[string]struct{}), time.Now()
	}
	if _, ok := r.cur[id]; ok {
		return false
	}
	if _, ok := r.old[id]; ok {
		return false
	}
	r.cur[id] = struct{}{}
	return true
}
