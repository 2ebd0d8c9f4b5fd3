package mongo_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"chatd/internal/silentserver"
	"chatd/persistence/mongo"
)

// driverStacks returns the stacks of the goroutines running the driver's code.
func driverStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "go.mongodb.org/mongo-driver") {
			found = append(found, g)
		}
	}
	return found
}

// TestOpenAbandonedReturnsPromptly: an Open abandoned while the server
// does not answer (its ctx cancelled once the driver dialled the server)
// returns within seconds, though ConnectTimeout is a minute, and leaves
// none of the driver's goroutines. Its Disconnect waits for the server
// monitor's check, and the driver misses that check's cancellation when it
// comes just as the check starts: the check's handshake then waited out
// ConnectTimeout, and a stop during chatd's start-up with it. That is a
// race, so the test abandons many opens at once. Not parallel: it counts
// the driver's goroutines.
func TestOpenAbandonedReturnsPromptly(t *testing.T) {
	const (
		opens  = 200              // without the fix, 5 to 10 of them missed the cancel on each run tried (-race)
		prompt = 15 * time.Second // from the cancel to Open's return: ConnectTimeout is four times that
	)
	before := len(driverStacks())
	type result struct {
		took time.Duration
		err  error
	}
	results := make(chan result, opens)
	for range opens {
		addr, dialled := silentserver.Start(t)
		opts := mongo.Options{URI: "mongodb://" + addr + "/chatd?directConnection=true",
			ConnectTimeout: time.Minute, Logger: testLogger(t)}
		go func() {
			took, err := openAbandoned(opts, dialled)
			results <- result{took, err}
		}()
	}
	deadline := time.After(3 * prompt) // a hang fails here, not after the minute
	for i := range opens {
		select {
		case r := <-results:
			if r.err != nil {
				t.Error(r.err)
			} else if r.took > prompt {
				t.Errorf("an abandoned Open returned %s after its cancel, want within %s", r.took, prompt)
			}
		case <-deadline:
			t.Fatalf("%d of %d abandoned opens still going %s after they started; the driver's goroutines:\n%s",
				opens-i, opens, 3*prompt, strings.Join(driverStacks(), "\n\n"))
		}
	}
	// The driver's goroutines end as Disconnect returns, some just after: poll.
	for left := driverStacks(); len(left) > before; left = driverStacks() {
		select {
		case <-deadline:
			t.Fatalf("%d of the driver's goroutines before the opens, %d after:\n%s",
				before, len(left), strings.Join(left, "\n\n"))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// openAbandoned opens a store with opts, cancels the open once dialled is
// closed, and returns how long Open took to return after that.
func openAbandoned(opts mongo.Options, dialled <-chan struct{}) (time.Duration, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		s, err := mongo.Open(ctx, opts)
		if err == nil {
			_ = s.Close(context.Background())
		}
		done <- err
	}()
	select {
	case <-dialled:
	case err := <-done:
		return 0, fmt.Errorf("open returned before the server was dialled: %v", err)
	}
	cancel()
	cancelled := time.Now()
	if err := <-done; err == nil {
		return 0, errors.New("an abandoned Open succeeded")
	}
	return time.Since(cancelled), nil
}
