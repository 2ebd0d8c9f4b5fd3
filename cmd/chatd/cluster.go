package main

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"chatd/hub/natsbus"
)

// Cluster settings: several instances joined by a NATS JetStream cluster
// (docs/scale.md). All of them are read by readCluster.
const (
	envNATSURL      = "CHATD_NATS_URL"
	envNATSCreds    = "CHATD_NATS_CREDS"
	envNATSNKey     = "CHATD_NATS_NKEY"
	envNATSUser     = "CHATD_NATS_USER"
	envNATSPassword = "CHATD_NATS_PASSWORD"
	envNATSToken    = "CHATD_NATS_TOKEN"
	envNATSTLSCA    = "CHATD_NATS_TLS_CA"
	envNATSTLSCert  = "CHATD_NATS_TLS_CERT"
	envNATSTLSKey   = "CHATD_NATS_TLS_KEY"
	envInstanceID   = "CHATD_INSTANCE_ID"
	envLeaseTTL     = "CHATD_LEASE_TTL"
	envStreamBytes  = "CHATD_NATS_STREAM_MAX_BYTES"
)

// Lease bounds: an instance renews its leases several times per TTL, so
// below a second renewals would crowd the bus; above five minutes a crashed
// instance's answers would stay "streaming" for too long.
const (
	defaultLeaseTTL = 10 * time.Second
	minLeaseTTL     = time.Second
	maxLeaseTTL     = 5 * time.Minute
)

// Bounds of the answer stream's size on each NATS node: below 64 MiB a
// busy minute would push out frames followers still need; 1 TiB is far
// beyond any NATS host's disk for this.
const (
	defaultStreamBytes = 1 << 30
	minStreamBytes     = 64 << 20
	maxStreamBytes     = 1 << 40
)

