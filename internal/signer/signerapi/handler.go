package signerapi

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/signet-trust/signet/internal/keys"
)

// Service is what the handler serves: the signer's custody core. Errors
// wrapping keys.ErrKeyNotHeld become 404 KEY_NOT_HELD; errors wrapping
// keys.ErrInvalidRequest become 400 INVALID with their message; other
// errors become 500 INTERNAL, their detail going to the log only.
type Service interface {
	// Create makes a key of algorithm for gun and role.
	Create(ctx context.Context, gun, role, algorithm string) (*keys.PublicKey, error)
	// Keys lists the keys held for gun and role, newest first.
	Keys(ctx context.Context, gun, role string) ([]*keys.PublicKey, error)
	// Key returns a key held for gun.
	Key(ctx context.Context, gun, id string) (*keys.PublicKey, error)
	// Sign signs as crypto.Signer.Sign does, with a key held for gun.
	Sign(ctx context.Context, gun, id string, digest []byte, opts crypto.SignerOpts) ([]byte, error)
	// Check reports whether the service can serve.
	Check(ctx context.Context) error
}

// Handler returns the HTTP handler of the signer API. It must be served
// with ServerTLSConfig (or another configuration that requires and verifies
// client certificates); requests without a verified client certificate are
// refused. Every client certificate the configured CA issued may use every
// key the signer holds (docs/operations.md): the CA is the allow-list.
//
// Request bodies held in memory at once are bounded by maxBodiesInFlight:
// each request reserves its Content-Length (or, when it sends none, its
// route's limit) before its body is read, and waits for room otherwise.
func Handler(svc Service, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{svc: svc, log: log, bodies: semaphore.NewWeighted(maxBodiesInFlight)}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/keys", h.wrap("CreateKey", h.create))
	mux.Handle("GET /v1/keys", h.wrap("ListKeys", h.list))
	mux.Handle("GET /v1/keys/{id}", h.wrap("GetKey", h.get))
	mux.Handle("POST /v1/keys/{id}/sign", h.wrap("Sign", h.sign))
	mux.Handle("GET /v1/health", h.wrap("Health", h.health))
	mux.Handle("/", h.wrap("NotFound", func(http.ResponseWriter, *http.Request) error {
		return &apiError{http.StatusNotFound, CodeInvalid, "no such route", nil}
	}))
	return mux
}

type handler struct {
	svc    Service
	log    *slog.Logger
	bodies *semaphore.Weighted // bytes of request bodies in flight
}

// maxBodiesInFlight bounds the request bodies the handler reads at once
// (each decoded JSON body takes at most about as much again): four sign
// requests of unknown length at their 16 MiB limit, or thousands of the
// few-hundred-byte digests a signer mostly sees.
const maxBodiesInFlight = 4 * maxSignBody

// apiError is an error answer; err is the internal cause, for the log.
type apiError struct {
	status        int
	code, message string
	err           error
}

func (e *apiError) Error() string { return e.message }

func invalid(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, CodeInvalid, fmt.Sprintf(format, args...), nil}
}

func (h *handler) wrap(op string, f func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var err error
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			err = &apiError{http.StatusForbidden, CodeUnauthorized, "a client certificate from the configured CA is required", nil}
		} else {
			err = f(w, r)
		}
		attrs := []slog.Attr{slog.String("op", op), slog.String("path", r.URL.Path), slog.Duration("elapsed", time.Since(start))}
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			attrs = append(attrs, slog.String("client", r.TLS.PeerCertificates[0].Subject.String()))
		}
		if err == nil {
			h.log.LogAttrs(r.Context(), slog.LevelDebug, "request", attrs...)
			return
		}
		var e *apiError
		switch {
		case errors.As(err, &e):
		case errors.Is(err, keys.ErrKeyNotHeld):
			e = &apiError{http.StatusNotFound, CodeNotHeld, "key not held for this repository", err}
		case errors.Is(err, keys.ErrInvalidRequest):
			e = &apiError{http.StatusBadRequest, CodeInvalid, err.Error(), err}
		default:
			e = &apiError{http.StatusInternalServerError, CodeInternal, op + " failed; the cause is in the signer's log", err}
		}
		lvl := slog.LevelInfo
		if e.status >= 500 {
			lvl = slog.LevelError
		}
		attrs = append(attrs, slog.Int("status", e.status), slog.String("code", e.code), slog.String("message", e.message))
		if e.err != nil {
			attrs = append(attrs, slog.String("cause", e.err.Error()))
		}
		h.log.LogAttrs(r.Context(), lvl, "request failed", attrs...)
		var body ErrorBody
		body.Error.Code, body.Error.Message = e.code, e.message
		if e.status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "5")
		}
		writeJSON(w, e.status, body)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encoding failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// decode reads a JSON body of at most limit bytes, refusing unknown fields
