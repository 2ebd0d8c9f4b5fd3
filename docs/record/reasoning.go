package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// The second question of the reasoning session: its marker asks the fake
// for a longer thinking, slower, so that the connection can be dropped
// while the model still thinks.
const (
	secondQuestion = "And at sunset? [[fake reasoning=30 tokens=12 delay=60ms]]"
	// droppedAfter is how many reasoning frames the connection gets
	// before it is dropped.
	droppedAfter = 20
)

// recordReasoning records "A session with a reasoning model": a first
// answer with its reasoning and title; a second question whose connection
// is dropped while the model thinks; once that answer has ended, a new
// connection resuming it from the cursors the first one had; and the same
// resume over SSE, as an EventSource sends it (Last-Event-ID).
func recordReasoning(ctx context.Context, base string, out io.Writer) error {
	// Block 1: an answer with its reasoning, then its title.
	s, token, conv, err := firstAnswer(ctx, base, "Why is the sky blue?", out)
	if err != nil {
		return err
	}

	// Block 2: a second question, dropped while the model thinks.
	fmt.Fprintln(out, "-- next block --")
	s.send(fmt.Sprintf(`{"type":"send","id":"2","conversationId":%q,"content":%q}`, conv, secondQuestion))
	answer, rseq, err := thinking(ctx, s)
	s.conn.CloseNow()
	if err != nil {
		return err
	}
	if err := waitEnd(ctx, base, token, conv, answer); err != nil {
		return err
	}

	// Block 3: reconnect and resume the answer, ended meanwhile.
	fmt.Fprintln(out, "-- next block --")
	s, err = dial(ctx, base, token, out)
	if err != nil {
		return err
	}
	defer s.conn.CloseNow()
	s.send(fmt.Sprintf(`{"type":"subscribe","id":"3","conversationId":%q,"messageId":%q,"lastSeq":0,"lastReasoningSeq":%d}`,
		conv, answer, rseq))
	s.until(ctx, func(f frame) bool { return f.Type == "done" })
	s.conn.Close(websocket.StatusNormalClosure, "")
	if s.err != nil {
		return s.err
	}

	// Block 4: the same resume over SSE.
	lastEventID := fmt.Sprintf("%s:0/%d", answer, rseq)
	fmt.Fprintf(out, "-- next block: SSE, Last-Event-ID: %s --\n", lastEventID)
	body, err := stream(ctx, base, token, conv, "", lastEventID)
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, body)
	return err
}

// thinking prints the frames of an answer up to its droppedAfter-th
// reasoning frame, and returns the answer's id and its reasoning's length
// then. A delta before it is an error: the drop must come while the model
// thinks.
func thinking(ctx context.Context, s *session) (answer string, rseq int64, err error) {
	n, text := 0, false
	s.until(ctx, func(f frame) bool {
		switch f.Type {
		case "reasoning":
			answer, rseq = f.MessageID, f.Rseq
			n++
		case "delta":
			text = true
		}
		return n == droppedAfter || text
	})
	switch {
	case s.err != nil:
		return "", 0, s.err
	case text:
		return "", 0, errors.New("the answer's text began before the drop: is chatd's CHATD_COALESCE_INTERVAL the default?")
	}
	return answer, rseq, nil
}

// waitEnd waits, unseen, until the answer has ended: a stream of it ends
// after its done.
func waitEnd(ctx context.Context, base, token, conv, answer string) error {
	body, err := stream(ctx, base, token, conv, "?messageId="+answer, "")
	if err == nil && !strings.Contains(body, "event: done") {
		err = fmt.Errorf("the stream of answer %s ended without its done: %q", answer, body)
	}
	return err
}

// stream reads GET /api/conversations/:id/stream to its end.
func stream(ctx context.Context, base, token, conv, query, lastEventID string) (string, error) {
	url := base + "/api/conversations/" + conv + "/stream" + query
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "text/event-stream")
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return "", fmt.Errorf("GET %s: read: %w", url, err)
	}
	if res.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %d %s", url, res.StatusCode, body)
	}
	return string(body), nil
}
