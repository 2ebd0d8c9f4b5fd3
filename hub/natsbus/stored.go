package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Reading an answer's stored frames needs no consumer: batched direct
// gets ($JS.API.DIRECT.GET, answered by any replica of the stream, so
// possibly one that lags) for the bulk, and a message get through the
// stream leader ($JS.API.STREAM.MSG.GET) to confirm the end, so a read
// misses nothing stored before it began.

// directBatch is how many frames one direct get asks for.
const directBatch = 256

// directTimeout bounds a direct get; one that goes unanswered (the user
// may not publish to $JS.API.DIRECT.GET.<stream>, see
// deploy/nats-server.conf) turns direct gets off for directPause, and the
// reads go through the leader meanwhile.
const (
	directTimeout = time.Second
	directPause   = time.Minute
)

// directMaxBytes bounds the bytes of one direct get's answer (at least
// one frame is always sent).
const directMaxBytes = 4 << 20

// storedMsg is one frame read from the answer stream.
type storedMsg struct {
	seq  uint64
	hdr  nats.Header
	data []byte
}

// errNoMsg means the stream has no such message.
var errNoMsg = errors.New("no message")

// errNoDirect means no replica answers direct gets (the stream does not
// allow them yet): reads go through the leader only.
var errNoDirect = errors.New("direct gets unavailable")

// readStored calls fn with each frame stored on subj after the stream
// sequence after, in stream order, at least up to the sequence upTo (0:
// to the end; a batch may go past it), until fn returns false. It returns
// the sequence of the last frame it handed to fn (after when none).
func (b *Bus) readStored(ctx context.Context, stream, subj string, after, upTo uint64, fn func(storedMsg) bool) (uint64, error) {
	for {
		more, last, stop, err := b.directBatch(ctx, stream, subj, after, fn)
		if err != nil && !errors.Is(err, errNoDirect) {
			return max(after, last), err
		}
		after = max(after, last)
		if stop || upTo > 0 && after >= upTo {
			return after, nil
		}
		if more {
			continue
		}
		// The replica that answered may lag: the leader says what is next.
		m, err := b.leaderGet(ctx, stream, msgGetRequest{Seq: after + 1, NextFor: subj})
		if errors.Is(err, errNoMsg) || err == nil && upTo > 0 && m.seq > upTo {
			return after, nil
		}
		if err != nil {
			return after, err
		}
		after = m.seq
		if !fn(m) {
			return after, nil
		}
	}
}

// lastStored is the last frame stored on subj, read through the leader;
// errNoMsg when there is none.
func (b *Bus) lastStored(ctx context.Context, stream, subj string) (storedMsg, error) {
	return b.leaderGet(ctx, stream, msgGetRequest{LastFor: subj})
}

