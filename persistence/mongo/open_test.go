package mongo_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"chatd/persistence"
	"chatd/persistence/ferret"
	"chatd/persistence/mongo"
)

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func TestOpenErrorNamesHostButNotPassword(t *testing.T) {
	t.Parallel()
	port := closedPort(t)
	host := fmt.Sprintf("127.0.0.1:%d", port)
	tests := []struct {
		name, uri, wantHost string
	}{
		{"unreachable", "mongodb://chat:secret@" + host + "/?authSource=admin", host},
		{"unreachable, escaped password", "mongodb://chat:s%65cret@" + host + "/chat", host},
		{"replica set", "mongodb://chat:secret@" + host + ",127.0.0.1:1/?replicaSet=rs0", host},
		{"bad option", "mongodb://chat:secret@" + host + "/?connectTimeoutMS=secret", host},
		{"bad port", "mongodb://chat:secret@127.0.0.1:secret/", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			s, err := mongo.Open(context.Background(), mongo.Options{URI: tt.uri, ConnectTimeout: 2 * time.Second})
			elapsed := time.Since(start)
			if err == nil {
				_ = s.Close(context.Background())
				t.Fatal("Open succeeded")
			}
			msg := err.Error()
			t.Logf("error after %s: %s", elapsed.Round(time.Millisecond), msg)
			if !strings.Contains(msg, tt.wantHost) {
				t.Errorf("error %q does not name host %s", msg, tt.wantHost)
			}
			if strings.Contains(msg, "secret") {
				t.Errorf("error %q contains the password", msg)
			}
			if elapsed > 10*time.Second {
				t.Errorf("Open took %s to fail", elapsed)
			}
		})
	}
}

func TestOpenTimeoutIsAContextError(t *testing.T) {
	t.Parallel()
	uri := fmt.Sprintf("mongodb://chat:secret@127.0.0.1:%d/", closedPort(t))
	_, err := mongo.Open(context.Background(), mongo.Options{URI: uri, ConnectTimeout: time.Second})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v is not context.DeadlineExceeded", err)
	}
}

func TestOpenEmptyURI(t *testing.T) {
	t.Parallel()
	if _, err := mongo.Open(context.Background(), mongo.Options{}); err == nil {
		t.Fatal("Open with an empty URI succeeded")
	}
}

// TestOpenSchemaAndIndexes checks the meta document, the indexes, that a
// second Open on the same database changes nothing, and that a database
// written by a newer server is refused.
func TestOpenSchemaAndIndexes(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)

	again, err := mongo.Open(ctx, mongo.Options{URI: e.uri, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("second open: %v", err)
	}
	if err := again.Close(ctx); err != nil {
		t.Fatal(err)
	}

	var schema struct {
		Version int      `bson:"version"`
		Applied []bson.M `bson:"applied"`
	}
	if err := e.raw.Collection("meta").FindOne(ctx, bson.D{{Key: "_id", Value: "schema"}}).Decode(&schema); err != nil {
		t.Fatalf("read schema: %v", err)
	}
	if schema.Version != 3 || len(schema.Applied) != 3 {
		t.Errorf("schema = %+v, want versions 1 to 3 applied once each", schema)
	}

	wantIndexes := map[string][]string{
		"users":         {"email_unique"},
		"conversations": {"owner_updated", "client_key_unique"},
		"messages":      {"conversation_created", "owner_client_message_unique", "status"},
	}
	for coll, names := range wantIndexes {
		specs, err := e.raw.Collection(coll).Indexes().ListSpecifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, s := range specs {
			have[s.Name] = true
		}
		for _, n := range names {
			if !have[n] {
				t.Errorf("%s: index %s missing (have %v)", coll, n, have)
			}
		}
	}

	// A step another server recorded first (its Open ran between this
	// one's read of the version and its record) is not recorded again,
	// and the caller learns it (its log then says so instead of
	// "migrated"); a step past the recorded version is recorded.
	if recorded, err := mongo.RecordSchemaStep(ctx, e.store, 2); err != nil || recorded {
		t.Fatalf("recording step 2 of a schema at 3: %v %v, want not recorded", recorded, err)
	}
	_, err = e.raw.Collection("meta").UpdateOne(ctx, bson.D{{Key: "_id", Value: "schema"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: 2}}}})
	if err != nil {
		t.Fatal(err)
	}
	if recorded, err := mongo.RecordSchemaStep(ctx, e.store, 3); err != nil || !recorded {
		t.Fatalf("recording step 3 of a schema at 2: %v %v, want recorded", recorded, err)
	}

	_, err = e.raw.Collection("meta").UpdateOne(ctx, bson.D{{Key: "_id", Value: "schema"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: 99}}}})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := mongo.Open(ctx, mongo.Options{URI: e.uri, Logger: testLogger(t)}); err == nil {
		_ = s.Close(ctx)
		t.Fatal("Open accepted a schema version newer than it knows")
	} else if !strings.Contains(err.Error(), "99") {
		t.Errorf("error %q does not name the version", err)
	}
}

// TestOpenSchemaOfEarlierBuilds: a database at a schema version an
// earlier build recorded for a step since retired opens as it is: step 4
// (the sweep of what deleted users left, moved to the background after
// Open) was taken out of the history once, and a database that build had
// taken to 4 was refused as newer than the server. A database at 3 is not
// taken to 4 (the builds before this one still open it).
func TestOpenSchemaOfEarlierBuilds(t *testing.T) {
	t.Parallel()
	ctx, e := newEnv(t, nil)
	for _, v := range []int{4, 3} {
		_, err := e.raw.Collection("meta").UpdateOne(ctx, bson.D{{Key: "_id", Value: "schema"}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "version", Value: v}}}})
		if err != nil {
			t.Fatal(err)
		}
		s, err := mongo.Open(ctx, mongo.Options{URI: e.uri, Logger: testLogger(t), DeletionSweep: -1})
		if err != nil {
			t.Fatalf("Open of a database at schema %d: %v", v, err)
		}
		mongo.WaitCleanUp(s)
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		var schema struct {
			Version int `bson:"version"`
		}
		if err := e.raw.Collection("meta").FindOne(ctx, bson.D{{Key: "_id", Value: "schema"}}).Decode(&schema); err != nil {
			t.Fatal(err)
		}
		if schema.Version != v {
			t.Errorf("a database at schema %d is at %d after Open, want it unchanged", v, schema.Version)
		}
	}
}

func TestOpenDatabaseFromURIPath(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	takeFerretSlot(t)
	uri := ferret.Start(t)
	s, err := mongo.Open(ctx, mongo.Options{URI: strings.TrimSuffix(uri, "/") + "/otherdb", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close(ctx) }()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	u := persistence.User{Email: "someone@example.com", Name: "S"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	e, err := mongo.Open(ctx, mongo.Options{URI: uri, Database: "otherdb", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close(ctx) }()
	if _, err := e.UserByEmail(ctx, u.Email); err != nil {
		t.Errorf("user written through the URI's database is not in Database %q: %v", "otherdb", err)
	}
}
