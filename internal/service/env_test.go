package service_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/client"
	"github.com/signet-trust/signet/internal/client/changes"
	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/registry"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/servercmd"
	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/service/serviceapi"
	"github.com/signet-trust/signet/internal/store"
	"github.com/signet-trust/signet/internal/store/sqlstore"
	"github.com/signet-trust/signet/internal/tuf"
	"github.com/signet-trust/signet/internal/tuf/trust"
)

// clock is real time plus an offset the test moves.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// repos is the server's in-process face, set once the server exists.
type repos struct{ srv *server.Server }

func (r *repos) Current(ctx context.Context, gun, role string) ([]byte, error) {
	return r.srv.Current(ctx, gun, role)
}
func (r *repos) SnapshotManaged(ctx context.Context, gun string) (bool, error) {
	return r.srv.SnapshotManaged(ctx, gun)
}
func (r *repos) Publish(ctx context.Context, gun string, files map[string][]byte) ([]store.File, error) {
	return r.srv.Publish(ctx, gun, files)
}

const adminToken = "test-admin-token-0123456789abcdefghijklmnop"

// env is the whole stack in process: SQLite, the custody core, the
// Notary server with the service's routes in its route table, an
// in-process registry.
type env struct {
	t      testing.TB
	st     *sqlstore.Store
	cust   *custody.Core
	srv    *server.Server
	svc    *service.Service
	clock  *clock
	url    string
	hc     *http.Client
	reg    string // registry host:port
	alog   *audit.Log
	api    *conformance
	owners map[string]*owner
	users  map[string]*serviceapi.Client
}

type envOptions struct {
	db       string // database URL; SQLite in a temp dir when empty
	registry string // host:port of a registry to share; a new one when empty
	origins  service.OriginVerifier
	config   func(*service.Config)
	noRun    bool // no background worker (tests that drive it)
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	db := o.db
	if db == "" {
		db = "sqlite:" + filepath.Join(t.TempDir(), "signet.db")
	}
	st, err := sqlstore.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cust, err := custody.Open(ctx, st, []byte("test passphrase"), custody.AlgorithmECDSA, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, st: st, cust: cust, clock: &clock{}, owners: map[string]*owner{}, users: map[string]*serviceapi.Client{}}
	if o.registry != "" {
		e.reg = o.registry
	} else {
		regSrv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
		t.Cleanup(regSrv.Close)
		e.reg = strings.TrimPrefix(regSrv.URL, "http://")
	}
	rp := &repos{}
	rc := &registry.Client{Keychain: registry.Anonymous, UserAgent: "signet-test"}
	cfg := service.Config{
		Store: st, Keys: cust, Repos: rp,
		Images:     servercmd.RegistryResolver(rc),
		Cosign:     servercmd.CosignRegistry(rc),
		Origins:    o.origins,
		AdminToken: adminToken, Now: e.clock.Now, SyncWait: 10 * time.Second, SigningLease: 3 * time.Second,
	}
	if o.config != nil {
		o.config(&cfg)
	}
	e.svc, err = service.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Replicas on PostgreSQL follow each other's writes, as signet-server
	// does.
	invCtx, stopInv := context.WithCancel(ctx)
	t.Cleanup(stopInv)
	inv := st.Invalidations(invCtx, nil)
	var maxStale time.Duration
	if inv != nil {
		maxStale = time.Second
	}
	e.srv, err = server.New(server.Config{Store: st, Custodian: cust, Groups: []server.Group{servercmd.ServiceGroup(e.svc)}, ServiceAuthorizer: e.svc,
		Invalidations: inv, CacheMaxStale: maxStale})
	if err != nil {
		t.Fatal(err)
	}
	rp.srv = e.srv
	ts := httptest.NewTLSServer(e.srv.Handler())
	t.Cleanup(ts.Close)
	e.url, e.hc = ts.URL, ts.Client()
	// Every answer of the API is checked against the OpenAPI document.
	e.api = newConformance(t, e.svc)
	e.hc.Transport = checkingTransport{base: e.hc.Transport, c: e.api}
	t.Cleanup(func() {
		for _, msg := range e.api.errs {
			t.Errorf("OpenAPI: %s", msg)
		}
	})
	if !o.noRun {
		runCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); e.svc.Run(runCtx) }()
		t.Cleanup(func() { cancel(); <-done })
	}
	return e
}

func (e *env) client(token string) *serviceapi.Client {
	return &serviceapi.Client{Server: e.url, HTTP: e.hc, Token: token}
}

func (e *env) admin() *serviceapi.Client { return e.client(adminToken) }

// user creates a user (with an e-mail address) and returns a client with
// their token.
func (e *env) user(name string) *serviceapi.Client {
	e.t.Helper()
	u, err := e.admin().CreateUser(context.Background(), serviceapi.CreateUser{Name: name, Email: name + "@example.com"})
	if err != nil {
		e.t.Fatalf("create user %s: %v", name, err)
	}
	e.users[name] = e.client(u.Token)
	return e.users[name]
}

