package main

import (
	"context"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	drv "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"chatd/hub/natsbus/natstest"
	"chatd/internal/syncbuf"
	"chatd/llm/fakeai"
	"chatd/persistence/ferret"
	"chatd/persistence/mongo"
)

// TestSecondSoloStartRefused: a second chatd started without
// CHATD_NATS_URL on the MongoDB a first one uses alone is refused at
// start, naming the first and saying what to do, and the first one's
// answer, streaming meanwhile, is still streaming in the database: the
// second did not sweep it as left by a last run. The first renews its
// lease every 50 ms, so the second sees it live at once.
func TestSecondSoloStartRefused(t *testing.T) {
	t.Parallel()
	fake := fakeai.Start(t, fakeai.Options{})
	uri := ferret.Start(t)
	lease := hooks{lease: mongo.LeaseOptions{TTL: 20 * time.Second, Renew: 50 * time.Millisecond}}
	envFor := func() map[string]string {
		return testEnv(t.TempDir(), "MONGODB_URI", uri, "MONGODB_DATABASE", "chatd_solo", "OPENAI_API_KEY", "sk-test",
			"OPENAI_BASE_URL", fake.URL, "OPENAI_MODELS", "fake-mini")
	}
	first := startWith(t, envFor(), lease)
	token, convID := registerAndCreate(t, first.url)
	ws := dialLive(t, first.url, token)
	writeLive(t, ws, map[string]any{"type": "send", "id": "1", "conversationId": convID,
		"content": "a long answer [[fake tokens=5000 delay=10ms]]"})
	answer := readLive(t, ws, func(f liveFrame) bool { return f.Type == "ack" && f.ID == "1" }).MessageID
	readLive(t, ws, func(f liveFrame) bool { return f.Type == "delta" && f.MessageID == answer })

	logs, err := runRefused(t, envFor(), lease)
	for _, want := range []string{"MONGODB_URI: the database is in use by another chatd process running alone",
		"pid " + strconv.Itoa(os.Getpid()), "stop that process, or run several instances as a cluster, each with CHATD_NATS_URL (docs/scale.md)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	if strings.Contains(logs, "answers left streaming by the last run") {
		t.Errorf("the second swept answers:\n%s", logs)
	}
	if status := storedStatus(t, uri, "chatd_solo", answer); status != "streaming" {
		t.Fatalf("the first one's answer is %q in the database, want still streaming", status)
	}
	writeLive(t, ws, map[string]any{"type": "cancel", "id": "2", "conversationId": convID})
	if f := readLive(t, ws, func(f liveFrame) bool { return f.Type == "done" && f.MessageID == answer }); f.Status != "cancelled" {
		t.Fatalf("the first one's answer ended %q, want cancelled", f.Status)
	}
}

// runRefused runs chatd with env and h and returns its logs and the
// error it ended with; a run that starts listening fails the test.
func runRefused(t *testing.T, env map[string]string, h hooks) (string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncbuf.Buffer{}
	listening := make(chan struct{})
	h.ready = func(net.Addr) { close(listening) }
	done := make(chan error, 1)
	go func() { done <- runWith(ctx, envOf(env), logs, h) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("the second run ended without an error\nlogs:\n%s", logs)
		}
		return logs.String(), err
	case <-listening:
		cancel()
		<-done
		t.Fatalf("the second chatd started on the database the first uses alone\nlogs:\n%s", logs)
	case <-time.After(testTimeout):
		t.Fatalf("the second run neither started nor ended within %s\nlogs:\n%s", testTimeout, logs)
	}
	return "", nil
}

// storedStatus is the status of message id as stored in database db.
func storedStatus(t *testing.T, uri, db, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	client, err := drv.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Disconnect(context.Background()) }()
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Status string }
	if err := client.Database(db).Collection("messages").FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Decode(&m); err != nil {
		t.Fatalf("read message %s: %v", id, err)
	}
	return m.Status
}

// TestSoloStartBesideClusterRefused: a chatd started without
// CHATD_NATS_URL on the MongoDB a cluster instance uses is refused at
// start, naming the instance and saying to set CHATD_NATS_URL, and the
// instance's answer, streaming meanwhile, is still streaming in the
// database: the process alone did not sweep it.
func TestSoloStartBesideClusterRefused(t *testing.T) {
	t.Parallel()
	nc := natstest.Start(t, natstest.Options{})
	fake := fakeai.Start(t, fakeai.Options{})
	uri := ferret.Start(t)
	lease := hooks{lease: mongo.LeaseOptions{TTL: 20 * time.Second, Renew: 50 * time.Millisecond}}
	env := func(more ...string) map[string]string {
		return testEnv(t.TempDir(), append([]string{"MONGODB_URI", uri, "MONGODB_DATABASE", "chatd_mixed",
			"OPENAI_API_KEY", "sk-test", "OPENAI_BASE_URL", fake.URL, "OPENAI_MODELS", "fake-mini",
			"JWT_SECRET", strings.Repeat("k", 32)}, more...)...)
	}
	inst := startWith(t, env("CHATD_NATS_URL", strings.Join(nc.URLs(), ","), "CHATD_INSTANCE_ID", "a"), lease)
	waitReadyz(t, inst.url)
	token, convID := registerAndCreate(t, inst.url)
	ws := dialLive(t, inst.url, token)
	writeLive(t, ws, map[string]any{"type": "send", "id": "1", "conversationId": convID,
		"content": "a long answer [[fake tokens=5000 delay=10ms]]"})
	answer := readLive(t, ws, func(f liveFrame) bool { return f.Type == "ack" && f.ID == "1" }).MessageID
	readLive(t, ws, func(f liveFrame) bool { return f.Type == "delta" && f.MessageID == answer })

	logs, err := runRefused(t, env(), lease)
	for _, want := range []string{"MONGODB_URI: the database is in use by a chatd cluster (instance a-",
		"pid " + strconv.Itoa(os.Getpid()), "set CHATD_NATS_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not say %q: %v", want, err)
		}
	}
	if strings.Contains(logs, "answers left streaming by the last run") {
		t.Errorf("the process alone swept answers:\n%s", logs)
	}
	if status := storedStatus(t, uri, "chatd_mixed", answer); status != "streaming" {
		t.Fatalf("the instance's answer is %q in the database, want still streaming", status)
	}
	writeLive(t, ws, map[string]any{"type": "cancel", "id": "2", "conversationId": convID})
	if f := readLive(t, ws, func(f liveFrame) bool { return f.Type == "done" && f.MessageID == answer }); f.Status != "cancelled" {
		t.Fatalf("the instance's answer ended %q, want cancelled", f.Status)
	}
}
