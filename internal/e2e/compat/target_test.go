package compat

import (
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
	"github.com/signet-trust/signet/internal/e2e/reference"
)

// A target is one running trust server under test.
type target struct {
	name    string // "reference" or "signet"
	host    string // 127.0.0.1:port
	url     string // https://host
	caFile  string // PEM CA that signed the server certificate
	logFile string // the server's log, shown when something fails

	// requests, when set, returns "METHOD URI STATUS" for every request the
	// server logged after log offset since. Only the reference can tell.
	requests func(since int64) []string
}

const (
	targetReference = "reference"
	targetSignet    = "signet"
)

// selectedTargets parses SIGNET_COMPAT_TARGETS (default "signet,reference").
func selectedTargets(t *testing.T) []string {
	v := os.Getenv("SIGNET_COMPAT_TARGETS")
	if strings.TrimSpace(v) == "" {
		v = targetSignet + "," + targetReference
	}
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		switch f {
		case targetSignet, targetReference:
			out = append(out, f)
		default:
			t.Fatalf("SIGNET_COMPAT_TARGETS: unknown target %q (want signet and/or reference)", f)
		}
	}
	return out
}

func startTarget(t *testing.T, name string) *target {
	t.Helper()
	switch name {
	case targetReference:
		return startReference(t)
	case targetSignet:
		return startSignet(t)
	}
	t.Fatalf("unknown target %q", name)
	return nil
}

// logMark is the current end of the server log, for requests.
func (tg *target) logMark() int64 { return e2etest.LogSize(tg.logFile) }

// httpClient trusts only the target's CA.
func (tg *target) httpClient(t testing.TB) *http.Client {
	t.Helper()
	return e2etest.HTTPSClient(t, tg.caFile)
}

// get fetches path (starting with /) from the target.
func (tg *target) get(t testing.TB, path string) (int, []byte) {
	t.Helper()
	resp, err := tg.httpClient(t).Get(tg.url + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", tg.url, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s%s: reading body: %v", tg.url, path, err)
	}
	return resp.StatusCode, body
}

// --- reference: Debian notary-server + notary-signer --------------------

// startReference runs the reference notary-server and notary-signer with
// the recipe of internal/e2e/reference (memory backends, free ports).
func startReference(t *testing.T) *target {
	t.Helper()
	r := reference.Start(t, false)
	return &target{
		name:     targetReference,
		host:     r.Host,
		url:      r.URL,
		caFile:   r.CAFile,
		logFile:  r.ServerLog,
		requests: r.Requests,
	}
}

// --- signet: signet-server in-process ---------------------------------------

// signetPassphrase protects the test server's online keys at rest.
const signetPassphrase = "compat-test-key-passphrase"

// startSignet runs signet-server in the test process (internal/e2e/inproc)
// with a throw-away CA. Successful GETs are logged at debug level only,
// which inproc sets: the suite reads the request log to check request
// sequences.
func startSignet(t *testing.T) *target {
	t.Helper()
	s := inproc.StartServer(t, inproc.ServerOptions{Env: map[string]string{"SIGNET_KEY_PASSPHRASE": signetPassphrase}})
	return &target{
		name:     targetSignet,
		host:     s.Host,
		url:      s.URL,
		caFile:   s.CAFile,
		logFile:  s.LogFile,
		requests: s.Requests,
	}
}
