package mongo

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

// TestSplitURIScrubsPasswords checks that splitURI finds the hosts, the
// database and the password of connection strings whose password holds
// '?', '/', '#' or '@', written as they are or percent-encoded, and that
// redact then removes the password (as written and decoded) from an
// error's text while the hosts stay readable.
func TestSplitURIScrubsPasswords(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, uri, password, hosts, database string
	}{
		{"plain", "mongodb://chatd:secret@db1/chatd", "secret", "db1", "chatd"},
		{"question mark", "mongodb://chatd:p?ss@db1/chatd", "p?ss", "db1", "chatd"},
		{"question mark and options", "mongodb://chatd:p?ss@db1:27017,db2/chatd?replicaSet=rs0", "p?ss", "db1:27017,db2", "chatd"},
		{"question mark, no path", "mongodb://chatd:p?ss=1@db1", "p?ss=1", "db1", ""},
		{"question mark encoded", "mongodb://chatd:p%3Fss@db1/chatd", "p%3Fss", "db1", "chatd"},
		{"slash", "mongodb://chatd:p/ss@db1/chatd", "p/ss", "db1", "chatd"},
		{"slash encoded", "mongodb://chatd:p%2Fss@db1/chatd", "p%2Fss", "db1", "chatd"},
		{"hash", "mongodb://chatd:p#ss@db1/chatd", "p#ss", "db1", "chatd"},
		{"hash encoded", "mongodb://chatd:p%23ss@db1/chatd", "p%23ss", "db1", "chatd"},
		{"at sign", "mongodb://chatd:p@ss@db1/chatd", "p@ss", "db1", "chatd"},
		{"at sign encoded", "mongodb://chatd:p%40ss@db1/chatd", "p%40ss", "db1", "chatd"},
		{"all four", "mongodb://chatd:p@s/s?w#d@db1:27017/chatd?authSource=admin", "p@s/s?w#d", "db1:27017", "chatd"},
		{"all four, like a query", "mongodb://chatd:a/b?c=d@db1/chatd", "a/b?c=d", "db1", "chatd"},
		{"all four encoded", "mongodb://chatd:p%40s%2Fs%3Fw%23d@db1/chatd", "p%40s%2Fs%3Fw%23d", "db1", "chatd"},
		{"srv", "mongodb+srv://chatd:p?ss@cluster0.example.net/chatd", "p?ss", "cluster0.example.net", "chatd"},
		{"at sign in an option", "mongodb://chatd:secret@db1/chatd?appName=me@home", "secret", "db1", "chatd"},
		{"at signs in options", "mongodb://chatd:p?ss@db1/chatd?appName=a@b&tlsCAFile=/etc/c@d.pem", "p?ss", "db1", "chatd"},
		{"at sign in an option, no user", "mongodb://db1:27017/chatd?appName=me@home", "", "db1:27017", "chatd"},
		{"password option", "mongodb://db1/?tlsCertificateKeyFilePassword=s3cr%3Ft", "s3cr%3Ft", "db1", ""},
		{"no user", "mongodb://db1/chatd?replicaSet=rs0", "", "db1", "chatd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := splitURI(tt.uri)
			if p.hosts != tt.hosts || p.database != tt.database {
				t.Errorf("splitURI(%q): hosts %q, database %q; want %q, %q", tt.uri, p.hosts, p.database, tt.hosts, tt.database)
			}
			if tt.password == "" {
				if len(p.secrets) != 0 {
					t.Errorf("splitURI(%q): secrets %q; want none", tt.uri, p.secrets)
				}
				return
			}
			decoded, err := url.PathUnescape(tt.password)
			if err != nil {
				t.Fatal(err)
			}
			cause := errors.New("auth failed")
			msg := p.redact(fmt.Errorf("connect to %s as %q (%q): %w", p.hosts, tt.password, decoded, cause)).Error()
			for _, secret := range []string{tt.password, decoded} {
				if strings.Contains(msg, secret) {
					t.Errorf("redacted error %q holds the password %q", msg, secret)
				}
			}
			if !strings.Contains(msg, tt.hosts) {
				t.Errorf("redacted error %q does not name the hosts %q", msg, tt.hosts)
			}
		})
	}
}
