package natsbus

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"strings"
)

// defaultInstanceID is the host name plus a random suffix, so a restarted
// process is a new instance.
func defaultInstanceID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "chatd"
	}
	return host + "-" + randomHex(4)
}

// randomHex is n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// token turns s into one subject token and key (letters, digits, '-' and
// '_'): ids made by chatd pass as they are, anything else is encoded.
func token(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) < 0 {
		return s
	}
	return "=" + base64.RawURLEncoding.EncodeToString([]byte(s))
}
