// Package client is the Notary v1 client library of Signet: a Remote that
// speaks the server's HTTP API, a Reader that updates and verifies a
// repository through the one state machine of tuf/trust (no keys needed;
// trust pinning as internal/policy decides it), and a Publisher that
// applies typed changes (package changes) to signed metadata, signs with a
// KeyStore and uploads atomically — including root key rotation.
//
// Invariants: nothing is trusted that did not pass tuf/trust; downloads are
// bounded by the lengths the verified metadata gives and never exceed the
// role's cap (MaxSize), files fetched by checksum are hashed as they stream
// in; an update follows at most trust.MaxRootRotations root versions, each
// exactly the version asked for, and ends at Reader.Timeout; the local cache
// only ever holds verified metadata; notary's
// changelist JSON is met only in package changes, where files are read and
// written.
package client
