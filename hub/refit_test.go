package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// windowed is an upstream with a context window of window tokens, as it
// counts them (tokens of one message), refusing a longer prompt as an
// OpenAI-compatible server does: naming its window and the prompt's
// tokens when named, nothing otherwise. A prompt that fits is answered
// "ok".
type windowed struct {
	window int
	tokens func(content string) int
	named  bool
	// answer: the window holds the prompt and the answer's max tokens, as
	// vLLM, TGI and OpenAI's older models count it.
	answer bool
	// uncounted: a named refusal names the window only, as vLLM's of a
	// max_tokens beyond it does.
	uncounted bool
}

func (u windowed) script(_ context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
	n := 0
	for _, m := range req.Messages {
		n += u.tokens(m.Content)
	}
	if n > u.window || u.answer && n+req.MaxTokens > u.window {
		e := &llm.Error{Kind: llm.KindContextLength, Status: 400, Message: "The conversation is too long."}
		if u.named {
			e.ContextTokens, e.PromptTokens = u.window, n
		}
		if u.uncounted {
			e.PromptTokens = 0
		}
		return llm.Result{}, e
	}
	onDelta("ok")
	return llm.Result{FinishReason: "stop"}, nil
}

// bytesAsTokens counts a token per byte: text three times denser than
// the hub's estimate.
func bytesAsTokens(s string) int { return len(s) }

// ninetyBytes is a user message of 90 bytes: 34 estimated tokens.
var ninetyBytes = strings.Repeat("word ", 18)

// converse sends n messages of content in one conversation of user "u",
// one after the other's done, and returns each done and how many
// upstream requests each send took.
func converse(t *testing.T, e *env, n int, content string) ([]frame, []int) {
	t.Helper()
	return converseIn(t, e, "", n, content)
}

// converseIn is converse in the conversation convID ("": a new one).
func converseIn(t *testing.T, e *env, convID string, n int, content string) ([]frame, []int) {
	t.Helper()
	sub := newSub("u")
	var dones []frame
	var requests []int
	for i := range n {
		before := e.model.requestCount()
		res, err := e.h.Send(context.Background(), sub, "u", SendRequest{ConversationID: convID, Content: content})
		if err != nil {
			t.Fatalf("send %d: %v", i+1, err)
		}
		convID = res.ConversationID
		for {
			if f := sub.next(t); f.IsDone(res.MessageID) {
				dones = append(dones, decode(t, f))
				break
			}
		}
		requests = append(requests, e.model.requestCount()-before)
	}
	return dones, requests
}

// TestRefitKeepsAnswering: a conversation that outgrows its model's
// context window (unknown, or known but the estimate running low for its
// text) keeps getting answers: a prompt refused as too long is sent once
// more without its oldest messages, and the answer's done and stored
// message say how many were left out. A window the refusal named is
// remembered, so later prompts fit at once; without one, or when the
// estimate ran low, the budget of the prompt the upstream took caps the
// later ones, which fit at once too; a listed window the refusal
// confirms stays.
func TestRefitKeepsAnswering(t *testing.T) {
	t.Parallel()
	// Each exchange costs 34+5 estimated tokens: the sixth prompt (229) is
	// the first past 200 tokens, the fifth (458 bytes) the first past 400 bytes.
	tests := []struct {
		name       string
		listed     int
		up         windowed
		firstRetry int // the send whose prompt is first refused (1-based)
		after      int // requests of each send after it
		learned    int // the window remembered for the model
	}{
		{"window named", 0, windowed{window: 200, tokens: estimateTokens, named: true}, 6, 1, 200},
		{"nothing named", 0, windowed{window: 200, tokens: estimateTokens}, 6, 1, 0},
		{"listed window, estimate low", 400, windowed{window: 400, tokens: bytesAsTokens, named: true}, 5, 1, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Options{}, tt.up.script)
			e.model.window = tt.listed
			dones, requests := converse(t, e, 8, ninetyBytes)
			for i, d := range dones {
				want := 1
				switch {
				case i+1 == tt.firstRetry:
					want = 2
				case i+1 > tt.firstRetry:
					want = tt.after
				}
				if d.Status != string(persistence.StatusComplete) || requests[i] != want {
					t.Fatalf("send %d: status %s (%+v), %d requests; want complete, %d", i+1, d.Status, d.Error, requests[i], want)
				}
				stored := e.stored(t, d.MessageID)
				if (d.Omitted > 0) != (i+1 >= tt.firstRetry) || stored.OmittedMessages != d.Omitted {
					t.Fatalf("send %d: done leaves out %d, stored %d", i+1, d.Omitted, stored.OmittedMessages)
				}
			}
			if got := e.h.windows.fit("fake", tt.listed); got != tt.learned {
				t.Fatalf("window fitted into now %d, want %d", got, tt.learned)
			}
			// The model list says what the prompts are fitted into, and
			// whether a refusal taught it.
			models, err := e.h.Models(t.Context())
			wantWindow, wantLearned := max(tt.learned, tt.listed), tt.learned != tt.listed
			if err != nil || len(models) != 1 || models[0].ContextTokens != wantWindow ||
				models[0].ContextTokensLearned != wantLearned {
				t.Fatalf("Models: %+v, %v; want window %d, learned %v", models, err, wantWindow, wantLearned)
			}
		})
	}
}

