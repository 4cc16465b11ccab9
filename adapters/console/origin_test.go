package console

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestSameOriginFollowsThePublicURL: the console's origin check is
// net/http's CrossOriginProtection, judged against the configured public
// URL (behind a load balancer that rewrites Host), with the scheme held to
// it where the browser sent no Sec-Fetch-Site.
func TestSameOriginFollowsThePublicURL(t *testing.T) {
	behind, err := New(Options{PublicURL: "https://buurtsignaal.example/"})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		c            *Console
		host         string
		site, origin string
		want         bool
	}{
		{"no headers (not a browser): to the CSRF token", behind, "10.0.0.5:8080", "", "", true},
		{"the public origin, Host rewritten", behind, "10.0.0.5:8080", "", "https://buurtsignaal.example", true},
		{"the browser says same-origin", behind, "10.0.0.5:8080", "same-origin", "https://buurtsignaal.example", true},
		{"the browser says cross-site", behind, "10.0.0.5:8080", "cross-site", "https://evil.example", false},
		{"the browser says same-site (a sibling subdomain)", behind, "10.0.0.5:8080", "same-site", "https://x.buurtsignaal.example", false},
		{"another origin, old browser", behind, "10.0.0.5:8080", "", "https://evil.example", false},
		{"the Host header's origin is not the public one", behind, "10.0.0.5:8080", "", "http://10.0.0.5:8080", false},
		{"the public host over plain HTTP", behind, "buurtsignaal.example", "", "http://buurtsignaal.example", false},
		{"Origin null", behind, "buurtsignaal.example", "", "null", false},
		{"no public URL: the Host header's origin", direct, "127.0.0.1:8080", "", "http://127.0.0.1:8080", true},
		{"no public URL: another scheme", direct, "127.0.0.1:8080", "", "https://127.0.0.1:8080", false},
		{"no public URL: another host", direct, "127.0.0.1:8080", "", "http://127.0.0.2:8080", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodPost, "/console/signals", nil)
		r.Host = tt.host
		if tt.site != "" {
			r.Header.Set("Sec-Fetch-Site", tt.site)
		}
		if tt.origin != "" {
			r.Header.Set("Origin", tt.origin)
		}
		if got := tt.c.sameOrigin(r); got != tt.want {
			t.Errorf("%s: sameOrigin = %t, want %t", tt.name, got, tt.want)
		}
	}
}
