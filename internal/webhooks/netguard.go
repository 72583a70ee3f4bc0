package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// Resolver looks up the addresses of a host name; *net.Resolver is one.
// Tests inject their own to play DNS tricks.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ErrForbiddenAddress is wrapped by every refusal of a destination address.
var ErrForbiddenAddress = errors.New("address not allowed for webhooks")

// AddressError says why an address was refused.
type AddressError struct {
	Addr  netip.Addr
	Class string // e.g. "loopback", "private", "link-local"
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("refused to connect to %s: %s address not allowed for webhooks", e.Addr, e.Class)
}

// Unwrap makes errors.Is(err, ErrForbiddenAddress) true.
func (e *AddressError) Unwrap() error { return ErrForbiddenAddress }

// Special-purpose ranges refused besides those netip classifies itself
// (loopback, private, link-local, multicast, unspecified).
var specialPrefixes = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "this-network"},
	{netip.MustParsePrefix("100.64.0.0/10"), "CGNAT (shared)"},
	{netip.MustParsePrefix("192.0.0.0/24"), "IETF protocol assignment"},
	{netip.MustParsePrefix("192.0.2.0/24"), "documentation"},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking"},
	{netip.MustParsePrefix("198.51.100.0/24"), "documentation"},
	{netip.MustParsePrefix("203.0.113.0/24"), "documentation"},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved"}, // includes 255.255.255.255
	{netip.MustParsePrefix("::/96"), "IPv4-compatible"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local NAT64"},
	{netip.MustParsePrefix("100::/64"), "discard-only"},
	{netip.MustParsePrefix("2001::/32"), "Teredo"},
	{netip.MustParsePrefix("2001:db8::/32"), "documentation"},
	{netip.MustParsePrefix("fec0::/10"), "site-local"},
}

var (
	nat64   = netip.MustParsePrefix("64:ff9b::/96")
	sixToF4 = netip.MustParsePrefix("2002::/16")
)

// classify names the kind of special address a is, or "" for an ordinary
// public unicast address. IPv4 addresses embedded in IPv6 (mapped, NAT64,
// 6to4) are judged by the IPv4 address.
func classify(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			if c := classify(netip.AddrFrom4([4]byte(b[12:16]))); c != "" {
				return c + " (via NAT64)"
			}
			return ""
		case sixToF4.Contains(a):
			if c := classify(netip.AddrFrom4([4]byte(b[2:6]))); c != "" {
				return c + " (via 6to4)"
			}
			return ""
		}
	}
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast():
		return "link-local" // 169.254.0.0/16 (cloud metadata at 169.254.169.254), fe80::/10
	case a.IsMulticast():
		return "multicast"
	case a.IsPrivate():
		return "private" // RFC 1918, fc00::/7
	}
	for _, s := range specialPrefixes {
		if s.prefix.Contains(a) {
			return s.class
		}
	}
	return ""
}

// sandboxAllowed are the classes a sandbox may deliver to, so the whole loop
// runs on a laptop or a private network. Link-local (cloud metadata) and the
// rest stay refused even in the sandbox.
var sandboxAllowed = map[string]bool{"loopback": true, "private": true, "CGNAT (shared)": true}

// netGuard applies the address policy when subscribing and when dialing.
type netGuard struct {
	sandbox  bool
	resolver Resolver
	dialer   net.Dialer
}

func newNetGuard(sandbox bool, r Resolver) *netGuard {
	if r == nil {
		r = net.DefaultResolver
	}
	g := &netGuard{sandbox: sandbox, resolver: r}
	g.dialer = net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: g.control}
	return g
}

// checkAddr refuses an address the policy does not allow.
func (g *netGuard) checkAddr(a netip.Addr) error {
	c := classify(a)
	if c == "" || (g.sandbox && sandboxAllowed[c]) {
		return nil
	}
	return &AddressError{Addr: a.Unmap(), Class: c}
}

// control runs on every socket right before it connects, with the address
// actually being dialed: whatever DNS said earlier, this is the last word.
func (g *netGuard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", ErrForbiddenAddress, address)
	}
	return g.checkAddr(ap.Addr())
}

// DialContext resolves with the injected resolver and dials each address in
// turn through the guarded dialer.
func (g *netGuard) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	addrs, err := g.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, a := range addrs {
		conn, err := g.dialer.DialContext(ctx, network, net.JoinHostPort(a.String(), port))
		if err == nil {
			return conn, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (g *netGuard) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	addrs, err := g.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("resolve %s: no addresses", host)
	}
	return addrs, nil
}

// checkURL validates a subscription URL and returns the problem as a message
// for the url field ("" when the URL is acceptable). Outside the sandbox the
// host is resolved and every address it resolves to must be allowed.
func (g *netGuard) checkURL(ctx context.Context, raw string) string {
	if strings.TrimSpace(raw) == "" {
		return "must not be empty"
	}
	if len(raw) > maxURLLength || !utf8.ValidString(raw) {
		return fmt.Sprintf("must be valid text of at most %d bytes", maxURLLength)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Opaque != "" || u.Host == "" {
		return "must be an absolute https URL"
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && g.sandbox:
	case u.Scheme == "http":
		return "must use https (http is allowed only in sandbox mode)"
	default:
		return "must be an absolute https URL"
	}
	if u.User != nil {
		return "must not contain userinfo"
	}
	if strings.Contains(raw, "#") {
		return "must not contain a fragment"
	}
	host := u.Hostname()
	if host == "" {
		return "must have a host"
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "must have a valid port"
		}
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if err := g.checkAddr(a); err != nil {
			return urlAddrMessage(err)
		}
		return ""
	}
	if g.sandbox {
		return "" // sandbox: the host need not resolve yet; delivery re-checks
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addrs, err := g.lookup(ctx, host)
	if err != nil {
		return "host does not resolve"
	}
	for _, a := range addrs {
		if err := g.checkAddr(a); err != nil {
			return urlAddrMessage(err)
		}
	}
	return ""
}

func urlAddrMessage(err error) string {
	var ae *AddressError
	if errors.As(err, &ae) {
		return fmt.Sprintf("must not point at a %s address (%s)", ae.Class, ae.Addr)
	}
	return "points at an address not allowed for webhooks"
}
