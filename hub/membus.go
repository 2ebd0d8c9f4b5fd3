package hub

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"chatd/hub/protocol"
)

// MemCluster is an in-memory Bus engine: the members it hands out (Join)
// share its locks, answer streams and events, within one process. With one
// member (NewLocalBus) it is a single chatd process, today's behaviour; with
// several it is a cluster of hubs in one process for tests, with faults to
// inject (SetDown, Crash, Rejoin). Streams are kept until the cluster is dropped.
type MemCluster struct {
	solo bool // one member: the hub skips publishing, nobody could follow

	mu      sync.Mutex
	members map[string]*MemBus
	locks   map[string]AnswerRef  // by conversation id
	streams map[string]*memStream // by message id
	jobs    map[string]memJob     // claimed jobs, by name (TakeJob)
	down    bool
	wake    chan struct{} // closed and replaced when anything changes
}

// memJob is a job's claim: who took it, and until when.
type memJob struct {
	instance string
	until    time.Time
}

type memStream struct {
	frames  []*protocol.Frame
	dropped int // frames discarded from the front (DropOldest)
}

// NewMemCluster returns an empty in-memory cluster.
func NewMemCluster() *MemCluster {
	return &MemCluster{members: make(map[string]*MemBus), locks: make(map[string]AnswerRef),
		streams: make(map[string]*memStream), jobs: make(map[string]memJob), wake: make(chan struct{})}
}

// NewLocalBus returns the bus of a single chatd process: a cluster of one,
// which the hub recognises so that it publishes nothing.
func NewLocalBus() *MemBus {
	c := NewMemCluster()
	c.solo = true
	return c.Join("local")
}

// Join adds a member (an instance) named id; the id must be new.
func (c *MemCluster) Join(id string) *MemBus {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.members[id]; ok {
		panic("membus: instance " + id + " joined twice")
	}
	b := &MemBus{c: c, id: id}
	c.members[id] = b
	return b
}

// SetDown makes the whole bus unreachable (true) or reachable again (false):
// while down, every call fails with ErrBusUnavailable and every Follow
// returns it.
func (c *MemCluster) SetDown(down bool) {
	c.mu.Lock()
	c.down = down
	c.changedLocked()
	c.mu.Unlock()
}

// Crash lets the lease of instance id expire, as if its process died: from
// then on its calls fail with ErrBusUnavailable (it is cut off), and every
// live member is told (Orphaned) of each lock it held, so exactly one of
// them, through Claim, ends each answer.
func (c *MemCluster) Crash(id string) {
	c.mu.Lock()
	b := c.members[id]
	if b == nil || b.dead.Load() {
		c.mu.Unlock()
		return
	}
	b.dead.Store(true)
	c.changedLocked()
	var orphans []AnswerRef
	for _, a := range c.locks {
		if a.Instance == id {
			orphans = append(orphans, a)
		}
	}
	live := c.liveLocked("")
	c.mu.Unlock()
	for _, m := range live {
		for _, a := range orphans {
			if h := m.handler(); h != nil {
				h.Orphaned(a)
			}
		}
	}
}

// Rejoin ends the cut of instance id that Crash made, as when a network
// split heals: its calls work again and its lease is live. The locks it
// held were claimed meanwhile; it finds that out through the bus, as a
// real instance would.
func (c *MemCluster) Rejoin(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b := c.members[id]; b != nil && b.dead.Load() {
		b.dead.Store(false)
		c.changedLocked()
	}
}

// DropOldest discards the first n frames an answer's stream still holds,
// as JetStream does when a stream's limits are reached: a Follow that
// starts later reads from the first frame kept.
func (c *MemCluster) DropOldest(messageID string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stream(messageID)
	n = min(n, len(s.frames))
	s.frames = s.frames[n:]
	s.dropped += n
}

