package app

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"chatd/llm"
	"chatd/persistence"
)

// smallModel puts the harness's upstream client behind a router offering
// one model, "small", with a context window, an output bound and defaults.
func smallModel(contextTokens int) func(*Config) {
	return func(c *Config) {
		temp := 0.9
		client := c.Model
		r := llm.NewRouter(llm.RouterOptions{Upstreams: []llm.Upstream{{Name: "fake", Label: "Fake AI", Streamer: client,
			Models: []llm.ModelInfo{{ID: "small", Name: "Small", Default: true, ContextTokens: contextTokens,
				MaxOutputTokens: 100, Defaults: llm.Defaults{Temperature: &temp}}}}}})
		c.Model = struct {
			llm.Streamer
			llm.Catalog
		}{r, r}
	}
}

// TestParamsReachUpstream: parameters set with the conversation (create,
// then patch) reach the upstream's request body; unset ones take the
// model's defaults.
func TestParamsReachUpstream(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: smallModel(0)})
	u := e.register(t)
	var created struct{ Conversation persistence.Conversation }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]any{"model": "small",
		"params": map[string]any{"temperature": 0.2, "topP": 0.5, "maxTokens": 50, "stop": []string{"END", "\n\n"}}},
		http.StatusCreated, &created)
	convID := created.Conversation.ID
	if p := created.Conversation.Params; p == nil || *p.Temperature != 0.2 || *p.MaxTokens != 50 {
		t.Fatalf("created params %+v", p)
	}
	cl := e.dial(t, u)
	ask := func(id string) (temp *float64, topP *float64, maxTokens int, stop []string) {
		t.Helper()
		cl.write(sendFrame(id, convID, "go [[fake tokens=3]]"))
		acked := cl.until(func(f frame) bool { return f.Type == "ack" && string(f.ID) == `"`+id+`"` })
		cl.until(isDone(acked[len(acked)-1].MessageID))
		rec, _ := e.fake.LastRequest()
		return rec.Temperature, rec.TopP, rec.MaxTokens, rec.Stop
	}
	temp, topP, maxTokens, stop := ask("a")
	if *temp != 0.2 || *topP != 0.5 || maxTokens != 50 || !reflect.DeepEqual(stop, []string{"END", "\n\n"}) {
		t.Fatalf("upstream saw temperature %v top_p %v max %d stop %q", *temp, *topP, maxTokens, stop)
	}

	e.rest(t, u.Token, http.MethodPatch, "/api/conversations/"+convID, map[string]any{"params": map[string]any{"temperature": 0}},
		http.StatusOK, nil)
	temp, topP, maxTokens, stop = ask("b")
	if temp == nil || math.Abs(*temp) > 1e-6 || topP != nil || maxTokens != 0 || stop != nil {
		t.Fatalf("after patch: temperature %v top_p %v max %d stop %q", temp, topP, maxTokens, stop)
	}
	e.rest(t, u.Token, http.MethodPatch, "/api/conversations/"+convID, map[string]any{"params": map[string]any{}}, http.StatusOK, nil)
	if temp, _, _, _ = ask("c"); temp == nil || *temp != 0.9 {
		t.Fatalf("without params the model's default temperature 0.9 is used; upstream saw %v", temp)
	}
	if th := e.thread(t, u, convID); th.Conversation.Params != nil {
		t.Fatalf("cleared params read back %+v", th.Conversation.Params)
	}
}

// TestParamsValidation: out-of-range parameters are refused with a 400
// invalid_field naming the parameter, on create and on patch, and nothing
// is stored.
func TestParamsValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: smallModel(0)})
	u := e.register(t)
	var created struct{ Conversation persistence.Conversation }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]any{"params": map[string]any{"temperature": 1}},
		http.StatusCreated, &created)
	tests := []struct {
		params map[string]any
		field  string
	}{
		{map[string]any{"temperature": 2.01}, "params.temperature"},
		{map[string]any{"temperature": -0.1}, "params.temperature"},
		{map[string]any{"topP": 0}, "params.topP"},
		{map[string]any{"topP": 1.5}, "params.topP"},
		{map[string]any{"maxTokens": 0}, "params.maxTokens"},
		{map[string]any{"maxTokens": 101}, "params.maxTokens"}, // the model's bound is 100
		{map[string]any{"stop": []string{"a", "b", "c", "d", "e"}}, "params.stop"},
		{map[string]any{"stop": []string{""}}, "params.stop"},
		{map[string]any{"stop": []string{strings.Repeat("x", 65)}}, "params.stop"},
		{map[string]any{"temperature": "hot"}, "temperature"},
	}
	for i, tc := range tests {
		reqs := []struct{ method, path string }{{http.MethodPatch, "/api/conversations/" + created.Conversation.ID}}
		if i%2 == 0 { // creations are rate limited (10 a minute): half the cases are enough
			reqs = append(reqs, struct{ method, path string }{http.MethodPost, "/api/conversations"})
		}
		for _, req := range reqs {
			var body struct {
				Error struct{ Code, Message string }
			}
			e.rest(t, u.Token, req.method, req.path, map[string]any{"params": tc.params}, http.StatusBadRequest, &body)
			if body.Error.Code != "invalid_field" || !strings.Contains(body.Error.Message, tc.field) {
				t.Fatalf("%s %v: %+v", req.method, tc.params, body.Error)
			}
		}
	}
	if p := e.thread(t, u, created.Conversation.ID).Conversation.Params; p == nil || *p.Temperature != 1 || p.TopP != nil {
		t.Fatalf("refused patches changed params to %+v", p)
	}
	var list struct{ Conversations []persistence.Conversation }
	e.rest(t, u.Token, http.MethodGet, "/api/conversations", nil, http.StatusOK, &list)
	if len(list.Conversations) != 1 {
		t.Fatalf("refused creates stored %d conversations", len(list.Conversations)-1)
	}
}

