package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// sseFixer rewrites the server-sent events of a chat completion stream,
// line by line, before go-openai decodes them:
//
//   - A delta's "reasoning" string (OpenRouter, Ollama, newer vLLM) is
//     renamed "reasoning_content" (DeepSeek, older vLLM), the spelling
//     go-openai decodes, unless the chunk already carries that key; an
//     empty "reasoning_content" beside it takes its text (see
//     renameReasoning).
//   - A UTF-16 surrogate pair split across two chunks (an upstream that
//     chunks text by JavaScript string index sends `...\ud83d"` in one
//     chunk and `"\ude42...` in the next) is joined: the low half's escape
//     moves to the end of the earlier chunk's string, so the text decodes
//     to the character meant instead of two U+FFFD. encoding/json turns
//     each lone half into U+FFFD, so this must happen before decoding. A
//     chunk whose content ends in a high surrogate is held back until a
//     data line with text in that field arrives (chunks without, such as
//     an empty content or reasoning alone, are held after it; see
//     holdChunk), or the body ends; a surrogate that finds no partner is
//     left alone and still decodes to U+FFFD.
//   - The stream is read as the SSE specification says: a leading UTF-8
//     byte order mark is dropped, and a bare CR ends a line as LF and CR
//     LF do (it becomes LF; see normalize). go-openai splits lines at LF
//     only, so a stream ending its lines with CR was one endless line.
//   - The data lines of one event are joined when the first holds a JSON
//     object it does not close (its last character is not '}'): the
//     specification joins them with LF, which JSON reads as white space,
//     and the joined line carries a CR there instead (also white space to
//     JSON, and no line end to go-openai). See join. A data line that
//     looks whole is passed on at once, as before: servers that send no
//     blank line between events (go-openai reads them) are not held up.
//   - An "event", "id" or "retry" field line is dropped (see field); the
//     data of an "error" event whose JSON has no "error" member (the
//     error object itself, or plain text) is wrapped as OpenAI's error
//     (see errorEventData): it decoded as a chunk without choices, so the
//     failure went unnoticed.
//   - An error in a data line whose shape go-openai cannot read becomes
//     OpenAI's (see errorData).
//   - A delta content that is a list of parts (Mistral's reasoning
//     models: thinking parts, then text parts) becomes a content string
//     and, for the thinking, "reasoning_content" (see flattenParts).
//   - llama.cpp's error line (`error: {...}`) becomes OpenAI's
//     (`data: {"error":{...}}`, see errorField).
//   - The blank line ending a data line's event is dropped when a data line
//     follows it (see emit).
//   - A data line without data (an event kept alive with `data:`) is
//     dropped with the blank line after it: the SSE specification does
//     not dispatch an event whose data is empty, and go-openai would
//     decode "" as a chunk and fail the stream as malformed.
//   - A comment line (one starting with ':', such as OpenRouter's
//     ": OPENROUTER PROCESSING" or a proxy's ": ping") is dropped, with the
//     blank line right after it. go-openai counts every line that is not a
//     data line toward its limit of empty messages (300) and would fail a
//     stream kept alive by comments while the model thinks (two lines per
//     comment: about 150 s of pings a second) as malformed; it also adds
//     such lines to the text in which it looks for an error body.
//
// Other lines pass through untouched, up to maxErrorText bytes of them in
// all; each one past that becomes a blank line (see bound). A line longer
// than maxLine ends the stream with errLineTooLong. It is read from one
// goroutine.
type sseFixer struct {
	io.ReadCloser
	in   []byte // bytes read, not yet a whole line (reused)
	out  []byte // rewritten bytes (reused); out[pos:] waits for Read
	pos  int
	held [][]byte // a data line ending in a high surrogate, then the lines after it (see hold)
	err  error    // the underlying reader's error, once seen

	afterData bool // the last line written was a data line
	blankOwed bool // the blank line after it was held back (see emit)
	skipBlank bool // the next line, when blank, is dropped (it ends a comment, or an error line already ended)

	begun    bool   // the byte order mark was looked for
	crEnd    bool   // the last byte read was a CR, made LF: an LF right after it is dropped
	pend     []byte // the data lines of an event joined so far, without a line end (see join)
	errEvent bool   // the current event's type is "error"

	errText   int // the bytes of the lines other than data lines passed on so far (see bound)
	heldBytes int // the bytes of held after its data line
	heldLines int // the lines seen since it was held, blank ones too
}

