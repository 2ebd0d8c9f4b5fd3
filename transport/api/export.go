package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"chatd/persistence"
	"chatd/transport/httperr"
)

// ExportFormat is the "format" field of a JSON export.
const ExportFormat = "chatd.conversation.v1"

// jsonExport is the document GET .../export?format=json downloads.
type jsonExport struct {
	Format       string                   `json:"format"`
	ExportedAt   time.Time                `json:"exportedAt"`
	Conversation persistence.Conversation `json:"conversation"`
	Messages     []persistence.Message    `json:"messages"`
}

func (h *Conversations) export(c *gin.Context) {
	format := c.DefaultQuery("format", "markdown")
	if format != "markdown" && format != "json" {
		httperr.AbortError(c, httperr.InvalidField("format", "must be markdown or json"))
		return
	}
	t, ok := h.loadThread(c)
	if !ok {
		return
	}
	now := time.Now().UTC()
	var body []byte
	var ctype, ext string
	if format == "json" {
		body, _ = json.MarshalIndent(jsonExport{Format: ExportFormat, ExportedAt: now,
			Conversation: t.Conversation, Messages: t.Messages}, "", "  ")
		ctype, ext = "application/json; charset=utf-8", "json"
	} else {
		body = markdown(t.Conversation, t.Messages, now)
		ctype, ext = "text/markdown; charset=utf-8", "md"
	}
	c.Header("Content-Disposition", fmt.Sprintf(`attachment; filename="%s"`, exportFilename(t.Conversation, ext)))
	c.Header("X-Content-Type-Options", "nosniff")
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, ctype, body)
}

// exportFilename is "chatd-<title slug>-<id>.<ext>": ASCII letters, digits
// and dashes only, so no header or path trick can ride in on a title.
func exportFilename(conv persistence.Conversation, ext string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(conv.Title) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		default:
			dash = true
		}
		if b.Len() >= 60 {
			break
		}
	}
	slug := b.String()
	if slug == "" {
		slug = "conversation"
	}
	return fmt.Sprintf("chatd-%s-%s.%s", slug, conv.ID, ext)
}

// markdown renders a conversation for reading. The main thread comes first:
// from the newest root, each message followed by its newest reply (what the
// app shows by default). Every other version (an earlier or later answer
// from regenerating, an edited question) follows in its own section,
// "Another version of message N", continued with its own newest replies.
// Messages are numbered in print order; each appears exactly once.
func markdown(conv persistence.Conversation, msgs []persistence.Message, now time.Time) []byte {
	var b bytes.Buffer
	writeHeader(&b, conv, len(msgs), now)
	tree := newMessageTree(msgs)
	type branch struct {
		start     *persistence.Message
		versionOf int // number of the message this branch is another version of; 0 for the main thread
	}
	roots := tree.children[""]
	if len(roots) == 0 {
		b.WriteString("_No messages._\n")
		return b.Bytes()
	}
	queue := []branch{{start: roots[len(roots)-1]}}
	queued := map[string]bool{queue[0].start.ID: true}
	n := 0
	for len(queue) > 0 {
		br := queue[0]
		queue = queue[1:]
		if br.versionOf > 0 {
			fmt.Fprintf(&b, "## Another version of message %d\n\n", br.versionOf)
		}
		for m := br.start; m != nil; m = tree.newestChild(m.ID) {
			n++
			writeMessage(&b, n, m, tree.versionLabel(m))
			for _, s := range tree.siblings(m) {
				if !queued[s.ID] {
					queued[s.ID] = true
					queue = append(queue, branch{start: s, versionOf: n})
				}
			}
			queued[m.ID] = true
		}
	}
	return b.Bytes()
}

func writeHeader(b *bytes.Buffer, conv persistence.Conversation, count int, now time.Time) {
	title := conv.Title
	if title == "" {
		title = "Untitled conversation"
	}
	model := conv.Model
	if model == "" {
		model = "default"
	}
	fmt.Fprintf(b, "# %s\n\n", title)
	fmt.Fprintf(b, "- Model: %s\n- Created: %s\n- Last activity: %s\n- Exported: %s\n- Messages: %d\n\n",
		model, stamp(conv.CreatedAt), stamp(conv.UpdatedAt), stamp(now), count)
	writeParams(b, conv.Params)
	if conv.SystemPrompt != "" {
		b.WriteString("## System prompt\n\n")
		for _, line := range strings.Split(conv.SystemPrompt, "\n") {
			fmt.Fprintf(b, "> %s\n", line)
		}
		b.WriteString("\n")
	}
	b.WriteString("## Conversation\n\n")
}

func writeMessage(b *bytes.Buffer, n int, m *persistence.Message, version string) {
	who := "User"
	if m.Role == persistence.RoleAssistant {
		who = "Assistant"
		if m.Model != "" {
			who += " (" + m.Model + ")"
		}
	}
	fmt.Fprintf(b, "### %d. %s%s\n\n", n, who, version)
	writeReasoning(b, m)
	content := strings.TrimRight(m.Content, "\n")
	if content != "" {
		b.WriteString(content)
		b.WriteString("\n")
		if openFence(content) {
			b.WriteString("```\n") // a cut-off answer must not swallow the rest of the file
		}
		b.WriteString("\n")
	}
	if note := statusNote(m); note != "" {
		fmt.Fprintf(b, "_%s_\n\n", note)
	}
}

func statusNote(m *persistence.Message) string {
	switch m.Status {
	case persistence.StatusCancelled:
		return "Answer stopped by the user."
	case persistence.StatusError:
		return "Answer failed: " + oneLine(m.Error)
	case persistence.StatusInterrupted:
		return "Answer interrupted (the server stopped while it was being written)."
	case persistence.StatusStreaming:
		return "Answer still being written when exported."
	}
	return ""
}

// openFence reports whether s leaves a ``` code fence open.
func openFence(s string) bool {
	open := false
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, " "), "```") {
			open = !open
		}
	}
	return open
}

func oneLine(s string) string {
	if s == "" {
		return "unknown error"
	}
	return strings.Join(strings.Fields(s), " ")
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// messageTree indexes messages by parent; children keep store order
// (oldest first). A message whose parent is missing counts as a root.
type messageTree struct {
	children map[string][]*persistence.Message
	ids      map[string]bool
}

func newMessageTree(msgs []persistence.Message) messageTree {
	ids := make(map[string]bool, len(msgs))
	for _, m := range msgs {
		ids[m.ID] = true
	}
	t := messageTree{children: make(map[string][]*persistence.Message), ids: ids}
	for i := range msgs {
		m := &msgs[i]
		t.children[t.parent(m)] = append(t.children[t.parent(m)], m)
	}
	return t
}

// parent is m's parent id, or "" for a root (or an orphan).
func (t messageTree) parent(m *persistence.Message) string {
	if t.ids[m.ParentID] {
		return m.ParentID
	}
	return ""
}

// siblings are the messages sharing m's parent, m included, oldest first.
func (t messageTree) siblings(m *persistence.Message) []*persistence.Message {
	return t.children[t.parent(m)]
}

func (t messageTree) newestChild(id string) *persistence.Message {
	c := t.children[id]
	if len(c) == 0 {
		return nil
	}
	return c[len(c)-1]
}

// versionLabel is " (version i of n)" for a message with siblings.
func (t messageTree) versionLabel(m *persistence.Message) string {
	sib := t.siblings(m)
	if len(sib) < 2 {
		return ""
	}
	for i, s := range sib {
		if s.ID == m.ID {
			return fmt.Sprintf(" (version %d of %d)", i+1, len(sib))
		}
	}
	return ""
}
