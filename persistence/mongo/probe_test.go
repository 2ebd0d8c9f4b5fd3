package mongo_test

import (
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// TestProbeWritesAtOnce: probe writes at once on a database without the
// probe document (a fresh one: readiness checks of several balancers, or
// instances, at their first look) all succeed. Each is an upsert by _id;
// MongoDB retries an upsert that lost the race to insert, FerretDB does
// not, and all but the first failed with a duplicate key there. Each
// round starts without the document.
func TestProbeWritesAtOnce(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	for round := range 40 {
		if _, err := e.raw.Collection("meta").DeleteOne(ctx, bson.D{{Key: "_id", Value: "probe"}}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range cap(errs) {
			wg.Go(func() { errs <- e.store.ProbeWrite(ctx) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
}
