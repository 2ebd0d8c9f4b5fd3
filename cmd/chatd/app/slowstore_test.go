package app

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/persistence"
)

// slowStore makes CreateConversation wait while it is held, as a store
// stuck on a slow disk or a busy database would.
type slowStore struct {
	persistence.Store
	mu      sync.Mutex
	gate    chan struct{} // non-nil while held
	entered chan struct{}
}

func (s *slowStore) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

func (s *slowStore) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.gate)
	s.gate = nil
}

func (s *slowStore) CreateConversation(ctx context.Context, c *persistence.Conversation) error {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		s.entered <- struct{}{}
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return s.Store.CreateConversation(ctx, c)
}

// slowPingTimeout is TestSlowStoreKeepsPingsAndDeltas's ping timeout.
const slowPingTimeout = 3 * time.Second

// TestSlowStoreKeepsPingsAndDeltas: while one send waits on a slow store
// for much longer than the ping timeout, the same socket keeps answering
// pings and receiving the deltas of an answer already running, and the
// send completes once the store answers.
func TestSlowStoreKeepsPingsAndDeltas(t *testing.T) {
	t.Parallel()
	var store *slowStore
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		store = &slowStore{Store: c.Store, entered: make(chan struct{}, 1)}
		c.Store = store
		// A timeout that a loaded CI machine's scheduling (-race, load 16,
		// a goroutine waiting a second or two for a core) does not reach
		// by itself: the store, not the machine, is slow.
		c.WS.PingInterval, c.WS.PingTimeout = 40*time.Millisecond, slowPingTimeout
	}})
	u := e.register(t)
	pings := make(chan struct{}, 10_000)
	h := http.Header{}
	h.Set("Authorization", "Bearer "+u.Token)
	cl := e.dialWith(t, &websocket.DialOptions{HTTPHeader: h, OnPingReceived: func(context.Context, []byte) bool {
		pings <- struct{}{}
		return true
	}})
	running := cl.start("long [[fake tokens=100000 delay=5ms]]")
	t.Cleanup(func() { cl.write(map[string]any{"type": "cancel", "conversationId": running.ConversationID}) })
	store.hold()
	cl.write(sendFrame("slow", "", "a new conversation"))
	<-store.entered
	// Pings for more than twice the ping timeout while the store is held;
	// deltas keep coming between them.
	for i, held := 0, time.Now(); time.Since(held) < 2*slowPingTimeout; i++ {
		select {
		case <-pings:
		case <-cl.closed:
			t.Fatalf("dropped after %d pings while the store was slow: %v", i, cl.err)
		case <-time.After(testTimeout):
			t.Fatal("no ping")
		}
		got := cl.until(func(f frame) bool { return f.Type == "delta" })
		if f := got[len(got)-1]; f.MessageID != running.MessageID {
			t.Fatalf("delta of another answer: %s", f.raw)
		}
	}
	store.release()
	cl.until(func(f frame) bool { return f.Type == "ack" && string(f.ID) == `"slow"` })
}
