package app

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chatd/persistence"
)

// diskFull is a store whose writes fail while full is set, as on a full disk.
type diskFull struct {
	persistence.Store
	full atomic.Bool
}

var errDiskFull = errors.New("database or disk is full (13)")

func (s *diskFull) ApplyMessageUpdates(ctx context.Context, u []persistence.MessageUpdate) ([]string, error) {
	if s.full.Load() {
		return nil, errDiskFull
	}
	return s.Store.ApplyMessageUpdates(ctx, u)
}

func (s *diskFull) ProbeWrite(ctx context.Context) error {
	if s.full.Load() {
		return errDiskFull
	}
	return s.Store.ProbeWrite(ctx)
}

// TestDiskFullDuringAnswer (issue 10, item 10): when the final write fails,
// every tab's done says error/unavailable (never complete), claiming only
// the text saved (none: the disk was full from the start), and /readyz is
// 503; once the disk has room the writer's retries store the answer, all
// the text streamed, and /readyz is 200 again.
func TestDiskFullDuringAnswer(t *testing.T) {
	t.Parallel()
	var store *diskFull
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		store = &diskFull{Store: c.Store}
		c.Store = store
		c.Hub.FinishTimeout = 200 * time.Millisecond // how long an answer waits for its final write
		c.Writer.RetryBase, c.Writer.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	}})
	u := e.register(t)
	a := e.dial(t, u)
	e.rest(t, "", http.MethodGet, "/readyz", nil, http.StatusOK, nil)

	store.full.Store(true)
	ack := a.start("fill the disk [[fake tokens=20]]")
	var text strings.Builder
	var done frame
	for _, f := range live(a.until(isDone(ack.MessageID))) {
		switch {
		case f.MessageID != ack.MessageID:
		case f.Type == "delta":
			text.WriteString(f.Text)
		case f.Type == "done":
			done = f
		}
	}
	if code, _ := done.doneError(); done.Status != "error" || code != "unavailable" || done.Seq != 0 {
		t.Fatalf("done after a failed final write: %s, want status error, code unavailable, seq 0 (nothing saved)", done.raw)
	}
	e.rest(t, "", http.MethodGet, "/readyz", nil, http.StatusServiceUnavailable, nil)

	store.full.Store(false)
	waitFor(t, "the answer stored once the disk has room", func() bool {
		m := e.thread(t, u, ack.ConversationID).message(t, ack.MessageID)
		return m.Status == persistence.StatusComplete && m.Content == text.String()
	})
	waitFor(t, "/readyz 200 again", func() bool {
		res, err := http.Get(e.srv.URL + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	})
}
