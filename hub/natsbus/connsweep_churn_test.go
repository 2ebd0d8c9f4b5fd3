package natsbus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestConnSweepEndsItsPassesUnderChurn: a dead instance's count in a key
// the sweep read once, too early to judge it, is removed while other keys
// are written faster than a round reads. A pass ended only at the
// stream's end, which the writes kept ahead of the cursor: the key stayed
// for good (20 s and 49,573 writes in the review's run).
func TestConnSweepEndsItsPassesUnderChurn(t *testing.T) {
	t.Parallel()
	c := startNATS(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	sweeper, _ := newBusWith(t, c, Options{InstanceID: "churn-live", LeaseTTL: time.Second,
		connsSweepEvery: 20 * time.Millisecond, connsSweepPage: 2})
	waitHealthy(t, ctx, sweeper)
	kv := sweeper.res.Load().conns
	if _, err := kv.Put(ctx, token("u-gone"), []byte(`{"churn-never-seen":1}`)); err != nil {
		t.Fatal(err)
	}
	churn, stop := make(chan int), make(chan struct{})
	go func() { // 50 keys of the live instance written as fast as they go: left alone
		n := 0
		defer func() { churn <- n }()
		for ; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := kv.Put(ctx, token(fmt.Sprintf("u-churn-%d", n%50)), []byte(`{"churn-live":1}`)); err != nil {
				return
			}
		}
	}()
	watcher, err := kv.Watch(ctx, token("u-gone"), jetstream.UpdatesOnly())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = watcher.Stop() }()
	for {
		select {
		case e := <-watcher.Updates():
			if e == nil || e.Operation() == jetstream.KeyValuePut {
				continue
			}
			close(stop)
			t.Logf("the dead count removed after %d writes of other keys", <-churn)
			return
		case <-ctx.Done():
			close(stop)
			n := <-churn
			if _, err := kv.Get(context.Background(), token("u-gone")); !errors.Is(err, jetstream.ErrKeyNotFound) {
				t.Fatalf("a never-seen instance's count still there after %d writes of other keys: %v", n, err)
			}
			return
		}
	}
}
