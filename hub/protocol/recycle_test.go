package protocol

import (
	"bytes"
	"strings"
	"testing"
)

// TestFramesDeltaAt: a delta built in a Frames reads as DeltaAt's, for
// every text of textFrameCases and one larger than a recycled frame's
// least capacity; a frame every reader released is built again, one a
// reader holds is not and keeps its bytes; Release of a copy, or of
// a frame not from a Frames, does nothing.
func TestFramesDeltaAt(t *testing.T) {
	t.Parallel()
	var fs Frames
	texts := append(textFrameCases, strings.Repeat("long ", minRecycled))
	var last *Frame
	for i, text := range texts {
		f := fs.DeltaAt("conv", "msg", int64(i), 3, []byte(text), 2)
		want := DeltaAt("conv", "msg", int64(i), 3, text)
		if !bytes.Equal(f.Data, want.Data) || f.Type != want.Type || f.Seq != want.Seq || f.RSeq != want.RSeq ||
			f.ConversationID != want.ConversationID || f.MessageID != want.MessageID {
			t.Fatalf("text %d: built %+v, want %+v", i, f, want)
		}
		if last != nil && f != last && len(want.Data) <= cap(last.Data) {
			t.Fatalf("text %d: a new frame, though both readers released the last, which fits it", i)
		}
		f.Release()
		f.Release()
		last = f
	}

	held := fs.DeltaAt("conv", "msg", 1, 0, []byte("held"), 2)
	kept := bytes.Clone(held.Data)
	held.Release() // one reader of two
	cp := *held
	cp.Release() // a copy: not a reader's release
	Delta("conv", "msg", 1, "ordinary").Release()
	next := fs.DeltaAt("conv", "msg", 2, 0, []byte("next"), 1)
	if next == held {
		t.Fatal("a frame one reader still holds was built again")
	}
	if !bytes.Equal(held.Data, kept) {
		t.Fatalf("the held frame reads %s, was %s", held.Data, kept)
	}
	held.Release()
	if again := fs.DeltaAt("conv", "msg", 3, 0, []byte("again"), 1); again != held {
		t.Fatal("the frame its last reader released was not built again")
	}
}
