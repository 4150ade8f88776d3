// Package signerapi is the protocol between signet-server and
// signet-signer: HTTP/JSON over mutual TLS (docs/adr/0006-signer-protocol.md,
// docs/adr/0008-one-custody-core.md). Handler serves a custody core
// (custody.Custodian) and Client is the server's side, implementing
// custody.Custodian with one crypto.Signer per key, so the server cannot
// tell a remote signer from its embedded core.
//
// Routes (all JSON; binary fields base64 as encoding/json writes []byte):
//
//	POST   /v1/keys               {gun, role, algorithm[, purpose, owner]} → 201 KeyInfo
//	POST   /v1/keys/import        {gun, role, algorithm, purpose, owner, private_key} → 201 KeyInfo
//	GET    /v1/keys?gun=&role=&purpose=&owner=&retired=&limit=      → {keys: [KeyInfo, …]} newest first
//	GET    /v1/keys/{id}[?gun=]                                     → KeyInfo; with gun, 404 unless active and held for gun
//	POST   /v1/keys/{id}/sign     {gun, hash, digest} | {gun, message} → {signature}
//	POST   /v1/keys/{id}/rotate                                     → 201 KeyInfo of the new key
//	POST   /v1/keys/{id}/retire                                     → KeyInfo
//	DELETE /v1/keys/{id}                                            → 204
//	GET    /v1/health                                               → {status: "ok"} or 503
//
// The first form of each route is the protocol of earlier releases, served
// unchanged: a create request without purpose and owner makes the role's
// online key owned by the server, and a listing by gun and role lists the
// active keys.
//
// Sign has exactly the semantics of crypto.Signer.Sign, so the remote
// signer is a drop-in for keys.Sign: for an ECDSA key the request carries a
// digest and the name of its hash ("SHA-256") and the answer is the ASN.1
// DER signature; for an Ed25519 key it carries the whole message (no hash)
// and the answer is the 64-byte signature. Errors are
// {error: {code, message}} with the codes below.
//
// Invariants: the handler serves only requests that arrived over TLS with a
// client certificate verified against the configured CA (ServerTLSConfig
// makes the listener require one; the handler refuses anything else too);
// no route returns private key material (an imported key travels only
// towards the signer); the client checks every signature it receives
// against the key's public half before handing it out, and bounds every
// call with a timeout.
package signerapi

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/signet-trust/signet/internal/custody"
)

// KeyInfo describes one key held by the signer.
type KeyInfo struct {
	ID        string    `json:"id"`
	Algorithm string    `json:"algorithm"` // TUF key type: ecdsa or ed25519
	Public    []byte    `json:"public"`    // keyval.public: DER SPKI (ecdsa) or 32 bytes (ed25519)
	GUN       string    `json:"gun"`
	Role      string    `json:"role,omitempty"`
	Purpose   string    `json:"purpose,omitempty"`
	Owner     string    `json:"owner,omitempty"`
	Alias     string    `json:"alias,omitempty"` // the passphrase alias of a sealed key
	Token     string    `json:"token,omitempty"` // the PKCS#11 token of a token-held key
	CreatedAt time.Time `json:"created_at,omitzero"`
	RetiredAt time.Time `json:"retired_at,omitzero"`
}

func keyInfo(k custody.Key) KeyInfo {
	return KeyInfo{
		ID: k.ID(), Algorithm: k.Public.Type(), Public: k.Public.Public(), GUN: k.GUN, Role: k.Role,
		Purpose: string(k.Purpose), Owner: k.Owner, Alias: k.Alias, Token: k.Token, CreatedAt: k.CreatedAt, RetiredAt: k.RetiredAt,
	}
}

// CreateKeyRequest asks for a new key. Without purpose and owner it asks
// for the online key of role (the form of earlier releases).
type CreateKeyRequest struct {
	GUN       string `json:"gun"`
	Role      string `json:"role"`
	Algorithm string `json:"algorithm"` // ecdsa or ed25519; "" for the signer's default
	Purpose   string `json:"purpose,omitempty"`
	Owner     string `json:"owner,omitempty"`
}

