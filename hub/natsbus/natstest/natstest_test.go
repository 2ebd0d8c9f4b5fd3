package natstest_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"chatd/hub/natsbus/natstest"
)

// TestClusterFaults checks the helper itself: replicated KV data survives
// one node killed and restarted, and the whole cluster stopped and started
// again on the same ports and store directories.
func TestClusterFaults(t *testing.T) {
	t.Parallel()
	c := natstest.Start(t, natstest.Options{User: "chatd", Password: "secret"})
	nc, err := nats.Connect(strings.Join(c.URLs(), ","), nats.UserInfo("chatd", "secret"),
		nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Each attempt is bounded: a request the freshly formed cluster drops
	// (seen once in CI) is not waited for until the test's deadline.
	var kv jetstream.KeyValue
	for kv == nil {
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		kv, err = js.CreateKeyValue(actx, jetstream.KeyValueConfig{Bucket: "probe", Replicas: 3})
		acancel()
		if err != nil && ctx.Err() != nil {
			t.Fatalf("create kv: %v", err)
		}
		if err != nil {
			t.Logf("create kv: %v; trying again", err)
			poll(ctx)
		}
	}
	put := func(key, val string) {
		t.Helper()
		for {
			_, err := kv.PutString(ctx, key, val)
			if err == nil {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("put %s: %v", key, err)
			}
			poll(ctx)
		}
	}
	put("a", "1")

	c.Kill(c.LeaderIndex())
	put("b", "2") // two of three nodes keep a quorum
	for i := range c.Nodes() {
		c.Restart(i) // no-op for running nodes
	}

	c.StopAll()
	down, cancelDown := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancelDown()
	if _, err := kv.Get(down, "a"); err == nil {
		t.Fatal("get succeeded with every node down")
	}
	c.StartAll()
	for _, want := range []struct{ key, val string }{{"a", "1"}, {"b", "2"}} {
		var e jetstream.KeyValueEntry
		for e == nil {
			e, err = kv.Get(ctx, want.key)
			if err != nil && (ctx.Err() != nil || errors.Is(err, jetstream.ErrKeyNotFound)) {
				t.Fatalf("get %s after restart: %v", want.key, err)
			}
			if err != nil {
				poll(ctx) // the stream's leader is being elected
			}
		}
		if string(e.Value()) != want.val {
			t.Fatalf("%s = %q after restart, want %q", want.key, e.Value(), want.val)
		}
	}
}

// poll waits one polling interval or until ctx ends.
func poll(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(20 * time.Millisecond):
	}
}
