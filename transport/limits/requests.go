package limits

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Defaults of RequestOptions.
const (
	// DefaultRequestsInFlight is how many REST requests of one user run at
	// once on an instance.
	DefaultRequestsInFlight = 4
	// DefaultRequestsWaiting is how many more of one user's REST requests
	// wait for one of those to end.
	DefaultRequestsWaiting = 32
)

// ErrTooManyRequests is Requests.Enter's error when the user already has
// RequestOptions.Waiting requests waiting.
var ErrTooManyRequests = errors.New("too many requests of this user at once")

// RequestOptions configures NewRequests.
type RequestOptions struct {
	// InFlight is how many requests of one user run at once; it defaults
	// to DefaultRequestsInFlight.
	InFlight int
	// Waiting is how many more of one user's requests wait for a turn,
	// in no set order; past it Enter refuses at once. It defaults to
	// DefaultRequestsWaiting.
	Waiting int
	// OnWait, when set, is called each time a request starts waiting
	// (tests use it to know a request is queued).
	OnWait func()
}

// Requests bounds the REST requests of each user running at once on this
// instance, so that one user's parallel requests (message pages of up to
// 2 MiB, exports) take a few of the store's readers, never all of them
// ahead of every other user's. Requests past the bound wait for a turn,
// holding nothing of the store; a web client firing a handful at page
// load is served in turn, not refused. It is safe for concurrent use.
type Requests struct {
	opts  RequestOptions
	mu    sync.Mutex
	users map[string]*userRequests
}

// userRequests is one user's turns: a slot in sem per request running,
// and refs counting those running and waiting.
type userRequests struct {
	sem  chan struct{}
	refs int
}

// NewRequests returns a Requests bounding each user's requests as opts says.
func NewRequests(opts RequestOptions) *Requests {
	if opts.InFlight <= 0 {
		opts.InFlight = DefaultRequestsInFlight
	}
	if opts.Waiting <= 0 {
		opts.Waiting = DefaultRequestsWaiting
	}
	return &Requests{opts: opts, users: make(map[string]*userRequests)}
}

// Enter takes a turn for a request of user, waiting while InFlight of the
// user's run, bounded by ctx (its error is then returned, wrapped), and
// returns the function that ends the turn (call it once). With Waiting
// requests of the user already waiting, it returns ErrTooManyRequests at once.
func (r *Requests) Enter(ctx context.Context, user string) (release func(), err error) {
	u, ok := r.join(user)
	if !ok {
		return nil, ErrTooManyRequests
	}
	release = func() { <-u.sem; r.leave(user, u) }
	select {
	case u.sem <- struct{}{}:
		return release, nil
	default:
	}
	if r.opts.OnWait != nil {
		r.opts.OnWait()
	}
	select {
	case u.sem <- struct{}{}:
		return release, nil
	case <-ctx.Done():
		r.leave(user, u)
		return nil, fmt.Errorf("wait for one of the user's requests to end: %w", ctx.Err())
	}
}

// join counts a request of user in, unless as many as may run and wait
// are already there.
func (r *Requests) join(user string) (*userRequests, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.users[user]
	if u == nil {
		u = &userRequests{sem: make(chan struct{}, r.opts.InFlight)}
		r.users[user] = u
	}
	if u.refs >= r.opts.InFlight+r.opts.Waiting {
		return nil, false
	}
	u.refs++
	return u, true
}

// leave counts a request of user out, forgetting the user with none left.
func (r *Requests) leave(user string, u *userRequests) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if u.refs--; u.refs == 0 {
		delete(r.users, user)
	}
}

// Len is how many users have requests running or waiting.
func (r *Requests) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.users)
}
