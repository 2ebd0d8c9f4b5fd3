package mongo_test

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"chatd/persistence"
	"chatd/persistence/ferret"
	"chatd/persistence/mongo"
	"chatd/persistence/storetest"
)

// BenchmarkFerretDB runs the shared store benchmarks against the MongoDB
// store on FerretDB (its own process: ferret.Start). FerretDB is not MongoDB: it scans and
// decodes whole collections for any filter but an exact _id, so these
// numbers measure FerretDB, not the store on MongoDB with its indexes.
//
// The data set defaults to the shared one (50,000 messages), whose fill on
// FerretDB takes a long time; CHATD_BENCH_USERS, CHATD_BENCH_CONVERSATIONS
// and CHATD_BENCH_MESSAGES shrink it. MONGODB_URI, when set, benchmarks that
// server instead (a fresh database named chatd_bench_<time> is used and
// dropped afterwards).
func BenchmarkFerretDB(b *testing.B) {
	opts := storetest.BenchOptions{
		Users:         envInt(b, "CHATD_BENCH_USERS"),
		Conversations: envInt(b, "CHATD_BENCH_CONVERSATIONS"),
		Messages:      envInt(b, "CHATD_BENCH_MESSAGES"),
	}
	storetest.RunBenchmarksWith(b, func(b *testing.B) persistence.Store {
		uri, db := os.Getenv("MONGODB_URI"), "chatd_bench"
		if uri == "" {
			uri = ferret.Start(b)
		} else {
			db += "_" + strconv.FormatInt(time.Now().UnixNano(), 36)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		s, err := mongo.Open(ctx, mongo.Options{URI: uri, Database: db,
			Logger: slog.New(ferret.NewTestHandler(b, slog.LevelWarn))})
		if err != nil {
			b.Fatal(err)
		}
		if os.Getenv("MONGODB_URI") != "" {
			b.Cleanup(func() { dropDatabase(b, uri, db) })
		}
		return s
	}, opts)
}

// envInt reads a positive integer from the environment; 0 when unset.
func envInt(b *testing.B, name string) int {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
