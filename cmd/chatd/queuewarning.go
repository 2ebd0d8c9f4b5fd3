package main

import (
	"fmt"
	"log/slog"

	"chatd/hub"
)

// queueBytesWarning is what start says of a CHATD_WS_QUEUE_BYTES taken
// below hub.CatchUpBytes (it holds two full answers: a setting of an
// earlier release may be there), or "" when it holds a catch-up: a resume
// of a full answer and its reasoning whose text is mostly characters JSON
// escapes may then not fit, and the client is closed 4408 and tries again
// with backoff, into the same catch-up.
func queueBytesWarning(cfg Config) (string, []any) {
	least := hub.CatchUpBytes(cfg.MaxAnswerBytes)
	if int64(cfg.WSQueueBytes) >= least {
		return "", nil
	}
	msg := fmt.Sprintf("CHATD_WS_QUEUE_BYTES is %s, below %s, what a resume of a full answer and its reasoning may take "+
		"with CHATD_MAX_ANSWER_BYTES at %s (12 times it and 64KiB: JSON may write a byte of text in 6): a resume of such "+
		"an answer whose text is mostly escaped characters may not fit, and its tab is then closed (4408) and tries again "+
		"with backoff, into the same resume; set CHATD_WS_QUEUE_BYTES to at least %[2]s, or leave it unset "+
		"(%[4]s with these answers), so that every resume fits",
		sizeText(int64(cfg.WSQueueBytes)), sizeText(least), sizeText(int64(cfg.MaxAnswerBytes)), sizeText(defaultQueueBytes(cfg.MaxAnswerBytes)))
	return msg, []any{slog.String("variable", "CHATD_WS_QUEUE_BYTES"), slog.Int("queue_bytes", cfg.WSQueueBytes),
		slog.Int("max_answer_bytes", cfg.MaxAnswerBytes), slog.Int64("queue_bytes_needed", least)}
}