// clientFor is the client of a user e.user made.
func (e *env) clientFor(name string) *serviceapi.Client {
	e.t.Helper()
	c := e.users[name]
	if c == nil {
		e.t.Fatalf("no user %s", name)
	}
	return c
}

// requests lists the stored requests as text.
func (e *env) requests() string {
	e.t.Helper()
	rs, err := e.st.ListRequests(context.Background(), service.RequestFilter{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "%s %s %s\n", r.ID, r.Policy, r.Status)
	}
	return b.String()
}

// memCache is a client cache in memory.
type memCache struct{ m map[string][]byte }

func (c *memCache) Get(role string) ([]byte, error) { return c.m[role], nil }
func (c *memCache) Put(role string, b []byte) error { c.m[role] = b; return nil }

// keyring holds the repository owner's keys.
type keyring map[string]crypto.Signer

func (k keyring) Signer(_ context.Context, id string) (crypto.Signer, bool, error) {
	s, ok := k[id]
	return s, ok, nil
}

// owner is a repository owner with their root and targets keys, as docker
// trust keeps them.
type owner struct {
	e             *env
	gun           string
	keys          keyring
	root, targets crypto.Signer
	cert          *x509.Certificate
	pub           *client.Publisher
}

func newSigner(t testing.TB) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func addKey(kr keyring, s crypto.Signer) {
	k, _ := keys.FromCrypto(s.Public())
	kr[k.ID()] = s
}

// ownerKeys makes an owner's root (with its certificate) and targets keys.
func (e *env) ownerKeys(gun string) *owner {
	e.t.Helper()
	o := &owner{e: e, gun: gun, keys: keyring{}, root: newSigner(e.t), targets: newSigner(e.t)}
	var err error
	o.cert, err = keys.NewRootCertificate(o.root, gun, time.Now(), time.Now().Add(24*time.Hour*3650))
	if err != nil {
		e.t.Fatal(err)
	}
	rk, err := keys.FromCertificate(o.cert)
	if err != nil {
		e.t.Fatal(err)
	}
	o.keys[rk.CanonicalID()] = o.root
	addKey(o.keys, o.targets)
	return o
}

// newOwner initialises gun on the server as docker trust does (root and
// targets keys with the owner, snapshot managed by the server).
func (e *env) newOwner(gun string) *owner {
	e.t.Helper()
	ctx := context.Background()
	remote, err := client.NewRemote(e.url, e.hc, tuf.GUN(gun))
	if err != nil {
		e.t.Fatal(err)
	}
	cache := &memCache{m: map[string][]byte{}}
	o := e.ownerKeys(gun)
	if err := client.Initialize(ctx, remote, cache, client.InitOptions{Root: o.root, RootCert: o.cert, Targets: o.targets}, time.Now()); err != nil {
		e.t.Fatal(err)
	}
	o.pub = &client.Publisher{Reader: &client.Reader{Remote: remote, Cache: cache}, Keys: o.keys}
	if err := o.pub.Publish(ctx, nil); err != nil {
		e.t.Fatalf("first publish of %s: %v", gun, err)
	}
	return o
}

// addSigner delegates targets/<name> and targets/releases to the public
// key PEM, as `docker trust signer add --key FILE name gun` does.
func (o *owner) addSigner(name, publicPEM string) {
	o.e.t.Helper()
	k, err := keys.ParsePublicKeyPEM([]byte(publicPEM))
	if err != nil {
		o.e.t.Fatalf("the project's public_key is not a key docker reads: %v", err)
	}
	var cs []changes.Change
	for _, role := range []string{"targets/" + name, "targets/releases"} {
		cs = append(cs, changes.AddDelegation{Role: role, Keys: []*keys.PublicKey{k}, Paths: []string{""}})
	}
	if err := o.pub.Publish(context.Background(), cs); err != nil {
		o.e.t.Fatalf("signer add: %v", err)
	}
}

// verified reads gun as a client does, verifying every signature.
func (e *env) verified(gun string) *trust.Repo {
	e.t.Helper()
	remote, err := client.NewRemote(e.url, e.hc, tuf.GUN(gun))
	if err != nil {
		e.t.Fatal(err)
	}
	rd := &client.Reader{Remote: remote, Cache: &memCache{m: map[string][]byte{}}}
	v, err := rd.Update(context.Background())
	if err != nil {
		e.t.Fatalf("reading %s as a client: %v", gun, err)
	}
	return v
}

// signedDigest is the digest role lists for tag in the verified repository.
func (e *env) signedDigest(gun, role, tag string) (string, int64) {
	e.t.Helper()
	fm, ok := e.verified(gun).RoleTarget(role, tag)
	if !ok {
		return "", 0
	}
	return fmt.Sprintf("sha256:%x", fm.Hashes["sha256"]), fm.Length
}

