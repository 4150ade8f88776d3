package oidc_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/oidc"
	"github.com/signet-trust/signet/internal/oidc/oidctest"
)

const aud = "https://signet.test"

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	clk *clock
	iss *oidctest.Issuer
	v   *oidc.Verifier
}

func newEnv(t *testing.T, opts ...oidctest.Option) *env {
	t.Helper()
	clk := newClock()
	iss := oidctest.Start(t, append([]oidctest.Option{oidctest.WithClock(clk.Now)}, opts...)...)
	v := oidc.NewVerifier(oidc.Config{Client: iss.Client(), Now: clk.Now})
	return &env{clk: clk, iss: iss, v: v}
}

func (e *env) githubRule(claims map[string]string) oidc.Rule {
	return oidc.Rule{Issuer: e.iss.URL, Audience: aud, Claims: claims}
}

func mainRule(e *env) oidc.Rule {
	return e.githubRule(map[string]string{"repository": "org/repo", "ref": "refs/heads/main"})
}

func TestVerifyGood(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	claims := oidctest.GitHubClaims(aud, "org/repo", "refs/heads/main", "push", "release.yml")
	for name, opts := range map[string][]oidctest.MintOption{
		"ES256":        nil,
		"RS256":        {oidctest.RS256()},
		"ES256 no kid": {oidctest.KeyID("")},
		"RS256 no kid": {oidctest.RS256(), oidctest.KeyID("")},
	} {
		id, err := e.v.Verify(context.Background(), e.iss.Mint(claims, opts...), mainRule(e))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if id.Issuer != e.iss.URL || id.Subject != "repo:org/repo:ref:refs/heads/main" || id.Audience[0] != aud {
			t.Errorf("%s: identity %+v", name, id)
		}
		if sha, ok := id.Claim("sha"); !ok || sha != "0123456789abcdef0123456789abcdef01234567" {
			t.Errorf("%s: sha claim %q %v", name, sha, ok)
		}
		if !id.Expiry.Equal(e.clk.Now().Add(5*time.Minute).Truncate(time.Second)) || !id.IssuedAt.Equal(e.clk.Now()) {
			t.Errorf("%s: times %v %v", name, id.IssuedAt, id.Expiry)
		}
	}
	// Audience as an array.
	c2 := oidctest.GitHubClaims(aud, "org/repo", "refs/heads/main", "push", "release.yml")
	c2["aud"] = []string{"other", aud}
	if _, err := e.v.Verify(context.Background(), e.iss.Mint(c2), mainRule(e)); err != nil {
		t.Errorf("aud array: %v", err)
	}
	if d, j := e.iss.Fetches(); d != 1 || j != 1 {
		t.Errorf("fetches: discovery %d, jwks %d; want one each (keys cached)", d, j)
	}
}

func TestVerifyIssuerWithPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, oidctest.WithPath("/gitlab"))
	if !strings.HasSuffix(e.iss.URL, "/gitlab") {
		t.Fatalf("issuer %s", e.iss.URL)
	}
	tok := e.iss.Mint(oidctest.GitLabClaims(aud, "group/project", "main", "branch", "push", true))
	rule := oidc.Rule{Issuer: e.iss.URL, Audience: aud, Claims: map[string]string{"project_path": "group/project"}}
	if _, err := e.v.Verify(context.Background(), tok, rule); err != nil {
		t.Fatal(err)
	}
}

