package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/notify"
	"github.com/signet-trust/signet/internal/notify/notifytest"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

func signed() notify.Notification {
	return notify.Notification{
		Event: notify.EventSigned, RequestID: "01JEREQ", Project: "app", Policy: "release-signing",
		Image: "registry.test/org/app:1.2.0", Digest: "sha256:" + strings.Repeat("ab", 32),
		Submitter: "repo:org/app:ref:refs/tags/v1.2.0", URL: notify.RequestURL("https://signet.test/", "01JEREQ"), Time: t0,
	}
}

// receiver is an HTTPS webhook receiver answering from a script.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	answers []int // status per request; the last repeats
	reqs    []*http.Request
	bodies  [][]byte
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	r := &receiver{answers: answers}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		n := len(r.reqs)
		r.reqs = append(r.reqs, req)
		r.bodies = append(r.bodies, body)
		code := r.answers[min(n, len(r.answers)-1)]
		r.mu.Unlock()
		w.WriteHeader(code)
		_, _ = w.Write([]byte("answer " + http.StatusText(code)))
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.reqs) }

type workerEnv struct {
	clk    *clock
	box    *notifytest.MemOutbox
	w      *notify.Worker
	hooks  map[string]notify.Webhook
	logBuf *bytes.Buffer
}

func newWorkerEnv(t *testing.T, client *http.Client, mailer *notify.Mailer, retry notify.RetryPolicy) *workerEnv {
	e := &workerEnv{clk: &clock{t: t0}, box: notifytest.NewMemOutbox(), hooks: map[string]notify.Webhook{}, logBuf: &bytes.Buffer{}}
	var mu sync.Mutex
	w, err := notify.NewWorker(notify.WorkerConfig{
		Outbox: e.box,
		Webhooks: func(_ context.Context, id string) (notify.Webhook, error) {
			h, ok := e.hooks[id]
			if !ok {
				return h, notify.ErrNoTarget
			}
			return h, nil
		},
		Sender: notify.NewWebhookSender(notify.WebhookConfig{Client: client, Timeout: 5 * time.Second}),
		Mailer: mailer,
		Retry:  retry,
		Now:    e.clk.Now,
		Rand:   func() float64 { return 0 },
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, e.logBuf}, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	e.w = w
	return e
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (e *workerEnv) pass(t *testing.T) notify.Stats {
	t.Helper()
	st, err := e.w.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (e *workerEnv) get(t *testing.T, id string) notify.Delivery {
	t.Helper()
	d, err := e.box.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

const (
	authValue = "Bearer hook-secret-token-4711"
	hmacKey   = "hmac-secret-0815"
)

// TestWebhookRetries: a receiver that fails twice and then answers 200 gets
// three identical, authenticated, signed POSTs, spaced by the backoff.
func TestWebhookRetries(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 503, 502, 200)
	e := newWorkerEnv(t, rcv.srv.Client(), nil, notify.RetryPolicy{MaxAttempts: 5, Initial: 30 * time.Second, Max: time.Hour, Jitter: 0.5})
	e.hooks["wh1"] = notify.Webhook{URL: rcv.srv.URL + "/hook?x=1", AuthValue: authValue, Secret: []byte(hmacKey)}
	if err := e.box.Add(context.Background(), notify.Delivery{ID: "d1", Kind: notify.KindWebhook, Target: "wh1", Notification: signed(), NextAttempt: t0}); err != nil {
		t.Fatal(err)
	}

	if st := e.pass(t); st.Retrying != 1 {
		t.Fatalf("first pass %+v", st)
	}
	d := e.get(t, "d1")
	if d.State != notify.StatePending || d.Attempts != 1 || !d.NextAttempt.Equal(t0.Add(30*time.Second)) || !strings.Contains(d.LastError, "answered HTTP 503") {
		t.Fatalf("after one failure: %+v", d)
	}
	if st := e.pass(t); st != (notify.Stats{}) {
		t.Fatalf("a pass before the retry time did something: %+v", st)
	}
	e.clk.Add(30 * time.Second)
	if st := e.pass(t); st.Retrying != 1 {
		t.Fatalf("second pass %+v", st)
	}
	if d = e.get(t, "d1"); d.Attempts != 2 || !d.NextAttempt.Equal(e.clk.Now().Add(time.Minute)) || !strings.Contains(d.LastError, "HTTP 502") {
		t.Fatalf("after two failures: %+v", d)
	}
	e.clk.Add(time.Minute)
	if st := e.pass(t); st.Delivered != 1 {
		t.Fatalf("third pass %+v", st)
	}
	if d = e.get(t, "d1"); d.State != notify.StateDelivered || d.Attempts != 3 || d.LastError != "" {
		t.Fatalf("delivered: %+v", d)
	}
	if rcv.count() != 3 {
		t.Fatalf("%d requests, want 3", rcv.count())
	}
	for i, req := range rcv.reqs {
		body := rcv.bodies[i]
		if req.Method != http.MethodPost || req.URL.Path != "/hook" || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request %d: %s %s %s", i, req.Method, req.URL, req.Header.Get("Content-Type"))
		}
		if got := req.Header.Get("Authorization"); got != authValue {
			t.Errorf("request %d: Authorization %q", i, got)
		}
		if req.Header.Get("X-Signet-Delivery") != "d1" || req.Header.Get("X-Signet-Event") != "signing_request.signed" {
			t.Errorf("request %d: headers %v", i, req.Header)
		}
		if !notify.VerifySignature([]byte(hmacKey), body, req.Header.Get(notify.SignatureHeader)) {
			t.Errorf("request %d: signature %q does not verify", i, req.Header.Get(notify.SignatureHeader))
		}
		if !bytes.Equal(body, rcv.bodies[0]) {
			t.Errorf("request %d: body differs from the first", i)
		}
	}
	var p map[string]any
	if err := json.Unmarshal(rcv.bodies[0], &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"event": "signing_request.signed", "delivery_id": "d1", "request_id": "01JEREQ", "project": "app",
		"policy": "release-signing", "status": "signed", "image": "registry.test/org/app:1.2.0",
		"digest": "sha256:" + strings.Repeat("ab", 32), "url": "https://signet.test/ui/requests/01JEREQ", "time": "2026-12-06T12:00:00Z",
	}
	if len(p) != len(want) {
		t.Errorf("payload %v, want the fields %v", p, want)
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("payload %s = %v, want %v", k, p[k], v)
		}
	}
	// Tampering breaks the signature.
	tampered := bytes.Replace(rcv.bodies[0], []byte("signed"), []byte("denied"), 1)
	if notify.VerifySignature([]byte(hmacKey), tampered, rcv.reqs[0].Header.Get(notify.SignatureHeader)) {
		t.Error("a tampered body verifies")
	}
	if strings.Contains(e.logBuf.String(), "hook-secret") || strings.Contains(e.logBuf.String(), hmacKey) {
		t.Errorf("secrets in the log:\n%s", e.logBuf)
	}
}

// TestWebhookGivesUp: after MaxAttempts failures the delivery is failed
// with the last error kept; a permanent answer gives up at once.
func TestWebhookGivesUp(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, 500)
	gone := newReceiver(t, 404)
	e := newWorkerEnv(t, rcv.srv.Client(), nil, notify.RetryPolicy{MaxAttempts: 3, Initial: time.Second, Max: time.Minute})
	e.hooks["down"] = notify.Webhook{URL: rcv.srv.URL, AuthHeader: "X-Api-Key", AuthValue: "k-123"}
	e.hooks["gone"] = notify.Webhook{URL: gone.srv.URL}
	e.hooks["denied-only"] = notify.Webhook{URL: gone.srv.URL, Events: []notify.Event{notify.EventDenied}}
	ctx := context.Background()
	for id, target := range map[string]string{"d-down": "down", "d-gone": "gone", "d-deleted": "no-such-hook", "d-filtered": "denied-only"} {
		if err := e.box.Add(ctx, notify.Delivery{ID: id, Kind: notify.KindWebhook, Target: target, Notification: signed(), NextAttempt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	if st := e.pass(t); st.Retrying != 1 || st.Failed != 3 {
		t.Fatalf("first pass %+v", st)
	}
	for id, msg := range map[string]string{
		"d-gone":     "answered HTTP 404",
		"d-deleted":  "no such target",
		"d-filtered": "does not take signed events",
	} {
		if d := e.get(t, id); d.State != notify.StateFailed || d.Attempts != 1 || !strings.Contains(d.LastError, msg) {
			t.Errorf("%s: %+v, want failed with %q", id, d, msg)
		}
	}
	if gone.count() != 1 {
		t.Errorf("404 receiver got %d requests, want 1 (filtered event not sent)", gone.count())
	}
	for range 2 {
		e.clk.Add(time.Hour)
		e.pass(t)
	}
	d := e.get(t, "d-down")
	if d.State != notify.StateFailed || d.Attempts != 3 || !strings.Contains(d.LastError, `answered HTTP 500: "answer Internal Server Error"`) {
		t.Fatalf("after 3 attempts: %+v", d)
	}
	if rcv.count() != 3 || rcv.reqs[0].Header.Get("X-Api-Key") != "k-123" || rcv.reqs[0].Header.Get("Authorization") != "" {
		t.Fatalf("%d requests, headers %v", rcv.count(), rcv.reqs[0].Header)
	}
	e.clk.Add(24 * time.Hour)
	if st := e.pass(t); st != (notify.Stats{}) {
		t.Fatalf("a failed delivery was tried again: %+v", st)
	}
}

// TestWebhookHTTPSOnly: an http:// webhook is refused and never contacted,
// and redirects are not followed (the auth header goes nowhere else).
func TestWebhookHTTPSOnly(t *testing.T) {
	t.Parallel()
	var plainHits, targetHits int
	var mu sync.Mutex
	plain := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { mu.Lock(); plainHits++; mu.Unlock() }))
	t.Cleanup(plain.Close)
	target := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { mu.Lock(); targetHits++; mu.Unlock() }))
	t.Cleanup(target.Close)
	redirect := httptest.NewTLSServer(http.RedirectHandler(target.URL+"/elsewhere", http.StatusTemporaryRedirect))
	t.Cleanup(redirect.Close)

	s := notify.NewWebhookSender(notify.WebhookConfig{Client: redirect.Client()})
	ctx := context.Background()
	err := s.Send(ctx, notify.Webhook{URL: plain.URL, AuthValue: authValue}, "d1", signed())
	var pe *notify.PermanentError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "is not https; notifications are sent over HTTPS only") {
		t.Fatalf("http webhook: %v", err)
	}
	err = s.Send(ctx, notify.Webhook{URL: redirect.URL, AuthValue: authValue}, "d1", signed())
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "answered HTTP 307") {
		t.Fatalf("redirect: %v", err)
	}
	// Untrusted certificate: retryable, and says why.
	err = notify.NewWebhookSender(notify.WebhookConfig{}).Send(ctx, notify.Webhook{URL: target.URL}, "d1", signed())
	if err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if plainHits != 0 || targetHits != 0 {
		t.Fatalf("plain server hit %d times, redirect target %d times", plainHits, targetHits)
	}
}

func TestWebhookValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		w   notify.Webhook
		msg string
	}{
		{notify.Webhook{URL: "http://hooks.example/x"}, "is not https"},
		{notify.Webhook{URL: "https://user:pw@hooks.example/x"}, "no user info"},
		{notify.Webhook{URL: "https:///x"}, "needs a host"},
		{notify.Webhook{URL: "https://hooks.example", AuthHeader: "X Bad"}, "is not a header name"},
		{notify.Webhook{URL: "https://hooks.example", AuthHeader: "X-Signet-Signature"}, "is set by the sender"},
		{notify.Webhook{URL: "https://hooks.example", AuthValue: "a\r\nX-Evil: 1"}, "line break"},
		{notify.Webhook{URL: "https://hooks.example", Events: []notify.Event{notify.EventAwaitingApproval}}, "not a final status"},
	} {
		if err := c.w.Validate(); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%+v: %v, want %q", c.w, err, c.msg)
		}
	}
	w := notify.Webhook{URL: "https://hooks.example/x?token=abc", AuthValue: authValue, Secret: []byte(hmacKey)}
	if err := w.Validate(); err != nil {
		t.Fatal(err)
	}
	if s := w.String(); strings.Contains(s, "hook-secret") || strings.Contains(s, hmacKey) {
		t.Errorf("String shows a secret: %s", s)
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "webhook", w)
	if strings.Contains(buf.String(), "hook-secret") || strings.Contains(buf.String(), hmacKey) {
		t.Errorf("log shows a secret: %s", buf.String())
	}
}

