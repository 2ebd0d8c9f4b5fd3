package natsbus

import (
	"context"
	"errors"
	"slices"
	"testing"

	"chatd/hub"
)

// TestConnTally: one update of a user's entry at a time; connections
// counted while the turn could not be had reach the next holder and
// leave the user to repair; a user with nothing held is forgotten.
func TestConnTally(t *testing.T) {
	tl := newConnTally()
	ctx := context.Background()
	u, err := tl.turn(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	u.open = 2
	if _, ok := tl.tryTurn("u"); ok {
		t.Fatal("a second turn while the first is held")
	}
	expired, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tl.turn(expired, "u"); !errors.Is(err, hub.ErrBusUnavailable) {
		t.Fatalf("turn with an ended context: %v, want ErrBusUnavailable", err)
	}
	tl.blind("u", +1)
	tl.done("u", u, false)
	if got := tl.dirtyUsers(); !slices.Equal(got, []string{"u"}) {
		t.Fatalf("dirty users %v, want [u]: a connection was counted without the turn", got)
	}
	u, ok := tl.tryTurn("u")
	if !ok || u.open != 3 {
		t.Fatalf("repair's turn: %v, open %d, want 3", ok, u.open)
	}
	u.open = 0
	tl.done("u", u, false)
	if len(tl.dirtyUsers()) != 0 || len(tl.users) != 0 {
		t.Fatalf("a user with nothing held stays: %v", tl.users)
	}
	if _, ok := tl.tryTurn("u"); ok {
		t.Fatal("repair's turn on a forgotten user")
	}
}

// TestConnTallyAllLost: once chatd_conns was lost every user is dirty,
// the idle ones and the one whose update was running then too (it may
// have written to the bucket lost), so the next repair writes each again.
func TestConnTallyAllLost(t *testing.T) {
	tl := newConnTally()
	ctx := context.Background()
	for _, user := range []string{"idle", "busy"} {
		u, err := tl.turn(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		u.open = 1
		if user == "idle" {
			tl.done(user, u, false)
		}
	}
	busy := tl.users["busy"]
	if got := tl.dirtyUsers(); len(got) != 0 {
		t.Fatalf("dirty users %v before the loss, want none", got)
	}
	tl.allLost()
	tl.done("busy", busy, false) // its update landed, in the bucket lost
	got := tl.dirtyUsers()
	slices.Sort(got)
	if !slices.Equal(got, []string{"busy", "idle"}) {
		t.Fatalf("dirty users %v after the loss, want [busy idle]", got)
	}
	u, _ := tl.tryTurn("busy")
	tl.done("busy", u, false)
	if got := tl.dirtyUsers(); !slices.Equal(got, []string{"idle"}) {
		t.Fatalf("dirty users %v after busy's repair, want [idle]", got)
	}
}
