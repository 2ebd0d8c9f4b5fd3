package app

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/persistence"
)

// stalledWrites makes the batching writer's bulk writes wait while held,
// as a database in a failover would.
type stalledWrites struct {
	persistence.Store
	mu      sync.Mutex
	gate    chan struct{} // non-nil while held
	entered chan struct{} // told of each write that waits
}

func (s *stalledWrites) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

func (s *stalledWrites) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.gate)
	s.gate = nil
}

func (s *stalledWrites) ApplyMessageUpdates(ctx context.Context, updates []persistence.MessageUpdate) ([]string, error) {
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		select {
		case s.entered <- struct{}{}:
		default:
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Store.ApplyMessageUpdates(ctx, updates)
}

// TestShutdownFinalWritesOutliveTheGrace: when the grace period is spent
// waiting for answers whose last writes the database holds up, the
// batching writer still gets a bound of its own for them, as in a
// cluster's drain: the interrupted answer is stored whole once the
// database answers. Before, the writer was closed with the expired grace
// and abandoned the answer's text and its interrupted status at once.
func TestShutdownFinalWritesOutliveTheGrace(t *testing.T) {
	t.Parallel()
	e, store := stalledEnv(t)
	u := e.register(t)
	cl := e.dial(t, u)
	ack := cl.start("long [[fake tokens=100000 delay=5ms]]")
	seen := cl.until(func(f frame) bool { return f.Type == "delta" && f.Seq > 20 })
	store.hold()
	<-store.entered
	// What streams from now on is in no checkpoint until the store answers.
	seen = append(seen, cl.until(func(f frame) bool { return f.Type == "delta" })...)

	grace, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- e.app.Shutdown(grace) }()
	// The database answers a while after the grace: after the sockets
	// closed (the last step before the writer is closed), and then some,
	// as a failover would. Only the old code depends on this timing: its
	// writer gave up on the held write the moment it was closed.
	<-grace.Done()
	<-cl.closed
	time.AfterFunc(200*time.Millisecond, store.release)
	if err := <-shut; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown past its grace: %v", err)
	}
	// Shut down here, with its error expected: the cleanup need not again.
	e.closeOnce.Do(func() {
		e.srv.Close()
		t.Cleanup(func() { _ = e.store.Close(context.Background()) })
	})
	// The socket closed (1001) before the answer's done, which waits for
	// the store; the tab got the text streamed meanwhile, all of which the
	// store must hold, not only what it had before the hold.
	for more := true; more; {
		select {
		case f := <-cl.frames:
			seen = append(seen, f)
		default:
			more = false
		}
	}
	text, _ := answer(t, live(seen), ack.MessageID)
	ctx, cancelRead := context.WithTimeout(context.Background(), testTimeout)
	defer cancelRead()
	m, err := e.store.Message(ctx, u.ID, ack.MessageID)
	if err != nil {
		t.Fatal(err)
	}
	if m.Status != persistence.StatusInterrupted || !strings.HasPrefix(m.Content, text) || text == "" {
		t.Fatalf("stored %q (%s), streamed %q", m.Content, m.Status, text)
	}
}

// TestShutdownSocketsOutliveTheGrace: when the grace period is spent
// waiting for an answer whose last write the database holds up, the
// WebSockets still get a bound of their own to close: the tab gets its
// close frame, 1001 (going away: reconnect). Before, they were closed
// with the expired grace: the close frames raced the sockets being cut,
// and the tab saw 1006.
func TestShutdownSocketsOutliveTheGrace(t *testing.T) {
	t.Parallel()
	e, store := stalledEnv(t)
	u := e.register(t)
	cl := e.dial(t, u)
	cl.start("long [[fake tokens=100000 delay=5ms]]")
	cl.until(func(f frame) bool { return f.Type == "delta" && f.Seq > 20 })
	store.hold()
	<-store.entered

	grace, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	shut := make(chan error, 1)
	go func() { shut <- e.app.Shutdown(grace) }()
	status := cl.closeStatus()
	store.release()
	if err := <-shut; !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown past its grace: %v", err)
	}
	e.closeOnce.Do(func() {
		e.srv.Close()
		t.Cleanup(func() { _ = e.store.Close(context.Background()) })
	})
	if status != websocket.StatusGoingAway {
		t.Fatalf("close status %d, want 1001", status)
	}
}

// stalledEnv is an app whose store holds its writes as stalledWrites does.
func stalledEnv(t *testing.T) (*env, *stalledWrites) {
	t.Helper()
	var store *stalledWrites
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		store = &stalledWrites{Store: c.Store, entered: make(chan struct{}, 1)}
		c.Store = store
	}})
	return e, store
}
