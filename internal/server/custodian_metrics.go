package server

import (
	"context"
	"crypto"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-trust/signet/internal/keys"
	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server/apierr"
	"github.com/signet-trust/signet/internal/tuf"
)

// timedCustodian measures every call to the custodian, and every signature
// made with the signers it lends, in signet_server_signer_duration_seconds:
// the latency of key custody, embedded or a remote signet-signer. It is
// also where custody failures are classified, once: every error of a call
// or a signature is UNAVAILABLE (503 with Retry-After; the embedded
// custodian's key store or the remote signer is down), with the cause
// kept, so that keys.ErrKeyNotHeld and the like still match errors.Is.
type timedCustodian struct {
	c   Custodian
	obs *prometheus.HistogramVec
}

func (t timedCustodian) since(op string, start time.Time) {
	t.obs.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

// custodyErr classifies a failure of key custody.
func custodyErr(err error) error {
	if err == nil {
		return nil
	}
	return apierr.Wrap(notaryapi.Unavailable, err)
}

func (t timedCustodian) Create(ctx context.Context, gun, role string) (*keys.PublicKey, error) {
	defer t.since("create", time.Now())
	k, err := t.c.Create(ctx, gun, role)
	return k, custodyErr(err)
}

func (t timedCustodian) Keys(ctx context.Context, gun, role string) ([]*keys.PublicKey, error) {
	defer t.since("keys", time.Now())
	ks, err := t.c.Keys(ctx, gun, role)
	return ks, custodyErr(err)
}

func (t timedCustodian) Signer(ctx context.Context, gun, id string) (crypto.Signer, error) {
	start := time.Now()
	s, err := t.c.Signer(ctx, gun, id)
	t.since("signer", start)
	if err != nil {
		return nil, custodyErr(err)
	}
	return timedSigner{Signer: s, t: t}, nil
}

// Ready forwards a custodian's own readiness check (a remote signer's), or
// falls back to listing keys, as Server.custodianReady does for any other.
func (t timedCustodian) Ready(ctx context.Context) error {
	if r, ok := t.c.(interface{ Ready(context.Context) error }); ok {
		return r.Ready(ctx)
	}
	_, err := t.c.Keys(ctx, readyProbeGUN, tuf.RoleTimestamp)
	return err
}

type timedSigner struct {
	crypto.Signer
	t timedCustodian
}

func (s timedSigner) Sign(rand io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	defer s.t.since("sign", time.Now())
	sig, err := s.Signer.Sign(rand, digest, opts)
	return sig, custodyErr(err)
}
