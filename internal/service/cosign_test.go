package service_test

import (
	"context"
	"crypto"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/oci"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// gatedRegistry is go-containerregistry's registry whose writes can be
// refused (403, as a registry answers credentials without push access)
// or failed (503).
type gatedRegistry struct {
	host     string
	readOnly atomic.Bool
	failing  atomic.Int32 // writes to fail with 503
}

func newGatedRegistry(t *testing.T) *gatedRegistry {
	g := &gatedRegistry{}
	inner := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if g.readOnly.Load() {
				http.Error(w, `{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}`, http.StatusForbidden)
				return
			}
			if g.failing.Load() > 0 {
				g.failing.Add(-1)
				http.Error(w, `{"errors":[{"code":"UNAVAILABLE","message":"try again"}]}`, http.StatusServiceUnavailable)
				return
			}
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.host = strings.TrimPrefix(srv.URL, "http://")
	return g
}

// cosignPolicy creates a policy in formats, required approvals by
// "approver", submissions by "dev".
func cosignPolicy(t *testing.T, e *env, project, name string, required int, formats ...string) {
	t.Helper()
	approvers := []string{}
	if required > 0 {
		approvers = []string{"approver"}
	}
	if _, err := e.admin().CreatePolicy(context.Background(), project, serviceapi.PolicySpec{Name: name, Formats: formats,
		Approvals: serviceapi.Approvals{Required: required, Approvers: approvers}, Submitters: []string{"dev"}}); err != nil {
		t.Fatal(err)
	}
}

// cosignVerified verifies the cosign signatures of digest in repo with
// the project's cosign public key and counts them per form.
func (e *env) cosignVerified(p serviceapi.Project, repo, digest string) (map[oci.Form]int, error) {
	e.t.Helper()
	pub, err := keys.ParsePublicKeyPEM([]byte(p.CosignPublicKey))
	if err != nil {
		e.t.Fatalf("cosign_public_key: %v", err)
	}
	ctx := context.Background()
	r := (&registry.Client{Keychain: registry.Anonymous}).Repository(registry.Reference{Registry: e.reg, Repository: repo}, "pull")
	tgt, err := oci.Resolve(ctx, r, digest)
	if err != nil {
		e.t.Fatal(err)
	}
	rep, err := oci.Verify(ctx, tgt, pub.CryptoKey(), oci.Options{Now: time.Now()})
	if err != nil {
		return nil, err
	}
	out := map[oci.Form]int{}
	for _, s := range rep.Verified {
		if s.Digest != digest {
			e.t.Errorf("a verified signature covers %s, not %s", s.Digest, digest)
		}
		out[s.Form]++
	}
	return out, nil
}

// signEvents are the request.sign events of request id.
func (e *env) signEvents(id string) []audit.Event {
	var out []audit.Event
	for _, ev := range e.events() {
		if ev.Subject.RequestID == id && ev.Type == audit.RequestSign {
			out = append(out, ev)
		}
	}
	return out
}

func TestCosignFormat(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	dev, approver := e.user("dev"), e.user("approver")
	p := e.project("app", "org/app", "ci")
	cosignPolicy(t, e, "app", "release", 1, "cosign", "dct")

	pol, err := e.admin().GetPolicy(ctx, "app", "release")
	if err != nil || !slices.Equal(pol.Formats, []string{"dct", "cosign"}) {
		t.Fatalf("policy formats = %v, %v (want dct, cosign)", pol.Formats, err)
	}
	image, digest := e.push("org/app", "v1")
	r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image})
	if err != nil || r.Status != serviceapi.StatusAwaitingApproval || !slices.Equal(r.Formats, []string{"dct", "cosign"}) || len(r.Done) != 0 {
		t.Fatalf("submit = %+v, %v", r, err)
	}
	got, err := approver.Approve(ctx, r.ID, "")
	if err != nil || got.Status != serviceapi.StatusSigned {
		t.Fatalf("approve = %+v, %v", got, err)
	}
	// Both formats, by the one approval.
	if !slices.Equal(got.Done, []string{"dct", "cosign"}) || len(got.Signed) == 0 || len(got.Cosign) != 2 {
		t.Fatalf("signed request: done %v, signed %v, cosign %+v", got.Done, got.Signed, got.Cosign)
	}
	for _, c := range got.Cosign {
		if c.Digest != digest || c.KeyID != p.CosignKeyID || c.Existing || c.Ref == "" {
			t.Errorf("cosign signature %+v, want of %s by %s", c, digest, p.CosignKeyID)
		}
	}
	if d, _ := e.signedDigest(e.gun("org/app"), "targets/ci", "v1"); d != digest {
		t.Errorf("targets/ci: %q, want %s", d, digest)
	}
	forms, err := e.cosignVerified(p, "org/app", digest)
	if err != nil || forms[oci.FormBundle] != 1 || forms[oci.FormLegacy] != 1 {
		t.Errorf("cosign signatures by the project's key: %v, %v (want one bundle, one legacy)", forms, err)
	}
	// One audit trail: one approval, one sign event naming both formats.
	if ev := e.eventsOf(r.ID); !slices.Equal(ev, []audit.EventType{audit.RequestSubmit, audit.RequestApprove, audit.RequestSign}) {
		t.Errorf("events: %v", ev)
	}
	signs := e.signEvents(r.ID)
	if len(signs) != 1 {
		t.Fatalf("%d sign events", len(signs))
	}
	ev := signs[0]
	if !slices.Equal(ev.Formats, []string{"dct", "cosign"}) || len(ev.Roles) == 0 || len(ev.Cosign) != 2 || ev.Subject.Digest != digest ||
		ev.Subject.KeyID != p.KeyID || ev.Subject.Role != "targets/ci" {
		t.Errorf("sign event = %+v", ev)
	}
	forms2 := map[string]bool{}
	for _, c := range ev.Cosign {
		forms2[c.Form] = true
		if c.Digest != digest || c.KeyID != p.CosignKeyID {
			t.Errorf("event's cosign signature %+v", c)
		}
	}
	if !forms2[audit.CosignBundle] || !forms2[audit.CosignLegacy] {
		t.Errorf("event's cosign forms: %v", forms2)
	}

	// Another tag of the same manifest: the cosign signatures are there
	// already, and none is added.
	image2 := e.gun("org/app") + ":stable"
	e.retag("org/app", "v1", "stable")
	r2, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image2})
	if err != nil {
		t.Fatal(err)
	}
	got, err = approver.Approve(ctx, r2.ID, "")
	if err != nil || got.Status != serviceapi.StatusSigned || len(got.Cosign) != 2 || !got.Cosign[0].Existing || !got.Cosign[1].Existing {
		t.Fatalf("second tag of the digest: %+v, %v", got, err)
	}
	if forms, err := e.cosignVerified(p, "org/app", digest); err != nil || forms[oci.FormBundle] != 1 || forms[oci.FormLegacy] != 1 {
		t.Errorf("after a second signing of the digest: %v, %v", forms, err)
	}
}

