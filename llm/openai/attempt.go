package openai

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	goopenai "github.com/sashabaranov/go-openai"

	"chatd/internal/durtext"
	"chatd/llm"
)

// attempt is the state of one HTTP request of a Stream call. The transport
// fills status, header and body from the request's context.
type attempt struct {
	// firstToken is the attempt's first-token timeout (Options).
	firstToken time.Duration
	// think is how the model thinks inline (Options.InlineThinking).
	think     InlineThinking
	status    int
	header    http.Header
	body      *doneWatcher
	list      *listBody   // a model list request: its body is read here
	delivered atomic.Bool // some text reached onDelta: never retry
	// sampling are the request's temperature and top_p as JSON members
	// (samplingMembers), which doer writes into its body: go-openai
	// never sees them (see withoutSampling).
	sampling []byte
}

type attemptKey struct{}

// Causes of a context cancelled by the stream's timer.
var (
	errFirstTokenTimeout = errors.New("first token timeout")
	errIdleTimeout       = errors.New("idle timeout")
	// errNoDone is a stream that ended cleanly without [DONE] or a finish reason.
	errNoDone = errors.New("stream ended before [DONE]")
	// errDrainTimeout ends the read of what follows [DONE] (see drain).
	errDrainTimeout = errors.New("drain timeout")
	// errEmptyStream is a stream that ended well ([DONE]) having carried
	// no text, no reasoning and no finish reason: no answer at all (an
	// empty inline <think></think> block is neither text nor reasoning).
	errEmptyStream = errors.New("the stream ended without text or a finish reason")
	// errFinishWait ends the wait after the finish reason (Options.FinishWait).
	errFinishWait = errors.New("nothing more after the finish reason")
)

// Bounds of drain.
const (
	maxDrain     = 4 << 10
	drainTimeout = 250 * time.Millisecond
)

// drain reads what is left of a finished stream's body, so that its
// HTTP/1.1 connection goes back to the pool: go-openai stops reading at
// [DONE], before the end of the chunked body that follows it, and
// closing a body not read to its end closes the connection. It reads at
// most maxDrain bytes and waits at most drainTimeout, after which cancel
// (of the request's context) aborts the read and the connection is closed
// as before; a nil body (nothing was watched) is left alone.
func drain(body *doneWatcher, cancel context.CancelCauseFunc) {
	if body == nil {
		return
	}
	t := time.AfterFunc(drainTimeout, func() { cancel(errDrainTimeout) })
	defer t.Stop()
	_, _ = io.CopyN(io.Discard, body, maxDrain)
}

// sink receives a stream's text: the answer, and the reasoning (nil: dropped).
type sink struct {
	text      func(string)
	reasoning func(string)
}

