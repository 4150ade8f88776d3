// Package admission is signet-admission, the Kubernetes admission webhook
// (admission.k8s.io/v1) that enforces image signatures at deploy time:
// Docker Content Trust signatures by named signers (their own roles
// targets/<name>, never targets/releases alone), cosign signatures by
// given keys, or both; tags pinned to the digests verified (/mutate);
// break-glass recorded in the audit log before it is granted; continuous
// validation of what was admitted.
//
// Decisions go through the same code as `signet verify`: the client's
// Reader (internal/client) updates and verifies a repository through
// tuf/trust, internal/policy decides tags and digests, internal/oci
// verifies cosign signatures. Nothing is verified here in another way.
//
// Invariants: the policy file is checked whole at start, every error
// naming its line; a decision is bounded in time (well under the API
// server's 10 s) and so is every cache (entries, TTL, maximum stale age);
// without trust data an enforcing namespace refuses, with the reason;
// break-glass is granted only once the audit log holds its record (fail
// closed); the webhook holds no private key and links no SQL or PKCS#11.
package admission
