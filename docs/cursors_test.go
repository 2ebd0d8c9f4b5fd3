package docs

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

// cursors are what a client has of one answer: its text's length in
// bytes (seq) and its reasoning's (rseq).
type cursors struct{ seq, rseq int64 }

// cursorCheck follows the answers of protocol.md's transcripts as a
// client applies them.
type cursorCheck struct {
	t       *testing.T
	answers map[string]*cursors // by messageId
	frames  int                 // delta, reasoning and done frames checked
}

func (c *cursorCheck) answer(id string) *cursors {
	a, ok := c.answers[id]
	if !ok {
		a = &cursors{}
		c.answers[id] = a
	}
	return a
}

// sent notes a resume: the client has the answer up to its cursors.
func (c *cursorCheck) sent(f map[string]any) {
	id, _ := f["messageId"].(string)
	if f["type"] != "subscribe" || id == "" {
		return
	}
	c.answers[id] = &cursors{seq: number(f["lastSeq"]), rseq: number(f["lastReasoningSeq"])}
}

// received checks a frame's cursors against the text and reasoning before
// it: seq and rseq are lengths in bytes after the frame.
func (c *cursorCheck) received(where string, f map[string]any) {
	id, _ := f["messageId"].(string)
	text, _ := f["text"].(string)
	switch f["type"] {
	case "message":
		if m, _ := f["message"].(map[string]any); m["status"] == "streaming" {
			mid, _ := m["id"].(string)
			c.answers[mid] = &cursors{} // a new answer, empty
		}
		return
	case "delta":
		a := c.answer(id)
		if got, want := number(f["seq"]), a.seq+int64(len(text)); got != want {
			c.t.Errorf("%s: delta seq %d; the %d bytes before it and its %d make %d", where, got, a.seq, len(text), want)
		}
		a.seq = number(f["seq"])
	case "reasoning":
		a := c.answer(id)
		if got, want := number(f["rseq"]), a.rseq+int64(len(text)); got != want {
			c.t.Errorf("%s: reasoning rseq %d; the %d bytes before it and its %d make %d", where, got, a.rseq, len(text), want)
		}
		a.rseq = number(f["rseq"])
	case "done":
		a := c.answer(id)
		if got := number(f["seq"]); got != a.seq {
			c.t.Errorf("%s: done seq %d; its deltas made %d bytes", where, got, a.seq)
		}
		if got := number(f["rseq"]); got != a.rseq {
			c.t.Errorf("%s: done rseq %d; its reasoning made %d bytes", where, got, a.rseq)
		}
	default:
		return
	}
	c.frames++
}

// number reads a JSON number (absent: 0).
func number(v any) int64 {
	n, ok := v.(json.Number)
	if !ok {
		return 0
	}
	i, err := n.Int64()
	if err != nil {
		return -1
	}
	return i
}

// lastEventIDRe is the Last-Event-ID an SSE transcript starts from, named
// in the paragraph before it.
var lastEventIDRe = regexp.MustCompile(`Last-Event-ID: ([0-9a-f]{24}):(\d+)/(\d+)`)

// TestTranscriptCursorsAdd: in every transcript of protocol.md (the wscat
// sessions, the reasoning model's, its SSE resume), each delta's seq is
// the text's length in bytes after it, each reasoning frame's rseq the
// reasoning's, each done's the final lengths, from the start of the
// answer or from the cursors a resume named; and an SSE event's id is
// its answer and those cursors.
func TestTranscriptCursorsAdd(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	c := &cursorCheck{t: t, answers: map[string]*cursors{}}
	for _, b := range readBlocks(t, "protocol.md") {
		if b.lang != "" || len(b.lines) == 0 {
			continue
		}
		switch {
		case b.lines[0] == ": open":
			before := strings.Join(lines[max(0, b.line-4):b.line-1], " ")
			m := lastEventIDRe.FindStringSubmatch(before)
			if m == nil {
				t.Fatalf("protocol.md:%d: an SSE transcript without the Last-Event-ID it resumes from just before it", b.line)
			}
			c.answers[m[1]] = &cursors{seq: number(json.Number(m[2])), rseq: number(json.Number(m[3]))}
			c.sse(b)
		case strings.HasPrefix(b.lines[0], "< ") || strings.HasPrefix(b.lines[0], "> "):
			for i, l := range b.lines {
				where := fmt.Sprintf("protocol.md:%d", b.line+1+i)
				dir, text, _ := strings.Cut(l, " ")
				f, err := decodeFrame([]byte(text))
				if err != nil {
					t.Fatalf("%s: %v", where, err)
				}
				if dir == ">" {
					c.sent(f)
				} else {
					c.received(where, f)
				}
			}
		}
	}
	if c.frames < 60 {
		t.Fatalf("checked only %d delta, reasoning and done frames: have the transcripts moved?", c.frames)
	}
}

// sse checks an SSE transcript: each event's data is a frame of its type,
// whose cursors add up, and whose id names its answer and its cursors
// after it (<messageId>:<seq>/<rseq>, or :done).
func (c *cursorCheck) sse(b codeBlock) {
	var event, id string
	for i, l := range b.lines {
		where := fmt.Sprintf("protocol.md:%d", b.line+1+i)
		name, value, _ := strings.Cut(l, ": ")
		switch name {
		case "event":
			event, id = value, ""
		case "id":
			id = value
		case "data":
			f, err := decodeFrame([]byte(value))
			if err != nil {
				c.t.Fatalf("%s: %v", where, err)
			}
			if f["type"] != event {
				c.t.Errorf("%s: event %s carries a %v frame", where, event, f["type"])
			}
			c.received(where, f)
			c.checkEventID(where, f, id)
		}
	}
}

func (c *cursorCheck) checkEventID(where string, f map[string]any, id string) {
	mid, _ := f["messageId"].(string)
	var want string
	switch f["type"] {
	case "done":
		want = mid + ":done"
	case "delta", "reasoning":
		a := c.answer(mid)
		want = fmt.Sprintf("%s:%d", mid, a.seq)
		if a.rseq > 0 {
			want += fmt.Sprintf("/%d", a.rseq)
		}
	}
	if id != want {
		c.t.Errorf("%s: event id %q; its frame makes it %q", where, id, want)
	}
}
