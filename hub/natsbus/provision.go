package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// provisionStepTimeout bounds creating one bucket or the stream.
const provisionStepTimeout = 5 * time.Second

// provisionAttemptTimeout bounds one attempt of a step; it doubles with
// each retry, up to eight times. Instances creating or updating the same
// stream at the same moment can leave all but one request unanswered by
// JetStream: a short bound, then reading again what the winner created,
// keeps them from waiting out the step's timeout.
const provisionAttemptTimeout = 150 * time.Millisecond

// ensure runs an idempotent provisioning step until it succeeds, retrying
// quickly (with jitter, so instances started together spread out) when an
// attempt went unanswered or lost a race to another instance.
func ensure[T any](ctx context.Context, step func(context.Context) (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, provisionAttemptTimeout<<min(attempt, 3))
		v, err := step(actx)
		cancel()
		if err == nil || ctx.Err() != nil || !lostRace(err) {
			return v, err
		}
		select {
		case <-ctx.Done():
			return v, err
		case <-time.After(time.Duration(rand.Int64N(int64(25 * time.Millisecond)))):
		}
	}
}

// lostRace reports an error of a provisioning request that another
// instance doing the same thing explains: no answer in time, the bucket
// or stream created meanwhile with another configuration, or a stream
// just created that the server answering is not yet serving.
func lostRace(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, jetstream.ErrBucketExists) || errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) ||
		errors.Is(err, jetstream.ErrStreamNotFound)
}

// resources are the JetStream buckets and stream the bus uses.
type resources struct {
	locks, leases, conns, sends jetstream.KeyValue
	stream                      string       // the answers
	events                      eventsStream // user events
}

func (b *Bus) setProvisionErr(err error) { b.provErr.Store(&err) }

// provisionErr is why JetStream is not set up yet.
func (b *Bus) provisionErr() error {
	if p := b.provErr.Load(); p != nil && *p != nil {
		return *p
	}
	return fmt.Errorf("waiting for NATS")
}

// leaseBucketAge is how long the leases bucket keeps an entry: six lease
// TTLs, at least a minute.
func leaseBucketAge(ttl time.Duration) time.Duration { return max(6*ttl, time.Minute) }

// name is a bucket or stream name under the prefix.
func (b *Bus) name(s string) string { return b.opts.Prefix + "_" + s }

// subject is a subject under the prefix.
func (b *Bus) subject(parts ...string) string {
	s := b.opts.Prefix
	for _, p := range parts {
		s += "." + p
	}
	return s
}

// replicas is Options.Replicas, or 3 when the connected server is one of a
// cluster (it has a cluster name; a server alone has none, and refuses
// more than one replica) of at least three servers, else 1. The servers
// counted are the URLs configured and those the cluster told of, so it
// is asked once JetStream answered (provision): with one URL configured
// and NATS not up yet, the others are not known before.
func (b *Bus) replicas() int {
	if b.opts.Replicas > 0 {
		return b.opts.Replicas
	}
	if b.nc.ConnectedClusterName() != "" && len(b.nc.Servers()) >= 3 {
		return 3
	}
	return 1
}

// provision creates or updates the buckets and the streams once JetStream
// answers; it is idempotent.
func (b *Bus) provision(ctx context.Context) (*resources, error) {
	// Answered by the meta leader only: the cluster has formed, and this
	// instance knows its servers (replicas).
	actx, cancel := context.WithTimeout(ctx, b.opts.provisionStep)
	_, err := b.js.AccountInfo(actx)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	r := b.replicas()
	kv := func(name string, ttl, markerTTL time.Duration) (jetstream.KeyValue, error) {
		return b.provisionKV(ctx, r, name, ttl, markerTTL)
	}
	var res resources
	if res.locks, err = kv("locks", 0, b.opts.markerTTL); err != nil {
		return nil, err
	}
	if res.leases, err = kv("leases", leaseBucketAge(b.opts.LeaseTTL), 0); err != nil {
		return nil, err
	}
	if res.conns, err = kv("conns", 0, b.opts.markerTTL); err != nil {
		return nil, err
	}
	if res.sends, err = kv("sends", sendsAge, 0); err != nil {
		return nil, err
	}
	b.Windows().ensure(ctx) // optional: its absence is logged, and the bus works without it
	sctx, cancel := context.WithTimeout(ctx, b.opts.provisionStep)
	defer cancel()
	res.stream, err = ensure(sctx, func(ctx context.Context) (string, error) { return b.provisionStream(ctx, r) })
	if err != nil {
		return nil, err
	}
	ectx, cancel := context.WithTimeout(ctx, b.opts.provisionStep)
	defer cancel()
	res.events, err = ensure(ectx, func(ctx context.Context) (eventsStream, error) { return b.provisionEvents(ctx, r) })
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// provisionKV creates or binds the bucket name with r replicas. A bucket
// whose keys are removed (removeKey) keeps their markers for markerTTL;
// the others' entries expire by their age (ttl).
func (b *Bus) provisionKV(ctx context.Context, r int, name string, ttl, markerTTL time.Duration) (jetstream.KeyValue, error) {
	cfg := jetstream.KeyValueConfig{Bucket: b.name(name), History: 1, TTL: ttl,
		Storage: jetstream.FileStorage, Replicas: r, LimitMarkerTTL: markerTTL}
	sctx, cancel := context.WithTimeout(ctx, b.opts.provisionStep)
	defer cancel()
	s, err := ensure(sctx, func(ctx context.Context) (jetstream.KeyValue, error) { return b.strongKV(ctx, cfg) })
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	}
	return s, nil
}

