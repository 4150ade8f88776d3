package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Webhook is one receiver of final-status notifications.
type Webhook struct {
	// URL is where notifications are POSTed; https only.
	URL string
	// AuthHeader names the header that carries AuthValue ("" means
	// Authorization); AuthValue is secret ("Bearer …") and may be empty.
	AuthHeader, AuthValue string
	// Secret, when set, signs each body (X-Signet-Signature).
	Secret []byte
	// Events are the final statuses to send; empty means all of them.
	Events []Event
}

// String shows the webhook without its secrets.
func (w Webhook) String() string {
	return fmt.Sprintf("webhook %s (auth %s, signed %v, events %v)", w.URL, w.authName(), len(w.Secret) > 0, w.Events)
}

// LogValue logs the webhook without its secrets.
func (w Webhook) LogValue() slog.Value {
	return slog.GroupValue(slog.String("url", w.URL), slog.Bool("signed", len(w.Secret) > 0))
}

func (w Webhook) authName() string {
	if w.AuthHeader == "" {
		return "Authorization"
	}
	return w.AuthHeader
}

// Validate checks a webhook's configuration.
func (w Webhook) Validate() error {
	u, err := url.Parse(w.URL)
	switch {
	case err != nil:
		return fmt.Errorf("notify: webhook URL: %v", err)
	case u.Scheme != "https":
		return fmt.Errorf("notify: webhook URL %s is not https; notifications are sent over HTTPS only", u.Redacted())
	case u.Host == "" || u.User != nil:
		return fmt.Errorf("notify: webhook URL %s needs a host and no user info", u.Redacted())
	}
	if w.AuthHeader != "" {
		if strings.TrimLeft(w.AuthHeader, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != "" {
			return fmt.Errorf("notify: webhook auth header name %q is not a header name", w.AuthHeader)
		}
		switch http.CanonicalHeaderKey(w.AuthHeader) {
		case "Content-Type", "Content-Length", "Host", "User-Agent", "X-Signet-Signature", "X-Signet-Event", "X-Signet-Delivery":
			return fmt.Errorf("notify: webhook auth header %s is set by the sender", w.AuthHeader)
		}
	}
	if strings.ContainsAny(w.AuthValue, "\r\n") {
		return errors.New("notify: webhook auth value holds a line break")
	}
	for _, e := range w.Events {
		if !e.Final() {
			return fmt.Errorf("notify: webhook event %q is not a final status (%v)", e, FinalEvents)
		}
	}
	return nil
}

// Wants reports whether the webhook is sent e.
func (w Webhook) Wants(e Event) bool {
	return e.Final() && (len(w.Events) == 0 || slices.Contains(w.Events, e))
}

// SignatureHeader is the header carrying the body's HMAC.
const SignatureHeader = "X-Signet-Signature"

// Sign returns the X-Signet-Signature value for body: "sha256=" and the
// hex HMAC-SHA256 of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature reports, in constant time, whether header is body's
// signature under secret; receivers call it before trusting a body.
func VerifySignature(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}

// WebhookConfig configures a WebhookSender.
type WebhookConfig struct {
	// Client sends the requests; nil means one trusting the system roots.
	// Redirects are never followed, whatever the client.
	Client *http.Client
	// Timeout bounds one attempt (default 10 s).
	Timeout time.Duration
}

// WebhookSender makes webhook attempts.
type WebhookSender struct {
	client  *http.Client
	timeout time.Duration
}

// NewWebhookSender returns a WebhookSender.
func NewWebhookSender(cfg WebhookConfig) *WebhookSender {
	c := http.Client{}
	if cfg.Client != nil {
		c = *cfg.Client
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	s := &WebhookSender{client: &c, timeout: cfg.Timeout}
	if s.timeout == 0 {
		s.timeout = 10 * time.Second
	}
	return s
}

// PermanentError is a delivery failure that retrying will not cure.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Send makes one attempt to POST n to w. A nil error means a 2xx answer;
// a *PermanentError one not worth retrying.
func (s *WebhookSender) Send(ctx context.Context, w Webhook, deliveryID string, n Notification) error {
	if err := w.Validate(); err != nil {
		return &PermanentError{err}
	}
	body, err := PayloadFor(deliveryID, n)
	if err != nil {
		return &PermanentError{err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return &PermanentError{fmt.Errorf("notify: webhook request: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "signet-notify/1")
	req.Header.Set("X-Signet-Event", "signing_request."+string(n.Event))
	req.Header.Set("X-Signet-Delivery", deliveryID)
	if w.AuthValue != "" {
		req.Header.Set(w.authName(), w.AuthValue)
	}
	if len(w.Secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(w.Secret, body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// url.Error carries the URL (never the auth value); keep only it
		// and the cause.
		return fmt.Errorf("notify: webhook %s: %w", redacted(w.URL), unwrapURLError(err))
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 == 2 {
		return nil
	}
	err = fmt.Errorf("notify: webhook %s answered HTTP %d: %q", redacted(w.URL), resp.StatusCode, strings.TrimSpace(string(snippet)))
	switch sc := resp.StatusCode; {
	case sc == http.StatusRequestTimeout, sc == http.StatusTooEarly, sc == http.StatusTooManyRequests, sc >= 500:
		return err
	}
	return &PermanentError{err}
}

func redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery, u.Fragment = "", "" // query strings often carry tokens
	return u.Redacted()
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
