package e2e

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"chatd/hub"
	"chatd/hub/natsbus"
	"chatd/hub/protocol"
	"chatd/internal/testcert"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/crypto/bcrypt"
)

// natsSecrets are the passwords the test puts into the environment the
// shipped nats-server.conf reads (deploy/nats.env.example).
type natsSecrets struct {
	Route, Chatd, Admin string
}

func newNATSSecrets() natsSecrets {
	return natsSecrets{Route: "route-" + randHex(12), Chatd: "chatd-" + randHex(12), Admin: "admin-" + randHex(12)}
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// bcryptHash is what "nats server passwd" prints for password.
func bcryptHash(t testing.TB, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// natsNode is one node of a test cluster started from the shipped file.
type natsNode struct {
	Name                             string
	ClientPort, ClusterPort, MonPort int
	StoreDir                         string
	proc                             *proc
}

// natsCluster is three nats-server processes run from deploy/nats-server.conf.
type natsCluster struct {
	Nodes   []*natsNode
	Secrets natsSecrets
	// Set when TLS is on: the CA, and the client certificate and key
	// every client presents (the servers verify their clients).
	CAFile, CertFile, KeyFile string
}

// tlsOptions are the client options for the cluster's TLS: none without
// it, else its CA and the client certificate.
func (c *natsCluster) tlsOptions() []nats.Option {
	if c.CAFile == "" {
		return nil
	}
	return []nats.Option{nats.RootCAs(c.CAFile), nats.ClientCert(c.CertFile, c.KeyFile)}
}

// ClientURLs is CHATD_NATS_URL for the cluster.
func (c *natsCluster) ClientURLs() []string {
	scheme := "nats"
	if c.CAFile != "" {
		scheme = "tls"
	}
	var urls []string
	for _, n := range c.Nodes {
		urls = append(urls, fmt.Sprintf("%s://127.0.0.1:%d", scheme, n.ClientPort))
	}
	return urls
}

// ChatdEnv is what chatd needs to join the cluster as the "chatd" user.
func (c *natsCluster) ChatdEnv() []string {
	env := []string{"CHATD_NATS_URL=" + strings.Join(c.ClientURLs(), ","),
		"CHATD_NATS_USER=chatd", "CHATD_NATS_PASSWORD=" + c.Secrets.Chatd}
	if c.CAFile != "" {
		env = append(env, "CHATD_NATS_TLS_CA="+c.CAFile, "CHATD_NATS_TLS_CERT="+c.CertFile, "CHATD_NATS_TLS_KEY="+c.KeyFile)
	}
	return env
}

// natsEnv is the environment deploy/nats.env.example documents, for node name.
func natsEnv(t testing.TB, name string, nodes []*natsNode, s natsSecrets, tls bool) []string {
	scheme := "nats-route"
	if tls {
		scheme = "tls" // nats-route:// works over TLS too; tls:// says it
	}
	var routes []string
	for _, n := range nodes {
		routes = append(routes, fmt.Sprintf("%s://route:%s@127.0.0.1:%d", scheme, s.Route, n.ClusterPort))
	}
	return []string{
		"NATS_SERVER_NAME=" + name,
		"NATS_ROUTES=[" + strings.Join(routes, ", ") + "]",
		"NATS_ROUTE_PASSWORD=" + s.Route,
		"NATS_CHATD_PASSWORD=" + bcryptHash(t, s.Chatd),
		"NATS_ADMIN_PASSWORD=" + bcryptHash(t, s.Admin),
	}
}

// renderNATSConf writes the shipped nats-server.conf for node n: test ports
// and store directory, and, when tlsDir is set, both TLS blocks uncommented
// with the files in tlsDir and clients verified (mutual TLS). Every value
// replaced must be in the file.
func renderNATSConf(t testing.TB, n *natsNode, tlsDir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "nats-server.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	replace := func(old, new string) {
		t.Helper()
		if !strings.Contains(conf, old) {
			t.Fatalf("deploy/nats-server.conf no longer holds %q: update the test with the file", old)
		}
		conf = strings.ReplaceAll(conf, old, new)
	}
	replace("listen: 0.0.0.0:4222", fmt.Sprintf("listen: 127.0.0.1:%d", n.ClientPort))
	replace("listen: 0.0.0.0:6222", fmt.Sprintf("listen: 127.0.0.1:%d", n.ClusterPort))
	replace("http: 127.0.0.1:8222", fmt.Sprintf("http: 127.0.0.1:%d", n.MonPort))
	replace("store_dir: /var/lib/nats/jetstream", "store_dir: "+n.StoreDir)
	if tlsDir != "" {
		conf = uncommentBlock(t, conf, "ROUTE TLS")
		conf = uncommentBlock(t, conf, "CLIENT TLS")
		replace("# verify: true", "verify: true")
		replace(`"/etc/nats/tls/`, `"`+tlsDir+"/")
	}
	path := filepath.Join(t.TempDir(), n.Name+".conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// uncommentBlock removes "# " from the lines after "# BEGIN name" up to
// "# END name", as the file tells an operator to.
func uncommentBlock(t testing.TB, conf, name string) string {
	t.Helper()
	lines := strings.Split(conf, "\n")
	in, found := false, false
	for i, l := range lines {
		trimmed := strings.TrimSpace(l)
		switch {
		case trimmed == "# BEGIN "+name:
			in, found = true, true
		case trimmed == "# END "+name:
			in = false
		case in:
			if !strings.HasPrefix(trimmed, "# ") {
				t.Fatalf("deploy/nats-server.conf: line %q in block %s is not commented out with \"# \"", l, name)
			}
			indent := l[:len(l)-len(strings.TrimLeft(l, " "))]
			lines[i] = indent + strings.TrimPrefix(trimmed, "# ")
		}
	}
	if !found || in {
		t.Fatalf("deploy/nats-server.conf has no complete block # BEGIN %s ... # END %s", name, name)
	}
	return strings.Join(lines, "\n")
}

// natsTLSFiles writes a CA and a certificate it signed for 127.0.0.1 and
// localhost, good for servers and clients (routes verify each other, and
// the servers their clients), under the names nats-server.conf uses and as
// client.pem and client-key.pem, and returns the directory.
func natsTLSFiles(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	ca := testcert.NewCA(t, "chatd test NATS CA")
	cert, key := ca.Issue(t, "nats", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	testcert.WriteFile(t, filepath.Join(dir, "ca.pem"), ca.PEM())
	for _, name := range []string{"server", "route", "client"} {
		testcert.WriteFile(t, filepath.Join(dir, name+".pem"), cert)
		testcert.WriteFile(t, filepath.Join(dir, name+"-key.pem"), key)
	}
	return dir
}

// startNATSCluster runs three nats-server processes (the real binary, built
// from the module chatd's tests use) from the shipped configuration and
// waits until JetStream reports a healthy three-node cluster.
func startNATSCluster(t *testing.T, withTLS bool) *natsCluster {
	t.Helper()
	bin := buildGoBinary(t, "nats-server", "github.com/nats-io/nats-server/v2")
	c := &natsCluster{Secrets: newNATSSecrets()}
	tlsDir := ""
	if withTLS {
		tlsDir = natsTLSFiles(t)
		c.CAFile = filepath.Join(tlsDir, "ca.pem")
		c.CertFile, c.KeyFile = filepath.Join(tlsDir, "client.pem"), filepath.Join(tlsDir, "client-key.pem")
	}
	for i := range 3 {
		c.Nodes = append(c.Nodes, &natsNode{Name: fmt.Sprintf("nats-%d", i+1), ClientPort: freePort(t),
			ClusterPort: freePort(t), MonPort: freePort(t), StoreDir: t.TempDir()})
	}
	for _, n := range c.Nodes {
		conf := renderNATSConf(t, n, tlsDir)
		env := natsEnv(t, n.Name, c.Nodes, c.Secrets, withTLS)
		n.proc = startProc(t, n.Name, env, n.StoreDir, bin, "--config", conf)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, n := range c.Nodes {
		// /healthz answers 200 once this node's JetStream is up with a
		// meta leader and its streams current.
		if err := waitOK(ctx, http.DefaultClient, fmt.Sprintf("http://127.0.0.1:%d/healthz", n.MonPort), n.proc); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// jsz reads a node's JetStream monitoring page.
func (n *natsNode) jsz(t testing.TB) server.JSInfo {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz", n.MonPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info server.JSInfo
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		t.Fatalf("%s /jsz: %v", n.Name, err)
	}
	return info
}

// waitMetaCluster waits until every node reports a JetStream meta cluster
// of three with a leader, and the leader reports both peers current
// (peers catch up shortly after /healthz turns ok).
func (c *natsCluster) waitMetaCluster(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		why := ""
		for _, n := range c.Nodes {
			info := n.jsz(t)
			if info.Meta == nil || info.Meta.Size != 3 || info.Meta.Leader == "" {
				why = fmt.Sprintf("%s: meta cluster %+v, want 3 nodes with a leader", n.Name, info.Meta)
				break
			}
			if info.Meta.Leader != n.Name {
				continue // only the leader knows whether its peers are current
			}
			if len(info.Meta.Replicas) != 2 {
				why = fmt.Sprintf("leader %s knows %d peers, want 2", n.Name, len(info.Meta.Replicas))
			}
			for _, p := range info.Meta.Replicas {
				if !p.Current || p.Offline {
					why = fmt.Sprintf("leader %s: peer %s not current", n.Name, p.Name)
				}
			}
		}
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("JetStream cluster not formed: %s", why)
		}
		time.Sleep(100 * time.Millisecond) // polling the servers' state
	}
}

// connect opens a client connection as user (chatd or admin), collecting
// asynchronous errors (permission violations) on the returned channel.
func (c *natsCluster) connect(t testing.TB, user, password string) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 16)
	opts := []nats.Option{nats.UserInfo(user, password), nats.Timeout(5 * time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		})}
	opts = append(opts, c.tlsOptions()...)
	nc, err := nats.Connect(strings.Join(c.ClientURLs(), ","), opts...)
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

// busHandler records what a natsbus delivers to its hub.
type busHandler struct {
	events   chan hub.UserEvent
	controls chan hub.AnswerRef
}

func (h *busHandler) UserEvent(ev hub.UserEvent)                 { h.events <- ev }
func (h *busHandler) Control(a hub.AnswerRef, _ hub.ControlKind) { h.controls <- a }
func (h *busHandler) Orphaned(hub.AnswerRef)                     {}

// checkBusOverConf runs two hub/natsbus instances as the chatd user over
// TLS and uses every kind of resource they need: the bucket locks, the
// answer stream followed from another instance, control requests and user
// events. A permission the conf lacks fails here.
func checkBusOverConf(ctx context.Context, t *testing.T, c *natsCluster) {
	t.Helper()
	// One after the other: JetStream answers two clients creating the
	// same stream at the same moment only after a timeout.
	buses := make([]*natsbus.Bus, 2)
	handlers := make([]*busHandler, 2)
	for i := range buses {
		b, err := natsbus.New(natsbus.Options{URLs: c.ClientURLs(), InstanceID: fmt.Sprintf("conf-%d", i),
			User: "chatd", Password: c.Secrets.Chatd, TLSCAFile: c.CAFile, TLSCertFile: c.CertFile, TLSKeyFile: c.KeyFile,
			Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close(context.Background()) })
		handlers[i] = &busHandler{events: make(chan hub.UserEvent, 4), controls: make(chan hub.AnswerRef, 4)}
		b.Attach(handlers[i])
		buses[i] = b
		for b.Health(ctx) != nil {
			if ctx.Err() != nil {
				t.Fatalf("natsbus over deploy/nats-server.conf never became healthy: %v", b.Health(ctx))
			}
			time.Sleep(50 * time.Millisecond) // polling Health
		}
	}
	a, b := buses[0], buses[1]
	ref := hub.AnswerRef{ConversationID: "64b000000000000000000001", MessageID: "64b000000000000000000002",
		UserID: "64b000000000000000000003", Instance: a.InstanceID()}
	if _, err := a.Acquire(ctx, ref); err != nil {
		t.Fatalf("acquire: %v", err)
	}
	other := ref
	other.Instance, other.MessageID = b.InstanceID(), "64b000000000000000000004"
	if _, err := b.Acquire(ctx, other); !errors.Is(err, hub.ErrLockHeld) {
		t.Fatalf("second acquire: %v, want the lock held", err)
	}
	frames := []*protocol.Frame{
		{Type: "delta", ConversationID: ref.ConversationID, MessageID: ref.MessageID, Seq: 5, Data: []byte(`{"text":"hello"}`)},
		{Type: protocol.TypeDone, ConversationID: ref.ConversationID, MessageID: ref.MessageID, Seq: 5, Data: []byte(`{"type":"done"}`)},
	}
	for _, f := range frames {
		if err := a.Publish(ctx, ref, f); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	var got []string
	if err := b.Follow(ctx, ref, func(f *protocol.Frame) { got = append(got, f.Type+":"+string(f.Data)) }); err != nil {
		t.Fatalf("follow: %v", err)
	}
	if want := []string{`delta:{"text":"hello"}`, `done:{"type":"done"}`}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("followed %v, want %v", got, want)
	}
	if err := b.Control(ctx, ref, hub.ControlCancel); err != nil {
		t.Fatalf("control: %v", err)
	}
	if got := <-handlers[0].controls; got != ref {
		t.Errorf("control reached %v, want %v", got, ref)
	}
	if err := b.Broadcast(ctx, hub.UserEvent{UserID: ref.UserID, Started: &ref}); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-handlers[0].events:
		if ev.Started == nil || *ev.Started != ref {
			t.Errorf("event %+v", ev)
		}
	case <-ctx.Done():
		t.Fatal("the user event did not arrive")
	}
	if err := a.Release(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Running(ctx, ref.ConversationID); err != nil || ok {
		t.Fatalf("after release: running %v, %v", ok, err)
	}
	// The limits' buckets: connections and sends per user, and the login
	// windows (which a missing permission would only turn per instance).
	for i, bus := range buses {
		if ok, err := bus.Limits().AcquireConn(ctx, ref.UserID, 1); ok != (i == 0) || err != nil {
			t.Fatalf("connection %d of one allowed: %v %v", i, ok, err)
		}
		if ok, err := bus.Limits().TakeSend(ctx, ref.UserID, 4); ok != (i == 0) || err != nil {
			t.Fatalf("send %d of a burst of one: %v %v", i, ok, err)
		}
		if _, ok, err := bus.Windows().Take(ctx, "login-account:conf@example.com", 1, time.Minute); ok != (i == 0) || err != nil {
			t.Fatalf("failed login %d of one allowed: %v %v", i, ok, err)
		}
	}
	if err := a.Windows().Reset(ctx, "login-account:conf@example.com"); err != nil {
		t.Fatal(err)
	}
	if err := a.Limits().ReleaseConn(ctx, ref.UserID); err != nil {
		t.Fatal(err)
	}
}

// TestNATSServerConfParses checks deploy/nats-server.conf as shipped with
// the nats-server library: the values chatd relies on, and that every
// variable of deploy/nats.env.example is required (a node never starts
// with a missing password).
func TestNATSServerConfParses(t *testing.T) {
	conf := filepath.Join(repoRoot(t), "deploy", "nats-server.conf")
	s := newNATSSecrets()
	nodes := []*natsNode{{ClusterPort: 6222}, {ClusterPort: 6223}, {ClusterPort: 6224}}
	env := natsEnv(t, "nats-1", nodes, s, false)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	o, err := server.ProcessConfigFile(conf)
	if err != nil {
		t.Fatalf("nats-server rejects deploy/nats-server.conf: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"server name", o.ServerName, "nats-1"},
		{"client port", o.Port, 4222},
		{"monitoring on loopback", fmt.Sprintf("%s:%d", o.HTTPHost, o.HTTPPort), "127.0.0.1:8222"},
		{"jetstream", o.JetStream, true},
		{"store dir", o.StoreDir, "/var/lib/nats/jetstream"},
		{"max memory", o.JetStreamMaxMemory, int64(256 << 20)},
		{"max file", o.JetStreamMaxStore, int64(8 << 30)},
		{"cluster", o.Cluster.Name, "chatd"},
		{"cluster port", o.Cluster.Port, 6222},
		{"route user", o.Cluster.Username, "route"},
		{"routes", len(o.Routes), 3},
		{"system account", o.SystemAccount, "SYS"},
		{"lame duck", o.LameDuckDuration, 30 * time.Second},
		{"no anonymous users", o.NoAuthUser, ""},
		{"no client tls by default", o.TLSConfig == nil, true},
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	users := map[string]*server.User{}
	for _, u := range o.Users {
		users[u.Username] = u
	}
	chatd := users["chatd"]
	switch {
	case chatd == nil || chatd.Account == nil || chatd.Account.Name != "CHATD":
		t.Errorf("no user chatd in account CHATD: %+v", chatd)
	case chatd.Password == s.Chatd || !strings.HasPrefix(chatd.Password, "$2a$"):
		t.Errorf("chatd's password is not the bcrypt hash from NATS_CHATD_PASSWORD")
	case chatd.Permissions == nil || chatd.Permissions.Publish == nil || chatd.Permissions.Subscribe == nil:
		t.Errorf("user chatd has no publish and subscribe permissions: it could use every subject")
	}

	// Each variable is required.
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		t.Run("without "+name, func(t *testing.T) {
			t.Setenv(name, "")
			os.Unsetenv(name)
			_, err := server.ProcessConfigFile(conf)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("config without %s: error %v, want one naming it", name, err)
			}
		})
	}
}

// TestNATSServerCluster starts three nats-server processes from the shipped
// configuration with its TLS blocks enabled, and checks the cluster as
// chatd uses it: a three-node JetStream cluster, replicated streams and
// key-value buckets for the chatd user over TLS, the account's limits, its
// streams listed as nats stream report lists them, no subject outside
// chatd's, the monitoring port on loopback and the system account for
// operators.
func TestNATSServerCluster(t *testing.T) {
	c := startNATSCluster(t, true)
	c.waitMetaCluster(t)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, asyncErrs := c.connect(t, "chatd", c.Secrets.Chatd)
	if !strings.HasPrefix(nc.ConnectedUrl(), "tls://") {
		t.Errorf("connected to %s without TLS", nc.ConnectedUrl())
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	acct, err := js.AccountInfo(ctx)
	if err != nil {
		t.Fatalf("chatd's JetStream account: %v", err)
	}
	if acct.Limits.MaxMemory != 64<<20 || acct.Limits.MaxStore != 4<<30 {
		t.Errorf("account limits %+v, want 64MB memory and 4GB file", acct.Limits)
	}
	checkBusOverConf(ctx, t, c)
	checkStreamList(ctx, t, js)
	st, err := js.Stream(ctx, "CHATD_ANSWERS")
	if err != nil {
		t.Fatalf("chatd's answer stream: %v", err)
	}
	si, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if si.State.Msgs == 0 || si.Cluster == nil || len(si.Cluster.Replicas) != 2 {
		t.Errorf("answer stream state %+v, cluster %+v: want frames on three replicas", si.State, si.Cluster)
	}

	// Another stream than chatd's: refused.
	go func() {
		_, _ = js.CreateStream(ctx, jetstream.StreamConfig{Name: "BILLING", Subjects: []string{"chatd.billing.>"}})
	}()
	select {
	case err := <-asyncErrs:
		if !strings.Contains(err.Error(), "BILLING") {
			t.Errorf("want a permissions violation for the BILLING stream, got %v", err)
		}
	case <-ctx.Done():
		t.Fatal("creating another stream was not refused")
	}

	// Outside chatd's subjects: refused.
	if err := nc.Publish("billing.invoices", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.SubscribeSync("billing.>"); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
	for range 2 {
		select {
		case err := <-asyncErrs:
			if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
				t.Errorf("want a permissions violation, got %v", err)
			}
		case <-ctx.Done():
			t.Fatal("publishing and subscribing outside chatd's subjects were not refused")
		}
	}

	// Wrong password, with the client certificate: refused.
	wrong := append([]nats.Option{nats.UserInfo("chatd", "not-the-password"), nats.NoReconnect()}, c.tlsOptions()...)
	if bad, err := nats.Connect(c.ClientURLs()[0], wrong...); err == nil {
		bad.Close()
		t.Error("a wrong password was accepted")
	}
	// The right password and CA but no client certificate: refused (the
	// servers verify their clients).
	noCert := []nats.Option{nats.UserInfo("chatd", c.Secrets.Chatd), nats.NoReconnect(), nats.RootCAs(c.CAFile)}
	if bad, err := nats.Connect(c.ClientURLs()[0], noCert...); err == nil {
		bad.Close()
		t.Error("a client without a certificate was accepted")
	}

	// Operators: the system account answers server requests.
	admin, _ := c.connect(t, "admin", c.Secrets.Admin)
	msg, err := admin.RequestWithContext(ctx, "$SYS.REQ.SERVER.PING.JSZ", nil)
	if err != nil || !strings.Contains(string(msg.Data), "meta_cluster") {
		t.Errorf("system account JSZ request: %v %.200s", err, msgData(msg))
	}

	// Monitoring listens on loopback only.
	for _, n := range c.Nodes {
		if addr := nonLoopbackAddr(t); addr != "" {
			conn, err := net.DialTimeout("tcp", net.JoinHostPort(addr, fmt.Sprint(n.MonPort)), time.Second)
			if err == nil {
				conn.Close()
				t.Errorf("%s: monitoring port answers on %s", n.Name, addr)
			}
		}
	}
}

// checkStreamList lists the account's streams as the chatd user, as nats
// stream report does for operators (docs/scale.md): chatd's streams are
// there. A list the permissions refuse is never answered.
func checkStreamList(ctx context.Context, t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	listed := map[string]bool{}
	infos := js.ListStreams(ctx)
	for si := range infos.Info() {
		listed[si.Config.Name] = true
	}
	names := js.StreamNames(ctx)
	named := map[string]bool{}
	for n := range names.Name() {
		named[n] = true
	}
	if err := errors.Join(infos.Err(), names.Err()); err != nil {
		t.Errorf("list the streams as chatd (nats stream report): %v", err)
	}
	for _, want := range []string{"CHATD_ANSWERS", "CHATD_EVENTS"} {
		if !listed[want] || !named[want] {
			t.Errorf("stream %s: listed %v, named %v; want both", want, listed[want], named[want])
		}
	}
}

func msgData(m *nats.Msg) string {
	if m == nil {
		return ""
	}
	return string(m.Data)
}

// nonLoopbackAddr returns an address of this machine that is not loopback,
// or "" when it has none.
func nonLoopbackAddr(t testing.TB) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String()
		}
	}
	return ""
}