// TestRefitCapKeepsRetryBudget: a refusal that names no window caps the
// model's later prompts at the budget the retry was fitted into (half the
// refused prompt's estimate), not at the size of the prompt that happened
// to fit in it: a large paste left out of the retry would otherwise hold
// every later prompt of the model, in every conversation, to the few
// messages after it, far below the real window. Here a prompt of 2,008
// estimated tokens is refused by a window of 2,000; the retry, its budget
// 1,004, leaves out the 1,604-token paste and sends under 200 tokens.
// Another conversation of about 390 tokens then keeps all its history.
func TestRefitCapKeepsRetryBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}, windowed{window: 2000, tokens: estimateTokens}.script)
	dones, _ := converse(t, e, 1, strings.Repeat("x", 600)) // 204 estimated tokens, "ok" 5
	convA := dones[0].ConversationID
	converseIn(t, e, convA, 1, strings.Repeat("p", 4800))      // 1,604: 1,818 in all
	dones, requests := converseIn(t, e, convA, 5, ninetyBytes) // 39 each: the fifth prompt 2,008
	if requests[4] != 2 || dones[4].Status != string(persistence.StatusComplete) {
		t.Fatalf("the fifth short send: %d requests, %s; want refused first, then answered", requests[4], dones[4].Status)
	}
	budget := retryBudget(0, 0, 2008, 0)
	if c := e.h.caps.fit("fake", 0); c < budget || c >= 2008 {
		t.Fatalf("cap learned %d, want the retry's budget %d at least, below the refused 2,008", c, budget)
	}
	dones, requests = converse(t, e, 10, ninetyBytes)
	for i, d := range dones {
		if d.Omitted != 0 || requests[i] != 1 {
			t.Fatalf("other conversation, send %d: %d messages left out after %d requests; want 0, 1", i+1, d.Omitted, requests[i])
		}
	}
}

