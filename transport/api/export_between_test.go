package api

import (
	"bufio"
	"io"
	"testing"
	"time"

	"chatd/persistence"
)

// TestExportWritesBetweenReads: between any two of an export's reads of
// the store it writes something, so that what sendHeld sends before the
// second reaches a proxy in front, which then waits at most one read
// (bounded by the request timeout) for bytes. Before, a Markdown export
// wrote nothing between a message's reasoning read and its text read
// when it had no reasoning, so the proxy could wait two reads.
func TestExportWritesBetweenReads(t *testing.T) {
	msgs := []persistence.Message{
		{ID: "q", Role: persistence.RoleUser},
		{ID: "a", ParentID: "q", Role: persistence.RoleAssistant},
	}
	for _, tc := range []struct {
		name      string
		reasoning string
		write     func(*bufio.Writer, persistence.Conversation, []persistence.Message, time.Time, textReader) error
	}{
		{"markdown, no reasoning", "", writeMarkdown},
		{"markdown, reasoning", "a thought", writeMarkdown},
		{"json, no reasoning", "", writeJSON},
		{"json, reasoning", "a thought", writeJSON},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := bufio.NewWriterSize(io.Discard, 1<<20) // never flushed: Buffered counts every byte written
			reads, last := 0, -1
			read := func(text string) pieceReader {
				return func(m *persistence.Message, fn func(string) error) error {
					if reads > 0 && w.Buffered() == last {
						t.Errorf("read %d (message %s): nothing written since the read before", reads+1, m.ID)
					}
					reads++
					if err := fn(text); err != nil {
						return err
					}
					last = w.Buffered()
					return nil
				}
			}
			text := textReader{content: read("some text"), reasoning: read(tc.reasoning)}
			if err := tc.write(w, persistence.Conversation{ID: "c"}, msgs, time.Now(), text); err != nil {
				t.Fatal(err)
			}
			if reads != 4 {
				t.Fatalf("%d reads, want 4", reads)
			}
		})
	}
}