// retag points tag at the manifest from's tag points at.
func (e *env) retag(repo, from, tag string) {
	e.t.Helper()
	ctx := context.Background()
	r := (&registry.Client{Keychain: registry.Anonymous}).Repository(registry.Reference{Registry: e.reg, Repository: repo}, "push,pull")
	m, err := r.Manifest(ctx, from)
	if err != nil {
		e.t.Fatal(err)
	}
	if _, _, err := r.PutManifest(ctx, tag, m.MediaType, m.Bytes); err != nil {
		e.t.Fatal(err)
	}
}

// TestCosignOnly: a policy signing in the cosign format alone signs a
// repository without trust data, and publishes nothing in DCT.
func TestCosignOnly(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	dev := e.user("dev")
	p, err := e.admin().CreateProject(ctx, serviceapi.CreateProject{Name: "app", Repository: e.gun("org/app"), Signer: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	cosignPolicy(t, e, "app", "dct", 0)
	cosignPolicy(t, e, "app", "cosign", 0, "cosign")
	image, digest := e.push("org/app", "v1")
	_, err = dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "dct", Image: image})
	wantRefused(t, "DCT on a repository without trust data", err, 409, "REPOSITORY_NOT_READY", "not ready")
	r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "cosign", Image: image})
	if err != nil || r.Status != serviceapi.StatusSigned || !slices.Equal(r.Done, []string{"cosign"}) || len(r.Signed) != 0 || len(r.Cosign) != 2 {
		t.Fatalf("cosign-only submit = %+v, %v", r, err)
	}
	if forms, err := e.cosignVerified(p, "org/app", digest); err != nil || forms[oci.FormBundle] != 1 || forms[oci.FormLegacy] != 1 {
		t.Errorf("cosign signatures: %v, %v", forms, err)
	}
	if _, err := e.srv.Current(ctx, e.gun("org/app"), "root"); err == nil {
		t.Error("a cosign-only signing made trust data")
	}
	signs := e.signEvents(r.ID)
	if len(signs) != 1 || !slices.Equal(signs[0].Formats, []string{"cosign"}) || len(signs[0].Roles) != 0 || len(signs[0].Cosign) != 2 ||
		signs[0].Subject.KeyID != p.CosignKeyID {
		t.Errorf("sign events: %+v", signs)
	}
}

