package clientaddr

import (
	"net/http"
	"testing"
)

func TestOf(t *testing.T) {
	r, err := New([]string{"10.0.0.0/24", "127.0.0.1", " "})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy", "192.0.2.7:5000", nil, "192.0.2.7"},
		{"an untrusted peer's header is ignored", "192.0.2.7:5000", []string{"198.51.100.1"}, "192.0.2.7"},
		{"the load balancer's client", "10.0.0.5:443", []string{"198.51.100.1"}, "198.51.100.1"},
		{"a forged left part is not taken", "10.0.0.5:443", []string{"203.0.113.9, 198.51.100.1"}, "198.51.100.1"},
		{"two trusted hops", "127.0.0.1:80", []string{"198.51.100.1, 10.0.0.6"}, "198.51.100.1"},
		{"several headers", "10.0.0.5:443", []string{"203.0.113.9", "198.51.100.2"}, "198.51.100.2"},
		{"a trusted peer without the header", "10.0.0.5:443", nil, "10.0.0.5"},
		{"garbage stops the walk", "10.0.0.5:443", []string{"not-an-ip"}, "10.0.0.5"},
		{"IPv6 peer", "[2001:db8::1]:443", []string{"198.51.100.1"}, "2001:db8::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			if got := r.Of(req); got != tc.want {
				t.Errorf("Of = %q, want %q", got, tc.want)
			}
		})
	}
	if _, err := New([]string{"10.0.0.0/33"}); err == nil {
		t.Error("a bad prefix is taken")
	}
	var none *Resolver
	if got := none.Of(&http.Request{RemoteAddr: "10.0.0.5:1", Header: http.Header{"X-Forwarded-For": {"1.2.3.4"}}}); got != "10.0.0.5" {
		t.Errorf("a nil resolver trusts a proxy: %q", got)
	}
}
