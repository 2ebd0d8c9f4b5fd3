package api_test

import (
	"strings"
	"testing"

	"chatd/persistence"
	"chatd/transport/api"
)

// TestExportClosesTheOpenFence: an answer that ends inside a code fence
// (cut off, stopped) gets the fence that closes it, so it cannot swallow
// the rest of the Markdown export: a fence of backticks or tildes, closed
// only by a line of the same character at least as long with nothing
// after it (CommonMark), never by a shorter one or one with an info
// string. Before, any line starting with three backticks toggled the
// fence and the closing fence was always three backticks: a cut-off
// answer inside a ```` or ~~~ fence, or after a ```python line inside
// one, was left open and took the following messages into its code.
// As CommonMark reads them: a line indented 4 columns past its container
// (the document, or the list item it is in) neither opens nor closes a
// fence; a fence in a list item is closed at the item's content column
// (a closing fence at column 0 ended the item and opened a new fence);
// and an HTML block that only its end marker ends (a comment, <script>,
// <pre>, <style>, <textarea>, <?, <!X, CDATA) gets that marker, while
// one that a blank line ends (<div>, a tag alone on its line) holds what
// follows it until then. Each output was checked to render the next
// heading as a heading (marked, the web client's renderer, as 60,000
// random texts were: the few failing were marked's own departures from
// CommonMark: an upper-case <DIV> that does not interrupt a paragraph, a
// closing fence followed by a tab that does not close, a list at 2 that
// interrupts a quote's paragraph).
func TestExportClosesTheOpenFence(t *testing.T) {
	t.Parallel()
	e := newAPIEnv(t, api.ConversationOptions{})
	owner := e.user(t)
	for _, tc := range []struct {
		name, text, closing string
	}{
		{"backticks, open", "```go\nfunc main() {", "```\n"},
		{"backticks, closed", "```go\nx\n```", ""},
		{"tildes, open", "~~~\ncode", "~~~\n"},
		{"four backticks around three, open", "````markdown\n```python\nprint()", "````\n"},
		{"a shorter fence does not close", "````\n```\nstill code", "````\n"},
		{"an info string does not close", "```\ncode\n```python\nmore", "```\n"},
		{"tildes do not close backticks", "```\ncode\n~~~", "```\n"},
		{"inline code is no fence", "``` `x` ``` and on", ""},
		{"a longer fence closes", "```\ncode\n`````  ", ""},
		{"indented fence, open", "  ~~~~\nx", "~~~~\n"},
		{"indented code is no fence", "Indent it:\n\n    ```\n    code", ""},
		{"an indented fence does not close", "```markdown\nnested:\n    ```", "```\n"},
		{"a fence in a list item, open", "1. Step:\n\n   ```sh\n   make", "   ```\n"},
		{"a fence in a list item, closed", "1. Step:\n\n    ```sh\n    make\n     ```", ""},
		{"a fence in a nested item, open", "- a\n  - b\n    ```\n    x", "    ```\n"},
		{"a fence on an item's line, open", "- ```go\n  x", "  ```\n"},
		{"indented code in a list item", "- a\n\n      ```\n      x", ""},
		{"a list item ended by a fence", "- a\n```\nx", "```\n"},
		{"a fence closed by its item's end", "- ```\n  x\nafter", ""},
		{"a lazy line keeps the item", "- a\nlazy\n  ```\n  x", "  ```\n"},
		{"no item after a paragraph at 2", "text\n2. a\n   ```\n   x", "```\n"},
		{"a quoted fence ends with the quote", "> ```\n> x", ""},
		{"a comment, open", "You write:\n\n<!-- a comment", "-->\n"},
		{"a comment, closed on its line", "<!-- a --> b", ""},
		{"a comment, closed later", "<!--\nx -- y\n-->", ""},
		{"a script, open", "<script>\nlet x", "</script>\n"},
		{"a pre, open, upper case", "<PRE class=x>\ncode", "</pre>\n"},
		{"a style, closed", "<style>\np {}\n</STYLE>", ""},
		{"a processing instruction, open", "<?php\necho", "?>\n"},
		{"a declaration, open", "<!DOCTYPE html", ">\n"},
		{"a CDATA section, open", "<![CDATA[\nx", "]]>\n"},
		{"an HTML block in a fence is code", "```\n<!-- x\n```", ""},
		{"a comment in a list item, open", "- <!-- x", "  -->\n"},
		{"a comment interrupts a paragraph", "text\n<!-- x", "-->\n"},
		{"<?> leaves it open (marked)", "<?>\nx", "?>\n"},
		{"<?> in a list item leaves it open", "- <?>", "  ?>\n"},
		{"<!--> in a list item is a whole comment", "- <!-->\n  x", ""},
		{"<!--> is a whole comment", "<!-->\nx", ""},
		{"an HTML block of type 6 holds the fence", "<div>\n```", ""},
		{"an HTML block of type 7 holds the fence", "</span>\n```", ""},
		{"a blank line ends an HTML block of type 6", "<div>\n\n```", "```\n"},
		{"an empty item ends at a blank line", "*\n\n   ~~~\nx", "~~~\n"},
		{"a long line ends the comment", "<!-- x\n" + strings.Repeat("y", 300) + "-->", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			body := exportedAnswer(t, e, owner, tc.text)
			want := "### 2. Assistant\n\n" + tc.text + "\n" + tc.closing + "\n"
			if !strings.HasSuffix(string(body), want) {
				t.Fatalf("export ends\n%q\nwant\n%q", body[max(0, len(body)-len(want)-20):], want)
			}
		})
	}
}

// exportedAnswer stores, in a new conversation of owner, a question and a
// complete answer of text, and returns the conversation's Markdown export.
func exportedAnswer(t *testing.T, e *apiEnv, owner, text string) []byte {
	t.Helper()
	c, ids := e.conversation(t, owner, "q")
	m := persistence.Message{ConversationID: c.ID, OwnerID: owner, ParentID: ids[0], Role: persistence.RoleAssistant,
		Content: text, Status: persistence.StatusComplete}
	if err := e.store.InsertMessage(t.Context(), &m); err != nil {
		t.Fatal(err)
	}
	_, body := e.get(t, owner, "/api/conversations/"+c.ID+"/export")
	return body
}
