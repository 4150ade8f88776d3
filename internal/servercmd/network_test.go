package servercmd_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/servercmd"
)

// TestInsecureNoAuth: a server on every interface without auth starts only
// with the explicit opt-in, by flag or YAML key, and says so in its log.
func TestInsecureNoAuth(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"flag", "yaml"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"--listen", "0.0.0.0:0", "--data-dir", filepath.Join(dir, "data")}
			if how == "flag" {
				args = append(args, "--insecure-no-auth")
			} else {
				cfg := filepath.Join(dir, "signet.yaml")
				if err := os.WriteFile(cfg, []byte("insecure_no_auth: true\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", cfg)
			}
			r := startMain(t, args, map[string]string{"SIGNET_KEY_PASSPHRASE": "pw"})
			_, port, _ := net.SplitHostPort(r.addr)
			wantServing(t, client(t, filepath.Join(dir, "data", "tls", "ca.crt")), "127.0.0.1:"+port)
			if code := r.stop(); code != 0 {
				t.Fatalf("exit %d\n%s", code, r.stderr)
			}
			if !strings.Contains(r.stderr.String(), "serving without authentication") {
				t.Errorf("no warning about serving without authentication:\n%s", r.stderr)
			}
		})
	}
}

var metricsRE = regexp.MustCompile(`metrics on http://(\S+)/metrics`)

// TestMetricsListen: with auth, /metrics on the main address needs a token;
// --metrics-listen serves it apart, over plain HTTP; the request log says
// 200 (never 0) and durations as Go duration strings.
func TestMetricsListen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	cfgFile := filepath.Join(dir, "signet.yaml")
	yaml := "log_level: debug\nauth:\n  type: token\n  service: signet\n  issuer: signet-issuer\n" +
		"  realm: https://127.0.0.1:1/auth/token\n  htpasswd: " + writeHtpasswd(t, dir, "alice") + "\n"
	if err := os.WriteFile(cfgFile, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startMain(t, []string{"--config", cfgFile, "--listen", "127.0.0.1:0", "--data-dir", dataDir, "--metrics-listen", "127.0.0.1:0"},
		map[string]string{"SIGNET_KEY_PASSPHRASE": "pw"})
	m := metricsRE.FindStringSubmatch(r.stdout.String())
	if m == nil {
		t.Fatalf("no metrics line:\n%s", r.stdout)
	}
	c := client(t, filepath.Join(dataDir, "tls", "ca.crt"))
	if resp := get(t, c, "https://"+r.addr+"/metrics"); resp.status != 401 {
		t.Errorf("/metrics on the main address without a token: %d, want 401", resp.status)
	}
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get("http://" + m[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "signet_server_") {
		t.Errorf("metrics listener: %d\n%.300s", resp.StatusCode, body)
	}
	if h := get(t, c, "https://"+r.addr+"/_notary_server/health"); h.status != 200 {
		t.Errorf("health: %d", h.status)
	}
	if code := r.stop(); code != 0 {
		t.Fatalf("exit %d\n%s", code, r.stderr)
	}
	logs := r.stderr.String()
	if strings.Contains(logs, `"status":0`) {
		t.Errorf("a request logged with status 0:\n%s", logs)
	}
	if !regexp.MustCompile(`"path":"/_notary_server/health","status":200,"duration":"[0-9.]+[µnm]?s"`).MatchString(logs) {
		t.Errorf("no health request logged with status 200 and a readable duration:\n%s", logs)
	}
}

// TestHealthcheck: `signet-server healthcheck` with the server's flags
// answers 0 while it serves (pinning the certificate it serves, though it
// listens on every interface) and 1 once it stopped.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	r := startMain(t, []string{"--listen", "127.0.0.1:0", "--data-dir", dataDir}, map[string]string{"SIGNET_KEY_PASSPHRASE": "pw"})
	check := func() (int, string) {
		var stdout, stderr syncBuffer
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		code := servercmd.Main(ctx, []string{"healthcheck", "--listen", r.addr, "--data-dir", dataDir}, envMap(nil), &stdout, &stderr)
		return code, stdout.String() + stderr.String()
	}
	if code, out := check(); code != 0 || out != "healthy\n" {
		t.Errorf("healthcheck of a running server: %d %q", code, out)
	}
	// Another server's certificate is not the one configured: refused.
	other := filepath.Join(dir, "other")
	r2 := startMain(t, []string{"--listen", "127.0.0.1:0", "--data-dir", other}, map[string]string{"SIGNET_KEY_PASSPHRASE": "pw"})
	var stdout, stderr syncBuffer
	if code := servercmd.Main(t.Context(), []string{"healthcheck", "--listen", r2.addr, "--data-dir", dataDir}, envMap(nil), &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "does not serve the certificate") {
		t.Errorf("healthcheck of a server with another certificate: %d %s", code, &stderr)
	}
	r.stop()
	if code, out := check(); code != 1 || !strings.Contains(out, "signet-server healthcheck: GET https://") {
		t.Errorf("healthcheck of a stopped server: %d %q", code, out)
	}
}
