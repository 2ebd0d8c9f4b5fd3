package load

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"chatd/llm/fakeai"
)

// frame is a server frame of chatd's protocol (or the relay's subset of it),
// decoded loosely.
type frame struct {
	Type      string          `json:"type"`
	ID        json.RawMessage `json:"id"`
	MessageID string          `json:"messageId"`
	Seq       int64           `json:"seq"`
	Text      string          `json:"text"`
	Status    string          `json:"status"`
	Code      string          `json:"code"`
	Message   json.RawMessage `json:"message"` // an object in message frames, a string in errors
}

// event is what a tab's reader tells the stream driving it.
type event struct {
	kind string // "ack", "error", "first", "done", "closed"
	id   string // the client frame id of an ack or error
	at   int64  // arrival (MonotonicNanos) of a first token
	text string // error description
	done answerEnd
}

// answerEnd is how an answer ended on one tab.
type answerEnd struct {
	status string
	ok     bool   // whole, gapless and the expected text
	hash   uint64 // of the delta sequence (seq and text of every delta)
	why    string // what was wrong when !ok
}

// tab is one WebSocket connection. Its reader goroutine records every
// token's lateness as frames arrive and passes control frames to the
// driver through events.
type tab struct {
	c        *websocket.Conn
	ctx      context.Context // the run's: ends the reader's sends
	events   chan event
	expected string // the text every answer must have, without stamps

	stallOnAck atomic.Bool   // stop reading after the next ack
	resume     chan struct{} // closed to read again after a stall
	quit       chan struct{} // closed by close: the reader sends nothing more
	readerDone chan struct{} // closed when the reader returns
	draining   atomic.Bool   // reading after a stall: record nothing

	// Written by the reader goroutine only; read after it ended or after
	// the run (the driver waits for its events first).
	times  timings
	frames int64
	bytes  int64
	cur    *answer
}

// answer is the state of the answer a tab is receiving.
type answer struct {
	text strings.Builder
	seq  int64
	gap  string
	hash uint64
}

func newTab(ctx context.Context, c *websocket.Conn, expected string) *tab {
	c.SetReadLimit(16 << 20)
	return &tab{c: c, ctx: ctx, events: make(chan event, 64), expected: expected,
		resume: make(chan struct{}), quit: make(chan struct{}), readerDone: make(chan struct{})}
}

// close closes the connection and waits for the reader to return.
func (t *tab) close() {
	close(t.quit)
	t.c.CloseNow()
	<-t.readerDone
}

// send hands ev to the driver, unless the run is over.
func (t *tab) send(ev event) {
	select {
	case t.events <- ev:
	case <-t.ctx.Done():
	case <-t.quit:
	}
}

// read runs until the connection ends.
func (t *tab) read() {
	defer close(t.readerDone)
	for {
		_, data, err := t.c.Read(t.ctx)
		at := fakeai.MonotonicNanos()
		if err != nil {
			t.send(event{kind: "closed", text: err.Error(), id: fmt.Sprint(int(websocket.CloseStatus(err)))})
			return
		}
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			t.send(event{kind: "error", text: fmt.Sprintf("undecodable frame %.80q: %v", data, err)})
			continue
		}
		if t.draining.Load() {
			if f.Type == "done" {
				t.send(event{kind: "caughtup"})
			}
			continue
		}
		t.handle(f, at, len(data))
		if f.Type == "ack" && t.stallOnAck.Load() {
			select {
			case <-t.resume:
			case <-t.ctx.Done():
				return
			case <-t.quit:
				return
			}
			t.draining.Store(true)
		}
	}
}

func (t *tab) handle(f frame, at int64, size int) {
	switch f.Type {
	case "delta":
		t.delta(f, at, size)
	case "done":
		t.send(event{kind: "done", done: t.end(f)})
	case "ack":
		t.send(event{kind: "ack", id: frameID(f.ID)})
	case "error":
		var msg string
		_ = json.Unmarshal(f.Message, &msg)
		t.send(event{kind: "error", id: frameID(f.ID), text: f.Code + ": " + msg})
	}
}

func (t *tab) delta(f frame, at int64, size int) {
	t.frames++
	t.bytes += int64(size)
	if t.cur == nil {
		t.cur = &answer{}
		t.send(event{kind: "first", at: at})
	}
	t.times.add(f.Text, at)
	a := t.cur
	if want := a.seq + int64(len(f.Text)); f.Seq != want && a.gap == "" {
		a.gap = fmt.Sprintf("delta seq %d after %d bytes + %d", f.Seq, a.seq, len(f.Text))
	}
	a.seq = f.Seq
	a.text.WriteString(f.Text)
	h := fnv.New64a()
	fmt.Fprintf(h, "%d:%d:%s|", a.hash, f.Seq, f.Text)
	a.hash = h.Sum64()
}

// end checks the answer a done frame ends.
func (t *tab) end(f frame) answerEnd {
	a := t.cur
	t.cur = nil
	if a == nil {
		a = &answer{}
	}
	e := answerEnd{status: f.Status, hash: a.hash}
	switch text := a.text.String(); {
	case a.gap != "":
		e.why = a.gap
	case f.Seq != int64(len(text)):
		e.why = fmt.Sprintf("done seq %d after %d bytes", f.Seq, len(text))
	case f.Status != "complete":
		e.why = "status " + f.Status
	case stripStamps(text) != t.expected:
		e.why = fmt.Sprintf("text differs from the expected answer (%d bytes, want %d without stamps)", len(stripStamps(text)), len(t.expected))
	default:
		e.ok = true
	}
	return e
}

func frameID(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// write sends one JSON frame.
func (t *tab) write(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.c.Write(ctx, websocket.MessageText, b)
}

// wait returns the next event of one of the kinds given, dropping others
// ("first" events are dropped unless asked for); a closed connection or an
// error frame ends the wait with an error.
func (t *tab) wait(ctx context.Context, kinds ...string) (event, error) {
	for {
		select {
		case ev := <-t.events:
			for _, k := range kinds {
				if ev.kind == k {
					return ev, nil
				}
			}
			switch ev.kind {
			case "closed":
				return ev, fmt.Errorf("connection closed (%s): %s", ev.id, ev.text)
			case "error":
				return ev, fmt.Errorf("error frame: %s", ev.text)
			}
		case <-ctx.Done():
			return event{}, fmt.Errorf("waiting for %v: %w", kinds, ctx.Err())
		}
	}
}

// stallOutcome is what became of a tab that stopped reading, once it read again.
type stallOutcome struct {
	closed   bool // the server had closed the connection
	code     int  // its close code (-1: no close frame)
	caughtUp bool // it was still open and received the answer's end
}

// drain lets a stalled tab read again and waits up to d for what it
// finds: the close the server sent, or the end of the answer.
func (t *tab) drain(d time.Duration) stallOutcome {
	close(t.resume)
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case ev := <-t.events:
			switch ev.kind {
			case "closed":
				code, _ := strconv.Atoi(ev.id)
				return stallOutcome{closed: true, code: code}
			case "caughtup":
				return stallOutcome{caughtUp: true}
			}
		case <-timer.C:
			return stallOutcome{}
		}
	}
}

// addTo adds what the tab received to res and its tokens' lateness to
// lateness; call it after close.
func (t *tab) addTo(res *Result, all *timings) {
	res.Tokens += int64(len(t.times.stamps))
	res.Frames += t.frames
	res.Bytes += t.bytes
	all.merge(&t.times)
}
