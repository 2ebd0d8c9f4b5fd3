package hub

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"chatd/hub/protocol"
	"chatd/persistence"
)

// unsavedEnds remembers, for a while, the answers that ended on this
// instance without their final state stored (generation.store: the
// database refused the final write, or the writer dropped it and the
// answer could not be marked interrupted either). The store then still
// holds such an answer streaming, with the text of its last checkpoint,
// and would until the writer's retry lands or, for a dropped one, the
// next start's sweep: a tab that resumes it meanwhile (its reconnect
// coincided with the failure and missed the done) would get its stored
// text and wait for a done that never comes. With the answer remembered,
// the resume ends it as its live tabs saw it end: a done with the same
// error (unavailable), its seq the stored text's length, claiming no more
// than is stored. Once the store holds the answer final, its stored
// state answers the resume, as for any ended answer. An instance that
// mirrored such an answer for its tabs remembers it too, from its done
// (unsavedDone); one that did not cannot tell it from an answer whose
// lock was lost, and answers the stored text alone. At most unsavedMax
// answers are kept, each for unsavedAge.
//
// It also gives Hub.FinalDropped the owner of an answer whose final update
// the writer dropped after its Finish gave up waiting (errNotStored): an
// answer whose final update is being stored (begin to settle) is found
// there, so a drop reported meanwhile is not missed.
type unsavedEnds struct {
	mu    sync.Mutex
	ends  map[string]unsavedEnd // by message id
	order []string              // message ids, oldest first
	// finishing are the answers whose final update is being stored, by
	// message id: their owner, and whether the writer reported it dropped.
	finishing map[string]*finishingEnd
}

// unsavedEnd is what the done of an answer whose end was not stored said.
type unsavedEnd struct {
	body  *protocol.ErrorBody
	at    time.Time
	owner string // "" for an answer mirrored from another instance
}

// finishingEnd is an answer whose final update is being stored.
type finishingEnd struct {
	owner   string
	dropped bool // the writer reported its final update dropped
}

const (
	// unsavedMax bounds the answers unsavedEnds keeps.
	unsavedMax = 1024
	// unsavedAge is how long unsavedEnds keeps an answer: far longer than
	// a tab takes to reconnect.
	unsavedAge = 15 * time.Minute
)

// add remembers that answer id, of owner ("" for one mirrored from
// another instance), ended at now with body, not stored.
func (u *unsavedEnds) add(id, owner string, body *protocol.ErrorBody, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.addLocked(id, owner, body, now)
}

func (u *unsavedEnds) addLocked(id, owner string, body *protocol.ErrorBody, now time.Time) {
	if u.ends == nil {
		u.ends = make(map[string]unsavedEnd)
	}
	if _, ok := u.ends[id]; ok { // re-added: it moves to the back, as its time does
		u.order = slices.DeleteFunc(u.order, func(o string) bool { return o == id })
	}
	u.order = append(u.order, id)
	u.ends[id] = unsavedEnd{body: body, at: now, owner: owner}
	u.pruneLocked(now)
}

// begin notes that the final update of answer id, of owner, is being
// stored; settle ends that.
func (u *unsavedEnds) begin(id, owner string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.finishing == nil {
		u.finishing = make(map[string]*finishingEnd)
	}
	u.finishing[id] = &finishingEnd{owner: owner}
}

// settle ends begin: the final update of answer id was stored (body nil)
// or not (its done's error body, remembered at now, as add does). It
// reports whether the writer reported the update dropped meanwhile; the
// answer is then remembered with errNotEnded instead of body.
func (u *unsavedEnds) settle(id string, body *protocol.ErrorBody, now time.Time) (dropped bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f := u.finishing[id]
	delete(u.finishing, id)
	if f == nil || body == nil {
		return false
	}
	if f.dropped {
		body = errNotEnded
	}
	u.addLocked(id, f.owner, body, now)
	return f.dropped
}

// dropped records that the writer dropped the final update of answer id
// after its Finish gave up waiting: a remembered answer now ends with
// errNotEnded, and its owner is returned for marking it interrupted (ok);
// one still finishing is marked for settle, which does that (ok false);
// known is false for an answer not remembered here (nor finishing).
func (u *unsavedEnds) dropped(id string, now time.Time) (owner string, ok, known bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if f := u.finishing[id]; f != nil {
		f.dropped = true
		return "", false, true
	}
	e, found := u.ends[id]
	if !found || e.owner == "" || now.Sub(e.at) >= unsavedAge {
		return "", false, false
	}
	e.body = errNotEnded
	u.ends[id] = e
	return e.owner, true, true
}

// pruneLocked forgets the answers past unsavedAge and the oldest beyond
// unsavedMax; u.mu is held.
func (u *unsavedEnds) pruneLocked(now time.Time) {
	n := 0
	for n < len(u.order) && (len(u.order)-n > unsavedMax || now.Sub(u.ends[u.order[n]].at) >= unsavedAge) {
		delete(u.ends, u.order[n])
		n++
	}
	if n > 0 {
		u.order = append(u.order[:0:0], u.order[n:]...)
	}
}

// end returns m, an answer the store holds streaming, ended as its done
// said if it is one whose end this instance could not store, at most
// unsavedAge ago: status error with that done's error, and m's stored
// text (ok false otherwise).
func (u *unsavedEnds) end(m persistence.Message, now time.Time) (persistence.Message, bool) {
	if m.Status.Final() {
		return m, false
	}
	u.mu.Lock()
	e, ok := u.ends[m.ID]
	u.mu.Unlock()
	if !ok || now.Sub(e.at) >= unsavedAge {
		return m, false
	}
	m.Status, m.Error, m.ErrorCode = persistence.StatusError, e.body.Message, e.body.Code
	return m, true
}

// unsavedDone returns the error of done frame f when it reports an answer
// whose end could not be stored: status error, code unavailable (the
// done of errNotStored and errNotEnded). A mirror records it
// (mirror.onFrame), so that a resume on this instance is answered as on
// the answer's own. Another answer ended with that code is stored final,
// and unsavedEnds.end leaves it alone.
func unsavedDone(f *protocol.Frame) (*protocol.ErrorBody, bool) {
	if !bytes.Contains(f.Data, []byte(`"code":"`+protocol.CodeUnavailable+`"`)) {
		return nil, false // most dones: no JSON decoding
	}
	var d struct {
		Status string              `json:"status"`
		Error  *protocol.ErrorBody `json:"error"`
	}
	if json.Unmarshal(f.Data, &d) != nil || d.Status != string(persistence.StatusError) || d.Error == nil ||
		d.Error.Code != protocol.CodeUnavailable {
		return nil, false
	}
	return d.Error, true
}
