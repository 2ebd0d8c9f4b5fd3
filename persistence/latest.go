package persistence

import "context"

type latestKey struct{}

// WithLatest returns ctx asking the reads made with it to see every write
// acknowledged before they start, wherever it was made (this process or
// another server of the cluster). A store that spreads its reads over
// replicas (MongoDB with a readPreference other than primary) sends them to
// the primary; one that reads a single copy of its data (SQLite) ignores
// it. A caller asks for it when what it reads decides a write (whether a
// conversation is empty before deleting it) or goes upstream right after
// one (the history of a send); reads that only show data to a user may lag.
func WithLatest(ctx context.Context) context.Context {
	return context.WithValue(ctx, latestKey{}, true)
}

// Latest reports whether ctx asks for the latest state (WithLatest).
// Stores call it to choose where a read goes.
func Latest(ctx context.Context) bool {
	v, _ := ctx.Value(latestKey{}).(bool)
	return v
}