// TestInvalidTokens: every way a token is not valid is a TokenError naming
// the failed check (401), never a mismatch or an outage; those that fail
// before the key lookup fetch nothing.
func TestInvalidTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := e.clk.Now()
	good := oidctest.GitHubClaims(aud, "org/repo", "refs/heads/main", "push", "release.yml")
	with := func(k string, v any) map[string]any {
		c := oidctest.GitHubClaims(aud, "org/repo", "refs/heads/main", "push", "release.yml")
		c[k] = v
		return c
	}
	goodTok := e.iss.Mint(good)
	parts := strings.Split(goodTok, ".")
	otherPayload := strings.Split(e.iss.Mint(with("repository", "org/other")), ".")[1]
	esKid, _ := e.iss.KeyIDs()

	cases := []struct {
		name, tok, check, msg string
		fetches               bool // reaches the key lookup
	}{
		{"signed by an unpublished key", e.iss.Mint(good, oidctest.UnpublishedKey()), oidc.CheckKey, "which the issuer does not publish", true},
		{"alg none", e.iss.Mint(good, oidctest.AlgNone()), oidc.CheckAlgorithm, `algorithm "none" is not accepted`, false},
		{"HS256 with the public key as secret", e.iss.Mint(good, oidctest.HS256WithPublicKey()), oidc.CheckAlgorithm, `algorithm "HS256" is not accepted`, false},
		{"expired", e.iss.Mint(with("exp", now.Add(-time.Minute).Unix())), oidc.CheckExpiry, "the token expired at 2026-12-06T11:59:00Z", false},
		{"not yet valid", e.iss.Mint(with("nbf", now.Add(2*time.Minute).Unix())), oidc.CheckNotBefore, "not valid before 2026-12-06T12:02:00Z", false},
		{"issued in the future", e.iss.Mint(with("iat", now.Add(2*time.Minute).Unix())), oidc.CheckIssuedAt, "issued in the future", false},
		{"wrong audience", e.iss.Mint(with("aud", "https://other.example")), oidc.CheckAudience, `meant for ["https://other.example"], not for "https://signet.test"`, false},
		{"no audience", e.iss.Mint(with("aud", oidctest.Omit)), oidc.CheckAudience, "no aud", false},
		{"wrong issuer", e.iss.Mint(with("iss", "https://token.actions.githubusercontent.com")), oidc.CheckIssuer, `issued by "https://token.actions.githubusercontent.com"`, false},
		{"no issuer", e.iss.Mint(with("iss", oidctest.Omit)), oidc.CheckIssuer, "no iss", false},
		{"no subject", e.iss.Mint(with("sub", oidctest.Omit)), oidc.CheckSubject, "no sub", false},
		{"no exp", e.iss.Mint(with("exp", oidctest.Omit)), oidc.CheckExpiry, "no numeric exp", false},
		{"exp a string", e.iss.Mint(with("exp", "tomorrow")), oidc.CheckExpiry, "no numeric exp", false},
		{"no iat", e.iss.Mint(with("iat", oidctest.Omit)), oidc.CheckIssuedAt, "no numeric iat", false},
		{"payload swapped", parts[0] + "." + otherPayload + "." + parts[2], oidc.CheckSignature, "signature does not verify", true},
		{"signature cut", parts[0] + "." + parts[1] + "." + parts[2][:20], oidc.CheckSignature, "signature does not verify", true},
		{"no signature", parts[0] + "." + parts[1] + ".", oidc.CheckSignature, "no signature", false},
		{"ES key named for RS256", e.iss.Mint(good, oidctest.RS256(), oidctest.KeyID(esKid)), oidc.CheckKey, "for another use or algorithm than RS256", true},
		{"crit header", e.iss.Mint(good, oidctest.Header("crit", []string{"b64"})), oidc.CheckFormat, "critical extensions", false},
		{"empty", "", oidc.CheckFormat, "no token", false},
		{"one part", "abc", oidc.CheckFormat, "1 parts, want 3", false},
		{"four parts", goodTok + ".x", oidc.CheckFormat, "4 parts, want 3", false},
		{"not base64url", "a*b.c.d", oidc.CheckFormat, "not base64url", false},
		{"header not JSON", "bm90IGpzb24." + parts[1] + "." + parts[2], oidc.CheckFormat, "header is not a JSON object", false},
		{"payload an array", parts[0] + ".WzEsMl0." + parts[2], oidc.CheckFormat, "payload is not a JSON object", false},
		{"huge", parts[0] + "." + strings.Repeat("A", oidc.MaxTokenBytes) + "." + parts[2], oidc.CheckSize, "more than the 16384 accepted", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fresh := oidc.NewVerifier(oidc.Config{Client: e.iss.Client(), Now: e.clk.Now})
			d0, _ := e.iss.Fetches()
			_, err := fresh.Verify(context.Background(), c.tok, mainRule(e))
			var te *oidc.TokenError
			if !errors.As(err, &te) || !errors.Is(err, oidc.ErrInvalidToken) {
				t.Fatalf("err = %v (%T), want a TokenError", err, err)
			}
			if errors.Is(err, oidc.ErrClaimMismatch) || errors.Is(err, oidc.ErrIssuerUnavailable) {
				t.Errorf("err %v is also another class", err)
			}
			if te.Check != c.check || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %q (check %s), want check %s and %q", err, te.Check, c.check, c.msg)
			}
			if d1, _ := e.iss.Fetches(); (d1 > d0) != c.fetches {
				t.Errorf("fetched the issuer: %v, want %v", d1 > d0, c.fetches)
			}
		})
	}
}

