package hub

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// retiringModel is fakeModel offering "fake" (the default) and "other"
// until other is retired: then "other" is no longer listed, and Unlisted
// says why (down: an upstream cannot list its models now) or nothing
// (removed from the configuration).
type retiringModel struct {
	*fakeModel
	mu      sync.Mutex
	retired bool
	down    error
}

func (m *retiringModel) Models(context.Context) ([]llm.ModelInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.retired {
		return []llm.ModelInfo{{ID: "fake", Default: true}}, nil
	}
	return []llm.ModelInfo{{ID: "fake", Default: true}, {ID: "other"}}, nil
}

func (m *retiringModel) Unlisted() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.down
}

// retire stops listing "other", for the reason down (nil: removed).
func (m *retiringModel) retire(down error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.retired, m.down = true, down
}

// lastAsked is the model of the last request upstream.
func (m *retiringModel) lastAsked() string {
	m.fakeModel.mu.Lock()
	defer m.fakeModel.mu.Unlock()
	return m.requests[len(m.requests)-1].Model
}

// ackFields are what an ack says about the model that answers.
type ackFields struct {
	MessageID     string `json:"messageId"`
	ReplacedModel string `json:"replacedModel"`
	Model         string `json:"model"`
}

func decodeAck(t *testing.T, f *protocol.Frame) ackFields {
	t.Helper()
	if f.Type != protocol.TypeAck {
		t.Fatalf("got a %s frame %s, want the ack", f.Type, f.Data)
	}
	var a ackFields
	if err := json.Unmarshal(f.Data, &a); err != nil {
		t.Fatalf("decode %s: %v", f.Data, err)
	}
	return a
}

// convWrites is a Store counting its UpdateConversation calls.
type convWrites struct {
	*memStore
	n atomic.Int32
}

func (s *convWrites) UpdateConversation(ctx context.Context, ownerID, id string, p persistence.ConversationPatch) (persistence.Conversation, error) {
	s.n.Add(1)
	return s.memStore.UpdateConversation(ctx, ownerID, id, p)
}

// retiredEnv is a hub over a retiringModel with a conversation of "u"
// answered once by "other", its model; tab is another connection of "u",
// following no conversation; writes counts the conversation's updates.
func retiredEnv(t *testing.T) (e *env, model *retiringModel, sub, tab *fakeSub, first Result, writes *convWrites) {
	t.Helper()
	model = &retiringModel{fakeModel: &fakeModel{script: say("hello")}}
	e = &env{store: newMemStore(), model: model.fakeModel}
	e.writer = &memWriter{store: e.store}
	writes = &convWrites{memStore: e.store}
	e.h = New(Options{Store: writes, Writer: e.writer, Model: model})
	runHub(t, e.h, nil)
	sub, tab = newSub("u"), newSub("u")
	e.h.Register(tab)
	first, err := e.h.Send(context.Background(), sub, "u", SendRequest{Content: "hi", Model: "other"})
	if err != nil {
		t.Fatal(err)
	}
	sub.textUntilDone(t, first.MessageID, 0)
	for len(tab.frames) > 0 {
		<-tab.frames // the conversation's creation
	}
	if c, _ := e.store.Conversation(context.Background(), "u", first.ConversationID); c.Model != "other" {
		t.Fatalf("conversation created with model %q", c.Model)
	}
	return e, model, sub, tab, first, writes
}

// answerRequests are a send and a regenerate without a model, in conv.
var answerRequests = []struct {
	name string
	do   func(h *Hub, sub Subscriber, conv string) (Result, error)
}{
	{"send", func(h *Hub, sub Subscriber, conv string) (Result, error) {
		return h.Send(context.Background(), sub, "u", SendRequest{ConversationID: conv, Content: "again"})
	}},
	{"regenerate", func(h *Hub, sub Subscriber, conv string) (Result, error) {
		return h.Regenerate(context.Background(), sub, "u", RegenerateRequest{ConversationID: conv})
	}},
}

