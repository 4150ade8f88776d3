package service

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

// notification is what happened to a request, as the outbox stores it and
// package notify's worker sends it (its Notification, field for field).
type notification struct {
	Event     string    `json:"event"`
	RequestID string    `json:"request_id"`
	Project   string    `json:"project"`
	Policy    string    `json:"policy"`
	Image     string    `json:"image"`
	Digest    string    `json:"digest"`
	Submitter string    `json:"submitter,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	Approvals int       `json:"approvals,omitempty"`
	Required  int       `json:"required,omitempty"`
	URL       string    `json:"url"`
	Time      time.Time `json:"time"`
}

// Delivery kinds.
const (
	DeliveryWebhook = "webhook"
	DeliveryEmail   = "email"
)

// WebhookID is the outbox's target of a policy's webhook.
func WebhookID(project, policy string) string { return project + "/" + policy }

// ParseWebhookID splits a WebhookID.
func ParseWebhookID(id string) (project, policy string, ok bool) {
	return strings.Cut(id, "/")
}

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
	n := notification{
		Event: string(status), RequestID: r.ID, Project: r.Project, Policy: r.Policy, Submitter: r.SubmitterName(),
		Comment: comment, Approvals: len(r.Approvals), Required: pol.Required, Time: now.UTC(),
	}
	if len(r.Images) > 0 {
		n.Image, n.Digest = r.Images[0].Ref, r.Images[0].Digest
	}
	if s.cfg.BaseURL != "" {
		n.URL = strings.TrimSuffix(s.cfg.BaseURL, "/") + "/ui/requests/" + url.PathEscape(r.ID)
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
