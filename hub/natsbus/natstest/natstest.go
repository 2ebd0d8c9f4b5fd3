// Package natstest runs a real NATS cluster with JetStream inside a test
// process: three nodes (by default) with routes between them, each with
// its own temporary store directory and random ports. Tests kill and
// restart single nodes or the whole cluster on the same ports and
// directories to exercise faults. It is for tests only: the production
// binary never imports nats-server.
package natstest

import (
	"cmp"
	"crypto/tls"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"chatd/internal/testcert"
	"chatd/internal/testport"
)

// Options configure a Cluster. Zero fields take the documented defaults.
type Options struct {
	// Nodes is the number of servers; it defaults to 3.
	Nodes int
	// User and Password, when set, are required of every client.
	User, Password string
	// DenyPublish, with User, lists subjects that user may not publish to
	// (a NATS user whose permissions miss something chatd uses); see
	// SetDenyPublish.
	DenyPublish []string
	// Token, when set (and User is not), is required of every client.
	Token string
	// NKey, when set (and User and Token are not), is the public key of
	// the one user allowed in, who proves it with the key's seed.
	NKey string
	// TLS, when set, is the servers' TLS for clients: every client must
	// use TLS, and present a certificate TLS.ClientCAs signed when
	// TLS.ClientAuth is tls.RequireAndVerifyClientCert (mutual TLS).
	// Routes between the nodes stay plain.
	TLS *tls.Config
	// ReadyTimeout bounds each wait for the cluster to be ready; it defaults to 30s.
	ReadyTimeout time.Duration
	// MaxPayload, when set, is the largest message the servers take from
	// a client (max_payload); it defaults to the server's 1 MB.
	MaxPayload int32
	// Stopped, when set, has Start choose the ports and store directories
	// but start no node (NATS not up yet when clients start): StartAll
	// starts them.
	Stopped bool
}

// Cluster is a running embedded NATS cluster. Its methods are safe for
// concurrent use.
type Cluster struct {
	t    testing.TB
	opts Options
	name string

	mu    sync.Mutex
	nodes []*node

	refusals atomic.Int64 // clients' credentials refused, by any node
}

type node struct {
	name        string
	clientPort  int
	clusterPort int
	storeDir    string
	srv         *server.Server // nil while the node is down
}

// Start starts a cluster and waits until JetStream is ready on every node
// with a meta leader elected (unless Options.Stopped). The cluster stops
// when the test ends.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 30 * time.Second
	}
	c := &Cluster{t: t, opts: opts, name: "chatd-test"}
	ports := testport.Free(t, 2*opts.Nodes) // kept across restarts: outside the ephemeral range
	for i := range opts.Nodes {
		c.nodes = append(c.nodes, &node{
			name:        "n" + strconv.Itoa(i+1),
			clientPort:  ports[2*i],
			clusterPort: ports[2*i+1],
			storeDir:    t.TempDir(),
		})
	}
	t.Cleanup(c.StopAll)
	if !opts.Stopped {
		c.StartAll()
	}
	return c
}

// URLs returns the client URLs of every node (down ones included), as a
// client would be configured.
func (c *Cluster) URLs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	urls := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		urls[i] = fmt.Sprintf("nats://127.0.0.1:%d", n.clientPort)
	}
	return urls
}

// Nodes is the number of nodes.
func (c *Cluster) Nodes() int { return len(c.nodes) }

// Kill stops node i (0-based) abruptly, keeping its ports and store for Restart.
func (c *Cluster) Kill(i int) {
	c.mu.Lock()
	srv := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
	}
}

// Restart starts node i again on its ports and store directory and waits
// until the cluster is ready again.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.startNode(i)
	c.WaitReady()
}

// SetDenyPublish replaces Options.DenyPublish for the nodes started from
// now on (Restart them to apply it).
func (c *Cluster) SetDenyPublish(subjects []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opts.DenyPublish = subjects
}

// SetPassword changes Options.Password and reloads every running node
// with it (as an operator reloads a changed configuration): clients
// holding the old one are disconnected and refused from then on.
func (c *Cluster) SetPassword(password string) {
	c.t.Helper()
	type reload struct {
		n    *node
		srv  *server.Server
		opts *server.Options
	}
	var reloads []reload
	c.mu.Lock()
	c.opts.Password = password
	for _, n := range c.nodes {
		if n.srv != nil {
			reloads = append(reloads, reload{n, n.srv, c.serverOptions(n)})
		}
	}
	c.mu.Unlock()
	for _, r := range reloads {
		if err := r.srv.ReloadOptions(r.opts); err != nil {
			c.t.Fatalf("natstest: reload %s with a new password: %v", r.n.name, err)
		}
	}
}

// AuthRefusals is how many connection attempts the nodes refused for
// their credentials since Start. A connection SetPassword drops is not
// one: the server closes it as it does a client moved to another account.
func (c *Cluster) AuthRefusals() int {
	return int(c.refusals.Load())
}

// Wipe empties the store directory of every node that is down, as a
// server started again without its volume would find it: the streams and
// buckets are gone when the cluster starts again.
func (c *Cluster) Wipe() {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.srv != nil {
			continue
		}
		entries, err := os.ReadDir(n.storeDir)
		if err != nil {
			c.t.Fatalf("natstest: wipe %s: %v", n.name, err)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(n.storeDir, e.Name())); err != nil {
				c.t.Fatalf("natstest: wipe %s: %v", n.name, err)
			}
		}
	}
}

// StopAll stops every node at once (the whole NATS service is down).
func (c *Cluster) StopAll() {
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Go(func() { c.Kill(i) })
	}
	wg.Wait()
}

