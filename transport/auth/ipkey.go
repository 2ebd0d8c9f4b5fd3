package auth

import (
	"net/netip"

	"github.com/gin-gonic/gin"
)

// ipv6PrefixBits is how much of an IPv6 address the per-IP limits look at:
// a provider hands one client a whole /64 (2^64 addresses), so the limits
// count the /64, as they count one IPv4 address.
const ipv6PrefixBits = 64

// clientKey is what the per-IP limits (failed logins, registrations) count
// the request's client under: see ipKey.
func clientKey(c *gin.Context) string { return ipKey(c.ClientIP()) }

// ipKey returns an IPv4 address as it is, an IPv4-mapped IPv6 address as
// its IPv4 address, and any other IPv6 address as its /64 prefix
// ("2001:db8:1:2::/64", zone dropped). What does not parse as an address
// is returned unchanged.
func ipKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	return netip.PrefixFrom(addr, ipv6PrefixBits).Masked().String()
}
