package service_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// TestPromotion: a policy with its own signer (test signing, no approval)
// and the project's release policy; a request signed by the first is
// resubmitted to the second with the same digest.
func TestPromotion(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	dev, rel := e.user("dev"), e.user("rel")
	p := e.project("app", "org/app", "release-signer")
	test, err := e.admin().CreatePolicy(ctx, "app", serviceapi.PolicySpec{Name: "test", Signer: "test-signer",
		Approvals: serviceapi.Approvals{Required: 0, Approvers: []string{}}, Submitters: []string{"dev"}})
	if err != nil {
		t.Fatal(err)
	}
	if test.PublicKey == "" || test.KeyID == p.KeyID || test.Signer != "test-signer" {
		t.Fatalf("policy with its own signer = %+v", test)
	}
	if _, err := e.admin().CreatePolicy(ctx, "app", serviceapi.PolicySpec{Name: "release",
		Approvals: serviceapi.Approvals{Required: 1, Approvers: []string{"rel"}}, Submitters: []string{"dev"}}); err != nil {
		t.Fatal(err)
	}
	// The owner delegates to both signers.
	owner := e.ownerOf(e.gun("org/app"))
	owner.addSigner("test-signer", test.PublicKey)

	image, digest := e.push("org/app", "1.0")
	r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "test", Image: image})
	if err != nil || r.Status != serviceapi.StatusSigned {
		t.Fatalf("test signing = %+v, %v", r, err)
	}
	if d, _ := e.signedDigest(e.gun("org/app"), "targets/test-signer", "1.0"); d != digest {
		t.Errorf("targets/test-signer: %q", d)
	}
	if d, _ := e.signedDigest(e.gun("org/app"), "targets/release-signer", "1.0"); d != "" {
		t.Error("test signing signed as the release signer")
	}
	_, err = rel.Resubmit(ctx, r.ID, serviceapi.Resubmit{Policy: "release"})
	wantRefused(t, "resubmission by a non-submitter", err, 403, "FORBIDDEN", "rel is not a submitter")
	pr, err := dev.Resubmit(ctx, r.ID, serviceapi.Resubmit{Policy: "release"})
	if err != nil || pr.Status != serviceapi.StatusAwaitingApproval || pr.ResubmittedFrom != r.ID || pr.Digest != digest {
		t.Fatalf("resubmit = %+v, %v", pr, err)
	}
	if got, err := rel.Approve(ctx, pr.ID, "promote"); err != nil || got.Status != serviceapi.StatusSigned {
		t.Fatalf("approve promotion = %+v, %v", got, err)
	}
	if d, _ := e.signedDigest(e.gun("org/app"), "targets/release-signer", "1.0"); d != digest {
		t.Errorf("targets/release-signer after promotion: %q", d)
	}
	// The tag moved: promotion of the old digest is refused.
	e.push("org/app", "1.0")
	_, err = dev.Resubmit(ctx, r.ID, serviceapi.Resubmit{Policy: "release"})
	wantRefused(t, "resubmitting a digest the tag no longer points at", err, 409, "DIGEST_MISMATCH", "not at "+digest)
}

// owners remembers the owners env.project made, by GUN.
func (e *env) ownerOf(gun string) *owner {
	e.t.Helper()
	o := e.owners[gun]
	if o == nil {
		e.t.Fatalf("no owner of %s", gun)
	}
	return o
}

