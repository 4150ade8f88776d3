package auth_test

// Floods of the built-in token service (issue 10, lower-severity
// findings): failed logins are limited per address and per user, refused
// before any bcrypt comparison; users who logged in before are not held
// up; password checks never take more than their share of the CPU; and a
// body that trickles in is refused in seconds.

import (
	"bufio"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/signet-trust/signet/internal/auth"
	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/ratelimit"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

// settable is a clock the test moves.
type settable struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settable) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settable) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// htpasswdFile writes users with passwords "<name>-pw" at the given bcrypt
// costs and opens the file.
func htpasswdFile(t *testing.T, costs map[string]int) *auth.Htpasswd {
	t.Helper()
	var b strings.Builder
	for u, cost := range costs {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), cost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	name := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(name, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	h, err := auth.OpenHtpasswd(name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// loginStack is the token service of a real signet-server route table,
// over HTTP.
type loginStack struct {
	t      *testing.T
	clock  *settable
	issuer *auth.Issuer
	ts     *httptest.Server
}

func newLoginStack(t *testing.T, users *auth.Htpasswd, mod func(*server.Config)) *loginStack {
	t.Helper()
	s := newStack(t)
	clk := &settable{t: now}
	is, err := auth.NewIssuer(auth.IssuerConfig{
		Issuer: "test-issuer", Audiences: []string{refService}, Users: users,
		Signer: s.key, Chain: []*x509.Certificate{s.cert}, Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := baseServerConfig(t)
	cfg.Groups = []server.Group{is.Routes()}
	if mod != nil {
		mod(&cfg)
	}
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return &loginStack{t: t, clock: clk, issuer: is, ts: ts}
}

// login asks for a token over HTTP with Basic credentials.
func (l *loginStack) login(user, pass string) (int, http.Header, time.Duration) {
	l.t.Helper()
	req, _ := http.NewRequest("GET", l.ts.URL+auth.TokenPath+"?service="+refService+"&scope=repository:a:pull", nil)
	req.SetBasicAuth(user, pass)
	start := time.Now()
	res, err := l.ts.Client().Do(req)
	if err != nil {
		l.t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header, time.Since(start)
}

// loginFrom asks the issuer directly, as a client at addr.
func (l *loginStack) loginFrom(addr, user, pass string) int {
	r := httptest.NewRequest("GET", auth.TokenPath+"?service="+refService, nil)
	r.RemoteAddr = addr
	r.SetBasicAuth(user, pass)
	w := httptest.NewRecorder()
	l.issuer.ServeHTTP(w, r)
	return w.Code
}

// TestLoginFloodLimited: a flood of wrong passwords gets ten bcrypt checks
// and is then answered 429 TOOMANYREQUESTS with Retry-After without any,
// per address and per user; a user who logged in before logs in at once
// meanwhile; the limits refill with time.
func TestLoginFloodLimited(t *testing.T) {
	// alice's hash costs enough (bcrypt cost 8) that a check shows in the
	// time of a request; bob's and carol's are cheap.
	users := htpasswdFile(t, map[string]int{"alice": 8, "bob": bcrypt.MinCost, "carol": bcrypt.MinCost})
	l := newLoginStack(t, users, nil)

	if code, _, took := l.login("alice", "alice-pw"); code != 200 {
		t.Fatalf("alice's first login: %d", code)
	} else {
		t.Logf("a login with a bcrypt check: %v", took)
	}

	var checked, refused time.Duration
	for i := range 40 {
		code, h, took := l.login("alice", fmt.Sprintf("guess-%d", i))
		switch {
		case i < 10 && code == 401:
			checked += took
		case i >= 10 && code == 429 && h.Get("Retry-After") == "6":
			refused += took
		default:
			t.Fatalf("wrong password %d: %d (Retry-After %q)", i, code, h.Get("Retry-After"))
		}
	}
	t.Logf("10 checked failures took %v, 30 refused ones %v", checked, refused)
	if refused > checked/3 {
		t.Errorf("30 refused logins took %v, 10 checked ones %v: the refused ones were checked", refused, checked)
	}
	// alice logged in before: no check, no limit.
	if code, _, took := l.login("alice", "alice-pw"); code != 200 || took > checked/10+50*time.Millisecond {
		t.Errorf("alice during the flood: %d after %v", code, took)
	}
	// bob has not: from the flooded address he waits like everyone there;
	// from elsewhere he logs in.
	if code, _, _ := l.login("bob", "bob-pw"); code != 429 {
		t.Errorf("bob from the flooded address: %d, want 429", code)
	}
	if code := l.loginFrom("10.0.0.1:1234", "bob", "bob-pw"); code != 200 {
		t.Errorf("bob from another address: %d", code)
	}
	// Per user: carol's password guessed from twenty addresses.
	for i := range 20 {
		code := l.loginFrom(fmt.Sprintf("10.1.0.%d:1234", i), "carol", "guess")
		if want := map[bool]int{true: 401, false: 429}[i < 10]; code != want {
			t.Errorf("guess %d for carol: %d, want %d", i, code, want)
		}
	}
	// IPv6 clients are counted by /64.
	for i := range 12 {
		code := l.loginFrom(fmt.Sprintf("[2001:db8::%x]:1234", i+1), fmt.Sprintf("nobody%d", i), "x")
		if want := map[bool]int{true: 401, false: 429}[i < 10]; code != want {
			t.Errorf("IPv6 guess %d: %d, want %d", i, code, want)
		}
	}
	// A minute later the address may try again.
	l.clock.Add(time.Minute)
	if code, _, _ := l.login("bob", "bob-pw"); code != 200 {
		t.Errorf("bob a minute later: %d", code)
	}
}

// TestLoginLimitOff: a negative rate turns the login limits off.
func TestLoginLimitOff(t *testing.T) {
	s := newStack(t)
	is, err := auth.NewIssuer(auth.IssuerConfig{
		Issuer: "test-issuer", Audiences: []string{refService}, Users: users(t),
		Signer: s.key, Chain: []*x509.Certificate{s.cert}, Now: clock,
		LoginsPerAddress: ratelimit.Limit{Rate: -1}, LoginsPerUser: ratelimit.Limit{Rate: -1},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		r := httptest.NewRequest("GET", auth.TokenPath+"?service="+refService, nil)
		r.SetBasicAuth("alice", "nope")
		w := httptest.NewRecorder()
		is.ServeHTTP(w, r)
		if w.Code != 401 {
			t.Fatalf("attempt %d: %d", i, w.Code)
		}
	}
}

// TestPasswordChecksBounded: bcrypt comparisons run a few at once; a check
// that cannot start in time (2 s; 20 ms here) is ErrBusy instead of
// queueing without end, while credentials verified before are known at
// once.
func TestPasswordChecksBounded(t *testing.T) {
	users := htpasswdFile(t, map[string]int{"alice": bcrypt.MinCost, "slow": bcrypt.DefaultCost})
	auth.SetCheckWait(users, 20*time.Millisecond)
	if err := users.Authenticate(t.Context(), "alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	// Twelve times as many as run at once (half the CPUs): most wait.
	errs := make([]error, 12*max(1, runtime.GOMAXPROCS(0)/2))
	for i := range errs {
		wg.Go(func() { errs[i] = users.Authenticate(t.Context(), "slow", "guess") })
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if !users.Known("alice", "alice-pw") || time.Since(start) > 100*time.Millisecond {
		t.Errorf("a known login waited %v behind the checks", time.Since(start))
	}
	wg.Wait()
	busy, bad := 0, 0
	for _, err := range errs {
		switch err {
		case auth.ErrBusy:
			busy++
		case auth.ErrBadCredentials:
			bad++
		default:
			t.Errorf("check: %v", err)
		}
	}
	t.Logf("%d checks ran, %d were busy", bad, busy)
	if busy == 0 || bad == 0 {
		t.Errorf("%d checks ran, %d busy: want both", bad, busy)
	}
	if users.Known("slow", "guess") || users.Known("alice", "wrong") {
		t.Error("unverified credentials are known")
	}
}

// TestKnownFollowsTheFile: a changed password or a removed user is no
// longer known.
func TestKnownFollowsTheFile(t *testing.T) {
	name := filepath.Join(t.TempDir(), "htpasswd")
	write := func(lines ...string) {
		if err := os.WriteFile(name, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		// A different size or mtime makes the file reload.
		later := time.Now().Add(time.Duration(len(lines)) * time.Second)
		os.Chtimes(name, later, later)
	}
	h1, _ := bcrypt.GenerateFromPassword([]byte("one"), bcrypt.MinCost)
	h2, _ := bcrypt.GenerateFromPassword([]byte("two"), bcrypt.MinCost)
	write("alice:" + string(h1))
	users, err := auth.OpenHtpasswd(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := users.Authenticate(t.Context(), "alice", "one"); err != nil || !users.Known("alice", "one") {
		t.Fatalf("alice: %v, known %v", err, users.Known("alice", "one"))
	}
	write("alice:"+string(h2), "# changed")
	if users.Known("alice", "one") || users.Authenticate(t.Context(), "alice", "one") == nil {
		t.Error("the old password still works")
	}
	write("bob:"+string(h2), "#", "#")
	if users.Known("alice", "two") {
		t.Error("a removed user is known")
	}
}

// TestSlowTokenRequestRefused: a password grant whose body trickles in is
// answered within the grace period and a little, not held for minutes.
func TestSlowTokenRequestRefused(t *testing.T) {
	l := newLoginStack(t, users(t), func(c *server.Config) {
		c.MinBodyRate = 1 << 10
		c.BodyRateGrace = 300 * time.Millisecond
	})
	body := "grant_type=password&username=alice&password=alice-pw&service=" + refService + "&scope=repository:a:pull"
	u, _ := url.Parse(l.ts.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", auth.TokenPath, u.Host, len(body))
	start := time.Now()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := range len(body) {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	b, _ := io.ReadAll(res.Body)
	if took := time.Since(start); res.StatusCode != 400 || took > 5*time.Second {
		t.Errorf("slow token request: %d %s after %v", res.StatusCode, b, took)
	}
}

// baseServerConfig is a server on an in-memory database.
func baseServerConfig(t *testing.T) server.Config {
	t.Helper()
	st, err := sqlstore.Open(t.Context(), "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cust, err := custody.Open(t.Context(), st, []byte("test passphrase"), custody.AlgorithmECDSA, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return server.Config{Store: st, Custodian: cust}
}
