package app

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
)

// TestPerIPLimitsCountIPv6By64: the per-IP limits (registrations per hour,
// failed logins) count an IPv6 client by its /64, the block a provider
// hands one client, so moving to the next address of it gets no fresh
// allowance; another /64 has its own, and an IPv4-mapped address counts
// as the IPv4 address. Before, every address of a /64 had its own limit.
func TestPerIPLimitsCountIPv6By64(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{tweak: func(c *Config) {
		c.TrustedProxies = []string{"127.0.0.1", "::1"}
		c.Accounts.RegistrationsPerHourIP = 2
		c.Accounts.MaxFailuresPerIP = 2
		c.Accounts.MaxFailuresPerAccount = 100
	}})
	n := 0
	post := func(path, ip string, body map[string]string) int {
		t.Helper()
		b, _ := json.Marshal(body)
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", ip)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	register := func(ip string) int {
		n++
		return post("/api/auth/register", ip, map[string]string{"email": fmt.Sprintf("v6-%d@example.com", n),
			"password": "correct horse battery", "name": "x"})
	}
	badLogin := func(ip string) int {
		return post("/api/auth/login", ip, map[string]string{"email": "v6-1@example.com", "password": "wrong password"})
	}
	for _, tc := range []struct {
		name string
		do   func(ip string) int
		ok   int
		ips  []string // the first two spend the limit of 2, the rest are refused
	}{
		{"registrations", register, http.StatusCreated,
			[]string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3", "2001:db8:1:2:ffff:ffff:ffff:ffff"}},
		{"failed logins", badLogin, http.StatusUnauthorized,
			[]string{"2001:db8:7:8::1", "2001:db8:7:8:1::1", "2001:db8:7:8::abcd", "2001:db8:7:8::99"}},
		{"IPv4-mapped as IPv4", register, http.StatusCreated,
			[]string{"198.51.100.4", "::ffff:198.51.100.4", "198.51.100.4"}},
	} {
		for i, ip := range tc.ips {
			want := tc.ok
			if i >= 2 {
				want = http.StatusTooManyRequests
			}
			if got := tc.do(ip); got != want {
				t.Fatalf("%s, attempt %d from %s: %d, want %d", tc.name, i+1, ip, got, want)
			}
		}
	}
	// Another /64 keeps its own allowance.
	if got := register("2001:db8:1:3::1"); got != http.StatusCreated {
		t.Fatalf("registration from another /64: %d, want 201", got)
	}
}