// TestRefitAnswerRoom: a conversation whose maxTokens leave the prompt no
// room in the model's window (listed, or named by a refusal) still gets
// answers: the prompt is fitted as for an answer that sets none, and the
// request's max tokens are lowered to what the window leaves after it, so
// the upstream (counting the answer's max tokens into the window, as vLLM
// does) takes it. The conversation keeps its maxTokens. A maxTokens that
// leaves room for the newest message keeps it, and older messages are left
// out instead.
func TestRefitAnswerRoom(t *testing.T) {
	t.Parallel()
	// A send costs 34 estimated tokens, an answer 5 ("ok"); the window 400.
	tests := []struct {
		name         string
		listed       int
		maxTokens    int
		up           windowed
		firstRefused int // the send first refused, taking two requests (0: none)
		after        int // requests of each later send
	}{
		{"max tokens fill a named window", 0, 380, windowed{window: 400, tokens: estimateTokens, named: true, answer: true}, 1, 1},
		{"max tokens beyond a named window, the prompt uncounted", 0, 1000, windowed{window: 400, tokens: estimateTokens, named: true, answer: true, uncounted: true}, 1, 1},
		{"max tokens fill a listed window", 400, 380, windowed{window: 400, tokens: estimateTokens, named: true, answer: true}, 0, 1},
		{"max tokens beyond the window", 400, 1000, windowed{window: 400, tokens: estimateTokens, named: true, answer: true}, 0, 1},
		// The estimate runs low: each later prompt is refused first, the
		// refusal's count then lowering the max tokens further.
		{"dense text, the count named", 0, 350, windowed{window: 400, tokens: bytesAsTokens, named: true, answer: true}, 1, 2},
		// The sixth prompt (229 tokens) is the first that leaves less than 200.
		{"room for the newest message", 0, 200, windowed{window: 400, tokens: estimateTokens, named: true, answer: true}, 6, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Options{}, tt.up.script)
			e.model.window = tt.listed
			conv := persistence.Conversation{OwnerID: "u", Model: "fake", Params: &persistence.Params{MaxTokens: &tt.maxTokens}}
			if err := e.store.CreateConversation(context.Background(), &conv); err != nil {
				t.Fatal(err)
			}
			dones, requests := converseIn(t, e, conv.ID, 8, ninetyBytes)
			for i, d := range dones {
				want := tt.after // after the first refusal, or from the first send when none
				switch {
				case i+1 == tt.firstRefused:
					want = 2
				case i+1 < tt.firstRefused:
					want = 1
				}
				if d.Status != string(persistence.StatusComplete) || requests[i] != want {
					t.Fatalf("send %d: status %s (%+v), %d requests; want complete, %d", i+1, d.Status, d.Error, requests[i], want)
				}
			}
			e.model.mu.Lock()
			last := e.model.requests[len(e.model.requests)-1]
			e.model.mu.Unlock()
			wantMax := min(tt.maxTokens, 400-estimatePrompt(last.Messages)-primingTokens)
			if tt.up.tokens(ninetyBytes) > estimateTokens(ninetyBytes) {
				wantMax = last.MaxTokens // lowered after the count; the upstream took it
			}
			if last.MaxTokens != wantMax || last.MaxTokens > tt.maxTokens {
				t.Fatalf("last request's max tokens %d, want %d (at most %d)", last.MaxTokens, wantMax, tt.maxTokens)
			}
			if c, _ := e.store.Conversation(context.Background(), "u", conv.ID); *c.Params.MaxTokens != tt.maxTokens {
				t.Fatalf("the conversation's maxTokens now %d", *c.Params.MaxTokens)
			}
		})
	}
}

// TestRefitShorterAnswerKeepsHistory: when the refusal is the answer's
// max tokens' doing (set after three exchanges, too large for the window
// the refusal names), the retry lowers them and keeps the history, which
// fits: no message is left out, and none was cut to make room.
func TestRefitShorterAnswerKeepsHistory(t *testing.T) {
	t.Parallel()
	up := windowed{window: 400, tokens: estimateTokens, named: true, answer: true}
	e := newEnv(t, Options{}, up.script)
	dones, _ := converse(t, e, 3, ninetyBytes)
	convID := dones[0].ConversationID
	maxTokens := 380
	if _, err := e.store.UpdateConversation(context.Background(), "u", convID,
		persistence.ConversationPatch{Params: &persistence.Params{MaxTokens: &maxTokens}}); err != nil {
		t.Fatal(err)
	}
	dones, requests := converseIn(t, e, convID, 1, ninetyBytes)
	e.model.mu.Lock()
	last := e.model.requests[len(e.model.requests)-1]
	e.model.mu.Unlock()
	// 4 sends and 3 answers: 4*34 + 3*5 = 151 estimated tokens.
	if d := dones[0]; d.Status != string(persistence.StatusComplete) || requests[0] != 2 || d.Omitted != 0 ||
		estimatePrompt(last.Messages) != 151 || last.MaxTokens != 400-151-primingTokens {
		t.Fatalf("done %s (%+v) after %d requests, %d left out; retried with %d tokens of prompt, %d max tokens",
			d.Status, d.Error, requests[0], d.Omitted, estimatePrompt(last.Messages), last.MaxTokens)
	}
}

