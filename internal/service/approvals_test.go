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

// approvalEnv has a project with policy "release": 2 of alice, bob and
// carol approve; carol and dave submit.
func approvalEnv(t *testing.T) (*env, map[string]*serviceapi.Client) {
	e := newEnv(t, envOptions{})
	us := map[string]*serviceapi.Client{}
	for _, n := range []string{"alice", "bob", "carol", "dave", "eve"} {
		us[n] = e.user(n)
	}
	e.project("app", "org/app", "ci")
	if _, err := e.admin().CreatePolicy(context.Background(), "app", serviceapi.PolicySpec{Name: "release",
		Approvals:  serviceapi.Approvals{Required: 2, Approvers: []string{"alice", "bob", "carol"}},
		Submitters: []string{"carol", "dave"}, RequestExpiry: "2h",
		Webhook: &serviceapi.Webhook{URL: "https://hooks.example/signet", Authorization: "Bearer hook-secret"}}); err != nil {
		t.Fatal(err)
	}
	return e, us
}

func wantRefused(t *testing.T, what string, err error, status int, code, says string) {
	t.Helper()
	st, c := apiCode(err)
	if st != status || c != code || !strings.Contains(err.Error(), says) {
		t.Errorf("%s: %v; want %d %s saying %q", what, err, status, code, says)
	}
}

func TestApprovalRules(t *testing.T) {
	e, us := approvalEnv(t)
	ctx := context.Background()
	submit := func(by, tag string) serviceapi.Request {
		t.Helper()
		image, _ := e.push("org/app", tag)
		r, err := us[by].Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("not an approver", func(t *testing.T) {
		r := submit("dave", "a1")
		before := e.state()
		_, err := us["eve"].Approve(ctx, r.ID, "")
		wantRefused(t, "eve approving", err, 403, "FORBIDDEN", "eve is not an approver of policy app/release")
		_, err = us["eve"].Deny(ctx, r.ID, "no")
		wantRefused(t, "eve denying", err, 403, "FORBIDDEN", "not an approver")
		_, err = e.admin().Approve(ctx, r.ID, "")
		wantRefused(t, "the admin token approving", err, 403, "FORBIDDEN", "by people")
		if after := e.state(); after != before {
			t.Errorf("refused approvals changed the state:\n%s\n%s", before, after)
		}
	})
	t.Run("own request", func(t *testing.T) {
		r := submit("carol", "a2")
		before := e.state()
		_, err := us["carol"].Approve(ctx, r.ID, "")
		wantRefused(t, "carol approving her own request", err, 403, "FORBIDDEN", "carol submitted request")
		if after := e.state(); after != before {
			t.Error("a refused self-approval changed the state")
		}
	})
	t.Run("one deny aborts", func(t *testing.T) {
		r := submit("dave", "a3")
		if _, err := us["alice"].Approve(ctx, r.ID, ""); err != nil {
			t.Fatal(err)
		}
		got, err := us["bob"].Deny(ctx, r.ID, "not this build")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != serviceapi.StatusDenied || len(got.Denials) != 1 || got.Denials[0].Comment != "not this build" || !strings.Contains(got.Reason, "bob") {
			t.Errorf("denied request = %+v", got)
		}
		before := e.state()
		_, err = us["carol"].Approve(ctx, r.ID, "")
		wantRefused(t, "approving a denied request", err, 409, "CONFLICT", "was denied by bob")
		if after := e.state(); after != before {
			t.Error("an approval after a denial changed the state")
		}
		if d, _ := e.signedDigest(e.gun("org/app"), "targets/ci", "a3"); d != "" {
			t.Error("a denied request was signed")
		}
		if got := e.eventsOf(r.ID); !slices.Equal(got, []audit.EventType{audit.RequestSubmit, audit.RequestApprove, audit.RequestDeny}) {
			t.Errorf("events: %v", got)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		r := submit("dave", "a4")
		_, err := us["eve"].Cancel(ctx, r.ID, "")
		wantRefused(t, "eve canceling", err, 403, "FORBIDDEN", "only the submitter")
		got, err := e.client(r.StatusToken).Cancel(ctx, r.ID, "wrong build")
		if err != nil || got.Status != serviceapi.StatusCanceled || got.Reason != "canceled: wrong build" {
			t.Fatalf("cancel with the status token = %+v, %v", got, err)
		}
		_, err = us["alice"].Approve(ctx, r.ID, "")
		wantRefused(t, "approving a canceled request", err, 409, "CONFLICT", "canceled")
		_, err = us["dave"].Cancel(ctx, r.ID, "")
		wantRefused(t, "canceling twice", err, 409, "CONFLICT", "canceled")
		r2 := submit("dave", "a5")
		if got, err := us["dave"].Cancel(ctx, r2.ID, ""); err != nil || got.Status != serviceapi.StatusCanceled {
			t.Errorf("cancel by the submitter = %+v, %v", got, err)
		}
		if got := e.eventsOf(r.ID); !slices.Equal(got, []audit.EventType{audit.RequestSubmit, audit.RequestCancel}) {
			t.Errorf("events: %v", got)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		r := submit("dave", "a6")
		late := submit("dave", "a7")
		e.clock.advance(3 * time.Hour)
		defer e.clock.advance(-3 * time.Hour)
		_, err := us["alice"].Approve(ctx, r.ID, "")
		wantRefused(t, "approving after the expiry", err, 409, "CONFLICT", "expired")
		if got, _ := us["dave"].GetRequest(ctx, r.ID); got.Status != serviceapi.StatusExpired {
			t.Errorf("status after a late approval: %s", got.Status)
		}
		n, err := e.svc.ExpireDue(ctx)
		if err != nil || n != 3 { // a1, a2 (pending since their subtests) and a7
			t.Errorf("ExpireDue = %d, %v; want the 3 pending requests expired", n, err)
		}
		if got, _ := us["dave"].GetRequest(ctx, late.ID); got.Status != serviceapi.StatusExpired || !strings.Contains(got.Reason, "no decision within 2h") {
			t.Errorf("swept request = %s %q", got.Status, got.Reason)
		}
		if got := e.eventsOf(late.ID); !slices.Equal(got, []audit.EventType{audit.RequestSubmit, audit.RequestExpire}) {
			t.Errorf("events: %v", got)
		}
	})
	t.Run("notifications", func(t *testing.T) {
		r := submit("dave", "a8")
		if _, err := us["alice"].Approve(ctx, r.ID, ""); err != nil {
			t.Fatal(err)
		}
		if got, err := us["bob"].Approve(ctx, r.ID, ""); err != nil || got.Status != serviceapi.StatusSigned {
			t.Fatalf("final approval = %+v, %v", got, err)
		}
		ds, err := e.st.ListDeliveries(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range ds {
			got = append(got, d.Kind+" "+d.Target+" "+string(d.Notification[:strings.Index(string(d.Notification), ",")]))
		}
		want := []string{
			`email alice@example.com {"event":"awaiting_approval"`, `email bob@example.com {"event":"awaiting_approval"`, `email carol@example.com {"event":"awaiting_approval"`,
			`webhook app/release {"event":"signed"`, `email dave@example.com {"event":"signed"`,
		}
		if !slices.Equal(got, want) {
			t.Errorf("deliveries:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
}