func (r CreateKeyRequest) spec() (custody.Spec, error) {
	s := custody.Spec{GUN: r.GUN, Role: r.Role, Purpose: custody.Purpose(r.Purpose), Owner: r.Owner, Algorithm: r.Algorithm}
	if r.Purpose == "" && r.Owner == "" {
		p, ok := custody.PurposeForRole(r.Role)
		if !ok {
			return s, fmt.Errorf("%w: role %q has no online key (use timestamp, snapshot or targets/<signer>)", custody.ErrInvalid, r.Role)
		}
		s.Purpose, s.Owner = p, custody.OwnerServer
	}
	return s, s.Validate()
}

func createRequest(s custody.Spec) CreateKeyRequest {
	return CreateKeyRequest{GUN: s.GUN, Role: s.Role, Algorithm: s.Algorithm, Purpose: string(s.Purpose), Owner: s.Owner}
}

// ImportKeyRequest asks the signer to seal an existing private key.
type ImportKeyRequest struct {
	CreateKeyRequest
	// PrivateKey is the key, PKCS#8 DER: ECDSA P-256 or Ed25519.
	PrivateKey []byte `json:"private_key"`
}

// KeyList is the answer to a key listing.
type KeyList struct {
	Keys []KeyInfo `json:"keys"`
}

// SignRequest asks for one signature with a key held for GUN ("" for keys
// outside TUF). Either Hash and Digest (ECDSA keys) or Message (Ed25519
// keys) are set.
type SignRequest struct {
	GUN     string `json:"gun"`
	Hash    string `json:"hash,omitempty"` // crypto.Hash.String(): "SHA-256", "SHA-384", "SHA-512"
	Digest  []byte `json:"digest,omitempty"`
	Message []byte `json:"message,omitempty"`
}

// SignResponse carries what crypto.Signer.Sign returned.
type SignResponse struct {
	Signature []byte `json:"signature"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Error codes.
const (
	CodeNotHeld      = "KEY_NOT_HELD" // 404: no such key for that GUN, or retired
	CodeInvalid      = "INVALID"      // 400: malformed request
	CodeExists       = "KEY_EXISTS"   // 409: an imported key is held already
	CodeActive       = "KEY_ACTIVE"   // 409: a key to delete is not retired
	CodeUnauthorized = "UNAUTHORIZED" // 403: no verified client certificate
	CodeUnavailable  = "UNAVAILABLE"  // 503: the signer cannot serve now
	CodeInternal     = "INTERNAL"     // 500: see the signer's log
)

// hashes are the digests a sign request may name.
var hashes = map[string]crypto.Hash{
	crypto.SHA256.String(): crypto.SHA256,
	crypto.SHA384.String(): crypto.SHA384,
	crypto.SHA512.String(): crypto.SHA512,
}

// Size limits of request and response bodies.
const (
	maxSignBody  = 16 << 20 // a whole Ed25519 message: canonical metadata
	maxSmallBody = 64 << 10
	maxResponse  = 4 << 20
)

// ServerTLSConfig is the signer's TLS configuration: its certificate, TLS
// 1.3, and a client certificate required and verified against the CA in
// clientCAFile.
func ServerTLSConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("signerapi: TLS certificate: %w", err)
	}
	pool, err := loadPool(clientCAFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pair},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}, nil
}

// ClientTLSConfig is the server's TLS configuration towards the signer: its
// client certificate, and the CA in caFile as the only trusted root.
func ClientTLSConfig(certFile, keyFile, caFile string) (*tls.Config, error) {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("signerapi: client certificate: %w", err)
	}
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{pair}, RootCAs: pool}, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("signerapi: CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("signerapi: CA: no PEM certificate in %s", file)
	}
	return pool, nil
}

// ErrUnavailable reports that the signer could not be reached or did not
// answer in time, or answered that it cannot serve; retrying later may
// succeed.
var ErrUnavailable = errors.New("signerapi: signer unavailable")

// DefaultTimeout bounds one call to the signer when ClientOptions has none.
const DefaultTimeout = 10 * time.Second