// TestCosignPolicyRefusals: formats are checked, and a server without a
// cosign writer refuses the format.
func TestCosignPolicyRefusals(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	e.user("dev")
	e.project("app", "org/app", "ci")
	before := e.state()
	for _, tc := range []struct {
		formats []string
		says    string
	}{
		{[]string{"notation"}, `format "notation": use "dct"`},
		{[]string{"dct", "dct"}, "format dct is listed twice"},
		{[]string{"cosign", "COSIGN"}, `format "COSIGN"`},
		{[]string{""}, `format ""`},
	} {
		_, err := e.admin().CreatePolicy(ctx, "app", serviceapi.PolicySpec{Name: "p", Formats: tc.formats,
			Approvals: serviceapi.Approvals{Approvers: []string{}}, Submitters: []string{"dev"}})
		wantRefused(t, strings.Join(tc.formats, ","), err, 400, "BAD_REQUEST", tc.says)
	}
	if e.state() != before {
		t.Error("refused policies changed the state")
	}

	n := newEnv(t, envOptions{config: func(c *service.Config) { c.Cosign = nil }})
	n.user("dev")
	n.project("app", "org/app", "ci")
	before = n.state()
	_, err := n.admin().CreatePolicy(ctx, "app", serviceapi.PolicySpec{Name: "p", Formats: []string{"dct", "cosign"},
		Approvals: serviceapi.Approvals{Approvers: []string{}}, Submitters: []string{"dev"}})
	wantRefused(t, "cosign without a writer", err, 400, "BAD_REQUEST", "does not write cosign signatures")
	if n.state() != before {
		t.Error("a refused policy changed the state")
	}
}

