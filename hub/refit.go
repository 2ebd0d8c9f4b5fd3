package hub

// Answering anyway when the upstream refuses a prompt as too long.
//
// prune.go fits a prompt into the model's context window by an estimate,
// which runs low for some text (dense code, many emoji), and a model's
// window is unknown when neither the configuration nor the upstream's
// model list gives one. The upstream then refuses the prompt
// (llm.KindContextLength), and since a conversation only grows, it would
// refuse every later one of the conversation too. So an answer refused so
// before anything of it was delivered is asked for once more, its prompt
// fitted again (refit), with the oldest messages left out as prune.go
// leaves them (the system prompt and the newest message always kept):
//
//   - a refusal that names the model's window (llm.Error.ContextTokens)
//     teaches it: when no window was known, or the refusal's is smaller
//     (the known one is then proven wrong), it is remembered for the model
//     (learnedWindows: in memory, per process, listed by Hub.Models) and
//     fits this prompt and every later one for an hour (learnedWindowAge:
//     then the known window is tried again, and a refusal teaches it
//     again); otherwise the known window stays;
//   - when the refusal also names the prompt's tokens as the upstream
//     counted them (PromptTokens), and they exceed the estimate of what
//     was sent, the estimate runs low for this text: the budget shrinks in
//     that ratio;
//   - when nothing bounds the prompt below what was sent (no number, or a
//     window it already fitted into), it is cut to half its estimate:
//     the estimate errs high for English (about 4 bytes a token against
//     the 3 it assumes) and, for the densest common text (CJK at up to
//     two tokens a character, emoji), counts about half the real tokens
//     or more; and a conversation refused for a window nobody named has
//     mostly outgrown it by its newest exchange, so half fits while
//     keeping its recent history;
//   - when the answer's max tokens leave the window (known or named) no
//     room for the system prompt and the newest message (answerRoom), the
//     refusal is theirs, not the history's: the prompt is fitted as for an
//     answer that sets none, and the max tokens are lowered to what the
//     window leaves after it, as the upstream counts it (answerTokens;
//     the conversation keeps its setting). request does the same before
//     the first attempt when the window is known.
//
// A prompt sent again smaller than the window alone allows (the last two
// cases) that the upstream takes caps the model's later prompts at the
// budget it was fitted into (Hub.caps, refitted), or its estimate when
// the system prompt and the newest message alone exceed it: without it
// each would be refused first. Not at its estimate alone: a retry that
// left out a large message may send far less than its budget, and that
// would hold every later prompt of the model, in any conversation, far
// below what the refusal showed. A cap is forgotten after
// learnedWindowAge too.
//
// When the new fit leaves out no more than the refused prompt did and
// asks for no fewer tokens of answer, there is no retry: it would be
// refused again. The answer's omittedMessages (its done frame, and the
// stored message where the store can change it: OmittedRecorder) counts
// what the retry left out. A refused retry ends
// the answer with the context_length error, as before.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"chatd/llm"
)

const (
	// retryShare: a prompt refused with nothing to fit it into is sent
	// again cut to 1/retryShare of its estimate.
	retryShare = 2
	// maxLearnedWindows bounds the models whose window is remembered; the
	// oldest lesson is forgotten first.
	maxLearnedWindows = 1024
	// learnedWindowAge is how long a window (or cap) learned from a
	// refusal is used: then the prompt the known window allows is tried
	// again, and a refusal teaches it again.
	learnedWindowAge = time.Hour
)

// OmittedRecorder is implemented by a Store that can change how many
// messages an answer's prompt left out after the answer was stored: an
// answer whose prompt was fitted again after a refusal then says so
// when it is read back. Without it only the answer's done frame does.
type OmittedRecorder interface {
	// SetOmittedMessages sets the owner's message id's OmittedMessages.
	SetOmittedMessages(ctx context.Context, ownerID, id string, n int) error
}

// promptSource is what an answer's prompt is built from, kept to fit it
// again after a refusal. It holds the history path within
// Options.historyBound only (historyPath), its messages' content and no
// more: a fit again only ever applies a budget of tokens within that
// bound, and an answer that runs for minutes keeps no more of a long
// conversation than its prompt may send (nor any reasoning, which is never
// sent).
type promptSource struct {
	system string
	path   promptPath
	window int // the context window the prompt was fitted into (0: unknown)
	// maxTokens are the answer's max tokens as the conversation (or the
	// model's defaults) sets them, before answerTokens lowered them (0:
	// the upstream's default).
	maxTokens int
}

