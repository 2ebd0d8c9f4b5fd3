package auth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/text/unicode/norm"
)

// Password hashing defaults. bcrypt rather than argon2id: its memory use per
// hash is a few KiB, so the semaphore below bounds its whole cost (CPU); a
// memory-hard argon2id at a useful setting (64 MiB per hash) would turn a
// login flood into a memory problem as well. bcrypt's 72-byte input limit is
// enforced at registration and login alike (see passwordProblem).
const (
	// DefaultBcryptCost is the bcrypt work factor (about 0.2-0.3 s per hash
	// on a current core).
	DefaultBcryptCost = 12
	// DefaultHashQueueWait is how long a request waits for a hashing slot
	// before it is answered 503.
	DefaultHashQueueWait = 2 * time.Second
	// MinPasswordChars and MaxPasswordBytes bound a password.
	MinPasswordChars = 8
	MaxPasswordBytes = 72
)

// ErrBusy means every hashing slot stayed taken for the whole queue wait.
var ErrBusy = errors.New("password hashing is saturated")

// passwords hashes and compares passwords with at most cap(slots) hashes at
// a time, so a login or registration flood queues (briefly) instead of
// taking every core.
type passwords struct {
	cost  int
	slots chan struct{}
	wait  time.Duration
	dummy []byte // a real hash of a random password, compared for unknown emails
	// ceiling is the cost a failed check pays the work of (failCost): the
	// configured cost, raised to the highest cost of a stored hash
	// compared since the start.
	ceiling atomic.Int32
	// checked, when set, is called before each comparison (tests count
	// how many passwords a burst of logins got to check).
	checked func()
	// compared, when set, is called with the cost of each bcrypt
	// comparison before it (tests weigh what a failed sign-in costs).
	compared func(cost int)
}

func newPasswords(cost, concurrency int, wait time.Duration) (*passwords, error) {
	if cost < bcrypt.MinCost || cost > bcrypt.MaxCost {
		return nil, fmt.Errorf("auth: bcrypt cost %d outside %d..%d", cost, bcrypt.MinCost, bcrypt.MaxCost)
	}
	p := &passwords{cost: cost, slots: make(chan struct{}, concurrency), wait: wait}
	dummy, err := dummyHash(cost)
	if err != nil {
		return nil, fmt.Errorf("auth: make the dummy hash: %w", err)
	}
	p.dummy = dummy
	p.ceiling.Store(int32(cost))
	return p, nil
}

// dummyAt returns the dummy hash stating cost instead: the same salt and
// password, the work of that cost (see dummyHash).
func (p *passwords) dummyAt(cost int) []byte {
	h := slices.Clone(p.dummy)
	copy(h[4:6], fmt.Sprintf("%02d", cost))
	return h
}

// dummyHash returns a well-formed bcrypt hash of a random password that
// states the given cost. It is hashed at bcrypt's least cost and its cost
// field rewritten: comparing a password with it costs exactly what
// comparing with a real hash of that cost does (bcrypt's work depends on
// the hash's cost and salt only), and it never matches, but making it
// takes about a millisecond instead of a hash at the full cost (0.25 s at
// the default, most of the server's start-up; docs/benchmarks.md, data
// growth).
func dummyHash(cost int) ([]byte, error) {
	random := make([]byte, 32)
	_, _ = rand.Read(random)
	h, err := bcrypt.GenerateFromPassword([]byte(fmt.Sprintf("%x", random)[:MaxPasswordBytes-8]), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	// h is "$2a$04$" and the salt and hash: the cost is bytes 4 and 5.
	copy(h[4:6], fmt.Sprintf("%02d", cost))
	return h, nil
}

// acquire takes a hashing slot, waiting at most p.wait.
func (p *passwords) acquire(ctx context.Context) (release func(), err error) {
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, nil
	default:
	}
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case p.slots <- struct{}{}:
		return func() { <-p.slots }, nil
	case <-t.C:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// hash returns the bcrypt hash of password, which the caller normalised
// (normalizePassword), at the configured cost.
func (p *passwords) hash(ctx context.Context, password string) (string, error) {
	release, err := p.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return hashAt(password, p.cost)
}

func hashAt(password string, cost int) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	return string(h), nil
}

// normalizePassword is the form a new password is hashed in: NFC, so a
// password typed where "é" arrives as one code point (U+00E9) and where
// it arrives as "e" and a combining accent (U+0301) is one password.
func normalizePassword(pw string) string { return norm.NFC.String(pw) }

