package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Kind is a delivery channel.
type Kind string

// Kinds.
const (
	KindWebhook Kind = "webhook"
	KindEmail   Kind = "email"
)

// State is where a delivery stands.
type State string

// States.
const (
	StatePending   State = "pending"
	StateDelivered State = "delivered"
	StateFailed    State = "failed" // given up; LastError says why
)

// Delivery is one notification to one target, as the outbox stores it.
type Delivery struct {
	// ID is unique and stable across retries.
	ID   string
	Kind Kind
	// Target is the webhook's ID (KindWebhook) or the recipient's address
	// (KindEmail).
	Target       string
	Notification Notification
	State        State
	// Attempts made so far; NextAttempt is when the next is due (pending
	// deliveries only); LastError is the last failure ("" if none).
	Attempts    int
	NextAttempt time.Time
	LastError   string
}

// Outcome is the result of one attempt at a claimed delivery.
type Outcome struct {
	// State is StateDelivered, StatePending (to be retried at
	// NextAttempt) or StateFailed (given up).
	State       State
	Attempts    int
	NextAttempt time.Time
	LastError   string
	// At is when the attempt ended.
	At time.Time
}

// Outbox holds deliveries; the service implements it on its database (see
// the package documentation for the table) and adds deliveries in the
// transactions that change a request's status. notifytest.RunOutbox is its
// conformance suite.
type Outbox interface {
	// Claim returns up to limit pending deliveries with NextAttempt at or
	// before now, earliest first, and moves their NextAttempt to
	// now+lease, atomically, so that no other Claim returns them before
	// the lease ends.
	Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// Record stores the outcome of an attempt at delivery id.
	Record(ctx context.Context, id string, o Outcome) error
}

// ErrNoTarget is what a WebhookResolver returns (wrapped) for a webhook
// that no longer exists; its deliveries are given up.
var ErrNoTarget = errors.New("notify: no such target")

// WebhookResolver returns the current configuration of a webhook by ID.
type WebhookResolver func(ctx context.Context, id string) (Webhook, error)

// RetryPolicy bounds attempts and spaces them out.
type RetryPolicy struct {
	// MaxAttempts is the most attempts at one delivery.
	MaxAttempts int
	// Initial is the wait after the first failure; each failure doubles
	// it, up to Max.
	Initial, Max time.Duration
	// Jitter (0–1) is the fraction of each wait that is random, so that
	// retries of many deliveries spread out.
	Jitter float64
}

// DefaultRetryPolicy tries 8 times over about two hours.
var DefaultRetryPolicy = RetryPolicy{MaxAttempts: 8, Initial: 30 * time.Second, Max: time.Hour, Jitter: 0.5}

// Delay is the wait after failed attempt number attempt (1 for the first),
// with r in [0, 1) drawing the jitter: the full backoff
// min(Max, Initial·2^(attempt-1)) less up to Jitter of it.
func (p RetryPolicy) Delay(attempt int, r float64) time.Duration {
	d := p.Initial
	for i := 1; i < attempt && d < p.Max; i++ {
		d *= 2
	}
	d = min(d, p.Max)
	return d - time.Duration(float64(d)*p.Jitter*r)
}

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	Outbox Outbox
	// Webhooks resolves webhook targets; Sender sends them. Mailer sends
	// mail. A delivery whose channel is not configured is given up.
	Webhooks WebhookResolver
	Sender   *WebhookSender
	Mailer   *Mailer
	// Retry defaults to DefaultRetryPolicy.
	Retry RetryPolicy
	// Lease is how long a claim holds a delivery (default 2 min); it must
	// outlast one attempt.
	Lease time.Duration
	// Batch is how many deliveries one pass claims (default 20).
	Batch int
	// Now is the clock (default time.Now); Rand draws jitter in [0, 1)
	// (default math/rand/v2).
	Now  func() time.Time
	Rand func() float64
	// Logger receives outcomes, never secrets; nil discards.
	Logger *slog.Logger
}

// Worker delivers due notifications from an Outbox.
type Worker struct {
	cfg  WorkerConfig
	wake chan struct{}
}

