package hub

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"chatd/persistence"
)

// TestRunningAnswerKeepsOnlyItsPrompt: an answer keeps what its prompt
// was built from until it ends (to fit it again after a refusal, and
// through its title job), and a conversation may have tens of thousands
// of messages with the reasoning of each answer. Once the answer has
// started, what it keeps is the path that fits HistoryBytes (the model lists no window), content only:
// no reasoning, no other branch, no message older than the cut, for a send
// and for a regenerate alike. The path kept still builds the prompt the
// whole conversation builds.
func TestRunningAnswerKeepsOnlyItsPrompt(t *testing.T) {
	const (
		chars     = 1000
		size      = 100 // bytes of every message's content: 10 fit in chars
		exchanges = 40
		reasoning = "REASONING"
	)
	pad := func(s string) string { return s + strings.Repeat(".", size-len(s)) }
	tests := []struct {
		name  string
		start func(e *env, convID string) (Result, error)
	}{
		{"send", func(e *env, convID string) (Result, error) {
			return e.h.Send(context.Background(), newSub("u"), "u", SendRequest{ConversationID: convID, Content: pad("new")})
		}},
		{"regenerate", func(e *env, convID string) (Result, error) {
			return e.h.Regenerate(context.Background(), newSub("u"), "u", RegenerateRequest{ConversationID: convID})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			answer := make(tap)
			e := newEnv(t, Options{HistoryBytes: chars}, answer.script)
			t.Cleanup(func() { close(answer) })
			ctx := context.Background()
			conv := persistence.Conversation{OwnerID: "u", SystemPrompt: "be brief"}
			if err := e.store.CreateConversation(ctx, &conv); err != nil {
				t.Fatal(err)
			}
			// An edit of the first message, long and on another branch,
			// then the exchanges, the latest answer last.
			var ms []*persistence.Message
			parent := ""
			for i := range exchanges {
				u := &persistence.Message{ID: persistence.NewID(), ParentID: parent, Role: persistence.RoleUser,
					Content: pad(fmt.Sprintf("user %d", i))}
				a := &persistence.Message{ID: persistence.NewID(), ParentID: u.ID, Role: persistence.RoleAssistant,
					Content: pad(fmt.Sprintf("answer %d", i)), Reasoning: strings.Repeat(reasoning, 600/len(reasoning))}
				ms, parent = append(ms, u, a), a.ID
				if i == 0 {
					ms = append(ms, &persistence.Message{ID: persistence.NewID(), Role: persistence.RoleUser,
						Content: strings.Repeat("other branch ", 1000)})
				}
			}
			for _, m := range ms {
				m.ConversationID, m.OwnerID, m.Status = conv.ID, "u", persistence.StatusComplete
			}
			if err := e.store.InsertMessages(ctx, ms...); err != nil {
				t.Fatal(err)
			}

			res, err := tt.start(e, conv.ID)
			if err != nil {
				t.Fatalf("start the answer: %v", err)
			}
			c := e.h.lookup(conv.ID)
			c.mu.Lock()
			src := c.gen.src
			c.mu.Unlock()

			kept := reachableStrings(reflect.ValueOf(src))
			total := 0
			for _, s := range kept {
				total += len(s)
				if strings.Contains(s, reasoning) || strings.Contains(s, "other branch") {
					t.Fatalf("the running answer keeps %.40q...: neither reasoning nor another branch is sent", s)
				}
			}
			if limit := chars + len(conv.SystemPrompt); total > limit {
				t.Fatalf("the running answer keeps %d bytes of text (%d strings), want at most %d: HistoryBytes and the system prompt",
					total, len(kept), limit)
			}

			all, err := e.store.Messages(ctx, "u", conv.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, tokens := range []int{0, 150} { // 150: the leaf and two more (38 tokens each, 7 of system prompt)
				want, wantOmitted := buildPrompt(conv.SystemPrompt, all, res.UserMessageID, promptLimits{bytes: chars, tokens: tokens})
				got, omitted := src.build(tokens)
				if show(got) != show(want) || omitted != wantOmitted {
					t.Fatalf("within %d tokens the kept source builds %s (%d left out), the conversation %s (%d)",
						tokens, show(got), omitted, show(want), wantOmitted)
				}
			}
		})
	}
}

// reachableStrings returns every string v holds, through its fields,
// elements, map keys and values, pointers and interfaces; not those of a
// named string type (roles, statuses: constants, no text of a message).
func reachableStrings(v reflect.Value) []string {
	switch v.Kind() {
	case reflect.String:
		if v.Type() != reflect.TypeFor[string]() {
			return nil
		}
		return []string{v.String()}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return reachableStrings(v.Elem())
	case reflect.Struct:
		var out []string
		for i := range v.NumField() {
			out = append(out, reachableStrings(v.Field(i))...)
		}
		return out
	case reflect.Slice, reflect.Array:
		var out []string
		for i := range v.Len() {
			out = append(out, reachableStrings(v.Index(i))...)
		}
		return out
	case reflect.Map:
		var out []string
		for it := v.MapRange(); it.Next(); {
			out = append(out, reachableStrings(it.Key())...)
			out = append(out, reachableStrings(it.Value())...)
		}
		return out
	}
	return nil
}
