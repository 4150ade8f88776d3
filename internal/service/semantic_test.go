package service_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/service/serviceapi"
	"github.com/signet-trust/signet/internal/tuf"
)

// autoPolicy lets submitters sign without approval.
func autoPolicy(t *testing.T, e *env, project, name string, submitters ...string) {
	t.Helper()
	if _, err := e.admin().CreatePolicy(context.Background(), project, serviceapi.PolicySpec{Name: name,
		Approvals: serviceapi.Approvals{Required: 0, Approvers: []string{}}, Submitters: submitters}); err != nil {
		t.Fatal(err)
	}
}

func TestSemanticSigning(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	dev := e.user("dev")
	approver := e.user("approver")
	e.project("app", "org/app", "ci")
	autoPolicy(t, e, "app", "auto", "dev")
	if _, err := e.admin().CreatePolicy(ctx, "app", serviceapi.PolicySpec{Name: "release",
		Approvals: serviceapi.Approvals{Required: 1, Approvers: []string{"approver"}}, Submitters: []string{"dev"}, Tags: `v[0-9]+(\.[0-9]+)*`}); err != nil {
		t.Fatal(err)
	}

	t.Run("signs at once without approvals", func(t *testing.T) {
		image, digest := e.push("org/app", "latest")
		r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "auto", Image: image})
		if err != nil || r.Status != serviceapi.StatusSigned || r.Digest != digest {
			t.Fatalf("submit = %+v, %v", r, err)
		}
		if d, _ := e.signedDigest(e.gun("org/app"), "targets/releases", "latest"); d != digest {
			t.Errorf("targets/releases: %s, want %s", d, digest)
		}
	})
	t.Run("a given digest that differs", func(t *testing.T) {
		image, digest := e.push("org/app", "v1.0")
		other := "sha256:" + strings.Repeat("ab", 32)
		before := e.state()
		_, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "auto", Image: image, Digest: other})
		wantRefused(t, "submit with another digest", err, 409, "DIGEST_MISMATCH", "points at "+digest+" in the registry, not at "+other)
		if e.state() != before {
			t.Error("a refused submission changed the state")
		}
		if d, _ := e.signedDigest(e.gun("org/app"), "targets/ci", "v1.0"); d != "" {
			t.Error("a refused submission was signed")
		}
	})
	t.Run("refused images", func(t *testing.T) {
		e.push("other/repo", "v1")
		image, _ := e.push("org/app", "nightly")
		before := e.state()
		_, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "auto", Image: e.gun("other/repo") + ":v1"})
		wantRefused(t, "image of another repository", err, 400, "BAD_REQUEST", "not in project app's repository")
		_, err = dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image})
		wantRefused(t, "tag outside the policy's tags", err, 403, "TAG_NOT_ALLOWED", "tag nightly is not allowed by policy app/release")
		_, err = dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "auto", Image: e.gun("org/app") + ":never-pushed"})
		wantRefused(t, "tag not in the registry", err, 400, "BAD_REQUEST", "does not exist in the registry")
		_, err = dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "auto", Image: e.gun("org/app")})
		wantRefused(t, "no tag", err, 400, "BAD_REQUEST", "names no tag")
		_, err = approver.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "auto", Image: image})
		wantRefused(t, "not a submitter", err, 403, "FORBIDDEN", "approver is not a submitter")
		if e.state() != before {
			t.Error("refused submissions changed the state")
		}
	})
	t.Run("the tag moved before signing", func(t *testing.T) {
		image, digest := e.push("org/app", "v2")
		r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image, Digest: digest})
		if err != nil {
			t.Fatal(err)
		}
		_, moved := e.push("org/app", "v2") // the tag is pushed again
		got, err := approver.Approve(ctx, r.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != serviceapi.StatusFailed || !strings.Contains(got.Reason, "moved since the request was submitted") || !strings.Contains(got.Reason, moved) {
			t.Errorf("after approval: %s %q", got.Status, got.Reason)
		}
		if d, _ := e.signedDigest(e.gun("org/app"), "targets/releases", "v2"); d != "" {
			t.Errorf("a moved tag was signed (%s)", d)
		}
		if ev := e.eventsOf(r.ID); !slices.Equal(ev, []audit.EventType{audit.RequestSubmit, audit.RequestApprove, audit.RequestFail}) {
			t.Errorf("events: %v", ev)
		}
	})
	t.Run("several images", func(t *testing.T) {
		var refs []serviceapi.ImageRef
		want := map[string]string{}
		for _, tag := range []string{"v3", "v3.0", "v3.0.1"} {
			image, digest := e.push("org/app", tag)
			refs = append(refs, serviceapi.ImageRef{Image: image, Digest: digest})
			want[tag] = digest
		}
		r, err := dev.Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Images: refs, Description: "release 3", Parameters: map[string]string{"build": "77"}})
		if err != nil || len(r.Images) != 3 || r.Parameters["build"] != "77" {
			t.Fatalf("submit = %+v, %v", r, err)
		}
		if got, err := approver.Approve(ctx, r.ID, ""); err != nil || got.Status != serviceapi.StatusSigned {
			t.Fatalf("approve = %+v, %v", got, err)
		}
		for tag, digest := range want {
			if d, _ := e.signedDigest(e.gun("org/app"), "targets/ci", tag); d != digest {
				t.Errorf("%s: signed %s, want %s", tag, d, digest)
			}
		}
	})
	t.Run("idempotent submission of a CI run", func(t *testing.T) {
		image, digest := e.push("org/app", "v4")
		in := serviceapi.Submit{Project: "app", Policy: "release", Image: image, Digest: digest, RunID: "pipeline-9"}
		first, err := dev.Submit(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		again, err := dev.Submit(ctx, in)
		if err != nil || again.ID != first.ID || again.StatusToken == first.StatusToken {
			t.Fatalf("re-run = %+v, %v; want request %s with a new status token", again, err, first.ID)
		}
		if _, err := e.client(first.StatusToken).GetRequest(ctx, first.ID); err == nil {
			t.Error("the first run's status token still works after the re-run attached")
		}
		if _, err := e.client(again.StatusToken).GetRequest(ctx, first.ID); err != nil {
			t.Errorf("the re-run's status token: %v", err)
		}
		in.RunID = "pipeline-10"
		other, err := dev.Submit(ctx, in)
		if err != nil || other.ID == first.ID {
			t.Errorf("another run = %+v, %v; want a new request", other, err)
		}
	})
}

