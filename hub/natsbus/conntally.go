package natsbus

import (
	"context"
	"sync"
)

// connTally is this instance's own count of each user's open connections,
// from which it writes its entry in chatd_conns. One update of a user's
// entry runs at a time on this instance (the user's turn), so the count
// written is exactly the connections held here once it lands, whatever
// an earlier update that failed or whose reply was lost left in the key.
type connTally struct {
	mu    sync.Mutex
	users map[string]*userConns
	// losses counts the times this instance's counts were found lost
	// (see allLost): an update that began before a loss may have written
	// to the bucket lost, so it leaves the user dirty.
	losses uint64
}

// userConns is one user's tally on this instance.
type userConns struct {
	// turn holds one token while an update of the user's entry runs;
	// waiting for it is bounded by the caller's context.
	turn chan struct{}
	// open is the connections held here; only the holder of turn reads
	// or changes it.
	open int
	// Under connTally.mu:
	refs   int    // goroutines holding or waiting for turn
	delta  int    // connections admitted (+) or released (-) while turn could not be had; folded into open by the next holder
	dirty  bool   // the entry in chatd_conns may differ from open + delta
	losses uint64 // connTally.losses when the turn's holder began (fold)
}

func newConnTally() *connTally { return &connTally{users: map[string]*userConns{}} }

// entry returns the user's tally, made if missing; t.mu is held.
func (t *connTally) entry(userID string) *userConns {
	u := t.users[userID]
	if u == nil {
		u = &userConns{turn: make(chan struct{}, 1)}
		t.users[userID] = u
	}
	return u
}

// turn waits for the user's turn (until ctx ends) and returns the tally
// to update; done ends the turn.
func (t *connTally) turn(ctx context.Context, userID string) (*userConns, error) {
	t.mu.Lock()
	u := t.entry(userID)
	u.refs++
	t.mu.Unlock()
	select {
	case u.turn <- struct{}{}:
	case <-ctx.Done():
		t.mu.Lock()
		u.refs--
		t.mu.Unlock()
		return nil, unavailable("wait for the update of a connection count", ctx.Err())
	}
	t.fold(u)
	return u, nil
}

// tryTurn takes the user's turn if it is free and the user has a tally.
func (t *connTally) tryTurn(userID string) (*userConns, bool) {
	t.mu.Lock()
	u := t.users[userID]
	if u == nil {
		t.mu.Unlock()
		return nil, false
	}
	select {
	case u.turn <- struct{}{}:
		u.refs++
	default:
		t.mu.Unlock()
		return nil, false
	}
	t.mu.Unlock()
	t.fold(u)
	return u, true
}

// fold adds the connections counted without the turn to open; the caller
// holds u's turn.
func (t *connTally) fold(u *userConns) {
	t.mu.Lock()
	u.open = max(0, u.open+u.delta)
	u.delta = 0
	u.losses = t.losses
	t.mu.Unlock()
}

// done ends the turn taken by turn or tryTurn; failed says the entry in
// chatd_conns may not match open (the update did not land, or may not
// have). A tally with nothing to count or repair is forgotten.
func (t *connTally) done(userID string, u *userConns, failed bool) {
	t.mu.Lock()
	u.dirty = failed || u.delta != 0 || u.losses != t.losses
	u.refs--
	if u.refs == 0 && u.open == 0 && !u.dirty {
		delete(t.users, userID)
	}
	t.mu.Unlock()
	<-u.turn
}

// blind counts a connection admitted (+1) or released (-1) while the
// user's turn could not be had; the next update or repair writes it.
func (t *connTally) blind(userID string, change int) {
	t.mu.Lock()
	u := t.entry(userID)
	u.delta += change
	u.dirty = true
	t.mu.Unlock()
}

// dirtyUsers lists the users whose entry in chatd_conns may be wrong.
func (t *connTally) dirtyUsers() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for id, u := range t.users {
		if u.dirty {
			out = append(out, id)
		}
	}
	return out
}

// allLost marks every user dirty: this instance's count of every user
// may be gone from chatd_conns, also of those whose connections did not
// change since (the bucket was lost, NATS having come back without its
// data; or the other instances judged this one dead and dropped its
// counts, see leaseView.seenAgain), so the next repair (within a
// renewal) writes them all again. Until then the other instances count
// none of the connections held here.
func (t *connTally) allLost() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.losses++
	for _, u := range t.users {
		u.dirty = true
	}
}
