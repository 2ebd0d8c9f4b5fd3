package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
	"chatd/hub/protocol"
)

// Headers of an answer frame; the body is the frame's encoded JSON.
const (
	hdrType = "Chatd-Type"
	hdrConv = "Chatd-Conversation"
	hdrSeq  = "Chatd-Seq"
	hdrMsg  = "Chatd-Message"
	// hdrN numbers the frames of one answer 1, 2, 3, ...: followers drop a
	// number they delivered already and fill a skipped one from JetStream.
	hdrN = "Chatd-N"
	// hdrPrev is the stream sequence of the answer's frame before this
	// one (0 for the first): what a follower that missed frames reads up to.
	hdrPrev = "Chatd-Prev"
)

// Publish implements hub.Bus: one stream message per frame, acknowledged by
// JetStream, numbered per answer (hdrN), with one frame in flight per
// answer (see pipeline.go). A delta or reasoning frame that is not the
// answer's first returns once sent: its acknowledgement is read when the
// answer's next frame is published, before that frame goes out, so each
// frame is still stored before the next is sent (and hdrPrev, the stream
// sequence of the frame before, is always known). The answer's first
// frame (the hub announces the answer after it) and every other frame,
// the done and FrameAborted above all, return only once stored. The
// number advances only once JetStream acknowledged the frame, so the
// hub's retry of a failed publish carries the same number, and
// JetStream's duplicate window (the message id is derived from the frame)
// stores it once; a frame published again after it was acknowledged keeps
// its number too. A frame larger than the NATS servers take, or than the
// answer stream keeps (its max_msg_size, said in the acknowledgement), is
// refused with an error wrapping hub.ErrRefused; a pipelined delta's
// refusal is read when the next frame is published, which skips it and
// goes on.
func (b *Bus) Publish(ctx context.Context, a hub.AnswerRef, f *protocol.Frame) error {
	if err := b.usable(); err != nil {
		return err
	}
	stream := b.res.Load().stream
	id := frameID(a, f)
	p, err := b.pubs.get(b.nc, a.MessageID, b.answerSubject)
	if err != nil {
		return unavailable("publish frame of "+f.MessageID, err)
	}
	subj := p.subject
	// The frame in flight is stored before this one goes out.
	settled, err := b.settle(ctx, p)
	if errors.Is(err, hub.ErrRefused) && settled.num.id != id {
		// A delta before this frame, whose Publish returned once it was
		// sent, was refused: it is skipped (followers take its text
		// from the store), this frame goes on.
		b.log.Warn("the answer stream refused a frame (larger than its max_msg_size); skipped",
			slog.String("message", a.MessageID), slog.Any("err", err))
		err = nil
	}
	if err != nil {
		return settleFailed("publish frame of "+a.MessageID, err)
	}
	final := endsStream(f)
	if settled != nil && settled.num.id == id { // this very frame: sent before, its call failed waiting
		if final {
			b.pubs.end(a.MessageID, p)
		}
		b.live.deliver(token(a.MessageID), settled.msg)
		return nil
	}
	num, err := b.pubs.number(ctx, p, id, func(ctx context.Context) (uint64, uint64, error) {
		return b.lastNumber(ctx, stream, subj)
	})
	if err != nil {
		return unavailable("number the frames of "+a.MessageID, err)
	}
	msg := &nats.Msg{Subject: subj, Reply: b.pubs.replyTo(p, num.n), Data: f.Data, Header: frameHeader(f, num.n, num.prev, id)}
	fl := &inFlight{msg: msg, num: num, sent: time.Now(), since: b.reconnects.current()}
	if err := b.nc.PublishMsg(msg); err != nil {
		return publishFailed("publish frame of "+f.MessageID, err)
	}
	p.flight = fl
	if pipelined := (f.Type == protocol.TypeDelta || f.Type == protocol.TypeReasoning) && num.n > 1; !pipelined {
		if _, err := b.settle(ctx, p); err != nil {
			return settleFailed("publish frame of "+f.MessageID, err)
		}
		if final {
			b.pubs.end(a.MessageID, p)
		}
	}
	b.live.deliver(token(a.MessageID), msg) // follows here: the connection does not echo it back
	return nil
}