func TestLeeway(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	now := e.clk.Now()
	c := oidctest.GitHubClaims(aud, "org/repo", "refs/heads/main", "push", "release.yml")
	c["exp"] = now.Add(-oidc.DefaultLeeway + time.Second).Unix() // expired, within leeway
	c["nbf"] = now.Add(oidc.DefaultLeeway - time.Second).Unix()  // early, within leeway
	if _, err := e.v.Verify(context.Background(), e.iss.Mint(c), mainRule(e)); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
	c["exp"] = now.Add(-oidc.DefaultLeeway - time.Second).Unix()
	if _, err := e.v.Verify(context.Background(), e.iss.Mint(c), mainRule(e)); !errors.Is(err, oidc.ErrInvalidToken) {
		t.Fatalf("past leeway: %v", err)
	}
}

// TestClaimMatching: valid tokens whose claims do not match the rule are
// MismatchErrors naming the claim (403); matching ones pass.
func TestClaimMatching(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	gh := func(repo, ref, event, wf string) map[string]any {
		return oidctest.GitHubClaims(aud, repo, ref, event, wf)
	}
	gl := func(project, ref, refType, source string, protected bool) map[string]any {
		return oidctest.GitLabClaims(aud, project, ref, refType, source, protected)
	}
	release := map[string]string{
		"repository":   "org/repo",
		"ref":          "refs/tags/v*",
		"workflow_ref": "org/repo/.github/workflows/release.yml@refs/tags/v*",
		"event_name":   "push",
	}
	onMain := map[string]string{
		"repository":   "org/repo",
		"ref":          "refs/heads/main",
		"workflow_ref": "org/repo/.github/workflows/release.yml@refs/heads/main",
		"event_name":   "push",
	}
	gitlab := map[string]string{
		"project_path":    "group/project",
		"namespace_path":  "group",
		"ref":             "main",
		"ref_type":        "branch",
		"ref_protected":   "true",
		"pipeline_source": "push",
	}
	cases := []struct {
		name   string
		rule   map[string]string
		claims map[string]any
		claim  string // "" = matches
		msg    string
	}{
		{"github main", onMain, gh("org/repo", "refs/heads/main", "push", "release.yml"), "", ""},
		{"github other branch", onMain, gh("org/repo", "refs/heads/dev", "push", "release.yml"), "ref", `"ref" claim is "refs/heads/dev", which does not match the origin rule's "refs/heads/main"`},
		{"github other repository", onMain, gh("org/other", "refs/heads/main", "push", "release.yml"), "repository", `"repository" claim is "org/other"`},
		{"github repository prefix", onMain, gh("org/repo-fork", "refs/heads/main", "push", "release.yml"), "repository", ""},
		{"github pull request", onMain, gh("org/repo", "refs/heads/main", "pull_request", "release.yml"), "event_name", `"event_name" claim is "pull_request"`},
		{"github other workflow", onMain, gh("org/repo", "refs/heads/main", "push", "evil.yml"), "workflow_ref", "evil.yml"},
		{"github tag", release, gh("org/repo", "refs/tags/v1.2.3", "push", "release.yml"), "", ""},
		{"github tag under a slash", release, gh("org/repo", "refs/tags/v1/x", "push", "release.yml"), "ref", ""},
		{"github branch named like a tag", release, gh("org/repo", "refs/heads/v1", "push", "release.yml"), "ref", ""},
		{"github tag rule on main", release, gh("org/repo", "refs/heads/main", "push", "release.yml"), "ref", ""},
		{"github sha pinned", map[string]string{"repository": "org/repo", "sha": "0123456789abcdef0123456789abcdef01234567"}, gh("org/repo", "refs/heads/main", "push", "release.yml"), "", ""},
		{"github org glob", map[string]string{"repository": "org/*", "ref": "refs/heads/release/**"}, gh("org/anything", "refs/heads/release/2026/12", "push", "release.yml"), "", ""},
		{"github org glob other org", map[string]string{"repository": "org/*"}, gh("evil/org", "refs/heads/main", "push", "release.yml"), "repository", ""},
		{"missing claim", map[string]string{"repository": "org/repo", "environment": "production"}, gh("org/repo", "refs/heads/main", "push", "release.yml"), "environment", `the token has no "environment" claim, which the origin rule requires to match "production"`},
		{"gitlab main", gitlab, gl("group/project", "main", "branch", "push", true), "", ""},
		{"gitlab unprotected", gitlab, gl("group/project", "main", "branch", "push", false), "ref_protected", `"ref_protected" claim is "false"`},
		{"gitlab tag named main", gitlab, gl("group/project", "main", "tag", "push", true), "ref_type", ""},
		{"gitlab merge request", gitlab, gl("group/project", "main", "branch", "merge_request_event", true), "pipeline_source", ""},
		{"gitlab other project", gitlab, gl("group/other", "main", "branch", "push", true), "project_path", ""},
		{"gitlab subgroup", map[string]string{"namespace_path": "group/**", "ref_type": "tag", "ref": "v*"}, gl("group/sub/project", "v2.0.0", "tag", "push", true), "", ""},
		{"gitlab other namespace", map[string]string{"namespace_path": "group/**"}, gl("other/sub/project", "main", "branch", "push", true), "namespace_path", ""},
		{"number claim", map[string]string{"project_path": "group/project", "runner_id": "1"}, gl("group/project", "main", "branch", "push", true), "", ""},
		{"boolean claim", map[string]string{"project_path": "group/project", "ref_protected": "true"}, with(gl("group/project", "main", "branch", "push", true), "ref_protected", true), "", ""},
		{"array claim", map[string]string{"project_path": "group/project", "groups": "admins"}, with(gl("group/project", "main", "branch", "push", true), "groups", []string{"admins"}), "groups", "is not a string, number or boolean"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := e.v.Verify(context.Background(), e.iss.Mint(c.claims), e.githubRule(c.rule))
			if c.claim == "" {
				if err != nil {
					t.Fatalf("want a match: %v", err)
				}
				if id == nil || id.Subject == "" {
					t.Fatalf("identity %+v", id)
				}
				return
			}
			var me *oidc.MismatchError
			if !errors.As(err, &me) || !errors.Is(err, oidc.ErrClaimMismatch) || errors.Is(err, oidc.ErrInvalidToken) {
				t.Fatalf("err = %v (%T), want only a MismatchError", err, err)
			}
			if id != nil {
				t.Errorf("identity returned with an error")
			}
			if me.Claim != c.claim || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("err = %q (claim %s), want claim %s and %q", err, me.Claim, c.claim, c.msg)
			}
		})
	}
}

