package audit

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/service/serviceapi"
)

// pushImage pushes a small random image to the registry and returns its
// digest.
func pushImage(t *testing.T, host, repo, tag string) string {
	t.Helper()
	ctx := context.Background()
	r := (&registry.Client{Keychain: registry.Anonymous}).Repository(registry.Reference{Registry: host, Repository: repo}, "push,pull")
	layer := make([]byte, 300)
	rand.Read(layer)
	ld, err := r.PutBlob(ctx, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, ld))
	cd, err := r.PutBlob(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	man := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`+
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":%q},`+
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":%q}]}`, len(cfg), cd, len(layer), ld)
	d, _, err := r.PutManifest(ctx, tag, "application/vnd.docker.distribution.manifest.v2+json", []byte(man))
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest
}

// TestServiceFlow: the signing service's flow appears in the log event by
// event, in order, with its actors: the project and its key, the policy,
// the submission, the approval, the signature and the publish it made; a
// denial with its comment.
func TestServiceFlow(t *testing.T) {
	e2etest.Need(t, "notary", "docker-registry")
	const admin = "e2e-audit-admin-token-service-01"
	reg := e2etest.StartRegistry(t, "")
	n := start(t, "", []string{"SIGNET_ADMIN_TOKEN=" + admin})
	gun := reg.Host + "/org/app"
	as := func(token string, args ...string) *e2etest.Result {
		t.Helper()
		c := n.cmd
		c.Env = append(append([]string{}, n.cmd.Env...), "SIGNET_TOKEN="+token)
		return c.OK(t, n.signetArgs(args...)...)
	}
	last := func(r *e2etest.Result) string {
		lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
		return strings.TrimSpace(lines[len(lines)-1])
	}
	alice := last(as(admin, "admin", "user", "create", "alice"))
	bob := last(as(admin, "admin", "user", "create", "bob"))
	pub := filepath.Join(n.home, "ci.pub")
	as(admin, "admin", "project", "create", "app", "--repository", gun, "--signer", "ci", "--public-key-out", pub)

	// The owner delegates to the project's key and hands the snapshot key
	// to the server, with the notary client.
	n.cmd.OK(t, n.notary("init", gun)...)
	n.cmd.OK(t, n.notary("key", "rotate", gun, "snapshot", "-r")...)
	n.cmd.OK(t, n.notary("delegation", "add", gun, "targets/ci", pub, "--all-paths")...)
	n.cmd.OK(t, n.notary("delegation", "add", gun, "targets/releases", pub, "--all-paths")...)
	n.cmd.OK(t, n.notary("publish", gun)...)
	as(admin, "admin", "policy", "create", "app", "release", "--required", "1", "--approvers", "alice", "--submitters", "bob", "--tags", "v[0-9.]+")

	digest := pushImage(t, reg.Host, "org/app", "v1.0")
	as(bob, "request", "submit", "--project", "app", "--policy", "release", gun+":v1.0", "--digest", digest)
	awaiting := func() string {
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			r := as(admin, "-o", "json", "request", "list", "--project", "app", "--status", "awaiting_approval")
			var rs []serviceapi.Request
			if json.Unmarshal([]byte(r.Stdout), &rs) == nil && len(rs) == 1 {
				return rs[0].ID
			}
			time.Sleep(200 * time.Millisecond)
		}
		t.Fatal("no request awaits approval")
		return ""
	}
	id := awaiting()
	as(alice, "request", "approve", id, "--comment", "release 1.0")
	var signed []row
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		rows := n.entries(0)
		if len(find(rows, audit.RequestSign, gun)) > 0 {
			signed = rows
			break
		}
		time.Sleep(300 * time.Millisecond)
	}
	if signed == nil {
		t.Fatal("no request.sign entry within 60 s")
	}

	// The events of the flow, in this order, each once.
	want := []struct {
		typ   audit.EventType
		actor string
		match func(audit.Event) bool
	}{
		{audit.ProjectCreate, "system/admin_token", func(e audit.Event) bool { return e.Subject.Project == "app" }},
		{audit.KeyCreate, "system/admin_token", func(e audit.Event) bool { return e.Subject.Project == "app" }},
		{audit.TUFPublish, "", func(e audit.Event) bool { return e.Subject.GUN == gun }}, // the owner's
		{audit.PolicyCreate, "system/admin_token", func(e audit.Event) bool { return e.Subject.Policy == "release" }},
		{audit.RequestSubmit, "bob", func(e audit.Event) bool { return e.Subject.RequestID == id && e.Subject.Digest == digest }},
		{audit.RequestApprove, "alice", func(e audit.Event) bool { return e.Subject.RequestID == id }},
		{audit.TUFPublish, "system/signing-service", func(e audit.Event) bool { return e.Subject.GUN == gun }},
		{audit.RequestSign, "", func(e audit.Event) bool {
			r, _ := roleSHA(e, "targets/ci")
			return e.Subject.RequestID == id && e.Subject.Tag == "v1.0" && r != ""
		}},
	}
	i := 0
	for _, r := range signed {
		if i < len(want) && r.ev.Type == want[i].typ && want[i].match(r.ev) {
			if want[i].actor != "" && r.ev.Actor.String() != want[i].actor {
				t.Errorf("%s: actor %s, want %s", r.ev.Type, r.ev.Actor, want[i].actor)
			}
			i++
		}
	}
	// A denial, with its comment.
	pushImage(t, reg.Host, "org/app", "v2.0")
	as(bob, "request", "submit", "--project", "app", "--policy", "release", gun+":v2.0")
	denied := awaiting()
	as(alice, "request", "deny", denied, "--comment", "not this one")
	ok := false
	for _, r := range n.entries(len(signed) + 2) {
		ok = ok || r.ev.Type == audit.RequestDeny && r.ev.Subject.RequestID == denied && r.ev.Comment == "not this one" && r.ev.Actor.String() == "alice"
	}
	if !ok {
		t.Errorf("no request.deny entry of %s by alice with its comment", denied)
	}
	if i < len(want) {
		var got []string
		for _, r := range signed {
			got = append(got, fmt.Sprintf("%d %s %s %s", r.Index, r.ev.Type, r.ev.Actor, r.ev.Subject))
		}
		t.Errorf("the log lacks %s (by %q) after the events before it; it holds:\n%s", want[i].typ, want[i].actor, strings.Join(got, "\n"))
	}
}