func newSSEFixer(body io.ReadCloser) *sseFixer {
	return &sseFixer{ReadCloser: body}
}

// Read hands out the rewritten lines; a partial line waits for the rest.
func (f *sseFixer) Read(p []byte) (int, error) {
	for f.pos == len(f.out) {
		f.out, f.pos = f.out[:0], 0
		if f.err != nil {
			f.last()
			f.flushPend()
			f.release()
			f.payBlank()
			f.out = append(f.out, f.in...)
			f.in = f.in[:0]
			if len(f.out) == 0 {
				return 0, f.err
			}
			break
		}
		f.in = slices.Grow(f.in, readSize)
		read := len(f.in)
		n, err := f.ReadCloser.Read(f.in[read:cap(f.in)])
		f.in = f.in[:read+n]
		f.err = err
		f.lines(f.normalize(read))
		if len(f.in) > maxLine || len(f.pend) > maxLine {
			f.in, f.pend, f.err = nil, nil, errLineTooLong
		}
	}
	n := copy(p, f.out[f.pos:])
	f.pos += n
	return n, nil
}

// readSize is the least free space offered to the body's Read.
const readSize = 4 << 10

// maxLine bounds a line of the stream, and the data lines of an event
// joined (see join): a chunk carrying an image as a data URL is a few
// MiB. Without a bound, an upstream sending bytes without a newline (or
// data lines without ending the event) would grow the line in memory
// until a timeout.
const maxLine = 16 << 20

// errLineTooLong ends a stream with a line longer than maxLine.
var errLineTooLong = fmt.Errorf("a line of the event stream is longer than %d MiB", maxLine>>20)

// lines processes every complete line in f.in and keeps the rest (a
// partial line) at the start of f.in. f.in[:from] holds no newline: only
// the bytes after it are searched, and the rest is moved only when a line
// ended, so that a long line read in many pieces costs linear time.
func (f *sseFixer) lines(from int) {
	start := 0
	for {
		i := bytes.IndexByte(f.in[from:], '\n')
		if i < 0 {
			break
		}
		from += i + 1
		f.line(f.in[start:from])
		start = from
	}
	if start > 0 {
		f.in = append(f.in[:0], f.in[start:]...)
	}
}

// last ends the body's last line with a newline when the body ended
// cleanly without one, so that go-openai reads it as a line: it drops a
// last line read together with the end of the body. That loses an error
// body sent with status 200 (`{"error":{...}}` without a newline: the
// upstream's message disappears and the stream looks cut), a final
// `data: [DONE]` and a final chunk. A data line whose JSON was cut short
// is left unterminated, a cut line as before (a connection lost), not a
// malformed chunk; so is any last line when the body failed.
func (f *sseFixer) last() {
	if !errors.Is(f.err, io.EOF) || len(f.in) == 0 || cutDataLine(f.in) {
		return
	}
	f.in = append(f.in, '\n')
	f.lines(0)
}

// cutDataLine reports a data line that is neither [DONE] nor valid JSON.
func cutDataLine(line []byte) bool {
	payload, ok := bytes.CutPrefix(bytes.TrimLeft(line, " "), dataPrefix)
	if !ok {
		return false
	}
	payload = bytes.TrimSpace(payload)
	return !bytes.Equal(payload, []byte("[DONE]")) && !json.Valid(payload)
}

var (
	dataPrefix   = []byte("data:")
	escapeU      = []byte(`\u`)
	reasoningKey = []byte(`"reasoning"`)
	errorStart   = []byte(`{"error":`)
)

// line takes one line (with its newline): the data lines of an event are
// joined first (see join).
func (f *sseFixer) line(l []byte) {
	if f.pend != nil || l[0] == 'd' && !endsObject(l) {
		if f.join(l) {
			return
		}
	}
	f.fix(l)
}