// TestAnswerTokens: an answer's max tokens are lowered to what the window
// leaves after the prompt, only when the window is known, they are set,
// and the prompt leaves something.
func TestAnswerTokens(t *testing.T) {
	t.Parallel()
	tests := []struct{ window, maxTokens, prompt, want int }{
		{0, 1000, 300, 1000},            // unknown window
		{400, 0, 300, 0},                // not set: the upstream's default
		{400, 50, 300, 50},              // room enough
		{400, 380, 34, 400 - 34 - 16},   // lowered
		{400, 380, 400, 380},            // the prompt fills the window alone: refused as it is
		{400, 400 - 100 - 16, 100, 284}, // exactly the room
		{400, 400 - 100 - 15, 100, 284}, // one more
		{400, 1000, 400 - 16 - 1, 1},    // one token left
	}
	for _, tt := range tests {
		if got := answerTokens(tt.window, tt.maxTokens, tt.prompt); got != tt.want {
			t.Errorf("answerTokens(%d, %d, %d) = %d, want %d", tt.window, tt.maxTokens, tt.prompt, got, tt.want)
		}
	}
}

// TestRefitOnce: a prompt refused as too long is sent again at most once,
// and only while nothing of the answer was delivered and something older
// is left to leave out; otherwise the answer ends with the context_length
// error, as before.
func TestRefitOnce(t *testing.T) {
	t.Parallel()
	refuse := func(_ context.Context, _ llm.Request, _ func(string)) (llm.Result, error) {
		return llm.Result{}, &llm.Error{Kind: llm.KindContextLength, Status: 400, Message: "too long"}
	}
	tests := []struct {
		name     string
		script   func(context.Context, llm.Request, func(string)) (llm.Result, error)
		sends    int // the last is watched
		requests int // of the last send
	}{
		{"refused again", refuse, 2, 2},
		{"nothing older to leave out", refuse, 1, 1},
		{"text delivered", func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
			onDelta("partial")
			return refuse(ctx, req, onDelta)
		}, 2, 1},
		{"reasoning delivered", func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
			req.OnReasoning("thinking")
			return refuse(ctx, req, onDelta)
		}, 2, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Options{}, tt.script)
			dones, requests := converse(t, e, tt.sends, ninetyBytes)
			last := dones[len(dones)-1]
			if last.Status != string(persistence.StatusError) || last.Error == nil ||
				last.Error.Code != string(llm.KindContextLength) || requests[len(requests)-1] != tt.requests {
				t.Fatalf("last done %s %+v after %d requests; want error context_length after %d",
					last.Status, last.Error, requests[len(requests)-1], tt.requests)
			}
		})
	}
}