func TestRepositoryNotReady(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	dev := e.user("dev")
	mk := func(name, repo string) serviceapi.Project {
		p, err := e.admin().CreateProject(ctx, serviceapi.CreateProject{Name: name, Repository: e.gun(repo), Signer: "ci"})
		if err != nil {
			t.Fatal(err)
		}
		autoPolicy(t, e, name, "auto", "dev")
		return p
	}
	try := func(project, repo string) error {
		image, _ := e.push(repo, "v1")
		before := e.state()
		_, err := dev.Submit(ctx, serviceapi.Submit{Project: project, Policy: "auto", Image: image})
		if e.state() != before {
			t.Errorf("%s: a refused submission changed the state", project)
		}
		return err
	}

	mk("fresh", "org/fresh")
	wantRefused(t, "a repository without trust data", try("fresh", "org/fresh"), 409, "REPOSITORY_NOT_READY", "docker trust signer add --key ci.pub ci "+e.gun("org/fresh"))

	mk("undelegated", "org/undelegated")
	e.newOwner(e.gun("org/undelegated"))
	wantRefused(t, "a repository that does not delegate", try("undelegated", "org/undelegated"), 409, "REPOSITORY_NOT_READY", "does not list the key")

	// The owner holds the snapshot key (notary init without
	// --server-managed-snapshot).
	p := mk("clientsnap", "org/clientsnap")
	gun := e.gun("org/clientsnap")
	o := e.newOwnerWithSnapshot(gun)
	o.addSigner("ci", p.PublicKey)
	got, err := e.admin().GetProject(ctx, "clientsnap")
	if err != nil {
		t.Fatal(err)
	}
	if st := got.State; st.ServerManagedSnapshot || st.Ready || !st.Delegated || !strings.Contains(st.Fix, "notary key rotate "+gun+" snapshot -r") {
		t.Errorf("state of a repository with a client-held snapshot key: %+v", st)
	}
	wantRefused(t, "a client-held snapshot key", try("clientsnap", "org/clientsnap"), 409, "REPOSITORY_NOT_READY", "notary key rotate "+gun+" snapshot -r")

	// The delegation goes away between submission and signing.
	p = mk("revoked", "org/revoked")
	approver := e.user("approver")
	if _, err := e.admin().CreatePolicy(ctx, "revoked", serviceapi.PolicySpec{Name: "release",
		Approvals: serviceapi.Approvals{Required: 1, Approvers: []string{"approver"}}, Submitters: []string{"dev"}}); err != nil {
		t.Fatal(err)
	}
	ow := e.newOwner(e.gun("org/revoked"))
	ow.addSigner("ci", p.PublicKey)
	image, _ := e.push("org/revoked", "v1")
	r, err := dev.Submit(ctx, serviceapi.Submit{Project: "revoked", Policy: "release", Image: image})
	if err != nil {
		t.Fatal(err)
	}
	if err := ow.pub.Publish(ctx, []changes.Change{changes.RemoveDelegation{Role: "targets/ci"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := approver.Approve(ctx, r.ID, ""); err != nil || got.Status != serviceapi.StatusFailed || !strings.Contains(got.Reason, "no longer delegates targets/ci") {
		t.Errorf("approval after the signer was removed = %s %q, %v", got.Status, got.Reason, err)
	}
}

// newOwnerWithSnapshot initialises gun with the owner holding the snapshot
// key.
func (e *env) newOwnerWithSnapshot(gun string) *owner {
	e.t.Helper()
	ctx := context.Background()
	remote, err := client.NewRemote(e.url, e.hc, tuf.GUN(gun))
	if err != nil {
		e.t.Fatal(err)
	}
	o := e.ownerKeys(gun)
	snap := newSigner(e.t)
	addKey(o.keys, snap)
	cache := &memCache{m: map[string][]byte{}}
	if err := client.Initialize(ctx, remote, cache, client.InitOptions{Root: o.root, RootCert: o.cert, Targets: o.targets, Snapshot: snap}, time.Now()); err != nil {
		e.t.Fatal(err)
	}
	o.pub = &client.Publisher{Reader: &client.Reader{Remote: remote, Cache: cache}, Keys: o.keys}
	if err := o.pub.Publish(ctx, nil); err != nil {
		e.t.Fatal(err)
	}
	return o
}
