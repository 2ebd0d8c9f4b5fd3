package natsbus

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
)

// How an answer's frames are published (Publish): each frame is a core
// NATS publish with a reply subject of the answer's own (its inbox, then
// the frame's number), on which JetStream acknowledges it; the
// acknowledgements land in the answer's channel, filled by the
// connection's read loop. A delta or reasoning frame after the first is
// not waited for: the publishing goroutine returns to the hub, and reads
// the acknowledgement when the answer's next frame comes, before sending
// that one. Tokens come tens of milliseconds apart and an
// acknowledgement within a millisecond, so it is there already, and the
// read wakes no goroutine: waiting for each acknowledgement in Publish
// (a request) parked the publishing goroutine and had the read loop wake
// it again for every frame. One frame at most is in flight per answer, so
// every frame is stored before the next is sent, as before: a follower
// that finds a gap finds the missing frames in the stream, and the
// stream sequence of the frame before (hdrPrev) is known when a frame is
// sent.

// ackQueue is the capacity of an answer's acknowledgement channel: one
// frame is in flight, a second acknowledgement comes when a frame is
// sent again, the rest is slack. A full channel drops the acknowledgement
// (a slow consumer); the frame is then sent again after ackWait.
const ackQueue = 8

// pubIdle is how long an answer publishes nothing before its
// acknowledgement subscription is dropped and its state set aside (an
// answer whose publisher stopped without its done and without the Release
// that drops its state: bus work stopped). It is above the hub's default
// MaxDuration, so a running answer never loses it; one that does takes
// its state back and subscribes again on its next frame.
const pubIdle = 15 * time.Minute

// maxIdleAnswers bounds the states of idle answers set aside; past it,
// the one idle longest is dropped. Were that answer to publish again
// after all, it would number its frames from 1 again, and the stream,
// holding its frames numbered higher, would refuse them (errTakenOver, as
// for an answer another instance claimed): its followers on other
// instances would get nothing more of it. It would have to have been
// silent for longer than pubIdle, which is above the hub's default
// MaxDuration, and maxIdleAnswers other answers to have been set aside
// since.
const maxIdleAnswers = 1024

// publishers holds the state of the answers this instance publishes. The
// hub publishes each answer's frames from one goroutine, in order; the
// map and each answer's numbering are guarded by mu, its frame in flight
// belongs to that goroutine.
type publishers struct {
	mu      sync.Mutex
	answers map[string]*pubAnswer // by answer message id
	// asleep holds the answers idle for longer than idle, unsubscribed,
	// in case their publisher comes back; at most maxAsleep.
	asleep    map[string]*pubAnswer
	maxAsleep int           // maxIdleAnswers; tests lower it
	idle      time.Duration // pubIdle; tests shorten it
}

// pubAnswer is one answer published here.
type pubAnswer struct {
	subject string // of its frames (Bus.answerSubject)

	// Guarded by publishers.mu.
	last  numbered // the last acknowledged frame
	used  time.Time
	inbox string // the frames' reply subjects are inbox.<n>; "" until subscribed
	sub   *nats.Subscription
	acks  chan *nats.Msg

	// Owned by the publishing goroutine.
	flight *inFlight // sent, its acknowledgement not read yet
}

// numbered is a frame as published: its id (frameID), number, the
// stream sequence of the frame before it (prev) and its own (seq).
// resume: the answer was claimed from a dead instance, its numbering
// continues from the last stored frame, not yet read. claimed: n is that
// last stored frame's, the next frame skips claimSkip numbers.
type numbered struct {
	id              string
	n, prev, seq    uint64
	resume, claimed bool
}

// claimSkip is how many numbers the first frame of a claimed answer skips
// past the last frame stored: the dead instance may have sent followers
// frames the stream never stored (its frame in flight, and the deltas
// the stream refused before it, see settle), numbered after that one. A
// follower that got them would drop a claimant's frame numbered alike as
// a repeat: the stored text, and the done, lost for it. An answer
// publishes tens of frames a second at most, for the hub's MaxDuration:
// far fewer than this. A follower takes the skipped numbers for frames it
// missed and reads the stream up to the last stored frame (hdrPrev), as
// for any missed frame; having read it all, it passes over the numbers
// no stored frame has (follow.live).
const claimSkip = 1 << 20

// inFlight is a frame sent whose acknowledgement was not read yet.
type inFlight struct {
	msg  *nats.Msg
	num  numbered
	sent time.Time
	// since is closed by the first reconnect after the frame was sent:
	// its acknowledgement may have been lost with the connection.
	since <-chan struct{}
}

