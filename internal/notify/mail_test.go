package notify_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/notify"
	"github.com/signet-trust/signet/internal/notify/notifytest"
)

func parseMail(t *testing.T, raw string) (*mail.Message, string) {
	t.Helper()
	m, err := mail.ReadMessage(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("delivered message does not parse: %v\n%s", err, raw)
	}
	if m.Header.Get("Content-Transfer-Encoding") != "quoted-printable" {
		t.Fatalf("transfer encoding %q", m.Header.Get("Content-Transfer-Encoding"))
	}
	body, err := io.ReadAll(quotedprintable.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	return m, string(body)
}

func awaiting() notify.Notification {
	n := signed()
	n.Event, n.Approvals, n.Required = notify.EventAwaitingApproval, 1, 2
	return n
}

// TestMailOverSTARTTLSWithAuth: the approval mail goes through a real exim
// over STARTTLS with AUTH PLAIN and arrives as written, through the worker
// and its outbox.
func TestMailOverSTARTTLSWithAuth(t *testing.T) {
	t.Parallel()
	sink := notifytest.StartSMTPSink(t, notifytest.SMTPOptions{Users: map[string]string{"signet": "pw4711"}})
	m, err := notify.NewMailer(notify.SMTPConfig{
		Addr: sink.Addr, From: "Signet <signet@signet.test>", Username: "signet", Password: "pw4711",
		TLSConfig: &tls.Config{RootCAs: sink.RootCAs},
	})
	if err != nil {
		t.Fatal(err)
	}
	e := newWorkerEnv(t, nil, m, notify.RetryPolicy{})
	ctx := context.Background()
	if err := e.box.Add(ctx, notify.Delivery{ID: "mail-1", Kind: notify.KindEmail, Target: "approver@example.com", Notification: awaiting(), NextAttempt: t0}); err != nil {
		t.Fatal(err)
	}
	done := signed()
	done.Event, done.Comment = notify.EventDenied, "not from the release branch"
	if err := e.box.Add(ctx, notify.Delivery{ID: "mail-2", Kind: notify.KindEmail, Target: "dev@example.com", Notification: done, NextAttempt: t0}); err != nil {
		t.Fatal(err)
	}
	if st := e.pass(t); st.Delivered != 2 {
		t.Fatalf("pass %+v: %s %s\n%s", st, e.get(t, "mail-1").LastError, e.get(t, "mail-2").LastError, sink.Log())
	}
	msgs := sink.WaitMessages(t, 2, 15*time.Second)
	byTo := map[string]string{}
	for _, raw := range msgs {
		msg, _ := parseMail(t, raw)
		byTo[msg.Header.Get("To")] = raw
	}

	msg, body := parseMail(t, byTo["<approver@example.com>"])
	h := msg.Header
	if got := h.Get("Subject"); got != "[Signet] Approval needed: registry.test/org/app:1.2.0 (app/release-signing)" {
		t.Errorf("Subject %q", got)
	}
	if h.Get("From") != `"Signet" <signet@signet.test>` || h.Get("Message-Id") != "<mail-1@signet.test>" || h.Get("Envelope-To") != "approver@example.com" {
		t.Errorf("headers %v", h)
	}
	if d, err := h.Date(); err != nil || !d.Equal(t0) {
		t.Errorf("Date %v %v", d, err)
	}
	// exim's Received header records TLS and authenticated submission.
	if rcv := h.Get("Received"); !strings.Contains(rcv, "esmtpsa") || !strings.Contains(rcv, "TLS1.") {
		t.Errorf("not sent over TLS with AUTH: Received %q", rcv)
	}
	for _, want := range []string{
		"A signing request is waiting for your approval.",
		"  Image:     registry.test/org/app:1.2.0\n",
		"  Approvals: 1 of 2\n",
		"approve or deny it here:\n  https://signet.test/ui/requests/01JEREQ\n",
		"as an approver of the release-signing policy of the app project",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("approval body lacks %q:\n%s", want, body)
		}
	}
	msg, body = parseMail(t, byTo["<dev@example.com>"])
	if got := msg.Header.Get("Subject"); got != "[Signet] Signing request denied: registry.test/org/app:1.2.0" {
		t.Errorf("Subject %q", got)
	}
	if !strings.Contains(body, "has finished: denied.") || !strings.Contains(body, "Comment:\n> not from the release branch\n") {
		t.Errorf("completion body:\n%s", body)
	}
}

