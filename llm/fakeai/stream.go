package fakeai

import (
	"bytes"
	"cmp"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"time"
)

// stream is one response in progress. Its methods run on the handler's
// goroutine only.
type stream struct {
	s       *Server
	w       http.ResponseWriter
	rc      *http.ResponseController
	r       *http.Request
	rec     Recorded
	cfg     Config
	tokens  []string
	thought int    // reasoning chunks sent: Reasoning, or less when max tokens cut it
	finish  string // Config.Finish ("stop" by default) or "length"
	after   int    // tokens before a mid-stream fault
	ended   bool   // the client left or the server closed: stop writing
	started bool   // something of the body was written
	created int64
}

func newStream(s *Server, w http.ResponseWriter, r *http.Request, rec Recorded) *stream {
	st := &stream{
		s: s, w: w, rc: http.NewResponseController(w), r: r, rec: rec,
		cfg: rec.Config, tokens: Tokens(rec.Config), finish: cmp.Or(rec.Config.Finish, "stop"),
		created: time.Now().Unix(),
	}
	st.spendBudget(rec.MaxTokens)
	st.after = st.cfg.FaultAfter
	if st.after < 0 {
		st.after = len(st.tokens) / 2
	}
	st.after = min(st.after, len(st.tokens))
	return st
}

// spendBudget cuts the response to a request's max tokens (0: no limit)
// as a reasoning model does: the reasoning spends the budget first, the
// answer gets what is left.
func (st *stream) spendBudget(maxTokens int) {
	st.thought = max(st.cfg.Reasoning, 0)
	if maxTokens <= 0 {
		return
	}
	st.thought = min(st.thought, maxTokens)
	if left := maxTokens - st.thought; left < len(st.tokens) {
		st.tokens, st.finish = st.tokens[:left], "length"
	}
}

func (st *stream) id() string {
	return "chatcmpl-fake" + strconv.FormatInt(st.rec.Seq, 10)
}

// serveSSE streams the response as server-sent events.
func (st *stream) serveSSE() {
	h := st.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	st.w.WriteHeader(http.StatusOK)
	enc := newChunkEncoder(st.id(), st.created, st.rec.Model, st.rec.IncludeUsage)
	if st.cfg.Pings > 0 && !st.write(bytes.Repeat([]byte(": OPENROUTER PROCESSING\n\n"), st.cfg.Pings), -1) {
		return
	}
	if !st.write(enc.content("", true), -1) || st.rec.Fault == FaultHangFirst {
		st.hang()
		return
	}
	if !st.sleep(st.cfg.FirstDelay) {
		return
	}
	if !st.sendReasoning(enc) || !st.sendTokens(enc, len(enc.head)) {
		return
	}
	if st.rec.Fault.midStream() && st.after == len(st.tokens) {
		st.midFault(enc)
		return
	}
	if !st.write(enc.finish(st.finish), -1) {
		return
	}
	switch st.rec.Fault {
	case FaultCutEnd, FaultResetEnd:
		st.cut(st.rec.Fault == FaultResetEnd)
		return
	case FaultMalformedEnd:
		if st.write([]byte(`data: {"id":"`+st.id()+`","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3,`+"\n\n"), -1) {
			st.write([]byte("data: [DONE]\n\n"), -1)
		}
		return
	case FaultHangEnd:
		st.pingUntilGone()
		return
	}
	st.end(enc, len(st.tokens))
}

// end sends the usage chunk (when asked for) of an answer of completion
// content tokens, then [DONE], then waits EndDelay.
func (st *stream) end(enc *chunkEncoder, completion int) {
	if st.rec.IncludeUsage && !st.write(enc.usage(promptTokens(st.rec.Messages), completion+st.thought), -1) {
		return
	}
	if st.write([]byte("data: [DONE]\n\n"), -1) && st.cfg.EndDelay > 0 {
		st.endDelay()
	}
}