// publishFailed wraps err, a frame's publish that failed before it was
// sent: a frame larger than the NATS servers take (their max_payload) is
// refused for good (hub.ErrRefused), anything else is the bus being
// unavailable. The frame took no number: the answer's next frame takes it.
func publishFailed(what string, err error) error {
	if errors.Is(err, nats.ErrMaxPayload) {
		return fmt.Errorf("natsbus: %s: %w: %w", what, hub.ErrRefused, err)
	}
	return unavailable(what, err)
}

// settleFailed wraps err, a frame's acknowledgement that failed: a frame
// the answer stream refused (larger than its max_msg_size) is refused for
// good (hub.ErrRefused), anything else is the bus being unavailable.
func settleFailed(what string, err error) error {
	if errors.Is(err, hub.ErrRefused) {
		return fmt.Errorf("natsbus: %s: %w", what, err)
	}
	return unavailable(what, err)
}

// frameHeader is the header of frame f numbered n after the frame at
// stream sequence prev, with id for JetStream's duplicate detection: the
// values Header.Set would give, with the three numbers formatted into one
// string (one allocation instead of one each) and the seven values in one
// array.
func frameHeader(f *protocol.Frame, n, prev uint64, id string) nats.Header {
	var buf [3 * 20]byte
	d := strconv.AppendInt(buf[:0], f.Seq, 10)
	seqEnd := len(d)
	d = strconv.AppendUint(d, n, 10)
	nEnd := len(d)
	d = strconv.AppendUint(d, prev, 10)
	nums := string(d)
	v := [...]string{f.Type, f.MessageID, f.ConversationID, nums[:seqEnd], nums[seqEnd:nEnd], nums[nEnd:], id}
	return nats.Header{hdrType: v[0:1:1], hdrMsg: v[1:2:2], hdrConv: v[2:3:3], hdrSeq: v[3:4:4],
		hdrN: v[4:5:5], hdrPrev: v[5:6:6], jetstream.MsgIDHeader: v[6:7:7],
		jetstream.ExpectedLastSubjSeqHeader: v[5:6:6]}
}

// answerSubject is the subject of an answer's frames.
func (b *Bus) answerSubject(messageID string) string { return b.subject("answer", token(messageID)) }

// lastNumber is the number and stream sequence of the last frame stored
// of an answer (0, 0 when there is none).
func (b *Bus) lastNumber(ctx context.Context, stream, subj string) (n, seq uint64, err error) {
	m, err := b.lastStored(ctx, stream, subj)
	if errors.Is(err, errNoMsg) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, err
	}
	n, err = strconv.ParseUint(m.hdr.Get(hdrN), 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("last frame of %s: bad number %q", subj, m.hdr.Get(hdrN))
	}
	return n, m.seq, nil
}

// frameID names a frame for JetStream's duplicate detection: the
// answer's id, the frame's message id, type and seq, and the 64-bit FNV-1a
// hash of its bytes in hex, dot-separated, built in one allocation.
func frameID(a hub.AnswerRef, f *protocol.Frame) string {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for _, c := range f.Data {
		h ^= uint64(c)
		h *= prime64
	}
	var num [20]byte
	seq := strconv.AppendInt(num[:0], f.Seq, 10)
	var b strings.Builder
	b.Grow(len(a.MessageID) + len(f.MessageID) + len(f.Type) + len(seq) + 4 + 16)
	b.WriteString(a.MessageID)
	b.WriteByte('.')
	b.WriteString(f.MessageID)
	b.WriteByte('.')
	b.WriteString(f.Type)
	b.WriteByte('.')
	b.Write(seq)
	b.WriteByte('.')
	const hexDigits = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b.WriteByte(hexDigits[h>>shift&0xf])
	}
	return b.String()
}

// decodeFrame rebuilds the frame a stream message carries and its number.
func decodeFrame(answerID string, h nats.Header, data []byte) (*protocol.Frame, uint64, error) {
	seq, err := strconv.ParseInt(h.Get(hdrSeq), 10, 64)
	if err != nil {
		return nil, 0, fmt.Errorf("natsbus: frame of %s: bad seq %q", answerID, h.Get(hdrSeq))
	}
	n, err := strconv.ParseUint(h.Get(hdrN), 10, 64)
	if err != nil || n == 0 {
		return nil, 0, fmt.Errorf("natsbus: frame of %s: bad number %q", answerID, h.Get(hdrN))
	}
	return &protocol.Frame{Type: h.Get(hdrType), ConversationID: h.Get(hdrConv),
		MessageID: h.Get(hdrMsg), Seq: seq, Data: data}, n, nil
}
