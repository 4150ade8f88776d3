// Package client is the Notary v1 client library of Signet: a Remote that
// speaks the server's HTTP API, a Reader that updates and verifies a
// repository through the one state machine of tuf/trust (no keys needed),
// and a Publisher that turns staged changes into signed metadata and
// uploads it atomically.
//
// Invariants: nothing is trusted that did not pass tuf/trust; downloads are
// bounded by the lengths the verified metadata gives (or by notary's
// limits); the local cache only ever holds verified metadata.
package client