func TestRetryDelay(t *testing.T) {
	t.Parallel()
	p := notify.RetryPolicy{MaxAttempts: 10, Initial: 30 * time.Second, Max: 10 * time.Minute, Jitter: 0.5}
	for _, c := range []struct {
		attempt int
		r       float64
		want    time.Duration
	}{
		{1, 0, 30 * time.Second}, {2, 0, time.Minute}, {3, 0, 2 * time.Minute}, {5, 0, 8 * time.Minute},
		{6, 0, 10 * time.Minute}, {60, 0, 10 * time.Minute}, {1, 0.5, 22500 * time.Millisecond}, {6, 0.999, 5*time.Minute + 300*time.Millisecond},
	} {
		if got := p.Delay(c.attempt, c.r); got != c.want {
			t.Errorf("Delay(%d, %v) = %s, want %s", c.attempt, c.r, got, c.want)
		}
	}
	if _, err := notify.NewWorker(notify.WorkerConfig{Outbox: notifytest.NewMemOutbox(), Retry: notify.RetryPolicy{MaxAttempts: 0, Initial: 1}}); err == nil {
		t.Error("a retry policy without attempts was accepted")
	}
}

func TestMemOutboxConformance(t *testing.T) {
	t.Parallel()
	notifytest.RunOutbox(t, func(t *testing.T) notifytest.Harness {
		m := notifytest.NewMemOutbox()
		return notifytest.Harness{Outbox: m, Add: m.Add, Get: m.Get}
	})
}
