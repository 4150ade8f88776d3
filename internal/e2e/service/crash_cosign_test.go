package service

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/oci"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// betweenFormats lists the requests whose signing has published DCT and
// not yet recorded the cosign signature, reading signet-server's database
// while it runs.
func betweenFormats(t *testing.T, db *sql.DB) []string {
	t.Helper()
	rows, err := db.Query(`SELECT id, data FROM service_requests WHERE status = 'signing'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, data string
		if err := rows.Scan(&id, &data); err != nil {
			t.Fatal(err)
		}
		var d struct{ Done []string }
		if err := json.Unmarshal([]byte(data), &d); err != nil {
			t.Fatal(err)
		}
		if slices.Equal(d.Done, []string{"dct"}) {
			out = append(out, id)
		}
	}
	return out
}

// TestCrashBetweenFormats: signet-server signs a storm of requests in
// both formats and is killed (SIGKILL) the moment a request has DCT
// published and its cosign signature not yet recorded. After a restart
// every request ends signed with one sign event; the requests caught
// between the formats keep the DCT role versions published before the
// kill (DCT is not published again); every image has exactly one cosign
// signature per form by the project's key, which the real cosign
// verifies.
func TestCrashBetweenFormats(t *testing.T) {
	e2etest.Need(t, "docker-registry")
	e2etest.CosignBin(t)
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
	const repos, perRepo = 3, 8
	type sub struct {
		project, repo, gun, tag, digest, id string
		cosignKey                           string
	}
	var subs []*sub
	for i := range repos {
		name, repo := fmt.Sprintf("p%d", i), fmt.Sprintf("crash/p%d", i)
		gun := reg.Host + "/" + repo
		p, err := ac.CreateProject(ctx, serviceapi.CreateProject{Name: name, Repository: gun, Signer: "ci"})
		if err != nil {
			t.Fatal(err)
		}
		ownerDelegates(t, s.Base, s.Client, gun, "ci", p.PublicKey)
		if _, err := ac.CreatePolicy(ctx, name, serviceapi.PolicySpec{Name: "release", Formats: []string{"dct", "cosign"},
			Approvals: serviceapi.Approvals{Required: 1, Approvers: []string{"appr"}}, Submitters: []string{"dev"}}); err != nil {
			t.Fatal(err)
		}
		for j := range perRepo {
			tag := fmt.Sprintf("v%d", j)
			subs = append(subs, &sub{project: name, repo: repo, gun: gun, tag: tag, digest: push(t, registry.Anonymous, reg.Host, repo, tag), cosignKey: p.CosignPublicKey})
		}
	}
	for i, sb := range subs {
		r, err := s.api(dev.Token).Submit(ctx, serviceapi.Submit{Project: sb.project, Policy: "release", Image: sb.gun + ":" + sb.tag, RunID: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		sb.id = r.ID
	}

	db, err := sql.Open("sqlite", filepath.Join(dataDir, "signet.db")+"?_pragma=query_only(1)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Approve all at once; kill the server as soon as a request is
	// between the formats.
	var wg sync.WaitGroup
	for _, sb := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = s.api(appr.Token).Approve(ctx, sb.id, "")
		}()
	}
	var caught []string
	deadline := time.Now().Add(60 * time.Second)
	for len(caught) == 0 && time.Now().Before(deadline) {
		caught = betweenFormats(t, db)
	}
	s.Cmd.Process.Kill()
	<-s.Exited
	wg.Wait()
	if len(caught) == 0 {
		t.Fatal("no request was seen between the formats before the deadline")
	}
	caught = betweenFormats(t, db) // as the kill left them
	t.Logf("killed with %d requests between DCT and cosign", len(caught))
	if len(caught) == 0 {
		t.Fatal("the requests seen between the formats completed before the kill landed")
	}
	before := map[string][]serviceapi.SignedRole{}
	s2 := spawn(t, dataDir, admin)
	for _, id := range caught {
		r, err := s2.api(admin).GetRequest(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		before[id] = r.Signed
	}
	// Approvals the kill cut off are made again; everything approved is
	// signed by the restarted server's worker.
	deadline = time.Now().Add(120 * time.Second)
	for {
		done := 0
		for _, sb := range subs {
			r, err := s2.api(admin).GetRequest(ctx, sb.id)
			if err != nil {
				t.Fatal(err)
			}
			switch r.Status {
			case serviceapi.StatusAwaitingApproval:
				_, _ = s2.api(appr.Token).Approve(ctx, sb.id, "again")
			case serviceapi.StatusSigned:
				done++
			case serviceapi.StatusSigning:
			default:
				t.Fatalf("request %s ended %s: %s", sb.id, r.Status, r.Reason)
			}
		}
		if done == len(subs) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d requests signed after the restart", done, len(subs))
		}
		time.Sleep(250 * time.Millisecond)
	}
	for id, roles := range before {
		r, err := s2.api(admin).GetRequest(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r.Signed, roles) || !slices.Equal(r.Done, []string{"dct", "cosign"}) || len(r.Cosign) != 2 {
			t.Errorf("request %s caught between the formats: signed %v (before the kill %v), done %v, cosign %+v", id, r.Signed, roles, r.Done, r.Cosign)
		}
	}
	for _, sb := range subs {
		if d := signedDigest(t, s2.Base, s2.Client, sb.gun, "targets/ci", sb.tag); d != sb.digest {
			t.Errorf("%s:%s in targets/ci is %q, want %s", sb.gun, sb.tag, d, sb.digest)
		}
		pub, err := keys.ParsePublicKeyPEM([]byte(sb.cosignKey))
		if err != nil {
			t.Fatal(err)
		}
		tg, err := oci.Resolve(ctx, (&registry.Client{}).Repository(registry.Reference{Registry: reg.Host, Repository: sb.repo}, "pull"), sb.digest)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := oci.Verify(ctx, tg, pub.CryptoKey(), oci.Options{Now: time.Now()})
		forms := map[oci.Form]int{}
		if err == nil {
			for _, v := range rep.Verified {
				forms[v.Form]++
			}
		}
		if forms[oci.FormBundle] != 1 || forms[oci.FormLegacy] != 1 {
			t.Errorf("%s@%s: cosign signatures per form %v, %v; want one each", sb.gun, sb.digest, forms, err)
		}
	}
	// The real cosign agrees on a request caught between the formats.
	for _, sb := range subs {
		if sb.id != caught[0] {
			continue
		}
		key := filepath.Join(dir, "cosign.pub")
		if err := os.WriteFile(key, []byte(sb.cosignKey), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, legacy := range []bool{false, true} {
			if ds, ok, r := cosignVerify(t, dir, key, sb.gun+"@"+sb.digest, legacy); !ok || len(ds) != 1 || ds[0] != sb.digest {
				t.Errorf("cosign verify %s@%s (legacy form %v): %v\n%s", sb.gun, sb.digest, legacy, ds, r)
			}
		}
	}
	s2.Cmd.Process.Kill()
	<-s2.Exited
	signs := auditSigns(t, dataDir)
	for _, sb := range subs {
		if signs[sb.id] != 1 {
			t.Errorf("request %s recorded signed %d times", sb.id, signs[sb.id])
		}
	}
}
