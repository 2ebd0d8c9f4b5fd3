package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"chatd/persistence"
)

// memStore is an in-memory recording implementation of the Writer's small
// Store interface. It checks the Writer's promises as updates arrive: one
// update per message per bulk write, and nothing after a final status.
// Messages ended elsewhere (end) are fenced: their updates are skipped.
type memStore struct {
	t testing.TB

	mu     sync.Mutex
	calls  int                           // ApplyMessageUpdates calls, failed ones included
	writes int                           // successful calls
	chunks map[string][]string           // appended text per message, one element per update
	final  map[string]persistence.Status // final status per message
	last   map[string]persistence.MessageUpdate
	fail   func(call int) error // optional: the error for call number n (1-based)
	gate   chan struct{}        // optional: each call waits for a receive
	ended  map[string]bool      // messages another instance ended: updates skipped
	fenced map[string]int       // updates skipped per message
	broken map[string]bool      // messages whose updates fail alone (a partial failure)
	fails  map[string]int       // failed updates per broken message
	refuse bool                 // broken messages' updates are reported refused, not only failed
}

func newMemStore(t testing.TB) *memStore {
	return &memStore{
		t:      t,
		chunks: make(map[string][]string),
		final:  make(map[string]persistence.Status),
		last:   make(map[string]persistence.MessageUpdate),
		ended:  make(map[string]bool),
		fenced: make(map[string]int),
		broken: make(map[string]bool),
		fails:  make(map[string]int),
	}
}

// errBroken is the cause of a broken message's failed updates.
var errBroken = errors.New("statement failed")

// setBroken makes the updates of message id fail (or apply again): a bulk
// write carrying one applies the others and returns a
// *persistence.PartialUpdateError, as the MongoDB store does.
func (s *memStore) setBroken(id string, broken bool) {
	s.mu.Lock()
	s.broken[id] = broken
	s.mu.Unlock()
}

// failures returns how many updates of message id failed.
func (s *memStore) failures(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fails[id]
}

// end marks message id ended by another instance: from now on its updates
// are skipped, as a real store's fence does.
func (s *memStore) end(id string) {
	s.mu.Lock()
	s.ended[id] = true
	s.mu.Unlock()
}

// skips returns how many updates of message id were skipped.
func (s *memStore) skips(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fenced[id]
}

func (s *memStore) ApplyMessageUpdates(ctx context.Context, updates []persistence.MessageUpdate) ([]string, error) {
	s.mu.Lock()
	s.calls++
	n, fail, gate := s.calls, s.fail, s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail != nil {
		if err := fail(n); err != nil {
			return nil, err
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	seen := make(map[string]bool, len(updates))
	var skipped, failed []string
	for _, u := range updates {
		if seen[u.ID] {
			s.t.Errorf("bulk write %d carries message %s twice", n, u.ID)
		}
		seen[u.ID] = true
		if s.broken[u.ID] {
			s.fails[u.ID]++
			failed = append(failed, u.ID)
			continue
		}
		if s.ended[u.ID] {
			s.fenced[u.ID]++
			skipped = append(skipped, u.ID)
			continue
		}
		if st, done := s.final[u.ID]; done {
			s.t.Errorf("message %s updated after its final status %s: %+v", u.ID, st, u)
		}
		if u.At.IsZero() {
			s.t.Errorf("update of %s without At", u.ID)
		}
		if u.Append != "" {
			s.chunks[u.ID] = append(s.chunks[u.ID], u.Append)
		}
		if u.Status.Final() {
			s.final[u.ID] = u.Status
		}
		s.last[u.ID] = u
	}
	if failed != nil {
		err := &persistence.PartialUpdateError{IDs: failed, Err: errBroken}
		if s.refuse {
			err.Refused = failed
		}
		return skipped, err
	}
	return skipped, nil
}

// setFail installs f as the failure injector.
func (s *memStore) setFail(f func(call int) error) {
	s.mu.Lock()
	s.fail = f
	s.mu.Unlock()
}

// text returns the stored text of message id.
func (s *memStore) text(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.chunks[id], "")
}

// chunkList returns a copy of message id's stored chunks.
func (s *memStore) chunkList(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.chunks[id]...)
}

// counts returns the number of calls and of successful calls.
func (s *memStore) counts() (calls, writes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls, s.writes
}

// status returns message id's last update and whether it has a final status.
func (s *memStore) status(id string) (persistence.MessageUpdate, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.final[id]
	return s.last[id], ok
}

// testCtx returns a context bounded by a generous per-test timeout.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newWriter returns a Writer over store that is closed when the test ends.
func newWriter(t *testing.T, store Store, opts Options) *Writer {
	t.Helper()
	w := New(store, opts)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Close(ctx)
	})
	return w
}

// eventually polls cond until it holds or ctx ends.
func eventually(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// tokens returns n word-like pieces and their concatenation.
func tokens(prefix string, n int) ([]string, string) {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s%d ", prefix, i)
		if i%3 == 1 { // some pieces end inside a word
			out[i] = fmt.Sprintf("%s%d", prefix, i)
		}
	}
	return out, strings.Join(out, "")
}

// complete is a final update of message id.
func complete(id string) persistence.MessageUpdate {
	return persistence.MessageUpdate{ID: id, Status: persistence.StatusComplete, FinishReason: "stop",
		Usage: &persistence.Usage{PromptTokens: 3, CompletionTokens: 5, TotalTokens: 8}}
}
