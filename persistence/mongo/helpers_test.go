package mongo_test

import (
	"context"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/event"
	drv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/persistence"
	"chatd/persistence/ferret"
	"chatd/persistence/mongo"
)

// testTimeout bounds each test. It only catches a hang: the machine is
// shared and FerretDB scans whole collections, so a test of 200 updates
// ran out of time once at load 7-13 (storetest's bound is five minutes too).
const testTimeout = 5 * time.Minute

// ferretSlots limits how many tests use FerretDB at once. FerretDB is CPU
// bound (it scans and decodes whole collections in Go), so running every
// parallel test at once on a small machine only makes each slower, until
// the slowest pass their per-test deadlines. A test waits for a slot before
// it starts its clock.
var ferretSlots = make(chan struct{}, max(2, runtime.GOMAXPROCS(0)))

// takeFerretSlot holds a slot until the test ends.
func takeFerretSlot(t *testing.T) {
	t.Helper()
	ferretSlots <- struct{}{}
	t.Cleanup(func() { <-ferretSlots })
}

// env is one test's FerretDB, store on it and a raw client to inspect documents.
type env struct {
	uri   string
	store *mongo.Store
	raw   *drv.Database
}

// newEnv starts FerretDB and opens a store on it; both end with the test.
func newEnv(t *testing.T, monitor *event.CommandMonitor) (context.Context, env) {
	t.Helper()
	return newEnvVia(t, monitor, func(uri string) string { return uri })
}

// newEnvVia is newEnv with the store connecting to via(uri) instead of
// FerretDB's uri (through a proxy); the raw client connects directly.
func newEnvVia(t *testing.T, monitor *event.CommandMonitor, via func(uri string) string) (context.Context, env) {
	t.Helper()
	return newEnvWith(t, mongo.Options{Monitor: monitor}, via)
}

// newEnvWith is newEnvVia with the store's options opts (URI and Logger
// are set here).
func newEnvWith(t *testing.T, opts mongo.Options, via func(uri string) string) (context.Context, env) {
	t.Helper()
	takeFerretSlot(t)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	uri := ferret.Start(t)
	opts.URI, opts.Logger = via(uri), testLogger(t)
	store, err := mongo.Open(ctx, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() {
		if err := store.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	client, err := drv.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
	return ctx, env{uri: uri, store: store, raw: client.Database(mongo.DefaultDatabase)}
}

// mustUser creates a user with the given email.
func mustUser(ctx context.Context, t *testing.T, s persistence.Store, email string) persistence.User {
	t.Helper()
	u := persistence.User{Email: email, Name: "N", PasswordHash: "h"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatalf("create user %s: %v", email, err)
	}
	return u
}

// mustConversation creates a conversation of owner.
func mustConversation(ctx context.Context, t *testing.T, s persistence.Store, owner, title string) persistence.Conversation {
	t.Helper()
	c := persistence.Conversation{OwnerID: owner, Title: title, Model: "m"}
	if err := s.CreateConversation(ctx, &c); err != nil {
		t.Fatalf("create conversation %q: %v", title, err)
	}
	return c
}

// mustMessage inserts a message into c.
func mustMessage(ctx context.Context, t *testing.T, s persistence.Store, c persistence.Conversation, role persistence.Role, content string) persistence.Message {
	t.Helper()
	status := persistence.StatusComplete
	if role == persistence.RoleAssistant {
		status = persistence.StatusStreaming
	}
	m := persistence.Message{ConversationID: c.ID, OwnerID: c.OwnerID, Role: role, Content: content, Status: status}
	if err := s.InsertMessage(ctx, &m); err != nil {
		t.Fatalf("insert message: %v", err)
	}
	return m
}

// testLogger writes the store's logs to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(ferret.NewTestHandler(t, slog.LevelInfo))
}

// dropDatabase removes a benchmark's database from a real server.
func dropDatabase(tb testing.TB, uri, db string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	client, err := drv.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		tb.Errorf("drop %s: %v", db, err)
		return
	}
	defer func() { _ = client.Disconnect(ctx) }()
	if err := client.Database(db).Drop(ctx); err != nil {
		tb.Errorf("drop %s: %v", db, err)
	}
}