// instanceIDRE is what an instance id may hold: it becomes a NATS subject
// token and a JetStream KV key, where dots, spaces, * and > are special.
var instanceIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// instanceNameRE is what CHATD_INSTANCE_ID may hold: an instance id less
// the "-" and 8 hex digits each start adds.
var instanceNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,55}$`)

// notInIDRE matches what a host name may hold and an instance id may not.
var notInIDRE = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// ClusterConfig is how this instance joins the others; empty URLs mean a
// single process with the in-process hub (no NATS at all).
type ClusterConfig struct {
	URLs       []string      // CHATD_NATS_URL, comma list of nats:// or tls:// URLs
	CredsFile  string        // CHATD_NATS_CREDS: a NATS .creds file (user JWT and nkey seed)
	NKeyFile   string        // CHATD_NATS_NKEY: a file holding a user NKey seed
	User       string        // CHATD_NATS_USER, with Password
	Password   string        // CHATD_NATS_PASSWORD
	Token      string        // CHATD_NATS_TOKEN
	TLSCA      string        // CHATD_NATS_TLS_CA: PEM file of the CAs that signed the NATS servers' certificates
	TLSCert    string        // CHATD_NATS_TLS_CERT: PEM client certificate for servers that verify clients (mutual TLS)
	TLSKey     string        // CHATD_NATS_TLS_KEY: the client certificate's PEM private key
	InstanceID string        // <CHATD_INSTANCE_ID, default the host name>-<8 hex digits, new on every start>
	LeaseTTL   time.Duration // CHATD_LEASE_TTL, default 10s: how long a crashed instance's answers stay "streaming"
	// StreamMaxBytes is CHATD_NATS_STREAM_MAX_BYTES, default 1GiB: the
	// answer stream's size on each NATS node, its oldest frames dropped
	// beyond it.
	StreamMaxBytes int64
}

// Enabled reports whether CHATD_NATS_URL is set.
func (c ClusterConfig) Enabled() bool { return len(c.URLs) > 0 }

// readCluster reads the cluster settings. Credentials are never echoed in
// an error. storeShared says whether the store can be shared between
// instances (MongoDB); with NATS set it must be.
func (r *configReader) readCluster(storeShared bool) ClusterConfig {
	c := ClusterConfig{
		URLs:           r.natsURLs(envNATSURL),
		CredsFile:      r.str(envNATSCreds, ""),
		NKeyFile:       r.str(envNATSNKey, ""),
		User:           r.str(envNATSUser, ""),
		Password:       r.getenv(envNATSPassword), // spaces may belong to a password
		Token:          strings.TrimSpace(r.getenv(envNATSToken)),
		TLSCA:          r.str(envNATSTLSCA, ""),
		TLSCert:        r.str(envNATSTLSCert, ""),
		TLSKey:         r.str(envNATSTLSKey, ""),
		LeaseTTL:       r.duration(envLeaseTTL, defaultLeaseTTL, minLeaseTTL, maxLeaseTTL),
		StreamMaxBytes: r.size(envStreamBytes, defaultStreamBytes, minStreamBytes, maxStreamBytes),
	}
	if !c.Enabled() {
		if strings.TrimSpace(r.getenv(envNATSURL)) != "" {
			return c // the URL is set but refused: its own error says why
		}
		for _, name := range []string{envNATSCreds, envNATSNKey, envNATSUser, envNATSPassword, envNATSToken, envNATSTLSCA, envNATSTLSCert, envNATSTLSKey,
			envInstanceID, envLeaseTTL, envStreamBytes} {
			if r.getenv(name) != "" {
				r.fail(name, "is set but %s is not: set %s to join the cluster, or remove %s", envNATSURL, envNATSURL, name)
			}
		}
		return c
	}
	if !storeShared {
		r.fail(envNATSURL, "needs MONGODB_URI: every instance of a cluster must share one store, and the embedded SQLite store belongs to one process (docs/scale.md)")
	}
	r.checkNATSAuth(c)
	if c.CredsFile != "" {
		r.checkReadableFile(envNATSCreds, c.CredsFile)
	}
	if c.NKeyFile != "" {
		if err := natsbus.CheckNKeySeed(c.NKeyFile); err != nil {
			r.fail(envNATSNKey, "%q does not hold a user NKey seed (nsc or nk -gen user writes one): %v", c.NKeyFile, err)
		}
	}
	if c.TLSCA != "" {
		r.checkCAFile(envNATSTLSCA, c.TLSCA)
	}
	r.checkClientCert(c.TLSCert, c.TLSKey)
	switch name := r.str(envInstanceID, ""); {
	case name == "":
		c.InstanceID = instanceID(hostName(os.Hostname))
	case !instanceNameRE.MatchString(name):
		r.fail(envInstanceID, "%q must be 1 to 55 letters, digits, - or _ (it names this instance in NATS subjects and keys)", name)
	default:
		c.InstanceID = instanceID(name)
	}
	return c
}

// natsURLs reads a comma list of NATS server URLs. Credentials in a URL are
// refused (they would end up in logs): they have variables of their own.
func (r *configReader) natsURLs(name string) []string {
	var out []string
	for _, item := range r.list(name, "") {
		u, err := url.Parse(item)
		switch {
		case err != nil || u.Host == "" || u.Hostname() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "":
			r.fail(name, "%q is not a URL like nats://nats1.internal:4222", redactURI(item))
		case u.Scheme != "nats" && u.Scheme != "tls":
			r.fail(name, "%q must start with nats:// or tls://", redactURI(item))
		case u.User != nil:
			r.fail(name, "%q carries credentials: set %s and %s, %s or %s instead", redactURI(item),
				envNATSUser, envNATSPassword, envNATSToken, envNATSCreds)
		default:
			out = append(out, strings.TrimSuffix(item, "/"))
		}
	}
	return out
}

// checkNATSAuth allows at most one way to authenticate, and a user only
// with a password.
func (r *configReader) checkNATSAuth(c ClusterConfig) {
	var set []string
	if c.CredsFile != "" {
		set = append(set, envNATSCreds)
	}
	if c.NKeyFile != "" {
		set = append(set, envNATSNKey)
	}
	if c.User != "" || c.Password != "" {
		set = append(set, envNATSUser+"/"+envNATSPassword)
		if c.User == "" || c.Password == "" {
			r.fail(envNATSUser, "%s and %s go together: set both or neither", envNATSUser, envNATSPassword)
		}
	}
	if c.Token != "" {
		set = append(set, envNATSToken)
	}
	if len(set) > 1 {
		r.fail(envNATSCreds, "set only one way to authenticate to NATS, not %s", strings.Join(set, " and "))
	}
}

func (r *configReader) checkReadableFile(name, path string) {
	f, err := os.Open(path)
	if err != nil {
		r.fail(name, "cannot read %q: %v", path, err)
		return
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		r.fail(name, "%q is not a regular file", path)
	}
}

func (r *configReader) checkCAFile(name, path string) {
	pem, err := os.ReadFile(path)
	if err != nil {
		r.fail(name, "cannot read %q: %v", path, err)
		return
	}
	if !x509.NewCertPool().AppendCertsFromPEM(pem) {
		r.fail(name, "%q holds no PEM certificate", path)
	}
}

// checkClientCert requires the client certificate and its key together,
// and that they load as a pair. A failure names the files, never what
// they hold.
func (r *configReader) checkClientCert(cert, key string) {
	switch {
	case cert == "" && key == "":
		return
	case cert == "":
		r.fail(envNATSTLSCert, "%s and %s go together: set both or neither", envNATSTLSCert, envNATSTLSKey)
	case key == "":
		r.fail(envNATSTLSKey, "%s and %s go together: set both or neither", envNATSTLSCert, envNATSTLSKey)
	default:
		if _, err := tls.LoadX509KeyPair(cert, key); err != nil {
			r.fail(envNATSTLSCert, "%q with the key %q (%s) is not a usable certificate and key: %v", cert, key, envNATSTLSKey, err)
		}
	}
}

// hostName is the host name, characters an id may not hold replaced by
// "-", at most 40 of them ("chatd" when there is none).
func hostName(hostname func() (string, error)) string {
	host, err := hostname()
	if err != nil || host == "" {
		host = "chatd"
	}
	host = notInIDRE.ReplaceAllString(host, "-")
	if len(host) > 40 {
		host = host[:40]
	}
	return host
}

// instanceID is name and 8 random hex digits, new on every start: a
// restarted process is a new instance (its predecessor's answers are
// orphans once that one's lease expires, and its events never repeat
// the predecessor's ids), and two instances given one name never share
// an id.
func instanceID(name string) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return name + "-" + hex.EncodeToString(b[:])
}
