package docs

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/llm/models"
)

const walkthrough = "A session with wscat"

// transcriptLine is one line of a wscat transcript: a frame typed (">")
// or received ("<").
type transcriptLine struct {
	sent  bool
	frame map[string]any
	where string // file:line
}

// transcripts parses the walkthrough's transcript blocks (fenced blocks
// without a language), and returns its shell block too.
func transcripts(t *testing.T) (shell codeBlock, blocks [][]transcriptLine) {
	t.Helper()
	for _, b := range readBlocks(t, "protocol.md") {
		if b.section != walkthrough {
			continue
		}
		if b.lang == "sh" {
			shell = b
			continue
		}
		if b.lang != "" {
			t.Fatalf("protocol.md:%d: unexpected %q block in the walkthrough", b.line, b.lang)
		}
		blocks = append(blocks, transcript(t, b))
	}
	if len(shell.lines) == 0 || len(blocks) < 3 {
		t.Fatalf("protocol.md %q: want a sh block and the transcripts (first answer, stop and regenerate, resume); found %d transcripts", walkthrough, len(blocks))
	}
	return shell, blocks
}

// transcript parses one transcript block.
func transcript(t *testing.T, b codeBlock) []transcriptLine {
	t.Helper()
	var lines []transcriptLine
	for i, l := range b.lines {
		where := fmt.Sprintf("protocol.md:%d", b.line+1+i)
		dir, text, ok := strings.Cut(l, " ")
		if !ok || (dir != ">" && dir != "<") {
			t.Fatalf("%s: a transcript line starts with \"> \" or \"< \": %q", where, l)
		}
		f, err := decodeFrame([]byte(text))
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		lines = append(lines, transcriptLine{sent: dir == ">", frame: f, where: where})
	}
	return lines
}

func decodeFrame(data []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var f map[string]any
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("frame %s: %w", data, err)
	}
	return f, nil
}

var (
	curlRe   = regexp.MustCompile(`curl -s localhost:(\d+)(/api/auth/register) .*-d '([^']+)'`)
	wscatRe  = regexp.MustCompile(`wscat -c ws://localhost:(\d+)/ws -H "Authorization: Bearer \$T"`)
	hexIDRe  = regexp.MustCompile(`^[0-9a-f]{24}$`)
	valueKey = map[string]bool{"type": true, "action": true, "status": true, "role": true, "code": true,
		"protocol": true, "finishReason": true, "model": true, "maxFrameBytes": true, "session": true}
)

// TestWalkthroughReplays replays every frame protocol.md's wscat session
// types against a real server (SQLite, the demo model), and checks that
// the server answers with the documented frames: same types, same fields
// (recursively), same values where they do not depend on time or text,
// and ids that refer to each other as in the document.
func TestWalkthroughReplays(t *testing.T) {
	t.Parallel()
	shell, blocks := transcripts(t)
	cmds := strings.Join(shell.lines, " ")
	cm, wm := curlRe.FindStringSubmatch(cmds), wscatRe.FindStringSubmatch(cmds)
	if cm == nil || wm == nil {
		t.Fatalf("protocol.md:%d: the sh block should register with curl and connect with wscat:\n%s", shell.line, cmds)
	}
	if cm[1] != "8080" || wm[1] != "8080" {
		t.Fatalf("protocol.md:%d: curl uses port %s and wscat %s; make run listens on 8080", shell.line, cm[1], wm[1])
	}

	// The demo model a word per 25 ms: an answer of some 130 words then
	// runs 3 s, so the documented cancel, sent after two deltas, finds it
	// running on a loaded machine under -race; at startServer's 5 ms it
	// ran 0.7 s, which a stall could outlast (its done then complete).
	srv := startServerWith(t, models.Config{DemoDelay: 25 * time.Millisecond})
	r := do(t, http.MethodPost, srv.URL+cm[2], "", cm[3])
	if r.status != http.StatusCreated {
		t.Fatalf("the documented registration answered %d %s", r.status, r.body)
	}
	rp := newReplay(t, srv.URL, r.field(t, "token"))
	defer rp.hangUp()
	for i, block := range blocks {
		rp.block(i, block)
	}
}

