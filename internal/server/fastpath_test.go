package server

import (
	"net/http"
	"testing"
)

// TestNotaryFastPath: only requests the mux could send nowhere but to the
// Notary dispatcher skip it; the rest (unclean or escaped paths, CONNECT,
// other prefixes) keep the mux's cleaning, redirects and routes.
func TestNotaryFastPath(t *testing.T) {
	for _, tc := range []struct {
		method, target string
		want           bool
	}{
		{"GET", "/v2/example.com/app/_trust/tuf/timestamp.json", true},
		{"POST", "/v2/example.com/app/_trust/tuf/", true},
		{"GET", "/v2/", true},
		{"GET", "/v2", false},
		{"GET", "/v2//example.com/app/_trust/tuf/root.json", false},
		{"GET", "/v2/example.com/./app/_trust/tuf/root.json", false},
		{"GET", "/v2/example.com/../app/_trust/tuf/root.json", false},
		{"GET", "/v2/example.com/app/..", false},
		{"GET", "/v2/example.com/app/.", false},
		{"GET", "/v2/example.com%2Fapp/_trust/tuf/root.json", false},
		{"CONNECT", "/v2/example.com/app/_trust/tuf/root.json", false},
		{"GET", "/_notary_server/health", false},
		{"GET", "/metrics", false},
		{"POST", "/_signet/import/example.com/app", false},
	} {
		r, err := http.NewRequest(tc.method, "https://127.0.0.1"+tc.target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := notaryFastPath(r); got != tc.want {
			t.Errorf("%s %s: fast path %v; want %v", tc.method, tc.target, got, tc.want)
		}
	}
}