func with(m map[string]any, k string, v any) map[string]any {
	m[k] = v
	return m
}

// TestKeyRefresh: an unknown kid refetches the keys, at most once per
// MinRefresh; rotated-out keys stop verifying once the cache expires.
func TestKeyRefresh(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	claims := oidctest.GitHubClaims(aud, "org/repo", "refs/heads/main", "push", "release.yml")
	oldTok := e.iss.Mint(claims)
	if _, err := e.v.Verify(ctx, oldTok, mainRule(e)); err != nil {
		t.Fatal(err)
	}
	wantFetches := func(n int) {
		t.Helper()
		if d, j := e.iss.Fetches(); d != n || j != n {
			t.Fatalf("fetches: discovery %d, jwks %d; want %d", d, j, n)
		}
	}
	wantFetches(1)

	// The issuer rotates; a token under the new kid makes the verifier
	// fetch again once MinRefresh has passed since the last fetch.
	e.iss.Rotate(true)
	e.clk.Advance(oidc.DefaultMinRefresh)
	if _, err := e.v.Verify(ctx, e.iss.Mint(claims), mainRule(e)); err != nil {
		t.Fatalf("new key: %v", err)
	}
	wantFetches(2)
	if _, err := e.v.Verify(ctx, e.iss.Mint(claims, oidctest.RS256()), mainRule(e)); err != nil {
		t.Fatalf("new RSA key: %v", err)
	}
	wantFetches(2)

	// Random kids right after a fetch: refused without fetching.
	for i := range 50 {
		_, err := e.v.Verify(ctx, e.iss.Mint(claims, oidctest.KeyID(fmt.Sprintf("random-%d", i))), mainRule(e))
		var te *oidc.TokenError
		if !errors.As(err, &te) || te.Check != oidc.CheckKey || !strings.Contains(err.Error(), "does not publish (its keys were fetched 0s ago and are fetched at most every 30s)") {
			t.Fatalf("random kid: %v", err)
		}
	}
	wantFetches(2)

	// After MinRefresh one more fetch is allowed, and only one.
	e.clk.Advance(oidc.DefaultMinRefresh)
	for i := range 10 {
		_, err := e.v.Verify(ctx, e.iss.Mint(claims, oidctest.KeyID(fmt.Sprintf("again-%d", i))), mainRule(e))
		if !errors.Is(err, oidc.ErrInvalidToken) {
			t.Fatalf("random kid: %v", err)
		}
	}
	wantFetches(3)

	// A rotation right after that fetch: the new kid is refused until
	// MinRefresh has passed, then fetched.
	e.iss.Rotate(false)
	if _, err := e.v.Verify(ctx, e.iss.Mint(claims), mainRule(e)); !errors.Is(err, oidc.ErrInvalidToken) {
		t.Fatalf("a kid published after the last fetch, within MinRefresh: %v", err)
	}
	wantFetches(3)
	e.clk.Advance(oidc.DefaultMinRefresh)
	if _, err := e.v.Verify(ctx, e.iss.Mint(claims), mainRule(e)); err != nil {
		t.Fatalf("after MinRefresh: %v", err)
	}
	wantFetches(4)
	// Known keys are refetched after KeyTTL.
	e.clk.Advance(oidc.DefaultKeyTTL)
	if _, err := e.v.Verify(ctx, e.iss.Mint(claims), mainRule(e)); err != nil {
		t.Fatalf("after TTL: %v", err)
	}
	wantFetches(5)
}

