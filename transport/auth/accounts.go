package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"time"

	"github.com/gin-gonic/gin"

	workgate "chatd/internal/gate"
	"chatd/internal/lograte"
	"chatd/persistence"
	"chatd/transport/httperr"
	"chatd/transport/internal/reqtimeout"
	"chatd/transport/limits"
)

// Login limit defaults.
const (
	// DefaultMaxFailuresPerAccount bounds the failed logins of one account
	// from one client address (its clientKey) per FailureWindow.
	DefaultMaxFailuresPerAccount = 5
	// DefaultMaxFailuresPerAccountTotal bounds the failed logins of one
	// account from every address together per FailureWindow: the 100
	// consecutive failures NIST SP 800-63B (5.2.2) allows at most, which
	// takes at least 20 addresses at DefaultMaxFailuresPerAccount each.
	DefaultMaxFailuresPerAccountTotal = 100
	DefaultMaxFailuresPerIP           = 20
	// DefaultMaxChecksPerAccount bounds the password checks of one
	// account per FailureWindow, failed logins aside (successful ones and
	// a session's wrong current passwords).
	DefaultMaxChecksPerAccount = 30
	// DefaultMaxChecksPerIP bounds the password checks from one client
	// address (its clientKey), right or wrong, to any accounts, per
	// FailureWindow: what bounds one address signing in to many accounts
	// in turn (ten registrations an hour make 240 accounts a day, each
	// with its own DefaultMaxChecksPerAccount), which would otherwise keep
	// every hashing slot busy. 300 a window is about a third of a check a
	// second, some 4% of two cores at the default cost (0.25 s a check):
	// it takes about 25 addresses to fill two hashing slots. Honest users
	// behind one address (an office's NAT) sign in about once a token
	// lifetime (JWT_TTL, a week by default) per device; 300 sign-ins in a
	// quarter of an hour is a 300-person office all signing in within it,
	// and the 20 failures an address has (DefaultMaxFailuresPerIP) run
	// out long before. A carrier-grade NAT or a shared proxy whose
	// clients are not told apart (CHATD_TRUSTED_PROXIES) may need more.
	DefaultMaxChecksPerIP = 300
	DefaultFailureWindow  = 15 * time.Minute
	DefaultMaxTrackedKeys = 100_000
	// DefaultRegistrationsPerHourIP bounds sign-ups from one client IP
	// per hour (each new account brings fresh per-user limits).
	DefaultRegistrationsPerHourIP = 10
	// DefaultAccountRequestTimeout is AccountOptions.RequestTimeout's
	// default, CHATD_REQUEST_TIMEOUT's.
	DefaultAccountRequestTimeout = 30 * time.Second
	// DefaultDeleteTimeout is AccountOptions.DeleteTimeout's default.
	DefaultDeleteTimeout = time.Minute
)

// AccountStore is what the account routes need from the store.
type AccountStore interface {
	CreateUser(ctx context.Context, u *persistence.User) error
	UserByEmail(ctx context.Context, email string) (persistence.User, error)
	UserByID(ctx context.Context, id string) (persistence.User, error)
	BumpTokenVersion(ctx context.Context, id string) (int64, error)
	ChangePassword(ctx context.Context, id, passwordHash string, fromVersion int64) (int64, error)
	DeleteUser(ctx context.Context, id string) error
	MarkUserDeleting(ctx context.Context, id string) error
	UnmarkUserDeleting(ctx context.Context, id string) error
}

