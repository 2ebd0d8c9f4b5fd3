package app

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"chatd/internal/syncbuf"
	"chatd/persistence"
)

// TestClusterStopWithBusDown: SIGTERM (Shutdown) on an instance whose
// cluster bus is down (all of NATS stopped) while it streams an answer
// stops it as a single instance stops: the answer is interrupted at once,
// its tab gets the done (interrupted, the text it has) before the 1001
// close, the answer is stored so, and Shutdown returns nil well within
// the grace, with a warning that names the answer whose last frames were
// not published. Before, the drain closed the tab 1001 at once (no other
// instance could take it), streamed the answer to nobody for the whole
// grace, then waited FinishTimeout for publishes on a connection that was
// down, and failed ("publish the last frames to the cluster: context
// deadline exceeded"): exit status 1.
func TestClusterStopWithBusDown(t *testing.T) {
	t.Parallel()
	logs := &syncbuf.Buffer{}
	c := newCluster(t, clusterOptions{instances: 2, tweak: func(cfg *Config) {
		cfg.Logger = slog.New(slog.NewMultiHandler(cfg.Logger.Handler(),
			slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}})
	a := c.nodes[0]
	u := a.register(t)
	tab := a.dial(t, u)
	ack := tab.start("bus down [[fake tokens=100000 delay=5ms]]")
	seen := tab.until(func(f frame) bool { return f.Type == "delta" && f.MessageID == ack.MessageID })
	c.nats.StopAll()
	waitFor(t, "the bus to be reported down", func() bool { return c.buses[0].Health(context.Background()) != nil })

	wantStoppedAlone(t, a, u, tab, ack, seen)
	for _, want := range []string{"stopping as a single instance", "are not published", ack.MessageID} {
		if !strings.Contains(logs.String(), want) {
			t.Fatalf("no warning with %q:\n%s", want, logs)
		}
	}
}

// untilOrClosed is client.until failing with a clear message when the
// connection closes before a frame matches.
func untilOrClosed(t *testing.T, cl *client, match func(frame) bool) []frame {
	t.Helper()
	var got []frame
	for {
		select {
		case f := <-cl.frames:
			got = append(got, f)
			if match(f) {
				return got
			}
		case <-cl.closed:
			for more := true; more; {
				select {
				case f := <-cl.frames:
					if got = append(got, f); match(f) {
						return got
					}
				default:
					more = false
				}
			}
			t.Fatalf("the connection closed (%v) before the frame awaited", cl.err)
		case <-time.After(testTimeout):
			t.Fatalf("no frame within %s", testTimeout)
		}
	}
}

// TestClusterStopOnlyInstance: SIGTERM (Shutdown) on the only live
// instance of a cluster while it streams an answer stops it as a single
// instance stops: the answer is interrupted at once, its tab gets the done
// (interrupted, the text it has) before the 1001 close, the answer is
// stored so, and Shutdown returns nil well within the grace. Before, the
// rolling restart's drain closed the tab 1001 at once (to reconnect to an
// instance there was none of), streamed the answer to nobody for the
// whole grace, then stored it interrupted: a grace of downtime for
// nothing.
func TestClusterStopOnlyInstance(t *testing.T) {
	t.Parallel()
	c := newCluster(t, clusterOptions{instances: 1})
	a := c.nodes[0]
	// Alone once the instance judges: it has renewed its lease for a TTL.
	waitFor(t, "the instance to judge itself alone", c.buses[0].Alone)
	u := a.register(t)
	tab := a.dial(t, u)
	ack := tab.start("alone [[fake tokens=100000 delay=5ms]]")
	seen := tab.until(func(f frame) bool { return f.Type == "delta" && f.MessageID == ack.MessageID })

	wantStoppedAlone(t, a, u, tab, ack, seen)
}

// wantStoppedAlone shuts node a down (a 30 s grace) while tab follows its
// answer ack (seen: the frames so far) and wants it stopped as a single
// instance stops: the tab's done interrupted before its 1001 close,
// Shutdown nil within 10 s (a third of the grace, which a drain for
// nobody spends whole; 4 s of 10 left a loaded machine's stalls little
// room), the answer stored interrupted with the text the tab got.
func wantStoppedAlone(t *testing.T, a *env, u user, tab *client, ack frame, seen []frame) {
	t.Helper()
	const grace, bound = 30 * time.Second, 10 * time.Second
	began := time.Now()
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		shut <- a.app.Shutdown(ctx)
	}()
	seen = append(seen, untilOrClosed(t, tab, isDone(ack.MessageID))...)
	text, done := answer(t, live(seen), ack.MessageID)
	if done.Status != "interrupted" {
		t.Fatalf("the tab's done: %s", done.raw)
	}
	if code := tab.closeStatus(); code != websocket.StatusGoingAway {
		t.Fatalf("the tab closed with %d after its done, want 1001", code)
	}
	select {
	case err := <-shut:
		if err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("the shutdown never ended")
	}
	if took := time.Since(began); took > bound {
		t.Fatalf("the shutdown took %s of a %s grace, want within %s", took, grace, bound)
	}
	m, err := a.store.Message(context.Background(), u.ID, ack.MessageID)
	if err != nil || m.Status != persistence.StatusInterrupted || m.Content != text {
		t.Fatalf("stored %s with %d bytes (%v); the tab got %d", m.Status, len(m.Content), err, len(text))
	}
}