// replay plays documented frames over real connections.
type replay struct {
	t     *testing.T
	url   string
	token string
	conn  *websocket.Conn
	recv  chan []byte // the connection's frames, closed when it ends
	back  []byte      // a frame read ahead

	ids  map[string]string // documented id -> real id
	seen map[string]string // real id -> documented id

	// The text of each answer so far: the documented deltas' (by
	// documented id) and the received ones' (by real id); and its
	// reasoning, the documented reasoning frames' and the received ones'.
	docText, realText           map[string]string
	docReasoning, realReasoning map[string]string
}

// newReplay returns a replay against the server at base, signed in with
// token.
func newReplay(t *testing.T, base, token string) *replay {
	return &replay{t: t, url: "ws" + strings.TrimPrefix(base, "http") + "/ws", token: token,
		ids: map[string]string{}, seen: map[string]string{},
		docText: map[string]string{}, realText: map[string]string{},
		docReasoning: map[string]string{}, realReasoning: map[string]string{}}
}

// streamed reports whether frames of type typ carry an answer's text or
// reasoning, cut into frames as timing has it.
func streamed(typ any) bool { return typ == "delta" || typ == "reasoning" }

// block replays one transcript. One that starts with a hello is a new
// wscat connection (the last one was dropped); the others continue it.
func (r *replay) block(n int, lines []transcriptLine) {
	if len(lines) > 0 && !lines[0].sent && lines[0].frame["type"] == "hello" {
		r.hangUp()
		r.dial()
	} else if r.conn == nil {
		r.t.Fatalf("%s: transcript %d starts without a connection (no hello)", lines[0].where, n+1)
	}
	matchedStream := false
	for _, l := range lines {
		if l.sent {
			r.send(l)
			matchedStream = false
			continue
		}
		matchedStream = r.expect(l, matchedStream)
	}
}

func (r *replay) dial() {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, r.url, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + r.token}}})
	if err != nil {
		r.t.Fatalf("dial: %v", err)
	}
	r.conn, r.recv, r.back = conn, make(chan []byte, 1024), nil
	go func(conn *websocket.Conn, recv chan<- []byte) {
		defer close(recv)
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			recv <- data
		}
	}(conn, r.recv)
}

// hangUp drops the connection as Ctrl+C in wscat does.
func (r *replay) hangUp() {
	if r.conn != nil {
		r.conn.CloseNow()
		r.conn = nil
	}
}

// send types a documented frame, with the documented ids and cursors
// replaced by the real ones they stand for.
func (r *replay) send(l transcriptLine) {
	f := r.substitute(l.where, l.frame, "").(map[string]any)
	if id, _ := f["messageId"].(string); f["type"] == "subscribe" && id != "" {
		docID, _ := l.frame["messageId"].(string)
		r.cursor(l, f, "lastSeq", r.docText[docID], r.realText[id])
		r.cursor(l, f, "lastReasoningSeq", r.docReasoning[docID], r.realReasoning[id])
	}
	data, err := json.Marshal(f)
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := r.conn.Write(ctx, websocket.MessageText, data); err != nil {
		r.t.Fatalf("%s: send %s: %v", l.where, data, err)
	}
}

func (r *replay) substitute(where string, v any, key string) any {
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			out[k] = r.substitute(where, x, k)
		}
		return out
	case string:
		if !hexIDRe.MatchString(v) {
			return v
		}
		real, ok := r.ids[v]
		if !ok {
			r.t.Fatalf("%s: %s %s was never sent by the server earlier in the session", where, key, v)
		}
		return real
	}
	return v
}