// AccountOptions configure the account routes.
type AccountOptions struct {
	// BcryptCost is the bcrypt work factor; it defaults to DefaultBcryptCost.
	// Tests may lower it to bcrypt.MinCost (4).
	BcryptCost int
	// MaxConcurrentHashes bounds simultaneous bcrypt runs; it defaults to
	// runtime.NumCPU().
	MaxConcurrentHashes int
	// HashQueueWait is the longest wait for a hashing slot before a 503; it
	// defaults to DefaultHashQueueWait.
	HashQueueWait time.Duration
	// RequestTimeout bounds each request of the account routes in what it
	// waits for (CHATD_REQUEST_TIMEOUT): the store (the token check, the
	// user's lookup, an account's creation, a password change's write, a
	// logout's revocation, the revocation that starts a deletion) and a
	// hashing slot; past it the request is answered 503 unavailable with
	// Retry-After. A bcrypt run, once started, is CPU and runs to its end
	// (about 0.25 s at the default cost): hashing is bounded by
	// MaxConcurrentHashes and HashQueueWait instead. An account deletion's
	// removal of the data is not cut by it (see DeleteTimeout). It
	// defaults to DefaultAccountRequestTimeout.
	RequestTimeout time.Duration
	// DeleteTimeout bounds the removal of a deleted account's live work
	// and data, which runs on its own once the request's tokens are
	// revoked, also after the request was answered (202); a removal it
	// cuts after the store marked the user is finished by the store
	// (persistence.DeletionFinisher). It defaults to DefaultDeleteTimeout,
	// and must stay well below the store's DeletionGrace
	// (persistence.DeletionGrace), how long the store leaves a user
	// marked while their live work is being ended.
	DeleteTimeout time.Duration
	// RegistrationClosed makes POST /api/auth/register answer 403.
	RegistrationClosed bool
	// MaxFailuresPerAccount is the failed password checks of one account
	// from one client address (clientKey: an IPv6 client by its /64)
	// allowed per FailureWindow before that address gets 429 for that
	// account, a wrong current password given to change the password or
	// delete the account included; other addresses are not refused for
	// it. It defaults to DefaultMaxFailuresPerAccount.
	MaxFailuresPerAccount int
	// MaxFailuresPerAccountTotal is the failed logins of one account from
	// every address together allowed per FailureWindow before its logins
	// get 429 from any address: the bound on guessing spread over many
	// addresses. A session's own password checks (change, deletion) are
	// not refused by it, nor counted in it. It defaults to
	// DefaultMaxFailuresPerAccountTotal, and is raised to
	// MaxFailuresPerAccount when below it.
	MaxFailuresPerAccountTotal int
	// MaxFailuresPerIP is the failed logins from one client address, to
	// any accounts, allowed per FailureWindow before 429; it defaults to
	// DefaultMaxFailuresPerIP.
	MaxFailuresPerIP int
	// MaxChecksPerAccount is the password checks of one account allowed
	// per FailureWindow before 429, failed logins aside (the failure limits
	// above count those): right passwords (sign-ins, and the current
	// password given to change it or delete the account) and a session's
	// wrong current passwords. It defaults to DefaultMaxChecksPerAccount,
	// and is raised to MaxFailuresPerAccount when below it. Each check is
	// a bcrypt run: a success gives back the failed-login attempt, so
	// without this bound a user who knows their password could sign in
	// without end and keep every hashing slot busy, everyone else's
	// sign-in answered 503. A check is counted while it runs, so a failed
	// login gives its check back only once it is done.
	MaxChecksPerAccount int
	// MaxChecksPerIP is the password checks from one client address
	// (clientKey), right or wrong, of logins and of a session's current
	// password alike, to any accounts, allowed per FailureWindow before
	// that address gets 429: MaxChecksPerAccount bounds each account, and
	// an address that registered many accounts could otherwise sign in to
	// them in turn and keep every hashing slot busy. Other addresses are
	// not refused for it. It defaults to DefaultMaxChecksPerIP, and is
	// raised to MaxFailuresPerIP and to MaxChecksPerAccount when below
	// them: it never refuses a failure the failures limit allows, nor the
	// checks one account is allowed (a monitoring probe's, say).
	MaxChecksPerIP int
	// FailureWindow defaults to DefaultFailureWindow.
	FailureWindow time.Duration
	// RegistrationsPerHourIP bounds registrations from one client IP in
	// an hour (counted from its first); more get 429 with Retry-After. It
	// defaults to DefaultRegistrationsPerHourIP.
	RegistrationsPerHourIP int
	// MaxTrackedKeys bounds each limiter's memory; it defaults to
	// DefaultMaxTrackedKeys. A full limiter forgets the oldest key still
	// under its limit, never a blocked one, and refuses new keys (429)
	// while every key it tracks is blocked.
	MaxTrackedKeys int
	// OnLogout, when set, is called after a logout revoked the user's
	// tokens, with the user's token version since (0: the account is
	// gone), to close the connections opened with a session before it
	// (on every instance). A session signed in after the logout has that
	// version or a later one: a close that reaches an instance late (after
	// a NATS outage) leaves it open. It must not block.
	OnLogout func(userID string, version int64)
	// OnDeleting, when set, is called when an account is being deleted,
	// after its tokens were revoked and the store marked it
	// (MarkUserDeleting: no read finds it, no sign-in), before its data
	// is removed: it ends the user's connections and running answers,
	// everywhere, and returns once the answers stopped. An error stops
	// the deletion (the mark is taken back).
	OnDeleting func(ctx context.Context, userID string) error
	// OnPasswordChanged, when set, is called after a password change
	// revoked the user's older tokens, with the token version of the
	// session it issued: it closes the connections opened before (on
	// every instance). It must not block.
	OnPasswordChanged func(userID string, version int64)
	// Shared, when set, also holds the failed-login and registration
	// limits across every instance of a cluster (see SharedWindows); nil
	// keeps them per process.
	Shared SharedWindows
	// SharedTimeout bounds one call to Shared; it defaults to
	// limits.DefaultSharedTimeout.
	SharedTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock; it defaults to time.Now.
	Now func() time.Time
}

