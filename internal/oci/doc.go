// Package oci writes and verifies cosign-format signatures and attestations
// in OCI registries, with Signet's own code: the formats are built and
// checked here, the registry is reached through internal/registry, and the
// only crypto is a crypto.Signer to sign and a public key to verify, so file
// keys, PKCS#11 tokens and signet-signer's remote keys all plug in.
//
// Two storage forms are written for every signature and attestation, since
// the ecosystem reads one or the other (docs/adr/0012-cosign-formats.md):
//
//   - the Sigstore bundle v0.3 (a DSSE envelope around an in-toto Statement,
//     the public-key hint, no transparency-log entry) as an OCI 1.1 referrer
//     of the signed manifest: what cosign v3 writes and reads first. On a
//     registry without the Referrers API the referrers tag schema's index
//     at tag sha256-<hex> is kept up to date, as go-containerregistry does.
//   - the legacy image at tag sha256-<hex>.sig (one simple-signing payload
//     layer per signature, base64 signature in a layer annotation), and
//     sha256-<hex>.att for attestations (one DSSE envelope layer each):
//     what cosign v2, policy-controller's default and Kyverno's type Cosign
//     read.
//
// Invariants: signatures are over SHA-256 (ECDSA ASN.1 DER, RSA PKCS#1
// v1.5) or pure Ed25519, as `cosign verify --key` checks them by default;
// every signature is verified against the key's public half before it is
// written; signing is idempotent (an equivalent signature by the same key
// already present is reported, not written again); a verified result names
// the digest it covers, and that digest is always the one asked about;
// verification is by key only, ignoring transparency-log material as
// `cosign verify --insecure-ignore-tlog=true` does, and is never more lenient
// than cosign v3.1.3 in either form. Time is an argument (Options.Now).
package oci
