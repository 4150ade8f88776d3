package service_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// TestSignFlow is the contract's path: a project whose key the owner
// delegates to, a 2-of-2 policy, a submission whose tag the service
// resolves, approvals, and the signature in targets/<signer> and
// targets/releases, read back by a verifying client.
func TestSignFlow(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	alice, bob, carol := e.user("alice"), e.user("bob"), e.user("carol")
	p := e.project("app", "org/app", "ci")

	got, err := e.admin().GetProject(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if st := got.State; st == nil || !st.Ready || !st.Delegated || !st.ServerManagedSnapshot || st.Fix != "" {
		t.Fatalf("repository state = %+v, want ready", got.State)
	}
	if got.PublicKey != p.PublicKey || got.CosignPublicKey == "" || got.KeyID == got.CosignKeyID {
		t.Errorf("project keys: %+v", got)
	}
	if st := got.State; st.DelegationExpires == nil || st.SignerRoleExpires != nil || len(st.Notices) != 0 {
		t.Errorf("expiries before any signing: %+v", st)
	}
	if _, err := e.admin().CreatePolicy(ctx, "app", serviceapi.PolicySpec{
		Name: "release", Approvals: serviceapi.Approvals{Required: 2, Approvers: []string{"alice", "bob"}},
		Submitters: []string{"carol"}, Tags: `v[0-9.]+`,
	}); err != nil {
		t.Fatal(err)
	}
	image, digest := e.push("org/app", "v1")
	req, err := carol.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image, Digest: digest})
	if err != nil {
		t.Fatal(err)
	}
	if req.Status != serviceapi.StatusAwaitingApproval || req.Digest != digest || req.Submitter != "carol" || req.StatusToken == "" || req.Required != 2 {
		t.Fatalf("submitted = %+v", req)
	}
	for i := range 2 { // twice: counted once
		r, err := alice.Approve(ctx, req.ID, "looks good")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != serviceapi.StatusAwaitingApproval || len(r.Approvals) != 1 {
			t.Fatalf("after alice's approval %d: %+v", i+1, r)
		}
	}
	r, err := bob.Approve(ctx, req.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != serviceapi.StatusSigned {
		t.Fatalf("after the final approval: status %s (%s)", r.Status, r.Reason)
	}
	if len(r.Signed) == 0 {
		t.Error("a signed request lists no role versions")
	}
	for _, role := range []string{"targets/ci", "targets/releases"} {
		d, n := e.signedDigest(e.gun("org/app"), role, "v1")
		if d != digest || n != r.Images[0].Size {
			t.Errorf("%s lists v1 as %s (%d bytes), want %s (%d bytes)", role, d, n, digest, r.Images[0].Size)
		}
	}
	// Expiry notices: the signer's role is new (3 years), the owner's
	// targets metadata too; 30 days before they end GET warns.
	got, _ = e.admin().GetProject(ctx, "app")
	if st := got.State; st.SignerRoleExpires == nil || len(st.Notices) != 0 {
		t.Errorf("expiries after signing: %+v", st)
	}
	e.clock.advance(3*365*24*time.Hour - 10*24*time.Hour)
	got, _ = e.admin().GetProject(ctx, "app")
	e.clock.advance(-(3*365*24*time.Hour - 10*24*time.Hour))
	if st := got.State; len(st.Notices) != 2 || !strings.Contains(st.Notices[1], "targets/ci expires at") || !strings.Contains(st.Notices[0], "re-signs it") {
		t.Errorf("notices 10 days before the expiries: %q", st.Notices)
	}
	if got := e.eventsOf(req.ID); !slices.Equal(got, []audit.EventType{audit.RequestSubmit, audit.RequestApprove, audit.RequestApprove, audit.RequestSign}) {
		t.Errorf("audit events of the request: %v", got)
	}
	// The status token reads this request only.
	st := e.client(req.StatusToken)
	if got, err := st.GetRequest(ctx, req.ID); err != nil || got.Status != serviceapi.StatusSigned {
		t.Errorf("reading with the status token: %+v, %v", got, err)
	}
}
