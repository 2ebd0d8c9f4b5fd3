package app

import (
	"net/http"
	"testing"

	"chatd/llm/fakeai"
	"chatd/persistence"
)

// TestSamplingRefusedByModel: a conversation tuned with a temperature
// (and the model's default one) gets its answer from a model that refuses
// the parameter, as OpenAI's reasoning models do: asked again without it,
// the other parameters kept.
func TestSamplingRefusedByModel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: smallModel(0)})
	u := e.register(t)
	var created struct{ Conversation persistence.Conversation }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]any{"model": "small",
		"params": map[string]any{"temperature": 0.2, "topP": 0.5}}, http.StatusCreated, &created)
	cl := e.dial(t, u)
	cl.write(sendFrame("a", created.Conversation.ID, "go [[fake tokens=3 refuse=temperature]]"))
	acked := cl.until(func(f frame) bool { return f.Type == "ack" })
	id := acked[len(acked)-1].MessageID
	text, done := answer(t, live(cl.until(isDone(id))), id)
	if done.Status != string(persistence.StatusComplete) || text != fakeai.ExpectedText(fakeai.Config{Tokens: 3}) {
		t.Fatalf("done %s, text %q", done.raw, text)
	}
	rec, _ := e.fake.LastRequest()
	if e.fake.Requests() != 2 || rec.Temperature != nil || rec.TopP == nil || *rec.TopP != 0.5 {
		t.Fatalf("%d requests; the last sent temperature %v top_p %v", e.fake.Requests(), rec.Temperature, rec.TopP)
	}
}
