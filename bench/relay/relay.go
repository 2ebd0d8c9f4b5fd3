// Package relay is the benchmarks' baseline B: the least a server of this
// design must do to put a model's stream on a WebSocket. It accepts a
// WebSocket (no authentication), reads a "send" frame, streams the answer
// from an OpenAI-compatible upstream over SSE and writes one WebSocket text
// frame per chunk, in the shape of chatd's delta and done frames. There is
// no database, no coalescing, no fan-out and no second goroutine: the
// connection's handler reads the upstream and writes the socket. What a
// relay must do per chunk it does as cheaply as chatd does: it reads the
// chunk's text without reflection (chunkText, as chatd's llm/openai reads
// most chunks) and writes its frame into a reused buffer.
//
// Client frame:  {"type":"send","content":"...","model":"..."}
// Server frames: {"type":"delta","seq":<bytes so far>,"text":"..."} per
// chunk with content, then {"type":"done","seq":<bytes>,"status":"complete"}
// ("error" with a "message" when the upstream failed).
package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// Options configure a Server.
type Options struct {
	// Upstream is the API root of the OpenAI-compatible server, such as
	// http://127.0.0.1:8081/v1.
	Upstream string
	// Client sends the upstream requests; it defaults to a client with a
	// large pool of kept-alive connections.
	Client *http.Client
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Server is the relay; it is an http.Handler.
type Server struct {
	opts Options
}

// New returns a relay.
func New(opts Options) *Server {
	opts.Upstream = strings.TrimRight(opts.Upstream, "/")
	if opts.Client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConns, tr.MaxIdleConnsPerHost = 4096, 4096
		opts.Client = &http.Client{Transport: tr}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Server{opts: opts}
}

// ServeHTTP upgrades the request and relays one answer per send frame
// until the client leaves.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := context.WithoutCancel(r.Context())
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			return
		}
		var f struct{ Type, Content, Model string }
		if json.Unmarshal(data, &f) != nil || f.Type != "send" {
			_ = c.Write(ctx, websocket.MessageText, []byte(`{"type":"error","code":"bad_frame"}`))
			continue
		}
		if err := s.relay(ctx, c, f.Content, f.Model); err != nil {
			s.opts.Logger.Info("relay ended", "err", err)
			return
		}
	}
}

// relay streams one answer onto c; it returns an error only when c failed.
func (s *Server) relay(ctx context.Context, c *websocket.Conn, content, model string) error {
	var seq int
	frame := make([]byte, 0, 256)
	err := s.stream(ctx, content, model, func(text []byte) error {
		seq += len(text)
		frame = appendDelta(frame[:0], seq, text)
		return c.Write(ctx, websocket.MessageText, frame)
	})
	var cerr *clientError
	if errors.As(err, &cerr) {
		return cerr.err
	}
	status, msg := "complete", ""
	if err != nil {
		status, msg = "error", err.Error()
	}
	return c.Write(ctx, websocket.MessageText, appendDone(frame[:0], seq, status, msg))
}

// clientError is a failed write to the client.
type clientError struct{ err error }

func (e *clientError) Error() string { return e.err.Error() }

// stream posts the prompt upstream and calls onText with every chunk's
// content (valid until onText returns).
func (s *Server) stream(ctx context.Context, content, model string, onText func([]byte) error) error {
	body, _ := json.Marshal(map[string]any{"model": model, "stream": true,
		"messages": []map[string]string{{"role": "user", "content": content}}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.opts.Upstream+"/chat/completions", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := s.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("upstream: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("upstream status %d", res.StatusCode)
	}
	br := bufio.NewReader(res.Body)
	var text []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return fmt.Errorf("upstream stream ended early: %w", err)
		}
		data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("data: "))
		if !ok {
			continue
		}
		if string(data) == "[DONE]" {
			return nil
		}
		text, ok, err = chunkText(text[:0], data)
		if err != nil {
			return fmt.Errorf("upstream chunk: %w", err)
		}
		if ok && len(text) > 0 {
			if err := onText(text); err != nil {
				return &clientError{err}
			}
		}
	}
}