// TestKeyWithdrawn: a key the issuer withdrew stops verifying when the
// cached keys expire.
func TestKeyWithdrawn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	claims := oidctest.GitHubClaims(aud, "org/repo", "refs/heads/main", "push", "release.yml")
	es, _ := e.iss.KeyIDs()
	if _, err := e.v.Verify(ctx, e.iss.Mint(claims), mainRule(e)); err != nil {
		t.Fatal(err)
	}
	e.iss.Rotate(false)
	// A token under the withdrawn key (still in the verifier's cache).
	e.clk.Advance(oidc.DefaultKeyTTL)
	tok := e.iss.Mint(claims, oidctest.KeyID(es))
	_, err := e.v.Verify(ctx, tok, mainRule(e))
	var te *oidc.TokenError
	if !errors.As(err, &te) || te.Check != oidc.CheckKey {
		t.Fatalf("withdrawn key after TTL: %v", err)
	}
}

// TestIssuerUnavailable: an issuer that cannot be reached is an outage
// (503 with a retry time), not a bad token, and is not hammered.
func TestIssuerUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	claims := oidctest.GitHubClaims(aud, "org/repo", "refs/heads/main", "push", "release.yml")
	wantUnavailable := func(t *testing.T, err error, msg string) *oidc.UnavailableError {
		t.Helper()
		var ue *oidc.UnavailableError
		if !errors.As(err, &ue) || !errors.Is(err, oidc.ErrIssuerUnavailable) || errors.Is(err, oidc.ErrInvalidToken) || errors.Is(err, oidc.ErrClaimMismatch) {
			t.Fatalf("err = %v (%T), want only an UnavailableError", err, err)
		}
		if !strings.Contains(err.Error(), msg) || ue.RetryAfter <= 0 || ue.RetryAfter > oidc.DefaultMinRefresh {
			t.Fatalf("err = %q, RetryAfter %s; want %q and a retry time", err, ue.RetryAfter, msg)
		}
		return ue
	}

	t.Run("503", func(t *testing.T) {
		e := newEnv(t)
		e.iss.SetDown(true)
		_, err := e.v.Verify(ctx, e.iss.Mint(claims), mainRule(e))
		wantUnavailable(t, err, "is unavailable: fetching its discovery document failed: GET "+e.iss.URL+"/.well-known/openid-configuration: HTTP 503")
		// Asked again at once: the last failure, no new fetch.
		e.clk.Advance(10 * time.Second)
		_, err = e.v.Verify(ctx, e.iss.Mint(claims), mainRule(e))
		if ue := wantUnavailable(t, err, "HTTP 503"); ue.RetryAfter != oidc.DefaultMinRefresh-10*time.Second {
			t.Errorf("RetryAfter %s", ue.RetryAfter)
		}
		if d, _ := e.iss.Fetches(); d != 1 {
			t.Errorf("discovery fetched %d times, want 1", d)
		}
		// Back up: served after MinRefresh.
		e.iss.SetDown(false)
		e.clk.Advance(oidc.DefaultMinRefresh)
		if _, err := e.v.Verify(ctx, e.iss.Mint(claims), mainRule(e)); err != nil {
			t.Fatal(err)
		}
		// Down again with fresh keys cached: known kids still verify,
		// unknown ones are an outage once MinRefresh has passed.
		e.iss.SetDown(true)
		if _, err := e.v.Verify(ctx, e.iss.Mint(claims), mainRule(e)); err != nil {
			t.Fatalf("cached keys: %v", err)
		}
		e.clk.Advance(oidc.DefaultMinRefresh)
		_, err = e.v.Verify(ctx, e.iss.Mint(claims, oidctest.KeyID("new-kid")), mainRule(e))
		wantUnavailable(t, err, "HTTP 503")
	})
	t.Run("closed", func(t *testing.T) {
		e := newEnv(t)
		tok := e.iss.Mint(claims)
		e.iss.Close()
		_, err := e.v.Verify(ctx, tok, mainRule(e))
		wantUnavailable(t, err, "fetching its discovery document failed")
	})
	t.Run("discovery names another issuer", func(t *testing.T) {
		e := newEnv(t)
		e.iss.SetDiscoveryIssuer("https://evil.example")
		_, err := e.v.Verify(ctx, e.iss.Mint(claims), mainRule(e))
		wantUnavailable(t, err, `its discovery document names the issuer "https://evil.example"`)
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		e := newEnv(t)
		v := oidc.NewVerifier(oidc.Config{Now: e.clk.Now}) // system roots only
		_, err := v.Verify(ctx, e.iss.Mint(claims), mainRule(e))
		wantUnavailable(t, err, "certificate")
	})
	t.Run("context canceled", func(t *testing.T) {
		e := newEnv(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := e.v.Verify(cctx, e.iss.Mint(claims), mainRule(e))
		if !errors.Is(err, oidc.ErrIssuerUnavailable) || !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		// The caller's cancellation does not hold back the next caller.
		if _, err := e.v.Verify(ctx, e.iss.Mint(claims), mainRule(e)); err != nil {
			t.Fatal(err)
		}
	})
}

