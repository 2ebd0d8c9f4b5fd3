package natsbus

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"chatd/hub/natsbus/natstest"
)

// TestSharedWindows: a window's events are counted across instances
// under parallel attempts; refused attempts learn how long the window
// still runs; a refund gives one back, a reset all of them; an ended
// window starts again; no key names what it counts.
func TestSharedWindows(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	buses := healthyBuses(t, ctx, c, "win", 3)

	const key, max, length = "login-account:someone@example.com", 5, time.Minute
	var granted atomic.Int32
	parallel(t, buses, 4, func(i int, _ *Limits) error {
		wait, ok, err := buses[i].Windows().Take(ctx, key, max, length)
		if ok {
			granted.Add(1)
		} else if err == nil && (wait <= 0 || wait > length) {
			t.Errorf("refused with a wait of %v, want within the window", wait)
		}
		return err
	})
	if granted.Load() != max {
		t.Fatalf("%d attempts counted across the cluster, want %d", granted.Load(), max)
	}
	w := buses[0].Windows()
	take := func(want bool) {
		t.Helper()
		if _, ok, err := buses[2].Windows().Take(ctx, key, max, length); ok != want || err != nil {
			t.Fatalf("take: %v %v, want %v", ok, err, want)
		}
	}
	if err := w.Refund(ctx, key); err != nil {
		t.Fatal(err)
	}
	take(true)
	take(false)
	if err := w.Reset(ctx, key); err != nil {
		t.Fatal(err)
	}
	for range max {
		take(true)
	}
	take(false)

	keys, err := buses[0].Windows().bucket().ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for k := range keys.Keys() {
		if k != windowKey(testWindowsSecret, key) {
			t.Errorf("unexpected key %q", k)
		}
	}

	// A short window ends and starts again. A second take granted is a
	// fault only if it came within the window of the first: a pair that a
	// stall of the loaded machine spread over longer is tried again, on a
	// key of its own.
	const short = 200 * time.Millisecond
	var key7 string
	var wait time.Duration
	for try := 0; ; try++ {
		key7 = fmt.Sprintf("signup-ip:192.0.2.%d", 7+try)
		began := time.Now()
		if _, ok, err := w.Take(ctx, key7, 1, short); !ok || err != nil {
			t.Fatalf("first of a short window: %v %v", ok, err)
		}
		var ok bool
		var err error
		wait, ok, err = w.Take(ctx, key7, 1, short)
		if !ok && err == nil {
			break
		}
		if err != nil || time.Since(began) < short || try == 20 {
			t.Fatalf("second of a short window (%v after the first began): %v %v", time.Since(began), ok, err)
		}
	}
	select {
	case <-ctx.Done():
	case <-time.After(wait):
	}
	if _, ok, err := w.Take(ctx, key7, 1, short); !ok || err != nil {
		t.Fatalf("after the window's end (waited %v): %v %v", wait, ok, err)
	}
}

// TestWindowsBucketOptional: a NATS user that may not use the windows
// bucket (the permissions of an older deploy/nats-server.conf) still gets
// a working bus, says so once in its log, and leaves the login limits to
// each instance: every Take passes.
func TestWindowsBucketOptional(t *testing.T) {
	t.Parallel()
	c := natstest.Start(t, natstest.Options{Nodes: 1, User: "chatd", Password: "pw",
		DenyPublish: []string{"$JS.API.STREAM.*.KV_chatd_windows", "$KV.chatd_windows.>"}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logs := make(logRecords, 1024)
	b, err := New(Options{URLs: c.URLs(), InstanceID: "no-windows", User: "chatd", Password: "pw",
		LeaseTTL: time.Second, Stream: StreamLimits{MaxBytes: 64 << 20}, Logger: slog.New(logs),
		provisionStep: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b.Attach(newRecorder())
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	waitHealthy(t, ctx, b)
	for range 10 {
		if _, ok, err := b.Windows().Take(ctx, "login-account:x@example.com", 1, time.Minute); !ok || err != nil {
			t.Fatalf("take without the bucket: %v %v, want it to pass", ok, err)
		}
	}
	if ok, err := b.Limits().AcquireConn(ctx, "user-w", 1); !ok || err != nil {
		t.Fatalf("the rest of the bus: acquire %v %v", ok, err)
	}
	for warned := 0; warned == 0; {
		select {
		case r := <-logs:
			if strings.HasPrefix(r.Message, "cluster-wide limits of failed logins and registrations unavailable") {
				warned++
			}
		case <-ctx.Done():
			t.Fatal("the missing bucket was not logged")
		}
	}

	// The NATS node restarts with the permissions: the bus binds the
	// bucket by itself, says so, and the windows hold again.
	c.SetDenyPublish(nil)
	c.Kill(0)
	c.Restart(0)
	for bound := false; !bound; {
		select {
		case r := <-logs:
			bound = r.Message == "cluster-wide limits of failed logins and registrations available"
		case <-ctx.Done():
			t.Fatal("the bucket was not bound once allowed")
		}
	}
	if err := untilAvailable(ctx, func() error {
		_, _, err := b.Windows().Take(ctx, "login-account:y@example.com", 1, time.Minute)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Windows().Take(ctx, "login-account:y@example.com", 1, time.Minute); ok || err != nil {
		t.Fatalf("the second of one allowed with the bucket bound: %v %v", ok, err)
	}
}
