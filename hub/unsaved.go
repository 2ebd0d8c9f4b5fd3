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
// It also tells Hub.FinalDropped of an answer whose final update is being
// stored (begin to settle) when the writer reports it dropped: settle then
// ends the answer as dropped, so a drop reported meanwhile is not missed.
type unsavedEnds struct {
	mu    sync.Mutex
	ends  map[string]unsavedEnd // by message id
	order []string              // message ids, oldest first
	// finishing are the answers whose final update is being stored, by
	// message id: whether the writer reported it dropped.
	finishing map[string]bool
}

// unsavedEnd is what the done of an answer whose end was not stored said.
type unsavedEnd struct {
	body *protocol.ErrorBody
	at   time.Time
}

const (
	// unsavedMax bounds the answers unsavedEnds keeps.
	unsavedMax = 1024
	// unsavedAge is how long unsavedEnds keeps an answer: far longer than
	// a tab takes to reconnect.
	unsavedAge = 15 * time.Minute
)

// add remembers that answer id (one of this instance's, or one mirrored
// from another) ended at now with body, not stored.
func (u *unsavedEnds) add(id string, body *protocol.ErrorBody, now time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.addLocked(id, body, now)
}

func (u *unsavedEnds) addLocked(id string, body *protocol.ErrorBody, now time.Time) {
	if u.ends == nil {
		u.ends = make(map[string]unsavedEnd)
	}
	if _, ok := u.ends[id]; ok { // re-added: it moves to the back, as its time does
		u.order = slices.DeleteFunc(u.order, func(o string) bool { return o == id })
	}
	u.order = append(u.order, id)
	u.ends[id] = unsavedEnd{body: body, at: now}
	u.pruneLocked(now)
}

// begin notes that the final update of answer id is being stored; settle
// ends that.
func (u *unsavedEnds) begin(id string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.finishing == nil {
		u.finishing = make(map[string]bool)
	}
	u.finishing[id] = false
}

// settle ends begin: the final update of answer id was stored (body nil)
// or not (its done's error body, remembered at now, as add does). It
// reports whether the writer reported the update dropped meanwhile; the
// answer is then remembered with errNotEnded instead of body.
func (u *unsavedEnds) settle(id string, body *protocol.ErrorBody, now time.Time) (dropped bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	dropped, ok := u.finishing[id]
	delete(u.finishing, id)
	if !ok || body == nil {
		return false
	}
	if dropped {
		body = errNotEnded
	}
	u.addLocked(id, body, now)
	return dropped
}

// dropped records that the writer dropped the final update of answer id
// after its Finish gave up waiting: one still finishing is marked for
// settle, which ends it (finishing true); a remembered one now ends with
// errNotEnded.
func (u *unsavedEnds) dropped(id string, now time.Time) (finishing bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, ok := u.finishing[id]; ok {
		u.finishing[id] = true
		return true
	}
	if e, found := u.ends[id]; found && now.Sub(e.at) < unsavedAge {
		e.body = errNotEnded
		u.ends[id] = e
	}
	return false
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