// NewWorker returns a Worker.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Outbox == nil {
		return nil, errors.New("notify: worker without an outbox")
	}
	if cfg.Retry == (RetryPolicy{}) {
		cfg.Retry = DefaultRetryPolicy
	}
	if cfg.Retry.MaxAttempts < 1 || cfg.Retry.Initial <= 0 || cfg.Retry.Max < cfg.Retry.Initial || cfg.Retry.Jitter < 0 || cfg.Retry.Jitter > 1 {
		return nil, fmt.Errorf("notify: retry policy %+v is not usable", cfg.Retry)
	}
	if cfg.Lease == 0 {
		cfg.Lease = 2 * time.Minute
	}
	if cfg.Batch == 0 {
		cfg.Batch = 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Worker{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Wake makes a running Run pass at once (after the service committed new
// deliveries); it never blocks.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run passes over the outbox every poll interval, or when woken, until ctx
// ends; it returns ctx's error. A failing pass is logged and retried at the
// next interval.
func (w *Worker) Run(ctx context.Context, poll time.Duration) error {
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if _, err := w.RunOnce(ctx); err != nil && ctx.Err() == nil {
			w.cfg.Logger.WarnContext(ctx, "notify: outbox pass failed", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-w.wake:
		}
	}
}

// Stats counts a pass's outcomes.
type Stats struct{ Delivered, Retrying, Failed int }

// RunOnce claims one batch of due deliveries, makes one attempt at each, and
// records the outcomes.
func (w *Worker) RunOnce(ctx context.Context) (Stats, error) {
	var st Stats
	due, err := w.cfg.Outbox.Claim(ctx, w.cfg.Now(), w.cfg.Lease, w.cfg.Batch)
	if err != nil {
		return st, fmt.Errorf("notify: claim: %w", err)
	}
	for _, d := range due {
		err := w.attempt(ctx, d)
		if ctx.Err() != nil {
			// Shutting down: the lease lapses and the delivery is retried.
			return st, ctx.Err()
		}
		o := Outcome{Attempts: d.Attempts + 1, At: w.cfg.Now()}
		var pe *PermanentError
		switch {
		case err == nil:
			o.State = StateDelivered
			st.Delivered++
		case errors.As(err, &pe) || o.Attempts >= w.cfg.Retry.MaxAttempts:
			o.State, o.LastError = StateFailed, err.Error()
			st.Failed++
		default:
			o.State, o.LastError = StatePending, err.Error()
			o.NextAttempt = o.At.Add(w.cfg.Retry.Delay(o.Attempts, w.cfg.Rand()))
			st.Retrying++
		}
		log := w.cfg.Logger.With("delivery", d.ID, "kind", string(d.Kind), "request", d.Notification.RequestID,
			"event", string(d.Notification.Event), "attempt", o.Attempts)
		switch o.State {
		case StateDelivered:
			log.InfoContext(ctx, "notify: delivered")
		case StatePending:
			log.WarnContext(ctx, "notify: attempt failed; will retry", "error", o.LastError, "next_attempt", o.NextAttempt)
		default:
			log.ErrorContext(ctx, "notify: delivery given up", "error", o.LastError)
		}
		if err := w.cfg.Outbox.Record(ctx, d.ID, o); err != nil {
			return st, fmt.Errorf("notify: record delivery %s: %w", d.ID, err)
		}
	}
	return st, nil
}

func (w *Worker) attempt(ctx context.Context, d Delivery) error {
	if err := d.Notification.Validate(); err != nil {
		return &PermanentError{err}
	}
	switch d.Kind {
	case KindWebhook:
		if w.cfg.Sender == nil || w.cfg.Webhooks == nil {
			return &PermanentError{errors.New("notify: webhooks are not configured")}
		}
		wh, err := w.cfg.Webhooks(ctx, d.Target)
		if errors.Is(err, ErrNoTarget) {
			return &PermanentError{fmt.Errorf("notify: webhook %s: %w", d.Target, err)}
		}
		if err != nil {
			return fmt.Errorf("notify: webhook %s: %w", d.Target, err)
		}
		if !wh.Wants(d.Notification.Event) {
			return &PermanentError{fmt.Errorf("notify: webhook %s does not take %s events", d.Target, d.Notification.Event)}
		}
		return w.cfg.Sender.Send(ctx, wh, d.ID, d.Notification)
	case KindEmail:
		if w.cfg.Mailer == nil {
			return &PermanentError{errors.New("notify: e-mail is not configured (no SMTP settings)")}
		}
		return w.cfg.Mailer.Send(ctx, MessageFor(d.Notification, d.Target, d.ID, w.cfg.Now()))
	}
	return &PermanentError{fmt.Errorf("notify: unknown delivery kind %q", d.Kind)}
}