func (o *AccountOptions) setDefaults() {
	if o.BcryptCost == 0 {
		o.BcryptCost = DefaultBcryptCost
	}
	if o.MaxConcurrentHashes <= 0 {
		o.MaxConcurrentHashes = runtime.NumCPU()
	}
	if o.HashQueueWait <= 0 {
		o.HashQueueWait = DefaultHashQueueWait
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultAccountRequestTimeout
	}
	if o.DeleteTimeout <= 0 {
		o.DeleteTimeout = DefaultDeleteTimeout
	}
	if o.MaxFailuresPerAccount <= 0 {
		o.MaxFailuresPerAccount = DefaultMaxFailuresPerAccount
	}
	if o.MaxChecksPerAccount <= 0 {
		o.MaxChecksPerAccount = DefaultMaxChecksPerAccount
	}
	// Failed checks hold a check while they run: a bound below
	// MaxFailuresPerAccount would refuse a burst of the failures that limit
	// allows, saying something else.
	o.MaxChecksPerAccount = max(o.MaxChecksPerAccount, o.MaxFailuresPerAccount)
	if o.MaxFailuresPerAccountTotal <= 0 {
		o.MaxFailuresPerAccountTotal = DefaultMaxFailuresPerAccountTotal
	}
	o.MaxFailuresPerAccountTotal = max(o.MaxFailuresPerAccountTotal, o.MaxFailuresPerAccount)
	if o.MaxFailuresPerIP <= 0 {
		o.MaxFailuresPerIP = DefaultMaxFailuresPerIP
	}
	if o.MaxChecksPerIP <= 0 {
		o.MaxChecksPerIP = DefaultMaxChecksPerIP
	}
	o.MaxChecksPerIP = max(o.MaxChecksPerIP, o.MaxFailuresPerIP, o.MaxChecksPerAccount)
	if o.FailureWindow <= 0 {
		o.FailureWindow = DefaultFailureWindow
	}
	if o.RegistrationsPerHourIP <= 0 {
		o.RegistrationsPerHourIP = DefaultRegistrationsPerHourIP
	}
	if o.MaxTrackedKeys <= 0 {
		o.MaxTrackedKeys = DefaultMaxTrackedKeys
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SharedTimeout <= 0 {
		o.SharedTimeout = limits.DefaultSharedTimeout
	}
}

// Accounts serves /api/auth: register, login, me and logout.
type Accounts struct {
	store       AccountStore
	authn       *Authenticator
	passwords   *passwords
	byIP        *gate // failed logins per client IP
	byAccountIP *gate // failed checks per account and client IP (loginKey)
	byAccount   *gate // failed logins per account (normalised email), from every IP
	checks      *gate // password checks per account but failed logins
	checksByIP  *gate // password checks per client IP, right or wrong
	signups     *gate // registrations per client IP
	opts        AccountOptions
	deleting    workgate.Gate // the removals of deleted accounts (Wait)
}

// NewAccounts returns the account routes. It computes one bcrypt hash at
// the configured cost (the dummy compared for unknown emails).
func NewAccounts(store AccountStore, authn *Authenticator, opts AccountOptions) (*Accounts, error) {
	opts.setDefaults()
	p, err := newPasswords(opts.BcryptCost, opts.MaxConcurrentHashes, opts.HashQueueWait)
	if err != nil {
		return nil, err
	}
	// The gates' failures, one outage: a run per limit, whatever the
	// error says (natsbus's names how long NATS has been gone, a new text
	// on every request).
	shared := slog.New(lograte.NewHandler(opts.Logger.Handler(), lograte.Options{By: limitAttr}))
	return &Accounts{
		store: store, authn: authn, passwords: p, opts: opts,
		byIP:        newGate("login-ip", opts.MaxFailuresPerIP, opts.FailureWindow, opts, shared),
		byAccountIP: newGate("login-account-ip", opts.MaxFailuresPerAccount, opts.FailureWindow, opts, shared),
		byAccount:   newGate("login-account", opts.MaxFailuresPerAccountTotal, opts.FailureWindow, opts, shared),
		checks:      newGate("checks-account", opts.MaxChecksPerAccount, opts.FailureWindow, opts, shared),
		checksByIP:  newGate("checks-ip", opts.MaxChecksPerIP, opts.FailureWindow, opts, shared),
		signups:     newGate("signup-ip", opts.RegistrationsPerHourIP, time.Hour, opts, shared),
	}, nil
}

// Routes registers the account routes under api (the /api group).
func (a *Accounts) Routes(api gin.IRouter) {
	g := api.Group("/auth", reqtimeout.Middleware(a.opts.RequestTimeout))
	g.POST("/register", requireJSON, a.register)
	g.POST("/login", requireJSON, a.login)
	g.GET("/me", a.authn.Middleware(), a.me)
	g.POST("/logout", a.authn.Middleware(), a.logout)
	g.PATCH("/me", a.authn.Middleware(), a.changePassword)
	g.DELETE("/me", a.authn.Middleware(), a.deleteAccount)
}

// errNotJSON refuses a body sent without a JSON Content-Type.
var errNotJSON = httperr.BadRequest("the body must be JSON (Content-Type: application/json)")

// requireJSON refuses a sign-up or sign-in that names no Content-Type,
// which httperr.DecodeJSON lets through. These two routes take no token:
// without this, any web page could have its visitors' browsers send them
// cross-site (a body without a type makes a "simple" request, sent with
// no CORS preflight), and so create accounts, or spend an account's
// failed logins, from every visitor's address. A JSON Content-Type makes
// the browser ask first, which this server never allows.
func requireJSON(c *gin.Context) {
	if c.GetHeader("Content-Type") == "" {
		httperr.AbortError(c, errNotJSON)
		return
	}
	c.Next()
}

// UserView is a user as the API shows it.
type UserView struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func viewOf(u persistence.User) UserView {
	return UserView{ID: u.ID, Email: u.Email, Name: u.Name, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

// Session is the answer to register and login.
type Session struct {
	Token string   `json:"token"`
	User  UserView `json:"user"`
}

type registerRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	Name     string `json:"name"`
}

func (a *Accounts) register(c *gin.Context) {
	if a.opts.RegistrationClosed {
		httperr.AbortError(c, httperr.Forbidden("registration is closed on this server"))
		return
	}
	var req registerRequest
	if err := httperr.DecodeJSON(c.Request, &req); err != nil {
		httperr.AbortError(c, err)
		return
	}
	u, err := newUser(req)
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	// The attempt is counted before the hash, so parallel sign-ups from
	// one address cannot all pass; only a server failure gives it back.
	// A taken email counts too: it slows down probing for accounts. So
	// does a sign-up its client abandoned once its password was hashed:
	// giving it back would let a client that leaves after each hash make
	// the server hash without end. One abandoned while it waited for a
	// turn to hash (every slot busy: a user who gave up) cost nothing and
	// is given back.
	ip := clientKey(c)
	if wait, r := a.signups.take(ip); r != allowed {
		httperr.AbortError(c, refused(r, "too many registrations from this address", "sign-ups", wait))
		return
	}
	ctx := c.Request.Context()
	err = a.takenBefore(ctx, req.Email)
	if err == nil {
		err = a.create(ctx, &u, req.Password)
	}
	if err != nil {
		hashed := u.PasswordHash != ""
		if !errors.Is(err, errTaken) && (!hashed || !errors.Is(context.Cause(ctx), context.Canceled)) {
			a.signups.refund(ip)
		}
		httperr.AbortError(c, err)
		return
	}
	a.opts.Logger.Info("account registered", slog.String("user_id", u.ID))
	a.answerSession(c, http.StatusCreated, u)
}

// errTaken is the conflict answered for an email that has an account.
var errTaken = httperr.Conflict("an account with this email already exists")

// takenBefore answers errTaken when email has an account stored in an
// older form of it (emailForms), which the unique email of its normalised
// form, the one CreateUser checks, does not see: registering it again
// would make a second account that its sign-ins find first.
func (a *Accounts) takenBefore(ctx context.Context, email string) error {
	for _, form := range emailForms(email)[1:] {
		_, err := a.store.UserByEmail(ctx, form)
		switch {
		case err == nil:
			return errTaken
		case !errors.Is(err, persistence.ErrNotFound):
			return fmt.Errorf("find user by email: %w", err)
		}
	}
	return nil
}

// create hashes the password (in NFC) and stores u.
func (a *Accounts) create(ctx context.Context, u *persistence.User, password string) error {
	var err error
	if u.PasswordHash, err = a.passwords.hash(ctx, normalizePassword(password)); err != nil {
		return hashError(err)
	}
	err = a.store.CreateUser(ctx, u)
	if errors.Is(err, persistence.ErrDuplicate) {
		return errTaken
	}
	if err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	return nil
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (a *Accounts) login(c *gin.Context) {
	var req loginRequest
	if err := httperr.DecodeJSON(c.Request, &req); err != nil {
		httperr.AbortError(c, err)
		return
	}
	if req.Email == "" || req.Password == "" {
		httperr.AbortError(c, httperr.InvalidField("email, password", "both are required"))
		return
	}
	// The rules registration applies to a password's bytes, to each of
	// its forms (passwordForms): a longer password could otherwise match
	// on its first 72 bytes alone.
	if p := formsProblem(req.Password); p != "" {
		httperr.AbortError(c, httperr.InvalidField("password", p))
		return
	}
	at := a.signIn(accountKey(req.Email), clientKey(c))
	if err := at.take(); err != nil {
		httperr.AbortError(c, err)
		return
	}
	u, matched, err := a.verify(c.Request.Context(), req.Email, req.Password)
	if err != nil {
		at.refund()
		httperr.AbortError(c, err)
		return
	}
	if matched == "" {
		at.settle(false)
		httperr.AbortError(c, httperr.Unauthorized("wrong email or password"))
		return
	}
	at.settle(true)
	a.rehash(c.Request.Context(), u, matched, req.Password)
	a.answerSession(c, http.StatusOK, u)
}

// Messages of the 429 of a limit on password checks.
const (
	tooManyFailures        = "too many failed logins"
	tooManyAccountFailures = "too many failed logins to this account"
	tooManyAddressFailures = "too many failed logins from this address"
	tooManyChecks          = "too many sign-ins to this account"
	tooManyAddressChecks   = "too many sign-ins from this address"
)

// limit is one limit a password check is counted against: a gate, the
// key it counts under, what the 429 says when that key is blocked, and
// what becomes of the count once the password was found wrong, or right.
type limit struct {
	gate         *gate
	key          string
	blocked      string
	wrong, right outcome
}

// outcome is what a checked password does to the count of one limit.
type outcome int

const (
	keep   outcome = iota // the check stays counted
	giveUp                // the check is given back (it was not what the limit counts)
	forget                // the key's count is forgotten
)

// attempt is the limits one password check is counted against, in order.
type attempt []limit

// take counts the check against each limit in order, in one step each,
// before its password is hashed, so a burst of parallel guesses checks at
// most a limit's number of passwords; refused by one (429), it gives back
// what the ones before counted, and answers the longest wait of that
// limit and the blocked ones after it (counting nothing there): the first
// to refuse may end long before another, and a client told to come back
// when it ends would be refused again.
func (at attempt) take() error {
	for i, l := range at {
		if wait, r := l.gate.take(l.key); r != allowed {
			at[:i].refund()
			blocked := l.blocked
			for _, later := range at[i+1:] {
				if w, ok := later.gate.blockedFor(later.key); ok && w > wait {
					wait, r, blocked = w, keyBlocked, later.blocked
				}
			}
			return refused(r, blocked, "login attempts", wait)
		}
	}
	return nil
}

// refund gives back what take counted, for a check that was not made (a
// failure of the server).
func (at attempt) refund() {
	for _, l := range at {
		l.gate.refund(l.key)
	}
}

// settle applies to each limit what the checked password does to it.
func (at attempt) settle(right bool) {
	for _, l := range at {
		o := l.wrong
		if right {
			o = l.right
		}
		switch o {
		case giveUp:
			l.gate.refund(l.key)
		case forget:
			l.gate.reset(l.key)
		}
	}
}

// signIn is what a login's password check counts against: failures per
// client IP, per account from that IP, and per account from every IP
// together, the account's checks and the client IP's. The failures per
// account and IP are the hard block: a stranger's failures block the
// stranger's address for that account, not its owner at another. The
// account-wide bound, much higher, caps guessing spread over many
// addresses. A wrong password gives the account's check back (the
// failure limits bound those); a right one is no failure: it forgets the
// account's failures from this IP, but not those from other IPs, which
// would give a guesser spread over many addresses a fresh allowance at
// each of the owner's sign-ins. The client IP's checks keep both: they
// bound the hashing one address asks for, however many accounts it signs
// in to (each account's checks bound that account only).
func (a *Accounts) signIn(email, ip string) attempt {
	return attempt{
		{a.byIP, ip, tooManyAddressFailures, keep, giveUp},
		{a.byAccountIP, loginKey(email, ip), tooManyFailures, keep, forget},
		{a.byAccount, email, tooManyAccountFailures, keep, giveUp},
		{a.checks, email, tooManyChecks, giveUp, keep},
		{a.checksByIP, ip, tooManyAddressChecks, keep, keep},
	}
}

// recheck is what a signed-in session's check of its own password (to
// change it, to delete the account) counts against: the account's
// failures from this IP, shared with logins, and the account's checks
// and the client IP's, which keep a wrong current password too. Only a
// holder of the account's token gets here, so the bound on the account's
// failures from every IP neither refuses it (strangers' failed logins,
// however many, never keep a session from changing its password) nor
// counts it; the checks bound its guesses.
func (a *Accounts) recheck(email, ip string) attempt {
	return attempt{
		{a.byAccountIP, loginKey(email, ip), tooManyFailures, keep, forget},
		{a.checks, email, tooManyChecks, keep, keep},
		{a.checksByIP, ip, tooManyAddressChecks, keep, keep},
	}
}

// loginKey is the key of an account's failures from one client IP: the
// client key first (an address or prefix, never holding a space), then
// the account's key.
func loginKey(email, ip string) string { return ip + " " + email }

// refused is the 429 of a limit that refused an attempt: blocked says
// the client's own key went over its limit; for a limiter whose table is
// full of blocked keys (a flood from many clients), which refuses every
// new key whatever it did, it says that instead. Both carry wait as
// Retry-After.
func refused(r refusal, blocked, what string, wait time.Duration) error {
	if r == tableFull {
		return httperr.RateLimited("too many "+what+" from too many clients right now; try again later", wait)
	}
	return httperr.RateLimited(blocked+"; try again later", wait)
}

// accountKey is the key an email's failed logins are counted under: the
// normalised email, or for one longer than any address that can be
// registered (maxEmailBytes; a login body may hold up to the body limit),
// a digest of it, so the limiter's table of up to MaxTrackedKeys keys
// never holds a request body's worth of memory per key.
func accountKey(email string) string {
	key := normalizeEmail(email)
	if len(key) <= maxEmailBytes {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// errAccountGone answers a request of a session whose account was
// deleted meanwhile.
var errAccountGone = httperr.InvalidToken("the account no longer exists")

// confirm loads the signed-in user of c and checks the password they gave
// again (field names it in errors), as a login does but against the
// limits of a session's own check (recheck): the attempt is counted
// first, a success forgets the account's failures from this address.
func (a *Accounts) confirm(c *gin.Context, field, password string) (persistence.User, error) {
	switch {
	case password == "":
		return persistence.User{}, httperr.InvalidField(field, "is required")
	case formsProblem(password) != "":
		return persistence.User{}, httperr.InvalidField(field, formsProblem(password))
	}
	id, _ := IdentityFrom(c)
	u, err := a.store.UserByID(c.Request.Context(), id.UserID)
	if errors.Is(err, persistence.ErrNotFound) {
		return u, errAccountGone
	}
	if err != nil {
		return u, fmt.Errorf("load user %s: %w", id.UserID, err)
	}
	return u, a.checkPassword(c, u, password)
}

// checkPassword checks u's password for its signed-in session, the
// attempt counted first (recheck).
func (a *Accounts) checkPassword(c *gin.Context, u persistence.User, password string) error {
	at := a.recheck(accountKey(u.Email), clientKey(c))
	if err := at.take(); err != nil {
		return err
	}
	matched, err := a.passwords.match(c.Request.Context(), u.PasswordHash, password)
	if err != nil {
		at.refund()
		return hashError(err)
	}
	if matched == "" {
		at.settle(false)
		return httperr.Unauthorized("wrong password")
	}
	at.settle(true)
	return nil
}

// verify checks email and password and returns the user and the form of
// the password that matched their hash (passwordForms), or "" for a
// wrong password. The email is looked up in each of its forms
// (emailForms: the normalised one, then those accounts were stored in
// before), always all of them (cheap lookups, the same whichever accounts
// exist), and the password is checked against each account found, or
// against the dummy hash when none is (passwords.matchAny): a wrong
// password costs the same bcrypt comparisons for an unknown email as for
// a known one, and an unknown email gives the same "". Two accounts found
// (one stored in an older form before the normalised one was registered,
// which the store's one-time rewrite of older emails left apart:
// emailform) each sign in with their own password, and such a pair costs
// twice the comparisons; a password both match signs in the first form's.
func (a *Accounts) verify(ctx context.Context, email, password string) (persistence.User, string, error) {
	forms := emailForms(email)
	users := make([]persistence.User, 0, len(forms))
	hashes := make([]string, 0, len(forms))
	for _, form := range forms {
		u, err := a.store.UserByEmail(ctx, form)
		switch {
		case err == nil:
			users, hashes = append(users, u), append(hashes, u.PasswordHash)
		case !errors.Is(err, persistence.ErrNotFound):
			return persistence.User{}, "", fmt.Errorf("find user by email: %w", err)
		}
	}
	i, matched, err := a.passwords.matchAny(ctx, hashes, password)
	if err != nil {
		return persistence.User{}, "", hashError(err)
	}
	if i < 0 {
		return persistence.User{}, "", nil
	}
	return users[i], matched, nil
}

// rehash replaces u's password hash, which matched the form matched of
// password at a sign-in, by one at the configured bcrypt cost and of the
// password's NFC form, when it is at a lower cost or of another form
// (passwords.upgrade). It holds no lock: the hash takes a hashing slot
// only if one is free now, and the store writes only while the hash is
// still the one checked (a password change meanwhile wins). It cannot
// fail the sign-in: a failure is logged, and the next sign-in tries again.
func (a *Accounts) rehash(ctx context.Context, u persistence.User, matched, password string) {
	form, cost, ok := a.passwords.upgrade(u.PasswordHash, matched, password)
	if !ok {
		return
	}
	store, ok := a.store.(persistence.PasswordRehasher)
	if !ok {
		return
	}
	h, err := a.passwords.rehash(form, cost)
	if err == nil {
		err = store.RehashPassword(ctx, u.ID, u.PasswordHash, h)
	}
	switch {
	case err == nil:
		a.opts.Logger.Info("password rehashed", slog.String("user_id", u.ID), slog.Int("cost", cost))
	case errors.Is(err, ErrBusy), errors.Is(err, persistence.ErrConflict), errors.Is(err, context.Canceled):
		a.opts.Logger.Debug("password not rehashed", slog.String("user_id", u.ID), slog.Any("err", err))
	default:
		a.opts.Logger.Warn("password rehash not stored", slog.String("user_id", u.ID), slog.Any("err", err))
	}
}

func (a *Accounts) me(c *gin.Context) {
	id, _ := IdentityFrom(c)
	u, err := a.store.UserByID(c.Request.Context(), id.UserID)
	if errors.Is(err, persistence.ErrNotFound) {
		// Deleted since the token was checked: as for a revoked token.
		httperr.AbortError(c, errAccountGone)
		return
	}
	if err != nil {
		httperr.AbortError(c, fmt.Errorf("load user %s: %w", id.UserID, err))
		return
	}
	c.JSON(http.StatusOK, gin.H{"user": viewOf(u)})
}

func (a *Accounts) logout(c *gin.Context) {
	id, _ := IdentityFrom(c)
	// An account deleted since the token was checked has no session left
	// to end: the logout has nothing more to do.
	version, err := a.store.BumpTokenVersion(c.Request.Context(), id.UserID)
	if err != nil && !errors.Is(err, persistence.ErrNotFound) {
		httperr.AbortError(c, fmt.Errorf("revoke tokens of %s: %w", id.UserID, err))
		return
	}
	if a.opts.OnLogout != nil {
		a.opts.OnLogout(id.UserID, version)
	}
	c.Status(http.StatusNoContent)
}

func (a *Accounts) answerSession(c *gin.Context, status int, u persistence.User) {
	token, _, err := a.authn.Issue(u)
	if err != nil {
		httperr.AbortError(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(status, Session{Token: token, User: viewOf(u)})
}

// hashError maps a hashing failure to the client's answer.
func hashError(err error) error {
	if errors.Is(err, ErrBusy) {
		return httperr.Unavailable("the server is busy; retry in a moment", err)
	}
	return err
}
