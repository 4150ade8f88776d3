// Package reference is this project's recipe for running the reference
// Notary v1 services — Debian's notary-server and notary-signer 0.7 — on
// 127.0.0.1, for the compatibility tests (internal/e2e/compat) and the
// side-by-side benchmarks (bench/, through cmd/notary-reference).
//
// Everything the two programs need is made here: a throw-away CA with a
// certificate for the server (also its client certificate towards the
// signer, which requires mutual TLS) and one for the signer; their JSON
// configuration files; and, for the PostgreSQL backend, the schema neither
// program creates (schema/*.sql). Both listen on free loopback ports. The
// memory backend keeps everything in the processes; the PostgreSQL backend
// uses two databases the caller makes (tests: e2etest.PostgresDB on
// SIGNET_TEST_POSTGRES_URL).
//
// Facts about the Debian 0.7 binaries this recipe rests on: they do not
// include the sqlite3 driver (memory, PostgreSQL or MySQL only); -logf has
// no effect (logs are JSON, one "response completed" line per request);
// -debug would open a profiler on localhost:8080, so it is never passed;
// the signer's key-encryption passphrase for alias A is read from
// NOTARY_SIGNER_<A upper-cased>.
//
// Imported only from tests and the notary-reference command.
package reference

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

var (
	//go:embed schema/server.sql
	serverSchema string
	//go:embed schema/signer.sql
	signerSchema string
)

// Programs are the Debian binaries the recipe runs.
var Programs = []string{"notary-server", "notary-signer"}

// signerAlias names the signer's key-encryption passphrase (PostgreSQL
// backend); its value is a random one per run.
const signerAlias = "signetref"

// Options configure one run of the reference.
type Options struct {
	// Dir holds the run: certs/, the two configs, the two logs.
	Dir string
	// ServerAddr and SignerAddr default to free 127.0.0.1 ports.
	ServerAddr, SignerAddr string
	// ServerDB and SignerDB, when both are set, select the PostgreSQL
	// backend: postgres:// URLs of two empty databases, which Launch gives
	// the reference schema. Unset: the memory backend.
	ServerDB, SignerDB string
}

// Reference is a running notary-server with its notary-signer.
type Reference struct {
	Host       string // notary-server's 127.0.0.1:port
	URL        string // https://Host
	CAFile     string // the CA both certificates chain to
	ServerCert string // notary-server's certificate and key (another server may serve with them)
	ServerKey  string
	SignerHost string
	ServerLog  string
	SignerLog  string
	Server     *e2etest.Process
	Signer     *e2etest.Process

	serverDB, signerDB string
}

// Launch writes the recipe into o.Dir and starts notary-signer, then
// notary-server, and waits (bounded) until the server answers its health
// check. Stop ends both. A port taken between choosing and listening is
// retried with new ports.
func Launch(ctx context.Context, o Options) (*Reference, error) {
	for _, p := range Programs {
		if _, err := exec.LookPath(p); err != nil {
			return nil, fmt.Errorf("%s not found on PATH (Debian package notary; scripts/test-deps.sh installs it)", p)
		}
	}
	if (o.ServerDB == "") != (o.SignerDB == "") {
		return nil, errors.New("reference: ServerDB and SignerDB go together")
	}
	if o.ServerDB != "" {
		if err := applySchema(ctx, o.ServerDB, serverSchema); err != nil {
			return nil, fmt.Errorf("reference: notary-server schema: %w", err)
		}
		if err := applySchema(ctx, o.SignerDB, signerSchema); err != nil {
			return nil, fmt.Errorf("reference: notary-signer schema: %w", err)
		}
	}
	ca, err := e2etest.NewCA(filepath.Join(o.Dir, "certs"))
	if err != nil {
		return nil, err
	}
	r := &Reference{CAFile: ca.CAFile, ServerLog: filepath.Join(o.Dir, "server.log"), SignerLog: filepath.Join(o.Dir, "signer.log"),
		serverDB: o.ServerDB, signerDB: o.SignerDB}
	// The server's certificate is also its client certificate to the signer.
	if r.ServerCert, r.ServerKey, err = ca.Issue("notary-server", x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth); err != nil {
		return nil, err
	}
	signerCert, signerKey, err := ca.Issue("notary-signer", x509.ExtKeyUsageServerAuth)
	if err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		err := r.start(ctx, o, signerCert, signerKey)
		if err == nil {
			return r, nil
		}
		r.Stop()
		fixed := o.ServerAddr != "" && o.SignerAddr != ""
		if attempt == 3 || fixed || !strings.Contains(err.Error(), "address already in use") {
			return nil, err
		}
	}
}