// reconnects tells the frames in flight that the connection came back
// (see inFlight.since).
type reconnects struct {
	mu sync.Mutex
	ch chan struct{}
}

// current is closed at the next reconnect.
func (r *reconnects) current() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	return r.ch
}

// fire says the connection came back.
func (r *reconnects) fire() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch != nil {
		close(r.ch)
	}
	r.ch = make(chan struct{})
}

func newPublishers() *publishers {
	return &publishers{answers: make(map[string]*pubAnswer), asleep: make(map[string]*pubAnswer),
		maxAsleep: maxIdleAnswers, idle: pubIdle}
}

// get returns the state of answer, subscribed to its acknowledgements;
// subject names an answer's subject. Making a new one (or taking one set
// aside back) sets the answers idle for p.idle aside, unsubscribed.
func (p *publishers) get(nc *nats.Conn, answer string, subject func(string) string) (*pubAnswer, error) {
	now := time.Now()
	p.mu.Lock()
	a := p.answers[answer]
	var idle []*nats.Subscription
	if a == nil {
		idle = p.setAsideLocked(now)
		a = p.asleep[answer]
		delete(p.asleep, answer)
		if a == nil {
			a = &pubAnswer{}
		}
		p.answers[answer] = a
	}
	if a.subject == "" {
		a.subject = subject(answer)
	}
	a.used = now
	subscribed := a.sub != nil
	p.mu.Unlock()
	for _, s := range idle {
		_ = s.Unsubscribe() // fails only on a closed connection: nothing left to undo
	}
	if subscribed {
		return a, nil
	}
	inbox := nc.NewInbox()
	acks := make(chan *nats.Msg, ackQueue)
	sub, err := nc.ChanSubscribe(inbox+".*", acks)
	if err != nil {
		return nil, fmt.Errorf("subscribe to the acknowledgements of %s: %w", answer, err)
	}
	p.mu.Lock()
	a.inbox, a.sub, a.acks = inbox, sub, acks
	p.mu.Unlock()
	return a, nil
}

// setAsideLocked moves the answers idle for p.idle to p.asleep and
// returns their subscriptions, to drop; p.mu is held.
func (p *publishers) setAsideLocked(now time.Time) []*nats.Subscription {
	var subs []*nats.Subscription
	for id, o := range p.answers {
		if now.Sub(o.used) <= p.idle {
			continue
		}
		if o.sub != nil {
			subs = append(subs, o.sub)
		}
		o.sub, o.acks, o.inbox = nil, nil, ""
		delete(p.answers, id)
		if len(p.asleep) >= p.maxAsleep {
			p.dropLongestAsleepLocked()
		}
		p.asleep[id] = o
	}
	return subs
}

// dropLongestAsleepLocked forgets the answer set aside that published
// last the longest ago; p.mu is held.
func (p *publishers) dropLongestAsleepLocked() {
	var oldest string
	var at time.Time
	for id, o := range p.asleep {
		if oldest == "" || o.used.Before(at) {
			oldest, at = id, o.used
		}
	}
	delete(p.asleep, oldest)
}

// replyTo is the reply subject of frame n of a.
func (p *publishers) replyTo(a *pubAnswer, n uint64) string {
	p.mu.Lock()
	inbox := a.inbox
	p.mu.Unlock()
	var num [20]byte
	return inbox + "." + string(strconv.AppendUint(num[:0], n, 10)) // one allocation: the concatenation's
}

// resume makes the next frame of answer continue the numbering of the
// frames already stored (an answer claimed from another instance), past
// claimSkip numbers.
func (p *publishers) resume(answer string) {
	p.mu.Lock()
	old := p.answers[answer]
	p.answers[answer] = &pubAnswer{last: numbered{resume: true}}
	delete(p.asleep, answer)
	p.mu.Unlock()
	if old != nil && old.sub != nil {
		_ = old.sub.Unsubscribe()
	}
}