// endDelay pauses for EndDelay after [DONE]. The answer is complete: a
// client leaving now is not an abort.
func (st *stream) endDelay() {
	t := time.NewTimer(st.cfg.EndDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-st.r.Context().Done():
	case <-st.s.done:
	}
}

// sendTokens sends the content tokens, one per tick, and injects a
// mid-stream fault after st.after tokens. It reports whether to go on.
func (st *stream) sendTokens(enc *chunkEncoder, contentAt int) bool {
	var tick <-chan time.Time
	if st.cfg.Delay > 0 {
		t := time.NewTicker(st.cfg.Delay)
		defer t.Stop()
		tick = t.C
	}
	for i, tok := range st.tokens {
		if st.rec.Fault.midStream() && i == st.after {
			st.midFault(enc)
			return false
		}
		if i > 0 && !st.wait(tick) {
			return false
		}
		if st.cfg.Stamp == StampAll || (st.cfg.Stamp == StampFirst && i == 0) {
			tok = stampNow() + tok
		}
		split := -1
		if st.cfg.Split {
			split = contentAt
		}
		if st.cfg.ReasoningKey == KeyParts {
			if !st.write(enc.parts(`{"type":"text","text":`, tok, `}`), -1) {
				return false
			}
			continue
		}
		if a, b, ok := surrogateHalves(tok); ok && st.cfg.Surrogates {
			if !st.write(enc.contentJSON(a), -1) || !st.write(enc.contentJSON(b), -1) {
				return false
			}
			continue
		}
		if !st.writeContent(enc, tok, split) {
			return false
		}
	}
	return true
}

// writeContent writes a content delta of text, in Config.Pieces pieces
// when set (split as write's, for each).
func (st *stream) writeContent(enc *chunkEncoder, text string, split int) bool {
	for _, p := range Pieces(text, st.cfg.Pieces) {
		if !st.write(enc.content(p, false), split) {
			return false
		}
	}
	return true
}

// sendReasoning sends the reasoning chunks, one per tick, before the
// content (inline thinking cut by max tokens stays unclosed). It reports
// whether to go on.
func (st *stream) sendReasoning(enc *chunkEncoder) bool {
	all := ReasoningTokens(st.cfg)
	toks := all[:st.thought]
	if len(toks) == 0 {
		return true
	}
	var tick <-chan time.Time
	if st.cfg.Delay > 0 {
		t := time.NewTicker(st.cfg.Delay)
		defer t.Stop()
		tick = t.C
	}
	for i, tok := range toks {
		if i > 0 && !st.wait(tick) {
			return false
		}
		ok := false
		if k := st.cfg.ReasoningKey; k.inline() {
			ok = st.writeContent(enc, k.inlineThought(i, len(all), tok), -1)
		} else {
			ok = st.write(enc.reasoning(st.cfg.ReasoningKey, i, tok), -1)
		}
		if !ok {
			return false
		}
	}
	return st.wait(tick) // the content follows one tick later
}

// midFault injects the configured mid-stream fault.
func (st *stream) midFault(enc *chunkEncoder) {
	switch st.rec.Fault {
	case FaultHangMid:
		st.hang()
	case FaultEmptyMid:
		st.emptyChunks(enc)
	case FaultCutMid:
		st.cut(false)
	case FaultResetMid:
		st.cut(true)
	case FaultMalformed:
		if st.write([]byte(`data: {"id":"`+st.id()+`","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"bro`+"\n\n"), -1) {
			st.write([]byte("data: [DONE]\n\n"), -1)
		}
	case FaultErrorMid:
		st.write(append([]byte("data: "), errorBody("The server had an error while processing your request.", "server_error", "")...), -1)
		st.write([]byte("\n"), -1)
	case FaultEndMid:
		// Returning ends the chunked body properly, without [DONE].
	case FaultErrorChunk:
		if st.write(enc.errorChunk(502, "Provider disconnected unexpectedly"), -1) {
			st.write([]byte("data: [DONE]\n\n"), -1)
		}
	case FaultErrorEvent:
		if st.write([]byte(`error: {"code":500,"message":"Failed to decode the batch","type":"server_error"}`+"\n\n"), -1) {
			st.write([]byte("data: [DONE]\n\n"), -1)
		}
	case FaultToolCall:
		if st.write(enc.toolCall(), -1) && st.write(enc.finish("tool_calls"), -1) {
			st.end(enc, st.after+1)
		}
	case FaultEventError:
		if st.write([]byte("event: error\n"+`data: {"message":"The upstream model is overloaded","type":"server_error","code":500}`+"\n\n"), -1) {
			st.write([]byte("data: [DONE]\n\n"), -1)
		}
	}
}

