package persistence

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"sync/atomic"
	"time"
)

// idCounter makes ids minted in the same second by this process sort in
// creation order; processValue tells processes apart, as in a MongoDB ObjectID.
var (
	idCounter    atomic.Uint32
	processValue [5]byte
)

func init() {
	var b [4]byte
	_, _ = rand.Read(b[:])
	idCounter.Store(binary.BigEndian.Uint32(b[:]))
	_, _ = rand.Read(processValue[:])
}

// NewID returns a new 24-character lower-case hex id laid out like a MongoDB
// ObjectID (4 bytes of seconds, 5 random bytes drawn once per process, a
// 3-byte counter), so ids of one process sort in creation order (until the
// counter wraps within a second) and are valid ObjectIDs on MongoDB.
func NewID() string {
	var b [12]byte
	binary.BigEndian.PutUint32(b[0:4], uint32(time.Now().Unix()))
	copy(b[4:9], processValue[:])
	c := idCounter.Add(1)
	b[9], b[10], b[11] = byte(c>>16), byte(c>>8), byte(c)
	return hex.EncodeToString(b[:])
}

// ValidID reports whether s has the form NewID produces.
func ValidID(s string) bool {
	if len(s) != 24 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