// fix rewrites one line (with its newline) into f.out or f.held.
func (f *sseFixer) fix(l []byte) {
	if f.errEvent && len(bytes.TrimSpace(l)) == 0 {
		f.errEvent = false // a blank line ends the event
	}
	if f.comment(l) {
		return
	}
	if l[0] != 'd' { // a data line is neither a field line to drop nor llama.cpp's error line
		if f.field(l) {
			return
		}
		l = errorField(l)
	}
	payload, isData := bytes.CutPrefix(bytes.TrimLeft(l, " "), dataPrefix)
	if isData && !f.errEvent && len(bytes.TrimSpace(payload)) == 0 {
		// An event whose data is empty (a keep-alive) is not dispatched
		// (SSE): go-openai would decode "" as a chunk and fail. Its
		// blank line goes with it, as a comment's does.
		f.skipBlank = true
		return
	}
	if isData && f.errEvent {
		if e := errorEventData(payload); e != nil {
			l, payload = e, e[len(dataPrefix):]
		}
	}
	if isData && bytes.Contains(payload, errorWord) {
		if e := errorData(payload); e != nil {
			l, payload = e, e[len(dataPrefix):]
		}
	}
	if isData && hasContentList(payload) {
		if flat := flattenParts(bytes.TrimSpace(payload)); flat != nil {
			l = append(append([]byte("data: "), flat...), '\n')
			payload = l[len(dataPrefix):]
		}
	}
	isData = isData && bytes.HasPrefix(bytes.TrimSpace(payload), []byte("{"))
	if !isData {
		l = f.bound(l)
	}
	switch {
	case !isData && f.held == nil:
		f.emit(l)
		return
	case !isData:
		f.hold(l, payload)
		return
	case f.held == nil && !bytes.Contains(l, escapeU) && !bytes.Contains(l, reasoningKey):
		f.emit(l)
		return
	}
	l = renameReasoning(bytes.Clone(l))
	if f.held != nil {
		if f.holdChunk(l) {
			return
		}
		f.held[0], l = joinSurrogates(f.held[0], l)
		f.release()
	}
	if endsInHighSurrogate(l) {
		f.held = [][]byte{l}
		return
	}
	f.emit(l)
}

// maxErrorText bounds the text of the lines other than data lines that
// one stream passes on. go-openai adds every such line to a buffer it
// keeps for the whole stream (the text in which it looks for an error
// body once the body ends), and its limit of empty messages starts again
// at every data line: an upstream putting a long junk line between its
// chunks grew that buffer by the junk for the whole answer. The one text
// it needs is an error body sent without "data:" after a status 200
// (`{"error":{...}}`, maybe over several lines), a few hundred bytes.
const maxErrorText = 256 << 10

// newline is a blank line.
var newline = []byte("\n")

// bound returns l, or a blank line when l is a line go-openai adds to its
// error text (neither blank nor a data line) and the lines passed on so
// far have brought maxErrorText bytes of it: go-openai still counts it as
// an empty message, so a stream of nothing else still fails as
// malformed, but keeps none of it. An error body after that much junk
// could not be read anyway: go-openai parses the whole text.
func (f *sseFixer) bound(l []byte) []byte {
	t := bytes.TrimSpace(l) // what go-openai keeps
	if len(t) == 0 || bytes.HasPrefix(t, dataPrefix) {
		return l
	}
	if f.errText+len(t) > maxErrorText {
		return newline
	}
	f.errText += len(t)
	return l
}

// comment reports whether l is a comment line or the blank line right
// after one, both dropped.
func (f *sseFixer) comment(l []byte) bool {
	if l[0] == ':' {
		f.skipBlank = true
		return true
	}
	after := f.skipBlank
	f.skipBlank = false
	return after && len(bytes.TrimSpace(l)) == 0
}

// Bounds of the lines held after a data line ending in a high surrogate
// (see hold and holdChunk): its partner comes in the next data line with
// text in its field, and a server puts at most a few lines between them.
const (
	maxHeld      = 64 << 10 // bytes
	maxHeldLines = 16
)

