package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/persistence"
)

// drainBus is an instance's bus in an in-memory cluster that records the
// user events it carried; it carries none once closed, or once the
// hub's bus work stopped (the call's context ended), as NATS would not.
// With holdRunning, its lookup of the answer running in runningConv tells
// runningHeld and lasts until its context ends: a stop of an answer
// running elsewhere that takes its whole bound.
type drainBus struct {
	*hub.MemBus
	closing     chan struct{} // closed by Close
	holdRunning bool
	runningHeld chan struct{}
	runningOnce sync.Once

	mu         sync.Mutex
	closed     bool
	carried    []hub.UserEvent
	runningEnd error // why the held lookup ended
}

// runningConv is the conversation whose answer a deletion stops in
// TestDeletionDuringClusterDrain (heldStore lists it as streaming).
const runningConv = "conversation-answering-elsewhere"

// Running holds the lookup of runningConv (holdRunning) as drainBus says.
func (b *drainBus) Running(ctx context.Context, convID string) (hub.AnswerRef, bool, error) {
	if !b.holdRunning || convID != runningConv {
		return b.MemBus.Running(ctx, convID)
	}
	b.runningOnce.Do(func() { close(b.runningHeld) })
	<-ctx.Done()
	b.mu.Lock()
	b.runningEnd = ctx.Err()
	b.mu.Unlock()
	return hub.AnswerRef{}, false, ctx.Err()
}

// heldRunningEnd is why the held lookup of runningConv ended.
func (b *drainBus) heldRunningEnd() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.runningEnd
}