// strongKV binds the bucket, creating it first if needed, with reads served
// by the stream's leader: KV buckets allow "direct" reads from any replica
// by default, which may lag, and a lock read must see the last write. A
// bucket made by an older version gets the marker TTL it lacks, one
// whose entries expire sooner than cfg.TTL keeps them that long from now
// on (never shorter: another instance may need the longer age, as the
// leases bucket does for the instance with the longest lease TTL), and
// one with fewer replicas than cfg gets cfg's (never fewer: made while
// NATS was a single server, or by an instance that knew one of its
// servers only, a bucket stays on one server otherwise).
//
// The bucket is bound last, once its stream serves no direct reads: a
// binding keeps the way of reading the stream had when it was made, and
// another instance may turn direct reads off at any moment before (no
// replica then answers the direct gets of a binding made earlier).
func (b *Bus) strongKV(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	_, err := b.js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		_, err = b.js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			err = nil // another instance was first
		}
	}
	if err != nil {
		return nil, err
	}
	if hook := b.boundHook.Load(); hook != nil {
		(*hook)(cfg.Bucket)
	}
	st, err := b.js.Stream(ctx, "KV_"+cfg.Bucket)
	if err != nil {
		return nil, err
	}
	sc := st.CachedInfo().Config
	markers := cfg.LimitMarkerTTL > 0 && (!sc.AllowMsgTTL || sc.SubjectDeleteMarkerTTL != cfg.LimitMarkerTTL)
	older := cfg.TTL > 0 && longerLimit(sc.MaxAge, cfg.TTL) != sc.MaxAge
	fewer := sc.Replicas < cfg.Replicas
	if !sc.AllowDirect && !markers && !older && !fewer {
		return b.js.KeyValue(ctx, cfg.Bucket)
	}
	sc.AllowDirect = false
	if markers {
		sc.AllowMsgTTL, sc.SubjectDeleteMarkerTTL = true, cfg.LimitMarkerTTL
	}
	if older {
		sc.MaxAge = cfg.TTL
	}
	if fewer {
		b.logRaised(sc.Name, sc.Replicas, cfg.Replicas)
		sc.Replicas = cfg.Replicas
	}
	if _, err := b.js.UpdateStream(ctx, sc); err != nil {
		return nil, fmt.Errorf("turn direct reads off, markers expiring, entries kept %s, %d replicas: %w", sc.MaxAge, sc.Replicas, err)
	}
	return b.js.KeyValue(ctx, cfg.Bucket)
}