// StartAll starts every node that is down on its old ports and store
// directory and waits until the cluster is ready.
func (c *Cluster) StartAll() {
	c.t.Helper()
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.startNode(i)
		}()
	}
	wg.Wait()
	c.WaitReady()
}

// LeaderIndex returns the node that holds the JetStream meta leadership, or -1.
func (c *Cluster) LeaderIndex() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if n.srv != nil && n.srv.JetStreamIsLeader() {
			return i
		}
	}
	return -1
}

// WaitReady waits until every running node accepts clients, has its routes
// and current JetStream state, and one of them is the meta leader.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(c.opts.ReadyTimeout)
	for {
		why := c.notReady()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: cluster not ready after %s: %s", c.opts.ReadyTimeout, why)
		}
		time.Sleep(20 * time.Millisecond) // polling the servers' state, not synchronising
	}
}

func (c *Cluster) notReady() string {
	c.mu.Lock()
	running := make([]*node, 0, len(c.nodes))
	for _, n := range c.nodes {
		if n.srv != nil {
			running = append(running, n)
		}
	}
	c.mu.Unlock()
	leader := false
	for _, n := range running {
		switch {
		case n.srv.NumRoutes() < len(running)-1:
			return n.name + " misses routes"
		case !n.srv.JetStreamEnabled():
			return n.name + " has no JetStream"
		case !n.srv.JetStreamIsCurrent():
			return n.name + " JetStream not current"
		}
		leader = leader || n.srv.JetStreamIsLeader()
	}
	if !leader {
		return "no meta leader"
	}
	return ""
}

func (c *Cluster) startNode(i int) {
	c.t.Helper()
	c.mu.Lock()
	n := c.nodes[i]
	if n.srv != nil {
		c.mu.Unlock()
		return
	}
	opts := c.serverOptions(n)
	c.mu.Unlock()
	srv, err := server.NewServer(opts)
	if err != nil {
		c.t.Errorf("natstest: new server %s: %v", n.name, err)
		return
	}
	fatal := &fatalLog{refusals: &c.refusals}
	srv.SetLogger(fatal, false, false)
	srv.Start()
	for deadline := time.Now().Add(c.opts.ReadyTimeout); !srv.ReadyForConnections(100 * time.Millisecond); {
		if why := fatal.first(); why != "" || time.Now().After(deadline) {
			srv.Shutdown()
			c.t.Errorf("natstest: %s did not start on port %d: %s", n.name, n.clientPort, cmp.Or(why, "not ready in time"))
			return
		}
	}
	c.mu.Lock()
	n.srv = srv
	c.mu.Unlock()
}

func (c *Cluster) serverOptions(n *node) *server.Options {
	var routes []*url.URL
	for _, o := range c.nodes {
		if o != n {
			routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", o.clusterPort)})
		}
	}
	opts := &server.Options{
		ServerName: n.name,
		Host:       "127.0.0.1",
		Port:       n.clientPort,
		NoLog:      true,
		NoSigs:     true,
		JetStream:  true,
		StoreDir:   n.storeDir,
		// Small limits keep the test store small; the bus configures its own.
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  4 << 30, // a limit, not an allocation
		Username:           c.opts.User,
		Password:           c.opts.Password,
		Authorization:      c.opts.Token,
		MaxPayload:         c.opts.MaxPayload,
	}
	if c.opts.NKey != "" {
		opts.Nkeys = []*server.NkeyUser{{Nkey: c.opts.NKey}}
	}
	if c.opts.User != "" && len(c.opts.DenyPublish) > 0 {
		opts.Username, opts.Password = "", ""
		opts.Users = []*server.User{{Username: c.opts.User, Password: c.opts.Password, Permissions: &server.Permissions{
			Publish: &server.SubjectPermission{Allow: []string{">"}, Deny: c.opts.DenyPublish}}}}
	}
	if c.opts.TLS != nil {
		opts.TLS, opts.TLSConfig, opts.TLSTimeout = true, c.opts.TLS.Clone(), 2
		opts.TLSVerify = c.opts.TLS.ClientAuth == tls.RequireAndVerifyClientCert
	}
	if len(c.nodes) > 1 {
		opts.Cluster = server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: n.clusterPort}
		opts.Routes = routes
	}
	return opts
}

// UserNKey writes a new user NKey seed to a file of the test's and returns
// the file and the key's public part (for Options.NKey).
func UserNKey(t testing.TB) (seedFile, public string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	if public, err = kp.PublicKey(); err != nil {
		t.Fatal(err)
	}
	seedFile = filepath.Join(t.TempDir(), "user.nk")
	testcert.WriteFile(t, seedFile, seed)
	return seedFile, public
}

// fatalLog is a node's logger: it keeps the first fatal error (a port it
// cannot listen on, for one) so a node that cannot start says why, counts
// the clients whose credentials were refused into refusals, and drops
// every other line, as NoLog did.
type fatalLog struct {
	refusals *atomic.Int64
	mu       sync.Mutex
	msg      string
}

func (l *fatalLog) first() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.msg
}

func (l *fatalLog) Fatalf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.msg == "" {
		l.msg = fmt.Sprintf(format, v...)
	}
}

func (*fatalLog) Noticef(string, ...any) {}
func (*fatalLog) Warnf(string, ...any)   {}

// Errorf counts a refusal of a client's credentials, which the server
// logs as an error naming server.ErrAuthentication.
func (l *fatalLog) Errorf(format string, v ...any) {
	if strings.Contains(fmt.Sprintf(format, v...), server.ErrAuthentication.Error()) {
		l.refusals.Add(1)
	}
}

func (*fatalLog) Debugf(string, ...any) {}
func (*fatalLog) Tracef(string, ...any) {}