// TestMailHeaderInjection: CR/LF in an image name and a deny comment cannot
// add headers, recipients or lines of their own.
func TestMailHeaderInjection(t *testing.T) {
	t.Parallel()
	sink := notifytest.StartSMTPSink(t, notifytest.SMTPOptions{})
	m, err := notify.NewMailer(notify.SMTPConfig{Addr: sink.Addr, From: "signet@signet.test", TLSConfig: &tls.Config{RootCAs: sink.RootCAs}})
	if err != nil {
		t.Fatal(err)
	}
	n := signed()
	n.Event = notify.EventDenied
	n.Image = "registry.test/app:1\r\nBcc: victim@example.com\r\nX-Injected: yes\r\n\r\nfake body"
	n.Comment = "no\r\n.\r\nMAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.com>\nSubject: fake\n\nApprove here: https://evil.example/\u2028X-Sep: 1"
	n.Project = "app\nX-Project: injected"
	if err := m.Send(context.Background(), notify.MessageFor(n, "dev@example.com", "inj-1", t0)); err != nil {
		t.Fatalf("%v\n%s", err, sink.Log())
	}
	sink.WaitMessages(t, 1, 15*time.Second)
	time.Sleep(300 * time.Millisecond) // a smuggled second message would land now
	msgs, _ := sink.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages delivered, want 1:\n%s", len(msgs), strings.Join(msgs, "\n====\n"))
	}
	msg, body := parseMail(t, msgs[0])
	for _, name := range []string{"Bcc", "X-Injected", "X-Project", "X-Sep"} {
		if v, ok := msg.Header[name]; ok {
			t.Errorf("injected header %s: %q", name, v)
		}
	}
	if len(msg.Header["Subject"]) != 1 || msg.Header.Get("Envelope-To") != "dev@example.com" {
		t.Errorf("headers %v", msg.Header)
	}
	if got := msg.Header.Get("Subject"); got != "[Signet] Signing request denied: registry.test/app:1  Bcc: victim@example.com  X-Injected: yes    fake body" {
		t.Errorf("Subject %q", got)
	}
	for _, want := range []string{
		"  Image:     registry.test/app:1  Bcc: victim@example.com  X-Injected: yes    fake body\n",
		"  Project:   app X-Project: injected\n",
		"Comment:\n> no\n> .\n> MAIL FROM:<evil@example.com>\n> RCPT TO:<victim@example.com>\n> Subject: fake\n> \n> Approve here: https://evil.example/ X-Sep: 1\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "Approve here") || strings.HasPrefix(line, "Subject:") {
			t.Errorf("attacker text on a line of its own: %q", line)
		}
	}

	// A recipient with a line break is refused before connecting.
	err = m.Send(context.Background(), notify.MessageFor(n, "dev@example.com\r\nBcc: victim@example.com", "inj-2", t0))
	var pe *notify.PermanentError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "line break") {
		t.Fatalf("recipient with CRLF: %v", err)
	}
	// A non-ASCII subject is RFC 2047-encoded and decodes back.
	n.Image = "registry.test/äpp:1"
	if err := m.Send(context.Background(), notify.MessageFor(n, "dev@example.com", "utf8-1", t0)); err != nil {
		t.Fatal(err)
	}
	msgs = sink.WaitMessages(t, 2, 15*time.Second)
	msg, _ = parseMail(t, msgs[1])
	raw := msg.Header.Get("Subject")
	dec, err := new(mime.WordDecoder).DecodeHeader(raw)
	if !strings.HasPrefix(raw, "=?utf-8?b?") || err != nil || dec != "[Signet] Signing request denied: registry.test/äpp:1" {
		t.Errorf("Subject %q decodes to %q (%v)", raw, dec, err)
	}
}