// emptyChunks sends a chunk with empty content every Delay (10ms when
// 0) until the client leaves, the server closes or MaxHang passes.
func (st *stream) emptyChunks(enc *chunkEncoder) {
	st.repeat(func() []byte { return enc.content("", false) })
}

// pingUntilGone sends an SSE comment every Delay (10ms when 0) until the
// client leaves, the server closes or MaxHang passes.
func (st *stream) pingUntilGone() {
	st.repeat(func() []byte { return []byte(": ping\n\n") })
}

// repeat writes frame() every Delay (10ms when 0) until the client
// leaves, the server closes or MaxHang passes.
func (st *stream) repeat(frame func() []byte) {
	every := st.cfg.Delay
	if every <= 0 {
		every = 10 * time.Millisecond
	}
	t := time.NewTicker(every)
	defer t.Stop()
	limit := time.NewTimer(st.s.opts.MaxHang)
	defer limit.Stop()
	for st.write(frame(), -1) {
		select {
		case <-t.C:
		case <-limit.C:
			return
		case <-st.r.Context().Done():
			st.abort()
			return
		case <-st.s.done:
			st.ended = true
			return
		}
	}
}

// write sends frame and flushes it. With split >= 0, a frame holding a
// multi-byte character at or after offset split goes out in two flushed
// writes that cut the character in two. It reports whether the client is
// still there.
func (st *stream) write(frame []byte, split int) bool {
	if st.ended {
		return false
	}
	if st.cfg.Events && bytes.HasPrefix(frame, []byte("data:")) {
		frame = append([]byte("event: message\n"), frame...)
	}
	frame = st.frame(frame)
	if split >= 0 && st.cfg.Framing == FramingLF {
		if k := splitPoint(frame, split); k > 0 {
			if !st.flushWrite(frame[:k]) {
				return false
			}
			frame = frame[k:]
		}
	}
	return st.flushWrite(frame)
}

// frame writes frame's lines as Config.Framing says.
func (st *stream) frame(frame []byte) []byte {
	first := !st.started
	st.started = true
	switch st.cfg.Framing {
	case FramingCR:
		return bytes.ReplaceAll(frame, []byte("\n"), []byte("\r"))
	case FramingCRLF:
		return bytes.ReplaceAll(frame, []byte("\n"), []byte("\r\n"))
	case FramingMultiline:
		return multiline(frame)
	case FramingBOM:
		if first {
			return append([]byte("\ufeff"), frame...)
		}
	}
	return frame
}

// multiline spreads each JSON object of a data line over several data
// lines, one per member: an unescaped `,"` in JSON always starts a member
// (a quote inside a string is escaped).
func multiline(frame []byte) []byte {
	var out []byte
	for line := range bytes.Lines(frame) {
		rest, ok := bytes.CutPrefix(line, []byte("data: {"))
		if !ok {
			out = append(out, line...)
			continue
		}
		out = append(out, "data: {"...)
		out = append(out, bytes.ReplaceAll(rest, []byte(`,"`), []byte(",\ndata: \""))...)
	}
	return out
}

func (st *stream) flushWrite(b []byte) bool {
	if _, err := st.w.Write(b); err != nil {
		st.abort()
		return false
	}
	if err := st.rc.Flush(); err != nil {
		st.abort()
		return false
	}
	return true
}

