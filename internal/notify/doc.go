// Package notify tells people and systems about signing requests: a webhook
// per project or policy when a request reaches a final status (signed,
// denied, failed, canceled, expired), and e-mail to approvers when a
// request awaits them and to the submitter when it completes. Without them
// approvals stall and CI jobs time out.
//
// # Delivery
//
// Notifications go through a durable outbox. The service records a
// Delivery (what happened, to whom) in its database in the same
// transaction as the status change; a Worker claims due deliveries, makes
// one attempt each, and records the outcome: delivered, retry at a later
// time (exponential backoff with jitter, bounded attempts), or given up
// with the last error kept. A claim is a lease, so when a worker dies its
// deliveries are taken up by another after the lease; delivery is
// therefore at least once, and receivers deduplicate by delivery ID (the
// X-Signet-Delivery header and delivery_id field; the Message-ID of mail).
// The Outbox interface is owned here and implemented by the service on its
// database; notifytest.RunOutbox is its conformance suite.
//
// The table an SQL outbox needs (one row per delivery):
//
//	id            text primary key      -- opaque, sortable (UUIDv7/ULID)
//	kind          text not null         -- 'webhook' | 'email'
//	target        text not null         -- webhook ID, or an e-mail address
//	notification  text not null         -- JSON of Notification
//	state         text not null         -- 'pending' | 'delivered' | 'failed'
//	attempts      integer not null      -- attempts made so far
//	next_attempt  timestamp not null    -- due time; a claim moves it on by the lease
//	last_error    text not null default ''
//	created_at, updated_at timestamp not null
//	index on (state, next_attempt)
//
// Claim is one statement (UPDATE … SET next_attempt = now + lease WHERE id IN
// (SELECT id … WHERE state = 'pending' AND next_attempt <= now ORDER BY
// next_attempt LIMIT n FOR UPDATE SKIP LOCKED) RETURNING …, or the SQLite
// equivalent inside a write transaction), so two replicas never claim the
// same row at once.
//
// # Webhooks
//
// A webhook is POSTed a JSON document (see Payload) over HTTPS only, with
// the configured authentication header, and, when the webhook has a
// secret, X-Signet-Signature: sha256=<hex HMAC-SHA256 of the body> so the
// receiver can check it came from this server (VerifySignature). Redirects
// are not followed. 2xx is delivered; 408, 425, 429, 5xx and network errors
// are retried; any other answer is given up at once (a 401 or 404 will not
// heal by itself). Secrets never appear in logs, errors or String output.
//
// # E-mail
//
// Mail goes over SMTP with STARTTLS required (or implicit TLS); a server
// that does not offer STARTTLS is refused unless the mailer is explicitly
// configured for plaintext to a loopback address. AUTH PLAIN is used only
// over TLS. Messages are plain text (UTF-8, quoted-printable); every header
// is built from sanitized values, so CR, LF and other control characters in
// attacker-chosen data (image names, comments) can never start a header or
// a line of their own, and comments are quoted in the body.
package notify
