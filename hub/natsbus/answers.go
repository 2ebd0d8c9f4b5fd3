package natsbus

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
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
)

// Publish implements hub.Bus: one stream message per frame, acknowledged by
// JetStream. A retried publish of the same frame is dropped by JetStream's
// duplicate window (the message id is derived from the frame).
func (b *Bus) Publish(ctx context.Context, a hub.AnswerRef, f *protocol.Frame) error {
	if err := b.usable(); err != nil {
		return err
	}
	msg := &nats.Msg{Subject: b.subject("answer", token(a.MessageID)), Data: f.Data, Header: nats.Header{}}
	msg.Header.Set(hdrType, f.Type)
	msg.Header.Set(hdrMsg, f.MessageID)
	msg.Header.Set(hdrConv, f.ConversationID)
	msg.Header.Set(hdrSeq, strconv.FormatInt(f.Seq, 10))
	ctx, cancel := opContext(ctx)
	defer cancel()
	if _, err := b.js.PublishMsg(ctx, msg, jetstream.WithMsgID(frameID(a, f))); err != nil {
		return unavailable("publish frame of "+f.MessageID, err)
	}
	return nil
}

// frameID names a frame for JetStream's duplicate detection.
func frameID(a hub.AnswerRef, f *protocol.Frame) string {
	h := fnv.New64a()
	_, _ = h.Write(f.Data)
	return a.MessageID + "." + f.MessageID + "." + f.Type + "." + strconv.FormatInt(f.Seq, 10) + "." + hex.EncodeToString(h.Sum(nil))
}

// decodeFrame rebuilds the frame a stream message carries.
func decodeFrame(answerID string, m jetstream.Msg) (*protocol.Frame, error) {
	h := m.Headers()
	seq, err := strconv.ParseInt(h.Get(hdrSeq), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("natsbus: frame of %s: bad seq %q", answerID, h.Get(hdrSeq))
	}
	return &protocol.Frame{Type: h.Get(hdrType), ConversationID: h.Get(hdrConv),
		MessageID: h.Get(hdrMsg), Seq: seq, Data: m.Data()}, nil
}

// Follow implements hub.Bus with an ordered consumer on the answer's
// subject, from its first frame. It survives the loss of a NATS node (the
// consumer is recreated where it stopped); it returns an error wrapping
// hub.ErrBusUnavailable once the bus is down (OutageGrace without a
// connection).
func (b *Bus) Follow(ctx context.Context, a hub.AnswerRef, fn func(*protocol.Frame)) error {
	if err := b.usable(); err != nil {
		return err
	}
	stream := b.res.Load().stream
	down := b.conn.down()
	cons, it, err := b.orderedMessages(ctx, stream, a, down)
	if err != nil {
		return err
	}
	defer b.dropConsumer(stream, cons)
	defer it.Stop()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-ctx.Done():
		case <-down:
		case <-stop:
			return
		}
		it.Stop()
	}()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if isClosed(down) || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return unavailable("follow "+a.MessageID, b.downErr())
			}
			continue // the ordered consumer recreates itself
		}
		f, err := decodeFrame(a.MessageID, m)
		if err != nil {
			return err
		}
		fn(f)
		if f.Type == protocol.TypeDone || f.Type == hub.FrameAborted {
			return nil
		}
	}
}

// orderedMessages creates the ordered consumer of an answer, retrying while
// JetStream elects leaders after a node loss, until ctx ends or the bus is down.
func (b *Bus) orderedMessages(ctx context.Context, stream string, a hub.AnswerRef, down <-chan struct{}) (jetstream.Consumer, jetstream.MessagesContext, error) {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{b.subject("answer", token(a.MessageID))},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		InactiveThreshold: 10 * time.Second, // a backstop: dropConsumer deletes it

	}
	for attempt := 0; ; attempt++ {
		cctx, cancel := opContext(ctx)
		c, err := b.js.OrderedConsumer(cctx, stream, cfg)
		cancel()
		if err == nil {
			it, merr := c.Messages(jetstream.PullHeartbeat(followHeartbeat))
			if merr == nil {
				return c, it, nil
			}
			err = merr
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-down:
			return nil, nil, unavailable("follow "+a.MessageID, err)
		case <-time.After(backoff(attempt)):
		}
	}
}

// dropConsumer deletes a follow's ordered consumer once it is done with,
// so the server does not keep it until its inactivity threshold.
func (b *Bus) dropConsumer(stream string, c jetstream.Consumer) {
	info := c.CachedInfo()
	if info == nil || !b.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = b.js.DeleteConsumer(ctx, stream, info.Name) // best effort: the threshold removes it anyway
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (b *Bus) downErr() error {
	if err := b.conn.err(); err != nil {
		return err
	}
	return errors.New("the NATS connection was lost")
}

// followHeartbeat is the idle heartbeat a follow's consumer asks for: a
// follow that hears nothing for two of them recreates its consumer where
// it stopped. With the library's default (5s), a follow whose first pull
// went unanswered (seen with tens of follows starting at once on a
// three-node cluster) stalled for 10s; now for about 2s.
const followHeartbeat = time.Second
