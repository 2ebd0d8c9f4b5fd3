package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"chatd/persistence"
	"chatd/transport/api"
)

// TestExportReasoning: the reasoning an export reads in pieces comes out
// as the whole of it would: in the JSON export, each message exactly as
// json.Marshal encodes it (a reasoning field after the content, none
// when empty); in the Markdown export, a quoted block headed Reasoning,
// its lines quoted one by one, empty lines as ">", control characters
// but tab escaped, the trailing newlines dropped, and no block for a
// reasoning of newlines only. The long rows span several pieces
// (persistence.ContentPieceBytes), with newlines at their edges.
func TestExportReasoning(t *testing.T) {
	t.Parallel()
	line := strings.Repeat("x", 1023) + "\n" // pieces of 256 KiB end on a newline
	for _, tc := range []struct {
		name, reasoning string
	}{
		{"none", ""},
		{"one line", "Let me think"},
		{"lines, empty lines, trailing newlines", "first\n\nsecond\t<tab>\n\n\n"},
		{"leading newlines", "\n\nlate start"},
		{"newlines only", "\n\n\n"},
		{"controls and CRLF", "bell\a esc\x1b del\x7f c1\u0085 crlf\r\nend"},
		{"CRLF lines", "first\r\n\r\nsecond\r\n\r\n"},
		{"carriage returns alone", "a\rb\r\r\nc\r"},
		{"CRLF cut between pieces", strings.Repeat("x", persistence.ContentPieceBytes-1) + "\r\nafter"},
		{"carriage return alone at a piece's end", strings.Repeat("x", persistence.ContentPieceBytes-1) + "\rafter"},
		{"unicode", "中文 é 🙂\n\"quoted\" <html> & more"},
		{"long, pieces end on newlines", strings.Repeat(line, 700) + "\n\nlast"},
		{"long, pieces end inside lines", strings.Repeat("ab 中文 🙂 ", 50000) + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newAPIEnv(t, api.ConversationOptions{})
			owner := e.user(t)
			c, ids := e.conversation(t, owner, "why?")
			m := persistence.Message{ConversationID: c.ID, OwnerID: owner, ParentID: ids[0], Role: persistence.RoleAssistant,
				Content: "because", Reasoning: tc.reasoning, Status: persistence.StatusComplete}
			if err := e.store.InsertMessage(t.Context(), &m); err != nil {
				t.Fatal(err)
			}
			stored, err := e.store.Messages(t.Context(), owner, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			_, body := e.get(t, owner, "/api/conversations/"+c.ID+"/export?format=json")
			var doc struct{ Messages []json.RawMessage }
			if err := json.Unmarshal(body, &doc); err != nil || len(doc.Messages) != 2 {
				t.Fatalf("json export (%v): %.300s", err, body)
			}
			for i, raw := range doc.Messages {
				want, _ := json.Marshal(stored[i])
				if !bytes.Equal(raw, want) {
					t.Fatalf("json export's message %d:\n%.300s\nwant\n%.300s", i, raw, want)
				}
			}
			_, body = e.get(t, owner, "/api/conversations/"+c.ID+"/export")
			want := "### 2. Assistant\n\n" + quoted(tc.reasoning) + "because\n\n"
			if !strings.Contains(string(body), want) {
				t.Fatalf("markdown export lacks\n%.300q\nin\n%.600q", want, body)
			}
		})
	}
}

// quoted is the Markdown export's block for reasoning r, rendered from r
// whole: a CRLF is a line end, a carriage return alone a control picture.
func quoted(r string) string {
	r = strings.TrimRight(strings.ReplaceAll(r, "\r\n", "\n"), "\n")
	if r == "" {
		return ""
	}
	var b strings.Builder
	b.WriteString("> **Reasoning**\n>\n")
	for _, line := range strings.Split(r, "\n") {
		if line == "" {
			b.WriteString(">\n")
			continue
		}
		fmt.Fprintf(&b, "> %s\n", strings.NewReplacer("\a", "␇", "\x1b", "␛", "\x7f", "␡", "\u0085", `\u0085`, "\r", "␍").Replace(line))
	}
	b.WriteString("\n")
	return b.String()
}

// TestExportSystemPromptCRLF: the Markdown export quotes a system prompt
// written with CRLF line ends line by line, as one with LF, and a carriage
// return alone as its control picture. Before, each line ended with a
// visible "␍".
func TestExportSystemPromptCRLF(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	c := persistence.Conversation{OwnerID: owner, Title: "crlf", SystemPrompt: "be brief\r\n\r\nand kind\rindeed\r\n"}
	if err := e.store.CreateConversation(t.Context(), &c); err != nil {
		t.Fatal(err)
	}
	_, body := e.get(t, owner, "/api/conversations/"+c.ID+"/export")
	want := "## System prompt\n\n> be brief\n> \n> and kind␍indeed\n> \n\n"
	if !strings.Contains(string(body), want) {
		t.Fatalf("markdown export lacks\n%q\nin\n%.600q", want, body)
	}
}

// TestExportTextCRLFAcrossPieces: the Markdown export takes a CRLF as one
// line end in an answer's text also when the store's pieces
// (persistence.ContentPieceBytes) cut it between its two bytes, and shows
// a carriage return alone, at a piece's end or the text's, as "␍".
// Before, the \r ending a piece was shown as "␍" whatever followed.
func TestExportTextCRLFAcrossPieces(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	long := strings.Repeat("x", persistence.ContentPieceBytes-1)
	for _, tc := range []struct {
		name, text, want string
	}{
		{"CRLF cut between pieces", long + "\r\nafter", long + "\nafter\n\n"},
		{"carriage return alone at a piece's end", long + "\rafter", long + "␍after\n\n"},
		{"carriage return alone at the end", "end\r", "end␍\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := exportedAnswer(t, e, owner, tc.text)
			if want := "### 2. Assistant\n\n" + tc.want; !strings.HasSuffix(string(body), want) {
				t.Fatalf("export ends\n%q\nwant it to end\n%q", body[max(0, len(body)-60):], want[max(0, len(want)-60):])
			}
		})
	}
}
