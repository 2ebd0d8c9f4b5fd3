package app

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/llm/fakeai"
	"chatd/persistence"
)

// TestConversationOutgrowsUnlistedWindow: a conversation with a model
// whose context window nobody lists keeps getting answers once it
// outgrows the window: the upstream's refusal (the real fake upstream
// refusing prompts of more than 200 words) is answered by sending the
// prompt again without its oldest messages, and the done says how many
// were left out. When the refusal names the window, it is learned: later
// prompts are fitted into it before they go and are not refused again.
// When it names nothing, the budget of the prompt taken after it caps the
// later prompts, which are not refused again either. So in every wording
// the fake upstream has, xAI's, Together AI's and LM Studio's too.
// The stored answer, read again, leaves out as many as its done says.
func TestConversationOutgrowsUnlistedWindow(t *testing.T) {
	t.Parallel()
	// 15 words (75 bytes) a message, 2 words an answer: the 12th prompt
	// (202 words) is the first over 200.
	const sends, firstRefused = 14, 12
	for _, tc := range []struct {
		words   fakeai.ContextWords
		later   int64 // upstream requests of each answer after the first refused
		learned int   // the window /api/models then reports, learned (0: none)
	}{{fakeai.ContextOpenAI, 1, 200}, {fakeai.ContextVLLM, 1, 200}, {fakeai.ContextBare, 1, 0},
		// Servers that send no code context_length_exceeded: their words
		// alone say it.
		{fakeai.ContextXAI, 1, 200}, {fakeai.ContextTogether, 1, 200}, {fakeai.ContextLMStudio, 1, 200}} {
		t.Run(string(tc.words), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{fake: fakeai.Options{Defaults: fakeai.Config{Tokens: 2, Context: 200, ContextWords: tc.words}},
				tweak: func(c *Config) { c.Limits.SendsPerMinute = 1000 }})
			u := e.register(t)
			cl := e.dial(t, u)
			convID := ""
			for i := range sends {
				before := e.fake.Requests()
				id := fmt.Sprintf("m%d", i+1)
				cl.write(sendFrame(id, convID, strings.Repeat("word ", 15)))
				acked := cl.until(func(f frame) bool { return f.Type == "ack" && string(f.ID) == `"`+id+`"` })
				ack := acked[len(acked)-1]
				convID = ack.ConversationID
				frames := cl.until(isDone(ack.MessageID))
				done := frames[len(frames)-1]
				requests, want := e.fake.Requests()-before, int64(1)
				switch {
				case i+1 == firstRefused:
					want = 2
				case i+1 > firstRefused:
					want = tc.later
				}
				if done.Status != "complete" || requests != want {
					t.Fatalf("send %d: done %s after %d upstream requests, want complete after %d", i+1, done.raw, requests, want)
				}
				if (done.Omitted > 0) != (i+1 >= firstRefused) {
					t.Fatalf("send %d: done leaves out %d messages", i+1, done.Omitted)
				}
				// A reload says what the done said.
				if stored := e.thread(t, u, convID).message(t, ack.MessageID); stored.OmittedMessages != done.Omitted {
					t.Fatalf("send %d: stored answer leaves out %d messages, its done %d", i+1, stored.OmittedMessages, done.Omitted)
				}
			}
			// GET /api/models reports the window the refusal taught.
			var listed struct{ Models []llm.ModelInfo }
			e.rest(t, u.Token, http.MethodGet, "/api/models", nil, http.StatusOK, &listed)
			if len(listed.Models) == 0 || listed.Models[0].ContextTokens != tc.learned ||
				listed.Models[0].ContextTokensLearned != (tc.learned > 0) {
				t.Fatalf("/api/models: %+v; want the window %d, learned", listed.Models, tc.learned)
			}
		})
	}
}

// TestMaxTokensBeyondTheWindow: a conversation whose maxTokens (100) do
// not fit the window of a model nobody lists (60 tokens, vLLM's counting:
// the prompt and max_tokens together) gets its answers: the refusal names
// the window, the answer is asked for again with max_tokens lowered to
// what the window leaves after the prompt, and later answers go so at
// once. The answer is cut at the lower bound, and its done says so
// (finishReason length); the conversation keeps its maxTokens.
func TestMaxTokensBeyondTheWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{fake: fakeai.Options{Defaults: fakeai.Config{Tokens: 20, Context: 60, ContextWords: fakeai.ContextVLLM}}})
	u := e.register(t)
	var created struct{ Conversation persistence.Conversation }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]any{"params": map[string]any{"maxTokens": 100}},
		http.StatusCreated, &created)
	convID := created.Conversation.ID
	cl := e.dial(t, u)
	// 15 words (75 bytes, 29 estimated tokens): max_tokens 60-29-16 = 15.
	for i, want := range []int64{2, 1} {
		before := e.fake.Requests()
		id := fmt.Sprintf("m%d", i+1)
		cl.write(sendFrame(id, convID, strings.Repeat("word ", 15)))
		acked := cl.until(func(f frame) bool { return f.Type == "ack" && string(f.ID) == `"`+id+`"` })
		frames := cl.until(isDone(acked[len(acked)-1].MessageID))
		done := frames[len(frames)-1]
		rec, _ := e.fake.LastRequest()
		if requests := e.fake.Requests() - before; done.Status != "complete" || done.FinishReason != "length" ||
			requests != want || rec.MaxTokens != 15 {
			t.Fatalf("send %d: done %s after %d upstream requests (the last with max_tokens %d); want complete, length, after %d with 15",
				i+1, done.raw, requests, rec.MaxTokens, want)
		}
	}
	var got struct{ Conversation persistence.Conversation }
	e.rest(t, u.Token, http.MethodGet, "/api/conversations/"+convID, nil, http.StatusOK, &got)
	if p := got.Conversation.Params; p == nil || p.MaxTokens == nil || *p.MaxTokens != 100 {
		t.Fatalf("the conversation's params now %+v", p)
	}
}
