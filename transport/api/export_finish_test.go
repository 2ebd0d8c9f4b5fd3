package api_test

import (
	"strings"
	"testing"

	"chatd/persistence"
	"chatd/transport/api"
)

// TestExportSaysWhyAnAnswerEnded: a complete answer cut at the model's
// output limit or stopped by the provider's content filter says so under
// it in the Markdown export, in the web client's words
// (frontend/src/lib/finish.ts), as stopped, failed and interrupted
// answers do; one with no text is not a bare heading. Before, such
// answers read as finished ones.
func TestExportSaysWhyAnAnswerEnded(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	for _, tc := range []struct {
		name, reason, text, want string
	}{
		{"output limit", "length", "The list goes on: one, two", "The list goes on: one, two\n\n_Cut off: the model reached its output limit or its context window. If the conversation is long, a new chat may help._\n\n"},
		{"content filter, no text", "content_filter", "", "### 2. Assistant\n\n_Stopped by the provider's content filter._\n\n"},
		{"content filter", "content_filter", "Part of it", "Part of it\n\n_Stopped by the provider's content filter._\n\n"},
		{"stop", "stop", "All of it", "All of it\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, ids := e.conversation(t, owner, "q")
			m := persistence.Message{ConversationID: c.ID, OwnerID: owner, ParentID: ids[0], Role: persistence.RoleAssistant,
				Content: tc.text, Status: persistence.StatusComplete, FinishReason: tc.reason}
			if err := e.store.InsertMessage(t.Context(), &m); err != nil {
				t.Fatal(err)
			}
			_, body := e.get(t, owner, "/api/conversations/"+c.ID+"/export")
			if !strings.HasSuffix(string(body), tc.want) {
				t.Fatalf("export ends\n%q\nwant\n%q", body[max(0, len(body)-len(tc.want)-20):], tc.want)
			}
		})
	}
}

// TestExportSaysWhyAnAnswerWasInterrupted: an interrupted answer's note in
// the Markdown export gives the reason stored with it, as the web client
// (frontend/src/lib/failure.ts) and the JSON export do, where every one
// read "the server stopped while it was being written", also when its end
// could not be saved, a sweep ended it or it never started. One stored
// without a reason keeps that note. One with no text is not told its text
// so far is kept (the web client leaves that out too).
func TestExportSaysWhyAnAnswerWasInterrupted(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	for _, tc := range []struct {
		name, reason, want string
		empty              bool // the answer has no text (or white space alone)
	}{
		{"shutdown", "The server restarted while answering; the text so far is kept.", "_Answer interrupted: The server restarted while answering; the text so far is kept._", false},
		{"end not saved", "The end of the answer could not be saved;\nit was kept as it was last saved.", "_Answer interrupted: The end of the answer could not be saved; it was kept as it was last saved._", false},
		{"swept", "The answer stopped without its end being saved; the text so far is kept.", "_Answer interrupted: The answer stopped without its end being saved; the text so far is kept._", false},
		{"never started", "The answer could not be started; try again.", "_Answer interrupted: The answer could not be started; try again._", false},
		{"no reason stored", "", "_Answer interrupted (the server stopped while it was being written)._", false},
		{"swept with no text", "The answer stopped without its end being saved; the text so far is kept.", "_Answer interrupted: The answer stopped without its end being saved._", true},
		{"shutdown with no text", "The server restarted while answering; the text so far is kept.", "_Answer interrupted: The server restarted while answering._", true},
		{"spaces alone", "The server restarted while answering; the text so far is kept.", "_Answer interrupted: The server restarted while answering._", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, ids := e.conversation(t, owner, "q")
			content := "Part of it"
			if tc.empty {
				content = map[bool]string{true: " \t \n  ", false: ""}[tc.name == "spaces alone"]
			}
			m := persistence.Message{ConversationID: c.ID, OwnerID: owner, ParentID: ids[0], Role: persistence.RoleAssistant,
				Content: content, Status: persistence.StatusInterrupted, Error: tc.reason}
			if err := e.store.InsertMessage(t.Context(), &m); err != nil {
				t.Fatal(err)
			}
			_, body := e.get(t, owner, "/api/conversations/"+c.ID+"/export")
			if tc.empty {
				if !strings.Contains(string(body), tc.want) || strings.Contains(string(body), "kept") {
					t.Fatalf("export\n%q\nwant %q and no text said kept", body, tc.want)
				}
				return
			}
			if want := "Part of it\n\n" + tc.want + "\n\n"; !strings.HasSuffix(string(body), want) {
				t.Fatalf("export ends\n%q\nwant\n%q", body[max(0, len(body)-len(want)-20):], want)
			}
		})
	}
}
