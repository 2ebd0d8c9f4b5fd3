package natsbus

import (
	"strconv"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

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
