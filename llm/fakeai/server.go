package fakeai

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Server.
type Options struct {
	// Defaults is how a request behaves when it does not override a
	// setting with X-Fake-* headers or a [[fake ...]] marker.
	Defaults Config
	// Models are the ids listed by GET /v1/models; they default to
	// DefaultModels. Chat requests may name any model.
	Models []string
	// APIKey, when set, is required as "Authorization: Bearer <APIKey>";
	// other requests get a 401 that (like a careless upstream) repeats the
	// key it was given.
	APIKey string
	// RecordLimit is how many recent requests are kept for Recorded; it
	// defaults to 1000.
	RecordLimit int
	// MaxHang bounds the hang faults; it defaults to 10 minutes.
	MaxHang time.Duration
	// Logger receives one debug line per request; it defaults to discarding.
	Logger *slog.Logger
	// ContextLength, when positive, is listed by GET /v1/models as every
	// model's "context_length" (as OpenRouter and LM Studio report it).
	ContextLength int
	// ModelFields adds members to (or replaces members of) the entries GET
	// /v1/models lists, by model id, as raw JSON: a model's window as a
	// string, a float or null, as some servers send it.
	ModelFields map[string]map[string]json.RawMessage
	// ModelsDelay makes GET /v1/models wait this long (or until the client
	// leaves) before answering; SetModelsDelay changes it while running.
	ModelsDelay time.Duration
}

// DefaultModels are listed by GET /v1/models when Options.Models is empty.
var DefaultModels = []string{"fake-mini", "fake-large"}

// Server is a fake OpenAI-compatible API: an http.Handler serving
// POST /v1/chat/completions (and Azure OpenAI's
// /openai/deployments/{deployment}/chat/completions) and GET /v1/models. It is safe for concurrent
// use; every stream costs one goroutine (the handler's) and one ticker.
type Server struct {
	opts    Options
	mux     *http.ServeMux
	created int64 // Unix seconds, for "created" fields

	requests   atomic.Int64 // chat completion requests
	modelLists atomic.Int64 // GET /v1/models requests
	listDelay  atomic.Int64 // ModelsDelay, in nanoseconds
	listStatus atomic.Int32 // SetModelsStatus: the status GET /v1/models answers with; 0: the list
	active     atomic.Int64 // streams in progress

	mu          sync.Mutex
	records     []Recorded // ring of the last RecordLimit requests
	aborts      int64
	abortCh     chan struct{} // closed and replaced on every abort
	faultCounts map[string]int

	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

// New returns a Server; serve it with httptest.NewServer(fakeai.New(opts))
// or any http.Server.
func New(opts Options) *Server {
	if len(opts.Models) == 0 {
		opts.Models = DefaultModels
	}
	if opts.RecordLimit <= 0 {
		opts.RecordLimit = 1000
	}
	if opts.MaxHang <= 0 {
		opts.MaxHang = 10 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:        opts,
		created:     time.Now().Unix(),
		abortCh:     make(chan struct{}),
		faultCounts: make(map[string]int),
		done:        make(chan struct{}),
	}
	s.listDelay.Store(int64(opts.ModelsDelay))
	s.mux = http.NewServeMux()
	for _, prefix := range []string{"/v1", ""} {
		s.mux.HandleFunc("POST "+prefix+"/chat/completions", s.chat)
		s.mux.HandleFunc("GET "+prefix+"/models", s.models)
	}
	// Azure OpenAI's path: the model is a deployment named in the path.
	s.mux.HandleFunc("POST /openai/deployments/{deployment}/chat/completions", s.chat)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Close ends every stream and hang in progress (without counting them as
// aborts); call it before shutting the HTTP server down.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.done) })
}

// Requests returns the number of chat completion requests received.
func (s *Server) Requests() int64 { return s.requests.Load() }

// ModelListRequests returns the number of GET /v1/models requests received.
func (s *Server) ModelListRequests() int64 { return s.modelLists.Load() }

// ActiveStreams returns the number of chat completions in progress.
func (s *Server) ActiveStreams() int64 { return s.active.Load() }

// Aborts returns how many responses the client abandoned (its request
// context ended, or a write failed) before they were complete.
func (s *Server) Aborts() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.aborts
}

// WaitAbort waits until at least one abort has been seen.
func (s *Server) WaitAbort(ctx context.Context) error {
	return s.WaitAborts(ctx, 1)
}

// WaitAborts waits until at least n aborts have been seen in total, or ctx
// ends.
func (s *Server) WaitAborts(ctx context.Context, n int64) error {
	for {
		s.mu.Lock()
		got, ch := s.aborts, s.abortCh
		s.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fakeai: waiting for %d aborts (saw %d): %w", n, got, ctx.Err())
		}
	}
}

func (s *Server) noteAbort() {
	s.mu.Lock()
	s.aborts++
	close(s.abortCh)
	s.abortCh = make(chan struct{})
	s.mu.Unlock()
}

// faultApplies counts a request carrying fault overrides under key and
// reports whether its fault still applies (FaultTimes).
func (s *Server) faultApplies(c Config, key string) bool {
	if c.Fault == FaultNone || c.FaultTimes <= 0 {
		return c.Fault != FaultNone
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faultCounts[key]++
	return s.faultCounts[key] <= c.FaultTimes
}

// SetModelsDelay changes how long GET /v1/models waits before answering.
func (s *Server) SetModelsDelay(d time.Duration) { s.listDelay.Store(int64(d)) }

// SetModelsStatus makes GET /v1/models answer with an OpenAI-style error
// of that HTTP status (400 to 599), as a server that is starting or
// failing does; 0 serves the list again.
func (s *Server) SetModelsStatus(status int) { s.listStatus.Store(int32(status)) }

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	s.modelLists.Add(1)
	if !s.authorized(w, r) {
		return
	}
	if code := int(s.listStatus.Load()); code >= 400 && code <= 599 {
		writeError(w, code, "The model list is not available right now.", "server_error", "")
		return
	}
	if d := time.Duration(s.listDelay.Load()); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
	list := struct {
		Object string           `json:"object"`
		Data   []map[string]any `json:"data"`
	}{Object: "list"}
	for _, id := range s.opts.Models {
		list.Data = append(list.Data, s.modelEntry(id))
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(list)
}

// modelEntry is the entry of model id in the model list.
func (s *Server) modelEntry(id string) map[string]any {
	m := map[string]any{"id": id, "object": "model", "created": s.created, "owned_by": "fakeai"}
	if s.opts.ContextLength > 0 {
		m["context_length"] = s.opts.ContextLength
	}
	for k, v := range s.opts.ModelFields[id] {
		m[k] = v
	}
	return m
}

// authorized checks the API key, answering 401 when it is wrong.
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.APIKey == "" {
		return true
	}
	got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	if got == s.opts.APIKey {
		return true
	}
	writeError(w, http.StatusUnauthorized, "Incorrect API key provided: "+got+".",
		"invalid_request_error", "invalid_api_key")
	return false
}

// writeError answers with an OpenAI-style error.
func writeError(w http.ResponseWriter, status int, message, typ, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(errorBody(message, typ, code))
}

// writeParamError answers with an OpenAI-style invalid_request_error
// about one parameter of the request.
func writeParamError(w http.ResponseWriter, status int, message, param, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(encodeError(map[string]any{
		"message": message, "type": "invalid_request_error", "param": param, "code": code,
	}))
}