// passwordForms are the spellings of password a stored hash may be of:
// its NFC form first (what passwords are hashed as since they are
// normalised), then the password as typed when that differs (a hash
// stored before, of the bytes as they came). A form that breaks the byte
// rules (passwordProblem: over the 72 bytes bcrypt reads, or holding a
// NUL) is left out: no hash can be of it. A password is refused at
// sign-in only when no form is left, so one registered in NFC within 72
// bytes also signs in when typed decomposed, longer than that.
func passwordForms(password string) []string {
	var forms []string
	for _, f := range []string{normalizePassword(password), password} {
		if passwordProblem(f) == "" && !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	return forms
}

// formsProblem is what makes password unusable at a sign-in, or "" when
// it has a form to check (passwordForms): the byte rule its NFC form
// breaks, the one registration applied.
func formsProblem(password string) string {
	if len(passwordForms(password)) > 0 {
		return ""
	}
	return passwordProblem(normalizePassword(password))
}

// match compares each form of password (passwordForms) with hash, in one
// hashing turn, and returns the form that matched, or "" for none. An
// empty hash (unknown user) is compared with the dummy hash as many
// times, so it costs the same time and never matches.
func (p *passwords) match(ctx context.Context, hash, password string) (string, error) {
	var hashes []string
	if hash != "" {
		hashes = []string{hash}
	}
	_, form, err := p.matchAny(ctx, hashes, password)
	return form, err
}

// matchAny compares each form of password with each of hashes (of the
// accounts found; an empty one counts as none) in turn, in one hashing
// turn, and returns the index of the first hash that matched and the
// form that matched it, or -1 and "" for none. A failure costs the same
// bcrypt work whatever the accounts' hash costs (failCost): per form and
// account found, at least one account's worth, the work of one comparison
// at the ceiling (the configured cost, or the highest stored cost
// compared since the start); with no hash, each form is compared with the
// dummy hash at the ceiling instead. So an unknown email costs what a
// known one with a wrong password does, also once CHATD_BCRYPT_COST
// changed and accounts keep hashes of the former cost (a lower one is
// raised only at a successful sign-in, a higher one is kept). What is
// left: an account stored at a cost above every one compared since the
// start costs more than an unknown email until its first check (which
// raises the ceiling for every later one); the padding's extra
// comparisons each add bcrypt's fixed setup (about one round of the
// cost's 2^cost). Only two accounts of one email (a collision the
// store's rewrite of older email forms left apart) cost twice that,
// which tells that pair exists; the cost is not multiplied by the forms
// of the email looked up.
func (p *passwords) matchAny(ctx context.Context, hashes []string, password string) (int, string, error) {
	release, err := p.acquire(ctx)
	if err != nil {
		return -1, "", err
	}
	defer release()
	if p.checked != nil {
		p.checked()
	}
	forms := passwordForms(password)
	found := false
	for i, hash := range hashes {
		if hash == "" {
			continue
		}
		found = true
		cost := p.seen(hash)
		for _, form := range forms {
			if p.compare([]byte(hash), form) {
				return i, form, nil
			}
			p.pad(cost)
		}
	}
	if !found {
		for _, form := range forms {
			p.compare(p.dummyAt(p.failCost()), form)
		}
	}
	return -1, "", nil
}

// seen returns hash's cost, raising the ceiling to it; 0 for a hash
// whose cost does not read (its comparison fails at once).
func (p *passwords) seen(hash string) int {
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return 0
	}
	for {
		c := p.ceiling.Load()
		if int32(cost) <= c || p.ceiling.CompareAndSwap(c, int32(cost)) {
			return cost
		}
	}
}

// failCost is the cost whose work a failed comparison pays: the ceiling.
func (p *passwords) failCost() int { return int(p.ceiling.Load()) }

// pad tops a failed comparison against a hash of cost up to the work of
// one at failCost, with comparisons against the dummy hash at cost,
// cost+1, ..., failCost-1 (2^cost + 2^cost + ... + 2^(failCost-1) =
// 2^failCost); a cost that does not read (0) pays one at failCost.
func (p *passwords) pad(cost int) {
	top := p.failCost()
	if cost == 0 {
		p.compare(p.dummyAt(top), "")
		return
	}
	for c := cost; c < top; c++ {
		p.compare(p.dummyAt(c), "")
	}
}

// compare tells whether hash is of form, one bcrypt comparison.
func (p *passwords) compare(hash []byte, form string) bool {
	if p.compared != nil {
		cost, _ := bcrypt.Cost(hash)
		p.compared(cost)
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(form)) == nil
}

// upgrade tells whether hash, which matched the form matched of password,
// is to be replaced, and by a hash of what at which cost: it is when its
// cost is below the configured one (raised since it was made), or when
// it is of the password as typed and not of its NFC form (stored before
// passwords were normalised). A cost above the configured one is kept
// (lowering it would weaken the hash), also when the form changes.
func (p *passwords) upgrade(hash, matched, password string) (form string, cost int, ok bool) {
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		return "", 0, false
	}
	forms := passwordForms(password)
	if len(forms) == 0 {
		return "", 0, false
	}
	form = forms[0]
	if cost >= p.cost && matched == form {
		return "", 0, false
	}
	return form, max(cost, p.cost), true
}

// rehash returns the bcrypt hash of form at cost, if a hashing slot is
// free now: it is work a sign-in does on the side, which waits for no
// one (ErrBusy when every slot is taken; the next sign-in tries again).
func (p *passwords) rehash(form string, cost int) (string, error) {
	select {
	case p.slots <- struct{}{}:
	default:
		return "", ErrBusy
	}
	defer func() { <-p.slots }()
	return hashAt(form, cost)
}