// number numbers the frame id of answer a: its number and the stream
// sequence of the frame before it; last reads the last stored frame's
// number and sequence for a resumed answer.
func (p *publishers) number(ctx context.Context, a *pubAnswer, id string, last func(context.Context) (uint64, uint64, error)) (numbered, error) {
	p.mu.Lock()
	cur := a.last
	p.mu.Unlock()
	if cur.resume {
		n, seq, err := last(ctx)
		if err != nil {
			return numbered{}, err
		}
		cur = numbered{n: n, seq: seq, claimed: true}
		p.mu.Lock()
		a.last = cur
		p.mu.Unlock()
	}
	if cur.id == id && cur.n > 0 { // published again: the same frame
		return numbered{id: id, n: cur.n, prev: cur.prev}, nil
	}
	next := numbered{id: id, n: cur.n + 1, prev: cur.seq}
	if cur.claimed {
		next.n += claimSkip
	}
	return next, nil
}

// acked records f as the last acknowledged frame of a.
func (p *publishers) acked(a *pubAnswer, f numbered) {
	p.mu.Lock()
	a.last = f
	p.mu.Unlock()
}

// skipped records f, refused by the stream, as sent but not stored: the
// next frame of a takes the number after f's and names the frame stored
// before f as its prev.
func (p *publishers) skipped(a *pubAnswer, f numbered) {
	p.mu.Lock()
	a.last = numbered{id: f.id, n: f.n, prev: f.prev, seq: f.prev}
	p.mu.Unlock()
}

// end drops the state of answer, whose stream ended.
func (p *publishers) end(answer string, a *pubAnswer) {
	p.mu.Lock()
	if p.answers[answer] == a {
		delete(p.answers, answer)
	}
	if p.asleep[answer] == a {
		delete(p.asleep, answer)
	}
	sub := a.sub
	a.sub, a.acks, a.inbox = nil, nil, ""
	p.mu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
}

// forget drops the state of answer, if any: nothing more is published
// for it here (Release).
func (p *publishers) forget(answer string) {
	p.mu.Lock()
	a := p.answers[answer]
	if a == nil {
		a = p.asleep[answer]
	}
	p.mu.Unlock()
	if a != nil {
		p.end(answer, a)
	}
}

// settle makes sure the frame in flight of a, if any, is stored: it reads
// its acknowledgement, waiting for it up to ackWait after the frame was
// sent, and sends the frame again (JetStream stores it once) when none or
// a failure came. It returns the settled frame (nil when none was in
// flight); on an error the frame stays in flight, for the next call. A
// frame the stream refuses for good (larger than its max_msg_size) is
// not sent again: it is settled as skipped, with an error wrapping
// hub.ErrRefused, and its number stays used (core NATS carried it to the
// live follows, which would drop another frame numbered alike).
func (b *Bus) settle(ctx context.Context, a *pubAnswer) (*inFlight, error) {
	fl := a.flight
	if fl == nil {
		return nil, nil
	}
	seq, err := b.awaitAck(ctx, a, fl)
	if err != nil && ctx.Err() == nil && !refusedByStream(err) {
		seq, err = b.resend(ctx, a, fl)
	}
	if refusedByStream(err) {
		b.pubs.skipped(a, fl.num)
		a.flight = nil
		return fl, fmt.Errorf("natsbus: frame %d: %w: %w", fl.num.n, hub.ErrRefused, err)
	}
	if err != nil {
		return nil, fmt.Errorf("frame %d: %w", fl.num.n, err)
	}
	fl.num.seq = seq
	b.pubs.acked(a, fl.num)
	a.flight = nil
	return fl, nil
}

// resend sends fl again, its acknowledgement lost, late or failed, on
// the answer's current inbox, and reads the new acknowledgement; unless
// the frame is the last one stored on the answer's subject already (its
// acknowledgement was lost, or dropped with an idle answer's
// subscription), whose stream sequence it returns without sending it.
// JetStream's duplicate window would store a copy sent within it once,
// but not one sent after it: an answer silent for longer, or a
// connection back after a longer outage, stored the frame twice.
//
// Every frame also expects the frame before it (prev) to be the last on
// its subject (Nats-Expected-Last-Subject-Sequence), so a copy of it that
// lands once it or a later frame is stored is refused, whatever the
// duplicate window. A frame refused so is looked up again (stored
// meanwhile: done). A frame stored since prev that is not one of this
// answer's own comes from before it (numbered below it: a dead owner's
// frame landing after a claim, or the stream having discarded the
// answer's frames): the frame is sent again after it, once. One numbered
// above it means another instance claimed the answer: errTakenOver.
func (b *Bus) resend(ctx context.Context, a *pubAnswer, fl *inFlight) (uint64, error) {
	for try := 0; ; try++ {
		if err := b.rebase(ctx, a, fl); err != nil {
			if errors.Is(err, errStoredAlready) {
				return fl.num.seq, nil
			}
			return 0, err
		}
		m := *fl.msg
		m.Reply = b.pubs.replyTo(a, fl.num.n)
		fl.msg, fl.sent, fl.since = &m, time.Now(), b.reconnects.current()
		if err := b.nc.PublishMsg(&m); err != nil {
			return 0, err
		}
		seq, err := b.awaitAck(ctx, a, fl)
		if !wrongLastSeq(err) || try > 0 {
			return seq, err
		}
	}
}