// TestRefitNotAfterCancel: an answer cancelled while its refused prompt
// comes back is not asked for again.
func TestRefitNotAfterCancel(t *testing.T) {
	t.Parallel()
	refused := make(chan struct{}, 2)
	var calls atomic.Int32
	e := newEnv(t, Options{}, func(ctx context.Context, _ llm.Request, onDelta func(string)) (llm.Result, error) {
		if calls.Add(1) == 1 {
			onDelta("ok") // the first answer, older history for the second
			return llm.Result{FinishReason: "stop"}, nil
		}
		refused <- struct{}{}
		<-ctx.Done() // the test cancels the answer
		return llm.Result{}, &llm.Error{Kind: llm.KindContextLength, Status: 400, Message: "too long"}
	})
	sub := newSub("u")
	first, _ := converse(t, e, 1, ninetyBytes)
	res, err := e.h.Send(context.Background(), sub, "u", SendRequest{ConversationID: first[0].ConversationID, Content: ninetyBytes})
	if err != nil {
		t.Fatal(err)
	}
	<-refused
	if err := e.h.Cancel(context.Background(), "u", res.ConversationID); err != nil {
		t.Fatal(err)
	}
	for {
		if f := sub.next(t); f.IsDone(res.MessageID) {
			if d := decode(t, f); d.Status != string(persistence.StatusCancelled) {
				t.Fatalf("done %s, want cancelled", d.Status)
			}
			break
		}
	}
	if n := e.model.requestCount(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

func TestRetryBudget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                             string
		window, maxTokens, sent, counted int
		want                             int
	}{
		{"window learned", 1000, 0, 2000, 0, 1000 - 250 - 16},
		{"window learned, estimate low", 1000, 0, 2000, 4000, (1000 - 250 - 16) / 2},
		{"estimate high: the window alone", 1000, 0, 2000, 1000, 1000 - 250 - 16},
		{"the answer's room", 1000, 100, 2000, 0, 1000 - 100 - 16},
		{"nothing known: half", 0, 0, 2000, 0, 1000},
		{"only the prompt's tokens: half", 0, 0, 2000, 5000, 1000},
		{"the window fitted already: half", 1000, 0, 500, 0, 250},
		{"never below one", 0, 0, 1, 0, 1},
	}
	for _, tt := range tests {
		if got := retryBudget(tt.window, tt.maxTokens, tt.sent, tt.counted); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestLearnedWindows: a named window is remembered when none was known
// or it is smaller than the known one, which otherwise stays; the
// memory is bounded, forgetting the oldest lesson first.
func TestLearnedWindows(t *testing.T) {
	t.Parallel()
	var w learnedWindows
	steps := []struct {
		model        string
		known, named int
		want         int // learn's answer
		fit          int // then fit(model, known)
	}{
		{"a", 0, 0, 0, 0},          // nothing named, nothing known
		{"a", 0, 4096, 4096, 4096}, // learned
		{"b", 8192, 8192, 8192, 8192},
		{"b", 8192, 16384, 8192, 8192}, // the listed window stays
		{"b", 8192, 4096, 4096, 4096},  // proven wrong
		{"a", 4096, 2048, 2048, 2048},  // smaller again
	}
	for i, s := range steps {
		if got := w.learn(s.model, s.known, s.named); got != s.want {
			t.Fatalf("step %d: learn %d, want %d", i, got, s.want)
		}
		if got := w.fit(s.model, s.known); got != s.fit {
			t.Fatalf("step %d: fit %d, want %d", i, got, s.fit)
		}
	}
	if got := w.fit("b", 32768); got != 4096 {
		t.Fatalf("a larger listed window: fit %d, want the learned 4096", got)
	}
	for i := range maxLearnedWindows {
		w.learn(fmt.Sprintf("m%d", i), 0, 100)
	}
	if len(w.byID) != maxLearnedWindows || w.fit("a", 0) != 0 || w.fit("b", 0) != 0 {
		t.Fatalf("%d remembered, a %d, b %d: want %d, the oldest forgotten", len(w.byID), w.fit("a", 0), w.fit("b", 0), maxLearnedWindows)
	}
}

// testClock is a clock a test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestLearnedWindowsAge: a window learned is used for learnedWindowAge
// from the last refusal that named it, then forgotten (the known window
// is tried again) and out of the memory's order too.
func TestLearnedWindowsAge(t *testing.T) {
	t.Parallel()
	clk := &testClock{t: time.Unix(1e9, 0)}
	w := learnedWindows{now: clk.now}
	w.learn("a", 8192, 4096)
	clk.advance(learnedWindowAge - time.Second)
	if got := w.fit("a", 8192); got != 4096 {
		t.Fatalf("before the age: fit %d, want the learned 4096", got)
	}
	w.learn("a", 8192, 4096) // named again: kept an age from now
	clk.advance(time.Second)
	if got := w.fit("a", 8192); got != 4096 {
		t.Fatalf("an age after the first lesson, just after the second: fit %d, want 4096", got)
	}
	clk.advance(learnedWindowAge)
	if got := w.fit("a", 8192); got != 8192 || len(w.byID) != 0 || len(w.order) != 0 {
		t.Fatalf("after the age: fit %d (%d remembered, %d in order), want the known 8192, nothing", got, len(w.byID), len(w.order))
	}
	if got := w.fit("a", 0); got != 0 {
		t.Fatalf("after the age, nothing known: fit %d, want 0", got)
	}
}

// TestRefitAgain: an hour after a window (or a cap) was learned, the
// prompt the known window allows (here all of it) is tried again, so a
// model whose window grew gets its whole conversation; a refusal then
// teaches the window again. Before the age it stays.
func TestRefitAgain(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		up   windowed
	}{
		{"window named", windowed{window: 200, tokens: estimateTokens, named: true}},
		{"nothing named", windowed{window: 200, tokens: estimateTokens}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Options{}, tt.up.script)
			clk := &testClock{t: time.Unix(1e9, 0)}
			e.h.windows.now, e.h.caps.now = clk.now, clk.now
			// The sixth prompt is the first refused (TestRefitKeepsAnswering).
			dones, requests := converse(t, e, 7, ninetyBytes)
			if requests[5] != 2 || requests[6] != 1 {
				t.Fatalf("requests %v, want the sixth send refused first, the seventh not", requests)
			}
			convID := dones[0].ConversationID
			for i, step := range []struct {
				advance  time.Duration
				requests int
			}{
				{learnedWindowAge - time.Second, 1}, // still learned
				{time.Second, 2},                    // forgotten: the whole prompt, refused, fitted again
				{0, 1},                              // learned again
			} {
				clk.advance(step.advance)
				_, requests := converseIn(t, e, convID, 1, ninetyBytes)
				if requests[0] != step.requests {
					t.Fatalf("send %d: %d requests, want %d", 8+i, requests[0], step.requests)
				}
			}
		})
	}
}