// attempt sends one request and streams its answer.
func (c *Client) attempt(ctx context.Context, oreq goopenai.ChatCompletionRequest, out sink, st *attempt) (llm.Result, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	deadline := newStreamDeadline(actx, cancel, c.clock, st.firstToken, c.opts.IdleTimeout)
	defer deadline.stop()
	st.sampling = samplingMembers(oreq)

	stream, err := c.api.CreateChatCompletionStream(context.WithValue(actx, attemptKey{}, st), withoutSampling(oreq))
	if err != nil {
		return llm.Result{}, c.failure(actx, st, err)
	}
	defer stream.Close()
	var res llm.Result
	parts := newAnswerParts(st.think)
	var dec chunkDecoder
	tail := finishTail{wait: c.opts.FinishWait, cancel: cancel}
	defer tail.stop()
	for {
		chunk, err := recv(stream, &dec)
		if err != nil && res.FinishReason != "" && !tail.early && (endedByTimer(context.Cause(actx)) ||
			ctx.Err() == nil && brokenAfterFinish(err)) {
			// Broken after the finish reason (a broken-off one already
			// ended the attempt), before the usage or [DONE]: the body
			// cut or reset, a usage chunk that cannot be read, or
			// silence (neither [DONE] nor the body's end came before a
			// timer, of an answer with text or without). The answer is
			// complete, without its usage; only the caller's leaving
			// makes it a failure, and so does an error the upstream
			// reports. An upstream that sent a finish reason early
			// (text followed it) is not believed: a break or silence
			// after its text fails as it would before a finish reason.
			return c.ended(res, st, out, &parts)
		}
		if errors.Is(err, io.EOF) && (st.body.sawDone() || res.FinishReason != "") {
			res, err := c.ended(res, st, out, &parts)
			tail.stop() // the drain has its own bound
			drain(st.body, cancel)
			return res, err
		}
		if err != nil {
			return res, c.failed(ctx, actx, st, out, &parts, streamEnd(err, st.body))
		}
		before := res.FinishReason
		res.FinishReason = "" // applyChunk sets the chunk's own, if it has one
		r, t := applyChunk(&res, &parts, chunk)
		r, t = out.kept(r, t)
		switch {
		case before == "":
		case r == "" && t == "":
			res.FinishReason = cmp.Or(res.FinishReason, before)
		case !tail.textAfter():
			// The wait after the finish reason ended the attempt before
			// this text came: the answer ended there.
			res.FinishReason = before
			return res, c.silent(res, st)
		}
		if r != "" || t != "" {
			// Only text moves the idle deadline: chunks without any
			// (an upstream keeping a stalled stream alive) do not. The
			// text is claimed before it is delivered: a timer that went
			// off first ended the attempt, and the text is not shown.
			if !deadline.chunk() {
				return res, c.failure(actx, st, context.Cause(actx))
			}
			out.deliver(r, t)
			st.delivered.Store(true)
		}
		if err := reportedByChunk(chunk, res.FinishReason); err != nil {
			return res, c.failed(ctx, actx, st, out, &parts, err)
		}
		if res.FinishReason != "" {
			tail.arm(res.FinishReason, r == "" && t == "", st.delivered.Load())
		}
	}
}

// failed ends an attempt that failed with err: the answer text its parts
// still hold (answerParts.heldText: a "<" that might have opened <think>)
// is delivered first, unless the caller left (ctx) or it is only white
// space (held until the first word, in case <think> follows); delivered,
// it is not asked for again, while an attempt that delivered nothing is
// retried (a white space delivered kept a 502 from being retried).
func (c *Client) failed(ctx, actx context.Context, st *attempt, out sink, parts *answerParts, err error) error {
	if t := parts.heldText(); strings.TrimSpace(t) != "" && ctx.Err() == nil {
		out.deliver("", t)
		st.delivered.Store(true)
	}
	return c.failure(actx, st, err)
}

// ended ends an attempt whose answer is complete: the text its parts
// still hold is delivered, and an answer that delivered nothing is an
// error unless its finish reason explains it (see silent).
func (c *Client) ended(res llm.Result, st *attempt, out sink, parts *answerParts) (llm.Result, error) {
	r, t := out.kept(parts.flush())
	out.deliver(r, t)
	if r != "" || t != "" {
		return res, nil
	}
	return res, c.silent(res, st)
}

// silent returns the error of an answer that ended delivering nothing, no
// text and no reasoning: the stream ended without a finish reason
// (errEmptyStream), or with one that does not explain an empty answer
// (emptyFinishError); nil when something was delivered or the reason is
// a length cut or a content filter, which the client explains. It is
// not retried: the same request would likely end the same way (a model
// asking for a tool chatd never offered), and regenerating is the user's
// choice.
func (c *Client) silent(res llm.Result, st *attempt) error {
	if st.delivered.Load() {
		return nil
	}
	var err error
	switch res.FinishReason {
	case "length", "content_filter":
		return nil
	case "":
		err = errEmptyStream
	default:
		err = &emptyFinishError{finish: res.FinishReason}
	}
	return classify(err, st, c.secrets)
}

// emptyFinishError is an answer that ended with finish reason finish, one
// that does not explain an empty answer, having delivered no text and no
// reasoning: a model asking to call a tool (tool_calls, function_call),
// which chatd never offers, or a stream whose text is in a field chatd
// does not read.
type emptyFinishError struct{ finish string }