// TestKeyLifecycle: rotation (the old signatures stay valid, new
// requests need the new key delegated), and import of an existing key.
func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	dev := e.user("dev")
	mgr := e.user("mgr")
	p := e.project("app", "org/app", "ci")
	if _, err := e.admin().UpdateProject(ctx, "app", serviceapi.UpdateProject{Managers: &[]string{"mgr"}}); err != nil {
		t.Fatal(err)
	}
	autoPolicy(t, e, "app", "auto", "dev")
	image, d1 := e.push("org/app", "old")
	if r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "auto", Image: image}); err != nil || r.Status != serviceapi.StatusSigned {
		t.Fatalf("submit = %+v, %v", r, err)
	}
	_, err := dev.RotateKey(ctx, "app", serviceapi.RotateKey{})
	wantRefused(t, "rotation by a submitter", err, 403, "FORBIDDEN", "only an admin or a manager")
	rot, err := mgr.RotateKey(ctx, "app", serviceapi.RotateKey{})
	if err != nil {
		t.Fatal(err)
	}
	if rot.KeyID == p.KeyID || rot.PublicKey == p.PublicKey || rot.State.Ready || !strings.Contains(rot.State.Fix, "docker trust signer add") {
		t.Fatalf("rotated project = %+v, state %+v", rot, rot.State)
	}
	retired := 0
	for _, k := range rot.Keys {
		if k.ID == p.KeyID && k.Retired != nil {
			retired++
		}
	}
	if retired != 1 {
		t.Errorf("the old key is not listed retired: %+v", rot.Keys)
	}
	// The old signature still verifies.
	if d, _ := e.signedDigest(e.gun("org/app"), "targets/ci", "old"); d != d1 {
		t.Errorf("old signature after rotation: %q", d)
	}
	image2, d2 := e.push("org/app", "new")
	_, err = dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "auto", Image: image2})
	wantRefused(t, "submission before re-delegation", err, 409, "REPOSITORY_NOT_READY", "does not list the key")
	e.ownerOf(e.gun("org/app")).addSigner("ci", rot.PublicKey)
	if r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "auto", Image: image2}); err != nil || r.Status != serviceapi.StatusSigned {
		t.Fatalf("submit after re-delegation = %+v, %v", r, err)
	}
	if d, _ := e.signedDigest(e.gun("org/app"), "targets/ci", "new"); d != d2 {
		t.Errorf("new signature: %q", d)
	}
	if d, _ := e.signedDigest(e.gun("org/app"), "targets/ci", "old"); d != d1 {
		t.Errorf("old signature after re-signing the role with the new key: %q", d)
	}

	// Import: a key made elsewhere (docker trust key generate writes it
	// encrypted) becomes the project's key.
	priv := newSigner(t)
	pemKey, err := keys.MarshalPrivateKeyPEM(priv, "ci", "", []byte("key passphrase"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.admin().CreateProject(ctx, serviceapi.CreateProject{Name: "imp", Repository: e.gun("org/imp"), Signer: "ci", PrivateKey: string(pemKey), Passphrase: "wrong"})
	wantRefused(t, "import with a wrong passphrase", err, 400, "BAD_REQUEST", "passphrase")
	imp, err := e.admin().CreateProject(ctx, serviceapi.CreateProject{Name: "imp", Repository: e.gun("org/imp"), Signer: "ci", PrivateKey: string(pemKey), Passphrase: "key passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	want, _ := keys.FromCrypto(priv.(*ecdsa.PrivateKey).Public())
	if imp.KeyID != want.ID() {
		t.Errorf("imported project key %s, want %s", imp.KeyID, want.ID())
	}
	_, err = e.admin().RotateKey(ctx, "imp", serviceapi.RotateKey{PrivateKey: string(pemKey), Passphrase: "key passphrase"})
	wantRefused(t, "importing a held key again", err, 409, "CONFLICT", "already held")
	var kinds []audit.EventType
	for _, ev := range e.events() {
		if ev.Subject.Project == "imp" && strings.HasPrefix(string(ev.Type), "key.") {
			kinds = append(kinds, ev.Type)
		}
	}
	if !slices.Equal(kinds, []audit.EventType{audit.KeyImport, audit.KeyCreate}) {
		t.Errorf("key events of the imported project: %v", kinds)
	}
}

// TestRoles: admins do everything, auditors read everything and change
// nothing, managers run their projects' policies, others see what names
// them.
func TestRoles(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	aud, err := e.admin().CreateUser(ctx, serviceapi.CreateUser{Name: "audrey", Auditor: true})
	if err != nil {
		t.Fatal(err)
	}
	auditor := e.client(aud.Token)
	mgr, outsider, dev := e.user("mgr"), e.user("outsider"), e.user("dev")
	e.project("app", "org/app", "ci")
	e.project("other", "org/other", "ci")
	if _, err := e.admin().UpdateProject(ctx, "app", serviceapi.UpdateProject{Managers: &[]string{"mgr"}}); err != nil {
		t.Fatal(err)
	}
	spec := serviceapi.PolicySpec{Name: "auto", Approvals: serviceapi.Approvals{Required: 0, Approvers: []string{}}, Submitters: []string{"dev"}}
	if _, err := mgr.CreatePolicy(ctx, "app", spec); err != nil {
		t.Errorf("a manager creating a policy of their project: %v", err)
	}
	_, err = mgr.CreatePolicy(ctx, "other", spec)
	wantRefused(t, "a manager creating a policy of another project", err, 403, "FORBIDDEN", "manager of other")
	_, err = auditor.CreatePolicy(ctx, "app", serviceapi.PolicySpec{Name: "x", Approvals: serviceapi.Approvals{}, Submitters: []string{"dev"}})
	wantRefused(t, "an auditor creating a policy", err, 403, "FORBIDDEN", "")
	_, err = auditor.CreateUser(ctx, serviceapi.CreateUser{Name: "zed"})
	wantRefused(t, "an auditor creating a user", err, 403, "FORBIDDEN", "auditors read everything and change nothing")
	image, _ := e.push("org/app", "v1")
	r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "auto", Image: image})
	if err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]*serviceapi.Client{"auditor": auditor, "manager": mgr, "submitter": dev} {
		if _, err := c.GetRequest(ctx, r.ID); err != nil {
			t.Errorf("%s reading the request: %v", name, err)
		}
		if l, err := c.ListRequests(ctx, serviceapi.ListFilter{}); err != nil || len(l.Requests) != 1 {
			t.Errorf("%s listing requests: %d, %v", name, len(l.Requests), err)
		}
	}
	_, err = outsider.GetRequest(ctx, r.ID)
	wantRefused(t, "an outsider reading the request", err, 403, "FORBIDDEN", "not one you may read")
	if l, err := outsider.ListRequests(ctx, serviceapi.ListFilter{}); err != nil || len(l.Requests) != 0 {
		t.Errorf("an outsider's list: %d requests, %v", len(l.Requests), err)
	}
	if l, err := outsider.ListProjects(ctx); err != nil || len(l.Projects) != 0 {
		t.Errorf("an outsider's projects: %+v, %v", l, err)
	}
	if l, err := mgr.ListProjects(ctx); err != nil || len(l.Projects) != 1 || l.Projects[0].Name != "app" {
		t.Errorf("a manager's projects: %+v, %v", l, err)
	}
	if l, err := auditor.ListUsers(ctx); err != nil || len(l.Users) != 4 {
		t.Errorf("an auditor's user list: %d, %v", len(l.Users), err)
	}
	_, err = mgr.ListUsers(ctx)
	wantRefused(t, "a manager listing users", err, 403, "FORBIDDEN", "admin or an auditor")
	me, err := mgr.Me(ctx)
	if err != nil || me.Name != "mgr" || me.Admin || me.Auditor || !slices.Equal(me.Manages, []string{"app"}) {
		t.Errorf("GET /me = %+v, %v", me, err)
	}
	// Users manage their own tokens; revoked tokens stop working at once.
	tok, err := dev.CreateToken(ctx, "dev", serviceapi.CreateToken{Description: "laptop", ExpiresIn: "1h"})
	if err != nil || tok.Expires == nil {
		t.Fatalf("create token = %+v, %v", tok, err)
	}
	laptop := e.client(tok.Secret)
	if me, err := laptop.Me(ctx); err != nil || me.Name != "dev" {
		t.Errorf("the new token: %+v, %v", me, err)
	}
	_, err = dev.CreateToken(ctx, "mgr", serviceapi.CreateToken{})
	wantRefused(t, "a token for another user", err, 403, "FORBIDDEN", "")
	list, err := dev.ListTokens(ctx, "dev")
	if err != nil || len(list.Tokens) != 2 || list.Tokens[0].ID != tok.ID {
		t.Errorf("list tokens = %+v, %v", list, err)
	}
	if err := dev.RevokeToken(ctx, "dev", tok.ID); err != nil {
		t.Fatal(err)
	}
	_, err = laptop.Me(ctx)
	wantRefused(t, "a revoked token", err, 401, "UNAUTHENTICATED", "revoked")
	e.clock.advance(2 * time.Hour)
	tok2, _ := dev.CreateToken(ctx, "dev", serviceapi.CreateToken{ExpiresIn: "1m"})
	e.clock.advance(2 * time.Minute)
	_, err = e.client(tok2.Secret).Me(ctx)
	wantRefused(t, "an expired token", err, 401, "UNAUTHENTICATED", "expired")
	e.clock.advance(-(2*time.Hour + 2*time.Minute))
}