// TestCosignPushRefused: a registry that refuses the service's push is
// found before anything is written — at submission (nothing stored), or,
// when it starts refusing after, right before signing (the request fails,
// DCT is not published either). A refusal that comes after the check, once
// DCT is published, fails the request saying what was published.
func TestCosignPushRefused(t *testing.T) {
	reg := newGatedRegistry(t)
	var refuseAfterCheck atomic.Bool
	e := newEnv(t, envOptions{registry: reg.host, config: func(c *service.Config) {
		c.Cosign = checkHook{c.Cosign, func() {
			if refuseAfterCheck.Load() {
				reg.readOnly.Store(true)
			}
		}}
	}})
	ctx := context.Background()
	dev, approver := e.user("dev"), e.user("approver")
	p := e.project("app", "org/app", "ci")
	cosignPolicy(t, e, "app", "release", 1, "dct", "cosign")

	t.Run("at submission", func(t *testing.T) {
		image, _ := e.push("org/app", "v1")
		reg.readOnly.Store(true)
		defer reg.readOnly.Store(false)
		before := e.state()
		_, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image})
		wantRefused(t, "submission to a registry refusing the push", err, 502, "REGISTRY_ERROR", "refuses the service's push to "+e.gun("org/app"))
		if e.state() != before {
			t.Error("a refused submission changed the state")
		}
	})
	t.Run("before signing", func(t *testing.T) {
		image, digest := e.push("org/app", "v2")
		r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image})
		if err != nil {
			t.Fatal(err)
		}
		reg.readOnly.Store(true)
		defer reg.readOnly.Store(false)
		got, err := approver.Approve(ctx, r.ID, "")
		if err != nil || got.Status != serviceapi.StatusFailed || !strings.Contains(got.Reason, "the registry refuses the service's push to "+e.gun("org/app")+", which the cosign signature needs") ||
			!strings.HasSuffix(got.Reason, "nothing was signed") || len(got.Done) != 0 {
			t.Fatalf("approve = %+v, %v", got, err)
		}
		if d, _ := e.signedDigest(e.gun("org/app"), "targets/ci", "v2"); d != "" {
			t.Errorf("DCT published %s for a request that failed before signing", d)
		}
		reg.readOnly.Store(false)
		if _, err := e.cosignVerified(p, "org/app", digest); !errors.Is(err, oci.ErrNoSignatures) {
			t.Errorf("cosign signatures of a failed request: %v", err)
		}
		if ev := e.eventsOf(r.ID); !slices.Equal(ev, []audit.EventType{audit.RequestSubmit, audit.RequestApprove, audit.RequestFail}) {
			t.Errorf("events: %v", ev)
		}
	})
	t.Run("after DCT is published", func(t *testing.T) {
		image, digest := e.push("org/app", "v3")
		r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image})
		if err != nil {
			t.Fatal(err)
		}
		refuseAfterCheck.Store(true)
		defer func() { refuseAfterCheck.Store(false); reg.readOnly.Store(false) }()
		got, err := approver.Approve(ctx, r.ID, "")
		if err != nil || got.Status != serviceapi.StatusFailed || !slices.Equal(got.Done, []string{"dct"}) || len(got.Signed) == 0 {
			t.Fatalf("approve = %+v, %v", got, err)
		}
		for _, says := range []string{"the cosign signature of " + e.gun("org/app") + "@" + digest, "the DCT signature is published (targets/ci v", "and stays", "the cosign signature is not complete"} {
			if !strings.Contains(got.Reason, says) {
				t.Errorf("reason %q does not say %q", got.Reason, says)
			}
		}
		if d, _ := e.signedDigest(e.gun("org/app"), "targets/ci", "v3"); d != digest {
			t.Errorf("targets/ci v3: %q", d)
		}
		var fail *audit.Event
		for _, ev := range e.events() {
			if ev.Subject.RequestID == r.ID && ev.Type == audit.RequestFail {
				fail = &ev
			}
		}
		if fail == nil || !slices.Equal(fail.Formats, []string{"dct"}) || len(fail.Roles) == 0 || fail.Reason != got.Reason {
			t.Errorf("fail event = %+v", fail)
		}
	})
}

// checkHook calls after once CheckPush has passed.
type checkHook struct {
	service.CosignWriter
	after func()
}

func (h checkHook) CheckPush(ctx context.Context, image string) error {
	err := h.CosignWriter.CheckPush(ctx, image)
	if err == nil {
		h.after()
	}
	return err
}

// crashingCosign ends the worker's goroutine — as a crash ends the
// process: nothing after it is recorded — at a chosen point of the next
// cosign signing: before it writes, or after it wrote both forms.
type crashingCosign struct {
	service.CosignWriter
	mu    *sync.Mutex
	point *string // "before", "after" or "" (no crash)
}