// cursor replaces a resume's documented cursor (lastSeq of the text,
// lastReasoningSeq of the reasoning) with the real one: the client resumes
// after what it has, so the documented cursor must be the length of what
// the transcript showed of the answer, and the real one is the length of
// what the server sent of it.
func (r *replay) cursor(l transcriptLine, f map[string]any, key, doc, real string) {
	v, ok := l.frame[key]
	if !ok {
		return
	}
	if fmt.Sprint(v) != strconv.Itoa(len(doc)) {
		r.t.Fatalf("%s: %s %v, where the transcript showed %d bytes of that answer", l.where, key, v, len(doc))
	}
	f[key] = len(real)
}

// expect reads the server's frames until the one matching the documented
// frame. Deltas and reasoning frames depend on timing, so the server may
// send more of them than documented (they are skipped) or fewer
// (documented ones after one that matched are skipped). It returns
// whether such a frame matched.
func (r *replay) expect(l transcriptLine, afterStream bool) bool {
	want := l.frame["type"]
	if streamed(want) {
		id, _ := l.frame["messageId"].(string)
		text, _ := l.frame["text"].(string)
		if want == "delta" {
			r.docText[id] += text
		} else {
			r.docReasoning[id] += text
		}
	}
	for {
		data := r.next(l.where)
		got, err := decodeFrame(data)
		if err != nil {
			r.t.Fatalf("%s: the server sent %v", l.where, err)
		}
		switch {
		case got["type"] == want:
			r.compare(l.where, l.frame, got, "")
			r.applied(l.where, got)
			if want == "done" {
				r.checkDone(l, got)
			}
			return streamed(want)
		case streamed(want) && afterStream:
			r.back = data // fewer deltas or reasoning frames than documented
			return true
		case streamed(got["type"]):
			r.applied(l.where, got)
			continue // more deltas or reasoning frames than documented
		default:
			r.t.Fatalf("%s: documented %v, the server sent %s", l.where, want, data)
		}
	}
}

// applied adds a received delta's text to its answer's (a reasoning
// frame's to its reasoning), checking that its seq (rseq) is the length in
// bytes after it.
func (r *replay) applied(where string, got map[string]any) {
	texts, key := r.realText, "seq"
	switch got["type"] {
	case "delta":
	case "reasoning":
		texts, key = r.realReasoning, "rseq"
	default:
		return
	}
	id, _ := got["messageId"].(string)
	text, _ := got["text"].(string)
	texts[id] += text
	if seq := fmt.Sprint(got[key]); seq != strconv.Itoa(len(texts[id])) {
		r.t.Fatalf("%s: the server sent a %s of %s %s after %d bytes and %d of its own",
			where, got["type"], key, seq, len(texts[id])-len(text), len(text))
	}
}

// checkDone compares an answer's text and final seq, as the server
// streamed them, with the documented deltas' text and the done's seq, and
// its reasoning and final rseq likewise. A complete answer's must be the
// same (the model's answer does not depend on timing, only how it is cut
// into frames); a cancelled one's text is cut where the cancel landed: one
// must begin the other.
func (r *replay) checkDone(l transcriptLine, got map[string]any) {
	docID, _ := l.frame["messageId"].(string)
	realID, _ := got["messageId"].(string)
	for _, c := range []struct {
		key, what string
		doc, real string
	}{
		{"seq", "deltas' text", r.docText[docID], r.realText[realID]},
		{"rseq", "reasoning", r.docReasoning[docID], r.realReasoning[realID]},
	} {
		if n := number(l.frame[c.key]); n != int64(len(c.doc)) {
			r.t.Fatalf("%s: the done's %s %d is not the %d bytes of its documented %s", l.where, c.key, n, len(c.doc), c.what)
		}
		if l.frame["status"] != "complete" {
			if !strings.HasPrefix(c.doc, c.real) && !strings.HasPrefix(c.real, c.doc) {
				r.t.Fatalf("%s: documented %s %q and the server's %q differ", l.where, c.what, c.doc, c.real)
			}
			continue
		}
		if c.doc != c.real {
			r.t.Fatalf("%s: the documented %s is not the server's:\ndocumented %q\nthe server %q", l.where, c.what, c.doc, c.real)
		}
		if number(got[c.key]) != number(l.frame[c.key]) {
			r.t.Fatalf("%s: documented %s %v, the server's done has %v", l.where, c.key, l.frame[c.key], got[c.key])
		}
	}
}