func (e *emptyFinishError) Error() string {
	return fmt.Sprintf("the stream ended with finish reason %q without text", e.finish)
}

// message is what the user is told, the finish reason cleaned of key.
func (e *emptyFinishError) message(key secrets) string {
	if e.finish == "tool_calls" || e.finish == "function_call" {
		return "The model asked to call a tool instead of answering, and this chat offers none: it sent no text."
	}
	return "The model ended its answer without any text (finish reason \"" + clean(e.finish, key) + "\")."
}

// brokenAfterFinish reports whether err, once the finish reason came,
// broke the stream rather than ended it: a read or decode error, not a
// clean end (io.EOF) nor an error event the upstream sent (go-openai's
// APIError: it says the answer failed).
func brokenAfterFinish(err error) bool {
	var reported *goopenai.APIError
	return !errors.Is(err, io.EOF) && !errors.As(err, &reported)
}

// endedByTimer reports an attempt's context ended by one of its timers:
// the first-token or idle timeout, or the wait after the finish reason.
func endedByTimer(cause error) bool {
	return errors.Is(cause, errIdleTimeout) || errors.Is(cause, errFirstTokenTimeout) || errors.Is(cause, errFinishWait)
}

// finishTail ends an attempt whose stream goes on without text for
// Options.FinishWait after its finish reason (see Options.FinishWait).
// Text after a finish reason shows the upstream sends it early (a role
// chunk carrying "stop", a proxy marking every chunk finished): from then
// on that reason is dropped, and neither the wait nor a later finish
// reason ends the attempt early; the idle timeout, [DONE] or the body's
// end do, as before any finish reason. It is used by the attempt's
// goroutine only.
type finishTail struct {
	wait   time.Duration
	cancel context.CancelCauseFunc
	timer  *time.Timer
	// early: text followed a finish reason; the wait no longer applies.
	early bool
}

// arm starts the wait at a finish reason: the first, or, after an early
// one, one on a chunk without text (the real end of an upstream that marks
// its chunks finished: believed again, so a stream then held open ends
// after the wait, not at the idle timeout, and a break ends it complete).
// A "stop" before anything was delivered starts no wait: a role chunk
// carrying it is followed by the answer, however long the model takes to
// its first token (the first-token timeout bounds that), and the wait
// ended such answers before their text.
func (f *finishTail) arm(reason string, noText, delivered bool) {
	if f.early && noText {
		f.early = false
	}
	if f.timer != nil || f.early || reason == "stop" && !delivered {
		return
	}
	f.timer = time.AfterFunc(f.wait, func() { f.cancel(errFinishWait) })
}

// textAfter records text that came after the finish reason: the reason
// was early, and the wait ends. It reports false when the wait had
// already ended the attempt: the text came after it, too late to be
// delivered.
func (f *finishTail) textAfter() bool {
	f.early = true
	if f.timer == nil {
		return true
	}
	stopped := f.timer.Stop()
	f.timer = nil
	return stopped
}

func (f *finishTail) stop() {
	if f.timer != nil {
		f.timer.Stop()
	}
}

// streamEnd is the error of a stream that ended before it was complete:
// a body that was no event stream says so (go-openai reports it as a
// clean end, or as too many empty messages when it is long), a clean end
// is errNoDone, any other error itself.
func streamEnd(err error, body *doneWatcher) error {
	if errors.Is(err, io.EOF) || errors.Is(err, goopenai.ErrTooManyEmptyStreamMessages) {
		if notStream := body.notStream(); notStream != nil {
			return fmt.Errorf("%w: %w", notStream, err)
		}
	}
	if errors.Is(err, io.EOF) {
		return errNoDone
	}
	return err
}

// reportedByChunk returns the error a chunk reports: its top-level "error"
// member, or a finish reason saying the answer was broken off (see
// brokenOff) without one.
func reportedByChunk(chunk *chunkFields, finish string) error {
	if chunk.err != nil {
		return fmt.Errorf("error in a chunk: %w", chunk.err)
	}
	if why, ok := brokenOff[finish]; ok {
		return fmt.Errorf("finish reason %s: %w: %w", finish, errBrokenOff, &goopenai.APIError{Message: why})
	}
	return nil
}