// PauseFollows makes member id's Follows read no frame until resume is
// called, as a follower that falls behind: with DropOldest, the frames
// published meanwhile can be gone when it reads again.
func (c *MemCluster) PauseFollows(id string) (resume func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.members[id]
	if b.paused == nil {
		b.paused = make(chan struct{})
	}
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if b.paused != nil {
			close(b.paused)
			b.paused = nil
		}
	}
}

// Lock returns the holder of a conversation's lock, for tests.
func (c *MemCluster) Lock(conversationID string) (AnswerRef, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.locks[conversationID]
	return a, ok
}

// changedLocked wakes every Follow; c.mu is held.
func (c *MemCluster) changedLocked() {
	close(c.wake)
	c.wake = make(chan struct{})
}

// liveLocked returns the members whose lease is live, but except.
func (c *MemCluster) liveLocked(except string) []*MemBus {
	var live []*MemBus
	for id, m := range c.members {
		if id != except && !m.dead.Load() {
			live = append(live, m)
		}
	}
	return live
}

// MemBus is one member of a MemCluster; it implements Bus.
type MemBus struct {
	c      *MemCluster
	id     string
	h      atomic.Pointer[BusHandler]
	dead   atomic.Bool   // its lease expired (Crash)
	paused chan struct{} // its Follows read nothing until closed (PauseFollows); guarded by c.mu
}

var _ Bus = (*MemBus)(nil)

func (b *MemBus) handler() BusHandler {
	if p := b.h.Load(); p != nil {
		return *p
	}
	return nil
}

// InstanceID implements Bus.
func (b *MemBus) InstanceID() string { return b.id }

// Attach implements Bus.
func (b *MemBus) Attach(h BusHandler) { b.h.Store(&h) }

// usableLocked reports ErrBusUnavailable when the bus is down or b
// crashed; c.mu is held. The call it refuses did nothing, so the error
// wraps ErrNotSent too (as natsbus's refusal of a call while NATS is down).
func (b *MemBus) usableLocked() error {
	switch {
	case b.c.down:
		return fmt.Errorf("membus: %w (%w): the bus is down", ErrBusUnavailable, ErrNotSent)
	case b.dead.Load():
		return fmt.Errorf("membus: %w (%w): instance %s lost its lease", ErrBusUnavailable, ErrNotSent, b.id)
	}
	return nil
}

// Acquire implements Bus.
func (b *MemBus) Acquire(_ context.Context, a AnswerRef) (AnswerRef, error) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if err := b.usableLocked(); err != nil {
		return AnswerRef{}, err
	}
	if cur, ok := b.c.locks[a.ConversationID]; ok {
		return cur, fmt.Errorf("conversation %s: %w by %s on %s", a.ConversationID, ErrLockHeld, cur.MessageID, cur.Instance)
	}
	b.c.locks[a.ConversationID] = a
	return a, nil
}

// Release implements Bus.
func (b *MemBus) Release(_ context.Context, a AnswerRef) error {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if err := b.usableLocked(); err != nil {
		return err
	}
	if b.c.locks[a.ConversationID] == a {
		delete(b.c.locks, a.ConversationID)
	}
	return nil
}

// Running implements Bus.
func (b *MemBus) Running(_ context.Context, conversationID string) (AnswerRef, bool, error) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if err := b.usableLocked(); err != nil {
		return AnswerRef{}, false, err
	}
	a, ok := b.c.locks[conversationID]
	return a, ok, nil
}

// Claim implements Bus. The owner's lease and the lock are checked under
// one lock, so no renewal can come between them.
func (b *MemBus) Claim(_ context.Context, orphan AnswerRef) (AnswerRef, error) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if err := b.usableLocked(); err != nil {
		return AnswerRef{}, err
	}
	mine := orphan
	mine.Instance = b.id
	switch b.c.locks[orphan.ConversationID] {
	case mine: // claimed already (see Bus.Claim)
		return mine, nil
	case orphan:
	default:
		return AnswerRef{}, fmt.Errorf("claim %s: %w", orphan.MessageID, ErrLockHeld)
	}
	if owner := b.c.members[orphan.Instance]; owner != nil && !owner.dead.Load() {
		// Its lease was renewed since it was reported (Rejoin): it keeps its answer.
		return AnswerRef{}, fmt.Errorf("claim %s: %w: the lease of %s is live", orphan.MessageID, ErrLockHeld, orphan.Instance)
	}
	b.c.locks[orphan.ConversationID] = mine
	return mine, nil
}

