// Package hubtest is a small in-memory stand-in for the hub, for the
// transports' own tests: it implements the Hub interfaces of transport/ws
// and transport/sse, records what it was asked, lets a test deliver frames
// to the subscribers it holds, and lets a test make a call slow (as a slow
// store would) by blocking it until released.
package hubtest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"

	"chatd/hub"
	"chatd/hub/protocol"
	"chatd/persistence"
)

// Hub is the fake. Zero value is not usable: call New.
type Hub struct {
	mu       sync.Mutex
	subs     map[hub.Subscriber]struct{}
	sends    []hub.SendRequest
	regens   []hub.RegenerateRequest
	subReqs  []hub.SubscribeRequest
	cancels  []Cancel
	owners   map[string]string // conversation id -> owner
	active   map[string]string // conversation id -> running answer
	changed  chan struct{}     // closed and replaced on every change
	block    chan struct{}     // while non-nil, Send and Regenerate wait for it to close
	sendErr  error             // when set, Send and Regenerate return it (after recording the request)
	repeat   bool              // Send and Regenerate answer as repeats (Result.Repeated)
	replaced [2]string         // Send and Regenerate answer with this model replaced by that one (ReplaceModel)
	entered  chan struct{}     // signalled when a blocked Send or Regenerate starts waiting
	detached int
	drained  map[hub.Subscriber]int // Drained calls
	// onRegister, when set, is called by Register (outside the lock) with
	// the new subscriber: to deliver a frame the moment it is registered.
	onRegister func(hub.Subscriber)
	catchUp    string // when set, Subscribe delivers it as a delta after the ack
	hang       bool   // Subscribe and CancelAnswer wait for their context to end
}

// New returns an empty fake hub.
func New() *Hub {
	return &Hub{subs: map[hub.Subscriber]struct{}{}, owners: map[string]string{},
		active: map[string]string{}, drained: map[hub.Subscriber]int{}, changed: make(chan struct{}), entered: make(chan struct{}, 16)}
}

// notifyLocked wakes WaitFor callers. Called with h.mu held.
func (h *Hub) notifyLocked() {
	close(h.changed)
	h.changed = make(chan struct{})
}

// WaitFor waits until cond (called with the hub locked) holds or ctx ends;
// it reports whether cond held.
func (h *Hub) WaitFor(ctx context.Context, cond func(*Hub) bool) bool {
	for {
		h.mu.Lock()
		ok, ch := cond(h), h.changed
		h.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// AddConversation makes id a conversation of owner; running names its
// running answer ("" for none).
func (h *Hub) AddConversation(id, owner, running string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.owners[id], h.active[id] = owner, running
}

// Block makes every Send wait until Unblock (a slow store).
func (h *Hub) Block() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.block = make(chan struct{})
}

// Unblock releases the Sends waiting since Block.
func (h *Hub) Unblock() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.block != nil {
		close(h.block)
		h.block = nil
	}
}

// FailSends makes every Send from now on return err, as the hub does when
// the store refuses what a send needs (hub.ErrSessionEnded: the account
// was deleted meanwhile).
func (h *Hub) FailSends(err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sendErr = err
}

// RepeatSends makes every Send and Regenerate from now on answer as the
// hub answers a request whose clientMessageId it found stored (a copy
// stored first on another instance): Result.Repeated.
func (h *Hub) RepeatSends() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.repeat = true
}

// ReplaceModel makes every Send and Regenerate from now on answer as the
// hub does when the conversation's model, replaced, is no longer offered
// and by answers in its place (Result.ReplacedModel, the ack's fields).
func (h *Hub) ReplaceModel(replaced, by string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.replaced = [2]string{replaced, by}
}

// result is the Result of a new answer in conv, as the hub was told to answer.
func (h *Hub) result(conv string) hub.Result {
	h.mu.Lock()
	defer h.mu.Unlock()
	return hub.Result{ConversationID: conv, UserMessageID: persistence.NewID(), MessageID: persistence.NewID(),
		Repeated: h.repeat, ReplacedModel: h.replaced[0], Model: h.replaced[1]}
}