// errStoredAlready is rebase finding the frame stored (its sequence in
// fl.num.seq).
var errStoredAlready = errors.New("natsbus: frame stored already")

// errTakenOver is a frame refused because another instance published
// frames of the answer after it (a claim).
var errTakenOver = errors.New("natsbus: another instance publishes the answer")

// rebase looks up the last frame stored on the answer's subject: fl
// itself (errStoredAlready, its sequence set), the frame fl expects
// (nothing to do), or another: see resend.
func (b *Bus) rebase(ctx context.Context, a *pubAnswer, fl *inFlight) error {
	last, err := b.lastStored(ctx, b.res.Load().stream, a.subject)
	switch {
	case errors.Is(err, errNoMsg):
		last = storedMsg{}
	case err != nil:
		return fmt.Errorf("look for the frame stored: %w", err)
	case last.hdr.Get(jetstream.MsgIDHeader) == fl.num.id:
		fl.num.seq = last.seq
		return errStoredAlready
	}
	if last.seq == fl.num.prev {
		return nil
	}
	if last.seq != 0 {
		if n, err := strconv.ParseUint(last.hdr.Get(hdrN), 10, 64); err == nil && n >= fl.num.n {
			return fmt.Errorf("frame %d after frame %d stored at %d: %w", fl.num.n, n, last.seq, errTakenOver)
		}
	}
	fl.num.prev = last.seq
	prev := strconv.FormatUint(last.seq, 10)
	hdr := maps.Clone(fl.msg.Header)
	hdr[hdrPrev] = []string{prev}
	hdr[jetstream.ExpectedLastSubjSeqHeader] = []string{prev}
	m := *fl.msg
	m.Header = hdr
	fl.msg = &m
	return nil
}

// wrongLastSeq reports whether err, a frame's acknowledgement, says the
// last frame on its subject is not the one it expects (or that one is
// still being stored: 10164).
func wrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// refusedByStream reports whether err, a frame's acknowledgement, says the
// answer stream refuses the frame for good: it is larger than the
// stream's max_msg_size (which may be below the servers' max_payload).
func refusedByStream(err error) bool {
	return errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum)
}

// errAckTimeout is an acknowledgement that did not come within ackWait.
var errAckTimeout = errors.New("natsbus: no JetStream acknowledgement")

// errAckReconnected is an acknowledgement not come before the connection
// was lost and came back: it may have been lost with it.
var errAckReconnected = errors.New("natsbus: no JetStream acknowledgement before a reconnect")

// awaitAck reads the acknowledgement of fl from a's channel: the stream
// sequence JetStream stored it at, or its error. Acknowledgements of other
// frames (a frame sent twice is acknowledged twice) are skipped. It gives
// up at once when the connection came back since fl was sent (the
// acknowledgement may have been lost with it), rather than after ackWait.
func (b *Bus) awaitAck(ctx context.Context, a *pubAnswer, fl *inFlight) (uint64, error) {
	b.pubs.mu.Lock()
	acks := a.acks
	b.pubs.mu.Unlock()
	if acks == nil {
		return 0, errAckTimeout // unsubscribed meanwhile: send it again
	}
	var timeout <-chan time.Time
	for {
		var m *nats.Msg
		select {
		case m = <-acks: // most often there already: no timer, no wait
		default:
			if timeout == nil {
				t := time.NewTimer(time.Until(fl.sent.Add(b.ackWait)))
				defer t.Stop()
				timeout = t.C
			}
			select {
			case m = <-acks:
			case <-timeout:
				return 0, errAckTimeout
			case <-fl.since:
				return 0, errAckReconnected
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		if m.Subject != fl.msg.Reply || b.ackLost(m) {
			continue
		}
		if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
			return 0, jetstream.ErrNoStreamResponse
		}
		return parsePubAck(m.Data)
	}
}

// ackLost reports whether a test's fault loses the acknowledgement m.
func (b *Bus) ackLost(m *nats.Msg) bool {
	drop := b.dropAck.Load()
	return drop != nil && (*drop)(m)
}
