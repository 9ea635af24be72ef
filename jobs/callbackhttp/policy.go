package callbackhttp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
)

// Policy says where notifications may go. A response_uri is chosen by the
// client, and the server POSTs to it from inside the operator's network:
// without a policy any API client could make sigillo reach internal
// services or a cloud metadata endpoint (server-side request forgery).
type Policy struct {
	// Hosts, when not empty, are the host names a response_uri may name,
	// lower case: "hooks.example.com" exactly, or "*.example.com" for its
	// subdomains (config.Async.Hosts parses them).
	Hosts []string
	// Private lets notifications reach non-public addresses: loopback,
	// private (RFC 1918, RFC 4193), link-local (cloud metadata lives
	// there), shared (RFC 6598), unspecified and multicast. The address is
	// checked when connecting, after DNS, so a name that resolves to such
	// an address is refused too.
	Private bool
}

// ErrNotAllowed is wrapped by every refusal of the policy.
var ErrNotAllowed = errors.New("callback destination not allowed")

// CheckURL vets a response_uri when the job is submitted: its host must
// be on the list (when there is one), and a literal IP address must be
// public unless Private is set.
func (p Policy) CheckURL(u *url.URL) error {
	host := strings.ToLower(u.Hostname())
	if len(p.Hosts) > 0 && !p.hostListed(host) {
		return fmt.Errorf("%w: host %q is not in async.callback_hosts", ErrNotAllowed, host)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return p.checkAddr(a)
	}
	return nil
}

func (p Policy) hostListed(host string) bool {
	for _, h := range p.Hosts {
		if d, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+d) {
				return true
			}
		} else if host == h {
			return true
		}
	}
	return false
}

// shared is RFC 6598 carrier-grade NAT space, not covered by IsPrivate.
var shared = netip.MustParsePrefix("100.64.0.0/10")

func (p Policy) checkAddr(a netip.Addr) error {
	if p.Private {
		return nil
	}
	a = a.Unmap()
	if a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() || shared.Contains(a) ||
		(a.Is4() && a.As4()[0] == 0) {
		return fmt.Errorf("%w: %s is not a public address (async.callback_private_networks)", ErrNotAllowed, a)
	}
	return nil
}

// control is the dialer hook: it sees the address actually connected
// to, after name resolution, so DNS cannot steer a callback inside.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotAllowed, err)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %q is not an IP address", ErrNotAllowed, host)
	}
	return p.checkAddr(a)
}
