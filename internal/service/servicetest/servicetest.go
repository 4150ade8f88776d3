// Package servicetest is the conformance suite of record.Store: every
// implementation runs it from its tests.
//
// The open function passed to Run is called once per subtest and returns a
// new, empty store and a function that reads back every audit event the
// store has appended so far, in order (the suite checks that each change
// appends its events, and that a refused change appends none). Subtests
// run one after another.
package servicetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/service/record"
	"github.com/signet-trust/signet/internal/store"
)

// Opened is a store under test and what reads its audit events.
type Opened struct {
	Store record.Store
	// Events returns every event appended so far, oldest first.
	Events func(ctx context.Context) ([]audit.Event, error)
}

// base is a round number of microseconds, the precision stores keep.
var base = time.Date(2031, 5, 17, 9, 30, 0, 123456000, time.UTC)

// Run runs the suite.
func Run(t *testing.T, open func(t *testing.T) Opened) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, o Opened)
	}{
		{"Users", testUsers},
		{"UserDuplicate", testUserDuplicate},
		{"UpdateUser", testUpdateUser},
		{"DeleteUser", testDeleteUser},
		{"Tokens", testTokens},
		{"Projects", testProjects},
		{"ProjectRefusals", testProjectRefusals},
		{"RotateKey", testRotateKey},
		{"Policies", testPolicies},
		{"PolicyRefusals", testPolicyRefusals},
		{"DeleteWithPending", testDeleteWithPending},
		{"Requests", testRequests},
		{"RunKey", testRunKey},
		{"ListRequests", testListRequests},
		{"CountRequestsPerDay", testCountRequestsPerDay},
		{"UpdateRequest", testUpdateRequest},
		{"ConcurrentUpdates", testConcurrentUpdates},
		{"UpdateRequests", testUpdateRequests},
		{"ClaimSigning", testClaimSigning},
		{"ConcurrentClaims", testConcurrentClaims},
		{"Housekeeping", testHousekeeping},
		{"Outbox", testOutbox},
		{"Commit", testCommit},
		{"ConcurrentDeliveryClaims", testConcurrentDeliveryClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func ev(typ audit.EventType, s audit.Subject) audit.Event {
	return audit.Event{Type: typ, Time: base, Actor: audit.Actor{Kind: audit.ActorUser, Name: "admin"}, Subject: s}
}

// eventLog checks the events appended since its last check.
type eventLog struct {
	o    Opened
	seen int
}

func (l *eventLog) expect(t *testing.T, what string, want ...audit.EventType) {
	t.Helper()
	all, err := l.o.Events(t.Context())
	if err != nil {
		t.Fatalf("reading events: %v", err)
	}
	var got []audit.EventType
	for _, e := range all[l.seen:] {
		got = append(got, e.Type)
	}
	l.seen = len(all)
	if !slices.Equal(got, want) {
		t.Errorf("%s: events appended %v, want %v", what, got, want)
	}
}

func user(name string) record.User {
	return record.User{Name: name, Email: name + "@example.com", PasswordHash: "$argon2id$x", Created: base, Updated: base}
}

func mustUser(t *testing.T, s record.Store, names ...string) {
	t.Helper()
	for _, n := range names {
		if err := s.CreateUser(t.Context(), user(n), nil, nil); err != nil {
			t.Fatalf("CreateUser(%s): %v", n, err)
		}
	}
}

func token(userName, id string) record.Token {
	h := sha256.Sum256([]byte("secret-" + id))
	return record.Token{ID: id, User: userName, Description: "ci " + id, Hash: h[:], Created: base}
}

func project(name string, managers ...string) record.Project {
	if managers == nil {
		managers = []string{}
	}
	return record.Project{Name: name, Repository: "registry.example/" + name, Signer: "ci", KeyID: "key-" + name,
		CosignKeyID: "cosign-" + name, Managers: managers, RateLimit: 7, Created: base, Updated: base}
}

func projectKeys(p record.Project) []record.ProjectKey {
	return []record.ProjectKey{
		{ID: p.KeyID, Role: "targets/" + p.Signer, Purpose: record.PurposeDelegation, Public: []byte("PEM " + p.KeyID), Created: base},
		{ID: p.CosignKeyID, Purpose: record.PurposeCosign, Public: []byte("PEM " + p.CosignKeyID), Created: base},
	}
}

func mustProject(t *testing.T, s record.Store, p record.Project) {
	t.Helper()
	if err := s.CreateProject(t.Context(), p, projectKeys(p), nil); err != nil {
		t.Fatalf("CreateProject(%s): %v", p.Name, err)
	}
}

func policy(projectName, name string, approvers ...string) record.Policy {
	if approvers == nil {
		approvers = []string{}
	}
	return record.Policy{
		Project: projectName, Name: name, Required: min(1, len(approvers)), Approvers: approvers, Submitters: []string{},
		Origin: &record.Origin{Issuer: "https://token.actions.githubusercontent.com", Audience: "signet",
			Claims: map[string]string{"repository": "acme/app", "ref": "refs/heads/*"}},
		Tags: `v[0-9.]+`, Formats: []record.Format{record.FormatDCT}, Expiry: 48 * time.Hour,
		Webhook: &record.Webhook{URL: "https://hooks.example/x", Authorization: "Bearer h"}, Created: base, Updated: base,
	}
}

func mustPolicy(t *testing.T, s record.Store, p record.Policy) {
	t.Helper()
	if err := s.CreatePolicy(t.Context(), p, nil, nil); err != nil {
		t.Fatalf("CreatePolicy(%s/%s): %v", p.Project, p.Name, err)
	}
}

var (
	seqMu sync.Mutex
	seq   int
)

func request(projectName, policyName string, status record.Status) record.Request {
	seqMu.Lock()
	seq++
	n := seq
	seqMu.Unlock()
	return record.Request{
		ID: fmt.Sprintf("0190%04x-0000-7000-8000-%012x", n, n), Project: projectName, Policy: policyName, Status: status,
		Images: []record.Image{{Ref: "registry.example/" + projectName + ":v1", GUN: "registry.example/" + projectName, Tag: "v1",
			Digest: "sha256:" + fmt.Sprintf("%064x", n), Size: 528, MediaType: "application/vnd.oci.image.manifest.v1+json"}},
		Origin:       map[string]string{"repository": "acme/app", "ref": "refs/heads/main"},
		OriginIssuer: "https://token.actions.githubusercontent.com", OriginSubject: "repo:acme/app:ref:refs/heads/main",
		Description: "release", Parameters: map[string]string{"build": "42"},
		Approvals: []record.Decision{}, Denials: []record.Decision{}, Signed: []record.SignedRole{},
		Formats: []record.Format{record.FormatDCT, record.FormatCosign}, Cosign: []record.CosignSignature{}, Done: []record.Format{},
		StatusTokenHash: []byte{1, 2, 3}, Created: base, Updated: base, Expires: base.Add(7 * 24 * time.Hour),
	}
}

func mustRequest(t *testing.T, s record.Store, r record.Request) record.Request {
	t.Helper()
	got, created, err := s.CreateRequest(t.Context(), r, record.Effects{})
	if err != nil || !created {
		t.Fatalf("CreateRequest(%s) = created %v, %v", r.ID, created, err)
	}
	return got
}

func diff(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

func isUnknownUsers(err error, names ...string) bool {
	var u *record.UnknownUsersError
	return errors.As(err, &u) && slices.Equal(u.Names, names)
}

func isInUse(err error) bool {
	var u *record.InUseError
	return errors.As(err, &u) && len(u.By) > 0
}

func testUsers(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	alice := user("alice")
	alice.Admin = true
	tok := token("alice", "t1")
	if err := s.CreateUser(ctx, alice, &tok, []audit.Event{ev(audit.UserCreate, audit.Subject{User: "alice"}), ev(audit.TokenCreate, audit.Subject{User: "alice", Token: "t1"})}); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "CreateUser", audit.UserCreate, audit.TokenCreate)
	bob := user("bob")
	bob.Auditor, bob.Email, bob.PasswordHash = true, "", ""
	if err := s.CreateUser(ctx, bob, nil, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetUser(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetUser", got, alice)
	list, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListUsers", list, []record.User{alice, bob})
	gotTok, gotUser, err := s.TokenByHash(ctx, tok.Hash)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "TokenByHash token", gotTok, tok)
	diff(t, "TokenByHash user", gotUser, alice)
	if _, err := s.GetUser(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetUser(carol) = %v, want ErrNotFound", err)
	}
}

func testUserDuplicate(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice")
	dup := user("alice")
	dup.Email = "other@example.com"
	tok := token("alice", "t1")
	err := s.CreateUser(ctx, dup, &tok, []audit.Event{ev(audit.UserCreate, audit.Subject{User: "alice"})})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("CreateUser(duplicate) = %v, want ErrConflict", err)
	}
	l.expect(t, "refused CreateUser")
	if got, _ := s.GetUser(ctx, "alice"); got.Email != "alice@example.com" {
		t.Errorf("the duplicate changed the user: %+v", got)
	}
	if _, _, err := s.TokenByHash(ctx, tok.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused user's token was stored: %v", err)
	}
}

func testUpdateUser(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice")
	l.expect(t, "setup")
	later := base.Add(time.Hour)
	got, err := s.UpdateUser(ctx, "alice", func(u *record.User) ([]audit.Event, error) {
		u.Name = "mallory" // ignored
		u.Admin, u.Email, u.PasswordHash, u.Updated = true, "a@example.org", "$argon2id$y", later
		return []audit.Event{ev(audit.UserUpdate, audit.Subject{User: "alice"})}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := user("alice")
	want.Admin, want.Email, want.PasswordHash, want.Updated = true, "a@example.org", "$argon2id$y", later
	diff(t, "UpdateUser result", got, want)
	stored, _ := s.GetUser(ctx, "alice")
	diff(t, "UpdateUser stored", stored, want)
	l.expect(t, "UpdateUser", audit.UserUpdate)

	unchanged, err := s.UpdateUser(ctx, "alice", func(u *record.User) ([]audit.Event, error) {
		u.Admin = false
		return nil, record.ErrUnchanged
	})
	if err != nil || !unchanged.Admin {
		t.Errorf("UpdateUser(ErrUnchanged) = %+v, %v; want the stored user", unchanged, err)
	}
	boom := errors.New("boom")
	if _, err := s.UpdateUser(ctx, "alice", func(u *record.User) ([]audit.Event, error) {
		u.Admin = false
		return []audit.Event{ev(audit.UserUpdate, audit.Subject{User: "alice"})}, boom
	}); !errors.Is(err, boom) {
		t.Errorf("UpdateUser(fn error) = %v, want it", err)
	}
	l.expect(t, "unchanged and failed updates")
	if stored, _ := s.GetUser(ctx, "alice"); !stored.Admin {
		t.Error("a failed update changed the user")
	}
	if _, err := s.UpdateUser(ctx, "nobody", func(*record.User) ([]audit.Event, error) { return nil, nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateUser(nobody) = %v, want ErrNotFound", err)
	}
}

func testDeleteUser(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice", "bob", "carol")
	tok := token("alice", "t1")
	if err := s.CreateToken(ctx, tok, nil); err != nil {
		t.Fatal(err)
	}
	mustProject(t, s, project("app", "bob"))
	mustPolicy(t, s, policy("app", "release", "carol"))
	l.expect(t, "setup")
	for _, name := range []string{"bob", "carol"} {
		if err := s.DeleteUser(ctx, name, []audit.Event{ev(audit.UserDelete, audit.Subject{User: name})}); !isInUse(err) {
			t.Errorf("DeleteUser(%s) = %v, want *InUseError", name, err)
		}
	}
	l.expect(t, "refused deletions")
	if err := s.DeleteUser(ctx, "alice", []audit.Event{ev(audit.UserDelete, audit.Subject{User: "alice"})}); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "DeleteUser", audit.UserDelete)
	if _, err := s.GetUser(ctx, "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted user: %v", err)
	}
	if _, _, err := s.TokenByHash(ctx, tok.Hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the deleted user's token: %v", err)
	}
	if err := s.DeleteUser(ctx, "alice", nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteUser twice = %v, want ErrNotFound", err)
	}
	// A user created again under the name has no old tokens.
	mustUser(t, s, "alice")
	if toks, err := s.ListTokens(ctx, "alice"); err != nil || len(toks) != 0 {
		t.Errorf("tokens of the new alice: %v, %v", toks, err)
	}
}

func testTokens(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice", "bob")
	t1, t2 := token("alice", "0001"), token("alice", "0002")
	t2.Expires = base.Add(24 * time.Hour)
	for _, tk := range []record.Token{t1, t2} {
		if err := s.CreateToken(ctx, tk, []audit.Event{ev(audit.TokenCreate, audit.Subject{User: "alice", Token: tk.ID})}); err != nil {
			t.Fatal(err)
		}
	}
	l.expect(t, "CreateToken", audit.TokenCreate, audit.TokenCreate)
	dup := token("bob", "0003")
	dup.Hash = t1.Hash
	if err := s.CreateToken(ctx, dup, []audit.Event{ev(audit.TokenCreate, audit.Subject{User: "bob", Token: "0003"})}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateToken(same hash) = %v, want ErrConflict", err)
	}
	if err := s.CreateToken(ctx, token("nobody", "0004"), []audit.Event{ev(audit.TokenCreate, audit.Subject{User: "nobody", Token: "0004"})}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateToken(unknown user) = %v, want ErrNotFound", err)
	}
	l.expect(t, "refused tokens")
	list, err := s.ListTokens(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListTokens", list, []record.Token{t2, t1})
	if l, _ := s.ListTokens(ctx, "bob"); len(l) != 0 {
		t.Errorf("bob's tokens: %v", l)
	}
	at := base.Add(time.Minute)
	got, err := s.RevokeToken(ctx, "alice", "0001", at, []audit.Event{ev(audit.TokenRevoke, audit.Subject{User: "alice", Token: "0001"})})
	if err != nil || !got.Revoked.Equal(at) {
		t.Fatalf("RevokeToken = %+v, %v", got, err)
	}
	again, err := s.RevokeToken(ctx, "alice", "0001", at.Add(time.Hour), []audit.Event{ev(audit.TokenRevoke, audit.Subject{User: "alice", Token: "0001"})})
	if err != nil || !again.Revoked.Equal(at) {
		t.Errorf("RevokeToken again = %+v, %v; want the first revocation kept", again, err)
	}
	l.expect(t, "RevokeToken twice", audit.TokenRevoke)
	if _, err := s.RevokeToken(ctx, "bob", "0002", at, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RevokeToken(another user's token) = %v, want ErrNotFound", err)
	}
	tok, _, err := s.TokenByHash(ctx, t1.Hash)
	if err != nil || tok.Active(at) || !tok.Revoked.Equal(at) {
		t.Errorf("revoked token = %+v, %v", tok, err)
	}
	tok2, _, _ := s.TokenByHash(ctx, t2.Hash)
	if !tok2.Active(base) || tok2.Active(t2.Expires) {
		t.Errorf("token with expiry: active at base %v, at expiry %v", tok2.Active(base), tok2.Active(t2.Expires))
	}
	if _, _, err := s.TokenByHash(ctx, []byte("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("TokenByHash(unknown) = %v", err)
	}
}

func testProjects(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice", "bob")
	l.expect(t, "setup")
	p := project("app", "bob", "alice")
	if err := s.CreateProject(ctx, p, projectKeys(p), []audit.Event{ev(audit.ProjectCreate, audit.Subject{Project: "app"})}); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "CreateProject", audit.ProjectCreate)
	got, err := s.GetProject(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetProject", got, p)
	q := project("zed")
	mustProject(t, s, q)
	list, err := s.ListProjects(ctx)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListProjects", list, []record.Project{p, q})
	keys, err := s.ListProjectKeys(ctx, "app")
	if err != nil || len(keys) != 2 {
		t.Fatalf("ListProjectKeys = %v, %v", keys, err)
	}
	for _, k := range keys {
		if k.Project != "app" || !k.Retired.IsZero() || !k.Created.Equal(base) || len(k.Public) == 0 {
			t.Errorf("key %+v", k)
		}
	}
	later := base.Add(time.Hour)
	up, err := s.UpdateProject(ctx, "app", func(p *record.Project) ([]audit.Event, error) {
		p.Managers, p.RateLimit, p.Updated = []string{"alice"}, 100, later
		p.KeyID, p.Repository = "other", "elsewhere" // kept
		return []audit.Event{ev(audit.ProjectUpdate, audit.Subject{Project: "app"})}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := p
	want.Managers, want.RateLimit, want.Updated = []string{"alice"}, 100, later
	diff(t, "UpdateProject", up, want)
	stored, _ := s.GetProject(ctx, "app")
	diff(t, "UpdateProject stored", stored, want)
	if _, err := s.UpdateProject(ctx, "app", func(p *record.Project) ([]audit.Event, error) {
		p.Managers = []string{"alice", "ghost"}
		return []audit.Event{ev(audit.ProjectUpdate, audit.Subject{Project: "app"})}, nil
	}); !isUnknownUsers(err, "ghost") {
		t.Errorf("UpdateProject(unknown manager) = %v", err)
	}
	l.expect(t, "UpdateProject", audit.ProjectUpdate)
	mustPolicy(t, s, policy("app", "release", "alice"))
	if err := s.DeleteProject(ctx, "app", []audit.Event{ev(audit.ProjectDelete, audit.Subject{Project: "app"})}); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "DeleteProject", audit.ProjectDelete)
	if _, err := s.GetProject(ctx, "app"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted project: %v", err)
	}
	if _, err := s.GetPolicy(ctx, "app", "release"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("policy of the deleted project: %v", err)
	}
	if keys, _ := s.ListProjectKeys(ctx, "app"); len(keys) != 0 {
		t.Errorf("keys of the deleted project: %v", keys)
	}
	// Its repository and name are free again; alice is no longer in use.
	mustProject(t, s, project("app"))
	if err := s.DeleteUser(ctx, "alice", nil); err != nil {
		t.Errorf("DeleteUser(former manager): %v", err)
	}
	if err := s.DeleteProject(ctx, "nothing", nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteProject(unknown) = %v", err)
	}
}

func testProjectRefusals(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	l.expect(t, "setup")
	events := []audit.Event{ev(audit.ProjectCreate, audit.Subject{Project: "x"})}
	dupName := project("app")
	dupName.Repository = "registry.example/other"
	if err := s.CreateProject(ctx, dupName, projectKeys(project("other")), events); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateProject(same name) = %v, want ErrConflict", err)
	}
	dupRepo := project("other")
	dupRepo.Repository = "registry.example/app"
	if err := s.CreateProject(ctx, dupRepo, projectKeys(dupRepo), events); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateProject(same repository) = %v, want ErrConflict", err)
	}
	ghosts := project("ghosts", "alice", "ghost", "spectre")
	if err := s.CreateProject(ctx, ghosts, projectKeys(ghosts), events); !isUnknownUsers(err, "ghost", "spectre") {
		t.Errorf("CreateProject(unknown managers) = %v, want ghost and spectre unknown", err)
	}
	l.expect(t, "refused projects")
	list, _ := s.ListProjects(ctx)
	if len(list) != 1 || list[0].Repository != "registry.example/app" {
		t.Errorf("projects after refusals: %+v", list)
	}
	for _, name := range []string{"other", "ghosts"} {
		if keys, _ := s.ListProjectKeys(ctx, name); len(keys) != 0 {
			t.Errorf("keys of refused project %s stored: %v", name, keys)
		}
	}
}

func testRotateKey(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	pol := policy("app", "test", "alice")
	pol.Signer, pol.KeyID = "test-signer", "policy-key-1"
	if err := s.CreatePolicy(ctx, pol, []record.ProjectKey{{ID: "policy-key-1", Policy: "test", Role: "targets/test-signer", Purpose: record.PurposeDelegation, Public: []byte("p1"), Created: base}}, nil); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "setup")
	at := base.Add(time.Hour)
	if err := s.RotateKey(ctx, record.ProjectKey{ID: "key-app-2", Project: "app", Role: "targets/ci", Purpose: record.PurposeDelegation, Public: []byte("k2"), Imported: true, Created: at},
		[]audit.Event{ev(audit.KeyRotate, audit.Subject{Project: "app", KeyID: "key-app-2"})}); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateKey(ctx, record.ProjectKey{ID: "policy-key-2", Project: "app", Policy: "test", Role: "targets/test-signer", Purpose: record.PurposeDelegation, Public: []byte("p2"), Created: at},
		[]audit.Event{ev(audit.KeyRotate, audit.Subject{Project: "app", KeyID: "policy-key-2"})}); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "RotateKey", audit.KeyRotate, audit.KeyRotate)
	p, _ := s.GetProject(ctx, "app")
	if p.KeyID != "key-app-2" || p.CosignKeyID != "cosign-app" {
		t.Errorf("project keys after rotation: %s, %s", p.KeyID, p.CosignKeyID)
	}
	got, _ := s.GetPolicy(ctx, "app", "test")
	if got.KeyID != "policy-key-2" {
		t.Errorf("policy key after rotation: %s", got.KeyID)
	}
	keys, _ := s.ListProjectKeys(ctx, "app")
	state := map[string]bool{}
	for _, k := range keys {
		state[k.ID] = k.Retired.IsZero()
		if !k.Retired.IsZero() && !k.Retired.Equal(at) {
			t.Errorf("key %s retired at %v, want %v", k.ID, k.Retired, at)
		}
		if k.ID == "key-app-2" && !k.Imported {
			t.Error("the imported key is not marked imported")
		}
	}
	diff(t, "active keys", state, map[string]bool{"key-app": false, "key-app-2": true, "cosign-app": true, "policy-key-1": false, "policy-key-2": true})
	if keys[0].Created.Before(keys[len(keys)-1].Created) {
		t.Error("ListProjectKeys is not newest first")
	}
	if err := s.RotateKey(ctx, record.ProjectKey{ID: "key-app-2", Project: "app", Purpose: record.PurposeDelegation, Created: at}, []audit.Event{ev(audit.KeyRotate, audit.Subject{KeyID: "x"})}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("RotateKey(held key) = %v, want ErrConflict", err)
	}
	if err := s.RotateKey(ctx, record.ProjectKey{ID: "k", Project: "app", Policy: "nope", Purpose: record.PurposeDelegation, Created: at}, []audit.Event{ev(audit.KeyRotate, audit.Subject{KeyID: "x"})}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RotateKey(unknown policy) = %v, want ErrNotFound", err)
	}
	if err := s.RotateKey(ctx, record.ProjectKey{ID: "k", Project: "nope", Purpose: record.PurposeDelegation, Created: at}, []audit.Event{ev(audit.KeyRotate, audit.Subject{KeyID: "x"})}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RotateKey(unknown project) = %v, want ErrNotFound", err)
	}
	l.expect(t, "refused rotations")
}

func testPolicies(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice", "bob", "carol")
	mustProject(t, s, project("app"))
	l.expect(t, "setup")
	p := policy("app", "release", "alice", "bob")
	p.Required, p.Submitters = 2, []string{"carol", "alice"}
	if err := s.CreatePolicy(ctx, p, nil, []audit.Event{ev(audit.PolicyCreate, audit.Subject{Project: "app", Policy: "release"})}); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "CreatePolicy", audit.PolicyCreate)
	got, err := s.GetPolicy(ctx, "app", "release")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetPolicy", got, p)
	q := record.Policy{Project: "app", Name: "auto", Approvers: []string{}, Submitters: []string{"bob"}, Formats: []record.Format{}, Created: base, Updated: base}
	mustPolicy(t, s, q)
	list, err := s.ListPolicies(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "ListPolicies", list, []record.Policy{q, p})
	naming, err := s.PoliciesNaming(ctx, "carol")
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "PoliciesNaming(carol)", naming, []record.Policy{p})
	if n, _ := s.PoliciesNaming(ctx, "bob"); len(n) != 2 {
		t.Errorf("PoliciesNaming(bob) = %d policies, want 2", len(n))
	}
	later := base.Add(time.Hour)
	up, err := s.UpdatePolicy(ctx, "app", "release", func(p *record.Policy) ([]audit.Event, error) {
		p.Approvers, p.Required, p.Submitters, p.Origin, p.Tags, p.Updated = []string{"bob"}, 1, []string{}, nil, "", later
		p.Signer, p.KeyID = "sneaky", "sneaky" // kept
		return []audit.Event{ev(audit.PolicyUpdate, audit.Subject{Project: "app", Policy: "release"})}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := p
	want.Approvers, want.Required, want.Submitters, want.Origin, want.Tags, want.Updated = []string{"bob"}, 1, []string{}, nil, "", later
	diff(t, "UpdatePolicy", up, want)
	stored, _ := s.GetPolicy(ctx, "app", "release")
	diff(t, "UpdatePolicy stored", stored, want)
	if n, _ := s.PoliciesNaming(ctx, "carol"); len(n) != 0 {
		t.Errorf("carol is still named after the update: %v", n)
	}
	if _, err := s.UpdatePolicy(ctx, "app", "release", func(p *record.Policy) ([]audit.Event, error) {
		p.Approvers = []string{"ghost"}
		return []audit.Event{ev(audit.PolicyUpdate, audit.Subject{Project: "app", Policy: "release"})}, nil
	}); !isUnknownUsers(err, "ghost") {
		t.Errorf("UpdatePolicy(unknown approver) = %v", err)
	}
	l.expect(t, "UpdatePolicy", audit.PolicyUpdate)
	if err := s.DeletePolicy(ctx, "app", "release", []audit.Event{ev(audit.PolicyDelete, audit.Subject{Project: "app", Policy: "release"})}); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "DeletePolicy", audit.PolicyDelete)
	if _, err := s.GetPolicy(ctx, "app", "release"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted policy: %v", err)
	}
	if err := s.DeletePolicy(ctx, "app", "release", nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeletePolicy twice = %v", err)
	}
}

func testPolicyRefusals(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	mustPolicy(t, s, policy("app", "release", "alice"))
	l.expect(t, "setup")
	events := []audit.Event{ev(audit.PolicyCreate, audit.Subject{Project: "app", Policy: "x"})}
	if err := s.CreatePolicy(ctx, policy("nope", "release", "alice"), nil, events); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreatePolicy(unknown project) = %v, want ErrNotFound", err)
	}
	if err := s.CreatePolicy(ctx, policy("app", "release"), nil, events); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreatePolicy(duplicate) = %v, want ErrConflict", err)
	}
	ghosts := policy("app", "ghosts", "alice", "ghost")
	ghosts.Submitters = []string{"spectre", "ghost"}
	key := []record.ProjectKey{{ID: "ghost-key", Policy: "ghosts", Role: "targets/g", Purpose: record.PurposeDelegation, Public: []byte("g"), Created: base}}
	if err := s.CreatePolicy(ctx, ghosts, key, events); !isUnknownUsers(err, "ghost", "spectre") {
		t.Errorf("CreatePolicy(unknown users) = %v, want ghost and spectre unknown", err)
	}
	l.expect(t, "refused policies")
	list, _ := s.ListPolicies(ctx, "app")
	if len(list) != 1 || list[0].Approvers[0] != "alice" {
		t.Errorf("policies after refusals: %+v", list)
	}
	if keys, _ := s.ListProjectKeys(ctx, "app"); len(keys) != 2 {
		t.Errorf("a refused policy's key was stored: %d keys", len(keys))
	}
}

