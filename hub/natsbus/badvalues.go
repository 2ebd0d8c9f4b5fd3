package natsbus

import (
	"log/slog"
	"sync"
)

// maxBadKeys bounds the keys a badValues remembers warning of; past it,
// it forgets them all, and each may be warned of once more.
const maxBadKeys = 1024

// badValues warns of the unreadable values of one KV bucket (leases,
// locks), which the code reading them otherwise passes over: once per key
// until the key holds a readable value again or is deleted, however often
// the bad value is read or delivered again, so that one cannot flood the
// log.
type badValues struct {
	log    *slog.Logger
	bucket string

	mu     sync.Mutex
	warned map[string]struct{} // keys warned of, their value still bad
}

func newBadValues(log *slog.Logger, bucket string) *badValues {
	return &badValues{log: log, bucket: bucket, warned: make(map[string]struct{})}
}

// bad warns, unless it did already, that the value of key at revision
// rev could not be read (err) and what is done instead (then).
func (w *badValues) bad(key string, rev uint64, err error, then string) {
	w.mu.Lock()
	_, warned := w.warned[key]
	if !warned {
		if len(w.warned) >= maxBadKeys {
			clear(w.warned)
		}
		w.warned[key] = struct{}{}
	}
	w.mu.Unlock()
	if !warned {
		w.log.Warn("unreadable value in the "+w.bucket+" bucket; "+then,
			slog.String("key", key), slog.Uint64("revision", rev), slog.Any("err", err))
	}
}

// good says key holds a readable value, or none: its next bad one is
// warned of again.
func (w *badValues) good(key string) {
	w.mu.Lock()
	delete(w.warned, key)
	w.mu.Unlock()
}
