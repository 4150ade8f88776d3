package cli

import (
	"testing"

	"github.com/signet-trust/signet/internal/e2e/inproc"
)

// trustTestServer is a signet-server on 127.0.0.1 with a throw-away CA,
// run in the test process by internal/e2e/inproc (only this test binary
// links the server; cmd/signet does not).
type trustTestServer struct {
	url, host, caFile string
}

func startTrustTestServer(t *testing.T) *trustTestServer {
	t.Helper()
	s := inproc.StartServer(t, inproc.ServerOptions{})
	return &trustTestServer{url: s.URL, host: s.Host, caFile: s.CAFile}
}
