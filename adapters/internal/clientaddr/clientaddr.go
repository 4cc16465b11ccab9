// Package clientaddr finds the address of a request's client: the peer's,
// or, when the peer is a trusted proxy (the deployment's load balancer), the
// address that proxy recorded in X-Forwarded-For. The API (access records)
// and the console (sign-in limits) share it. It is a library, not an
// adapter: it implements no port.
package clientaddr

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver resolves client addresses behind the proxies it trusts. The zero
// value trusts none: the peer's address is the client's.
type Resolver struct {
	trusted []netip.Prefix
}

// New trusts the proxies in cidrs (addresses or CIDR prefixes, such as
// 10.0.0.0/24 or 127.0.0.1). It returns an error naming a malformed one.
func New(cidrs []string) (*Resolver, error) {
	r := &Resolver{}
	for _, c := range cidrs {
		c = strings.TrimSpace(c)
		if c == "" {
			continue
		}
		if !strings.Contains(c, "/") {
			a, err := netip.ParseAddr(c)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: not an address or a CIDR prefix", c)
			}
			r.trusted = append(r.trusted, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an address or a CIDR prefix", c)
		}
		r.trusted = append(r.trusted, p.Masked())
	}
	return r, nil
}

func (r *Resolver) trusts(a netip.Addr) bool {
	if r == nil {
		return false
	}
	a = a.Unmap()
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Of returns the client address of req: the peer, unless the peer is a
// trusted proxy; then the right-most address in X-Forwarded-For that is not
// a trusted proxy (the left part of the header is the client's word and
// proves nothing). A malformed entry stops the walk at the last trusted hop.
func (r *Resolver) Of(req *http.Request) string {
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		host = req.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !r.trusts(peer) {
		return host
	}
	client := peer
	hops := strings.Split(strings.Join(req.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		client = a
		if !r.trusts(a) {
			break
		}
	}
	return client.Unmap().String()
}
