package hub

import (
	"context"
	"errors"
	"sync"
	"testing"

	"chatd/hub/protocol"
	"chatd/llm"
	"chatd/persistence"
)

// pickerModel is fakeModel offering two models, "fake" the default.
type pickerModel struct{ *fakeModel }

func (pickerModel) Models(context.Context) ([]llm.ModelInfo, error) {
	return []llm.ModelInfo{{ID: "fake", Default: true}, {ID: "other"}}, nil
}

// TestRegenerateModel: a regenerate without a model uses the
// conversation's current model, as a send does, not the model of the
// answer it replaces: a user who picked another model in the picker (the
// web client stores the pick as the conversation's model) gets an answer
// from that one. A conversation's model no longer offered falls back to
// the default, a requested model wins, and an unknown one is refused.
func TestRegenerateModel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		convModel string // the conversation's model at the regenerate
		requested string
		want      string // "": refused as unknown_model
	}{
		{"the conversation's model, switched after the answer", "fake", "", "fake"},
		{"the conversation's model, unchanged", "other", "", "other"},
		{"a requested model wins", "fake", "other", "other"},
		{"the conversation's model no longer offered: the default", "retired", "", "fake"},
		{"an unknown requested model", "fake", "nope", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			model := pickerModel{&fakeModel{script: say("hello")}}
			e := &env{store: newMemStore(), model: model.fakeModel}
			e.writer = &memWriter{store: e.store}
			e.h = New(Options{Store: e.store, Writer: e.writer, Model: model})
			runHub(t, e.h, nil)
			sub := newSub("u")
			ctx := context.Background()
			// The first answer comes from "other".
			res, err := e.h.Send(ctx, sub, "u", SendRequest{Content: "hi", Model: "other"})
			if err != nil {
				t.Fatal(err)
			}
			sub.textUntilDone(t, res.MessageID, 0)
			if m := e.stored(t, res.MessageID); m.Model != "other" {
				t.Fatalf("first answer from %q", m.Model)
			}
			if _, err := e.store.UpdateConversation(ctx, "u", res.ConversationID, persistence.ConversationPatch{Model: &tc.convModel}); err != nil {
				t.Fatal(err)
			}
			r, err := e.h.Regenerate(ctx, sub, "u", RegenerateRequest{ConversationID: res.ConversationID, Model: tc.requested})
			if tc.want == "" {
				if pe := (*protocol.Error)(nil); !errors.As(err, &pe) || pe.Code != protocol.CodeUnknownModel {
					t.Fatalf("err %v, want %s", err, protocol.CodeUnknownModel)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sub.textUntilDone(t, r.MessageID, 0)
			m := e.stored(t, r.MessageID)
			model.mu.Lock()
			asked := model.requests[len(model.requests)-1].Model
			model.mu.Unlock()
			if m.Model != tc.want || asked != tc.want {
				t.Fatalf("regenerated answer stored as from %q, model asked %q; want %q", m.Model, asked, tc.want)
			}
		})
	}
}

// TestRefusedRegenerateKeepsTheRunningAnswer: a regenerate refused for
// its own fields (an unknown model, a message that is no answer or not
// in the conversation) is refused before anything else: the answer
// running in the conversation goes on and completes, untouched.
func TestRefusedRegenerateKeepsTheRunningAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  func(res Result) RegenerateRequest
		code string
	}{
		{"unknown model", func(res Result) RegenerateRequest {
			return RegenerateRequest{ConversationID: res.ConversationID, Model: "nope"}
		}, protocol.CodeUnknownModel},
		{"a user message", func(res Result) RegenerateRequest {
			return RegenerateRequest{ConversationID: res.ConversationID, MessageID: res.UserMessageID}
		}, protocol.CodeInvalidField},
		{"a message not in the conversation", func(res Result) RegenerateRequest {
			return RegenerateRequest{ConversationID: res.ConversationID, MessageID: persistence.NewID()}
		}, protocol.CodeNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			feed := make(tap)
			e := newEnv(t, Options{}, feed.script)
			sub := newSub("u")
			res := e.send(t, sub, "hi")
			feed <- "first "
			_, err := e.h.Regenerate(context.Background(), nil, "u", tc.req(res))
			if pe := (*protocol.Error)(nil); !errors.As(err, &pe) || pe.Code != tc.code {
				t.Fatalf("err %v, want %s", err, tc.code)
			}
			// A stopped answer's done would be queued by now: the
			// regenerate waits for it before going on.
			sofar := ""
			for len(sub.frames) > 0 {
				f := <-sub.frames
				if f.IsDone(res.MessageID) {
					t.Fatalf("the running answer was stopped: %s", f.Data)
				}
				if f.Type == protocol.TypeDelta {
					sofar += decode(t, f).Text
				}
			}
			feed <- "and last"
			close(feed)
			text, done := sub.textUntilDone(t, res.MessageID, int64(len(sofar)))
			if sofar+text != "first and last" || done.Status != "complete" {
				t.Fatalf("the running answer ended %s with %q", done.Status, sofar+text)
			}
		})
	}
}

// TestRegenerateWhileTheAnswerEnds: a regenerate that reads the
// conversation once the running answer's end is stored, but before the
// answer has let the conversation go, stops it (it is already ending) and
// answers again, as a regenerate of a running answer does, instead of
// being refused with generation_running.
func TestRegenerateWhileTheAnswerEnds(t *testing.T) {
	t.Parallel()
	feed := make(tap)
	var answerCtx context.Context
	e := newEnv(t, Options{}, func(ctx context.Context, req llm.Request, onDelta func(string)) (llm.Result, error) {
		if answerCtx == nil {
			answerCtx = ctx // the first answer's: cancelled when a regenerate stops it
			return feed.script(ctx, req, onDelta)
		}
		onDelta("again")
		return llm.Result{FinishReason: "stop"}, nil
	})
	stored, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	e.writer.afterFinish = func() {
		once.Do(func() {
			close(stored)
			<-release // the answer's end is stored; it still holds the conversation
		})
	}
	sub := newSub("u")
	res := e.send(t, sub, "hi")
	feed <- "first"
	close(feed)
	<-stored
	if m := e.stored(t, res.MessageID); m.Status != persistence.StatusComplete {
		t.Fatalf("stored status %s", m.Status)
	}
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		r, err := e.h.Regenerate(context.Background(), sub, "u", RegenerateRequest{ConversationID: res.ConversationID})
		done <- outcome{r, err}
	}()
	select {
	case o := <-done:
		close(release)
		t.Fatalf("the regenerate did not wait for the answer ending: %+v, %v", o.res, o.err)
	case <-answerCtx.Done(): // stopped: the answer may end
		close(release)
	}
	o := <-done
	if o.err != nil {
		t.Fatalf("Regenerate: %v", o.err)
	}
	if text, d := sub.textUntilDone(t, o.res.MessageID, 0); text != "again" || d.Status != "complete" {
		t.Fatalf("the new answer ended %s with %q", d.Status, text)
	}
}
