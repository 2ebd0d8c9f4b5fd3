// Command record re-records a session of docs/protocol.md against a
// running chatd (make run): it registers (or signs in) a user, then types
// the documented frames over WebSocket connections as a person would with
// wscat, and prints every frame sent ("> ") and received ("< ") exactly as
// it went over the wire, one transcript block after another, separated by
// lines "-- next block --". The docs tests (docs/protocol_test.go,
// docs/reasoning_replay_test.go) replay the transcripts against a real
// server.
//
// -session wscat (the default) records "A session with wscat", against
// the demo model:
//
//	CHATD_COALESCE_INTERVAL=1s make run
//	go run ./docs/record -url http://localhost:8080
//
// -session reasoning records "A session with a reasoning model", against
// cmd/fakeai started with the flags that section names; its last block is
// the second answer's resume over SSE, the event stream as it came:
//
//	go run ./cmd/fakeai -models fake-reasoner -tokens 6 -reasoning 8 -reasoning-key mixed -delay 40ms
//	OPENAI_BASE_URL=http://127.0.0.1:8081/v1 OPENAI_API_KEY=fake OPENAI_MODELS=fake-reasoner \
//	  OPENAI_REASONING_MODELS=fake-reasoner make run
//	go run ./docs/record -session reasoning -url http://localhost:8080
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
)

func main() {
	base := flag.String("url", "http://localhost:8080", "the chatd to talk to")
	name := flag.String("session", "wscat", "wscat | reasoning: the session of docs/protocol.md to record")
	flag.Parse()
	sessions := map[string]func(context.Context, string, io.Writer) error{
		"wscat": record, "reasoning": recordReasoning}
	run, ok := sessions[*name]
	if !ok {
		fmt.Fprintf(os.Stderr, "record: unknown -session %q (wscat or reasoning)\n", *name)
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := run(ctx, *base, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "record:", err)
		os.Exit(1)
	}
}

// The account of the documented session.
const (
	email    = "ada@example.com"
	password = "correct horse battery"
)

// frame is the part of a server frame the script steers by.
type frame struct {
	Type         string `json:"type"`
	Action       string `json:"action"`
	MessageID    string `json:"messageId"`
	Seq          int64  `json:"seq"`
	Rseq         int64  `json:"rseq"`
	Conversation struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	} `json:"conversation"`
}

// firstAnswer signs in, connects, and sends question as frame "1" of a
// new conversation, recording until the conversation has its title; it
// returns the session, its token and the conversation's id.
func firstAnswer(ctx context.Context, base, question string, out io.Writer) (*session, string, string, error) {
	token, err := signIn(ctx, base)
	if err != nil {
		return nil, "", "", err
	}
	s, err := dial(ctx, base, token, out)
	if err != nil {
		return nil, "", "", err
	}
	s.send(`{"type":"send","id":"1","content":` + strconv.Quote(question) + `}`)
	conv := ""
	s.until(ctx, func(f frame) bool {
		if f.Type == "conversation" && f.Action == "created" {
			conv = f.Conversation.ID
		}
		return f.Type == "conversation" && f.Conversation.Title != ""
	})
	return s, token, conv, nil
}