// push pushes a small random image to the in-process registry and returns
// its reference and digest.
func (e *env) push(repo, tag string) (string, string) {
	e.t.Helper()
	ctx := context.Background()
	c := &registry.Client{Keychain: registry.Anonymous}
	r := c.Repository(registry.Reference{Registry: e.reg, Repository: repo}, "push,pull")
	layer := make([]byte, 256)
	rand.Read(layer)
	ld, err := r.PutBlob(ctx, layer)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[%q]}}`, ld))
	cd, err := r.PutBlob(ctx, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	man := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json",`+
		`"config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":%q},`+
		`"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","size":%d,"digest":%q}]}`, len(cfg), cd, len(layer), ld)
	d, _, err := r.PutManifest(ctx, tag, "application/vnd.docker.distribution.manifest.v2+json", []byte(man))
	if err != nil {
		e.t.Fatal(err)
	}
	return e.reg + "/" + repo + ":" + tag, d.Digest
}

// gun is the repository name of repo in the test registry.
func (e *env) gun(repo string) string { return e.reg + "/" + repo }

// project creates a project on repo with its repository delegated to the
// project's key, and returns it.
func (e *env) project(name, repo, signer string) serviceapi.Project {
	e.t.Helper()
	p, err := e.admin().CreateProject(context.Background(), serviceapi.CreateProject{Name: name, Repository: e.gun(repo), Signer: signer})
	if err != nil {
		e.t.Fatalf("create project %s: %v", name, err)
	}
	o := e.newOwner(e.gun(repo))
	o.addSigner(signer, p.PublicKey)
	e.owners[e.gun(repo)] = o
	return p
}

// events integrates the audit entries appended so far and returns every
// event of the log, oldest first.
func (e *env) events() []audit.Event {
	e.t.Helper()
	ctx := context.Background()
	if e.alog == nil {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		l, err := audit.New(audit.Config{Store: e.st.AuditLog(), Origin: "signet.test/audit", Signer: priv})
		if err != nil {
			e.t.Fatal(err)
		}
		e.alog = l
	}
	for range 1000 {
		n, err := e.st.AuditLog().PendingCount(ctx)
		if err != nil {
			e.t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if _, err := e.alog.IntegrateOnce(ctx); err != nil {
			e.t.Fatal(err)
		}
	}
	st, err := e.st.AuditLog().State(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	entries, err := e.st.AuditLog().Entries(ctx, 0, int(st.Size))
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Event
	for _, en := range entries {
		ev, err := audit.ParseEvent(en.Data)
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// eventsOf are the types of events about request id.
func (e *env) eventsOf(id string) []audit.EventType {
	var out []audit.EventType
	for _, ev := range e.events() {
		if ev.Subject.RequestID == id {
			out = append(out, ev.Type)
		}
	}
	return out
}

// state is everything the service stores, as text: what a refused call
// must leave as it was.
func (e *env) state() string {
	e.t.Helper()
	ctx := context.Background()
	var b strings.Builder
	us, err := e.st.ListUsers(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, u := range us {
		toks, _ := e.st.ListTokens(ctx, u.Name)
		fmt.Fprintf(&b, "user %s %s admin=%v auditor=%v pw=%v tokens=%d updated=%v\n", u.Name, u.Email, u.Admin, u.Auditor, u.PasswordHash != "", len(toks), u.Updated)
		for _, tk := range toks {
			fmt.Fprintf(&b, "  token %s revoked=%v\n", tk.ID, tk.Revoked)
		}
	}
	ps, err := e.st.ListProjects(ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range ps {
		fmt.Fprintf(&b, "project %+v\n", p)
		ks, _ := e.st.ListProjectKeys(ctx, p.Name)
		for _, k := range ks {
			fmt.Fprintf(&b, "  key %s %s %s retired=%v\n", k.ID, k.Role, k.Purpose, k.Retired)
		}
		pols, _ := e.st.ListPolicies(ctx, p.Name)
		for _, pol := range pols {
			fmt.Fprintf(&b, "  policy %s\n", mustJSON(pol))
		}
	}
	rs, err := e.st.ListRequests(ctx, service.RequestFilter{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range rs {
		fmt.Fprintf(&b, "request %s %s %s approvals=%d denials=%d\n", r.ID, r.Policy, r.Status, len(r.Approvals), len(r.Denials))
	}
	keys, err := e.cust.ListKeys(ctx, custody.Filter{})
	if err != nil {
		e.t.Fatal(err)
	}
	fmt.Fprintf(&b, "custody: %d active keys\n", len(keys))
	fmt.Fprintf(&b, "audit: %d events\n", len(e.events()))
	return b.String()
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