// hold takes a line other than a chunk's data line while a data line
// ending in a high surrogate is held (payload: the line without its
// "data:"). [DONE] releases the held lines and follows them. A blank line
// is not held: it only ends an event, which go-openai does not need, and
// held, a stream of blank lines grew f.held by a slice per byte without
// bound (Read hands nothing out meanwhile, so go-openai's limit of empty
// messages never applied). Past maxHeld bytes or maxHeldLines lines
// (blank ones too), the held lines are released as they are (the lone
// surrogate decodes to U+FFFD) and l follows them: go-openai's limits
// apply again.
func (f *sseFixer) hold(l, payload []byte) {
	f.heldLines++
	switch {
	case bytes.Equal(bytes.TrimSpace(payload), []byte("[DONE]")):
	case f.heldBytes+len(l) > maxHeld || f.heldLines > maxHeldLines:
	case len(bytes.TrimSpace(l)) == 0:
		return
	default:
		f.held = append(f.held, bytes.Clone(l))
		f.heldBytes += len(l)
		return
	}
	f.release()
	f.emit(l)
}

// holdChunk holds a chunk's data line l that carries no text in the
// fields of the held line ending in a high surrogate (an empty content, a
// chunk of reasoning alone): the low half may still come in a later chunk
// with text there. It reports whether l was held; not when l has text
// there, ends in a high surrogate of its own, carries a finish reason or an
// error (the client acts on those at once: an upstream keeping the
// connection open after them must not leave them held), or would take the
// held lines past maxHeld bytes or maxHeldLines lines (then the held lines
// go on as they are, as hold releases them).
func (f *sseFixer) holdChunk(l []byte) bool {
	if f.heldBytes+len(l) > maxHeld || f.heldLines+1 > maxHeldLines || endsInHighSurrogate(l) {
		return false
	}
	held, next := scanFields(f.held[0]), scanFields(l)
	if fin := next["finish_reason"]; fin.end > fin.start {
		return false
	}
	if payload, _ := bytes.CutPrefix(bytes.TrimLeft(l, " "), dataPrefix); errorMember(payload) != nil {
		return false
	}
	for _, k := range textKeys {
		h, ok := held[k]
		if n, has := next[k]; ok && has && n.end > n.start && highAtEnd(f.held[0][h.start:h.end]) {
			return false
		}
	}
	f.heldLines++
	f.held = append(f.held, l)
	f.heldBytes += len(l)
	return true
}

// release sends the held lines on.
func (f *sseFixer) release() {
	for _, l := range f.held {
		f.emit(l)
	}
	f.held, f.heldBytes, f.heldLines = nil, 0, 0
}

// textKeys are the delta fields whose text may be split.
var textKeys = []string{"content", "reasoning_content", "refusal"}

// endsInHighSurrogate reports whether a text field of line ends with a
// high-surrogate escape.
func endsInHighSurrogate(line []byte) bool {
	fields := scanFields(line)
	for _, k := range textKeys {
		if v, ok := fields[k]; ok && highAtEnd(line[v.start:v.end]) {
			return true
		}
	}
	return false
}

// joinSurrogates moves the low-surrogate escape starting a text field of
// next to the end of the same field of held when that ends in a high one.
func joinSurrogates(held, next []byte) ([]byte, []byte) {
	for _, k := range textKeys {
		hf, nf := scanFields(held), scanFields(next)
		h, ok1 := hf[k]
		n, ok2 := nf[k]
		if !ok1 || !ok2 || !highAtEnd(held[h.start:h.end]) || !lowAtStart(next[n.start:n.end]) {
			continue
		}
		low := bytes.Clone(next[n.start : n.start+6])
		held = append(held[:h.end:h.end], append(low, held[h.end:]...)...)
		next = append(next[:n.start:n.start], next[n.start+6:]...)
	}
	return held, next
}

// renameReasoning makes a "reasoning" string field's text the one
// go-openai decodes: it renames the field "reasoning_content" when line
// has no "reasoning_content" string field, and copies its text into an
// empty "reasoning_content" one (a server sending both spellings, one of
// them empty, would otherwise lose the text). When both carry text,
// "reasoning_content" wins and the line is left alone: servers that send
// both (vLLM during its rename) send the same text twice, so joining them
// would repeat it.
func renameReasoning(line []byte) []byte {
	if !bytes.Contains(line, reasoningKey) {
		return line
	}
	fields := scanFields(line)
	v, ok := fields["reasoning"]
	rc, both := fields["reasoning_content"]
	switch {
	case !ok || v.key < 0:
		return line
	case !both:
		// v.key is the offset of the key's closing quote.
		return splice(line, v.key, v.key, []byte("_content"))
	case rc.start == rc.end && v.end > v.start:
		return splice(line, rc.start, rc.end, line[v.start:v.end])
	}
	return line
}