func (c crashingCosign) Sign(ctx context.Context, image string, m service.Manifest, key crypto.Signer, now time.Time) ([]service.CosignSignature, error) {
	c.mu.Lock()
	point := *c.point
	*c.point = ""
	c.mu.Unlock()
	if point == "before" {
		runtime.Goexit()
	}
	sigs, err := c.CosignWriter.Sign(ctx, image, m, key, now)
	if point == "after" {
		runtime.Goexit()
	}
	return sigs, err
}

// TestCosignCrashBetweenFormats: the worker dies after DCT is published
// and before (or while) the cosign signature is recorded. The request
// stays in signing with DCT recorded done; the next worker to take it
// after the lease completes the cosign format without publishing DCT again
// or resolving the tag again (it has moved meanwhile), and leaves exactly
// one cosign signature per form and one sign event.
func TestCosignCrashBetweenFormats(t *testing.T) {
	for _, point := range []string{"before", "after"} {
		t.Run("crash "+point+" the cosign write", func(t *testing.T) {
			var mu sync.Mutex
			crashAt := point
			e := newEnv(t, envOptions{noRun: true, config: func(c *service.Config) {
				c.Cosign = crashingCosign{CosignWriter: c.Cosign, mu: &mu, point: &crashAt}
				c.SyncWait = time.Millisecond
			}})
			ctx := context.Background()
			dev, approver := e.user("dev"), e.user("approver")
			p := e.project("app", "org/app", "ci")
			cosignPolicy(t, e, "app", "release", 1, "dct", "cosign")
			image, digest := e.push("org/app", "v1")
			r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := approver.Approve(ctx, r.ID, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.SignDue(ctx); err != nil {
				t.Fatal(err)
			}
			mid, err := e.admin().GetRequest(ctx, r.ID)
			if err != nil || mid.Status != serviceapi.StatusSigning || !slices.Equal(mid.Done, []string{"dct"}) || len(mid.Signed) == 0 {
				t.Fatalf("after the crash: %+v, %v", mid, err)
			}
			if d, _ := e.signedDigest(e.gun("org/app"), "targets/ci", "v1"); d != digest {
				t.Fatalf("DCT before the crash: %q", d)
			}
			forms, err := e.cosignVerified(p, "org/app", digest)
			switch point {
			case "before":
				if !errors.Is(err, oci.ErrNoSignatures) {
					t.Errorf("cosign signatures before the crash: %v, %v", forms, err)
				}
			case "after":
				if err != nil || forms[oci.FormBundle] != 1 || forms[oci.FormLegacy] != 1 {
					t.Errorf("cosign signatures written before the crash: %v, %v", forms, err)
				}
			}
			ciVersion := e.verified(e.gun("org/app")).Targets("targets/ci").Signed.Version

			// The tag moves; the restarted worker completes the request for
			// the digest it started on, once the lease has passed.
			e.push("org/app", "v1")
			if n, err := e.svc.SignDue(ctx); err != nil || n != 0 {
				t.Fatalf("a job under lease was taken: %d, %v", n, err)
			}
			e.clock.advance(5 * time.Second)
			defer e.clock.advance(-5 * time.Second)
			if n, err := e.svc.SignDue(ctx); err != nil || n != 1 {
				t.Fatalf("after the lease: %d jobs, %v", n, err)
			}
			got, err := e.admin().GetRequest(ctx, r.ID)
			if err != nil || got.Status != serviceapi.StatusSigned || !slices.Equal(got.Done, []string{"dct", "cosign"}) || len(got.Cosign) != 2 {
				t.Fatalf("after the restart: %+v, %v", got, err)
			}
			for _, c := range got.Cosign {
				if c.Existing != (point == "after") || c.Digest != digest {
					t.Errorf("cosign signature %+v (crash %s the write)", c, point)
				}
			}
			if !slices.Equal(got.Signed, mid.Signed) {
				t.Errorf("signed roles %v, recorded before the crash %v", got.Signed, mid.Signed)
			}
			if v := e.verified(e.gun("org/app")).Targets("targets/ci").Signed.Version; v != ciVersion {
				t.Errorf("targets/ci was published again: version %d, %d before", v, ciVersion)
			}
			if d, _ := e.signedDigest(e.gun("org/app"), "targets/ci", "v1"); d != digest {
				t.Errorf("targets/ci v1 after the restart: %q, want %s", d, digest)
			}
			if forms, err := e.cosignVerified(p, "org/app", digest); err != nil || forms[oci.FormBundle] != 1 || forms[oci.FormLegacy] != 1 {
				t.Errorf("cosign signatures after the restart: %v, %v (want one per form)", forms, err)
			}
			if signs := e.signEvents(r.ID); len(signs) != 1 || !slices.Equal(signs[0].Formats, []string{"dct", "cosign"}) {
				t.Errorf("sign events: %+v", signs)
			}
		})
	}
}

// TestCosignTransient: a registry failing the cosign push for a while is
// retried with DCT published once; past MaxAttempts the request fails
// saying what stays published.
func TestCosignTransient(t *testing.T) {
	reg := newGatedRegistry(t)
	var failAfterCheck atomic.Int32 // writes to fail once the push check passed
	e := newEnv(t, envOptions{registry: reg.host, noRun: true, config: func(c *service.Config) {
		c.SyncWait, c.MaxAttempts = time.Millisecond, 3
		c.Cosign = checkHook{c.Cosign, func() { reg.failing.Store(failAfterCheck.Load()) }}
	}})
	ctx := context.Background()
	dev, approver := e.user("dev"), e.user("approver")
	p := e.project("app", "org/app", "ci")
	cosignPolicy(t, e, "app", "release", 1, "dct", "cosign")
	run := func() {
		t.Helper()
		e.clock.advance(2 * time.Minute) // past any backoff
		if _, err := e.svc.SignDue(ctx); err != nil {
			t.Fatal(err)
		}
	}

	image, digest := e.push("org/app", "v1")
	r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := approver.Approve(ctx, r.ID, ""); err != nil {
		t.Fatal(err)
	}
	// The push check passes; the write that follows fails once.
	failAfterCheck.Store(1)
	run()
	got, _ := e.admin().GetRequest(ctx, r.ID)
	if got.Status != serviceapi.StatusSigning || !slices.Equal(got.Done, []string{"dct"}) || got.Reason != "" {
		t.Fatalf("after a transient failure: %+v", got)
	}
	failAfterCheck.Store(0)
	reg.failing.Store(0)
	run()
	got, _ = e.admin().GetRequest(ctx, r.ID)
	if got.Status != serviceapi.StatusSigned {
		t.Fatalf("after the retry: %+v", got)
	}
	if forms, err := e.cosignVerified(p, "org/app", digest); err != nil || forms[oci.FormBundle] != 1 || forms[oci.FormLegacy] != 1 {
		t.Errorf("cosign signatures: %v, %v", forms, err)
	}

	// A registry that keeps failing: the request fails after MaxAttempts,
	// DCT stays published and the reason says so.
	image, digest = e.push("org/app", "v2")
	r, err = dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := approver.Approve(ctx, r.ID, ""); err != nil {
		t.Fatal(err)
	}
	failAfterCheck.Store(1 << 20)
	defer func() { failAfterCheck.Store(0); reg.failing.Store(0) }()
	for range 3 {
		run()
	}
	got, _ = e.admin().GetRequest(ctx, r.ID)
	if got.Status != serviceapi.StatusFailed || !strings.HasPrefix(got.Reason, "signing failed 3 times") ||
		!strings.Contains(got.Reason, "the DCT signature is published") || !strings.Contains(got.Reason, "the cosign signature is not complete") {
		t.Fatalf("after %d failures: %s %q", 3, got.Status, got.Reason)
	}
	if d, _ := e.signedDigest(e.gun("org/app"), "targets/ci", "v2"); d != digest {
		t.Errorf("targets/ci v2: %q", d)
	}
}
