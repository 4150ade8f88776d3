package service_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/oidc"
	"github.com/signet-trust/signet/internal/oidc/oidctest"
	"github.com/signet-trust/signet/internal/servercmd"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// originEnv runs the stack with an OIDC issuer of its own over TLS and a
// policy "release" taking GitHub-style tokens of pushes to acme/app's
// main branch, one approval.
func originEnv(t *testing.T) (*env, *oidctest.Issuer) {
	is := oidctest.Start(t)
	v := oidc.NewVerifier(oidc.Config{Client: is.Client()})
	e := newEnv(t, envOptions{origins: servercmd.OriginVerifier(v)})
	e.user("alice")
	e.project("app", "org/app", "ci")
	if _, err := e.admin().CreatePolicy(context.Background(), "app", serviceapi.PolicySpec{Name: "release",
		Approvals: serviceapi.Approvals{Required: 1, Approvers: []string{"alice"}},
		Origin: &serviceapi.Origin{Issuer: is.URL, Audience: "signet", Claims: map[string]string{
			"repository": "acme/app", "ref": "refs/heads/main", "event_name": "push"}}}); err != nil {
		t.Fatal(err)
	}
	return e, is
}

func TestOrigin(t *testing.T) {
	e, is := originEnv(t)
	ctx := context.Background()
	gh := func(ref string) map[string]any {
		return oidctest.GitHubClaims("signet", "acme/app", ref, "push", "release.yml")
	}
	image, digest := e.push("org/app", "v1.2.0")
	submit := func(token string) (serviceapi.Request, error) {
		return e.client(token).Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image})
	}

	t.Run("a matching token", func(t *testing.T) {
		r, err := submit(is.Mint(gh("refs/heads/main")))
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != serviceapi.StatusAwaitingApproval || r.Origin["repository"] != "acme/app" || r.Origin["workflow_ref"] == "" ||
			r.Submitter != is.URL+"#repo:acme/app:ref:refs/heads/main" || r.Digest != digest {
			t.Fatalf("request = %+v", r)
		}
		if _, ok := r.Origin["exp"]; ok {
			t.Error("the token's expiry is kept as an origin claim")
		}
		// The CI reads its request with an ID token, and with the status token.
		if got, err := e.client(is.Mint(gh("refs/heads/main"))).GetRequest(ctx, r.ID); err != nil || got.ID != r.ID {
			t.Errorf("reading with an ID token: %v", err)
		}
		if _, err := e.client(is.Mint(oidctest.GitHubClaims("signet", "evil/app", "refs/heads/main", "push", "x.yml"))).GetRequest(ctx, r.ID); err == nil {
			t.Error("an ID token of another repository reads the request")
		}
		for _, ev := range e.events() {
			if ev.Subject.RequestID == r.ID && ev.Type == audit.RequestSubmit {
				if ev.Actor.Kind != audit.ActorCI || ev.Actor.Issuer != is.URL || ev.Origin["ref"] != "refs/heads/main" {
					t.Errorf("submit event = %+v", ev)
				}
			}
		}
		// A re-run of the same workflow run attaches to it.
		again, err := submit(is.Mint(gh("refs/heads/main")))
		if err != nil || again.ID != r.ID {
			t.Errorf("re-run = %s, %v; want %s", again.ID, err, r.ID)
		}
		if got, err := e.clientFor("alice").Approve(ctx, r.ID, ""); err != nil || got.Status != serviceapi.StatusSigned {
			t.Fatalf("approve = %+v, %v", got, err)
		}
	})
	t.Run("a tag ref", func(t *testing.T) {
		if _, err := e.admin().CreatePolicy(ctx, "app", serviceapi.PolicySpec{Name: "tagged",
			Approvals: serviceapi.Approvals{Required: 0, Approvers: []string{}},
			Origin: &serviceapi.Origin{Issuer: is.URL, Audience: "signet", Claims: map[string]string{
				"repository": "acme/app", "ref": "refs/tags/v*", "workflow_ref": "acme/app/.github/workflows/release.yml@refs/tags/v*"}}}); err != nil {
			t.Fatal(err)
		}
		sub := func(ref string) (serviceapi.Request, error) {
			return e.client(is.Mint(gh(ref))).Submit(ctx, serviceapi.Submit{Project: "app", Policy: "tagged", Image: image})
		}
		if r, err := sub("refs/tags/v1.2.0"); err != nil || r.Status != serviceapi.StatusSigned {
			t.Errorf("a v* tag ref: %+v, %v", r, err)
		}
		_, err := sub("refs/heads/main")
		wantRefused(t, "a branch ref on a tag policy", err, 403, "ORIGIN_MISMATCH", `"ref" claim is "refs/heads/main"`)
	})
	t.Run("claims that do not match", func(t *testing.T) {
		for name, c := range map[string]map[string]any{
			"another branch":     gh("refs/heads/feature"),
			"another repository": oidctest.GitHubClaims("signet", "acme/other", "refs/heads/main", "push", "release.yml"),
			"a pull request":     oidctest.GitHubClaims("signet", "acme/app", "refs/heads/main", "pull_request", "release.yml"),
			"a missing claim":    func() map[string]any { c := gh("refs/heads/main"); c["event_name"] = oidctest.Omit; return c }(),
		} {
			t.Run(name, func(t *testing.T) {
				before := len(e.events())
				beforeState := e.requests()
				_, err := submit(is.Mint(c))
				wantRefused(t, name, err, 403, "ORIGIN_MISMATCH", "origin of policy app/release")
				if e.requests() != beforeState {
					t.Error("a refused submission stored a request")
				}
				evs := e.events()[before:]
				if len(evs) != 1 || evs[0].Type != audit.OriginRefuse || evs[0].Subject.Policy != "release" || evs[0].Reason == "" {
					t.Errorf("events of the refusal: %+v", evs)
				}
			})
		}
		_, err := submit(is.Mint(gh("refs/heads/feature")))
		if !strings.Contains(err.Error(), `"ref" claim is "refs/heads/feature"`) {
			t.Errorf("the refusal does not name the claim: %v", err)
		}
	})
	t.Run("invalid tokens", func(t *testing.T) {
		now := time.Now()
		for name, tok := range map[string]string{
			"expired":          is.Mint(map[string]any{"aud": "signet", "repository": "acme/app", "ref": "refs/heads/main", "event_name": "push", "iat": now.Add(-time.Hour).Unix(), "nbf": now.Add(-time.Hour).Unix(), "exp": now.Add(-30 * time.Minute).Unix()}),
			"wrong audience":   is.Mint(oidctest.GitHubClaims("someone-else", "acme/app", "refs/heads/main", "push", "release.yml")),
			"wrong issuer":     is.Mint(map[string]any{"iss": "https://token.actions.githubusercontent.com", "aud": "signet", "repository": "acme/app", "ref": "refs/heads/main", "event_name": "push"}),
			"unpublished key":  is.Mint(gh("refs/heads/main"), oidctest.UnpublishedKey()),
			"alg none":         is.Mint(gh("refs/heads/main"), oidctest.AlgNone()),
			"HS256 public key": is.Mint(gh("refs/heads/main"), oidctest.HS256WithPublicKey()),
			"garbage":          "a.b.c",
		} {
			t.Run(name, func(t *testing.T) {
				before := e.state()
				_, err := submit(tok)
				wantRefused(t, name, err, 401, "INVALID_ID_TOKEN", "")
				if after := e.state(); after != before {
					t.Errorf("an invalid token changed the state:\n%s\n%s", before, after)
				}
			})
		}
		_, err := e.clientFor("alice").Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image})
		wantRefused(t, "an API token on a CI policy", err, 401, "INVALID_ID_TOKEN", "takes submissions from CI only")
	})
}