// TestRemovedModelIsReplacedAndTold: a send or regenerate without a model
// in a conversation whose model is no longer offered (removed from the
// configuration: the catalog lists every upstream and not it) is
// answered by the default model, and says so: the ack names the model
// replaced and the one answering, the answer is stored and announced as
// the default's. The conversation keeps its model (nothing is written to
// it, before the answer starts or after: a model missing for a while
// comes back, a PATCH meanwhile is not overwritten), and the tabs get no
// conversation frame beyond the usual one of a send or regenerate, naming
// it still. So the next answer is replaced and told again.
func TestRemovedModelIsReplacedAndTold(t *testing.T) {
	t.Parallel()
	for _, tc := range answerRequests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, model, sub, tab, first, writes := retiredEnv(t)
			model.retire(nil)
			before := writes.n.Load()
			atStart := make(chan int32, 2)
			model.script = func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
				atStart <- writes.n.Load()
				return say("hello")(ctx, req, onDelta)
			}
			for i := range 2 {
				res, err := tc.do(e.h, sub, first.ConversationID)
				if err != nil || res.ReplacedModel != "other" || res.Model != "fake" {
					t.Fatalf("%s %d: %+v, %v; want other replaced by fake", tc.name, i, res, err)
				}
				if a := decodeAck(t, sub.next(t)); a.ReplacedModel != "other" || a.Model != "fake" {
					t.Fatalf("ack %d says replaced %q by %q, want other by fake", i, a.ReplacedModel, a.Model)
				}
				announced := ""
				for announced == "" {
					if f := decode(t, sub.next(t)); f.Type == protocol.TypeMessage && f.Message.ID == res.MessageID {
						announced = f.Message.Model
					}
				}
				sub.textUntilDone(t, res.MessageID, 0)
				if m := e.stored(t, res.MessageID); announced != "fake" || m.Model != "fake" || model.lastAsked() != "fake" {
					t.Fatalf("answer announced from %q, stored from %q, asked of %q; want fake", announced, m.Model, model.lastAsked())
				}
				if n := <-atStart; n != before {
					t.Fatalf("%d conversation writes before the answer started", n-before)
				}
				if c, _ := e.store.Conversation(context.Background(), "u", first.ConversationID); c.Model != "other" || writes.n.Load() != before {
					t.Fatalf("the conversation's model became %q (%d writes), want other kept", c.Model, writes.n.Load()-before)
				}
				// The usual conversation frame of a send or regenerate.
				if f := tab.expect(t, protocol.TypeConversation); f.Action != "updated" || f.Conversation.Model != "other" {
					t.Fatalf("other tab told %s with model %q, want updated with other", f.Action, f.Conversation.Model)
				}
				tab.quiet(t)
			}
		})
	}
}

// TestModelOfADownUpstreamIsRefused: a send or regenerate without a model
// in a conversation whose model is not listed while an upstream cannot
// list its models (the model may be one of them) is refused as
// unknown_model, naming the model and why (a refusal the user must see:
// clients repeat an unavailable send unseen), instead of being answered
// by another model unasked: nothing is stored or asked upstream, and the
// conversation keeps its model. Picking a model explicitly still answers.
func TestModelOfADownUpstreamIsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range answerRequests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, model, sub, tab, first, _ := retiredEnv(t)
			model.retire(&llm.Error{Kind: llm.KindConnection, Message: "Upstream Two cannot list its models: Could not reach the model provider."})
			asked := model.requestCount()
			_, err := tc.do(e.h, sub, first.ConversationID)
			var pe *protocol.Error
			if !errors.As(err, &pe) || pe.Code != protocol.CodeUnknownModel ||
				!strings.Contains(pe.Message, `"other"`) || !strings.Contains(pe.Message, "Upstream Two cannot list its models") {
				t.Fatalf("err %v, want %s naming the model and why", err, protocol.CodeUnknownModel)
			}
			if msgs, _ := e.store.Messages(context.Background(), "u", first.ConversationID); len(msgs) != 2 || model.requestCount() != asked {
				t.Fatalf("%d messages stored, %d requests upstream; want the first exchange only", len(msgs), model.requestCount())
			}
			if c, _ := e.store.Conversation(context.Background(), "u", first.ConversationID); c.Model != "other" {
				t.Fatalf("the conversation's model became %q", c.Model)
			}
			tab.quiet(t)

			res, err := e.h.Send(context.Background(), sub, "u", SendRequest{ConversationID: first.ConversationID, Content: "x", Model: "fake"})
			if err != nil {
				t.Fatalf("send naming a listed model: %v", err)
			}
			if a := decodeAck(t, sub.next(t)); a.ReplacedModel != "" {
				t.Fatalf("ack of a requested model says replaced %q", a.ReplacedModel)
			}
			sub.textUntilDone(t, res.MessageID, 0)
		})
	}
}

// downCatalog is an upstream's model list that cannot be had.
type downCatalog struct{}

func (downCatalog) Models(context.Context) ([]llm.ModelInfo, error) {
	return nil, &llm.Error{Kind: llm.KindConnection, Message: "Could not reach the model provider."}
}