// TestConcurrentFirstUse: many verifications at once fetch the keys once.
func TestConcurrentFirstUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	claims := oidctest.GitHubClaims(aud, "org/repo", "refs/heads/main", "push", "release.yml")
	tok := e.iss.Mint(claims)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := e.v.Verify(context.Background(), tok, mainRule(e))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if d, j := e.iss.Fetches(); d != 1 || j != 1 {
		t.Errorf("fetches %d/%d, want 1/1", d, j)
	}
}

func TestRuleValidate(t *testing.T) {
	t.Parallel()
	good := oidc.Rule{Issuer: "https://token.actions.githubusercontent.com", Audience: aud, Claims: map[string]string{"repository": "org/repo"}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		mut func(*oidc.Rule)
		msg string
	}{
		"http issuer":      {func(r *oidc.Rule) { r.Issuer = "http://127.0.0.1:8080" }, "is not an https URL"},
		"no issuer":        {func(r *oidc.Rule) { r.Issuer = "" }, "issuer is empty"},
		"issuer query":     {func(r *oidc.Rule) { r.Issuer = "https://x.example/?a=b" }, "without user, query or fragment"},
		"issuer user":      {func(r *oidc.Rule) { r.Issuer = "https://u@x.example" }, "without user, query or fragment"},
		"no audience":      {func(r *oidc.Rule) { r.Audience = " " }, "audience is empty"},
		"no claims":        {func(r *oidc.Rule) { r.Claims = nil }, "no claim to match"},
		"empty pattern":    {func(r *oidc.Rule) { r.Claims = map[string]string{"ref": ""} }, `claim "ref": empty pattern`},
		"lone backslash":   {func(r *oidc.Rule) { r.Claims = map[string]string{"ref": `main\`} }, "lone backslash"},
		"empty claim name": {func(r *oidc.Rule) { r.Claims = map[string]string{"": "x"} }, "empty claim name"},
		"long pattern":     {func(r *oidc.Rule) { r.Claims = map[string]string{"ref": strings.Repeat("a", oidc.MaxPatternLen+1)} }, "longer than 1024"},
	}
	for name, c := range cases {
		r := good
		r.Claims = map[string]string{"repository": "org/repo"}
		c.mut(&r)
		err := r.Validate()
		if err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %q", name, err, c.msg)
		}
		// Verify refuses the rule before looking at the token, with an
		// error of none of the token classes.
		_, verr := oidc.NewVerifier(oidc.Config{}).Verify(context.Background(), "x.y.z", r)
		if verr == nil || errors.Is(verr, oidc.ErrInvalidToken) || errors.Is(verr, oidc.ErrClaimMismatch) || errors.Is(verr, oidc.ErrIssuerUnavailable) {
			t.Errorf("%s: Verify: %v", name, verr)
		}
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	cases := []struct {
		pattern, value string
		want           bool
	}{
		{"refs/heads/main", "refs/heads/main", true},
		{"refs/heads/main", "refs/heads/main2", false},
		{"refs/heads/main", "refs/heads/mai", false},
		{"refs/tags/v*", "refs/tags/v1.2.3", true},
		{"refs/tags/v*", "refs/tags/v", true},
		{"refs/tags/v*", "refs/tags/v1/x", false},
		{"refs/tags/v*", "refs/heads/v1", false},
		{"refs/heads/release/**", "refs/heads/release/2026/12", true},
		{"refs/heads/release/**", "refs/heads/release/", true},
		{"refs/heads/release/**", "refs/heads/releasex", false},
		{"org/*", "org/repo", true},
		{"org/*", "org/repo/x", false},
		{"org/*", "org2/repo", false},
		{"*", "", true},
		{"*", "a/b", false},
		{"**", "a/b", true},
		{"v?.?", "v1.2", true},
		{"v?.?", "v1.23", false},
		{"a?b", "a/b", false},
		{`v\*`, "v*", true},
		{`v\*`, "v1", false},
		{`a\\b`, `a\b`, true},
		{`a\?`, "a?", true},
		{"[abc]", "[abc]", true},
		{"[abc]", "a", false},
		{"ü*", "über", true},
		{"?ber", "über", true},
		{"*.yml@refs/heads/main", "release.yml@refs/heads/main", true},
		{"org/repo/.github/workflows/*.yml@refs/tags/v*", "org/repo/.github/workflows/release.yml@refs/tags/v1", true},
		{"org/repo/.github/workflows/*.yml@refs/tags/v*", "org/repo/.github/workflows/x/release.yml@refs/tags/v1", false},
		{"***", "a/b", true},
		{"*a*a*a*a*a*b", strings.Repeat("a", 5000), false}, // no backtracking blow-up
	}
	for _, c := range cases {
		if got := oidc.Match(c.pattern, c.value); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.value, got, c.want)
		}
	}
	if oidc.Match(`bad\`, `bad\`) {
		t.Error("an invalid pattern matched")
	}
}

// TestSSLCertFile: the default client trusts the system roots as Go loads
// them, so SSL_CERT_FILE names the roots (in a child process, since the
// system pool is loaded once per process).
func TestSSLCertFile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tok := e.iss.Mint(oidctest.GitHubClaims(aud, "org/repo", "refs/heads/main", "push", "release.yml"))
	for _, c := range []struct {
		name, certFile, want string
	}{
		{"with the issuer's CA", e.iss.CAFile, "VERIFIED repo:org/repo:ref:refs/heads/main"},
		{"without it", filepath.Join(t.TempDir(), "empty.pem"), "UNAVAILABLE"},
	} {
		if c.certFile != e.iss.CAFile {
			if err := os.WriteFile(c.certFile, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestSSLCertFileChild$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+c.certFile, "SSL_CERT_DIR=/nonexistent",
			"OIDC_CHILD_ISSUER="+e.iss.URL, "OIDC_CHILD_TOKEN="+tok,
			"OIDC_CHILD_NOW="+e.clk.Now().Format(time.RFC3339))
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: child: %v\n%s", c.name, err, out)
		}
	}
}

// TestSSLCertFileChild is TestSSLCertFile's child process; run on its own it
// has nothing to do.
func TestSSLCertFileChild(t *testing.T) {
	issuer := os.Getenv("OIDC_CHILD_ISSUER")
	if issuer == "" {
		t.Skip("child process of TestSSLCertFile")
	}
	now, err := time.Parse(time.RFC3339, os.Getenv("OIDC_CHILD_NOW"))
	if err != nil {
		t.Fatal(err)
	}
	v := oidc.NewVerifier(oidc.Config{Now: func() time.Time { return now }})
	rule := oidc.Rule{Issuer: issuer, Audience: aud, Claims: map[string]string{"repository": "org/repo"}}
	id, err := v.Verify(context.Background(), os.Getenv("OIDC_CHILD_TOKEN"), rule)
	switch {
	case err == nil:
		fmt.Println("VERIFIED", id.Subject)
	case errors.Is(err, oidc.ErrIssuerUnavailable):
		fmt.Println("UNAVAILABLE", err)
	default:
		t.Fatal(err)
	}
}