// TestResubmitOrigin: a promotion reuses the claims verified at
// submission, held to the target policy's origin rule.
func TestResubmitOrigin(t *testing.T) {
	e, is := originEnv(t)
	ctx := context.Background()
	if _, err := e.admin().CreatePolicy(ctx, "app", serviceapi.PolicySpec{Name: "test",
		Approvals: serviceapi.Approvals{Required: 0, Approvers: []string{}},
		Origin:    &serviceapi.Origin{Issuer: is.URL, Audience: "signet", Claims: map[string]string{"repository": "acme/app"}}}); err != nil {
		t.Fatal(err)
	}
	image, _ := e.push("org/app", "v2")
	submitTest := func(ref string) serviceapi.Request {
		t.Helper()
		r, err := e.client(is.Mint(oidctest.GitHubClaims("signet", "acme/app", ref, "push", "ci.yml"))).Submit(ctx,
			serviceapi.Submit{Project: "app", Policy: "test", Image: image, RunID: ref})
		if err != nil || r.Status != serviceapi.StatusSigned {
			t.Fatalf("test signing = %+v, %v", r, err)
		}
		return r
	}
	fromMain := submitTest("refs/heads/main")
	fromBranch := submitTest("refs/heads/topic")
	// The tokens have long expired by promotion time; the claims stay.
	e.clock.advance(time.Hour)
	defer e.clock.advance(-time.Hour)
	pr, err := e.admin().Resubmit(ctx, fromMain.ID, serviceapi.Resubmit{Policy: "release"})
	if err != nil || pr.Status != serviceapi.StatusAwaitingApproval || pr.Origin["ref"] != "refs/heads/main" {
		t.Fatalf("promotion = %+v, %v", pr, err)
	}
	before := e.requests()
	_, err = e.admin().Resubmit(ctx, fromBranch.ID, serviceapi.Resubmit{Policy: "release"})
	wantRefused(t, "promoting a build of another branch", err, 403, "ORIGIN_MISMATCH", `"ref" claim is "refs/heads/topic"`)
	if e.requests() != before {
		t.Error("a refused promotion stored a request")
	}
	if got := e.eventsOf(pr.ID); !slices.Equal(got, []audit.EventType{audit.RequestSubmit}) {
		t.Errorf("events of the promotion: %v", got)
	}
}
