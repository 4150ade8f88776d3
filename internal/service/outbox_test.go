package service_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
	"github.com/signet-trust/signet/internal/notify"
	"github.com/signet-trust/signet/internal/notify/notifytest"
	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/service/serviceapi"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

// TestOutbox: the service's outbox passes notify's conformance suite, on
// SQLite and PostgreSQL.
func TestOutbox(t *testing.T) {
	open := func(url string) func(t *testing.T) notifytest.Harness {
		return func(t *testing.T) notifytest.Harness {
			st, err := sqlstore.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			ob := service.NewOutbox(st)
			return notifytest.Harness{Outbox: ob, Add: ob.Add, Get: ob.Get}
		}
	}
	t.Run("SQLite", func(t *testing.T) {
		notifytest.RunOutbox(t, func(t *testing.T) notifytest.Harness {
			return open("sqlite:" + filepath.Join(t.TempDir(), "signet.db"))(t)
		})
	})
	t.Run("PostgreSQL", func(t *testing.T) {
		notifytest.RunOutbox(t, func(t *testing.T) notifytest.Harness { return open(e2etest.PostgresDB(t, "signet_outbox_"))(t) })
	})
}

// TestNotificationsDelivered: notify's worker over the service's outbox
// posts the webhook of a final status (with its Authorization header) and
// mails the approvers and the submitter through a real SMTP server.
func TestNotificationsDelivered(t *testing.T) {
	sink := notifytest.StartSMTPSink(t, notifytest.SMTPOptions{})
	var (
		mu    sync.Mutex
		hooks []map[string]any
		auths []string
	)
	hook := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		mu.Lock()
		hooks, auths = append(hooks, m), append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
	}))
	t.Cleanup(hook.Close)
	e, us := approvalEnv(t)
	ctx := context.Background()
	if _, err := e.admin().UpdatePolicy(ctx, "app", "release", serviceapi.PolicySpec{
		Approvals: serviceapi.Approvals{Required: 1, Approvers: []string{"alice"}}, Submitters: []string{"dave"},
		Webhook: &serviceapi.Webhook{URL: hook.URL + "/signet", Authorization: "Bearer hook-secret"}}); err != nil {
		t.Fatal(err)
	}
	mailer, err := notify.NewMailer(notify.SMTPConfig{Addr: sink.Addr, From: "Signet <signet@example.com>",
		TLSConfig: tlsConfig(sink)})
	if err != nil {
		t.Fatal(err)
	}
	ob := e.svc.Outbox()
	w, err := notify.NewWorker(notify.WorkerConfig{Outbox: ob, Webhooks: ob.Webhook, Mailer: mailer,
		Sender: notify.NewWebhookSender(notify.WebhookConfig{Client: hook.Client()})})
	if err != nil {
		t.Fatal(err)
	}
	image, digest := e.push("org/app", "n1")
	r, err := us["dave"].Submit(ctx, serviceapi.Submit{Project: "app", Policy: "release", Image: image})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := us["alice"].Approve(ctx, r.ID, ""); err != nil {
		t.Fatal(err)
	}
	if st, err := w.RunOnce(ctx); err != nil || st.Delivered != 3 {
		t.Fatalf("worker pass = %+v, %v; want 3 delivered (alice's mail, dave's mail, the webhook)", st, err)
	}
	mu.Lock()
	if len(hooks) != 1 || hooks[0]["status"] != "signed" || hooks[0]["request_id"] != r.ID || hooks[0]["digest"] != digest || auths[0] != "Bearer hook-secret" {
		t.Errorf("webhook calls: %v (auth %v)", hooks, auths)
	}
	mu.Unlock()
	msgs := sink.WaitMessages(t, 2, 30*time.Second)
	all := strings.Join(msgs, "\n----\n")
	for _, want := range []string{"To: <alice@example.com>", "Approval needed: " + image, "To: <dave@example.com>", "Signing request signed"} {
		if !strings.Contains(all, want) {
			t.Errorf("mail lacks %q:\n%s", want, all)
		}
	}
	ds, _ := e.st.ListDeliveries(ctx, r.ID)
	for _, d := range ds {
		if d.State != service.DeliveryDelivered || d.Attempts != 1 {
			t.Errorf("delivery %s %s: %s after %d attempts (%s)", d.Kind, d.Target, d.State, d.Attempts, d.LastError)
		}
	}
}

func tlsConfig(sink *notifytest.SMTPSink) *tls.Config {
	return &tls.Config{RootCAs: sink.RootCAs, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}
