package mongo

// IsFerretDB reports whether Open took the server for FerretDB, which
// selects how ApplyMessageUpdates checks the fence.
func IsFerretDB(s *Store) bool { return s.ferretDB }

// SetFerretDB overrides what Open detected, so that a test runs the MongoDB
// path (the atomic {_id, status} filter) on FerretDB too. Call it before
// the store is used concurrently.
func SetFerretDB(s *Store, v bool) { s.ferretDB = v }
