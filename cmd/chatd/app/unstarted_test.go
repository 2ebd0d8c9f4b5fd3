package app

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/persistence"
)

// answersDownStore is a store that fails every answer's insert (the user
// message's goes through) with an error that leaves it unknown whether the
// row was written, and every InterruptMessage: a database that stopped
// taking writes.
type answersDownStore struct{ persistence.Store }

var errDown = errors.New("database is locked")

func (s answersDownStore) InsertMessage(ctx context.Context, m *persistence.Message) error {
	if m.Role == persistence.RoleAssistant {
		return errDown
	}
	return s.Store.InsertMessage(ctx, m)
}

func (s answersDownStore) InterruptMessage(context.Context, string, string, string, time.Time) (persistence.Message, error) {
	return persistence.Message{}, errDown
}

// TestShutdownAfterUnstartedAnswers: a single instance whose store failed
// the answers of a few sends shuts down within its grace, without error,
// its sockets closed 1001 (going away). Before, each failed send left a
// goroutine retrying its answer's end until the store answered, which
// the hub's shutdown waited for: the whole grace, then "publish the last
// frames to the cluster: context deadline exceeded", the sockets cut
// (1006) with no grace left.
func TestShutdownAfterUnstartedAnswers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: func(c *Config) { c.Store = answersDownStore{c.Store} }})
	u := e.register(t)
	cl := e.dial(t, u)
	for i := range 5 {
		cl.write(sendFrame(fmt.Sprint("s", i), "", "hi"))
		cl.until(func(f frame) bool { return f.Type == "error" })
	}
	// The grace only bounds a hang: the old code spent it whole, however
	// long (2 s was tight for a loaded machine's stalls under -race).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.app.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if got := cl.closeStatus(); got != websocket.StatusGoingAway {
		t.Fatalf("close status %d, want 1001", got)
	}
}
