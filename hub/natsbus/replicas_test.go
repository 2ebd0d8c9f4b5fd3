package natsbus

import (
	"context"
	"testing"
	"time"

	"chatd/hub/natsbus/natstest"
)

// TestReplicasOnceTheClusterIsKnown: an instance configured with one NATS
// URL and started before NATS gives every bucket and stream three
// replicas once the three-node cluster is up: it judged the cluster by
// the one URL it knew, made them all with one replica, and never raised
// them, so losing that node stopped every send and takeover. A bucket or
// stream made with one replica is raised to three at the next start, and
// an instance configured with fewer never lowers them.
func TestReplicasOnceTheClusterIsKnown(t *testing.T) {
	t.Parallel()
	c := natstest.Start(t, natstest.Options{User: "chatd", Password: "pw", Stopped: true})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	// Its first attempt begins at once, NATS down, and lasts while
	// the cluster starts (provisionStepTimeout).
	early, _ := newBusWith(t, c, Options{URLs: c.URLs()[:1], InstanceID: "one-url", LeaseTTL: time.Second})
	c.StartAll()
	waitHealthy(t, ctx, early)
	wantReplicas(t, ctx, early, 3)

	steps := []struct {
		id       string
		replicas int // Options.Replicas: 0 lets the bus judge the cluster
		want     int
	}{
		{"made-with-one", 1, 1},
		{"raised", 0, 3},
		{"never-lowered", 1, 3},
	}
	for _, s := range steps {
		b, _ := newBusWith(t, c, Options{InstanceID: s.id, Prefix: "older", Replicas: s.replicas, LeaseTTL: time.Second})
		waitHealthy(t, ctx, b)
		wantReplicas(t, ctx, b, s.want)
		if err := b.Close(ctx); err != nil {
			t.Fatalf("close %s: %v", s.id, err)
		}
	}
}

// wantReplicas checks the replicas of every bucket and stream of b.
func wantReplicas(t *testing.T, ctx context.Context, b *Bus, want int) {
	t.Helper()
	res := b.res.Load()
	streams := []string{res.stream, res.events.name}
	for _, name := range []string{"locks", "leases", "conns", "sends", "windows"} {
		streams = append(streams, "KV_"+b.name(name))
	}
	for _, name := range streams {
		st, err := b.js.Stream(ctx, name)
		if err != nil {
			t.Fatalf("bus %s: stream %s: %v", b.id, name, err)
		}
		if got := st.CachedInfo().Config.Replicas; got != want {
			t.Errorf("bus %s: stream %s has %d replicas, want %d", b.id, name, got, want)
		}
	}
}
