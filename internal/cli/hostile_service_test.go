package cli

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// TestHostileServiceOutput: what the signing service returns was written
// by other people (a submitter's description and image, an approver's
// comment, a user's e-mail, a project's fix hint); in every human-readable
// output it reaches the terminal quoted, so an escape sequence cannot
// clear the screen or forge a line. JSON output keeps the exact bytes.
func TestHostileServiceOutput(t *testing.T) {
	const esc = "\x1b[2J\x1b]0;pwned\x07"
	req := serviceapi.Request{
		ID: "r1" + esc, Project: "p" + esc, Policy: "pol\nforged", Status: serviceapi.StatusAwaitingApproval,
		Image: "example.com/app:v1" + esc, Digest: "sha256:" + strings.Repeat("a", 64), Required: 2,
		Images:      []serviceapi.Image{{Image: "example.com/app:v1" + esc, Digest: "sha256:" + esc, Size: 1}},
		Submitter:   "mallory\r\x1b[Kalice",
		Origin:      map[string]string{"ci" + esc: "run\n1"},
		Approvals:   []serviceapi.Decision{{User: "bob" + esc, Time: time.Unix(0, 0), Comment: "lgtm\n* forged line"}},
		Description: "release\x1b[31m\u202efdp.exe",
		Formats:     []string{"dct" + esc},
		Created:     time.Unix(0, 0),
	}
	users := serviceapi.UserList{Users: []serviceapi.User{{Name: "eve" + esc, Email: "eve@example.com\nforged\trow"}}}
	mux := http.NewServeMux()
	serve := func(v any) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(v)
		}
	}
	mux.HandleFunc("GET /api/v1/signing-requests/{id}", serve(req))
	mux.HandleFunc("GET /api/v1/signing-requests", serve(serviceapi.RequestList{Requests: []serviceapi.Request{req}}))
	mux.HandleFunc("GET /api/v1/users", serve(users))
	hs := httptest.NewTLSServer(mux)
	t.Cleanup(hs.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HOME": dir, "SIGNET_TOKEN": "t"}
	run := func(args ...string) (int, string, string) {
		return cliRun(env, append([]string{"-d", filepath.Join(dir, "trust"), "-s", hs.URL, "--tlscacert", ca}, args...)...)
	}
	for _, args := range [][]string{{"request", "status", "r1"}, {"request", "list"}, {"admin", "user", "list"}} {
		code, out, errOut := run(args...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", strings.Join(args, " "), code, errOut)
		}
		what := strings.Join(args, " ")
		assertPrintable(t, what, out)
		assertPrintable(t, what+" (stderr)", errOut)
		if !strings.Contains(out, `\x1b[2J`) {
			t.Errorf("%s does not show the escape quoted:\n%s", what, out)
		}
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "forged") || strings.HasPrefix(l, "* forged") {
				t.Errorf("%s: a forged line: %q", what, l)
			}
		}
	}
	code, out, _ := run("request", "status", "r1", "-o", "json")
	var got serviceapi.Request
	if code != 0 || json.Unmarshal([]byte(out), &got) != nil || got.Description != req.Description || got.Approvals[0].Comment != req.Approvals[0].Comment {
		t.Fatalf("JSON output does not keep the exact values: exit %d\n%s", code, out)
	}
}