// Publish implements Bus.
func (b *MemBus) Publish(_ context.Context, a AnswerRef, f *protocol.Frame) error {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if err := b.usableLocked(); err != nil {
		return err
	}
	s := b.c.stream(a.MessageID)
	s.frames = append(s.frames, f)
	b.c.changedLocked()
	return nil
}

// stream returns the stream of an answer, created if needed; c.mu is held.
func (c *MemCluster) stream(messageID string) *memStream {
	s := c.streams[messageID]
	if s == nil {
		s = &memStream{}
		c.streams[messageID] = s
	}
	return s
}

// Follow implements Bus.
func (b *MemBus) Follow(ctx context.Context, a AnswerRef, fn func(*protocol.Frame)) error {
	next := 0
	for {
		b.c.mu.Lock()
		if err := b.usableLocked(); err != nil {
			b.c.mu.Unlock()
			return err
		}
		if paused := b.paused; paused != nil {
			b.c.mu.Unlock()
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-paused:
			}
			continue
		}
		s := b.c.stream(a.MessageID)
		frames := s.frames[max(next-s.dropped, 0):]
		next = s.dropped + len(s.frames)
		wake := b.c.wake
		b.c.mu.Unlock()
		for _, f := range frames {
			fn(f)
			if f.Type == protocol.TypeDone || f.Type == FrameAborted {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// Control implements Bus.
func (b *MemBus) Control(_ context.Context, a AnswerRef, kind ControlKind) error {
	b.c.mu.Lock()
	err := b.usableLocked()
	target := b.c.members[a.Instance]
	b.c.mu.Unlock()
	if err != nil {
		return err
	}
	if target == nil || target.dead.Load() {
		return fmt.Errorf("control %s: %w: %w: %s", a.MessageID, ErrBusUnavailable, ErrInstanceGone, a.Instance)
	}
	if h := target.handler(); h != nil {
		h.Control(a, kind)
	}
	return nil
}

// Broadcast implements Bus.
func (b *MemBus) Broadcast(_ context.Context, ev UserEvent) error {
	b.c.mu.Lock()
	err := b.usableLocked()
	others := b.c.liveLocked(b.id)
	b.c.mu.Unlock()
	if err != nil {
		return err
	}
	for _, m := range others {
		if h := m.handler(); h != nil {
			h.UserEvent(ev)
		}
	}
	return nil
}

// TakeJob implements Bus.
func (b *MemBus) TakeJob(_ context.Context, job string, ttl time.Duration) error {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if err := b.usableLocked(); err != nil {
		return err
	}
	now := time.Now()
	if cur, ok := b.c.jobs[job]; ok && cur.instance != b.id && now.Before(cur.until) {
		return fmt.Errorf("job %s: %w by %s", job, ErrLockHeld, cur.instance)
	}
	b.c.jobs[job] = memJob{instance: b.id, until: now.Add(min(ttl, JobTTLMax))}
	return nil
}

// EndJob implements Bus.
func (b *MemBus) EndJob(_ context.Context, job string) error {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	if err := b.usableLocked(); err != nil {
		return err
	}
	if b.c.jobs[job].instance == b.id {
		delete(b.c.jobs, job)
	}
	return nil
}

// Health implements Bus.
func (b *MemBus) Health(context.Context) error {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	return b.usableLocked()
}

// solo reports whether b is a cluster of one (nobody else could follow).
func (b *MemBus) solo() bool { return b.c.solo }
