// Package apierr is the one place where Go errors become error responses
// of the Notary v1 API: the reference's envelope and codes (their names,
// messages and statuses are the wire vocabulary of package notaryapi),
// and the one classification of failures every handler's error goes
// through (From).
//
// Invariants: a failure the store marks transient (store.ErrUnavailable)
// is 503 UNAVAILABLE with Retry-After, whatever the operation and however
// it was wrapped; internal causes are kept for the log and never sent;
// every error response is written by Write.
package apierr

import (
	"errors"
	"net/http"

	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/store"
)

// Error is an API error: a code, an optional detail sent to the client, and
// an internal cause that is logged but never sent.
type Error struct {
	Code   notaryapi.Code
	Detail any
	Cause  error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Code.Name() + ": " + e.Cause.Error()
	}
	return e.Code.Name()
}

func (e *Error) Unwrap() error { return e.Cause }

// New makes an API error with a detail for the client.
func New(code notaryapi.Code, detail any) *Error { return &Error{Code: code, Detail: detail} }

// Wrap makes an API error whose cause stays internal.
func Wrap(code notaryapi.Code, cause error) *Error { return &Error{Code: code, Cause: cause} }

// Invalid makes an INVALID_UPDATE error with a validation detail.
func Invalid(name, msg string) *Error {
	return New(notaryapi.InvalidUpdate, notaryapi.ValidationDetail{Name: name, Error: notaryapi.ValidationError{Msg: msg}})
}

// Hierarchy makes an INVALID_UPDATE error for a missing role.
func Hierarchy(missing, msg string) *Error {
	return New(notaryapi.InvalidUpdate, notaryapi.ValidationDetail{Name: notaryapi.NameBadHierarchy, Error: notaryapi.ValidationError{Missing: missing, Msg: msg}})
}

// empty is the detail {} the reference sends with VERSION and a metadata
// miss.
var empty = struct{}{}

// From classifies any error, in this order:
//
//  1. anything wrapping store.ErrUnavailable — a transient failure of the
//     database, even inside an *Error a handler made — is UNAVAILABLE;
//  2. an *Error is sent as it is (handlers choose codes the reference
//     uses for the operation, such as UPDATING for a failed write);
//  3. store.ErrNotFound is METADATA_NOT_FOUND and store.ErrOldVersion is
//     VERSION, both with detail {};
//  4. anything else, a cancelled request included, is UNKNOWN.
func From(err error) *Error {
	if errors.Is(err, store.ErrUnavailable) {
		return Wrap(notaryapi.Unavailable, err)
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &Error{Code: notaryapi.MetadataNotFound, Detail: empty, Cause: err}
	case errors.Is(err, store.ErrOldVersion):
		return &Error{Code: notaryapi.OldVersion, Detail: empty, Cause: err}
	}
	return Wrap(notaryapi.Unknown, err)
}

// Write sends the envelope of err, classified by From, with its status
// code (and Retry-After for UNAVAILABLE), and returns the classification.
func Write(w http.ResponseWriter, err error) *Error {
	e := From(err)
	h := w.Header()
	h.Set("Content-Type", notaryapi.ContentTypeJSON)
	if e.Code == notaryapi.Unavailable {
		h.Set("Retry-After", notaryapi.RetryAfter)
	}
	w.WriteHeader(e.Code.Status())
	_, _ = w.Write(notaryapi.ErrorBody(e.Code, e.Detail))
	return e
}