// TestMailTLSRequired: no STARTTLS means no mail, unless plaintext to
// loopback was asked for by name; a password never goes in the clear; an
// untrusted certificate and a wrong password are refused.
func TestMailTLSRequired(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	msg := notify.MessageFor(awaiting(), "approver@example.com", "tls-1", t0)
	plainSink := notifytest.StartSMTPSink(t, notifytest.SMTPOptions{NoTLS: true})

	m, err := notify.NewMailer(notify.SMTPConfig{Addr: plainSink.Addr, From: "signet@signet.test"})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Send(ctx, msg)
	var pe *notify.PermanentError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "does not offer STARTTLS, and mail is sent over TLS only") {
		t.Fatalf("no STARTTLS: %v", err)
	}
	m, err = notify.NewMailer(notify.SMTPConfig{Addr: plainSink.Addr, From: "signet@signet.test", Username: "u", Password: "secretpw", InsecurePlaintextLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	if err = m.Send(ctx, msg); !errors.As(err, &pe) || !strings.Contains(err.Error(), "refusing to send a password without TLS") {
		t.Fatalf("password without TLS: %v", err)
	}
	if msgs, _ := plainSink.Messages(); len(msgs) != 0 {
		t.Fatalf("mail delivered without TLS: %d", len(msgs))
	}
	m, err = notify.NewMailer(notify.SMTPConfig{Addr: plainSink.Addr, From: "signet@signet.test", InsecurePlaintextLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Send(ctx, msg); err != nil {
		t.Fatalf("plaintext to loopback, asked for: %v\n%s", err, plainSink.Log())
	}
	if msgs := plainSink.WaitMessages(t, 1, 15*time.Second); !strings.Contains(msgs[0], "esmtp (Exim") {
		t.Errorf("plaintext delivery: %s", msgs[0])
	}
	if _, err := notify.NewMailer(notify.SMTPConfig{Addr: "mail.example.com:25", From: "signet@signet.test", InsecurePlaintextLoopback: true}); err == nil {
		t.Error("plaintext to a non-loopback host was accepted")
	}

	tlsSink := notifytest.StartSMTPSink(t, notifytest.SMTPOptions{Users: map[string]string{"signet": "right"}})
	m, _ = notify.NewMailer(notify.SMTPConfig{Addr: tlsSink.Addr, From: "signet@signet.test", Username: "signet", Password: "right"})
	if err := m.Send(ctx, msg); err == nil || errors.As(err, &pe) || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted certificate: %v", err)
	}
	m, _ = notify.NewMailer(notify.SMTPConfig{Addr: tlsSink.Addr, From: "signet@signet.test", Username: "signet", Password: "wrong", TLSConfig: &tls.Config{RootCAs: tlsSink.RootCAs}})
	if err := m.Send(ctx, msg); !errors.As(err, &pe) || !strings.Contains(err.Error(), "AUTH PLAIN as \"signet\"") || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("wrong password: %v", err)
	}
	m, _ = notify.NewMailer(notify.SMTPConfig{Addr: tlsSink.Addr, From: "signet@signet.test", TLSConfig: &tls.Config{RootCAs: tlsSink.RootCAs}})
	if err := m.Send(ctx, msg); !errors.As(err, &pe) || !strings.Contains(err.Error(), "authentication required") {
		t.Fatalf("no credentials: %v", err)
	}
	if msgs, _ := tlsSink.Messages(); len(msgs) != 0 {
		t.Fatalf("%d messages delivered by refused senders", len(msgs))
	}
	if s := m.String(); strings.Contains(s, "right") {
		t.Errorf("String shows the password: %s", s)
	}
}

func TestOneLine(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain":           "plain",
		"a\r\nb":          "a  b",
		"a\u2028b\u0085c": "a b c",
		"tab\there":       "tab here",
		"bad\xffutf8":     "bad\uFFFDutf8",
		"1234567890":      "1234…",
	} {
		max := 100
		if in == "1234567890" {
			max = 5
		}
		if got := notify.OneLine(in, max); got != want {
			t.Errorf("OneLine(%q) = %q, want %q", in, got, want)
		}
	}
}
