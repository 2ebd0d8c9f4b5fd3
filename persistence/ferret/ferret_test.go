package ferret_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence/ferret"
)

// roundTrip connects to uri, writes one document and reads it back.
func roundTrip(ctx context.Context, uri, value string) error {
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = c.Disconnect(context.WithoutCancel(ctx)) }()
	coll := c.Database("t").Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: value}}); err != nil {
		return fmt.Errorf("insert: %w", err)
	}
	var got bson.M
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: value}}).Decode(&got); err != nil {
		return fmt.Errorf("find: %w", err)
	}
	if got["_id"] != value {
		return fmt.Errorf("read back %v, want %s", got["_id"], value)
	}
	return nil
}

func TestStartParallelInstances(t *testing.T) {
	t.Parallel()
	for i := range 3 {
		t.Run(fmt.Sprint("instance", i), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			uri := ferret.Start(t)
			if !strings.HasPrefix(uri, "mongodb://127.0.0.1:") {
				t.Fatalf("uri %q is not a loopback MongoDB URI", uri)
			}
			// The same _id in every instance: each has its own data.
			if err := roundTrip(ctx, uri, "same-id"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// ferretGoroutines lists the stacks of live goroutines running FerretDB or
// database/sql code.
func ferretGoroutines() []string {
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
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "FerretDB") || strings.Contains(g, "database/sql") {
			found = append(found, g)
		}
	}
	return found
}

// TestStopLeavesNoGoroutines is not parallel: parallel tests' servers would
// be counted. It also checks that data survives a restart on the same files.
func TestStopLeavesNoGoroutines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	logger := slog.New(ferret.NewTestHandler(t, slog.LevelInfo))

	uri, stop, err := ferret.StartServer(ctx, dir, logger)
	if err != nil {
		t.Fatal(err)
	}
	if err := roundTrip(ctx, uri, "kept"); err != nil {
		t.Fatal(err)
	}
	stop()
	stop() // idempotent

	uri, stop, err = ferret.StartServer(ctx, dir, logger)
	if err != nil {
		t.Fatal(err)
	}
	c, err := mongo.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	n, err := c.Database("t").Collection("c").CountDocuments(ctx, bson.D{{Key: "_id", Value: "kept"}})
	if err != nil || n != 1 {
		t.Fatalf("after restart: count %d, err %v; want 1, nil", n, err)
	}
	if err := c.Disconnect(ctx); err != nil {
		t.Fatal(err)
	}
	stop()

	// Goroutines end asynchronously (the driver's pools, timers): poll.
	for {
		left := ferretGoroutines()
		if len(left) == 0 && runtime.NumGoroutine() <= before {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d goroutines before, %d after stop; FerretDB ones:\n%s",
				before, runtime.NumGoroutine(), strings.Join(left, "\n\n"))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestStartServerRelativeDir starts FerretDB on a directory named relative
// to the working directory, as `go run ./bench -out <dir>` gives it.
func TestStartServerRelativeDir(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("data", 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	uri, stop, err := ferret.StartServer(ctx, "data", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	if err := roundTrip(ctx, uri, "relative"); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob("data/*.sqlite"); len(files) == 0 {
		t.Fatal("no SQLite file in the relative directory")
	}
}

func TestStartServerRejectsMissingDir(t *testing.T) {
	t.Parallel()
	_, _, err := ferret.StartServer(context.Background(), t.TempDir()+"/missing", nil)
	if err == nil {
		t.Fatal("StartServer with a missing directory succeeded")
	}
}

func TestTestHandlerDropsLateRecords(t *testing.T) {
	t.Parallel()
	var h *ferret.TestHandler
	t.Run("inner", func(t *testing.T) {
		h = ferret.NewTestHandler(t, nil)
		if h.Enabled(context.Background(), slog.LevelDebug) || !h.Enabled(context.Background(), slog.LevelInfo) {
			t.Error("a nil level should enable info and above only")
		}
		slog.New(h).WithGroup("g").With("a", 1).Info("during the test", "b", 2)
	})
	// inner has finished: logging through its handler must not panic.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		slog.New(h).Info("after the test")
	}()
	wg.Wait()
}

// TestStartStopsWithTheTest checks that the server Start runs in a process
// of its own is gone once the test that started it has ended: nothing keeps
// listening on its port.
func TestStartStopsWithTheTest(t *testing.T) {
	t.Parallel()
	var uri string
	t.Run("server", func(t *testing.T) {
		uri = ferret.Start(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := roundTrip(ctx, uri, "during"); err != nil {
			t.Fatal(err)
		}
	})
	host := strings.TrimSuffix(strings.TrimPrefix(uri, "mongodb://"), "/")
	if c, err := net.DialTimeout("tcp", host, 5*time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still takes connections after its test ended", host)
	}
}
