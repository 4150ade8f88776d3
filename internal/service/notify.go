package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/notify"
	"github.com/signet-trust/signet/internal/store"
)

// Delivery kinds.
const (
	DeliveryWebhook = string(notify.KindWebhook)
	DeliveryEmail   = string(notify.KindEmail)
)

// WebhookID is the outbox's target of a policy's webhook.
func WebhookID(project, policy string) string { return project + "/" + policy }

// mailbook holds the e-mail addresses of the users a request's
// notifications may go to, read before the transaction that queues them.
type mailbook map[string]string

// mailbook reads the addresses of pol's approvers and of submitter.
func (s *Service) mailbook(ctx context.Context, pol Policy, submitter string) mailbook {
	book := mailbook{}
	for _, name := range append(append([]string{}, pol.Approvers...), submitter) {
		if name == "" || book[name] != "" {
			continue
		}
		if u, err := s.st.GetUser(ctx, name); err == nil && u.Email != "" {
			book[name] = u.Email
		}
	}
	return book
}

// deliveries builds the notifications of request r entering status (with
// comment): to the approvers with an e-mail address when it awaits them;
// to the policy's webhook and the submitter when it reaches a final
// status.
func (s *Service) deliveries(r Request, pol Policy, book mailbook, status Status, comment string) []Delivery {
	now := s.now()
	n := notify.Notification{
		Event: notify.Event(status), RequestID: r.ID, Project: r.Project, Policy: r.Policy, Submitter: r.SubmitterName(),
		Comment: comment, Approvals: len(r.Approvals), Required: pol.Required, Time: now.UTC(),
	}
	if len(r.Images) > 0 {
		n.Image, n.Digest = r.Images[0].Ref, r.Images[0].Digest
	}
	if s.cfg.BaseURL != "" {
		n.URL = notify.RequestURL(s.cfg.BaseURL, r.ID)
	}
	body, err := json.Marshal(n)
	if err != nil {
		return nil
	}
	var out []Delivery
	add := func(kind, target string) {
		out = append(out, Delivery{ID: s.ids.next(now), RequestID: r.ID, Kind: kind, Target: target, Notification: body,
			State: DeliveryPending, NextAttempt: now, Created: now, Updated: now})
	}
	var mailTo []string
	switch {
	case status == StatusAwaitingApproval:
		mailTo = pol.Approvers
	case status.Final():
		if pol.Webhook != nil {
			add(DeliveryWebhook, WebhookID(pol.Project, pol.Name))
		}
		if r.Submitter != "" {
			mailTo = []string{r.Submitter}
		}
	}
	for _, name := range mailTo {
		if addr := book[name]; addr != "" {
			add(DeliveryEmail, addr)
		}
	}
	return out
}

// Outbox is the service's notification outbox as package notify's worker
// takes it (notify.Outbox on the Store), with the webhooks of policies
// as its targets.
type Outbox struct{ st Store }

// Outbox returns the service's notification outbox.
func (s *Service) Outbox() *Outbox { return &Outbox{st: s.st} }

// NewOutbox returns the notification outbox of st.
func NewOutbox(st Store) *Outbox { return &Outbox{st: st} }

var _ notify.Outbox = (*Outbox)(nil)

func deliveryOut(d Delivery) (notify.Delivery, error) {
	var n notify.Notification
	if err := json.Unmarshal(d.Notification, &n); err != nil {
		return notify.Delivery{}, fmt.Errorf("service: delivery %s: stored notification: %w", d.ID, err)
	}
	return notify.Delivery{ID: d.ID, Kind: notify.Kind(d.Kind), Target: d.Target, Notification: n, State: notify.State(d.State),
		Attempts: d.Attempts, NextAttempt: d.NextAttempt, LastError: d.LastError}, nil
}

// Claim implements notify.Outbox.
func (o *Outbox) Claim(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]notify.Delivery, error) {
	ds, err := o.st.ClaimDeliveries(ctx, now, lease, limit)
	if err != nil {
		return nil, err
	}
	out := make([]notify.Delivery, 0, len(ds))
	for _, d := range ds {
		nd, err := deliveryOut(d)
		if err != nil {
			return nil, err
		}
		out = append(out, nd)
	}
	return out, nil
}

// Record implements notify.Outbox.
func (o *Outbox) Record(ctx context.Context, id string, oc notify.Outcome) error {
	return o.st.RecordDelivery(ctx, id, string(oc.State), oc.Attempts, oc.NextAttempt, oc.LastError, oc.At)
}

// Add queues a delivery on its own (notifytest's harness; the service
// queues deliveries with the changes that cause them).
func (o *Outbox) Add(ctx context.Context, d notify.Delivery) error {
	body, err := json.Marshal(d.Notification)
	if err != nil {
		return err
	}
	now := d.NextAttempt
	return o.st.Commit(ctx, Effects{Deliveries: []Delivery{{ID: d.ID, RequestID: d.Notification.RequestID, Kind: string(d.Kind),
		Target: d.Target, Notification: body, State: DeliveryPending, NextAttempt: d.NextAttempt, Created: now, Updated: now}}})
}

// Get reads a delivery.
func (o *Outbox) Get(ctx context.Context, id string) (notify.Delivery, error) {
	d, err := o.st.GetDelivery(ctx, id)
	if err != nil {
		return notify.Delivery{}, err
	}
	return deliveryOut(d)
}

// Webhook resolves a webhook target (a policy, WebhookID) to its current
// configuration, for notify's worker; notify.ErrNoTarget when the policy
// or its webhook is gone.
func (o *Outbox) Webhook(ctx context.Context, id string) (notify.Webhook, error) {
	project, policy, ok := strings.Cut(id, "/")
	if !ok {
		return notify.Webhook{}, fmt.Errorf("%w: %q is not project/policy", notify.ErrNoTarget, id)
	}
	pol, err := o.st.GetPolicy(ctx, project, policy)
	if errors.Is(err, store.ErrNotFound) {
		return notify.Webhook{}, fmt.Errorf("%w: policy %s", notify.ErrNoTarget, id)
	}
	if err != nil {
		return notify.Webhook{}, err
	}
	if pol.Webhook == nil {
		return notify.Webhook{}, fmt.Errorf("%w: policy %s has no webhook any more", notify.ErrNoTarget, id)
	}
	return notify.Webhook{URL: pol.Webhook.URL, AuthValue: pol.Webhook.Authorization}, nil
}