func (b *drainBus) Broadcast(ctx context.Context, ev hub.UserEvent) error {
	b.mu.Lock()
	closed := b.closed
	if !closed && ctx.Err() == nil {
		b.carried = append(b.carried, ev)
	}
	b.mu.Unlock()
	if closed {
		return errors.New("bus closed")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return b.MemBus.Broadcast(ctx, ev)
}

func (b *drainBus) Close(context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.closed {
		b.closed = true
		close(b.closing)
	}
	return nil
}

// closedFor tells whether the bus carried the close of userID's
// connections for their account's deletion.
func (b *drainBus) closedFor(userID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, ev := range b.carried {
		if ev.UserID == userID && ev.Close != nil && ev.Close.Reason == protocol.ReasonAccountDeleted {
			return true
		}
	}
	return false
}

// heldStore holds an account deletion at its read of the user's running
// answers (endUser), telling held, until release is closed; the read
// then lists the streaming conversations too.
type heldStore struct {
	persistence.Store
	held      chan struct{}
	release   chan struct{}
	once      sync.Once
	streaming []string
}

func (s *heldStore) StreamingConversations(ctx context.Context, ownerID string) ([]string, error) {
	s.once.Do(func() { close(s.held) })
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	ids, err := s.Store.StreamingConversations(ctx, ownerID)
	return append(ids, s.streaming...), err
}

// TestDeletionDuringClusterDrain: an account deletion under way when a
// cluster instance begins to shut down (SIGTERM) ends the user's live work
// over the bus before the bus is closed: the deletion is waited for, its
// close carried to the other instances, then the account removed. One
// still short of that when the grace is spent is refused 503, the account
// left in place and no close carried. One whose close was carried, still
// stopping the answers when the grace is spent, is waited for before the
// hub stops its bus work and goes on: its user's tabs were told the
// account is gone. Before, the bus was closed before the deletions were
// waited for: a deletion running on lost its close (only logged), other
// instances kept the user's sockets and answers, yet the data was
// removed; then such a deletion was refused 503 once the hub's bus work
// stopped under its stops, nothing removed, after its close had told the
// tabs the account was deleted.
func TestDeletionDuringClusterDrain(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		graceSpent bool // Shutdown's grace (spentGrace) ends before the deletion goes on
		stopping   bool // ... while it stops an answer running elsewhere, its close carried
		status     int
	}{
		{"grace left", false, false, http.StatusNoContent},
		{"grace spent before the end of live work", true, false, http.StatusServiceUnavailable},
		{"grace spent while the answers stop", true, true, http.StatusNoContent},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bus := &drainBus{MemBus: hub.NewMemCluster().Join("a"), closing: make(chan struct{}),
				holdRunning: tc.stopping, runningHeld: make(chan struct{})}
			store := &heldStore{held: make(chan struct{}), release: make(chan struct{})}
			if tc.stopping {
				close(store.release)
				store.streaming = []string{runningConv}
			}
			e := newEnv(t, envOptions{tweak: func(c *Config) {
				store.Store = c.Store
				c.Store, c.Bus = store, bus
				c.Hub.FinishTimeout = stopBound
			}})
			u := e.register(t)
			var tab *client
			if !tc.graceSpent {
				tab = e.dial(t, u)
			}
			deleted := make(chan int, 1)
			go func() { deleted <- e.deleteMe(u) }()
			if tc.stopping {
				<-bus.runningHeld
				if !bus.closedFor(u.ID) {
					t.Fatal("the bus had not carried the close when the answers were being stopped")
				}
			} else {
				<-store.held
			}

			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			sctx, scancel := ctx, context.CancelFunc(func() {})
			if tc.graceSpent {
				sctx, scancel = context.WithTimeout(ctx, spentGrace)
			}
			defer scancel()
			shut := make(chan error, 1)
			go func() { shut <- e.app.Shutdown(sctx) }()
			switch {
			case tc.stopping: // the grace ends during the stop
			case tc.graceSpent:
				<-bus.closing // the drain went on without the deletion
				close(store.release)
			default:
				if got := tab.closeStatus(); got != websocket.StatusGoingAway {
					t.Errorf("the tab at shutdown: close status %d, want 1001", got)
				}
				close(store.release)
			}

			if got := <-deleted; got != tc.status {
				t.Fatalf("DELETE /api/auth/me: %d, want %d", got, tc.status)
			}
			if err := <-shut; err != nil {
				t.Fatalf("shutdown: %v", err)
			}
			_, err := e.store.UserByID(ctx, u.ID)
			if tc.status == http.StatusServiceUnavailable {
				if err != nil {
					t.Fatalf("the account refused deletion: %v, want it in place", err)
				}
				if bus.closedFor(u.ID) {
					t.Error("the bus carried the close of an account whose deletion was refused")
				}
				return
			}
			if !bus.closedFor(u.ID) {
				t.Error("the bus never carried the deleted account's close")
			}
			if !errors.Is(err, persistence.ErrNotFound) {
				t.Fatalf("the deleted account: %v, want not found", err)
			}
			if end := bus.heldRunningEnd(); tc.stopping && !errors.Is(end, context.DeadlineExceeded) {
				t.Errorf("the stop of the answer running elsewhere ended with %v, want its own bound (%v): "+
					"the drain stopped the hub's bus work under it", end, context.DeadlineExceeded)
			}
		})
	}
}

// stopBound is the hub's FinishTimeout in TestDeletionDuringClusterDrain:
// how long a deletion's stop of an answer running elsewhere lasts when its
// bus lookup is held, well past spentGrace and well within the wait a
// drain gives an end of live work under way (endUsersTimeout, 2 s, from
// about spentGrace on): at 1 s, a stall of a second under -race on a
// loaded machine could end that wait first (503 and a failed shutdown).
const stopBound = 400 * time.Millisecond

// spentGrace is a shutdown's grace that ends while the deletion is held:
// enough for the tabs' close (there are none), short of the held deletion.
const spentGrace = 100 * time.Millisecond

// deleteMe asks for u's account to be deleted and returns the status.
func (e *env) deleteMe(u user) int {
	body, _ := json.Marshal(map[string]string{"password": "correct horse battery"})
	req, _ := http.NewRequest(http.MethodDelete, e.srv.URL+"/api/auth/me", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+u.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	return res.StatusCode
}
