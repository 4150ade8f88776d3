// Package pkcs11 keeps signing keys on a PKCS#11 token (an HSM, a YubiKey,
// SoftHSM) and exposes them as crypto.Signer.
//
// The token code (Open, Token, Key) uses cgo and is built only with
// -tags pkcs11, so the default builds of every binary stay cgo-free and
// PKCS#11-free (internal/lint checks both). The URI type, the RFC 7512
// "pkcs11:" URI that names a module, a token and a key, is pure Go and built
// always, so key references can be read and explained by any build.
//
// Invariants: keys made here are generated inside the token as
// CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE and not CKA_EXTRACTABLE, so their
// private part never leaves it; no function takes or returns private-key
// bytes; a PIN is a parameter (callers read it from the environment or a
// file, never from a command-line flag) and never appears in errors or in a
// formatted URI.
package pkcs11
