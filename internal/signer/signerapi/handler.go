package signerapi

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/keys"
)

// Service is what the handler serves: a custody core. Errors wrapping
// keys.ErrKeyNotHeld become 404 KEY_NOT_HELD, custody.ErrInvalid 400
// INVALID, custody.ErrExists and custody.ErrActive 409; other errors become
// 500 INTERNAL, their detail going to the log only.
type Service interface {
	custody.Custodian
	// Check reports whether the service can serve.
	Check(ctx context.Context) error
}

// Handler returns the HTTP handler of the signer API. It must be served
// with ServerTLSConfig (or another configuration that requires and verifies
// client certificates); requests without a verified client certificate are
// refused.
func Handler(svc Service, log *slog.Logger) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &handler{svc: svc, log: log, bodies: semaphore.NewWeighted(maxBodiesInFlight)}
	mux := http.NewServeMux()
	mux.Handle("POST /v1/keys", h.wrap("CreateKey", h.create))
	mux.Handle("POST /v1/keys/import", h.wrap("ImportKey", h.importKey))
	mux.Handle("GET /v1/keys", h.wrap("ListKeys", h.list))
	mux.Handle("GET /v1/keys/{id}", h.wrap("GetKey", h.get))
	mux.Handle("POST /v1/keys/{id}/sign", h.wrap("Sign", h.sign))
	mux.Handle("POST /v1/keys/{id}/rotate", h.wrap("RotateKey", h.rotate))
	mux.Handle("POST /v1/keys/{id}/retire", h.wrap("RetireKey", h.retire))
	mux.Handle("DELETE /v1/keys/{id}", h.wrap("DeleteKey", h.delete))
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

// answer maps an error of the service to its wire form.
func answer(op string, err error) *apiError {
	var e *apiError
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, custody.ErrInvalid):
		// Validation errors describe the request, not the signer (a
		// malformed key ID is also a key not held: it is invalid first).
		return &apiError{http.StatusBadRequest, CodeInvalid, err.Error(), nil}
	case errors.Is(err, keys.ErrKeyNotHeld):
		msg := "key not held for this repository"
		if errors.Is(err, custody.ErrRetired) {
			msg = "the key is retired"
		}
		return &apiError{http.StatusNotFound, CodeNotHeld, msg, err}
	case errors.Is(err, custody.ErrExists):
		return &apiError{http.StatusConflict, CodeExists, "the key is held already", err}
	case errors.Is(err, custody.ErrActive):
		return &apiError{http.StatusConflict, CodeActive, "the key is active; retire it before deleting it", err}
	}
	return &apiError{http.StatusInternalServerError, CodeInternal, op + " failed; the cause is in the signer's log", err}
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
		e := answer(op, err)
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

func (h *handler) create(w http.ResponseWriter, r *http.Request) error {
	var req CreateKeyRequest
	release, err := h.decode(w, r, maxSmallBody, &req)
	if err != nil {
		return err
	}
	defer release()
	spec, err := req.spec()
	if err != nil {
		return err
	}
	return writeKey(w, http.StatusCreated)(h.svc.CreateKey(r.Context(), spec))
}

// writeKey returns a function that answers with a key, or returns the
// error that came instead.
func writeKey(w http.ResponseWriter, status int) func(custody.Key, error) error {
	return func(k custody.Key, err error) error {
		if err != nil {
			return err
		}
		writeJSON(w, status, keyInfo(k))
		return nil
	}
}

func (h *handler) importKey(w http.ResponseWriter, r *http.Request) error {
	var req ImportKeyRequest
	release, err := h.decode(w, r, maxSmallBody, &req)
	if err != nil {
		return err
	}
	defer release()
	spec, err := req.spec()
	if err != nil {
		return err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(req.PrivateKey)
	if err != nil {
		return invalid("private_key: not a PKCS#8 private key")
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return invalid("private_key: a %T cannot sign", parsed)
	}
	return writeKey(w, http.StatusCreated)(h.svc.ImportKey(r.Context(), spec, priv))
}

func (h *handler) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	for k, v := range q {
		switch k {
		case "gun", "role", "purpose", "owner", "retired", "limit":
			if len(v) > 1 {
				return invalid("%s is given %d times", k, len(v))
			}
		default:
			return invalid("unknown query parameter %.80q (known: gun, role, purpose, owner, retired, limit)", k)
		}
	}
	f := custody.Filter{GUN: q.Get("gun"), Role: q.Get("role"), Purpose: custody.Purpose(q.Get("purpose")), Owner: q.Get("owner")}
	if v := q.Get("retired"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return invalid("retired=%q: use true or false", v)
		}
		f.IncludeRetired = b
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > custody.MaxList {
			return invalid("limit=%q: use 1 to %d", v, custody.MaxList)
		}
		f.Limit = n
	}
	ks, err := h.svc.ListKeys(r.Context(), f)
	if err != nil {
		return err
	}
	out := KeyList{Keys: make([]KeyInfo, 0, len(ks))}
	for _, k := range ks {
		out.Keys = append(out.Keys, keyInfo(k))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// get describes a key; with ?gun= only an active key held for that GUN
// (what the client asks before lending a signer).
func (h *handler) get(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	k, err := h.svc.Key(r.Context(), id)
	if err != nil {
		return err
	}
	if q := r.URL.Query(); q.Has("gun") {
		if gun := q.Get("gun"); k.GUN != gun {
			return fmt.Errorf("%w: %s for %q", custody.ErrNotHeld, id, gun)
		}
		if !k.RetiredAt.IsZero() {
			return fmt.Errorf("%w: %s", custody.ErrRetired, id)
		}
	}
	writeJSON(w, http.StatusOK, keyInfo(k))
	return nil
}

func (h *handler) sign(w http.ResponseWriter, r *http.Request) error {
	var req SignRequest
	release, err := h.decode(w, r, maxSignBody, &req)
	if err != nil {
		return err
	}
	defer release()
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
	s, err := h.svc.Signer(r.Context(), req.GUN, r.PathValue("id"))
	if err != nil {
		return err
	}
	sig, err := s.Sign(rand.Reader, input, opts)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, SignResponse{Signature: sig})
	return nil
}

func (h *handler) rotate(w http.ResponseWriter, r *http.Request) error {
	return writeKey(w, http.StatusCreated)(h.svc.RotateKey(r.Context(), r.PathValue("id")))
}

func (h *handler) retire(w http.ResponseWriter, r *http.Request) error {
	return writeKey(w, http.StatusOK)(h.svc.RetireKey(r.Context(), r.PathValue("id")))
}

func (h *handler) delete(w http.ResponseWriter, r *http.Request) error {
	if err := h.svc.DeleteKey(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
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