func record(ctx context.Context, base string, out io.Writer) error {
	// Block 1: a first answer, a ping, a refused frame.
	s, token, conv, err := firstAnswer(ctx, base, "Say hello", out)
	if err != nil {
		return err
	}
	s.send(`{"type":"ping","id":"2"}`)
	s.until(ctx, func(f frame) bool { return f.Type == "pong" })
	s.send(`{"type":"send","id":"3"}`)
	s.until(ctx, func(f frame) bool { return f.Type == "error" })

	// Block 2: stop an answer, regenerate it, drop the connection midway.
	fmt.Fprintln(out, "-- next block --")
	s.send(fmt.Sprintf(`{"type":"send","id":"4","conversationId":%q,"content":"Count to three"}`, conv))
	s.until(ctx, deltas(2))
	s.send(fmt.Sprintf(`{"type":"cancel","id":"5","conversationId":%q}`, conv))
	s.until(ctx, both(func(f frame) bool { return f.Type == "done" }, func(f frame) bool { return f.Type == "ack" }))
	s.send(fmt.Sprintf(`{"type":"regenerate","id":"6","conversationId":%q}`, conv))
	var answer string
	var seq int64
	twoDeltas := deltas(2)
	s.until(ctx, func(f frame) bool {
		if f.Type == "delta" {
			answer, seq = f.MessageID, f.Seq
		}
		return twoDeltas(f)
	})
	s.conn.CloseNow()
	if s.err != nil {
		return s.err
	}

	// Block 3: reconnect and resume the answer after the last delta seen.
	fmt.Fprintln(out, "-- next block --")
	s, err = dial(ctx, base, token, out)
	if err != nil {
		return err
	}
	defer s.conn.CloseNow()
	s.send(fmt.Sprintf(`{"type":"subscribe","id":"7","conversationId":%q,"messageId":%q,"lastSeq":%d}`, conv, answer, seq))
	s.until(ctx, func(f frame) bool { return f.Type == "done" })
	s.conn.Close(websocket.StatusNormalClosure, "")
	return s.err
}

// deltas returns a condition met at the n-th delta it sees.
func deltas(n int) func(frame) bool {
	seen := 0
	return func(f frame) bool {
		if f.Type == "delta" {
			seen++
		}
		return seen == n
	}
}

// both returns a condition met once a and b have each accepted a frame.
func both(a, b func(frame) bool) func(frame) bool {
	var gotA, gotB bool
	return func(f frame) bool {
		gotA = gotA || a(f)
		gotB = gotB || b(f)
		return gotA && gotB
	}
}

// session is one wscat connection that prints what it sends and receives.
// The first error sticks; later calls do nothing.
type session struct {
	conn *websocket.Conn
	out  io.Writer
	err  error
}

func dial(ctx context.Context, base, token string, out io.Writer) (*session, error) {
	url := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	conn, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	s := &session{conn: conn, out: out}
	s.until(ctx, func(f frame) bool { return f.Type == "hello" })
	return s, s.err
}

func (s *session) send(text string) {
	if s.err != nil {
		return
	}
	fmt.Fprintln(s.out, "> "+text)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.conn.Write(ctx, websocket.MessageText, []byte(text)); err != nil {
		s.err = fmt.Errorf("send %s: %w", text, err)
	}
}

// until prints received frames up to and including the first that done
// accepts.
func (s *session) until(ctx context.Context, done func(frame) bool) {
	for s.err == nil {
		_, data, err := s.conn.Read(ctx)
		if err != nil {
			s.err = fmt.Errorf("read: %w", err)
			return
		}
		fmt.Fprintln(s.out, "< "+string(data))
		var f frame
		if err := json.Unmarshal(data, &f); err != nil {
			s.err = fmt.Errorf("frame %s: %w", data, err)
			return
		}
		if done(f) {
			return
		}
	}
}

// signIn registers the documented user, or signs in when it exists.
func signIn(ctx context.Context, base string) (string, error) {
	body := fmt.Sprintf(`{"email":%q,"password":%q,"name":"Ada"}`, email, password)
	token, status, err := postToken(ctx, base+"/api/auth/register", body)
	if err == nil && status == http.StatusConflict {
		body = fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)
		token, status, err = postToken(ctx, base+"/api/auth/login", body)
	}
	if err == nil && token == "" {
		err = fmt.Errorf("no token (status %d)", status)
	}
	return token, err
}

func postToken(ctx context.Context, url, body string) (string, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("POST %s: %w", url, err)
	}
	defer res.Body.Close()
	var answer struct {
		Token string `json:"token"`
	}
	_ = json.NewDecoder(res.Body).Decode(&answer)
	return answer.Token, res.StatusCode, nil
}