func (r *Reference) start(ctx context.Context, o Options, signerCert, signerKey string) error {
	serverAddr, signerAddr := o.ServerAddr, o.SignerAddr
	for _, a := range []*string{&serverAddr, &signerAddr} {
		if *a == "" {
			addr, err := e2etest.FreeLoopbackAddr()
			if err != nil {
				return err
			}
			*a = addr
		}
	}
	signerHost, signerPort, _ := strings.Cut(signerAddr, ":")
	signerStorage := map[string]any{"backend": "memory"}
	serverStorage := map[string]any{"backend": "memory"}
	if o.ServerDB != "" {
		signerStorage = map[string]any{"backend": "postgres", "db_url": o.SignerDB, "default_alias": signerAlias}
		serverStorage = map[string]any{"backend": "postgres", "db_url": o.ServerDB}
	}
	signerCfg := map[string]any{
		"server": map[string]any{
			"grpc_addr": signerAddr, "tls_cert_file": signerCert, "tls_key_file": signerKey,
			"client_ca_file": r.CAFile, // mutual TLS: only the server may call
		},
		"storage": signerStorage,
		"logging": map[string]any{"level": "info"},
	}
	serverCfg := map[string]any{
		"server": map[string]any{"http_addr": serverAddr, "tls_cert_file": r.ServerCert, "tls_key_file": r.ServerKey},
		"trust_service": map[string]any{
			"type": "remote", "hostname": signerHost, "port": signerPort, "key_algorithm": "ecdsa",
			"tls_ca_file": r.CAFile, "tls_client_cert": r.ServerCert, "tls_client_key": r.ServerKey,
		},
		"storage": serverStorage,
		"logging": map[string]any{"level": "info"},
		// notary-server's own defaults, written out.
		"caching": map[string]any{"max_age": map[string]any{"current_metadata": 300, "consistent_metadata": 31536000}},
	}
	signerFile, serverFile := filepath.Join(o.Dir, "signer-config.json"), filepath.Join(o.Dir, "server-config.json")
	for file, cfg := range map[string]any{signerFile: signerCfg, serverFile: serverCfg} {
		b, err := json.MarshalIndent(cfg, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(file, append(b, '\n'), 0o600); err != nil {
			return err
		}
	}

	env := e2etest.BaseEnv(o.Dir)
	signerEnv := append(env, "NOTARY_SIGNER_"+strings.ToUpper(signerAlias)+"="+randomPassphrase())
	var err error
	r.Signer, err = e2etest.StartProcess(e2etest.ProcessOptions{Name: "notary-signer",
		Args: []string{"notary-signer", "-config", signerFile}, Dir: o.Dir, Env: signerEnv, LogFile: r.SignerLog})
	if err != nil {
		return err
	}
	if err := e2etest.WaitListening(ctx, signerAddr, r.Signer.Done(), 20*time.Second); err != nil {
		return fmt.Errorf("reference notary-signer did not start on %s: %v\n--- %s ---\n%s", signerAddr, err, r.SignerLog, e2etest.FileTail(r.SignerLog, 30))
	}
	r.SignerHost = signerAddr
	r.Server, err = e2etest.StartProcess(e2etest.ProcessOptions{Name: "notary-server",
		Args: []string{"notary-server", "-config", serverFile}, Dir: o.Dir, Env: env, LogFile: r.ServerLog})
	if err != nil {
		return err
	}
	r.Host, r.URL = serverAddr, "https://"+serverAddr
	pool, err := e2etest.CertPool(r.CAFile)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, DisableKeepAlives: true}}
	if err := e2etest.WaitHTTP(ctx, client, r.URL+"/_notary_server/health", e2etest.Status200, r.Server.Done(), 30*time.Second); err != nil {
		return fmt.Errorf("reference notary-server did not become healthy on %s: %v\n--- %s ---\n%s\n--- %s ---\n%s",
			serverAddr, err, r.ServerLog, e2etest.FileTail(r.ServerLog, 30), r.SignerLog, e2etest.FileTail(r.SignerLog, 30))
	}
	return nil
}

// Stop ends the server, then the signer (SIGTERM, SIGKILL after 5 s).
func (r *Reference) Stop() error {
	var errs []error
	for _, p := range []*e2etest.Process{r.Server, r.Signer} {
		if p != nil {
			errs = append(errs, p.Stop(5*time.Second))
		}
	}
	return errors.Join(errs...)
}

// Start is Launch for a test, in a new temporary directory; it is stopped
// when the test ends. A missing notary-server or notary-signer skips the
// test, or fails it as SIGNET_TEST_REQUIRE asks. postgres selects the
// PostgreSQL backend, on two databases made for the test (e2etest.PostgresDB).
func Start(t testing.TB, postgres bool) *Reference {
	t.Helper()
	e2etest.Need(t, Programs...)
	o := Options{Dir: t.TempDir()}
	if postgres {
		o.ServerDB = e2etest.PostgresDB(t, "notaryserver_")
		o.SignerDB = e2etest.PostgresDB(t, "notarysigner_")
	}
	start := time.Now()
	r, err := Launch(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Log(err)
		}
		if t.Failed() {
			t.Logf("reference notary-server log (tail):\n%s\nnotary-signer log (tail):\n%s", e2etest.FileTail(r.ServerLog, 30), e2etest.FileTail(r.SignerLog, 30))
		}
	})
	t.Logf("reference notary-server up on %s (signer %s) in %v, run dir %s", r.Host, r.SignerHost, time.Since(start).Round(time.Millisecond), o.Dir)
	return r
}

// LogMark is the current end of the server's log, for Requests.
func (r *Reference) LogMark() int64 { return e2etest.LogSize(r.ServerLog) }

// Requests returns "METHOD URI STATUS" for every request notary-server
// logged ("response completed") after log offset since.
func (r *Reference) Requests(since int64) []string {
	var out []string
	e2etest.ScanLog(r.ServerLog, since, func(line []byte) {
		var l struct {
			Msg    string `json:"msg"`
			Method string `json:"http.request.method"`
			URI    string `json:"http.request.uri"`
			Status int    `json:"http.response.status"`
		}
		if json.Unmarshal(line, &l) != nil || l.Msg != "response completed" {
			return
		}
		if l.Status == 0 {
			l.Status = http.StatusOK // the handler wrote nothing: net/http sends 200
		}
		out = append(out, fmt.Sprintf("%s %s %d", l.Method, l.URI, l.Status))
	})
	return out
}

// applySchema runs one schema file on an empty database.
func applySchema(ctx context.Context, dbURL, schema string) error {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return err
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = db.ExecContext(ctx, schema)
	return err
}

// randomPassphrase is a fresh key-encryption passphrase for one run.
func randomPassphrase() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
