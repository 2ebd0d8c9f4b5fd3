package natsbus

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub"
	"chatd/hub/natsbus/natstest"
	"chatd/hub/protocol"
)

// TestFrameHeader: the header a frame is published with is what
// Header.Set builds (what instances of earlier versions published and
// read), and decodeFrame rebuilds the frame from it.
func TestFrameHeader(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		f       protocol.Frame
		n, prev uint64
	}{
		{"delta", protocol.Frame{Type: protocol.TypeDelta, ConversationID: "c1", MessageID: "m1", Seq: 42, Data: []byte(`{"type":"delta"}`)}, 7, 1234},
		{"first", protocol.Frame{Type: protocol.TypeMessage, ConversationID: "c2", MessageID: "m2", Data: []byte(`{}`)}, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := nats.Header{}
			want.Set(hdrType, tc.f.Type)
			want.Set(hdrMsg, tc.f.MessageID)
			want.Set(hdrConv, tc.f.ConversationID)
			want.Set(hdrSeq, strconv.FormatInt(tc.f.Seq, 10))
			want.Set(hdrN, strconv.FormatUint(tc.n, 10))
			want.Set(hdrPrev, strconv.FormatUint(tc.prev, 10))
			want.Set(jetstream.MsgIDHeader, "id-"+tc.name)
			want.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(tc.prev, 10))
			got := frameHeader(&tc.f, tc.n, tc.prev, "id-"+tc.name)
			if len(got) != len(want) {
				t.Fatalf("header %v, want %v", got, want)
			}
			for k, v := range want {
				if len(got[k]) != 1 || got[k][0] != v[0] {
					t.Fatalf("header %s = %q, want %q", k, got[k], v)
				}
			}
			fr, n, err := decodeFrame(tc.f.MessageID, got, tc.f.Data)
			if err != nil || n != tc.n || fr.Type != tc.f.Type || fr.ConversationID != tc.f.ConversationID ||
				fr.MessageID != tc.f.MessageID || fr.Seq != tc.f.Seq || string(fr.Data) != string(tc.f.Data) {
				t.Fatalf("decoded %+v, %d, %v; want %+v, %d", fr, n, err, tc.f, tc.n)
			}
		})
	}
}

// TestFrameIDUnchanged: a frame's message id for JetStream's duplicate
// detection is what earlier versions made (FNV-1a of the bytes through
// hash/fnv, in hex), so a frame sent again during a rolling upgrade is
// still recognised.
func TestFrameIDUnchanged(t *testing.T) {
	t.Parallel()
	a := answer("c1", "m1", "i1")
	for _, f := range []protocol.Frame{
		{Type: protocol.TypeDelta, MessageID: "m1", Seq: 123456, Data: []byte(`{"type":"delta","text":"hé"}`)},
		{Type: protocol.TypeMessage, MessageID: "u1", Data: nil},
		{Type: protocol.TypeDone, MessageID: "m1", Seq: -1, Data: []byte{0, 0xff}},
	} {
		h := fnv.New64a()
		_, _ = h.Write(f.Data)
		want := a.MessageID + "." + f.MessageID + "." + f.Type + "." + strconv.FormatInt(f.Seq, 10) + "." + hex.EncodeToString(h.Sum(nil))
		if got := frameID(a, &f); got != want {
			t.Errorf("frameID(%+v) = %q, want %q", f, got, want)
		}
	}
}

// TestPublishPathAllocations bounds the allocations of what Publish does
// per frame besides nats.go's own: the frame's id, its header, its reply
// subject, and the read of its acknowledgement (one each for the id and
// the reply subject, four for the header: the numbers, the values, the
// map and its slots; none to read an acknowledgement).
func TestPublishPathAllocations(t *testing.T) {
	a := answer("conversation-0123456789", "message-0123456789", "instance-1")
	f := &protocol.Frame{Type: protocol.TypeDelta, ConversationID: a.ConversationID, MessageID: a.MessageID,
		Seq: 123456, Data: []byte(`{"type":"delta","conversationId":"c","messageId":"m","seq":123456,"text":"token"}`)}
	p := newPublishers()
	pa := &pubAnswer{inbox: "_INBOX.abcdefghijklmnopqrstuv"}
	ack := []byte(`{"stream":"CHATD_ANSWERS","seq":987654321}`)
	for _, tc := range []struct {
		name string
		max  float64
		fn   func()
	}{
		{"frameID", 1, func() { _ = frameID(a, f) }},
		{"frameHeader", 4, func() { _ = frameHeader(f, 4567, 987654320, "id") }},
		{"replyTo", 1, func() { _ = p.replyTo(pa, 4567) }},
		{"parsePubAck", 0, func() { _, _ = parsePubAck(ack) }},
	} {
		if got := testing.AllocsPerRun(100, tc.fn); got > tc.max {
			t.Errorf("%s: %.0f allocations, want at most %.0f", tc.name, got, tc.max)
		}
	}
}

