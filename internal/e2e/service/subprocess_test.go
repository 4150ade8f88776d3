package service

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/oidc/oidctest"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/service/serviceapi"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

// spawned is signet-server as a subprocess on a data directory.
type spawned struct {
	*e2etest.Server
	dataDir, admin string
}

func spawn(t *testing.T, dataDir, admin string, env ...string) *spawned {
	t.Helper()
	cfg := filepath.Join(dataDir, "..", "signet.yaml")
	if err := os.WriteFile(cfg, []byte("service:\n  signing_lease: 2s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := e2etest.Start(t, e2etest.Options{DataDir: dataDir, LogTailOnFailure: true, Flags: []string{"--config", cfg},
		Env: append([]string{"SIGNET_ADMIN_TOKEN=" + admin, "SIGNET_KEY_PASSPHRASE=e2e-key-passphrase"}, env...)})
	return &spawned{Server: s, dataDir: dataDir, admin: admin}
}

func (s *spawned) api(token string) *serviceapi.Client {
	return &serviceapi.Client{Server: s.Base, HTTP: s.Client, Token: token}
}

func (s *spawned) caFile() string { return filepath.Join(s.dataDir, "tls", "ca.crt") }

// TestCIOrigin: a CI job submits with its OIDC ID token (from a real
// issuer over TLS, trusted by signet-server through SSL_CERT_FILE) and the
// signet CLI's --id-token-file; a token of another branch is refused,
// naming the claim.
func TestCIOrigin(t *testing.T) {
	e2etest.Need(t, "docker", "docker-registry")
	is := oidctest.Start(t)
	reg := e2etest.StartRegistry(t, "")
	dir := t.TempDir()
	s := spawn(t, filepath.Join(dir, "data"), randomToken(t), "SSL_CERT_FILE="+is.CAFile)
	tl := newTools(t, s.Base, s.Addr, s.caFile())
	gun := reg.Host + "/acme/app"
	pub := filepath.Join(tl.dir, "ci.pub")
	tl.signetOK(s.admin, "admin", "project", "create", "app", "--repository", gun, "--signer", "github", "--public-key-out", pub)
	tl.docker.OK(t, "docker", "trust", "signer", "add", "--key", pub, "github", gun)
	tl.signetOK(s.admin, "admin", "policy", "create", "app", "ci", "--issuer", is.URL, "--audience", "signet",
		"--claim", "repository=acme/app", "--claim", "ref=refs/tags/v*", "--claim", "workflow_ref=acme/app/.github/workflows/release.yml@refs/tags/v*")
	digest := push(t, registry.Anonymous, reg.Host, "acme/app", "v3.1")

	tokFile := filepath.Join(tl.dir, "id-token")
	write := func(ref string) {
		if err := os.WriteFile(tokFile, []byte(is.Mint(oidctest.GitHubClaims("signet", "acme/app", ref, "push", "release.yml"))+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("refs/heads/main")
	r := tl.signetFail("", "request", "submit", "--project", "app", "--policy", "ci", gun+":v3.1", "--id-token-file", tokFile)
	e2etest.WantOutput(t, r, `the token's "ref" claim is "refs/heads/main", which does not match the origin rule's "refs/tags/v*"`, "ORIGIN_MISMATCH")
	write("refs/tags/v3.1")
	r = tl.signetOK("", "request", "submit", "--project", "app", "--policy", "ci", gun+":v3.1", "--id-token-file", tokFile, "--wait", "--timeout", "60s")
	e2etest.WantOutput(t, r, "signed "+gun+":v3.1 as "+digest)
	if res := tl.verify("--require-signer", "github", gun+":v3.1"); !res.Succeeded() {
		t.Errorf("signet verify --require-signer github:\n%s", res)
	}
}

// TestCrash: signet-server is killed (SIGKILL) while it signs a storm of
// approved requests across several repositories. After a restart nothing
// is half signed (every repository verifies) and every request approved
// before the kill ends signed, exactly as submitted.
func TestCrash(t *testing.T) {
	e2etest.Need(t, "docker-registry")
	reg := e2etest.StartRegistry(t, "")
	dir := t.TempDir()
	dataDir := filepath.Join(dir, "data")
	admin := randomToken(t)
	s := spawn(t, dataDir, admin)
	ctx := context.Background()
	ac := s.api(admin)
	appr, err := ac.CreateUser(ctx, serviceapi.CreateUser{Name: "appr"})
	if err != nil {
		t.Fatal(err)
	}
	dev, err := ac.CreateUser(ctx, serviceapi.CreateUser{Name: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	const repos, perRepo = 4, 8
	type sub struct{ project, gun, tag, digest string }
	var subs []sub
	for i := range repos {
		name, gun := fmt.Sprintf("p%d", i), fmt.Sprintf("%s/crash/p%d", reg.Host, i)
		p, err := ac.CreateProject(ctx, serviceapi.CreateProject{Name: name, Repository: gun, Signer: "ci"})
		if err != nil {
			t.Fatal(err)
		}
		ownerDelegates(t, s.Base, s.Client, gun, "ci", p.PublicKey)
		if _, err := ac.CreatePolicy(ctx, name, serviceapi.PolicySpec{Name: "release",
			Approvals: serviceapi.Approvals{Required: 1, Approvers: []string{"appr"}}, Submitters: []string{"dev"}}); err != nil {
			t.Fatal(err)
		}
		for j := range perRepo {
			tag := fmt.Sprintf("v%d", j)
			subs = append(subs, sub{name, gun, tag, push(t, registry.Anonymous, reg.Host, fmt.Sprintf("crash/p%d", i), tag)})
		}
	}
	runRound := func(round int, s *spawned) (*spawned, int) {
		ids := make([]string, len(subs))
		for i, sb := range subs {
			r, err := s.api(dev.Token).Submit(ctx, serviceapi.Submit{Project: sb.project, Policy: "release", Image: sb.gun + ":" + sb.tag,
				RunID: fmt.Sprintf("round-%d-%d", round, i)})
			if err != nil {
				t.Fatal(err)
			}
			ids[i] = r.ID
		}
		// Approve all at once, and kill the server in the middle of it.
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = s.api(appr.Token).Approve(ctx, id, "")
			}()
		}
		time.Sleep(time.Duration(20+rand.IntN(120)) * time.Millisecond)
		s.Cmd.Process.Kill()
		<-s.Exited
		wg.Wait()
		signing := countStatus(t, dataDir, service.StatusSigning)
		t.Logf("round %d: killed with %d requests in status signing", round, signing)

		s2 := spawn(t, dataDir, admin)
		// Approvals the kill cut off are made again; everything approved is
		// signed by the restarted server's worker.
		deadline := time.Now().Add(90 * time.Second)
		for {
			done := 0
			for _, id := range ids {
				r, err := s2.api(admin).GetRequest(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				switch r.Status {
				case serviceapi.StatusAwaitingApproval:
					_, _ = s2.api(appr.Token).Approve(ctx, id, "again")
				case serviceapi.StatusSigned:
					done++
				case serviceapi.StatusSigning:
				default:
					t.Fatalf("request %s ended %s: %s", id, r.Status, r.Reason)
				}
			}
			if done == len(ids) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d of %d requests signed after the restart", round, done, len(ids))
			}
			time.Sleep(250 * time.Millisecond)
		}
		return s2, signing
	}
	midSigning := 0
	for round := range 3 {
		var n int
		s, n = runRound(round, s)
		if n > 0 {
			midSigning++
		}
		// Nothing half signed: each repository verifies as a client reads
		// it, and lists every tag with the digest it was submitted with.
		for _, sb := range subs {
			if d := signedDigest(t, s.Base, s.Client, sb.gun, "targets/ci", sb.tag); d != sb.digest {
				t.Errorf("round %d: %s:%s in targets/ci is %q, want %s", round, sb.gun, sb.tag, d, sb.digest)
			}
			if d := signedDigest(t, s.Base, s.Client, sb.gun, "targets/releases", sb.tag); d != sb.digest {
				t.Errorf("round %d: %s:%s in targets/releases is %q, want %s", round, sb.gun, sb.tag, d, sb.digest)
			}
		}
	}
	if midSigning == 0 {
		t.Log("no kill landed while requests were being signed; the recovery path was not exercised")
	}
	// Each request is recorded signed exactly once in the audit log (its
	// entries, pending integration: this server runs no integrator).
	s.Cmd.Process.Kill()
	<-s.Exited
	signs := auditSigns(t, dataDir)
	if len(signs) != 3*len(subs) {
		t.Errorf("%d requests recorded signed, want %d", len(signs), 3*len(subs))
	}
	for id, n := range signs {
		if n != 1 {
			t.Errorf("request %s recorded signed %d times", id, n)
		}
	}
}

// auditSigns counts the request.sign events of each request in the audit
// log's entries, integrated or pending.
func auditSigns(t *testing.T, dataDir string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, e := range auditEvents(t, dataDir) {
		if e.Type == audit.RequestSign {
			out[e.Subject.RequestID]++
		}
	}
	return out
}

// auditEvents reads the audit log's entries, integrated or pending, from
// signet-server's SQLite database (while it runs, or after).
func auditEvents(t *testing.T, dataDir string) []audit.Event {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dataDir, "signet.db")+"?_pragma=query_only(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT data FROM audit_pending UNION ALL SELECT data FROM audit_entries`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		e, err := audit.ParseEvent(b)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// countStatus counts the requests in status st, reading the database
// while no server runs.
func countStatus(t *testing.T, dataDir string, st service.Status) int {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(dataDir, "signet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rs, err := db.ListRequests(context.Background(), service.RequestFilter{Status: st, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return len(rs)
}
