package notify

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Event is what a notification reports: a final status of a signing
// request, or that it awaits approval.
type Event string

// Events.
const (
	EventSigned           Event = "signed"
	EventDenied           Event = "denied"
	EventFailed           Event = "failed"
	EventCanceled         Event = "canceled"
	EventExpired          Event = "expired"
	EventAwaitingApproval Event = "awaiting_approval"
)

// FinalEvents are the final statuses webhooks are sent for.
var FinalEvents = []Event{EventSigned, EventDenied, EventFailed, EventCanceled, EventExpired}

// Final reports whether e is a final status.
func (e Event) Final() bool { return slices.Contains(FinalEvents, e) }

// Notification is what happened to a signing request. The service fills it
// when it records a Delivery; it is stored as JSON in the outbox.
type Notification struct {
	Event     Event  `json:"event"`
	RequestID string `json:"request_id"`
	Project   string `json:"project"`
	Policy    string `json:"policy"`
	// Image is what the request signs, as the submitter named it
	// (repository and tag); Digest its manifest digest.
	Image  string `json:"image"`
	Digest string `json:"digest"`
	// Submitter is who submitted the request (a user, or a CI identity
	// such as repo:org/repo:ref:refs/heads/main).
	Submitter string `json:"submitter,omitempty"`
	// Comment is the reason given by whoever denied or canceled the
	// request, or the failure's message.
	Comment string `json:"comment,omitempty"`
	// Approvals and Required count approvals so far and needed.
	Approvals int `json:"approvals,omitempty"`
	Required  int `json:"required,omitempty"`
	// URL links to the request in the web UI (RequestURL).
	URL string `json:"url"`
	// Time is when the event happened.
	Time time.Time `json:"time"`
}

// Validate checks what every notification needs.
func (n Notification) Validate() error {
	switch {
	case n.Event != EventAwaitingApproval && !n.Event.Final():
		return fmt.Errorf("notify: unknown event %q", n.Event)
	case n.RequestID == "":
		return fmt.Errorf("notify: notification without a request ID")
	case n.Time.IsZero():
		return fmt.Errorf("notify: notification without a time")
	}
	return nil
}

// RequestURL is the web UI's page of a request under the server's external
// base URL (https://signet.example.com).
func RequestURL(base, requestID string) string {
	return strings.TrimSuffix(base, "/") + "/ui/requests/" + url.PathEscape(requestID)
}

// Payload is the JSON body POSTed to webhooks:
//
//	{
//	  "event":       "signing_request.signed",   // "signing_request." + status
//	  "delivery_id": "01JF…",                    // the same for every retry
//	  "request_id":  "01JE…",
//	  "project":     "app",
//	  "policy":      "release-signing",
//	  "status":      "signed",                   // signed|denied|failed|canceled|expired
//	  "image":       "registry.example.com/org/app:1.2.0",
//	  "digest":      "sha256:…",
//	  "url":         "https://signet.example.com/ui/requests/01JE…",
//	  "comment":     "…",                        // deny/cancel reason or failure; omitted when empty
//	  "time":        "2026-12-06T12:00:00Z"      // RFC 3339 UTC
//	}
type Payload struct {
	Event      string `json:"event"`
	DeliveryID string `json:"delivery_id"`
	RequestID  string `json:"request_id"`
	Project    string `json:"project"`
	Policy     string `json:"policy"`
	Status     Event  `json:"status"`
	Image      string `json:"image"`
	Digest     string `json:"digest"`
	URL        string `json:"url"`
	Comment    string `json:"comment,omitempty"`
	Time       string `json:"time"`
}

// PayloadFor returns the webhook body for a notification.
func PayloadFor(deliveryID string, n Notification) ([]byte, error) {
	return json.Marshal(Payload{
		Event: "signing_request." + string(n.Event), DeliveryID: deliveryID, RequestID: n.RequestID,
		Project: n.Project, Policy: n.Policy, Status: n.Event, Image: n.Image, Digest: n.Digest,
		URL: n.URL, Comment: n.Comment, Time: n.Time.UTC().Format(time.RFC3339),
	})
}
