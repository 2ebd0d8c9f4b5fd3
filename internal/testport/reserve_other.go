//go:build !unix

package testport

// reserve has no way to reserve a port across processes here: ports are
// only checked free.
func reserve(int) bool { return true }

// release is reserve's counterpart.
func release(int) {}
