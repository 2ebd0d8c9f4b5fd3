package natsbus

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	"chatd/hub/natsbus/natstest"
	"chatd/hub/protocol"
)

// BenchmarkPublishFollow measures one coalesced frame's trip through the
// embedded three-node cluster: Publish on one instance (stored on three
// replicas) until Follow hands it over on another. It reports the p50 and
// p99 of that lateness per frame.
//
//	go test -run '^$' -bench PublishFollow ./hub/natsbus/
func BenchmarkPublishFollow(b *testing.B) {
	c := natstest.Start(b, natstest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	newB := func(id string) *Bus {
		bus, err := New(Options{URLs: c.URLs(), InstanceID: id, Stream: StreamLimits{MaxBytes: 64 << 20}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = bus.Close(context.Background()) })
		for bus.Health(ctx) != nil {
			time.Sleep(20 * time.Millisecond) // polling the bus's state
		}
		return bus
	}
	owner := newB("bench-owner")
	peer := newB("bench-peer")
	a := answer("conv-bench", "msg-bench", owner.InstanceID())
	sent := make([]time.Time, b.N+1)
	late := make([]time.Duration, 0, b.N+1)
	got := make(chan struct{})
	go func() {
		defer close(got)
		_ = peer.Follow(ctx, a, func(f *protocol.Frame) {
			if i, err := strconv.Atoi(string(f.Data)); err == nil {
				late = append(late, time.Since(sent[i]))
			}
		})
	}()
	b.ResetTimer()
	for i := range b.N + 1 {
		typ := protocol.TypeDelta
		if i == b.N {
			typ = protocol.TypeDone
		}
		sent[i] = time.Now()
		f := &protocol.Frame{Type: typ, ConversationID: a.ConversationID, MessageID: a.MessageID,
			Seq: int64(i), Data: []byte(fmt.Sprint(i))}
		if err := owner.Publish(ctx, a, f); err != nil {
			b.Fatal(err)
		}
	}
	<-got
	b.StopTimer()
	slices.Sort(late)
	b.ReportMetric(float64(late[len(late)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(late[len(late)*99/100].Microseconds()), "p99-µs")
}
