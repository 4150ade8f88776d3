package origin

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
)

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestOf(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://Example.COM/v2/", "https://example.com:443/token", true},
		{"http://127.0.0.1/x", "http://127.0.0.1:80/y", true},
		{"https://[::1]:5000/", "https://[::1]:5000/other", true},
		{"https://example.com/", "http://example.com/", false},
		{"https://example.com/", "https://example.com:8443/", false},
		{"https://example.com/", "https://sub.example.com/", false},
		{"https://example.com:5000/", "https://example.com:5001/", false},
	} {
		if got := Of(mustURL(t, tc.a)) == Of(mustURL(t, tc.b)); got != tc.same {
			t.Errorf("Of(%s) == Of(%s): %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
	if o := Of(mustURL(t, "https://Example.com/a")); o.String() != "https://example.com:443" {
		t.Errorf("String = %s", o)
	}
	if o := Of(mustURL(t, "http://[::1]:5000/")); o.String() != "http://[::1]:5000" {
		t.Errorf("String = %s", o)
	}
	if _, err := Parse("ftp://example.com/"); err == nil {
		t.Error("Parse accepted ftp")
	}
	if _, err := Parse("/relative"); err == nil {
		t.Error("Parse accepted a relative URL")
	}
}

func TestSecureAndLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:5000": true, "127.0.0.1:5000": true, "127.1.2.3": true, "[::1]:5000": true, "::1": true,
		"example.com:5000": false, "10.0.0.1": false, "localhost.example.com": false, "0.0.0.0": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v", host, got)
		}
	}
	for raw, want := range map[string]bool{
		"https://example.com": true, "http://127.0.0.1:5000": true, "http://localhost": true, "http://[::1]:80": true,
		"http://example.com": false, "http://10.0.0.1:5000": false, "http://127.0.0.1.example.com": false,
	} {
		o, err := Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if o.Secure() != want {
			t.Errorf("%s: Secure = %v", raw, o.Secure())
		}
		_, err = Bind(o, "Basic x")
		if (err == nil) != want || (err != nil && !errors.Is(err, ErrInsecure)) {
			t.Errorf("%s: Bind: %v", raw, err)
		}
	}
}

func TestAuthSet(t *testing.T) {
	o, _ := Parse("https://registry.example.com")
	a, err := Bind(o, "Bearer secret")
	if err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]string{
		"https://registry.example.com/v2/":      "Bearer secret",
		"https://registry.example.com:443/v2/":  "Bearer secret",
		"https://REGISTRY.example.com/v2/":      "Bearer secret",
		"https://registry.example.com:8443/v2/": "",
		"http://registry.example.com/v2/":       "",
		"https://evil.registry.example.com/v2/": "",
		"https://registry.example.com.evil/v2/": "",
		"https://other.example.com/v2/":         "",
	} {
		req, _ := http.NewRequest(http.MethodGet, raw, nil)
		req.Header.Set("Authorization", "planted")
		a.Set(req)
		if got := req.Header.Get("Authorization"); got != want {
			t.Errorf("%s: Authorization %q, want %q", raw, got, want)
		}
	}
	var zero Auth
	req, _ := http.NewRequest(http.MethodGet, "https://registry.example.com/", nil)
	zero.Set(req)
	if req.Header.Get("Authorization") != "" || !zero.IsZero() {
		t.Error("the zero Auth set a header")
	}
}

// hops builds the via chain of a redirect sequence; the first request
// carries an Authorization header as Go copies it onto each hop.
func hops(t *testing.T, urls ...string) (*http.Request, []*http.Request) {
	var via []*http.Request
	for _, u := range urls {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Authorization", "Basic cGFzcw==")
		via = append(via, req)
	}
	return via[len(via)-1], via[:len(via)-1]
}

func TestPolicy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		p      Policy
		urls   []string
		err    error
		authed bool
	}{
		{"same origin", Policy{}, []string{"https://a.example/x", "https://a.example:443/y"}, nil, true},
		{"another host", Policy{}, []string{"https://a.example/x", "https://b.example/y"}, nil, false},
		{"a subdomain (Go keeps it)", Policy{}, []string{"https://a.example/x", "https://s.a.example/y"}, nil, false},
		{"another port (Go keeps it)", Policy{}, []string{"https://a.example/x", "https://a.example:8443/y"}, nil, false},
		{"back to the origin after leaving it", Policy{}, []string{"https://a.example/x", "https://b.example/y", "https://a.example/z"}, nil, false},
		{"upgrade to https", Policy{}, []string{"http://127.0.0.1:5000/x", "https://127.0.0.1:5000/y"}, nil, false},
		{"downgrade to http", Policy{}, []string{"https://a.example/x", "http://a.example/y"}, ErrDowngrade, false},
		{"downgrade to loopback http", Policy{}, []string{"https://a.example/x", "http://127.0.0.1/y"}, ErrDowngrade, false},
		{"downgrade two hops later", Policy{}, []string{"https://a.example/x", "https://b.example/y", "http://c.example/z"}, ErrDowngrade, false},
		{"same origin only", Policy{SameOrigin: true}, []string{"https://a.example/x", "https://a.example/y"}, nil, true},
		{"same origin only, another port", Policy{SameOrigin: true}, []string{"https://a.example/x", "https://a.example:444/y"}, ErrCrossOrigin, false},
		{"secure only, http loopback", Policy{Secure: true}, []string{"http://127.0.0.1:1/x", "http://localhost:2/y"}, nil, false},
		{"secure only, plain http", Policy{Secure: true}, []string{"http://127.0.0.1:1/x", "http://auth.example/y"}, ErrInsecure, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, via := hops(t, tc.urls...)
			err := tc.p.CheckRedirect(req, via)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("CheckRedirect: %v, want %v", err, tc.err)
			}
			if err == nil && (req.Header.Get("Authorization") != "") != tc.authed {
				t.Errorf("Authorization kept: %v, want %v", req.Header.Get("Authorization") != "", tc.authed)
			}
		})
	}
	var urls []string
	for range MaxRedirects + 1 {
		urls = append(urls, "https://a.example/x")
	}
	req, via := hops(t, urls...)
	if err := (Policy{}).CheckRedirect(req, via); !errors.Is(err, ErrTooManyRedirects) {
		t.Errorf("%d redirects: %v", MaxRedirects, err)
	}
}