// wait waits for the next tick (nil: do not wait). It reports false when
// the client left or the server is closing.
func (st *stream) wait(tick <-chan time.Time) bool {
	if st.ended {
		return false
	}
	if tick == nil {
		select {
		case <-st.r.Context().Done():
			st.abort()
			return false
		default:
			return true
		}
	}
	select {
	case <-tick:
		return true
	case <-st.r.Context().Done():
		st.abort()
	case <-st.s.done:
		st.ended = true
	}
	return false
}

// sleep pauses for d (nothing when d <= 0).
func (st *stream) sleep(d time.Duration) bool {
	if d <= 0 {
		return st.wait(nil)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	return st.wait(t.C)
}

// hang waits until the client leaves, the server closes or MaxHang passes.
func (st *stream) hang() {
	st.sleep(st.s.opts.MaxHang)
}

// abort records that the client left before the response was complete.
func (st *stream) abort() {
	if !st.ended {
		st.ended = true
		st.s.noteAbort()
	}
}

// cut closes the connection under the response: with reset, as a TCP RST.
func (st *stream) cut(reset bool) {
	conn, _, err := st.rc.Hijack()
	if err != nil {
		// HTTP/2 cannot be hijacked: abort the stream instead.
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok && reset {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
	st.ended = true
}

// serveJSON answers a non-streaming request after the stream's duration.
func (st *stream) serveJSON() {
	switch st.rec.Fault {
	case FaultHangFirst, FaultHangMid, FaultEmptyMid, FaultHangEnd:
		st.hang()
		return
	case FaultCutMid, FaultResetMid, FaultCutEnd, FaultResetEnd:
		st.cut(st.rec.Fault == FaultResetMid || st.rec.Fault == FaultResetEnd)
		return
	case FaultErrorMid, FaultErrorChunk, FaultErrorEvent:
		writeStatusFault(st.w, http.StatusInternalServerError, Config{}, false)
		return
	case FaultEndMid:
		return // an empty 200 body
	}
	total := st.cfg.FirstDelay + time.Duration(max(len(st.tokens)-1, 0))*st.cfg.Delay
	if !st.sleep(total) {
		return
	}
	st.w.Header().Set("Content-Type", "application/json")
	if st.rec.Fault == FaultMalformed || st.rec.Fault == FaultMalformedEnd {
		_, _ = st.w.Write([]byte(`{"id":"` + st.id() + `","object":"chat.completion","choices":[{"index":0,"mess`))
		return
	}
	_ = st.jsonEncoder().Encode(st.completion())
}

func (st *stream) jsonEncoder() *json.Encoder {
	enc := json.NewEncoder(st.w)
	enc.SetEscapeHTML(false)
	return enc
}

// completion is the non-streaming response body.
func (st *stream) completion() map[string]any {
	text := ExpectedText(st.cfg)
	if len(st.tokens) < len(Tokens(st.cfg)) {
		text = ExpectedPrefix(st.cfg, len(st.tokens))
	}
	message := map[string]any{"role": "assistant", "content": text, "refusal": nil}
	finish := st.finish
	if st.rec.Fault == FaultToolCall {
		var content any
		if st.after > 0 {
			content = ExpectedPrefix(st.cfg, st.after)
		}
		message["content"], message["tool_calls"] = content, []json.RawMessage{json.RawMessage(toolCallJSON)}
		finish = "tool_calls"
	}
	prompt := promptTokens(st.rec.Messages)
	return map[string]any{
		"id": st.id(), "object": "chat.completion", "created": st.created,
		"model": st.rec.Model, "system_fingerprint": "fp_fakeai",
		"choices": []map[string]any{{
			"index":         0,
			"message":       message,
			"logprobs":      nil,
			"finish_reason": finish,
		}},
		"usage": map[string]any{
			"prompt_tokens": prompt, "completion_tokens": len(st.tokens),
			"total_tokens": prompt + len(st.tokens),
		},
		"x_fake_ts": MonotonicNanos(),
	}
}