// build returns the prompt within a budget of tokens (0: none) and how
// many messages it leaves out.
func (p promptSource) build(tokens int) ([]llm.Message, int) {
	return p.path.fit(p.system, tokens)
}

// answerRoom is the room kept for the answer when fitting the prompt into
// window (0: unknown): its max tokens, or 0 (the room of an answer that
// sets none, prune.go) when they leave none for the system prompt and the
// newest message, as the upstream counts them (r); answerTokens then
// lowers them to what the fitted prompt leaves.
func (p promptSource) answerRoom(window int, r tokenRatio) int {
	if window <= 0 || p.maxTokens <= 0 {
		return p.maxTokens
	}
	least, _ := p.build(1)
	if r.of(estimatePrompt(least)) > promptTokenBudget(window, p.maxTokens) {
		return 0
	}
	return p.maxTokens
}

// tokenRatio is how an upstream's count of a prompt's tokens compares to
// the estimate of it: counted (0: not said) for sent estimated tokens.
// Only a count above the estimate is taken: the estimate runs low for the
// text.
type tokenRatio struct{ counted, sent int }

// low reports whether the upstream counted more than the estimate.
func (r tokenRatio) low() bool { return r.sent > 0 && r.counted > r.sent }

// of is estimate tokens as the upstream counts them, rounded up.
func (r tokenRatio) of(estimate int) int {
	if !r.low() {
		return estimate
	}
	return int((int64(estimate)*int64(r.counted) + int64(r.sent) - 1) / int64(r.sent))
}

// within is the estimate of a budget of tokens as the upstream counts them.
func (r tokenRatio) within(budget int) int {
	if !r.low() {
		return budget
	}
	return int(int64(budget) * int64(r.sent) / int64(r.counted))
}

// learnedWindows remembers the context windows upstreams named when they
// refused a prompt, per model id, for learnedWindowAge each: the servers
// behind a model's URL may change (a pool of servers with other windows,
// an operator who raised the window), and a lesson kept for ever would
// cut every later prompt. The zero value is empty and ready.
type learnedWindows struct {
	now   func() time.Time // nil: time.Now; tests set their clock
	mu    sync.Mutex
	byID  map[string]lesson
	order []string // oldest lesson first
}

// lesson is a window learned, and when.
type lesson struct {
	tokens int
	at     time.Time
}

func (w *learnedWindows) clock() time.Time {
	if w.now != nil {
		return w.now()
	}
	return time.Now()
}

// fit returns the window to fit a prompt of model into: the smaller of
// the known window (0: unknown) and the one learned for the model, unless
// that is older than learnedWindowAge (it is then forgotten, and the
// known window tried again).
func (w *learnedWindows) fit(model string, known int) int {
	now := w.clock()
	w.mu.Lock()
	l, ok := w.byID[model]
	if ok && now.Sub(l.at) >= learnedWindowAge {
		w.forgetLocked(model)
		l = lesson{}
	}
	w.mu.Unlock()
	if l.tokens > 0 && (known <= 0 || l.tokens < known) {
		return l.tokens
	}
	return known
}

// forgetLocked forgets the window learned for model; w.mu is held.
func (w *learnedWindows) forgetLocked(model string) {
	delete(w.byID, model)
	if i := slices.Index(w.order, model); i >= 0 {
		w.order = slices.Delete(w.order, i, i+1)
	}
}

// learn takes the window an upstream named (0: none) for model, whose
// prompt was fitted into known, and returns the window to fit it into
// now: the named one, remembered from now on, when it is smaller or
// nothing was known; known otherwise.
func (w *learnedWindows) learn(model string, known, named int) int {
	if named <= 0 || known > 0 && named >= known {
		return known
	}
	now := w.clock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.byID == nil {
		w.byID = make(map[string]lesson)
	}
	if _, ok := w.byID[model]; !ok {
		if len(w.order) == maxLearnedWindows {
			delete(w.byID, w.order[0])
			w.order = w.order[1:]
		}
		w.order = append(w.order, model)
	}
	w.byID[model] = lesson{tokens: named, at: now}
	return named
}

// estimatePrompt is the estimated token cost of the messages of a prompt.
func estimatePrompt(msgs []llm.Message) int { return llm.EstimatePrompt(msgs) }

// windowBudget is the token budget of a prompt in window (0: unknown,
// no budget) with room for an answer of maxTokens, its estimate running
// low as r says.
func windowBudget(window, maxTokens int, r tokenRatio) int {
	b := promptTokenBudget(window, maxTokens)
	if b > 0 {
		b = max(r.within(b), 1)
	}
	return b
}

