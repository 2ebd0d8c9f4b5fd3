// Package counting wraps a persistence.Store and counts the writes that reach
// it, so tests and benchmarks can measure database writes at the store
// boundary (for example: how many writes one streamed answer costs).
package counting

import (
	"sync"

	"chatd/persistence"
)

// Counts is a snapshot of what a Store has seen. Every call of a write
// method is one write operation, whether or not it succeeded.
type Counts struct {
	Writes         int64            // calls of write methods
	Reads          int64            // calls of read methods (Ping and Close are neither)
	Errors         int64            // write calls that returned an error
	MessageUpdates int64            // updates passed to ApplyMessageUpdates
	AppendedBytes  int64            // bytes of MessageUpdate.Append passed to ApplyMessageUpdates
	ByMethod       map[string]int64 // write calls per method name
}

// Store is a persistence.Store that counts the calls it passes to the
// wrapped store. It is safe for concurrent use.
type Store struct {
	inner persistence.Store

	mu     sync.Mutex
	counts Counts
}

var _ persistence.Store = (*Store)(nil)

// Wrap returns a counting Store in front of s.
func Wrap(s persistence.Store) *Store {
	return &Store{inner: s, counts: Counts{ByMethod: make(map[string]int64)}}
}

// Unwrap returns the wrapped store.
func (s *Store) Unwrap() persistence.Store { return s.inner }

// Writes returns a snapshot of the counts.
func (s *Store) Writes() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	c.ByMethod = make(map[string]int64, len(s.counts.ByMethod))
	for k, v := range s.counts.ByMethod {
		c.ByMethod[k] = v
	}
	return c
}

// Reset sets every count to zero.
func (s *Store) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts = Counts{ByMethod: make(map[string]int64)}
}

// wrote counts one call of write method name and returns err.
func (s *Store) wrote(name string, err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.Writes++
	s.counts.ByMethod[name]++
	if err != nil {
		s.counts.Errors++
	}
	return err
}

// read counts one call of a read method.
func (s *Store) read() {
	s.mu.Lock()
	s.counts.Reads++
	s.mu.Unlock()
}
