package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

// auditServer is an audit log served over TLS in this process (the log
// and its SQL store are test-only here: the CLI binary links neither).
type auditServer struct {
	log    *audit.Log
	store  audit.Store
	srv    *httptest.Server
	caFile string
}

func startAuditServer(t *testing.T, key ed25519.PrivateKey) *auditServer {
	t.Helper()
	s, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	l, err := audit.New(audit.Config{Store: s.AuditLog(), Origin: "signet.test/audit", Signer: key, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	h, err := audit.NewHandler(audit.HandlerConfig{Store: s.AuditLog(), VerifierKey: l.VerifierKey()})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/audit/", http.StripPrefix("/audit", h))
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return &auditServer{log: l, store: s.AuditLog(), srv: srv, caFile: ca}
}

func (a *auditServer) add(t *testing.T, events ...audit.Event) {
	t.Helper()
	for _, e := range events {
		ap, err := a.log.Append(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		_, _, err = a.log.Await(ctx, ap.ID)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func runSignet(t *testing.T, home string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Main(context.Background(), args, Env{
		Getenv: func(k string) string {
			if k == "HOME" {
				return home
			}
			return ""
		},
		Stdout: &out, Stderr: &errOut,
	})
	return code, out.String(), errOut.String()
}

func auditEvents(n int, typ audit.EventType, at time.Time) []audit.Event {
	var out []audit.Event
	for i := range n {
		out = append(out, audit.Event{
			Type: typ, Time: at.Add(time.Duration(i) * time.Second),
			Actor:   audit.Actor{Kind: audit.ActorUser, Name: "webhook"},
			Subject: audit.Subject{Image: fmt.Sprintf("registry.test/app:%d", i), Namespace: "prod"},
		})
	}
	return out
}

func TestAuditVerify(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	as := startAuditServer(t, key)
	as.add(t, auditEvents(300, audit.AdmissionAllow, time.Now())...)
	home := t.TempDir()
	vkey := as.log.VerifierKey()
	base := []string{"-s", as.srv.URL, "--tlscacert", as.caFile}

	code, out, errOut := runSignet(t, home, append(base, "audit", "verify", "--key", vkey)...)
	if code != 0 || !strings.Contains(out, "verifies: 300 entries, 300 of them checked now") {
		t.Fatalf("first verify: exit %d\n%s%s", code, out, errOut)
	}
	state := filepath.Join(home, ".notary", "audit", "signet.test_audit.json")
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no state in the trust directory: %v", err)
	}
	as.add(t, auditEvents(5, audit.AdmissionDeny, time.Now())...)
	code, out, errOut = runSignet(t, home, append(base, "-o", "json", "audit", "verify", "--key", vkey)...)
	var rep struct {
		Size, PreviousSize, Checked uint64
	}
	json.Unmarshal([]byte(strings.ReplaceAll(out, "previous_size", "previoussize")), &rep)
	if code != 0 || rep.Size != 305 || rep.PreviousSize != 300 || rep.Checked != 5 {
		t.Fatalf("second verify: exit %d %+v\n%s%s", code, rep, out, errOut)
	}

	// The key from a file works too.
	keyFile := filepath.Join(home, "audit.vkey")
	os.WriteFile(keyFile, []byte(vkey+"\n"), 0o644)
	if code, out, errOut := runSignet(t, home, append(base, "audit", "verify", "--key", keyFile)...); code != 0 {
		t.Fatalf("verify with a key file: exit %d\n%s%s", code, out, errOut)
	}

	// Another log signed with the same key (a rewritten history) against
	// the remembered checkpoint: refused, state kept.
	other := startAuditServer(t, key)
	other.add(t, auditEvents(310, audit.AdmissionDeny, time.Now())...)
	before, _ := os.ReadFile(state)
	code, out, errOut = runSignet(t, home, "-s", other.srv.URL, "--tlscacert", other.caFile, "audit", "verify", "--key", vkey)
	if code != ExitVerify || !strings.Contains(errOut, "not consistent with the checkpoint of 305 entries remembered: its history was rewritten") {
		t.Fatalf("rewritten log: exit %d\n%s%s", code, out, errOut)
	}
	if after, _ := os.ReadFile(state); !bytes.Equal(before, after) {
		t.Fatal("the state changed after a failed verification")
	}

	// A key of another log: refused.
	_, k2, _ := ed25519.GenerateKey(rand.Reader)
	vkey2, _ := audit.VerifierKey("signet.test/audit", k2.Public().(ed25519.PublicKey))
	code, _, errOut = runSignet(t, home, append(base, "audit", "verify", "--key", vkey2, "--state", filepath.Join(home, "s2.json"))...)
	if code != ExitVerify || !strings.Contains(errOut, "not signed by the log's key") {
		t.Fatalf("another key: exit %d %s", code, errOut)
	}
	// Bad command lines.
	for _, args := range [][]string{
		{"audit", "verify"},
		{"audit", "verify", "--key", "nonsense"},
		{"audit", "proof", "--key", vkey},
		{"audit", "log", "--key", vkey, "--type", "bogus"},
		{"audit", "log", "--key", vkey, "--since", "yesterday"},
	} {
		if code, _, errOut := runSignet(t, home, append(base, args...)...); code != ExitUsage {
			t.Errorf("signet %s: exit %d, want %d (%s)", strings.Join(args, " "), code, ExitUsage, errOut)
		}
	}
	// Without the CA: a TLS error explained.
	if code, _, errOut := runSignet(t, home, "-s", as.srv.URL, "audit", "verify", "--key", vkey, "--state", filepath.Join(home, "s3.json")); code != ExitError || !strings.Contains(errOut, "--tlscacert") {
		t.Fatalf("no CA: exit %d %s", code, errOut)
	}
}

func TestAuditLogAndProof(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	as := startAuditServer(t, key)
	old := time.Now().Add(-48 * time.Hour)
	as.add(t, auditEvents(3, audit.AdmissionAllow, old)...)
	as.add(t, auditEvents(2, audit.AdmissionBreakGlass, time.Now())...)
	home := t.TempDir()
	vkey := as.log.VerifierKey()
	base := []string{"-s", as.srv.URL + "/audit/", "--tlscacert", as.caFile}

	code, out, errOut := runSignet(t, home, append(base, "audit", "log", "--key", vkey)...)
	if code != 0 || strings.Count(out, "\n") != 6 || !strings.Contains(out, "admission.break_glass") || !strings.Contains(out, "image=registry.test/app:2") {
		t.Fatalf("audit log: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runSignet(t, home, append(base, "audit", "log", "--key", vkey, "--since", "24h")...)
	if code != 0 || strings.Count(out, "\n") != 3 || strings.Contains(out, "admission.allow") {
		t.Fatalf("audit log --since 24h:\n%s", out)
	}
	code, out, _ = runSignet(t, home, append(base, "-o", "json", "audit", "log", "--key", vkey, "--type", "admission.allow")...)
	var rows []struct {
		Index uint64
		Event audit.Event
	}
	if err := json.Unmarshal([]byte(out), &rows); code != 0 || err != nil || len(rows) != 3 || rows[2].Index != 2 || rows[0].Event.Type != audit.AdmissionAllow {
		t.Fatalf("audit log -o json --type: %v\n%s", err, out)
	}

	code, out, errOut = runSignet(t, home, append(base, "audit", "proof", "--key", vkey, "--index", "3")...)
	if code != 0 || !strings.HasPrefix(out, "c2sp.org/tlog-proof@v1\nindex 3\n") || !strings.Contains(out, "\n\nsignet.test/audit\n5\n") {
		t.Fatalf("audit proof: exit %d\n%s%s", code, out, errOut)
	}
	code, out, _ = runSignet(t, home, append(base, "-o", "json", "audit", "proof", "--key", vkey, "--index", "4")...)
	var p struct {
		Index    uint64
		LeafHash string `json:"leaf_hash"`
		Proof    []string
		Entry    audit.Event
	}
	if err := json.Unmarshal([]byte(out), &p); code != 0 || err != nil || p.Index != 4 || len(p.Proof) != 1 || p.Entry.Type != audit.AdmissionBreakGlass {
		t.Fatalf("audit proof -o json: %v\n%s", err, out)
	}
	if code, _, errOut := runSignet(t, home, append(base, "audit", "proof", "--key", vkey, "--index", "5")...); code != ExitError || !strings.Contains(errOut, "there is no entry 5") {
		t.Fatalf("proof beyond the log: exit %d %s", code, errOut)
	}
}
