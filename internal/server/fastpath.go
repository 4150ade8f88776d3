package server

import (
	"net/http"
	"strings"
)

// route is the handler behind the middleware: a request for the Notary
// API goes straight to its dispatcher, everything else through the mux.
// Only the Notary API has paths under /v2/ (mount refuses group patterns
// there), so the mux would send every such path to serveNotary too; it is
// skipped only where it could do nothing else: a clean path, as written
// (no escapes the mux would match differently), and not CONNECT. Other
// requests, unclean paths among them, take the mux as before (and its
// redirects).
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if notaryFastPath(r) {
		s.serveNotary(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func notaryFastPath(r *http.Request) bool {
	p := r.URL.Path
	return strings.HasPrefix(p, "/v2/") && r.URL.RawPath == "" && r.Method != http.MethodConnect &&
		!strings.Contains(p, "//") && !strings.Contains(p, "/./") && !strings.Contains(p, "/../") &&
		!strings.HasSuffix(p, "/.") && !strings.HasSuffix(p, "/..")
}
