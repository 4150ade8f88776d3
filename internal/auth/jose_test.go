package auth

import "github.com/signet-trust/signet/internal/jose"

// Shorthands the tests use for the JOSE encodings of internal/jose.
var (
	b64     = jose.B64Encode
	b64url  = jose.B64Decode
	signJWS = jose.Sign
)
