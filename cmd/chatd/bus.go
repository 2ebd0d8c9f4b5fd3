package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"chatd/hub/natsbus"
	"chatd/transport/auth"
)

// openBus joins the NATS cluster when CHATD_NATS_URL is set; without it,
// it returns nil and the hub keeps to this process. It does not wait for
// NATS: the bus connects and sets itself up in the background, and
// /readyz answers 503 until it is usable. The fingerprints of secrets go
// in the instance's lease, so that instances whose sessions the others
// would refuse are named in the log, and a key derived from the signing
// secret keys the names of the login limits' windows (busSecrets).
func openBus(cfg Config, secrets jwtSecrets, logger *slog.Logger) (*natsbus.Bus, error) {
	c := cfg.Cluster
	if !c.Enabled() {
		return nil, nil
	}
	logger.Info("joining the cluster", slog.Any("nats", c.URLs), slog.String("instance", c.InstanceID),
		slog.String("lease_ttl", c.LeaseTTL.String()), slog.String("nats_auth", c.authMethod()),
		slog.Bool("nats_tls_ca", c.TLSCA != ""), slog.Bool("nats_tls_client_cert", c.TLSCert != ""))
	o := busOptions(cfg, logger)
	if err := busSecrets(&o, secrets); err != nil {
		return nil, err
	}
	b, err := natsbus.New(o)
	if err != nil {
		return nil, fmt.Errorf("join the cluster over NATS: %w", err)
	}
	return b, nil
}

// windowsKeyPurpose is the HKDF label of the key of the windows bucket's
// names (natsbus.Options.WindowsSecret).
const windowsKeyPurpose = "chatd nats windows key"

// busSecrets gives the bus what it takes of the JWT secrets, none of
// them as they are: their fingerprints (SessionKeys), and the key of the
// names in the login limits' bucket, derived from the signing secret
// (JWT_SECRET), which every instance of a cluster has. Only while a
// rotation's second step is rolled out (docs/deploy.md, "Rotating the
// JWT secret") do instances sign with two secrets; for those minutes
// each half counts failed logins into keys of its own. No choice among
// the secrets avoids that: at the first step the instances share only
// the old secret, at the third only the new one.
func busSecrets(o *natsbus.Options, secrets jwtSecrets) error {
	o.SessionKeys = secrets.fingerprints()
	k, err := auth.DeriveKey(secrets.sign, windowsKeyPurpose)
	if err != nil {
		return fmt.Errorf("the key of the cluster's login limits: %w", err)
	}
	o.WindowsSecret = k
	return nil
}

// joinWait is how long the start gives the bus to join the cluster before
// it says so (tests shorten it).
var joinWait = 5 * time.Second

// joinInterval is how often watchJoin looks at the bus's health.
const joinInterval = 100 * time.Millisecond

// busHealth is what watchJoin needs of the bus (natsbus.Bus.Health).
type busHealth interface {
	Health(context.Context) error
}

// watchJoin tells whether the instance joined the cluster at start: when
// the bus is not usable within wait (a mistyped CHATD_NATS_URL, NATS not
// started, credentials refused), a warning in plain words naming the
// settings to check (the bus's own "NATS connection attempt failed" lines
// give each attempt's reason but name no setting), and an info line once
// it is. It never stops the start (NATS may come up later: the bus keeps
// trying) and returns once the bus is usable or ctx ends.
func watchJoin(ctx context.Context, cfg Config, b busHealth, wait time.Duration, logger *slog.Logger) {
	began := time.Now()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(joinInterval)
	defer tick.Stop()
	for {
		err := b.Health(ctx)
		if err == nil {
			logger.Info("joined the cluster", slog.String("took", time.Since(began).Round(time.Millisecond).String()))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			logger.Warn(fmt.Sprintf("not joined to the cluster: no usable NATS at CHATD_NATS_URL within %s; "+
				"/readyz answers 503 until it joins. Check CHATD_NATS_URL, the NATS credentials and TLS files "+
				"(CHATD_NATS_*) and that NATS runs (to try a cluster on this machine: go run ./cmd/devstack); "+
				"chatd keeps trying", wait), slog.Any("nats", cfg.Cluster.URLs), slog.String("err", err.Error()))
		case <-tick.C:
		}
	}
}

// busOptions are the bus's options from the configuration; the intervals
// keep natsbus's defaults (docs/scale.md, "Sizing").
func busOptions(cfg Config, logger *slog.Logger) natsbus.Options {
	c := cfg.Cluster
	return natsbus.Options{
		URLs:         c.URLs,
		InstanceID:   c.InstanceID,
		User:         c.User,
		Password:     c.Password,
		Token:        c.Token,
		CredsFile:    c.CredsFile,
		NKeySeedFile: c.NKeyFile,
		TLSCAFile:    c.TLSCA,
		TLSCertFile:  c.TLSCert,
		TLSKeyFile:   c.TLSKey,
		LeaseTTL:     c.LeaseTTL,
		Stream:       streamLimits(cfg),
		WindowsAge:   max(time.Hour, cfg.LoginFailureWindow), // the longest window of the account routes' limits
		Logger:       logger,
	}
}

// catchUpAfterEnd is how long an answer's frames outlive its longest run:
// a tab that starts following at the answer's last moment, or reconnects
// just after it, still reads it whole from the stream.
const catchUpAfterEnd = 5 * time.Minute

// streamLimits sizes the answer stream for this configuration's longest
// answer, so that no frame of a running answer ages out of the stream
// before the answer ends (a follower starting late reads the answer from
// its first frame): frames are kept CHATD_MAX_ANSWER_DURATION plus
// catchUpAfterEnd, and of one answer as many as it publishes in its
// longest run with a delta and a reasoning frame every coalescing gap
// (the shortest time between two deltas unless 4 KiB of text wait), plus
// its first and last frames. The stream's size on each node is
// CHATD_NATS_STREAM_MAX_BYTES.
func streamLimits(cfg Config) natsbus.StreamLimits {
	frames := 2*int64(cfg.MaxAnswerDuration/coalesceMinGap(cfg)) + 16
	return natsbus.StreamLimits{MaxAge: cfg.MaxAnswerDuration + catchUpAfterEnd,
		MaxBytes: cfg.Cluster.StreamMaxBytes, MaxMsgsPerAnswer: frames}
}

// coalesceMinGap is the shortest time between two deltas of an answer
// (hub.Options.CoalesceMinGap): a fifth of CHATD_COALESCE_INTERVAL.
func coalesceMinGap(cfg Config) time.Duration { return cfg.CoalesceInterval / 5 }

// authMethod names how the instance authenticates to NATS, for the log
// (never the secret itself).
func (c ClusterConfig) authMethod() string {
	switch {
	case c.CredsFile != "":
		return "creds file"
	case c.NKeyFile != "":
		return "nkey"
	case c.User != "":
		return "user " + c.User
	case c.Token != "":
		return "token"
	default:
		return "none"
	}
}

// closeBus ends the bus when the app never took it over (a failed start).
func closeBus(b *natsbus.Bus, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		logger.Warn("leave the cluster", slog.String("err", err.Error()))
	}
}