func (b *Bus) provisionStream(ctx context.Context, replicas int) (string, error) {
	l := b.opts.Stream
	cfg := jetstream.StreamConfig{
		Name:              "CHATD_ANSWERS",
		Subjects:          []string{b.subject("answer", "*")},
		Storage:           jetstream.FileStorage,
		Replicas:          replicas,
		Retention:         jetstream.LimitsPolicy,
		Discard:           jetstream.DiscardOld,
		MaxAge:            l.MaxAge,
		MaxBytes:          l.MaxBytes,
		MaxMsgsPerSubject: l.MaxMsgsPerAnswer,
		MaxMsgSize:        l.MaxMsgSize,
		Duplicates:        time.Minute,
		// Followers read stored frames with batched direct gets, which
		// any replica answers; they confirm the end with the leader (see
		// readStored), so a lagging replica delays nothing and hides nothing.
		AllowDirect: true,
	}
	if b.opts.Prefix != DefaultPrefix {
		cfg.Name = "CHATD_" + b.opts.Prefix + "_ANSWERS"
	}
	have, err := b.streamConfig(ctx, cfg.Name)
	if err != nil {
		return "", err
	}
	b.keepLongerRetention(have, &cfg)
	b.keepReplicas(have, &cfg)
	if _, err := b.js.CreateOrUpdateStream(ctx, cfg); err != nil {
		return "", fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	return cfg.Name, nil
}

// run provisions JetStream (retrying with backoff until NATS answers), then
// watches the buckets and renews the lease until ctx ends.
func (b *Bus) run(ctx context.Context) {
	for attempt := 0; b.res.Load() == nil; attempt++ {
		res, err := b.provision(ctx)
		if err == nil {
			b.setProvisionErr(nil)
			b.res.Store(res)
			break
		}
		b.setProvisionErr(err)
		if attempt%20 == 0 {
			b.log.Warn("NATS JetStream not ready; retrying", slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff(attempt)):
		}
	}
	res := b.res.Load()
	b.watchers = []*watched{newWatched(res.leases, b.lease), newWatched(res.locks, b.locks)}
	b.eventsNow = res.events
	b.wg.Add(4 + len(b.watchers))
	go func() {
		defer b.wg.Done()
		b.consumeEvents(ctx, res.events)
	}()
	go func() {
		defer b.wg.Done()
		b.judgeLoop(ctx)
	}()
	go func() {
		defer b.wg.Done()
		b.Limits().repairLoop(ctx)
	}()
	go func() {
		defer b.wg.Done()
		b.Limits().sweepLoop(ctx)
	}()
	for _, w := range b.watchers {
		go func() {
			defer b.wg.Done()
			b.watch(ctx, w)
		}()
	}
	b.renewLoop(ctx)
}

// streamConfig is the configuration of the stream name, nil when there is
// no such stream yet.
func (b *Bus) streamConfig(ctx context.Context, name string) (*jetstream.StreamConfig, error) {
	st, err := b.js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	return &st.CachedInfo().Config, nil
}

// keepReplicas keeps the replicas a stream has (have, nil for none yet)
// when they are more than cfg asks for: an instance that counted fewer
// NATS servers (a node down as it started) never takes a stream's
// replicas away; fewer are raised to cfg's.
func (b *Bus) keepReplicas(have, cfg *jetstream.StreamConfig) {
	switch {
	case have == nil:
	case have.Replicas > cfg.Replicas:
		cfg.Replicas = have.Replicas
	case have.Replicas < cfg.Replicas:
		b.logRaised(cfg.Name, have.Replicas, cfg.Replicas)
	}
}

// logRaised logs the replicas of stream raised from have to want.
func (b *Bus) logRaised(stream string, have, want int) {
	b.log.Info("raising the replicas of a NATS stream", slog.String("stream", stream),
		slog.Int("replicas", have), slog.Int("to", want))
}

// keepLongerRetention keeps what the answer stream already keeps (have,
// nil for no stream yet) when it is more than cfg asks for: how long
// frames stay (MaxAge) and how many of one answer (MaxMsgsPerSubject), 0
// or less meaning no limit. Another instance may allow longer answers than
// this one (CHATD_MAX_ANSWER_DURATION changed one instance at a time, or
// an instance restarted with the old configuration meanwhile): shortening
// the stream would drop the first frames of its running answers. The
// stream's size (MaxBytes) is the operator's disk budget and follows the
// configuration. A stream kept longer than configured is logged; nats
// stream edit shortens it.
func (b *Bus) keepLongerRetention(have, cfg *jetstream.StreamConfig) {
	if have == nil {
		return
	}
	age, perAnswer := cfg.MaxAge, cfg.MaxMsgsPerSubject
	cfg.MaxAge = longerLimit(have.MaxAge, age)
	cfg.MaxMsgsPerSubject = longerLimit(have.MaxMsgsPerSubject, perAnswer)
	if cfg.MaxAge != age || cfg.MaxMsgsPerSubject != perAnswer {
		b.log.Info("the answer stream keeps frames longer than this instance's configuration asks: kept as it is "+
			"(another instance may allow longer answers); nats stream edit shortens it",
			slog.String("stream", cfg.Name), slog.String("max_age", cfg.MaxAge.String()), slog.String("configured_max_age", age.String()),
			slog.Int64("max_frames_per_answer", cfg.MaxMsgsPerSubject), slog.Int64("configured_max_frames_per_answer", perAnswer))
	}
}

// longerLimit is the looser of two retention limits, have (what JetStream
// keeps now) and want: 0 or less is no limit. Instances never lower one:
// another instance may need what it is.
func longerLimit[T int64 | time.Duration](have, want T) T {
	if have <= 0 || want <= 0 {
		return min(have, want)
	}
	return max(have, want)
}