// ack is the ack of res.
func ack(frameID json.RawMessage, res hub.Result) *protocol.Frame {
	return protocol.AckReplaced(frameID, res.ConversationID, res.UserMessageID, res.MessageID, res.ReplacedModel, res.Model)
}

// Hang makes every Subscribe and CancelAnswer from now on wait until its
// context ends and return its error, as the hub does on a store that does
// not answer (its ownership check reads the store).
func (h *Hub) Hang() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hang = true
}

// hung waits for ctx when Hang was called, and returns its error.
func (h *Hub) hung(ctx context.Context) error {
	h.mu.Lock()
	hang := h.hang
	h.mu.Unlock()
	if !hang {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

// Entered is signalled each time a Send starts waiting on Block.
func (h *Hub) Entered() <-chan struct{} { return h.entered }

// Subscribers returns the registered subscribers of user.
func (h *Hub) Subscribers(user string) []hub.Subscriber {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []hub.Subscriber
	for s := range h.subs {
		if s.UserID() == user {
			out = append(out, s)
		}
	}
	return out
}

// Count is the number of registered subscribers (any user).
func (h *Hub) Count() int { return len(h.subs) }

// Detached is how many subscribers were detached. Read under WaitFor.
func (h *Hub) Detached() int { return h.detached }

// Sends returns the send requests received so far.
func (h *Hub) Sends() []hub.SendRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hub.SendRequest(nil), h.sends...)
}

// SendCount is len(Sends()). Read under WaitFor.
func (h *Hub) SendCount() int { return len(h.sends) }

// SubscribeCount is len(SubscribeRequests()). Read under WaitFor.
func (h *Hub) SubscribeCount() int { return len(h.subReqs) }

// SubscribeRequests returns the subscribe requests received so far.
func (h *Hub) SubscribeRequests() []hub.SubscribeRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hub.SubscribeRequest(nil), h.subReqs...)
}

// DeliverAll delivers f to every registered subscriber of user.
func (h *Hub) DeliverAll(user string, f *protocol.Frame) {
	for _, s := range h.Subscribers(user) {
		s.Deliver(f)
	}
}

// Register implements the transports' Hub.
func (h *Hub) Register(sub hub.Subscriber) {
	h.mu.Lock()
	h.subs[sub] = struct{}{}
	h.notifyLocked()
	fn := h.onRegister
	h.mu.Unlock()
	if fn != nil {
		fn(sub)
	}
}

// OnRegister makes Register call fn with each new subscriber, as a hub
// would deliver a user-wide frame that comes at that moment.
func (h *Hub) OnRegister(fn func(hub.Subscriber)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.onRegister = fn
}

// Detach implements the transports' Hub.
func (h *Hub) Detach(sub hub.Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.subs, sub)
	h.detached++
	h.notifyLocked()
}

func (h *Hub) owned(user, conv string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owners[conv] != user {
		return protocol.Errorf(protocol.CodeNotFound, "conversation %s not found", conv)
	}
	return nil
}

// Send implements the transports' Hub: it acks with new ids (after Block
// is released, when blocked) and answers not_found for a conversation the
// user does not own.
func (h *Hub) Send(ctx context.Context, sub hub.Subscriber, user string, req hub.SendRequest) (hub.Result, error) {
	h.mu.Lock()
	h.sends = append(h.sends, req)
	h.mu.Unlock()
	if err := h.enter(ctx); err != nil {
		return hub.Result{}, err
	}
	if req.ConversationID != "" {
		if err := h.owned(user, req.ConversationID); err != nil {
			return hub.Result{}, err
		}
	}
	res := h.result(req.ConversationID)
	if res.ConversationID == "" {
		res.ConversationID = persistence.NewID()
	}
	if sub != nil {
		sub.Deliver(ack(req.FrameID, res))
	}
	return res, nil
}

