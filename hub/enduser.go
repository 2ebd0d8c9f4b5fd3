package hub

import (
	"sync"
	"time"
)

// endedUserRefusal is how long reserveAnswer refuses the answers of a
// user whose account deletion began (endedUsers): longer than a send or
// regenerate takes from its session check to its reservation (its reads;
// a regenerate's wait for the answer it replaces, up to FinishTimeout),
// short enough that an account whose deletion failed and was taken back
// (which signed its sessions out) answers again soon after signing in.
const endedUserRefusal = time.Minute

// endedUsers are the users whose account deletion began here (EndUser)
// or reached here (busHandler.UserEvent), each refused new answers for
// endedUserRefusal: a request that passed its session check before the
// revoke and reserves after haltUser's walk would otherwise start an
// answer nothing stops (the store refuses its insert from the user's
// mark on; this is the hub's own backstop). The zero value is ready to
// use.
type endedUsers struct {
	mu    sync.Mutex
	until map[string]time.Time
}

// refuse refuses userID new answers for endedUserRefusal, and forgets the
// users refused longer ago.
func (e *endedUsers) refuse(userID string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	for id, until := range e.until {
		if !now.Before(until) {
			delete(e.until, id)
		}
	}
	if e.until == nil {
		e.until = make(map[string]time.Time)
	}
	e.until[userID] = now.Add(endedUserRefusal)
}

// refused reports whether userID's account deletion began less than
// endedUserRefusal ago.
func (e *endedUsers) refused(userID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return time.Now().Before(e.until[userID])
}

// haltUser refuses userID new answers here (endedUsers), then ends with
// errDeleting every answer of the user running here and halts every one
// being prepared (haltConv), the user's account being deleted; it
// returns what closes once each ended (its done) or its reservation did.
// The refusal comes first: a reservation it does not refuse was made
// before it, so the walk finds it.
func (h *Hub) haltUser(userID string) []<-chan struct{} {
	h.endedUsers.refuse(userID)
	var ended []<-chan struct{}
	for _, c := range h.convsOf(userID) {
		if ch := haltConv(c, userID); ch != nil {
			ended = append(ended, ch)
		}
	}
	return ended
}

// stopUser is haltUser, waiting (up to FinishTimeout in all) until
// nothing of userID runs or is being prepared here: a halted reservation
// ends as its insert fails, or as its answer starts, which is then
// waited for too.
func (h *Hub) stopUser(userID string) {
	ended := h.haltUser(userID)
	if len(ended) == 0 {
		return // the common case: the snapshot's stops ended everything
	}
	deadline := time.NewTimer(h.opts.FinishTimeout)
	defer deadline.Stop()
	for ; len(ended) > 0; ended = h.haltUser(userID) {
		for _, ch := range ended {
			select {
			case <-ch:
			case <-deadline.C:
				h.log.Warn("an answer of an account being deleted did not end in time", "user", userID)
				return
			}
		}
	}
}

// convsOf returns the conversations of userID this instance holds state for.
func (h *Hub) convsOf(userID string) []*conv {
	h.mu.Lock()
	defer h.mu.Unlock()
	var cs []*conv
	for _, c := range h.convs {
		if c.owner == userID {
			cs = append(cs, c)
		}
	}
	return cs
}