// and trailing data. It first reserves room for the body among the bodies
// in flight (what the request declares, or limit), waiting while there is
// none; release gives it back once the request is answered.
func (h *handler) decode(w http.ResponseWriter, r *http.Request, limit int64, v any) (release func(), err error) {
	n := limit
	if r.ContentLength > limit {
		return func() {}, invalid("request body: %d bytes, at most %d", r.ContentLength, limit)
	}
	if r.ContentLength >= 0 {
		n = max(r.ContentLength, 1)
	}
	if err := h.bodies.Acquire(r.Context(), n); err != nil {
		return func() {}, &apiError{http.StatusServiceUnavailable, CodeUnavailable, "the signer is busy; try again", err}
	}
	release = func() { h.bodies.Release(n) }
	if err := decodeBody(w, r, limit, v); err != nil {
		release()
		return func() {}, err
	}
	return release, nil
}

func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("request body: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return invalid("request body: trailing data")
	}
	return nil
}

func requireName(what, v string) error {
	if v == "" {
		return invalid("%s is required", what)
	}
	return nil
}

func (h *handler) create(w http.ResponseWriter, r *http.Request) error {
	var req CreateKeyRequest
	release, err := h.decode(w, r, maxSmallBody, &req)
	if err != nil {
		return err
	}
	defer release()
	if err := errors.Join(requireName("gun", req.GUN), requireName("role", req.Role)); err != nil {
		return err
	}
	if req.Algorithm != keys.TypeECDSA && req.Algorithm != keys.TypeED25519 {
		return invalid("algorithm %q not supported (use ecdsa or ed25519)", req.Algorithm)
	}
	k, err := h.svc.Create(r.Context(), req.GUN, req.Role, req.Algorithm)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, keyInfo(k, req.GUN, req.Role))
	return nil
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) error {
	gun, role := r.URL.Query().Get("gun"), r.URL.Query().Get("role")
	if err := errors.Join(requireName("gun", gun), requireName("role", role)); err != nil {
		return err
	}
	ks, err := h.svc.Keys(r.Context(), gun, role)
	if err != nil {
		return err
	}
	out := KeyList{Keys: make([]KeyInfo, 0, len(ks))}
	for _, k := range ks {
		out.Keys = append(out.Keys, keyInfo(k, gun, role))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (h *handler) get(w http.ResponseWriter, r *http.Request) error {
	gun := r.URL.Query().Get("gun")
	if err := requireName("gun", gun); err != nil {
		return err
	}
	k, err := h.svc.Key(r.Context(), gun, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, keyInfo(k, gun, ""))
	return nil
}

func (h *handler) sign(w http.ResponseWriter, r *http.Request) error {
	var req SignRequest
	release, err := h.decode(w, r, maxSignBody, &req)
	if err != nil {
		return err
	}
	defer release()
	if err := requireName("gun", req.GUN); err != nil {
		return err
	}
	var input []byte
	var opts crypto.Hash
	switch {
	case req.Hash == "" && len(req.Message) > 0 && len(req.Digest) == 0:
		input = req.Message
	case req.Hash != "" && len(req.Digest) > 0 && len(req.Message) == 0:
		hash, ok := hashes[req.Hash]
		if !ok {
			return invalid("hash %q not supported", req.Hash)
		}
		if len(req.Digest) != hash.Size() {
			return invalid("digest is %d bytes; %s digests are %d", len(req.Digest), req.Hash, hash.Size())
		}
		input, opts = req.Digest, hash
	default:
		return invalid("a sign request carries either hash and digest, or message")
	}
	sig, err := h.svc.Sign(r.Context(), req.GUN, r.PathValue("id"), input, opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, SignResponse{Signature: sig})
	return nil
}

func (h *handler) health(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	if err := h.svc.Check(ctx); err != nil {
		return &apiError{http.StatusServiceUnavailable, CodeUnavailable, "the signer cannot serve: its database does not answer", err}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}