// TestRefitOmittedStoredOnCancel: an answer cancelled while the count of
// messages its refitted prompt leaves out is being stored still gets that
// count stored, so that its done, which reports it, claims nothing the
// stored message does not say. The store call ran under the answer's
// context: the cancel failed it, and the done said more messages were
// left out than a reload showed.
func TestRefitOmittedStoredOnCancel(t *testing.T) {
	t.Parallel()
	up := windowed{window: 200, tokens: estimateTokens, named: true}
	e := newEnv(t, Options{}, func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
		if err := ctx.Err(); err != nil {
			return llm.Result{}, err // as a real upstream client does
		}
		return up.script(ctx, req, onDelta)
	})
	var once sync.Once
	e.store.beforeOmit = func(ctx context.Context, id string) error {
		once.Do(func() { cancelAnswer(t, e.h, id) }) // the user cancels right then
		return ctx.Err()
	}
	dones, _ := converse(t, e, 6, ninetyBytes) // the sixth prompt is refused (TestRefitKeepsAnswering)
	d := dones[5]
	stored := e.stored(t, d.MessageID)
	if d.Omitted == 0 || stored.OmittedMessages != d.Omitted {
		t.Fatalf("done (status %s) leaves out %d messages, the stored answer %d", d.Status, d.Omitted, stored.OmittedMessages)
	}
}

// cancelAnswer cancels the generation producing message id, as a cancel
// frame does, without waiting for it to end.
func cancelAnswer(t *testing.T, h *Hub, id string) {
	t.Helper()
	var g *generation
	h.mu.Lock()
	for _, c := range h.convs {
		c.mu.Lock()
		if c.gen != nil && c.gen.msg.ID == id {
			g = c.gen
		}
		c.mu.Unlock()
	}
	h.mu.Unlock()
	if g == nil {
		t.Errorf("no answer %s runs", id)
		return
	}
	g.cancel(errCancelled)
}

