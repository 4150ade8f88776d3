package admission

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	arv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/e2e/inproc"
)

func pod(name string, images ...string) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}
	for i, img := range images {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: fmt.Sprintf("c%d", i), Image: img})
	}
	return p
}

func template(images ...string) corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}}, Spec: pod("", images...).Spec}
}

func deployment(name string, images ...string) *appsv1.Deployment {
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}},
			Template: template(images...),
		},
	}
}

// fixture is the trust data and images every case reads.
type fixture struct {
	reg                *e2etest.Registry
	app, cos, none     string // repositories (registry host included)
	digestA, digestB   string // alice signs A as app:v1; bob pointed releases' v1 to B
	digestC            string // cos:v1, signed with cosign
	cosignPub, cosign2 string
}

// TestAdmission runs signet-admission against trust data made by the real
// docker trust and notary clients on signet-server, and signatures made by
// the real cosign, first with AdmissionReviews posted to it, then behind a
// real kube-apiserver.
func TestAdmission(t *testing.T) {
	e2etest.Need(t, "docker", "notary", "docker-registry", "skopeo")
	dir := t.TempDir()
	ca := e2etest.TestCA(t, filepath.Join(dir, "pki"))
	trustSrv := inproc.StartServer(t, inproc.ServerOptions{CA: ca, LogLevel: "info"})
	reg := e2etest.StartRegistry(t, "")
	aud := startAudit(t, ca, filepath.Join(dir, "audit"))

	f := &fixture{reg: reg, app: reg.Host + "/team/app", cos: reg.Host + "/team/cos", none: reg.Host + "/team/none"}
	var sizeA, sizeB int
	f.digestA, sizeA = pushImage(t, reg, dir, "team/app", "v1", "the image alice built\n")
	f.digestB, sizeB = pushImage(t, reg, dir, "team/app", "evil", "the image bob slipped in\n")
	f.digestC, _ = pushImage(t, reg, dir, "team/cos", "v1", "an image signed with cosign\n")
	pushImage(t, reg, dir, "team/none", "v1", "an image nobody signed\n")

	// Docker Content Trust: the admin makes the repository with two
	// signers; alice signs v1 → A with `docker trust sign`; bob, a signer
	// too (so his key is in targets/releases), points v1 in
	// targets/releases to B: the hole of DCT.
	admin := newTool(t, dir, "admin", trustSrv.URL, trustSrv.CAFile)
	alice := newTool(t, dir, "alice", trustSrv.URL, trustSrv.CAFile)
	bob := newTool(t, dir, "bob", trustSrv.URL, trustSrv.CAFile)
	keysDir := filepath.Join(dir, "keys")
	if err := os.MkdirAll(keysDir, 0o700); err != nil {
		t.Fatal(err)
	}
	alice.docker("trust", "key", "generate", "alice", "--dir", keysDir)
	bob.docker("trust", "key", "generate", "bob", "--dir", keysDir)
	admin.docker("trust", "signer", "add", "--key", filepath.Join(keysDir, "alice.pub"), "alice", f.app)
	admin.docker("trust", "signer", "add", "--key", filepath.Join(keysDir, "bob.pub"), "bob", f.app)
	hexA, hexB := strings.TrimPrefix(f.digestA, "sha256:"), strings.TrimPrefix(f.digestB, "sha256:")
	admin.notary("addhash", f.app, "v1", fmt.Sprint(sizeA), "--sha256", hexA, "-p")
	r := alice.docker("trust", "sign", f.app+":v1")
	e2etest.WantOutput(t, r, "Successfully signed "+f.app+":v1")
	bob.notary("addhash", f.app, "v1", fmt.Sprint(sizeB), "--sha256", hexB, "-r", "targets/releases", "-p")
	r = admin.notary("list", f.app, "-r", "targets/releases")
	e2etest.WantOutput(t, r, hexB)
	r = admin.notary("list", f.app, "-r", "targets/alice")
	e2etest.WantOutput(t, r, hexA)

	// cosign: the real cosign signs cos:v1 (C) and app's A with one key; a
	// second key signs nothing.
	cosHome := filepath.Join(dir, "cosign")
	if err := os.MkdirAll(cosHome, 0o700); err != nil {
		t.Fatal(err)
	}
	cosign(t, cosHome, "generate-key-pair")
	f.cosignPub = filepath.Join(cosHome, "cosign.pub")
	for _, ref := range []string{f.cos + "@" + f.digestC, f.app + "@" + f.digestA} {
		cosign(t, cosHome, "sign", "--key", filepath.Join(cosHome, "cosign.key"), "--use-signing-config=false", "--tlog-upload=false", "--allow-http-registry", "--yes", ref)
	}
	other := filepath.Join(dir, "cosign2")
	if err := os.MkdirAll(other, 0o700); err != nil {
		t.Fatal(err)
	}
	cosign(t, other, "generate-key-pair")
	f.cosign2 = filepath.Join(other, "cosign.pub")

	policy := fmt.Sprintf(`# signet-admission policy of the end-to-end test
trust_server: %[1]s
trust_ca: %[2]s
audit:
  url: %[3]s
  token: %[4]s
  ca: %[2]s
cache:
  ttl: 1s
  max_stale: 0s
namespaces:
  - name: prod
    mode: enforce
    break_glass: true
    rules:
      - images: "%[5]s/team/*"
        dct: {signers: [alice, bob], threshold: 2}
      - images: "%[5]s/team/app"
        dct: {signers: [alice]}
      - images: "%[5]s/team/cos"
        cosign: {keys: [%[6]s]}
  - name: strict
    rules:
      - images: "%[5]s/**"
        dct: {signers: [alice], releases: must_agree}
  - name: both
    rules:
      - images: "%[5]s/team/app"
        dct: {signers: [alice]}
        cosign: {keys: [%[6]s]}
  - name: bothbad
    rules:
      - images: "%[5]s/team/app"
        dct: {signers: [alice]}
        cosign: {keys: [%[7]s]}
  - name: "dev-*"
    mode: warn
    rules:
      - images: "%[5]s/**"
        dct: {signers: [alice]}
  - name: observed
    mode: audit
    rules:
      - images: "%[5]s/**"
        dct: {signers: [alice]}
  - name: locked
    default: deny
    rules:
      - images: "%[5]s/team/app"
        dct: {signers: [alice]}
`, trustSrv.URL, trustSrv.CAFile, aud.URL, aud.Token, reg.Host, f.cosignPub, f.cosign2)
	wh := startWebhook(t, ca, filepath.Join(dir, "webhook"), policy, "--revalidate-interval", "1s")

	t.Run("releases hole", func(t *testing.T) {
		// By tag: resolved from alice's own role, pinned to A, with a
		// warning that targets/releases says B.
		rev := newReview(t, "", "Pod", "prod", pod("web", f.app+":v1"), "alice@example")
		v := wh.post(t, "/validate", rev)
		if !v.Allowed {
			t.Fatalf("app:v1 refused: %s", message(v))
		}
		if !strings.Contains(strings.Join(v.Warnings, "\n"), "targets/releases points "+f.app+":v1 to "+f.digestB) {
			t.Errorf("no warning about targets/releases: %q", v.Warnings)
		}
		m := wh.post(t, "/mutate", rev)
		if ops := patchOps(t, m); len(ops) != 1 || ops["/spec/containers/0/image"] != f.app+"@"+f.digestA {
			t.Fatalf("mutate: %v, want the image pinned to alice's %s", ops, f.digestA)
		}
		// By B's digest, which only targets/releases names: refused, the
		// message naming the image, the rule and what is missing.
		v = wh.post(t, "/validate", newReview(t, "", "Pod", "prod", pod("web", f.app+"@"+f.digestB), "alice@example"))
		msg := message(v)
		if v.Allowed || v.Result.Code != 403 || !strings.Contains(msg, f.app+"@"+f.digestB) || !strings.Contains(msg, `rule "`+f.app+`" of namespace "prod"`) ||
			!strings.Contains(msg, "targets/alice") || !strings.Contains(msg, f.digestB) {
			t.Fatalf("B by digest: allowed=%v %q", v.Allowed, msg)
		}
		// With releases: must_agree the tag itself is refused.
		v = wh.post(t, "/validate", newReview(t, "", "Pod", "strict", pod("web", f.app+":v1"), "alice@example"))
		if v.Allowed || !strings.Contains(message(v), "targets/releases points it to "+f.digestB) {
			t.Fatalf("strict app:v1: allowed=%v %q", v.Allowed, message(v))
		}
	})

	t.Run("signed by digest", func(t *testing.T) {
		rev := newReview(t, "", "Pod", "prod", pod("web", f.app+"@"+f.digestA), "alice@example")
		if v := wh.post(t, "/validate", rev); !v.Allowed {
			t.Fatalf("A by digest refused: %s", message(v))
		}
		if m := wh.post(t, "/mutate", rev); m.Patch != nil || !m.Allowed {
			t.Fatalf("mutate of a digest: patch %s", m.Patch)
		}
	})

	t.Run("unsigned", func(t *testing.T) {
		for _, c := range []struct{ image, want string }{
			{f.app + ":nosig", "no trust data for " + f.app + ":nosig"},
			{f.none + ":v1", "no trust data for " + f.none},
			{f.none + "@" + f.digestA, "no trust data for " + f.none},
		} {
			v := wh.post(t, "/validate", newReview(t, "", "Pod", "prod", pod("web", f.app+":v1", c.image), "alice@example"))
			if v.Allowed || !strings.Contains(message(v), c.want) || !strings.Contains(message(v), `containers[1] "c1"`) {
				t.Errorf("%s: allowed=%v %q", c.image, v.Allowed, message(v))
			}
		}
		// The threshold rule of team/* (alice and bob) covers none; the
		// more specific team/app rule wins for app.
		v := wh.post(t, "/validate", newReview(t, "", "Pod", "prod", pod("web", f.none+":v1"), "x"))
		if !strings.Contains(message(v), `rule "`+f.reg.Host+`/team/*"`) {
			t.Errorf("none: %q, want the team/* rule named", message(v))
		}
		// No rule: admitted, unless the namespace's default is deny.
		other := "docker.io/library/busybox:1.36"
		if v := wh.post(t, "/validate", newReview(t, "", "Pod", "prod", pod("web", other), "x")); !v.Allowed {
			t.Errorf("an image without a rule in prod: %s", message(v))
		}
		if v := wh.post(t, "/validate", newReview(t, "", "Pod", "locked", pod("web", other), "x")); v.Allowed || !strings.Contains(message(v), "default is deny") {
			t.Errorf("an image without a rule in locked: allowed=%v %q", v.Allowed, message(v))
		}
		// A namespace without policy admits everything.
		if v := wh.post(t, "/validate", newReview(t, "", "Pod", "elsewhere", pod("web", f.none+":v1"), "x")); !v.Allowed {
			t.Errorf("namespace without policy: %s", message(v))
		}
	})

	t.Run("cosign", func(t *testing.T) {
		rev := newReview(t, "", "Pod", "prod", pod("web", f.cos+":v1"), "x")
		if v := wh.post(t, "/validate", rev); !v.Allowed {
			t.Fatalf("cos:v1 refused: %s", message(v))
		}
		if ops := patchOps(t, wh.post(t, "/mutate", rev)); ops["/spec/containers/0/image"] != f.cos+"@"+f.digestC {
			t.Fatalf("mutate cos:v1: %v", ops)
		}
		// Both: the digest alice signs must carry the cosign signature.
		if v := wh.post(t, "/validate", newReview(t, "", "Pod", "both", pod("web", f.app+":v1"), "x")); !v.Allowed {
			t.Fatalf("both, app:v1: %s", message(v))
		}
		v := wh.post(t, "/validate", newReview(t, "", "Pod", "bothbad", pod("web", f.app+":v1"), "x"))
		if v.Allowed || !strings.Contains(message(v), "no cosign signature of "+f.digestA+" verifies with "+f.cosign2) {
			t.Fatalf("bothbad: allowed=%v %q", v.Allowed, message(v))
		}
		// cos's B-less repository: the image app:evil (B) has no cosign
		// signature, and no DCT either.
		v = wh.post(t, "/validate", newReview(t, "", "Pod", "both", pod("web", f.app+":evil"), "x"))
		if v.Allowed {
			t.Fatalf("both, app:evil admitted")
		}
	})

	t.Run("workloads", func(t *testing.T) {
		d := deployment("web", f.app+":v1", f.cos+":v1")
		d.Spec.Template.Spec.InitContainers = []corev1.Container{{Name: "init", Image: f.app + ":v1"}}
		rev := newReview(t, "apps", "Deployment", "prod", d, "x")
		if v := wh.post(t, "/validate", rev); !v.Allowed {
			t.Fatalf("deployment: %s", message(v))
		}
		ops := patchOps(t, wh.post(t, "/mutate", rev))
		want := map[string]string{
			"/spec/template/spec/initContainers/0/image": f.app + "@" + f.digestA,
			"/spec/template/spec/containers/0/image":     f.app + "@" + f.digestA,
			"/spec/template/spec/containers/1/image":     f.cos + "@" + f.digestC,
		}
		if fmt.Sprint(ops) != fmt.Sprint(want) {
			t.Fatalf("deployment patch %v, want %v", ops, want)
		}
		spec := template(f.app + ":v1").Spec
		spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: f.none + ":v1"}}}
		cron := &batchv1.CronJob{TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"}, ObjectMeta: metav1.ObjectMeta{Name: "nightly"},
			Spec: batchv1.CronJobSpec{Schedule: "@daily", JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: spec}}}}}
		v := wh.post(t, "/validate", newReview(t, "batch", "CronJob", "prod", cron, "x"))
		if v.Allowed || !strings.Contains(message(v), `ephemeralContainers[0] "debug"`) {
			t.Fatalf("cronjob with an unsigned ephemeral container: allowed=%v %q", v.Allowed, message(v))
		}
		spec.EphemeralContainers = nil
		cron.Spec.JobTemplate.Spec.Template.Spec = spec
		ops = patchOps(t, wh.post(t, "/mutate", newReview(t, "batch", "CronJob", "prod", cron, "x")))
		if ops["/spec/jobTemplate/spec/template/spec/containers/0/image"] != f.app+"@"+f.digestA || len(ops) != 1 {
			t.Fatalf("cronjob patch %v", ops)
		}
		for _, c := range []struct {
			group, kind string
			o           any
		}{
			{"apps", "StatefulSet", &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{Template: template(f.none + ":v1")}}},
			{"apps", "DaemonSet", &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: template(f.none + ":v1")}}},
			{"apps", "ReplicaSet", &appsv1.ReplicaSet{Spec: appsv1.ReplicaSetSpec{Template: template(f.none + ":v1")}}},
			{"batch", "Job", &batchv1.Job{Spec: batchv1.JobSpec{Template: template(f.none + ":v1")}}},
		} {
			if v := wh.post(t, "/validate", newReview(t, c.group, c.kind, "prod", c.o, "x")); v.Allowed || !strings.Contains(message(v), f.none) {
				t.Errorf("%s with an unsigned image: allowed=%v %q", c.kind, v.Allowed, message(v))
			}
		}
	})

	t.Run("warn and audit modes", func(t *testing.T) {
		rev := newReview(t, "", "Pod", "dev-team", pod("web", f.none+":v1"), "dev")
		v := wh.post(t, "/validate", rev)
		if !v.Allowed || !strings.Contains(strings.Join(v.Warnings, "\n"), "warn mode") || !strings.Contains(strings.Join(v.Warnings, "\n"), f.none) {
			t.Fatalf("warn: allowed=%v warnings %q", v.Allowed, v.Warnings)
		}
		if es := aud.await(t, string(rev.Request.UID), 1); len(es) != 1 || es[0].Type != audit.AdmissionAllow || !strings.Contains(es[0].Reason, "warn mode") || es[0].Subject.User != "dev" {
			t.Fatalf("warn mode audit entries %+v", es)
		}
		rev = newReview(t, "", "Pod", "observed", pod("web", f.none+":v1"), "dev")
		v = wh.post(t, "/validate", rev)
		if !v.Allowed || len(v.Warnings) != 0 {
			t.Fatalf("audit: allowed=%v warnings %q", v.Allowed, v.Warnings)
		}
		if es := aud.await(t, string(rev.Request.UID), 1); len(es) != 1 || es[0].Type != audit.AdmissionAllow || !strings.Contains(es[0].Reason, "audit mode") || es[0].Subject.Namespace != "observed" {
			t.Fatalf("audit mode audit entries %+v", es)
		}
		// Enforce: the denial is recorded too.
		rev = newReview(t, "", "Pod", "prod", pod("web", f.none+":v1"), "dev")
		if v := wh.post(t, "/validate", rev); v.Allowed {
			t.Fatal("prod admitted none:v1")
		}
		if es := aud.await(t, string(rev.Request.UID), 1); len(es) != 1 || es[0].Type != audit.AdmissionDeny || !strings.Contains(es[0].Reason, "no trust data") {
			t.Fatalf("deny audit entries %+v", es)
		}
	})

	t.Run("break-glass", func(t *testing.T) {
		p := pod("hotfix", f.none+":v1")
		p.Annotations = map[string]string{"signet.dev/break-glass": "INC-42: registry signing outage"}
		rev := newReview(t, "", "Pod", "prod", p, "oncall@example")
		v := wh.post(t, "/validate", rev)
		if !v.Allowed || !strings.Contains(strings.Join(v.Warnings, "\n"), "BREAK-GLASS by oncall@example") {
			t.Fatalf("break-glass: allowed=%v %q %q", v.Allowed, message(v), v.Warnings)
		}
		// Appended before the answer: in the log already.
		es := find(aud.await(t, string(rev.Request.UID), 1), audit.AdmissionBreakGlass, f.none+":v1")
		if len(es) != 1 || es[0].Comment != "INC-42: registry signing outage" || es[0].Subject.User != "oncall@example" ||
			es[0].Subject.Namespace != "prod" || es[0].Origin["kind"] != "Pod" || es[0].Origin["name"] != "hotfix" || es[0].Actor.Name != "signet-admission" {
			t.Fatalf("break-glass audit entries %+v", es)
		}
		// Not allowed in a namespace without break_glass.
		v = wh.post(t, "/validate", newReview(t, "", "Pod", "strict", p, "oncall@example"))
		if v.Allowed || !strings.Contains(message(v), `break-glass is not allowed in namespace "strict"`) {
			t.Fatalf("break-glass in strict: allowed=%v %q", v.Allowed, message(v))
		}
		// On a Deployment's pod template.
		d := deployment("hotfix", f.none+":v1")
		d.Spec.Template.Annotations = p.Annotations
		if v := wh.post(t, "/validate", newReview(t, "apps", "Deployment", "prod", d, "oncall@example")); !v.Allowed {
			t.Fatalf("break-glass deployment: %s", message(v))
		}
		// The audit log down: refused, and nothing recorded.
		aud.stop()
		rev = newReview(t, "", "Pod", "prod", p, "oncall@example")
		v = wh.post(t, "/validate", rev)
		aud.start()
		if v.Allowed || !strings.Contains(message(v), "break-glass refused: the audit log could not record it") {
			t.Fatalf("break-glass with the audit log down: allowed=%v %q", v.Allowed, message(v))
		}
		if es := aud.await(t, string(rev.Request.UID), 0); len(find(es, audit.AdmissionBreakGlass, f.none)) != 0 {
			t.Fatalf("a refused break-glass was recorded as granted: %+v", es)
		}
		// The log back: granted again.
		if v := wh.post(t, "/validate", newReview(t, "", "Pod", "prod", p, "oncall@example")); !v.Allowed {
			t.Fatalf("break-glass with the audit log back: %s", message(v))
		}
	})

	t.Run("malformed and unknown", func(t *testing.T) {
		for _, c := range []struct{ name, body, ctype string }{
			{"not JSON", "{", "application/json"},
			{"wrong kind", `{"apiVersion":"admission.k8s.io/v1","kind":"Pod","request":{"uid":"1","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE"}}`, "application/json"},
			{"v1beta1", `{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"1","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE"}}`, "application/json"},
			{"no request", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, "application/json"},
			{"no uid", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"version":"v1","kind":"Pod"},"operation":"CREATE"}}`, "application/json"},
			{"two values", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"1","kind":{"version":"v1","kind":"Pod"},"operation":"CREATE"}} {}`, "application/json"},
		} {
			if status, b := wh.raw(t, "/validate", c.ctype, []byte(c.body)); status != http.StatusBadRequest || len(b) == 0 {
				t.Errorf("%s: HTTP %d %s", c.name, status, b)
			}
		}
		if status, _ := wh.raw(t, "/validate", "text/plain", []byte("{}")); status != http.StatusUnsupportedMediaType {
			t.Errorf("text/plain: HTTP %d", status)
		}
		// An object that does not decode as its kind: refused with 400.
		rev := newReview(t, "", "Pod", "prod", pod("web", f.app+":v1"), "x")
		rev.Request.Object.Raw = []byte(`{"spec":{"containers":"nope"}}`)
		if v := wh.post(t, "/validate", rev); v.Allowed || v.Result.Code != 400 {
			t.Errorf("bad object: allowed=%v %v", v.Allowed, v.Result)
		}
		// Kinds without a pod spec, and DELETE: admitted untouched.
		cm := map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "metadata": map[string]any{"name": "x"}, "data": map[string]string{"image": f.none + ":v1"}}
		for _, path := range []string{"/validate", "/mutate"} {
			if v := wh.post(t, path, newReview(t, "", "ConfigMap", "prod", cm, "x")); !v.Allowed || v.Patch != nil {
				t.Errorf("%s ConfigMap: %+v", path, v)
			}
		}
		del := newReview(t, "", "Pod", "prod", pod("web", f.none+":v1"), "x")
		del.Request.Operation = admissionv1.Delete
		if v := wh.post(t, "/validate", del); !v.Allowed {
			t.Errorf("DELETE: %s", message(v))
		}
	})

	t.Run("trust server unreachable", func(t *testing.T) {
		down := "https://" + e2etest.FreeAddr(t)
		p2 := strings.Replace(policy, trustSrv.URL, down, 1)
		w2 := startWebhook(t, ca, filepath.Join(dir, "webhook-down"), p2)
		start := time.Now()
		v := w2.post(t, "/validate", newReview(t, "", "Pod", "prod", pod("web", f.app+":v1"), "x"))
		if v.Allowed || !strings.Contains(message(v), "cannot be verified now") || !strings.Contains(message(v), "could not reach the trust server") {
			t.Fatalf("enforce with the trust server down: allowed=%v %q", v.Allowed, message(v))
		}
		v = w2.post(t, "/validate", newReview(t, "", "Pod", "dev-x", pod("web", f.app+":v1"), "x"))
		if !v.Allowed || !strings.Contains(strings.Join(v.Warnings, "\n"), "cannot be verified now") {
			t.Fatalf("warn with the trust server down: allowed=%v %q", v.Allowed, v.Warnings)
		}
		if d := time.Since(start); d > 9*time.Second {
			t.Fatalf("two decisions with the trust server down took %v", d)
		}
	})

	k := e2etest.StartKube(t, ca)
	t.Run("kube-apiserver", func(t *testing.T) { testKube(t, k, ca, wh, f) })

	// A second webhook that lists the running pods through the API server
	// when it revalidates: it admitted nothing itself, yet it finds the
	// break-glass and warn-mode pods that do not verify.
	tokenFile := filepath.Join(dir, "kube-token")
	if err := os.WriteFile(tokenFile, []byte(k.Admin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lister := startWebhook(t, ca, filepath.Join(dir, "webhook-pods"), policy, "--revalidate-interval", "1s",
		"--revalidate-pods", "--kube-api", k.URL, "--kube-token-file", tokenFile, "--kube-ca", ca.CAFile)
	waitMetric(t, lister, "signet_admission_unverified_running", func(v float64) bool { return v == 2 })

	t.Run("revocation", func(t *testing.T) {
		if got := wh.metric(t, "signet_admission_unverified_running"); got != 0 {
			t.Fatalf("unverified before revocation: %v", got)
		}
		before := len(aud.events(t, 0))
		alice.docker("trust", "revoke", "-y", f.app+":v1")
		deadline := time.Now().Add(30 * time.Second)
		for wh.metric(t, "signet_admission_unverified_running") < 1 {
			if time.Now().After(deadline) {
				t.Fatalf("revocation not detected within 30s:\n%s", wh.proc.LogTail(30))
			}
			time.Sleep(200 * time.Millisecond)
		}
		// The entries of what this webhook admitted (the pod lister's name
		// a pod instead).
		var es []audit.Event
		for time.Now().Before(deadline) {
			es = nil
			for _, e := range find(aud.events(t, before+1)[before:], audit.AdmissionUnverified, f.app) {
				if e.Origin["kind"] != "Pod" {
					es = append(es, e)
				}
			}
			if len(es) > 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(es) == 0 || es[0].Subject.Digest != f.digestA || !strings.Contains(es[0].Reason, "targets/alice") {
			t.Fatalf("admission.unverified entries %+v", es)
		}
		if !strings.Contains(wh.proc.Log(), "an admitted image no longer verifies") {
			t.Fatalf("no log line about the revoked image")
		}
		// The pod lister finds the running pod of app@A too.
		waitMetric(t, lister, "signet_admission_unverified_running", func(v float64) bool { return v == 3 })
		var pe []audit.Event
		for time.Now().Before(deadline) {
			pe = nil
			for _, e := range find(aud.events(t, 0), audit.AdmissionUnverified, f.app+"@"+f.digestA) {
				if e.Origin["kind"] == "Pod" && e.Origin["name"] == "web" && e.Subject.Namespace == "prod" {
					pe = append(pe, e)
				}
			}
			if len(pe) > 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(pe) != 1 {
			t.Fatalf("admission.unverified entries for the running pod prod/web: %+v", pe)
		}
		// And what was admitted is now refused.
		if v := wh.post(t, "/validate", newReview(t, "", "Pod", "prod", pod("web", f.app+":v1"), "x")); v.Allowed {
			t.Fatalf("app:v1 admitted after revocation")
		}
	})
}

// testKube registers the webhook with a real kube-apiserver and creates
// pods and deployments through it.
func testKube(t *testing.T, k *e2etest.Kube, ca *e2etest.CA, wh *webhook, f *fixture) {
	caPEM, err := os.ReadFile(ca.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"prod", "dev-a"} {
		k.CreateNamespace(t, ns, nil)
	}
	fail, none := arv1.Fail, arv1.SideEffectClassNone
	timeout, equivalent := int32(10), arv1.Equivalent
	ifNeeded := arv1.IfNeededReinvocationPolicy
	rules := []arv1.RuleWithOperations{
		{Operations: []arv1.OperationType{arv1.Create, arv1.Update}, Rule: arv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods", "pods/ephemeralcontainers", "replicationcontrollers", "podtemplates"}}},
		{Operations: []arv1.OperationType{arv1.Create, arv1.Update}, Rule: arv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments", "statefulsets", "daemonsets", "replicasets"}}},
		{Operations: []arv1.OperationType{arv1.Create, arv1.Update}, Rule: arv1.Rule{APIGroups: []string{"batch"}, APIVersions: []string{"v1"}, Resources: []string{"jobs", "cronjobs"}}},
	}
	sel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system"}}}}
	cc := func(path string) arv1.WebhookClientConfig {
		u := wh.url + path
		return arv1.WebhookClientConfig{URL: &u, CABundle: caPEM}
	}
	mwc := &arv1.MutatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "MutatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: "signet-admission"},
		Webhooks: []arv1.MutatingWebhook{{Name: "pin.signet.dev", ClientConfig: cc("/mutate"), Rules: rules, FailurePolicy: &fail, SideEffects: &none,
			TimeoutSeconds: &timeout, MatchPolicy: &equivalent, NamespaceSelector: sel, AdmissionReviewVersions: []string{"v1"}, ReinvocationPolicy: &ifNeeded}},
	}
	vwc := &arv1.ValidatingWebhookConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingWebhookConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: "signet-admission"},
		Webhooks: []arv1.ValidatingWebhook{{Name: "verify.signet.dev", ClientConfig: cc("/validate"), Rules: rules, FailurePolicy: &fail, SideEffects: &none,
			TimeoutSeconds: &timeout, MatchPolicy: &equivalent, NamespaceSelector: sel, AdmissionReviewVersions: []string{"v1"}}},
	}
	k.MustDo(t, http.MethodPost, "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", mwc, nil)
	k.MustDo(t, http.MethodPost, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", vwc, nil)

	// The API server picks the configurations up within a moment: wait
	// until a dry run of an unsigned pod is refused.
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, b := k.Do(t, http.MethodPost, "/api/v1/namespaces/prod/pods?dryRun=All", pod("probe", f.none+":v1"), nil)
		if status == http.StatusForbidden && strings.Contains(string(b), "signet-admission") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the webhook was not called within 30s: HTTP %d %s", status, b)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// An admitted pod is stored with the digest-pinned image.
	var got corev1.Pod
	k.MustDo(t, http.MethodPost, "/api/v1/namespaces/prod/pods", pod("web", f.app+":v1"), &got)
	if img := got.Spec.Containers[0].Image; img != f.app+"@"+f.digestA {
		t.Fatalf("stored pod image %q, want %s", img, f.app+"@"+f.digestA)
	}
	k.MustDo(t, http.MethodGet, "/api/v1/namespaces/prod/pods/web", nil, &got)
	if img := got.Spec.Containers[0].Image; img != f.app+"@"+f.digestA {
		t.Fatalf("read back pod image %q", img)
	}

	// A refused pod comes back with the webhook's message, and is not
	// stored.
	status, b := k.Do(t, http.MethodPost, "/api/v1/namespaces/prod/pods", pod("bad", f.app+"@"+f.digestB), nil)
	var st metav1.Status
	json.Unmarshal(b, &st)
	if status != http.StatusForbidden || !strings.Contains(st.Message, `admission webhook "verify.signet.dev" denied the request: signet-admission: image `+f.app+"@"+f.digestB) {
		t.Fatalf("pod with B: HTTP %d %s", status, b)
	}
	if status, _ := k.Do(t, http.MethodGet, "/api/v1/namespaces/prod/pods/bad", nil, nil); status != http.StatusNotFound {
		t.Fatalf("a refused pod was stored (GET: %d)", status)
	}

	// Deployments: pinned in the template; an unsigned one refused.
	var dep appsv1.Deployment
	k.MustDo(t, http.MethodPost, "/apis/apps/v1/namespaces/prod/deployments", deployment("web", f.app+":v1", f.cos+":v1"), &dep)
	if a, c := dep.Spec.Template.Spec.Containers[0].Image, dep.Spec.Template.Spec.Containers[1].Image; a != f.app+"@"+f.digestA || c != f.cos+"@"+f.digestC {
		t.Fatalf("stored deployment images %q, %q", a, c)
	}
	status, b = k.Do(t, http.MethodPost, "/apis/apps/v1/namespaces/prod/deployments", deployment("bad", f.none+":v1"), nil)
	if status != http.StatusForbidden || !strings.Contains(string(b), "no trust data for "+f.none) {
		t.Fatalf("unsigned deployment: HTTP %d %s", status, b)
	}

	// warn mode: admitted, the warning passed on in the Warning header.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, k.URL+"/api/v1/namespaces/dev-a/pods", strings.NewReader(mustJSON(t, pod("dev", f.none+":v1"))))
	req.Header.Set("Authorization", "Bearer "+k.User)
	req.Header.Set("Content-Type", "application/json")
	resp, err := k.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(strings.Join(resp.Header.Values("Warning"), " "), "warn mode") {
		t.Fatalf("warn-mode pod: HTTP %d, Warning %q", resp.StatusCode, resp.Header.Values("Warning"))
	}

	// Break-glass through the API server, as user dev.
	p := pod("hotfix", f.none+":v1")
	p.Annotations = map[string]string{"signet.dev/break-glass": "INC-7"}
	if status, b := k.DoAs(t, k.User, http.MethodPost, "/api/v1/namespaces/prod/pods", p, nil); status != http.StatusCreated {
		t.Fatalf("break-glass pod: HTTP %d %s", status, b)
	}
}

// waitMetric waits (bounded) until the webhook's metric satisfies ok.
func waitMetric(t *testing.T, w *webhook, name string, ok func(float64) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v := w.metric(t, name)
		if ok(v) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v after 30s\n%s", name, v, w.proc.LogTail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
