// Package hsm gives the custody core (package custody) a PKCS#11 token to
// create and keep keys in: Open loads the module named by an RFC 7512 URI,
// logs in to the token with a PIN, and returns a custody.Token over
// internal/keys/pkcs11. Only signet-signer links it.
//
// The token code uses cgo and is built only with -tags pkcs11, as
// internal/keys/pkcs11 is (ADR 0007); without the tag the package holds
// only this comment, and signet-signer's --pkcs11 says how to build it.
//
// Invariants: keys are generated inside the token as sensitive and not
// extractable, so no private half ever leaves it; the PIN is a parameter
// (signet-signer reads it from SIGNET_SIGNER_PKCS11_PIN), never part of a
// URI, a record or an error.
package hsm