// errBrokenOff marks an answer a finish reason says the upstream broke
// off (brokenOff), without an error saying more: a failure of the
// upstream's, retried before the first token as a 5xx is.
var errBrokenOff = errors.New("the upstream broke the answer off")

// brokenOff are the finish reasons of an answer the upstream broke off,
// whatever text came: it is not complete. Each names the upstream's
// reason, as the user is told it.
var brokenOff = map[string]string{
	// OpenRouter and Mistral end a stream whose provider failed so.
	"error": "the answer ended with finish reason \"error\"",
	// DeepSeek's servers broke the answer off for lack of resources.
	"insufficient_system_resource": "it lacked the resources to finish the answer and broke it off",
	// vLLM's engine aborted the request (a shutdown, a pause, a scale-down).
	"abort": "the server aborted the answer before it was complete",
}

// finishReason is a chunk's finish reason as chatd reports it: Mistral's
// "model_length" (the answer filled the model's context window) is an
// answer cut at the model's limit, "length", which clients say under it.
func finishReason(finish string) string {
	if finish == "model_length" {
		return "length"
	}
	return finish
}

// kept returns the reasoning and text s delivers: reasoning is dropped
// when nobody receives it.
func (s sink) kept(reasoning, text string) (string, string) {
	if s.reasoning == nil {
		reasoning = ""
	}
	return reasoning, text
}

// deliver hands reasoning, then text, to their callbacks.
func (s sink) deliver(reasoning, text string) {
	reasoning, text = s.kept(reasoning, text)
	if reasoning != "" {
		s.reasoning(reasoning)
	}
	if text != "" {
		s.text(text)
	}
}

// recv reads the stream's next chunk as go-openai's Recv does, decoded by
// dec instead of json.Unmarshal (see chunkDecoder).
func recv(stream *goopenai.ChatCompletionStream, dec *chunkDecoder) (*chunkFields, error) {
	raw, err := stream.RecvRaw()
	if err != nil {
		return nil, err
	}
	return dec.decode(raw)
}

// applyChunk records a chunk's finish reason and usage and returns the
// whole characters of reasoning and of text it completes (see
// answerParts: a leading <think> block of the text is reasoning). A usage without
// a total (a server giving only the prompt's and the answer's tokens)
// gets their sum.
func applyChunk(res *llm.Result, parts *answerParts, chunk *chunkFields) (string, string) {
	if u := chunk.usage; u != nil {
		if u.TotalTokens == 0 {
			u.TotalTokens = u.PromptTokens + u.CompletionTokens
		}
		res.Usage = u
	}
	r, t := "", ""
	for _, ch := range chunk.choices {
		if ch.finish != "" {
			res.FinishReason = finishReason(ch.finish)
		}
		cr, ct := parts.add(ch.reasoning, ch.content+ch.refusal)
		r, t = r+cr, t+ct
	}
	return r, t
}

// failure turns an attempt's error into an *llm.Error, or into ctx's error
// when the caller's context ended.
func (c *Client) failure(actx context.Context, st *attempt, err error) error {
	cause := context.Cause(actx)
	switch {
	case errors.Is(cause, errFirstTokenTimeout):
		return &llm.Error{Kind: llm.KindTimeout, Err: fmt.Errorf("%w: %w", cause, err),
			Message: fmt.Sprintf("The model did not start answering within %s.", durtext.Short(st.firstToken))}
	case errors.Is(cause, errIdleTimeout):
		return &llm.Error{Kind: llm.KindTimeout, Err: fmt.Errorf("%w: %w", cause, err),
			Message: fmt.Sprintf("The model stopped sending for %s.", durtext.Short(c.opts.IdleTimeout))}
	case actx.Err() != nil:
		return err // the caller's context ended; Stream reports it
	}
	return classify(err, st, c.secrets)
}

// sleep waits for d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