// TestPublishTooLarge: a frame larger than the bus takes is refused for
// good (hub.ErrRefused, which the hub does not retry), not reported as the
// bus being unavailable (which it retries for as long as it runs), whether
// the NATS servers refuse it (max_payload, known before it is sent) or the
// answer stream does (its max_msg_size below max_payload, said in the
// frame's acknowledgement, which for a delta after the first is read
// when the next frame is published: that frame is then published, the
// delta skipped). The answer's other frames are published after it and a
// follower gets them all up to the done; one that reads the stream after
// the done gets exactly them.
func TestPublishTooLarge(t *testing.T) {
	t.Parallel()
	limits := []struct {
		name   string
		nats   natstest.Options
		stream int32
		// acked: the refusal comes in the acknowledgement, so a pipelined
		// delta's Publish returns before it.
		acked bool
	}{
		{"max_payload", natstest.Options{Nodes: 1, User: "chatd", Password: "pw", MaxPayload: 16 << 10}, 0, false},
		{"stream max_msg_size", natstest.Options{Nodes: 1, User: "chatd", Password: "pw"}, 16 << 10, true},
	}
	for _, lim := range limits {
		t.Run(lim.name, func(t *testing.T) {
			t.Parallel()
			c := natstest.Start(t, lim.nats)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			opts := func(id string) Options {
				return Options{InstanceID: id, LeaseTTL: 2 * time.Second, Stream: StreamLimits{MaxMsgSize: lim.stream}}
			}
			owner, _ := newBusWith(t, c, opts("large-owner"))
			peer, _ := newBusWith(t, c, opts("large-peer"))
			waitHealthy(t, ctx, owner, peer)
			cases := []struct {
				name  string
				large int // the frame made too large
			}{
				{"the first frame", 0},
				{"a delta after the first", 2},
			}
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					a := answer(fmt.Sprintf("c-large-%d", i), fmt.Sprintf("m-large-%d", i), owner.InstanceID())
					frames := testFrames(a, 3)
					big := *frames[tc.large]
					big.Data = fmt.Appendf(nil, `{"type":%q,"text":%q}`, big.Type, strings.Repeat("x", 20<<10))
					res := followAsync(ctx, peer, a)
					var want []*protocol.Frame
					for j, f := range frames {
						if j != tc.large {
							publishOnce(t, ctx, owner, a, f)
							want = append(want, f)
							continue
						}
						err := owner.Publish(ctx, a, &big)
						if lim.acked && tc.large > 1 && err == nil {
							continue // sent: its refusal is read with the next frame
						}
						if !errors.Is(err, hub.ErrRefused) || errors.Is(err, hub.ErrBusUnavailable) {
							t.Fatalf("publish a frame of %d bytes: %v, want hub.ErrRefused only", len(big.Data), err)
						}
					}
					r := <-res
					if r.err != nil {
						t.Fatal(r.err)
					}
					// A live follower may get the refused frame: core NATS
					// carried it though the stream did not keep it.
					checkFrames(t, "follower", without(r.frames, &big), want)
					r = <-followAsync(ctx, peer, a)
					if r.err != nil {
						t.Fatal(r.err)
					}
					checkFrames(t, "follower of the stored frames", r.frames, want)
				})
			}
		})
	}
}

// publishOnce publishes f, retrying while the bus is unavailable for at
// most a few seconds (a single node's stream has no leader to elect).
func publishOnce(t *testing.T, ctx context.Context, b *Bus, a hub.AnswerRef, f *protocol.Frame) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := publishRetrying(ctx, b, a, f); err != nil {
		t.Fatalf("publish %s frame: %v", f.Type, err)
	}
}

// without is frames without those equal to f.
func without(frames []*protocol.Frame, f *protocol.Frame) []*protocol.Frame {
	var out []*protocol.Frame
	for _, g := range frames {
		if g.Type != f.Type || string(g.Data) != string(f.Data) {
			out = append(out, g)
		}
	}
	return out
}
