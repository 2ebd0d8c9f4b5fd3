package natsbus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
)

// hdrOrigin names the instance that broadcast an event.
const hdrOrigin = "Chatd-Origin"

type controlMsg struct {
	Answer hub.AnswerRef   `json:"answer"`
	Kind   hub.ControlKind `json:"kind"`
}

// subscribe listens for control requests to this instance, for the user
// events of the others and for the answers of direct gets (each follow
// subscribes to its answer's frames, see liveFrames). The subscriptions
// survive reconnects; Close drains them with the connection.
func (b *Bus) subscribe() error {
	if _, err := b.nc.Subscribe(b.subject("ctl", token(b.id)), b.onControl); err != nil {
		return fmt.Errorf("natsbus: subscribe to control: %w", err)
	}
	if _, err := b.nc.Subscribe(b.subject("events", "*"), b.onEvent); err != nil {
		return fmt.Errorf("natsbus: subscribe to events: %w", err)
	}
	return b.replies.subscribe(b.nc)
}

func (b *Bus) onControl(m *nats.Msg) {
	var c controlMsg
	if err := json.Unmarshal(m.Data, &c); err != nil {
		b.log.Warn("bad control message", slog.Any("err", err))
		return
	}
	if h := b.handler(); h != nil {
		h.Control(c.Answer, c.Kind)
	}
	_ = m.Respond([]byte("ok"))
}

func (b *Bus) onEvent(m *nats.Msg) { b.receiveEvent(m.Header, m.Data) }

// Control implements hub.Bus: a request to the instance running a, which
// answers once its hub was told.
func (b *Bus) Control(ctx context.Context, a hub.AnswerRef, kind hub.ControlKind) error {
	if err := b.conn.err(); err != nil {
		return err
	}
	data, err := json.Marshal(controlMsg{Answer: a, Kind: kind})
	if err != nil {
		return fmt.Errorf("natsbus: encode control: %w", err)
	}
	ctx, cancel := opContext(ctx)
	defer cancel()
	if _, err := b.nc.RequestWithContext(ctx, b.subject("ctl", token(a.Instance)), data); err != nil {
		if errors.Is(err, nats.ErrNoResponders) {
			err = fmt.Errorf("%w: %s: %w", hub.ErrInstanceGone, a.Instance, err)
		}
		return unavailable(fmt.Sprintf("%s %s", kind, a.MessageID), err)
	}
	return nil
}

// Broadcast implements hub.Bus: a publish that core NATS delivers at once
// to every connected instance and JetStream stores for a while (see
// events.go), without waiting for the store's acknowledgement (a failed
// store is logged). When too many events wait for theirs (the events
// stream does not answer), the event is published on core NATS alone:
// the live instances get it all the same, and the stream stores it if it
// can. While the bus is down (cut off from NATS past OutageGrace), and
// until what was queued then is sent, the event waits in the outbox (see
// outbox.go) and Broadcast returns nil.
func (b *Bus) Broadcast(_ context.Context, ev hub.UserEvent) error {
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("natsbus: encode user event: %w", err)
	}
	id := b.eventOrigin + strconv.FormatUint(b.eventSeq.Add(1), 10)
	msg := &nats.Msg{Subject: b.subject("events", token(ev.UserID)), Data: data, Header: nats.Header{}}
	msg.Header.Set(hdrOrigin, b.id)
	msg.Header.Set(hdrEventID, id)
	held, firstDrop := b.out.hold(msg, b.conn.err() != nil)
	if firstDrop {
		b.log.Warn("too many user events wait for the NATS connection; dropping the oldest",
			slog.Int("max_events", b.out.maxEvents), slog.Int("max_bytes", b.out.maxBytes))
	}
	if held {
		return nil
	}
	if err := b.publishEvent(msg); err != nil {
		return unavailable("broadcast to "+ev.UserID, err)
	}
	return nil
}

// publishEvent publishes a user event on core NATS and, once the events
// stream is set up, stores it there under its id.
func (b *Bus) publishEvent(msg *nats.Msg) error {
	if b.res.Load() == nil { // no stream yet: core NATS only
		return b.nc.PublishMsg(msg)
	}
	_, err := b.js.PublishMsgAsync(msg, jetstream.WithMsgID(msg.Header.Get(hdrEventID)))
	if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
		b.log.Warn("the events stream does not acknowledge user events; broadcasting on core NATS only",
			slog.String("subject", msg.Subject), slog.Int("waiting", b.js.PublishAsyncPending()))
		err = b.nc.PublishMsg(msg)
	}
	return err
}
