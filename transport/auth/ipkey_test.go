package auth

import "testing"

// TestIPKey: the per-IP limits count an IPv6 client by its /64 (every
// address a provider hands one client), an IPv4 client by its address,
// and an IPv4-mapped IPv6 address as the IPv4 address it is.
func TestIPKey(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ ip, want string }{
		{"203.0.113.7", "203.0.113.7"},
		{"::ffff:203.0.113.7", "203.0.113.7"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"fe80::1%eth0", "fe80::/64"},
		{"::1", "::/64"},
		{"not an address", "not an address"},
	} {
		if got := ipKey(tc.ip); got != tc.want {
			t.Errorf("ipKey(%q) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}
