package natsbus

import (
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Options configure a Bus. URLs is required; other zero fields take the
// documented defaults.
type Options struct {
	// URLs are the NATS servers to connect to ("nats://host:4222" or
	// "tls://host:4222"); the client also learns the other cluster members
	// from the servers.
	URLs []string
	// InstanceID names this chatd process in the cluster; it must be unique
	// among live instances. It defaults to the host name plus a random suffix.
	InstanceID string

	// User and Password authenticate with user/password.
	User, Password string
	// Token authenticates with a token (when User is empty).
	Token string
	// CredsFile is a NATS credentials file (JWT and NKey seed), for
	// decentralised authentication.
	CredsFile string
	// NKeySeedFile is a file holding a user NKey seed ("SU..."), for
	// servers that know their users by NKey public key.
	NKeySeedFile string
	// TLSCAFile is a PEM file of the CAs that sign the servers'
	// certificates; setting it requires TLS. Without it, "tls://" URLs use
	// the system roots.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are a PEM client certificate and its key,
	// presented to servers that verify their clients (mutual TLS); setting
	// them requires TLS. They are read again at every connection, so a
	// renewed certificate takes effect at the next reconnect.
	TLSCertFile, TLSKeyFile string

	// LeaseTTL is how long an instance that stops renewing its lease is
	// still taken for alive; after it, a live instance ends that instance's
	// answers as interrupted. It defaults to 10s.
	LeaseTTL time.Duration
	// RenewEvery is how often the lease is renewed; it defaults to
	// LeaseTTL/3 and is at most LeaseTTL/2.
	RenewEvery time.Duration
	// OutageGrace is how long the connection may be lost before the bus
	// counts as down: followed answers end with ErrBusUnavailable and
	// Health fails. A short loss (one NATS node restarting, the client
	// moving to another node) stays invisible. It defaults to 3s.
	OutageGrace time.Duration
	// Replicas is the replication factor of the buckets and of the
	// streams; it defaults to 3 when the NATS cluster has at least three
	// nodes, else 1. A bucket or stream with fewer is raised to it; one
	// with more keeps them.
	Replicas int
	// Stream bounds what JetStream keeps of answers; see StreamLimits.
	Stream StreamLimits
	// SessionKeys are the fingerprints of the keys this instance signs
	// and verifies session tokens with, compared with every other
	// instance's (see SessionKeys); empty, nothing is compared.
	SessionKeys SessionKeys
	// WindowsSecret keys the names of the windows bucket's keys
	// (Windows): each is an HMAC-SHA256, under this secret, of what it
	// counts (an email, a client address), so that NATS holds nothing a
	// guessed email or an address tried in turn can be checked against.
	// Every instance of the cluster must have the same one, or each
	// counts into keys of its own. cmd/chatd derives it from JWT_SECRET
	// (auth.DeriveKey), never passing the JWT secret itself. Empty (tests
	// only), the key is empty and hides nothing.
	WindowsSecret []byte
	// WindowsAge is how long the bucket of the login and registration
	// limits (Windows) keeps a key after its last change: at least the
	// longest of their windows. It defaults to DefaultWindowsAge; the
	// bucket keeps the longest any instance asked for.
	WindowsAge time.Duration
	// Prefix starts the names of every subject, bucket and stream, so that
	// several chatd deployments can share one NATS account; it defaults
	// to "chatd".
	Prefix string

	Logger *slog.Logger

	// clientOptions are more NATS client options (tests).
	clientOptions []nats.Option
	// markerTTL is how long the marker of a removed lock or connection
	// count stays in its bucket; kvMarkerTTL unless a test sets it.
	markerTTL time.Duration
	// provisionStep bounds creating one bucket or the stream;
	// provisionStepTimeout unless a test sets it.
	provisionStep time.Duration
	// eventAckWait is how long the events stream's acknowledgement of a
	// user event is waited for; eventAckTimeout unless a test sets it.
	eventAckWait time.Duration
	// clock is this host's clock, which the time of the cluster-wide
	// token buckets (Limits) and windows (Windows) is told by, moved to
	// the NATS servers' time (leaseView.natsNow); time.Now unless a test
	// sets it (another host's clock, skewed).
	clock func() time.Time
	// connsSweepEvery is how often a round of the sweep of dead
	// instances' connection counts runs, and connsSweepPage how many
	// keys of chatd_conns one round reads (connsSweep);
	// connsSweepInterval and connsSweepKeys unless a test sets them.
	connsSweepEvery time.Duration
	connsSweepPage  int
	// eventsPending bounds the user events whose acknowledgement is
	// awaited (nats.go's default, 4000, unless a test sets it).
	eventsPending int
}

// kvMarkerTTL is how long the marker of a removed key stays in the locks
// and conns buckets: long enough for any watcher to see the removal, and
// then gone, so that those buckets hold what is current (the running
// answers, the users connected) and not one marker for every
// conversation that ever had an answer.
const kvMarkerTTL = 5 * time.Minute

// StreamLimits bound the answer stream, which holds the frames of running
// and recently ended answers. Old frames are discarded first when a limit
// is reached.
type StreamLimits struct {
	// MaxAge is how long a frame is kept; it defaults to 15 minutes (the
	// hub's default longest answer, 10 minutes, plus 5 minutes for
	// followers to catch up after it ended).
	MaxAge time.Duration
	// MaxBytes bounds the whole stream on each replica; it defaults to 1 GiB.
	MaxBytes int64
	// MaxMsgsPerAnswer bounds the frames kept of one answer; it defaults
	// to 100,000. It must exceed what the longest answer publishes, or its
	// first frames go before it ends (cmd/chatd derives it, and MaxAge,
	// from the longest answer it allows and its coalescing).
	MaxMsgsPerAnswer int64
	// MaxMsgSize bounds one frame; it defaults to 1 MiB.
	MaxMsgSize int32
}

// Defaults of Options.
const (
	DefaultLeaseTTL    = 10 * time.Second
	DefaultOutageGrace = 3 * time.Second
	DefaultPrefix      = "chatd"
)

func (o *Options) setDefaults() error {
	if len(o.URLs) == 0 {
		return errors.New("natsbus: no NATS URL")
	}
	if (o.TLSCertFile == "") != (o.TLSKeyFile == "") {
		return errors.New("natsbus: a TLS client certificate needs its key, and a key its certificate")
	}
	if o.InstanceID == "" {
		o.InstanceID = defaultInstanceID()
	}
	if o.provisionStep <= 0 {
		o.provisionStep = provisionStepTimeout
	}
	if o.markerTTL <= 0 {
		o.markerTTL = kvMarkerTTL
	}
	if o.clock == nil {
		o.clock = time.Now
	}
	if o.eventAckWait <= 0 {
		o.eventAckWait = eventAckTimeout
	}
	if o.connsSweepEvery <= 0 {
		o.connsSweepEvery = connsSweepInterval
	}
	if o.connsSweepPage <= 0 {
		o.connsSweepPage = connsSweepKeys
	}
	if o.WindowsAge <= 0 {
		o.WindowsAge = DefaultWindowsAge
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.RenewEvery <= 0 || o.RenewEvery > o.LeaseTTL/2 {
		o.RenewEvery = o.LeaseTTL / 3
	}
	if o.OutageGrace <= 0 {
		o.OutageGrace = DefaultOutageGrace
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Stream.setDefaults()
	return nil
}

func (l *StreamLimits) setDefaults() {
	if l.MaxAge <= 0 {
		l.MaxAge = 15 * time.Minute
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 1 << 30
	}
	if l.MaxMsgsPerAnswer <= 0 {
		l.MaxMsgsPerAnswer = 100_000
	}
	if l.MaxMsgSize <= 0 {
		l.MaxMsgSize = 1 << 20
	}
}
