package natsbus

import (
	"log/slog"
	"slices"
)

// SessionKeys names, by fingerprint, the keys that sign and verify an
// instance's session tokens (its users' JWTs). Each instance puts them in
// its lease, so that one that sees another whose tokens it would refuse,
// or that would refuse its own, says so in the log: a user signed in on
// one would be signed out when a request reaches the other. The bus only
// compares fingerprints; it never sees a key.
type SessionKeys struct {
	Signs   string   // the fingerprint of the key that signs
	Accepts []string // the fingerprints of every key that verifies, Signs included
}

// refuses reports whether tokens signed with the key of fingerprint key
// fail verification with k; it is false when either side is not known
// (an instance of a version before the check, or no keys configured).
func (k SessionKeys) refuses(key string) bool {
	return key != "" && len(k.Accepts) > 0 && !slices.Contains(k.Accepts, key)
}

// keyDisagreement is how this instance and another one disagree about
// session keys.
type keyDisagreement struct {
	here  bool // this instance refuses the other's tokens
	there bool // the other refuses this instance's tokens
}

// disagreement compares the keys of this instance with those a peer's
// lease declares.
func (k SessionKeys) disagreement(peer lease) keyDisagreement {
	return keyDisagreement{here: k.refuses(peer.Signs), there: SessionKeys{Accepts: peer.Accepts}.refuses(k.Signs)}
}

// logKeyChange says in the log that this instance and instance started
// or stopped disagreeing about session keys (from was, to is).
func logKeyChange(log *slog.Logger, instance string, from, to keyDisagreement) {
	switch {
	case from == to:
	case to == keyDisagreement{}:
		log.Info("session keys agree again with another instance", slog.String("other_instance", instance))
	default:
		log.Warn("session keys differ between instances: users whose requests reach both are signed out; "+
			"set the same JWT_SECRET on every instance (while rotating it, the other secret in JWT_SECRET_ACCEPTED)",
			slog.String("other_instance", instance),
			slog.Bool("refused_here", to.here), slog.Bool("refused_there", to.there))
	}
}