// TestOperations: policy edit and delete (audited), CSV export,
// pagination, per-project rate limits, retention.
func TestOperations(t *testing.T) {
	e := newEnv(t, envOptions{config: func(c *service.Config) { c.Retention = 24 * time.Hour }})
	ctx := context.Background()
	dev := e.user("dev")
	e.user("appr")
	e.project("app", "org/app", "ci")
	if _, err := e.admin().UpdateProject(ctx, "app", serviceapi.UpdateProject{RateLimit: ptr(5)}); err != nil {
		t.Fatal(err)
	}
	autoPolicy(t, e, "app", "auto", "dev")
	var ids []string
	for i := range 5 {
		image, _ := e.push("org/app", fmt.Sprintf("t%d", i))
		r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "auto", Image: image, Description: "=HYPERLINK(\"x\")"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	image, _ := e.push("org/app", "t5")
	_, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "auto", Image: image})
	wantRefused(t, "the sixth request of the hour", err, 429, "RATE_LIMITED", "accepts 5 signing requests per hour")
	var ae *serviceapi.Error
	if errors.As(err, &ae) && ae.RetryAfter <= 0 {
		t.Error("429 without Retry-After")
	}

	// Pagination: newest first, two at a time.
	var seen []string
	f := serviceapi.ListFilter{Limit: 2}
	for {
		page, err := e.admin().ListRequests(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Requests {
			seen = append(seen, r.ID)
		}
		if page.NextPageToken == "" {
			break
		}
		f.PageToken = page.NextPageToken
	}
	want := slices.Clone(ids)
	slices.Reverse(want)
	if !slices.Equal(seen, want) {
		t.Errorf("pages: %v, want %v", seen, want)
	}
	// CSV export.
	var buf bytes.Buffer
	if err := e.admin().ExportCSV(ctx, serviceapi.ListFilter{Project: "app"}, &buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 6 || rows[0][0] != "id" || rows[1][0] != want[0] || rows[1][3] != "signed" {
		t.Errorf("CSV export = %v, %v", rows, err)
	}
	status, _, _ := e.raw(http.MethodGet, "/api/v1/signing-requests.csv?page_token=eA", adminToken, "")
	if status != 400 {
		t.Errorf("a paginated export: %d", status)
	}

	// Policy edit and delete.
	up, err := e.admin().UpdatePolicy(ctx, "app", "auto", serviceapi.PolicySpec{Approvals: serviceapi.Approvals{Required: 1, Approvers: []string{"appr"}}, Submitters: []string{"dev"}, Tags: "t[0-9]+"})
	if err != nil || up.Approvals.Required != 1 || up.Tags != "t[0-9]+" {
		t.Fatalf("update policy = %+v, %v", up, err)
	}
	_, err = e.admin().UpdatePolicy(ctx, "app", "auto", serviceapi.PolicySpec{Name: "renamed", Approvals: serviceapi.Approvals{}, Submitters: []string{"dev"}})
	wantRefused(t, "renaming a policy", err, 400, "BAD_REQUEST", "keeps its name")
	if err := e.admin().DeletePolicy(ctx, "app", "auto"); err != nil {
		t.Fatal(err)
	}
	var changes []string
	for _, ev := range e.events() {
		if ev.Type == audit.PolicyUpdate || ev.Type == audit.PolicyDelete {
			changes = append(changes, string(ev.Type)+" "+strings.Join(ev.Changes, ","))
		}
	}
	if !slices.Equal(changes, []string{"policy.update approvals.required,approvals.approvers,tags", "policy.delete "}) {
		t.Errorf("policy events: %v", changes)
	}
	// Retention: finished requests older than a day are purged; the audit
	// log keeps their history.
	e.clock.advance(25 * time.Hour)
	n, err := e.svc.Purge(ctx)
	if err != nil || n != 5 {
		t.Errorf("Purge = %d, %v; want 5", n, err)
	}
	if l, _ := e.admin().ListRequests(ctx, serviceapi.ListFilter{}); len(l.Requests) != 0 {
		t.Errorf("%d requests after the purge", len(l.Requests))
	}
	if got := e.eventsOf(ids[0]); !slices.Equal(got, []audit.EventType{audit.RequestSubmit, audit.RequestSign, audit.RequestPurge}) {
		t.Errorf("history of a purged request: %v", got)
	}
}

func ptr[T any](v T) *T { return &v }

// TestConcurrentSigning: 50 requests on 5 repositories approved at once
// are each signed exactly once, and every tag ends up signed.
func TestConcurrentSigning(t *testing.T) {
	e := newEnv(t, envOptions{config: func(c *service.Config) { c.SyncWait = 60 * time.Second }})
	ctx := context.Background()
	dev, appr := e.user("dev"), e.user("appr")
	type sub struct {
		id, gun, tag, digest string
	}
	var subs []sub
	for p := range 5 {
		name, repo := fmt.Sprintf("p%d", p), fmt.Sprintf("org/p%d", p)
		e.project(name, repo, "ci")
		if _, err := e.admin().CreatePolicy(ctx, name, serviceapi.PolicySpec{Name: "release",
			Approvals: serviceapi.Approvals{Required: 1, Approvers: []string{"appr"}}, Submitters: []string{"dev"}}); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			tag := fmt.Sprintf("v%d", i)
			image, digest := e.push(repo, tag)
			r, err := dev.Submit(ctx, serviceapi.Submit{Project: name, Policy: "release", Image: image})
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, sub{r.ID, e.gun(repo), tag, digest})
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(subs))
	for _, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := appr.Approve(ctx, s.id, "")
			if err == nil && r.Status != serviceapi.StatusSigned {
				err = fmt.Errorf("%s: %s %s", s.id, r.Status, r.Reason)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	signs := map[string]int{}
	for _, ev := range e.events() {
		if ev.Type == audit.RequestSign {
			signs[ev.Subject.RequestID]++
		}
	}
	for _, s := range subs {
		if signs[s.id] != 1 {
			t.Errorf("request %s recorded signed %d times", s.id, signs[s.id])
		}
		for _, role := range []string{"targets/ci", "targets/releases"} {
			if d, _ := e.signedDigest(s.gun, role, s.tag); d != s.digest {
				t.Errorf("%s %s %s: %q, want %s", s.gun, role, s.tag, d, s.digest)
			}
		}
	}
}

// TestReplicasPostgres: two signet-server processes' worth of stack (each
// its own store connection, custody, server cache and signing worker) on
// one PostgreSQL database; 40 requests over 4 repositories approved at
// once, half through each replica, are each signed exactly once.
func TestReplicasPostgres(t *testing.T) {
	db := e2etest.PostgresDB(t, "signet_service_replicas_")
	a := newEnv(t, envOptions{db: db, config: func(c *service.Config) { c.SyncWait = 60 * time.Second; c.Holder = "replica-a" }})
	b := newEnv(t, envOptions{db: db, registry: a.reg, config: func(c *service.Config) { c.SyncWait = 60 * time.Second; c.Holder = "replica-b" }})
	ctx := context.Background()
	dev := a.user("dev")
	a.user("appr")
	tok, err := a.admin().CreateToken(ctx, "appr", serviceapi.CreateToken{})
	if err != nil {
		t.Fatal(err)
	}
	apprA, apprB := a.client(tok.Secret), b.client(tok.Secret)
	type sub struct{ id, gun, tag, digest string }
	var subs []sub
	for p := range 4 {
		name, repo := fmt.Sprintf("r%d", p), fmt.Sprintf("org/r%d", p)
		a.project(name, repo, "ci")
		if _, err := a.admin().CreatePolicy(ctx, name, serviceapi.PolicySpec{Name: "release",
			Approvals: serviceapi.Approvals{Required: 1, Approvers: []string{"appr"}}, Submitters: []string{"dev"}}); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			image, digest := a.push(repo, fmt.Sprintf("v%d", i))
			r, err := dev.Submit(ctx, serviceapi.Submit{Project: name, Policy: "release", Image: image})
			if err != nil {
				t.Fatal(err)
			}
			subs = append(subs, sub{r.ID, a.gun(repo), fmt.Sprintf("v%d", i), digest})
		}
	}
	var wg sync.WaitGroup
	for i, s := range subs {
		c := apprA
		if i%2 == 1 {
			c = apprB
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Approve(ctx, s.id, ""); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(90 * time.Second)
	for _, s := range subs {
		for {
			r, err := a.admin().GetRequest(ctx, s.id)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status == serviceapi.StatusSigned {
				break
			}
			if r.Status != serviceapi.StatusSigning || time.Now().After(deadline) {
				t.Fatalf("request %s: %s %s", s.id, r.Status, r.Reason)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	signs := map[string]int{}
	for _, ev := range a.events() {
		if ev.Type == audit.RequestSign {
			signs[ev.Subject.RequestID]++
		}
	}
	for _, s := range subs {
		if signs[s.id] != 1 {
			t.Errorf("request %s recorded signed %d times", s.id, signs[s.id])
		}
		for _, e := range []*env{a, b} {
			if d, _ := e.signedDigest(s.gun, "targets/ci", s.tag); d != s.digest {
				t.Errorf("%s:%s read through replica %p: %q, want %s", s.gun, s.tag, e, d, s.digest)
			}
		}
	}
}