// TestPromptFitsContextWindow: with a small context window the oldest
// messages are left out of the prompt (the system prompt and the newest
// kept), done and the stored answer say how many; with room for all,
// nothing is left out.
func TestPromptFitsContextWindow(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		window    int
		wantPrune bool
	}{{"small window", 600, true}, {"room for all", 100000, false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, envOptions{tweak: smallModel(tc.window)})
			u := e.register(t)
			var created struct{ Conversation persistence.Conversation }
			e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]any{"systemPrompt": "Be brief.",
				"params": map[string]any{"maxTokens": 100}}, http.StatusCreated, &created)
			convID := created.Conversation.ID
			cl := e.dial(t, u)
			var done frame
			for i := range 5 {
				id := string(rune('a' + i))
				cl.write(sendFrame(id, convID, id+" [[fake tokens=2]] "+strings.Repeat(id, 300)))
				acked := cl.until(func(f frame) bool { return f.Type == "ack" && string(f.ID) == `"`+id+`"` })
				frames := cl.until(isDone(acked[len(acked)-1].MessageID))
				done = frames[len(frames)-1]
			}
			rec, _ := e.fake.LastRequest()
			sent := rec.Messages
			if sent[0].Role != "system" || !strings.HasPrefix(sent[len(sent)-1].Content, "e [[fake") {
				t.Fatalf("prompt %+v", sent)
			}
			if got := len(sent) - 1 + done.Omitted; got != 9 {
				t.Fatalf("%d messages sent and %d left out, want 9 in all", len(sent)-1, done.Omitted)
			}
			if (done.Omitted > 0) != tc.wantPrune {
				t.Fatalf("omittedMessages %d with a window of %d", done.Omitted, tc.window)
			}
			bytes := 0
			for _, m := range sent {
				bytes += len(m.Content)
			}
			if tc.wantPrune && bytes > 3*(tc.window-100-16) {
				t.Fatalf("%d bytes sent into a budget of %d tokens", bytes, tc.window-100-16)
			}
			if m := e.thread(t, u, convID).message(t, done.MessageID); m.OmittedMessages != done.Omitted {
				t.Fatalf("stored omittedMessages %d, done said %d", m.OmittedMessages, done.Omitted)
			}
		})
	}
}

// TestContextLengthRefusal: when the upstream still refuses the prompt as
// too long, the answer ends with a context_length error.
func TestContextLengthRefusal(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	u := e.register(t)
	cl := e.dial(t, u)
	ack := cl.start("[[fake context=3]] far too many words for this tiny model")
	frames := cl.until(isDone(ack.MessageID))
	done := frames[len(frames)-1]
	if code, msg := done.doneError(); done.Status != "error" || code != "context_length" || !strings.Contains(msg, "context window") {
		t.Fatalf("done %s", done.raw)
	}
}

// TestModelsGroupedAndExport: /api/models names each model's upstream and
// lists the upstreams; the markdown export shows parameters and marks
// reasoning.
func TestModelsGroupedAndExport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: smallModel(8192)})
	u := e.register(t)
	var list struct {
		Models    []llm.ModelInfo
		Upstreams []struct{ Name, Label string }
	}
	e.rest(t, u.Token, http.MethodGet, "/api/models", nil, http.StatusOK, &list)
	if len(list.Models) != 1 || list.Models[0].Upstream != "fake" || list.Models[0].ContextTokens != 8192 ||
		len(list.Upstreams) != 1 || list.Upstreams[0].Label != "Fake AI" {
		t.Fatalf("models %+v", list)
	}
	var created struct{ Conversation persistence.Conversation }
	e.rest(t, u.Token, http.MethodPost, "/api/conversations", map[string]any{"params": map[string]any{"temperature": 0.3, "stop": []string{"END"}}},
		http.StatusCreated, &created)
	cl := e.dial(t, u)
	cl.write(sendFrame("x", created.Conversation.ID, "think [[fake tokens=2 reasoning=3]]"))
	acked := cl.until(func(f frame) bool { return f.Type == "ack" })
	cl.until(isDone(acked[len(acked)-1].MessageID))

	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet,
		e.srv.URL+"/api/conversations/"+created.Conversation.ID+"/export", nil)
	req.Header.Set("Authorization", "Bearer "+u.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"- Parameters: temperature 0.3; stop \"END\"\n\n", "> **Reasoning**\n>\n> Let me think \n\nHello"} {
		if !strings.Contains(string(md), want) {
			t.Fatalf("export lacks %q:\n%s", want, md)
		}
	}
	req.URL.RawQuery = "format=json"
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Conversation persistence.Conversation
		Messages     []persistence.Message
	}
	err = json.NewDecoder(res.Body).Decode(&doc)
	res.Body.Close()
	if err != nil || doc.Conversation.Params == nil || *doc.Conversation.Params.Temperature != 0.3 || doc.Messages[1].Reasoning != "Let me think " {
		t.Fatalf("json export %+v, %v", doc, err)
	}
}