func (r *replay) next(where string) []byte {
	if r.back != nil {
		data := r.back
		r.back = nil
		return data
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	select {
	case data, ok := <-r.recv:
		if !ok {
			r.t.Fatalf("%s: the connection ended before this frame", where)
		}
		return data
	case <-ctx.Done():
		r.t.Fatalf("%s: no frame within %s", where, testTimeout)
	}
	return nil
}

// compare checks a received value against the documented one.
func (r *replay) compare(where string, doc, got any, path string) {
	key := path[strings.LastIndex(path, ".")+1:]
	switch d := doc.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			r.t.Fatalf("%s: %s: documented an object, got %v", where, path, got)
		}
		if dk, gk := keys(d), keys(g); dk != gk {
			r.t.Fatalf("%s: %s: documented fields %s, the server sent %s", where, orTop(path), dk, gk)
		}
		for k := range d {
			r.compare(where, d[k], g[k], path+"."+k)
		}
	case string:
		g, ok := got.(string)
		if !ok {
			r.t.Fatalf("%s: %s: documented a string, got %v", where, path, got)
		}
		switch {
		case hexIDRe.MatchString(d):
			r.mapID(where, path, d, g)
		case valueKey[key] || path == ".id":
			if d != g {
				r.t.Fatalf("%s: %s: documented %q, the server sent %q", where, path, d, g)
			}
		}
	case json.Number:
		g, ok := got.(json.Number)
		if !ok {
			r.t.Fatalf("%s: %s: documented a number, got %v", where, path, got)
		}
		if valueKey[key] && d != g {
			r.t.Fatalf("%s: %s: documented %s, the server sent %s", where, path, d, g)
		}
	default:
		if fmt.Sprintf("%T", doc) != fmt.Sprintf("%T", got) {
			r.t.Fatalf("%s: %s: documented %v, the server sent %v", where, path, doc, got)
		}
	}
}

// mapID records which real id a documented id stands for; the document
// must use each id consistently, as the server does.
func (r *replay) mapID(where, path, doc, real string) {
	if prev, ok := r.ids[doc]; ok && prev != real {
		r.t.Fatalf("%s: %s: documented id %s stood for %s before, the server now sent %s", where, path, doc, prev, real)
	}
	if prev, ok := r.seen[real]; ok && prev != doc {
		r.t.Fatalf("%s: %s: the server's id %s was documented as %s before, here as %s", where, path, real, prev, doc)
	}
	r.ids[doc], r.seen[real] = real, doc
}

func keys(m map[string]any) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

func orTop(path string) string {
	if path == "" {
		return "frame"
	}
	return path[1:]
}

// TestWalkthroughCoversTheProtocol: the walkthrough shows every client
// frame type but unsubscribe, and the server frames they bring.
func TestWalkthroughCoversTheProtocol(t *testing.T) {
	t.Parallel()
	_, blocks := transcripts(t)
	sent, received := map[string]bool{}, map[string]bool{}
	for _, b := range blocks {
		for _, l := range b {
			typ, _ := l.frame["type"].(string)
			if l.sent {
				sent[typ] = true
			} else {
				received[typ] = true
			}
		}
	}
	for _, typ := range []string{"send", "cancel", "regenerate", "subscribe", "ping"} {
		if !sent[typ] {
			t.Errorf("no %s frame typed in the walkthrough", typ)
		}
	}
	for _, typ := range []string{"hello", "ack", "conversation", "message", "delta", "done", "error", "pong"} {
		if !received[typ] {
			t.Errorf("no %s frame received in the walkthrough", typ)
		}
	}
}