// retryBudget is the token budget of a prompt sent again after a
// refusal: sent is the refused prompt's estimate, window the window to
// fit it into (0: unknown), maxTokens the answer's, counted the prompt's
// tokens as the upstream counted them (0: not said).
func retryBudget(window, maxTokens, sent, counted int) int {
	b := windowBudget(window, maxTokens, tokenRatio{counted: counted, sent: sent})
	if b <= 0 || b >= sent {
		b = sent / retryShare
	}
	return max(b, 1)
}

// refitted learns from a prompt sent again smaller than the window alone
// allows (no window known, or the estimate ran low for the text): once the
// upstream took it (err nil, or it produced something before failing
// otherwise), the budget it was fitted into (or its estimate, when
// larger) caps the model's later prompts (Hub.caps), which would
// otherwise each be refused first. A prompt fitted into a window the
// refusal named needs no cap: the window is learned (refit).
func (g *generation) refitted(req llm.Request, err error) {
	if g.shrunk > 0 && (err == nil || g.produced()) {
		g.hub.caps.learn(req.Model, 0, max(g.shrunk, estimatePrompt(req.Messages)))
	}
}

// refit returns req with its prompt fitted again after the upstream
// refused it as too long (err), and true; false when the answer is not
// to be asked for again: another error, an answer ended or that
// delivered something, or nothing more to leave out. The caller asks at
// most once.
func (g *generation) refit(req llm.Request, err error) (llm.Request, bool) {
	var e *llm.Error
	if !errors.As(err, &e) || e.Kind != llm.KindContextLength || g.ctx.Err() != nil || g.produced() {
		return req, false
	}
	h := g.hub
	window := h.windows.learn(req.Model, g.src.window, e.ContextTokens)
	sent := estimatePrompt(req.Messages)
	ratio := tokenRatio{counted: e.PromptTokens, sent: sent}
	room := g.src.answerRoom(window, ratio)
	budget := retryBudget(window, room, sent, e.PromptTokens)
	if room != g.src.maxTokens {
		// The answer's max tokens, not the prompt, leave the window no
		// room: the prompt is fitted as for an answer that sets none, and
		// they are lowered to what it leaves.
		budget = windowBudget(window, room, ratio)
	}
	g.shrunk = 0
	if budget != promptTokenBudget(window, room) {
		g.shrunk = budget
	}
	msgs, omitted := g.src.build(budget)
	maxTokens := answerTokens(window, g.src.maxTokens, ratio.of(estimatePrompt(msgs)))
	log := h.log.With("generation", g.id, "user", g.msg.OwnerID, "message", g.msg.ID, "model", req.Model, "window", window,
		"named_window", e.ContextTokens, "named_prompt_tokens", e.PromptTokens, "estimated_tokens", sent)
	if omitted <= g.msg.OmittedMessages && maxTokens >= req.MaxTokens {
		log.Info("prompt refused as too long, and no older message is left to leave out")
		return req, false
	}
	log.Info("prompt refused as too long: asking again without older messages, or for a shorter answer",
		"omitted", omitted, "max_tokens", maxTokens, "asked_max_tokens", g.src.maxTokens)
	g.setOmitted(omitted)
	req.Messages, req.MaxTokens = msgs, maxTokens
	return req, true
}

// produced reports whether the answer has delivered any text or reasoning.
func (g *generation) produced() bool {
	g.conv.mu.Lock()
	defer g.conv.mu.Unlock()
	return g.tokens > 0
}

// setOmitted records that the answer's prompt leaves out n messages: in
// the store where it can (OmittedRecorder), then in its done frame, which
// then says n, 0 included (protocol.DoneRecounted: the answer's message
// frame had the first prompt's count, which a client would keep). The
// done must not say more than the stored message: when the store fails
// (logged, and the answer goes on), the done keeps the count stored
// before. The store call is bounded by FinishTimeout, not by the answer's
// context: an answer cancelled (or ended by shutdown) meanwhile still has
// n stored, and reports it.
func (g *generation) setOmitted(n int) {
	if r, ok := g.hub.opts.Store.(OmittedRecorder); ok {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(g.ctx), g.hub.opts.FinishTimeout)
		err := r.SetOmittedMessages(ctx, g.msg.OwnerID, g.msg.ID, n)
		cancel()
		if err != nil {
			g.hub.log.Warn("store the messages left out of a prompt fitted again", "generation", g.id, "user", g.msg.OwnerID,
				"message", g.msg.ID, "err", err)
			return
		}
	}
	g.conv.mu.Lock()
	g.msg.OmittedMessages, g.recounted = n, true
	g.conv.mu.Unlock()
}
