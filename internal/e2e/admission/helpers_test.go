package admission

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	authnv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

// Passphrases of the Docker trust directories.
const (
	rootPass = "admission-root-pass"
	repoPass = "admission-repo-pass"
)

// tool runs a client program with its own HOME and Docker configuration.
type tool struct {
	t      *testing.T
	config string // DOCKER_CONFIG
	cmd    e2etest.Command
	trust  string // the trust server URL
	caFile string
}

func newTool(t *testing.T, dir, name, trustURL, caFile string) *tool {
	home := filepath.Join(dir, name)
	cfg := filepath.Join(home, "docker")
	if err := os.MkdirAll(cfg, 0o700); err != nil {
		t.Fatal(err)
	}
	extra := []string{
		"DOCKER_CONFIG=" + cfg,
		"DOCKER_CONTENT_TRUST_SERVER=" + trustURL,
		"DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE=" + rootPass,
		"DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=" + repoPass,
		"NOTARY_ROOT_PASSPHRASE=" + rootPass,
		"NOTARY_TARGETS_PASSPHRASE=" + repoPass,
		"NOTARY_SNAPSHOT_PASSPHRASE=" + repoPass,
		"NOTARY_DELEGATION_PASSPHRASE=" + repoPass,
		"DOCKER_CLI_HINTS=false",
	}
	env := append(e2etest.BaseEnv(home), append(extra, "DOCKER_HOST=unix://"+filepath.Join(home, "no-docker-daemon.sock"))...)
	return &tool{t: t, config: cfg, trust: trustURL, caFile: caFile, cmd: e2etest.Command{Env: env, Extra: extra, Dir: home}}
}

func (c *tool) docker(args ...string) *e2etest.Result {
	c.t.Helper()
	return c.cmd.OK(c.t, append([]string{"docker"}, args...)...)
}

func (c *tool) notary(args ...string) *e2etest.Result {
	c.t.Helper()
	return c.cmd.OK(c.t, append([]string{"notary", "-s", c.trust, "--tlscacert", c.caFile, "-d", filepath.Join(c.config, "trust")}, args...)...)
}

// pushImage pushes a one-layer image holding content to reg as repo:tag
// and returns its manifest digest and size.
func pushImage(t *testing.T, reg *e2etest.Registry, dir, repo, tag, content string) (digest string, size int) {
	t.Helper()
	e2etest.Need(t, "skopeo")
	layout := e2etest.WriteOCILayout(t, filepath.Join(dir, "oci-"+strings.ReplaceAll(repo, "/", "-")+"-"+tag), tag, content)
	c := e2etest.Command{Env: e2etest.BaseEnv(dir), Dir: dir}
	c.OK(t, "skopeo", "--insecure-policy", "copy", "--dest-tls-verify=false", "oci:"+layout+":"+tag, "docker://"+reg.Host+"/"+repo+":"+tag)
	req, _ := http.NewRequest(http.MethodHead, "http://"+reg.Host+"/v2/"+repo+"/manifests/"+tag, nil)
	req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	digest = resp.Header.Get("Docker-Content-Digest")
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("HEAD %s:%s: no digest (%d)", repo, tag, resp.StatusCode)
	}
	fmt.Sscan(resp.Header.Get("Content-Length"), &size)
	return digest, size
}

// cosignBin finds the real cosign as internal/oci's tests do:
// $SIGNET_COSIGN_BIN, else test-deps.sh's cache, else PATH.
func cosignBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SIGNET_COSIGN_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			e2etest.Missing(t, "cosign", "SIGNET_COSIGN_BIN=%s: %v", p, err)
		}
		return p
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache")
	}
	p := filepath.Join(cache, "signet", "tools", "cosign@v3.1.3", "cosign")
	if _, err := os.Stat(p); err == nil {
		return p
	}
	if p, err := exec.LookPath("cosign"); err == nil {
		return p
	}
	e2etest.Missing(t, "cosign", "cosign v3.1.3 not found (neither $SIGNET_COSIGN_BIN, %s nor cosign on PATH)", p)
	return ""
}