// msgGetRequest is the server's JSApiMsgGetRequest, the fields used here.
type msgGetRequest struct {
	Seq      uint64 `json:"seq,omitempty"`
	LastFor  string `json:"last_by_subj,omitempty"`
	NextFor  string `json:"next_by_subj,omitempty"`
	Batch    int    `json:"batch,omitempty"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

// leaderGet is one message get answered by the stream leader.
func (b *Bus) leaderGet(ctx context.Context, stream string, req msgGetRequest) (storedMsg, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return storedMsg{}, err
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	reply, err := b.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, body)
	if err != nil {
		return storedMsg{}, fmt.Errorf("get from %s: %w", stream, err)
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Seq    uint64 `json:"seq"`
			Header []byte `json:"hdrs"`
			Data   []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return storedMsg{}, fmt.Errorf("get from %s: %w", stream, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrCode == jsNoMessageFound:
		return storedMsg{}, errNoMsg
	case resp.Error != nil:
		return storedMsg{}, fmt.Errorf("get from %s: %s (%d)", stream, resp.Error.Description, resp.Error.ErrCode)
	case resp.Message == nil:
		return storedMsg{}, fmt.Errorf("get from %s: empty answer", stream)
	}
	m := storedMsg{seq: resp.Message.Seq, data: resp.Message.Data, hdr: nats.Header{}}
	if len(resp.Message.Header) > 0 {
		if m.hdr, err = nats.DecodeHeadersMsg(resp.Message.Header); err != nil {
			return storedMsg{}, fmt.Errorf("get from %s: headers of %d: %w", stream, m.seq, err)
		}
	}
	return m, nil
}

// jsNoMessageFound is the JetStream error code of a get that found nothing.
const jsNoMessageFound = 10037

// directBatch asks a replica for up to directBatch frames of subj after
// the sequence after and hands them to fn until it returns false (stop).
// more says frames remain after the last one sent.
func (b *Bus) directBatch(ctx context.Context, stream, subj string, after uint64, fn func(storedMsg) bool) (more bool, last uint64, stop bool, err error) {
	if time.Now().UnixNano() < b.directOffUntil.Load() {
		return false, 0, false, errNoDirect
	}
	body, err := json.Marshal(msgGetRequest{Seq: after + 1, NextFor: subj, Batch: directBatch,
		MaxBytes: directMaxBytes})
	if err != nil {
		return false, 0, false, err
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, directTimeout)
	defer cancel()
	replies, done := b.replies.open()
	defer done()
	if err := b.nc.PublishRequest("$JS.API.DIRECT.GET."+stream, replies.subject, body); err != nil {
		return false, 0, false, fmt.Errorf("direct get from %s: %w", stream, err)
	}
	for {
		var m *nats.Msg
		select {
		case <-ctx.Done():
			if parent.Err() == nil && last == 0 {
				b.directOffUntil.Store(time.Now().Add(directPause).UnixNano())
				b.log.Warn("a direct get went unanswered; reading through the stream leader for a while",
					slog.String("stream", stream), slog.String("pause", directPause.String()))
				return false, 0, false, errNoDirect
			}
			return false, last, false, fmt.Errorf("direct get from %s: %w", stream, ctx.Err())
		case m = <-replies.ch:
		}
		switch status := m.Header.Get("Status"); status {
		case "":
			seq, err := strconv.ParseUint(m.Header.Get("Nats-Sequence"), 10, 64)
			if err != nil {
				return false, last, false, fmt.Errorf("direct get from %s: bad sequence %q", stream, m.Header.Get("Nats-Sequence"))
			}
			last = seq
			if !fn(storedMsg{seq: seq, hdr: m.Header, data: m.Data}) {
				return false, last, true, nil
			}
		case "204": // end of the batch
			return m.Header.Get("Nats-Num-Pending") != "0", last, false, nil
		case "404":
			return false, last, false, nil
		case "503":
			return false, last, false, errNoDirect
		default:
			return false, last, false, fmt.Errorf("direct get from %s: status %s %s", stream, status, m.Header.Get("Description"))
		}
	}
}

// replyMux receives the answers of multi-message requests on one
// subscription made when the bus starts (so the interest is known across
// the cluster long before any request), and hands each request its own.
type replyMux struct {
	prefix  string
	next    atomic.Uint64
	mu      sync.Mutex
	waiting map[string]chan *nats.Msg
}

// replyWait is one open request's reply subject and channel.
type replyWait struct {
	subject string
	ch      chan *nats.Msg
}

func newReplyMux() *replyMux {
	return &replyMux{prefix: nats.NewInbox(), waiting: make(map[string]chan *nats.Msg)}
}

// subscribe starts receiving on nc.
func (r *replyMux) subscribe(nc *nats.Conn) error {
	sub, err := nc.Subscribe(r.prefix+".*", r.deliver)
	if err != nil {
		return fmt.Errorf("natsbus: subscribe to replies: %w", err)
	}
	return sub.SetPendingLimits(-1, 256<<20)
}

// open registers a new reply subject; done unregisters it.
func (r *replyMux) open() (replyWait, func()) {
	tok := strconv.FormatUint(r.next.Add(1), 36)
	w := replyWait{subject: r.prefix + "." + tok, ch: make(chan *nats.Msg, directBatch+2)}
	r.mu.Lock()
	r.waiting[tok] = w.ch
	r.mu.Unlock()
	return w, func() {
		r.mu.Lock()
		delete(r.waiting, tok)
		r.mu.Unlock()
	}
}

func (r *replyMux) deliver(m *nats.Msg) {
	tok := m.Subject[len(r.prefix)+1:]
	r.mu.Lock()
	ch := r.waiting[tok]
	r.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- m:
	default: // never: a request gets at most directBatch+1 answers
	}
}
