package natsbus

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatd/hub/natsbus/natstest"
	"chatd/internal/testcert"
)

// TestNKeyAuthentication: against a server that knows its user by NKey,
// the bus joins with that key's seed; another user's seed is refused
// and the refusal logged.
func TestNKeyAuthentication(t *testing.T) {
	seed, public := natstest.UserNKey(t)
	other, _ := natstest.UserNKey(t)
	c := natstest.Start(t, natstest.Options{Nodes: 1, NKey: public})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	b, err := New(Options{URLs: c.URLs(), InstanceID: "nkey-1", NKeySeedFile: seed, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close(context.Background()) })
	waitHealthy(t, ctx, b)

	logs := make(logRecords, 256)
	refused, err := New(Options{URLs: c.URLs(), InstanceID: "nkey-2", NKeySeedFile: other, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = refused.Close(context.Background()) })
	for {
		select {
		case r := <-logs:
			if r.Message != "NATS connection attempt failed" {
				continue
			}
			if reason := logAttr(r, "err"); !strings.Contains(strings.ToLower(reason), "authorization violation") {
				t.Fatalf("logged %q, want the server's authorization violation", reason)
			}
			return
		case <-ctx.Done():
			t.Fatal("the refused NKey was not logged")
		}
	}
}

func TestCheckNKeySeed(t *testing.T) {
	t.Parallel()
	seed, public := natstest.UserNKey(t)
	notSeed := filepath.Join(t.TempDir(), "public.nk")
	testcert.WriteFile(t, notSeed, []byte(public))
	cases := []struct {
		name string
		path string
		ok   bool
	}{
		{"a user seed", seed, true},
		{"a public key", notSeed, false},
		{"no file", filepath.Join(t.TempDir(), "missing.nk"), false},
	}
	for _, c := range cases {
		if err := CheckNKeySeed(c.path); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok %v", c.name, err, c.ok)
		}
	}
}