// TestRefitOmittedNotStored: when the store fails to record the count of
// messages a refitted prompt leaves out (a failure only logged: the
// answer goes on), the done reports the count the stored message holds,
// not the new one: it must not claim more than a reload shows.
func TestRefitOmittedNotStored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{}, windowed{window: 200, tokens: estimateTokens, named: true}.script)
	e.store.beforeOmit = func(context.Context, string) error { return errors.New("store down") }
	dones, requests := converse(t, e, 6, ninetyBytes) // the sixth prompt is refused (TestRefitKeepsAnswering)
	d := dones[5]
	stored := e.stored(t, d.MessageID)
	if d.Status != string(persistence.StatusComplete) || requests[5] != 2 {
		t.Fatalf("send 6: status %s (%+v), %d requests; want complete after a refit", d.Status, d.Error, requests[5])
	}
	if d.Omitted != stored.OmittedMessages {
		t.Fatalf("done leaves out %d messages, the stored answer %d", d.Omitted, stored.OmittedMessages)
	}
}

// TestRefitLeavingNothingOut: a refit that sends every message (the
// answer's max tokens, not the history, left the window no room) says so
// in its done: omittedMessages 0, present, where the answer's message
// frame had the first prompt's count. Before, the done left the field out
// when 0, which a client reads as "as the message frame said", and kept
// showing "Earlier messages were not sent" under an answer whose prompt
// held them all, until a reload.
func TestRefitLeavingNothingOut(t *testing.T) {
	t.Parallel()
	// The upstream counts 1.8 tokens a CJK character, the hub estimates 1:
	// the first prompt (maxTokens 7000 leave 1176 tokens) holds only the
	// newest 996 characters, which the upstream counts 1792, and refuses.
	up := windowed{window: 8192, named: true, answer: true,
		tokens: func(s string) int { return utf8.RuneCountInString(s) * 9 / 5 }}
	e := newEnv(t, Options{}, up.script)
	e.model.window = 8192
	dones, _ := converse(t, e, 2, strings.Repeat("漢", 300))
	convID := dones[0].ConversationID
	maxTokens := 7000
	if _, err := e.store.UpdateConversation(context.Background(), "u", convID,
		persistence.ConversationPatch{Params: &persistence.Params{MaxTokens: &maxTokens}}); err != nil {
		t.Fatal(err)
	}
	sub := newSub("u")
	res, err := e.h.Send(context.Background(), sub, "u", SendRequest{ConversationID: convID, Content: strings.Repeat("字", 996)})
	if err != nil {
		t.Fatal(err)
	}
	var first int // the count the answer's message frame gave
	var done *protocol.Frame
	for done == nil {
		switch f := sub.next(t); {
		case f.Type == protocol.TypeMessage && f.MessageID == res.MessageID:
			first = decode(t, f).Message.OmittedMessages
		case f.IsDone(res.MessageID):
			done = f
		}
	}
	e.model.mu.Lock()
	last := e.model.requests[len(e.model.requests)-1]
	e.model.mu.Unlock()
	if d := decode(t, done); first != 4 || d.Status != string(persistence.StatusComplete) || len(last.Messages) != 5 {
		t.Fatalf("message frame left out %d, done %s (%+v), the refit sent %d messages; want 4, complete, all 5",
			first, d.Status, d.Error, len(last.Messages))
	}
	var got struct {
		Omitted *int `json:"omittedMessages"`
	}
	if err := json.Unmarshal(done.Data, &got); err != nil || got.Omitted == nil || *got.Omitted != 0 {
		t.Fatalf("done %s: want omittedMessages 0, present", done.Data)
	}
	if stored := e.stored(t, res.MessageID); stored.OmittedMessages != 0 {
		t.Fatalf("stored answer leaves out %d messages, want 0", stored.OmittedMessages)
	}
}