// TestConversationModelThroughTheRouter: the two cases as the real Router
// makes them. A conversation's model that an upstream listing its models
// (down since start) may hold is refused as unknown_model, naming that
// upstream; a model no upstream configures, with every list known, is
// replaced by the default.
func TestConversationModelThroughTheRouter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		catalog llm.Catalog // of the upstream serving "fake"; nil: configured models only
		refused bool
	}{
		{"an upstream down since start", downCatalog{}, true},
		{"every list known", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := &fakeModel{script: say("hello")}
			router := llm.NewRouter(llm.RouterOptions{FirstListWait: waitTimeout, Logger: slog.New(slog.DiscardHandler), Upstreams: []llm.Upstream{{
				Name: "up", Label: "Upstream Two", Streamer: fake, Catalog: tc.catalog,
				Models: []llm.ModelInfo{{ID: "fake", Name: "fake", Default: true}},
			}}})
			t.Cleanup(router.Close)
			e := &env{store: newMemStore(), model: fake}
			e.writer = &memWriter{store: e.store}
			e.h = New(Options{Store: e.store, Writer: e.writer, Model: router})
			runHub(t, e.h, nil)
			sub := newSub("u")
			first := e.send(t, sub, "hi")
			sub.textUntilDone(t, first.MessageID, 0)
			gone := "up-model-gone"
			if _, err := e.store.UpdateConversation(context.Background(), "u", first.ConversationID, persistence.ConversationPatch{Model: &gone}); err != nil {
				t.Fatal(err)
			}
			res, err := e.h.Send(context.Background(), sub, "u", SendRequest{ConversationID: first.ConversationID, Content: "again"})
			if tc.refused {
				if pe := (*protocol.Error)(nil); !errors.As(err, &pe) || pe.Code != protocol.CodeUnknownModel ||
					!strings.Contains(pe.Message, "Upstream Two cannot list its models: Could not reach the model provider") {
					t.Fatalf("err %v, want %s naming the upstream", err, protocol.CodeUnknownModel)
				}
				return
			}
			if err != nil || res.ReplacedModel != gone || res.Model != "fake" {
				t.Fatalf("send: %+v, %v; want %s replaced by fake", res, err, gone)
			}
			sub.textUntilDone(t, res.MessageID, 0)
		})
	}
}

// TestRepeatTellsReplacedModel: a send or regenerate answered by the
// default in place of the conversation's model, no longer offered, and
// repeated with its clientMessageId (its ack lost with the connection) is
// acked as the first was: replacedModel names the conversation's model,
// model the default that answered, in the ack and the Result. A repeat of
// a request that named the default itself says nothing was replaced.
func TestRepeatTellsReplacedModel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		regen   bool
		model   string // the request's
		replace bool
	}{
		{"send", false, "", true},
		{"regenerate", true, "", true},
		{"send naming the default", false, "fake", false},
		{"regenerate naming the default", true, "fake", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e, model, sub, _, first, _ := retiredEnv(t)
			model.retire(nil)
			do := func(sub Subscriber) (Result, error) {
				if tc.regen {
					return e.h.Regenerate(context.Background(), sub, "u", RegenerateRequest{
						ConversationID: first.ConversationID, Model: tc.model, ClientMessageID: "key-1"})
				}
				return e.h.Send(context.Background(), sub, "u", SendRequest{
					ConversationID: first.ConversationID, Content: "again", Model: tc.model, ClientMessageID: "key-1"})
			}
			res, err := do(sub)
			if err != nil {
				t.Fatal(err)
			}
			sub.textUntilDone(t, res.MessageID, 0)
			want := ackFields{MessageID: res.MessageID, Model: tc.model}
			if tc.replace {
				want = ackFields{MessageID: res.MessageID, ReplacedModel: "other", Model: "fake"}
			}
			again := newSub("u") // the connection that lost the first ack
			rep, err := do(again)
			if err != nil || !rep.Repeated || rep.MessageID != res.MessageID {
				t.Fatalf("repeat: %+v, %v; want a repeat of %s", rep, err, res.MessageID)
			}
			if rep.ReplacedModel != want.ReplacedModel || (tc.replace && rep.Model != want.Model) {
				t.Fatalf("repeat's Result says replaced %q by %q, want %q by %q", rep.ReplacedModel, rep.Model, want.ReplacedModel, want.Model)
			}
			a := decodeAck(t, again.next(t))
			if tc.replace && a != want || !tc.replace && a.ReplacedModel != "" {
				t.Fatalf("repeat's ack %+v, want %+v", a, want)
			}
			if f := again.expect(t, protocol.TypeMessage); f.Message.ID != res.MessageID || f.Message.Model != "fake" {
				t.Fatalf("repeat sent %+v, want the answer by fake", f.Message)
			}
		})
	}
}