// splice returns line with line[i:j] replaced by b, in a new slice.
func splice(line []byte, i, j int, b []byte) []byte {
	out := make([]byte, 0, len(line)-(j-i)+len(b))
	out = append(out, line[:i]...)
	out = append(out, b...)
	return append(out, line[j:]...)
}

// span is a string value: its text is line[start:end] (between the quotes);
// key is the offset of its key's closing quote.
type span struct{ key, start, end int }

// scanFields returns the string-valued fields of a JSON line by key name
// (the last one wins; names with escapes are not matched).
func scanFields(line []byte) map[string]span {
	type str struct{ start, end int }
	var strs []str
	for i := 0; i < len(line); i++ {
		if line[i] != '"' {
			continue
		}
		j := i + 1
		for j < len(line) && line[j] != '"' {
			if line[j] == '\\' {
				j++
			}
			j++
		}
		strs = append(strs, str{i + 1, min(j, len(line))})
		i = j
	}
	fields := make(map[string]span)
	for k := 0; k+1 < len(strs); k++ {
		colon := skipSpace(line, strs[k].end+1)
		if colon >= len(line) || line[colon] != ':' || skipSpace(line, colon+1) != strs[k+1].start-1 {
			continue
		}
		fields[string(line[strs[k].start:strs[k].end])] = span{key: strs[k].end, start: strs[k+1].start, end: strs[k+1].end}
		k++
	}
	return fields
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r') { // CR: see join
		i++
	}
	return i
}

// highAtEnd reports whether s ends with an escaped high surrogate
// (\uD800-\uDBFF) that is a real escape, not an escaped backslash.
func highAtEnd(s []byte) bool {
	n := len(s)
	if n < 6 || !surrogateEscape(s[n-6:], "89abAB") {
		return false
	}
	slashes := 0
	for i := n - 7; i >= 0 && s[i] == '\\'; i-- {
		slashes++
	}
	return slashes%2 == 0
}

// lowAtStart reports whether s starts with an escaped low surrogate (\uDC00-\uDFFF).
func lowAtStart(s []byte) bool {
	return len(s) >= 6 && surrogateEscape(s[:6], "cdefCDEF")
}

// surrogateEscape reports whether e is `\uD` + one of second + two hex digits.
func surrogateEscape(e []byte, second string) bool {
	return e[0] == '\\' && e[1] == 'u' && (e[2] == 'd' || e[2] == 'D') &&
		bytes.IndexByte([]byte(second), e[3]) >= 0 && isHex(e[4]) && isHex(e[5])
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// emit appends line to f.out, and a blank line that ends a data line's
// event only when what follows it is not a data line. go-openai counts
// every line that is not a data line toward its limit of empty messages
// (300), and a data line starts the count again, so a blank line right before a data line
// changes nothing it does; it only costs a read, an allocation and two
// regular expressions.
func (f *sseFixer) emit(line []byte) {
	if f.afterData && len(bytes.TrimSpace(line)) == 0 {
		f.afterData, f.blankOwed = false, true
		return
	}
	data, isErr := dataLine(line)
	if f.afterData = data; !data {
		f.payBlank()
	}
	f.blankOwed = false
	f.out = append(f.out, line...)
	if isErr {
		// go-openai reads one more line after an error before it
		// reports it: an upstream that keeps the connection open after
		// the error's line would leave it waiting until a timeout.
		f.out = append(f.out, '\n')
		f.skipBlank = true
	}
}

// payBlank writes the blank line held back by emit, if any.
func (f *sseFixer) payBlank() {
	if f.blankOwed {
		f.out = append(f.out, '\n')
		f.blankOwed = false
	}
}

// dataLine reports how go-openai takes line: data, a data line it decodes
// (or [DONE]); isErr, a data line it takes for an error; neither, an
// empty message.
func dataLine(line []byte) (data, isErr bool) {
	rest, ok := bytes.CutPrefix(bytes.TrimSpace(line), dataPrefix)
	if !ok {
		return false, false
	}
	isErr = bytes.HasPrefix(bytes.TrimLeft(rest, " \t\n\f\r"), errorStart)
	return !isErr, isErr
}
