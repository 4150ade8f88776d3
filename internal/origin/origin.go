// Package origin scopes HTTP credentials to the origin that asked for them
// — scheme, host and port, as RFC 6454 defines a web origin — and is the
// redirect policy of every signet HTTP client that may carry credentials or
// read data it will sign: the registry client, its token requests, and the
// trust-server client.
//
// Invariants:
//   - an Authorization header is bound to one origin (Auth) and set only on
//     requests to exactly that origin; a request to another scheme, host or
//     port never gets it;
//   - credentials are bound only to a secure origin: https, or plain http
//     to a loopback host (localhost, 127.0.0.0/8, ::1), which never leaves
//     the machine;
//   - a redirect never goes from https to plain http (Policy refuses the
//     downgrade), and a redirect that leaves the first request's origin
//     drops the Authorization header for that hop and every later one.
//     Go's own rule forwards it to any port and scheme of the same host
//     name and to its subdomains, which is what this package exists to
//     prevent;
//   - Policy.SameOrigin refuses every redirect off the first origin (for
//     requests whose body is a secret, such as an OAuth2 refresh token);
//     Policy.Secure refuses redirects to an origin that is not secure (for
//     token realms, which must be https).
package origin

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Origin is a URL's scheme, host and port. The port is always explicit
// (443 for https, 80 for http when the URL names none), and scheme and
// host are lowercase, so equal origins compare equal with ==.
type Origin struct {
	Scheme string
	Host   string // a name or an IP address, without brackets
	Port   string
}

// Of returns the origin of u.
func Of(u *url.URL) Origin {
	o := Origin{Scheme: strings.ToLower(u.Scheme), Host: strings.ToLower(u.Hostname()), Port: u.Port()}
	if o.Port == "" {
		switch o.Scheme {
		case "https":
			o.Port = "443"
		case "http":
			o.Port = "80"
		}
	}
	return o
}

// Parse returns the origin of a URL.
func Parse(rawURL string) (Origin, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Origin{}, fmt.Errorf("origin: %w", err)
	}
	if u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return Origin{}, fmt.Errorf("origin: %q is not an http or https URL", rawURL)
	}
	return Of(u), nil
}

// String returns scheme://host:port.
func (o Origin) String() string {
	return o.Scheme + "://" + net.JoinHostPort(o.Host, o.Port)
}

// Secure reports whether credentials may travel to o: over TLS, or over
// plain HTTP to a loopback host.
func (o Origin) Secure() bool {
	return o.Scheme == "https" || (o.Scheme == "http" && IsLoopback(o.Host))
}

// IsLoopback reports whether a host or host:port is localhost or a
// loopback address (127.0.0.0/8, ::1). Names other than "localhost" are
// not resolved.
func IsLoopback(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Errors of the redirect policy and of Bind.
var (
	// ErrDowngrade: a redirect from https to plain http.
	ErrDowngrade = errors.New("origin: refusing a redirect from https to plain http")
	// ErrCrossOrigin: a redirect off the first origin where Policy.SameOrigin forbids it.
	ErrCrossOrigin = errors.New("origin: refusing a redirect to another origin")
	// ErrInsecure: credentials for an origin that is neither https nor loopback.
	ErrInsecure = errors.New("origin: refusing to send credentials over plain http to a host that is not loopback")
	// ErrTooManyRedirects: more than MaxRedirects hops.
	ErrTooManyRedirects = errors.New("origin: too many redirects")
)

// MaxRedirects is the most redirects a request follows (Go's default).
const MaxRedirects = 10

// Auth is an Authorization header value bound to the origin that
// challenged for it. The zero Auth sets nothing.
type Auth struct {
	origin Origin
	header string
}

// Bind binds an Authorization header value to o. It refuses an origin
// that is not Secure: a password or token sent there crosses the network
// in the clear.
func Bind(o Origin, header string) (Auth, error) {
	if !o.Secure() {
		return Auth{}, fmt.Errorf("%w (%s)", ErrInsecure, o)
	}
	return Auth{origin: o, header: header}, nil
}

// Origin returns the origin a is bound to.
func (a Auth) Origin() Origin { return a.origin }

// IsZero reports whether a holds no credentials.
func (a Auth) IsZero() bool { return a.header == "" }

// Set sets the Authorization header of req when req goes to a's origin,
// and removes it otherwise.
func (a Auth) Set(req *http.Request) {
	if a.header != "" && Of(req.URL) == a.origin {
		req.Header.Set("Authorization", a.header)
		return
	}
	req.Header.Del("Authorization")
}

// Policy is a redirect policy; its CheckRedirect method is an
// http.Client's CheckRedirect. The zero Policy follows at most
// MaxRedirects redirects, refuses any from https to http, and drops the
// Authorization header once a hop leaves the first request's origin.
type Policy struct {
	// SameOrigin refuses redirects off the first request's origin.
	SameOrigin bool
	// Secure refuses redirects to an origin that is not Secure.
	Secure bool
}

// CheckRedirect implements http.Client.CheckRedirect.
func (p Policy) CheckRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= MaxRedirects {
		return fmt.Errorf("%w (%d)", ErrTooManyRedirects, len(via))
	}
	first := Of(via[0].URL)
	to := Of(req.URL)
	for _, prev := range via {
		if prev.URL.Scheme == "https" && to.Scheme != "https" {
			return fmt.Errorf("%w (%s to %s)", ErrDowngrade, Of(prev.URL), to)
		}
	}
	if p.SameOrigin && to != first {
		return fmt.Errorf("%w (%s to %s)", ErrCrossOrigin, first, to)
	}
	if p.Secure && !to.Secure() {
		return fmt.Errorf("%w (a redirect to %s)", ErrInsecure, to)
	}
	// Go copies the first request's headers onto every hop; once any hop
	// has left the origin, none of the later ones may carry credentials
	// either (the host that redirected chose where they go).
	for _, hop := range append(via[1:], req) {
		if Of(hop.URL) != first {
			req.Header.Del("Authorization")
			break
		}
	}
	return nil
}
