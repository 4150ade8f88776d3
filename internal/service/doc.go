// Package service is Signet's signing service, in the style of SignPath:
// projects whose delegation key stays in custody, signing policies (who
// submits, from which CI, who approves, which tags), CI origin
// verification, k-of-n approvals, and semantic signing — a signer role
// per project (targets/<signer>) signing exactly the digest a tag pointed
// at, instead of everyone writing targets/releases — and, per policy,
// the same digest in cosign's formats with the project's cosign key.
//
// What it holds: the domain logic (users and API tokens, roles, projects
// and their keys, policies, signing requests and their state machine) over
// the records and Store contract of package record (servicetest is its
// conformance suite; internal/store/sqlstore implements it), the signing
// worker, the notification outbox, the HTTP API under /api/v1 (routes with
// their access, handed to signet-server's one route table; the OpenAPI
// document) and its authorizer.
//
// Invariants:
//   - Every state change appends its audit events (and queues its
//     notifications) in the same transaction as the change, or fails.
//   - A request is signed only after its policy's approvals, for exactly
//     the digest and size the tag resolved to at submit; the tag is
//     resolved again right before signing and a moved tag fails the
//     request. A final status never changes.
//   - Signing is a durable job: a request in status signing is retried
//     (by any replica, under a lease) until it is signed or fails; a
//     publish is atomic, so a crash leaves nothing half signed, and a
//     retry that finds the target already signed records it as signed.
//   - A request in several formats is checked whole (tags, the registry's
//     push access, the cosign key) before any format is written, records
//     that it started and each format done (DCT first, then cosign), and
//     after a crash completes the formats not done, for the digests it
//     started on, without writing a done one again (cosign writes are
//     idempotent per form and key); it is recorded signed once, with one
//     request.sign per image naming every format. A failure after a
//     format was done fails the request saying what stays published.
//   - Metadata is published only through the server's upload chokepoint
//     (Repositories.Publish); keys are reached only through custody
//     (KeyCustody), as crypto.Signer.
//   - The package reaches the registry (ImageResolver, CosignWriter), the
//     Notary server, custody, the OIDC verifier and the notifier only
//     through the interfaces of its Config, which signet-server's command
//     wires; it imports none of their implementations.
package service