// enter waits while the hub is blocked and returns FailSends' error;
// the caller recorded its request.
func (h *Hub) enter(ctx context.Context) error {
	h.mu.Lock()
	block, sendErr := h.block, h.sendErr
	h.notifyLocked()
	h.mu.Unlock()
	if sendErr != nil {
		return sendErr
	}
	if block != nil {
		h.entered <- struct{}{}
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// Regenerate implements the transports' Hub as Send does, for the
// conversations of the user only.
func (h *Hub) Regenerate(ctx context.Context, sub hub.Subscriber, user string, req hub.RegenerateRequest) (hub.Result, error) {
	h.mu.Lock()
	h.regens = append(h.regens, req)
	h.mu.Unlock()
	if err := h.enter(ctx); err != nil {
		return hub.Result{}, err
	}
	if err := h.owned(user, req.ConversationID); err != nil {
		return hub.Result{}, err
	}
	res := h.result(req.ConversationID)
	if sub != nil {
		sub.Deliver(ack(req.FrameID, res))
	}
	return res, nil
}

// Cancel is a cancel the fake was asked for.
type Cancel struct {
	ConversationID string
	MessageID      string // "": whichever answer runs
}

// Regenerates returns the regenerate requests received so far.
func (h *Hub) Regenerates() []hub.RegenerateRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hub.RegenerateRequest(nil), h.regens...)
}

// Cancels returns the cancels received so far, of owned conversations.
func (h *Hub) Cancels() []Cancel {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Cancel(nil), h.cancels...)
}

// CancelAnswer implements the transports' Hub.
func (h *Hub) CancelAnswer(ctx context.Context, user, conv, messageID string) error {
	if err := h.hung(ctx); err != nil {
		return err
	}
	if err := h.owned(user, conv); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cancels = append(h.cancels, Cancel{ConversationID: conv, MessageID: messageID})
	return nil
}

// SetCatchUp makes every later Subscribe deliver text, after its ack, as
// the catch-up delta of the subscribed answer, as the hub does for an
// answer resumed from its start.
func (h *Hub) SetCatchUp(text string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.catchUp = text
}

// Subscribe implements the transports' Hub: it acks (and delivers the
// catch-up set by SetCatchUp), then records the request, so a request
// recorded was answered.
func (h *Hub) Subscribe(ctx context.Context, sub hub.Subscriber, user string, req hub.SubscribeRequest) error {
	if err := h.hung(ctx); err != nil {
		return err
	}
	if err := h.owned(user, req.ConversationID); err != nil {
		return err
	}
	h.mu.Lock()
	text := h.catchUp
	h.mu.Unlock()
	sub.Deliver(protocol.Ack(req.FrameID))
	if text != "" {
		sub.Deliver(protocol.Delta(req.ConversationID, req.MessageID, int64(len(text)), text))
	}
	h.mu.Lock()
	h.subReqs = append(h.subReqs, req)
	h.notifyLocked()
	h.mu.Unlock()
	return nil
}

// Drained implements the transports' Hub: it counts the calls, per subscriber.
func (h *Hub) Drained(sub hub.Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.drained[sub]++
	h.notifyLocked()
}

// DrainedCount is how many times sub called Drained. Read under WaitFor.
func (h *Hub) DrainedCount(sub hub.Subscriber) int { return h.drained[sub] }

// Unsubscribe implements the transports' Hub.
func (h *Hub) Unsubscribe(hub.Subscriber, string) {}

// ActiveAnswer implements the transports' Hub: the running answer of the
// owner's conversation, "" for anyone else.
func (h *Hub) ActiveAnswer(_ context.Context, user, conv string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.owners[conv] != user {
		return ""
	}
	return h.active[conv]
}

// StoredKeys is a SentBefore for the transports' budget tests: user "u"
// has the key "stored" from a send and "regenerated" from a regenerate,
// and looking up "broken" fails as a store that is down; every other key,
// and every key of another user, is stored nowhere.
func StoredKeys(_ context.Context, user, clientID string) (hub.Stored, error) {
	switch {
	case user != "u":
		return hub.StoredNone, nil // another user's ids are not this one's
	case clientID == "stored":
		return hub.StoredSend, nil
	case clientID == "regenerated":
		return hub.StoredRegenerate, nil
	case clientID == "broken":
		return hub.StoredNone, errors.New("store down")
	}
	return hub.StoredNone, nil
}