// cosign runs the real cosign offline in its own HOME.
func cosign(t *testing.T, home string, args ...string) *e2etest.Result {
	t.Helper()
	env := append(e2etest.BaseEnv(home), "DOCKER_CONFIG="+filepath.Join(home, "docker"), "TUF_ROOT="+filepath.Join(home, "tuf"), "COSIGN_PASSWORD=test", "COSIGN_YES=true")
	c := e2etest.Command{Env: env, Dir: home, Timeout: 3 * time.Minute}
	return c.OK(t, append([]string{cosignBin(t)}, args...)...)
}

// auditServer is the audit log's append API over TLS, as signet-server
// serves it, on a log of its own (SQLite) — stoppable, to test what the
// webhook does when the log is down.
type auditServer struct {
	t      *testing.T
	addr   string
	URL    string
	Token  string
	store  *sqlstore.AuditLog
	h      http.Handler
	tlsCfg *tls.Config

	mu  sync.Mutex
	srv *http.Server
}

func startAudit(t *testing.T, ca *e2etest.CA, dir string) *auditServer {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), "sqlite:"+filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.New(audit.Config{Store: st.AuditLog(), Origin: "signet.test/audit", Signer: key, Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	a := &auditServer{t: t, Token: "audit-token-for-the-webhook", store: st.AuditLog()}
	webhook := audit.Actor{Kind: audit.ActorUser, Name: "signet-admission"}
	ah, err := audit.NewAppendHandler(audit.AppendHandlerConfig{Log: l, Actor: func(r *http.Request) (audit.Actor, error) {
		if r.Header.Get("Authorization") != "Bearer "+a.Token {
			return audit.Actor{}, errors.New("bad token")
		}
		return webhook, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(audit.AppendPath, ah)
	a.h = mux
	cert, key2 := ca.MustIssue(t, "audit")
	pair, err := tls.LoadX509KeyPair(cert, key2)
	if err != nil {
		t.Fatal(err)
	}
	a.tlsCfg = &tls.Config{Certificates: []tls.Certificate{pair}}
	a.addr = e2etest.FreeAddr(t)
	a.URL = "https://" + a.addr
	a.start()
	t.Cleanup(a.stop)
	return a
}

func (a *auditServer) start() {
	a.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", a.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		a.t.Fatalf("audit server: %v", err)
	}
	srv := &http.Server{Handler: a.h, TLSConfig: a.tlsCfg}
	go srv.ServeTLS(ln, "", "")
	a.mu.Lock()
	a.srv = srv
	a.mu.Unlock()
}

func (a *auditServer) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Close()
		a.srv = nil
	}
}

// events returns every event in the log, waiting (bounded) until at
// least min are there.
func (a *auditServer) events(t *testing.T, min int) []audit.Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := a.store.State(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if int(st.Size) >= min || time.Now().After(deadline) {
			es, err := a.store.Entries(t.Context(), 0, int(st.Size))
			if err != nil {
				t.Fatal(err)
			}
			var out []audit.Event
			for _, e := range es {
				ev, err := audit.ParseEvent(e.Data)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, ev)
			}
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// await returns the events whose request UID (Origin["uid"]) is uid,
// waiting (bounded) until there are want of them.
func (a *auditServer) await(t *testing.T, uid string, want int) []audit.Event {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var out []audit.Event
		for _, e := range a.events(t, 0) {
			if e.Origin["uid"] == uid {
				out = append(out, e)
			}
		}
		if len(out) >= want || time.Now().After(deadline) {
			return out
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// find returns the events of a type whose images include image.
func find(es []audit.Event, typ audit.EventType, image string) []audit.Event {
	var out []audit.Event
	for _, e := range es {
		if e.Type != typ {
			continue
		}
		for _, i := range append([]string{e.Subject.Image}, e.Images...) {
			if strings.Contains(i, image) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// webhook is a running signet-admission binary.
type webhook struct {
	t    *testing.T
	url  string
	hc   *http.Client
	proc *e2etest.Process
}

var listeningRE = regexp.MustCompile(`listening on https://(\S+) `)

func startWebhook(t *testing.T, ca *e2etest.CA, dir, policy string, extra ...string) *webhook {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	pf := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(pf, []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, key := ca.MustIssue(t, "signet-admission")
	addr := e2etest.FreeAddr(t)
	args := append([]string{e2etest.Binary(t, "signet-admission"), "--listen", addr, "--tls-cert", cert, "--tls-key", key, "--policy", pf, "--log-level", "debug"}, extra...)
	p := e2etest.Daemon(t, e2etest.ProcessOptions{Name: "signet-admission", Args: args, Dir: dir, Env: e2etest.BaseEnv(dir), LogFile: filepath.Join(dir, "admission.log")})
	w := &webhook{t: t, url: "https://" + addr, hc: e2etest.HTTPSClient(t, ca.CAFile), proc: p}
	if err := e2etest.WaitHTTP(t.Context(), w.hc, w.url+"/healthz", e2etest.Status200, p.Done(), 30*time.Second); err != nil {
		t.Fatalf("signet-admission: %v\n%s", err, p.LogTail(30))
	}
	if !listeningRE.MatchString(p.Log()) {
		t.Fatalf("signet-admission did not print its listening line:\n%s", p.Log())
	}
	return w
}

// obj makes the raw object of a review.
func obj(t *testing.T, v any) runtime.RawExtension {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return runtime.RawExtension{Raw: b}
}

var uidN int

// newReview makes an AdmissionReview of a CREATE.
func newReview(t *testing.T, group, kind, ns string, object any, user string) *admissionv1.AdmissionReview {
	uidN++
	version := "v1"
	return &admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID:       types.UID(fmt.Sprintf("uid-%d", uidN)),
			Kind:      metav1.GroupVersionKind{Group: group, Version: version, Kind: kind},
			Resource:  metav1.GroupVersionResource{Group: group, Version: version, Resource: strings.ToLower(kind) + "s"},
			Namespace: ns,
			Operation: admissionv1.Create,
			UserInfo:  authnv1.UserInfo{Username: user, UID: user + "-uid", Groups: []string{"system:authenticated"}},
			Object:    obj(t, object),
		},
	}
}

// post sends a review to path and returns the response (the HTTP status
// must be 200).
func (w *webhook) post(t *testing.T, path string, rev *admissionv1.AdmissionReview) *admissionv1.AdmissionResponse {
	t.Helper()
	b, err := json.Marshal(rev)
	if err != nil {
		t.Fatal(err)
	}
	status, body := w.raw(t, path, "application/json", b)
	if status != http.StatusOK {
		t.Fatalf("POST %s: HTTP %d: %s", path, status, body)
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("POST %s: %v\n%s", path, err, body)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil || out.Response.UID != rev.Request.UID {
		t.Fatalf("POST %s: answer is not the review's response: %s", path, body)
	}
	return out.Response
}

func (w *webhook) raw(t *testing.T, path, ctype string, body []byte) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, w.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := w.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// metric returns a metric's value from /metrics (-1 when absent).
func (w *webhook) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := w.hc.Get(w.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			var v float64
			fmt.Sscan(strings.TrimPrefix(line, name+" "), &v)
			return v
		}
	}
	return -1
}

// patchOps decodes a JSONPatch.
func patchOps(t *testing.T, r *admissionv1.AdmissionResponse) map[string]string {
	t.Helper()
	out := map[string]string{}
	if r.Patch == nil {
		return out
	}
	if r.PatchType == nil || *r.PatchType != admissionv1.PatchTypeJSONPatch {
		t.Fatalf("patch type %v", r.PatchType)
	}
	var ops []struct{ Op, Path, Value string }
	if err := json.Unmarshal(r.Patch, &ops); err != nil {
		t.Fatalf("patch %s: %v", r.Patch, err)
	}
	for _, o := range ops {
		if o.Op != "replace" {
			t.Fatalf("patch op %q", o.Op)
		}
		out[o.Path] = o.Value
	}
	return out
}

func message(r *admissionv1.AdmissionResponse) string {
	if r.Result == nil {
		return ""
	}
	return r.Result.Message
}