func testDeleteWithPending(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	mustPolicy(t, s, policy("app", "release", "alice"))
	r := mustRequest(t, s, request("app", "release", record.StatusAwaitingApproval))
	l.expect(t, "setup")
	if err := s.DeletePolicy(ctx, "app", "release", []audit.Event{ev(audit.PolicyDelete, audit.Subject{Project: "app", Policy: "release"})}); !isInUse(err) {
		t.Errorf("DeletePolicy(pending request) = %v, want *InUseError", err)
	}
	if err := s.DeleteProject(ctx, "app", []audit.Event{ev(audit.ProjectDelete, audit.Subject{Project: "app"})}); !isInUse(err) {
		t.Errorf("DeleteProject(pending request) = %v, want *InUseError", err)
	}
	l.expect(t, "refused deletions")
	if _, err := s.UpdateRequest(ctx, r.ID, func(r *record.Request) (record.Effects, error) {
		r.Status = record.StatusCanceled
		return record.Effects{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeletePolicy(ctx, "app", "release", nil); err != nil {
		t.Errorf("DeletePolicy(finished requests only) = %v", err)
	}
	// The request stays, as history.
	if got, err := s.GetRequest(ctx, r.ID); err != nil || got.Policy != "release" {
		t.Errorf("request of the deleted policy = %+v, %v", got, err)
	}
}

func testRequests(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	mustPolicy(t, s, policy("app", "release", "alice"))
	l.expect(t, "setup")
	r := request("app", "release", record.StatusAwaitingApproval)
	r.Images = append(r.Images, record.Image{Ref: "registry.example/app:v1-debug", GUN: "registry.example/app", Tag: "v1-debug", Digest: "sha256:" + fmt.Sprintf("%064x", 99), Size: 1})
	r.ResubmittedFrom = "0190-older"
	got, created, err := s.CreateRequest(ctx, r, record.Effects{Events: []audit.Event{ev(audit.RequestSubmit, audit.Subject{RequestID: r.ID})}})
	if err != nil || !created {
		t.Fatalf("CreateRequest = %v, %v", created, err)
	}
	diff(t, "CreateRequest", got, r)
	l.expect(t, "CreateRequest", audit.RequestSubmit)
	again, err := s.GetRequest(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "GetRequest", again, r)
	if _, _, err := s.CreateRequest(ctx, r, record.Effects{Events: []audit.Event{ev(audit.RequestSubmit, audit.Subject{RequestID: r.ID})}}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateRequest(same ID) = %v, want ErrConflict", err)
	}
	bad := request("app", "nope", record.StatusAwaitingApproval)
	if _, _, err := s.CreateRequest(ctx, bad, record.Effects{Events: []audit.Event{ev(audit.RequestSubmit, audit.Subject{RequestID: bad.ID})}}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateRequest(unknown policy) = %v, want ErrNotFound", err)
	}
	final := request("app", "release", record.StatusSigned)
	if _, _, err := s.CreateRequest(ctx, final, record.Effects{}); err == nil {
		t.Error("CreateRequest(signed) succeeded; a new request is pending")
	}
	l.expect(t, "refused requests")
	if _, err := s.GetRequest(ctx, bad.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetRequest(refused) = %v", err)
	}
}

func testRunKey(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	mustPolicy(t, s, policy("app", "release", "alice"))
	l.expect(t, "setup")
	first := request("app", "release", record.StatusAwaitingApproval)
	first.RunKey = "run-1"
	mustRequest(t, s, first)
	rerun := request("app", "release", record.StatusAwaitingApproval)
	rerun.RunKey = "run-1"
	got, created, err := s.CreateRequest(ctx, rerun, record.Effects{Events: []audit.Event{ev(audit.RequestSubmit, audit.Subject{RequestID: rerun.ID})}})
	if err != nil || created || got.ID != first.ID {
		t.Fatalf("CreateRequest(same run key) = %s, created %v, %v; want %s", got.ID, created, err, first.ID)
	}
	l.expect(t, "attached re-run")
	if _, err := s.GetRequest(ctx, rerun.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the re-run was stored: %v", err)
	}
	other := request("app", "release", record.StatusSigning)
	other.RunKey = "run-2"
	mustRequest(t, s, other)
	// Once the first is final, the key is free for a new request.
	if _, err := s.UpdateRequest(ctx, first.ID, func(r *record.Request) (record.Effects, error) {
		r.Status = record.StatusDenied
		return record.Effects{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	got, created, err = s.CreateRequest(ctx, rerun, record.Effects{})
	if err != nil || !created || got.ID != rerun.ID {
		t.Errorf("CreateRequest(run key of a finished request) = %s, created %v, %v", got.ID, created, err)
	}
}

func testListRequests(t *testing.T, o Opened) {
	ctx, s := t.Context(), o.Store
	mustUser(t, s, "alice")
	for _, p := range []string{"a", "b"} {
		mustProject(t, s, project(p))
		mustPolicy(t, s, policy(p, "release", "alice"))
		mustPolicy(t, s, policy(p, "test", "alice"))
	}
	var all []record.Request
	for i := range 12 {
		r := request([]string{"a", "b"}[i%2], []string{"release", "test"}[i/2%2], []record.Status{record.StatusAwaitingApproval, record.StatusSigning}[i/3%2])
		r.Created = base.Add(time.Duration(i) * time.Minute)
		all = append(all, mustRequest(t, s, r))
	}
	slices.Reverse(all) // newest first
	ids := func(rs []record.Request) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.ID)
		}
		return out
	}
	pick := func(keep func(record.Request) bool) []string {
		var out []string
		for _, r := range all {
			if keep(r) {
				out = append(out, r.ID)
			}
		}
		return out
	}
	cases := []struct {
		name string
		f    record.RequestFilter
		want []string
	}{
		{"all", record.RequestFilter{Limit: 100}, ids(all)},
		{"limit", record.RequestFilter{Limit: 5}, ids(all[:5])},
		{"page", record.RequestFilter{Limit: 5, Before: all[4].ID}, ids(all[5:10])},
		{"status", record.RequestFilter{Status: record.StatusSigning, Limit: 100}, pick(func(r record.Request) bool { return r.Status == record.StatusSigning })},
		{"project", record.RequestFilter{Project: "a", Limit: 100}, pick(func(r record.Request) bool { return r.Project == "a" })},
		{"policy", record.RequestFilter{Project: "b", Policy: "test", Limit: 100}, pick(func(r record.Request) bool { return r.Project == "b" && r.Policy == "test" })},
		{"projects", record.RequestFilter{Projects: []string{"b", "zzz"}, Limit: 100}, pick(func(r record.Request) bool { return r.Project == "b" })},
		{"no projects", record.RequestFilter{Projects: []string{}, Limit: 100}, nil},
		{"one project listed", record.RequestFilter{Projects: []string{"a"}, Limit: 100}, pick(func(r record.Request) bool { return r.Project == "a" })},
		{"projects merged", record.RequestFilter{Projects: []string{"a", "b"}, Limit: 100}, ids(all)},
		{"projects merged, limit", record.RequestFilter{Projects: []string{"b", "a"}, Limit: 5}, ids(all[:5])},
		{"projects merged, page", record.RequestFilter{Projects: []string{"a", "zzz", "b"}, Limit: 5, Before: all[4].ID}, ids(all[5:10])},
		{"projects merged, status", record.RequestFilter{Projects: []string{"a", "b"}, Status: record.StatusSigning, Limit: 3}, pick(func(r record.Request) bool { return r.Status == record.StatusSigning })[:3]},
		{"projects merged, policy", record.RequestFilter{Projects: []string{"a", "b"}, Policy: "test", Limit: 100}, pick(func(r record.Request) bool { return r.Policy == "test" })},
		{"projects merged, since", record.RequestFilter{Projects: []string{"a", "b"}, Since: base.Add(9 * time.Minute), Limit: 100}, ids(all[:3])},
		{"project within projects", record.RequestFilter{Project: "a", Projects: []string{"a", "b"}, Limit: 100}, pick(func(r record.Request) bool { return r.Project == "a" })},
		{"since", record.RequestFilter{Since: base.Add(10 * time.Minute), Limit: 100}, ids(all[:2])},
		{"combined", record.RequestFilter{Project: "a", Status: record.StatusAwaitingApproval, Limit: 2}, pick(func(r record.Request) bool {
			return r.Project == "a" && r.Status == record.StatusAwaitingApproval
		})[:2]},
	}
	for _, c := range cases {
		got, err := s.ListRequests(ctx, c.f)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		diff(t, c.name, ids(got), c.want)
	}
	if _, err := s.ListRequests(ctx, record.RequestFilter{}); err == nil {
		t.Error("ListRequests without a limit succeeded")
	}
	n, err := s.CountRequests(ctx, "a", base.Add(6*time.Minute))
	if err != nil || n != 3 {
		t.Errorf("CountRequests = %d, %v; want 3", n, err)
	}
}

func testCountRequestsPerDay(t *testing.T, o Opened) {
	ctx, s := t.Context(), o.Store
	mustUser(t, s, "alice")
	for _, p := range []string{"a", "b", "c"} {
		mustProject(t, s, project(p))
		mustPolicy(t, s, policy(p, "release", "alice"))
	}
	day := 24 * time.Hour
	for _, c := range []struct {
		project string
		at      time.Duration // after base
	}{
		{"a", -time.Microsecond}, // the day before: not counted
		{"a", 0},                 // the first instant of day 0
		{"b", day - time.Microsecond},
		{"a", day}, // the first instant of day 1
		{"c", day + time.Hour},
		{"a", 2*day + time.Minute},
		{"b", 2*day + 2*time.Minute},
		{"a", 3 * day}, // the end: not counted
	} {
		r := request(c.project, "release", record.StatusAwaitingApproval)
		r.Created = base.Add(c.at)
		mustRequest(t, s, r)
	}
	for _, c := range []struct {
		name     string
		projects []string
		days     int
		want     []int
	}{
		{"all", []string{"a", "b", "c"}, 3, []int{2, 2, 2}},
		{"one project", []string{"a"}, 3, []int{1, 1, 1}},
		{"two projects", []string{"b", "a"}, 3, []int{2, 1, 2}},
		{"one day", []string{"a", "b", "c"}, 1, []int{2}},
		{"more days than requests", []string{"a", "b", "c"}, 5, []int{2, 2, 2, 1, 0}},
		{"unknown project", []string{"nope"}, 2, []int{0, 0}},
		{"no projects", []string{}, 2, []int{0, 0}},
	} {
		got, err := s.CountRequestsPerDay(ctx, c.projects, base, c.days)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: CountRequestsPerDay = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	for _, days := range []int{0, -1, record.MaxCountDays + 1} {
		if got, err := s.CountRequestsPerDay(ctx, []string{"a"}, base, days); err == nil {
			t.Errorf("CountRequestsPerDay over %d days = %v, want an error", days, got)
		}
	}
}

func testUpdateRequest(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	mustPolicy(t, s, policy("app", "release", "alice"))
	r := mustRequest(t, s, request("app", "release", record.StatusAwaitingApproval))
	l.expect(t, "setup")
	later := base.Add(time.Hour)
	got, err := s.UpdateRequest(ctx, r.ID, func(q *record.Request) (record.Effects, error) {
		q.Status = record.StatusSigning
		q.Approvals = append(q.Approvals, record.Decision{User: "alice", Time: later, Comment: "ok"})
		q.Updated, q.Attempts, q.ClaimedBy, q.ClaimedUntil = later, 2, "worker", later.Add(time.Minute)
		q.Expires = later.Add(time.Hour)
		// The signing's progress.
		q.Started, q.Done = later, []record.Format{record.FormatDCT}
		q.Signed = []record.SignedRole{{Role: "targets/releases", Version: 2, SHA256: fmt.Sprintf("%064x", 2)}}
		q.Cosign = []record.CosignSignature{{Digest: q.Images[0].Digest, Form: audit.CosignBundle, Ref: "sha256:" + fmt.Sprintf("%064x", 3), KeyID: "k"}}
		// What never changes:
		q.Project, q.Images, q.Origin, q.Submitter, q.RunKey = "x", nil, nil, "mallory", "k"
		return record.Effects{Events: []audit.Event{ev(audit.RequestApprove, audit.Subject{RequestID: r.ID})}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := r
	want.Status, want.Approvals, want.Updated, want.Attempts, want.ClaimedBy, want.ClaimedUntil =
		record.StatusSigning, []record.Decision{{User: "alice", Time: later, Comment: "ok"}}, later, 2, "worker", later.Add(time.Minute)
	want.Expires = later.Add(time.Hour)
	want.Started, want.Done = later, []record.Format{record.FormatDCT}
	want.Signed = []record.SignedRole{{Role: "targets/releases", Version: 2, SHA256: fmt.Sprintf("%064x", 2)}}
	want.Cosign = []record.CosignSignature{{Digest: r.Images[0].Digest, Form: audit.CosignBundle, Ref: "sha256:" + fmt.Sprintf("%064x", 3), KeyID: "k"}}
	diff(t, "UpdateRequest", got, want)
	stored, _ := s.GetRequest(ctx, r.ID)
	diff(t, "UpdateRequest stored", stored, want)
	l.expect(t, "UpdateRequest", audit.RequestApprove)

	signed := []record.SignedRole{{Role: "targets/ci", Version: 3, SHA256: fmt.Sprintf("%064x", 1)}}
	if _, err := s.UpdateRequest(ctx, r.ID, func(q *record.Request) (record.Effects, error) {
		q.Status, q.Signed, q.ClaimedBy, q.ClaimedUntil = record.StatusSigned, signed, "", time.Time{}
		q.Denials, q.Reason = []record.Decision{{User: "bob", Time: later}}, "why"
		return record.Effects{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	final, _ := s.GetRequest(ctx, r.ID)
	if final.Status != record.StatusSigned || !reflect.DeepEqual(final.Signed, signed) || !final.ClaimedUntil.IsZero() || final.ClaimedBy != "" ||
		len(final.Denials) != 1 || final.Reason != "why" {
		t.Errorf("signed request = %+v", final)
	}
	if _, err := s.UpdateRequest(ctx, r.ID, func(q *record.Request) (record.Effects, error) {
		q.Status = record.StatusFailed
		return record.Effects{Events: []audit.Event{ev(audit.RequestFail, audit.Subject{RequestID: r.ID})}}, nil
	}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("changing a final status = %v, want ErrConflict", err)
	}
	if _, err := s.UpdateRequest(ctx, r.ID, func(q *record.Request) (record.Effects, error) {
		q.Status = "bogus"
		return record.Effects{}, nil
	}); err == nil {
		t.Error("an unknown status was stored")
	}
	l.expect(t, "refused updates")
	if _, err := s.UpdateRequest(ctx, "nope", func(*record.Request) (record.Effects, error) { return record.Effects{}, nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateRequest(unknown) = %v", err)
	}
}

func testConcurrentUpdates(t *testing.T, o Opened) {
	ctx, s := t.Context(), o.Store
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	mustPolicy(t, s, policy("app", "release", "alice"))
	r := mustRequest(t, s, request("app", "release", record.StatusAwaitingApproval))
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.UpdateRequest(ctx, r.ID, func(q *record.Request) (record.Effects, error) {
				q.Approvals = append(q.Approvals, record.Decision{User: fmt.Sprintf("u%02d", i), Time: base})
				return record.Effects{Events: []audit.Event{ev(audit.RequestApprove, audit.Subject{RequestID: r.ID})}}, nil
			})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got, _ := s.GetRequest(ctx, r.ID)
	if len(got.Approvals) != n {
		t.Errorf("%d approvals stored after %d concurrent updates: updates were lost", len(got.Approvals), n)
	}
	all, _ := o.Events(ctx)
	if len(all) != n {
		t.Errorf("%d events for %d updates", len(all), n)
	}
}

func testClaimSigning(t *testing.T, o Opened) {
	ctx, s := t.Context(), o.Store
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	mustPolicy(t, s, policy("app", "release", "alice"))
	waiting := mustRequest(t, s, request("app", "release", record.StatusAwaitingApproval))
	a := mustRequest(t, s, request("app", "release", record.StatusSigning))
	b := mustRequest(t, s, request("app", "release", record.StatusSigning))
	c := mustRequest(t, s, request("app", "release", record.StatusSigning))
	got, err := s.ClaimSigning(ctx, "w1", base, time.Minute, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID || got[0].ClaimedBy != "w1" || !got[0].ClaimedUntil.Equal(base.Add(time.Minute)) {
		t.Fatalf("first claim = %+v", got)
	}
	got, _ = s.ClaimSigning(ctx, "w2", base.Add(time.Second), time.Minute, 10)
	if len(got) != 1 || got[0].ID != c.ID {
		t.Fatalf("second claim = %+v, want only %s", got, c.ID)
	}
	if got, _ := s.ClaimSigning(ctx, "w3", base.Add(30*time.Second), time.Minute, 10); len(got) != 0 {
		t.Errorf("claims while all are leased: %+v", got)
	}
	// b is finished; a's lease expires and another worker takes it.
	if _, err := s.UpdateRequest(ctx, b.ID, func(r *record.Request) (record.Effects, error) {
		r.Status, r.ClaimedBy, r.ClaimedUntil = record.StatusSigned, "", time.Time{}
		return record.Effects{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	got, _ = s.ClaimSigning(ctx, "w3", base.Add(time.Minute), time.Minute, 10)
	if len(got) != 1 || got[0].ID != a.ID || got[0].ClaimedBy != "w3" {
		t.Errorf("claim after expiry = %+v, want %s", got, a.ID)
	}
	if r, _ := s.GetRequest(ctx, waiting.ID); r.ClaimedBy != "" {
		t.Errorf("a request awaiting approval was claimed: %+v", r)
	}
	if _, err := s.ClaimSigning(ctx, "", base, time.Minute, 1); err == nil {
		t.Error("a claim without a holder succeeded")
	}
}

func testConcurrentClaims(t *testing.T, o Opened) {
	ctx, s := t.Context(), o.Store
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	mustPolicy(t, s, policy("app", "release", "alice"))
	const n = 30
	for range n {
		mustRequest(t, s, request("app", "release", record.StatusSigning))
	}
	var (
		mu      sync.Mutex
		claimed = map[string]string{}
		wg      sync.WaitGroup
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			holder := fmt.Sprintf("w%d", w)
			for {
				got, err := s.ClaimSigning(ctx, holder, base, time.Hour, 3)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, r := range got {
					if prev, dup := claimed[r.ID]; dup {
						t.Errorf("%s claimed by %s and %s", r.ID, prev, holder)
					}
					claimed[r.ID] = holder
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != n {
		t.Errorf("%d of %d requests claimed", len(claimed), n)
	}
}

func testHousekeeping(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	mustPolicy(t, s, policy("app", "release", "alice"))
	due := request("app", "release", record.StatusAwaitingApproval)
	due.Expires = base.Add(time.Hour)
	notDue := request("app", "release", record.StatusAwaitingApproval)
	notDue.Expires = base.Add(3 * time.Hour)
	signing := request("app", "release", record.StatusSigning)
	signing.Expires = base
	for _, r := range []record.Request{due, notDue, signing} {
		mustRequest(t, s, r)
	}
	ids, err := s.DueRequests(ctx, base.Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "DueRequests", ids, []string{due.ID})
	old := request("app", "release", record.StatusAwaitingApproval)
	mustRequest(t, s, old)
	for id, at := range map[string]time.Time{old.ID: base.Add(time.Hour), due.ID: base.Add(5 * time.Hour)} {
		if _, err := s.UpdateRequest(ctx, id, func(r *record.Request) (record.Effects, error) {
			r.Status, r.Updated = record.StatusExpired, at
			return record.Effects{}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	l.expect(t, "setup")
	ids, err = s.FinishedBefore(ctx, base.Add(2*time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "FinishedBefore", ids, []string{old.ID})
	if err := s.DeleteRequest(ctx, notDue.ID, []audit.Event{ev(audit.RequestPurge, audit.Subject{RequestID: notDue.ID})}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("DeleteRequest(pending) = %v, want ErrConflict", err)
	}
	l.expect(t, "refused deletion")
	if err := s.DeleteRequest(ctx, old.ID, []audit.Event{ev(audit.RequestPurge, audit.Subject{RequestID: old.ID})}); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "DeleteRequest", audit.RequestPurge)
	if _, err := s.GetRequest(ctx, old.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted request: %v", err)
	}
	if err := s.DeleteRequest(ctx, old.ID, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteRequest twice = %v", err)
	}
}

func delivery(id, requestID, kind, target string) record.Delivery {
	return record.Delivery{ID: id, RequestID: requestID, Kind: kind, Target: target,
		Notification: []byte(`{"event":"signed","request_id":"` + requestID + `"}`), State: record.DeliveryPending,
		NextAttempt: base, Created: base, Updated: base}
}

func testOutbox(t *testing.T, o Opened) {
	ctx, s := t.Context(), o.Store
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	mustPolicy(t, s, policy("app", "release", "alice"))
	r := request("app", "release", record.StatusAwaitingApproval)
	if _, _, err := s.CreateRequest(ctx, r, record.Effects{Deliveries: []record.Delivery{delivery("d1", r.ID, "email", "alice@example.com")}}); err != nil {
		t.Fatal(err)
	}
	// A refused change queues nothing.
	boom := errors.New("boom")
	if _, err := s.UpdateRequest(ctx, r.ID, func(q *record.Request) (record.Effects, error) {
		q.Status = record.StatusDenied
		return record.Effects{Deliveries: []record.Delivery{delivery("dx", r.ID, "webhook", "app/release")}}, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("UpdateRequest = %v", err)
	}
	if _, err := s.UpdateRequest(ctx, r.ID, func(q *record.Request) (record.Effects, error) {
		q.Status = record.StatusDenied
		d2 := delivery("d2", r.ID, "webhook", "app/release")
		d2.NextAttempt = base.Add(time.Minute)
		return record.Effects{Deliveries: []record.Delivery{d2, delivery("d3", r.ID, "email", "bob@example.com")}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListDeliveries(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	diff(t, "ListDeliveries", ids, []string{"d1", "d2", "d3"})
	diff(t, "a queued delivery", list[0], delivery("d1", r.ID, "email", "alice@example.com"))

	got, err := s.ClaimDeliveries(ctx, base, time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	ids = nil
	for _, d := range got {
		ids = append(ids, d.ID)
		if !d.NextAttempt.Equal(base.Add(time.Minute)) {
			t.Errorf("claimed %s: next attempt %v, want the lease's end", d.ID, d.NextAttempt)
		}
	}
	diff(t, "first claim (due ones)", ids, []string{"d1", "d3"})
	if again, _ := s.ClaimDeliveries(ctx, base.Add(30*time.Second), time.Minute, 10); len(again) != 0 {
		t.Errorf("claimed during the lease: %+v", again)
	}
	at := base.Add(40 * time.Second)
	if err := s.RecordDelivery(ctx, "d1", record.DeliveryDelivered, 1, time.Time{}, "", at); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDelivery(ctx, "d3", record.DeliveryPending, 1, base.Add(10*time.Minute), "421 try later", at); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDelivery(ctx, "nope", record.DeliveryFailed, 1, time.Time{}, "x", at); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RecordDelivery(unknown) = %v", err)
	}
	if err := s.RecordDelivery(ctx, "d2", "bogus", 1, time.Time{}, "x", at); err == nil {
		t.Error("RecordDelivery(bogus state) succeeded")
	}
	got, _ = s.ClaimDeliveries(ctx, base.Add(2*time.Minute), time.Minute, 10)
	if len(got) != 1 || got[0].ID != "d2" {
		t.Errorf("claim at +2m = %+v, want d2 only", got)
	}
	list, _ = s.ListDeliveries(ctx, r.ID)
	for _, d := range list {
		switch d.ID {
		case "d1":
			if d.State != record.DeliveryDelivered || d.Attempts != 1 || !d.Updated.Equal(at) {
				t.Errorf("d1 = %+v", d)
			}
		case "d3":
			if d.State != record.DeliveryPending || d.LastError != "421 try later" || !d.NextAttempt.Equal(base.Add(10*time.Minute)) {
				t.Errorf("d3 = %+v", d)
			}
		}
	}
	if err := s.RecordDelivery(ctx, "d2", record.DeliveryFailed, 8, time.Time{}, "gone", at); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ClaimDeliveries(ctx, base.Add(time.Hour), time.Minute, 10); len(got) != 1 || got[0].ID != "d3" {
		t.Errorf("claim after d2 failed = %+v, want d3 only", got)
	}
}

func testCommit(t *testing.T, o Opened) {
	ctx, l := t.Context(), &eventLog{o: o}
	events := []audit.Event{ev(audit.OriginRefuse, audit.Subject{Project: "app", Policy: "release"}), ev(audit.OriginRefuse, audit.Subject{Project: "app", Policy: "test"})}
	if err := o.Store.Commit(ctx, record.Effects{Events: events, Deliveries: []record.Delivery{delivery("d1", "r1", "email", "a@example.com")}}); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "Commit", audit.OriginRefuse, audit.OriginRefuse)
	if d, err := o.Store.GetDelivery(ctx, "d1"); err != nil || d.Target != "a@example.com" {
		t.Errorf("GetDelivery = %+v, %v", d, err)
	}
	bad := []audit.Event{ev(audit.OriginRefuse, audit.Subject{Project: "app", Policy: "x"}), {Type: "bogus"}}
	if err := o.Store.Commit(ctx, record.Effects{Events: bad, Deliveries: []record.Delivery{delivery("d2", "r1", "email", "b@example.com")}}); err == nil {
		t.Error("Commit(an invalid event) succeeded")
	}
	l.expect(t, "Commit with an invalid event (all or nothing)")
	if _, err := o.Store.GetDelivery(ctx, "d2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the delivery of a failed commit: %v", err)
	}
}

func testConcurrentDeliveryClaims(t *testing.T, o Opened) {
	ctx, s := t.Context(), o.Store
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	mustPolicy(t, s, policy("app", "release", "alice"))
	const n = 30
	for i := range n {
		r := request("app", "release", record.StatusAwaitingApproval)
		if _, _, err := s.CreateRequest(ctx, r, record.Effects{Deliveries: []record.Delivery{delivery(fmt.Sprintf("d%02d", i), r.ID, "email", "a@example.com")}}); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		wg      sync.WaitGroup
	)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := s.ClaimDeliveries(ctx, base, time.Hour, 4)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, d := range got {
					claimed[d.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(claimed) != n {
		t.Errorf("%d of %d deliveries claimed", len(claimed), n)
	}
	for id, c := range claimed {
		if c != 1 {
			t.Errorf("%s claimed %d times", id, c)
		}
	}
}

func testUpdateRequests(t *testing.T, o Opened) {
	ctx, s, l := t.Context(), o.Store, &eventLog{o: o}
	mustUser(t, s, "alice")
	mustProject(t, s, project("app"))
	mustPolicy(t, s, policy("app", "release", "alice"))
	a := mustRequest(t, s, request("app", "release", record.StatusSigning))
	b := mustRequest(t, s, request("app", "release", record.StatusSigning))
	c := mustRequest(t, s, request("app", "release", record.StatusSigning))
	if _, err := s.UpdateRequest(ctx, b.ID, func(r *record.Request) (record.Effects, error) {
		r.Status = record.StatusSigned
		return record.Effects{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	l.expect(t, "setup")
	later := base.Add(time.Hour)
	got, err := s.UpdateRequests(ctx, []string{a.ID, b.ID, c.ID}, func(r *record.Request) (record.Effects, error) {
		if r.Status != record.StatusSigning {
			return record.Effects{}, record.ErrUnchanged
		}
		r.Status, r.Updated = record.StatusSigned, later
		return record.Effects{Events: []audit.Event{ev(audit.RequestSign, audit.Subject{RequestID: r.ID, GUN: "g", Tag: "t", Digest: "d"})}}, nil
	})
	if err == nil {
		t.Fatalf("an invalid event (a sign event without roles) committed: %+v", got)
	}
	l.expect(t, "UpdateRequests with an invalid event (rolled back)")
	if r, _ := s.GetRequest(ctx, a.ID); r.Status != record.StatusSigning {
		t.Errorf("a rolled-back batch changed %s: %s", a.ID, r.Status)
	}
	got, err = s.UpdateRequests(ctx, []string{a.ID, b.ID, c.ID}, func(r *record.Request) (record.Effects, error) {
		if r.Status != record.StatusSigning {
			return record.Effects{}, record.ErrUnchanged
		}
		r.Status, r.Updated = record.StatusSigned, later
		return record.Effects{Events: []audit.Event{ev(audit.RequestApprove, audit.Subject{RequestID: r.ID})}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != a.ID || got[0].Status != record.StatusSigned || !got[0].Updated.Equal(later) ||
		got[1].ID != b.ID || !got[1].Updated.Equal(base) || got[2].Status != record.StatusSigned {
		t.Errorf("UpdateRequests = %+v", got)
	}
	l.expect(t, "UpdateRequests", audit.RequestApprove, audit.RequestApprove)
	if _, err := s.UpdateRequests(ctx, []string{a.ID, "nope"}, func(r *record.Request) (record.Effects, error) {
		r.Attempts = 9
		return record.Effects{}, nil
	}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UpdateRequests with an unknown ID = %v", err)
	}
	if r, _ := s.GetRequest(ctx, a.ID); r.Attempts == 9 {
		t.Error("a batch with an unknown ID was not rolled back")
	}
}
