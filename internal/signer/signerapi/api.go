// Package signerapi is the protocol between signet-server and
// signet-signer: HTTP/JSON over mutual TLS (docs/adr/0006-signer-protocol.md).
// Handler serves a Service (the signer's custody core) and Client is the
// server's side, implementing the server's Custodian interface with one
// crypto.Signer per key.
//
// Routes (all JSON; binary fields base64 as encoding/json writes []byte):
//
//	POST /v1/keys             {gun, role, algorithm}          → 201 KeyInfo
//	GET  /v1/keys?gun=&role=                                  → {keys: [KeyInfo, …]} newest first
//	GET  /v1/keys/{id}?gun=                                   → KeyInfo, 404 unless held for gun
//	POST /v1/keys/{id}/sign   {gun, hash, digest} | {gun, message} → {signature}
//	GET  /v1/health                                           → {status: "ok"} or 503
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
// no route returns private key material; the client checks every signature
// it receives against the key's public half before handing it out, and
// bounds every call with a timeout.
package signerapi

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/signet-trust/signet/internal/keys"
)

// KeyInfo describes one key held by the signer.
type KeyInfo struct {
	ID        string `json:"id"`
	Algorithm string `json:"algorithm"` // TUF key type: ecdsa or ed25519
	Public    []byte `json:"public"`    // keyval.public: DER SPKI (ecdsa) or 32 bytes (ed25519)
	GUN       string `json:"gun"`
	Role      string `json:"role,omitempty"`
}

func keyInfo(k *keys.PublicKey, gun, role string) KeyInfo {
	return KeyInfo{ID: k.ID(), Algorithm: k.Type(), Public: k.Public(), GUN: gun, Role: role}
}

// CreateKeyRequest asks for a new key.
type CreateKeyRequest struct {
	GUN       string `json:"gun"`
	Role      string `json:"role"`
	Algorithm string `json:"algorithm"` // ecdsa or ed25519
}

// KeyList is the answer to a key listing.
type KeyList struct {
	Keys []KeyInfo `json:"keys"`
}

// SignRequest asks for one signature with a key held for GUN. Either Hash
// and Digest (ECDSA keys) or Message (Ed25519 keys) are set.
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
	CodeNotHeld      = "KEY_NOT_HELD" // 404: no such key for that GUN
	CodeInvalid      = "INVALID"      // 400: malformed request
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
