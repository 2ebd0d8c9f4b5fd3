package hub

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// catchUpFrame is a delta or reasoning frame as a client reads it.
type catchUpFrame struct {
	Type string `json:"type"`
	Seq  int64  `json:"seq"`
	RSeq int64  `json:"rseq"`
	Text string `json:"text"`
}

// catchUpSources send the catch-up of an answer with text and reasoning
// from the cursors (from, rfrom): the rest of a stored answer on a resume,
// a running answer's, a mirrored one's.
var catchUpSources = []struct {
	name string
	send func(sub *fakeSub, text, reasoning string, from, rfrom int64)
}{
	{"stored", func(sub *fakeSub, text, reasoning string, from, rfrom int64) {
		m := persistence.Message{ID: "m1", ConversationID: "c1", Content: text, Reasoning: reasoning, Status: persistence.StatusComplete}
		for _, f := range storedRest(m, from, rfrom) {
			sub.Deliver(f)
		}
	}},
	{"running", func(sub *fakeSub, text, reasoning string, from, rfrom int64) {
		g := &generation{msg: persistence.Message{ID: "m1", ConversationID: "c1"},
			text: []byte(text), sent: len(text), reasoning: []byte(reasoning), rsent: len(reasoning)}
		g.catchUpLocked(sub, from, rfrom, false)
	}},
	{"mirrored", func(sub *fakeSub, text, reasoning string, from, rfrom int64) {
		m := &mirror{ref: AnswerRef{ConversationID: "c1", MessageID: "m1"}, text: []byte(text), reasoning: []byte(reasoning)}
		m.catchUpReasoningLocked(sub, from, rfrom)
		m.catchUpLocked(sub, from, false)
	}},
}

// TestCatchUpInPieces: a catch-up of a long answer (a resume, a tab
// joining) comes as several frames of at most catchUpPiece bytes, cut at
// character starts, with contiguous cursors, the text and the reasoning
// byte-exact; a resume near the end gets one small frame of each.
func TestCatchUpInPieces(t *testing.T) {
	t.Parallel()
	// 10 bytes of 1-, 2-, 3- and 4-byte characters: piece bounds fall
	// inside characters of each width.
	text := strings.Repeat("aé中🎉", 10<<10) // 100 KiB
	reasoning := strings.Repeat("🎉中éb", 10<<10)
	cursors := []struct {
		name        string
		from, rfrom int64
		maxFrames   int // of each stream; 1: the rest fits one frame
	}{
		{"from the start", 0, 0, 0},
		{"from the middle", 30001, 20004, 0},
		{"near the end", int64(len(text) - 20), int64(len(reasoning) - 13), 1},
	}
	for _, src := range catchUpSources {
		for _, cur := range cursors {
			t.Run(src.name+"/"+cur.name, func(t *testing.T) {
				t.Parallel()
				sub := newSub("u1")
				src.send(sub, text, reasoning, cur.from, cur.rfrom)
				var deltas, thoughts []catchUpFrame
				for len(sub.frames) > 0 {
					f := <-sub.frames
					var d catchUpFrame
					if err := json.Unmarshal(f.Data, &d); err != nil {
						t.Fatalf("frame %s: %v", f.Data, err)
					}
					switch f.Type {
					case protocol.TypeDelta:
						deltas = append(deltas, d)
					case protocol.TypeReasoning:
						thoughts = append(thoughts, d)
					}
				}
				checkPieces(t, "text", deltas, text, cur.from, cur.maxFrames, func(d catchUpFrame) int64 { return d.Seq })
				checkPieces(t, "reasoning", thoughts, reasoning, cur.rfrom, cur.maxFrames, func(d catchUpFrame) int64 { return d.RSeq })
			})
		}
	}
}

// checkPieces checks the frames of one stream of a catch-up from the
// cursor from: each at most catchUpPiece bytes of whole characters, each
// cursor the previous one plus its length, together all of want after from.
func checkPieces(t *testing.T, what string, frames []catchUpFrame, want string, from int64, maxFrames int, cursor func(catchUpFrame) int64) {
	t.Helper()
	if maxFrames == 0 && len(frames) < 2 {
		t.Errorf("%s: %d frames for %d bytes, want several of at most %d bytes", what, len(frames), len(want)-int(from), catchUpPiece)
	}
	if maxFrames > 0 && len(frames) > maxFrames {
		t.Errorf("%s: %d frames for %d bytes, want at most %d", what, len(frames), len(want)-int(from), maxFrames)
	}
	at := from
	var got strings.Builder
	for i, f := range frames {
		if len(f.Text) > catchUpPiece || !utf8.ValidString(f.Text) || f.Text == "" {
			t.Fatalf("%s frame %d: %d bytes, valid UTF-8 %t; want 1 to %d bytes of whole characters", what, i, len(f.Text), utf8.ValidString(f.Text), catchUpPiece)
		}
		at += int64(len(f.Text))
		if cursor(f) != at {
			t.Fatalf("%s frame %d: cursor %d, want %d (the previous one plus its %d bytes)", what, i, cursor(f), at, len(f.Text))
		}
		got.WriteString(f.Text)
	}
	if got.String() != want[from:] {
		t.Errorf("%s: caught up %d bytes, not the %d after %d", what, got.Len(), len(want)-int(from), from)
	}
}

// TestCatchUpBounds: the pieces cover the range given exactly, in order;
// past catchUpPieces pieces of catchUpPiece bytes they grow instead of
// multiplying; bytes that are not UTF-8 are cut at the bound.
func TestCatchUpBounds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		text      string
		from, to  int
		maxPieces int
		maxSize   int
	}{
		{"short", "héllo", 1, 6, 1, 5},
		{"empty", "abc", 3, 3, 0, 0},
		{"up to a cursor inside the text", strings.Repeat("é", 20<<10), 2, 36 << 10, 3, catchUpPiece},
		{"large: at most catchUpPieces", strings.Repeat("中", 1<<20), 0, 3 << 20, catchUpPieces, 3<<20/catchUpPieces + 3},
		{"not UTF-8", strings.Repeat("\x80", 40<<10), 5, 40 << 10, 3, catchUpPiece},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			at, n := tc.from, 0
			for start, end := range catchUpBounds(tc.text, tc.from, tc.to) {
				if start != at || end <= start || end-start > tc.maxSize {
					t.Fatalf("piece %d: [%d, %d), want it to start at %d, with 1 to %d bytes", n, start, end, at, tc.maxSize)
				}
				at, n = end, n+1
			}
			if at != tc.to || n > tc.maxPieces {
				t.Errorf("%d pieces up to %d, want at most %d up to %d", n, at, tc.maxPieces, tc.to)
			}
		})
	}
}
