package service

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/signet-trust/signet/internal/service/serviceapi"
	"github.com/signet-trust/signet/internal/store"
)

// Error is a refusal the API answers with: an HTTP status, a code of
// serviceapi and a sentence for people. Internal causes (Err) go to the
// log, never to the client.
type Error struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func apiErr(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *Error {
	return apiErr(http.StatusBadRequest, serviceapi.CodeBadRequest, format, args...)
}

func forbidden(format string, args ...any) *Error {
	return apiErr(http.StatusForbidden, serviceapi.CodeForbidden, format, args...)
}

func notFound(format string, args ...any) *Error {
	return apiErr(http.StatusNotFound, serviceapi.CodeNotFound, format, args...)
}

func conflict(format string, args ...any) *Error {
	return apiErr(http.StatusConflict, serviceapi.CodeConflict, format, args...)
}

func unauthenticated(format string, args ...any) *Error {
	return apiErr(http.StatusUnauthorized, serviceapi.CodeUnauthenticated, format, args...)
}

// asError is the one classification of the errors the API answers with:
// an *Error as it is; the Store's errors by their meaning (what, when
// given, names the record for a not-found or conflict); anything else an
// internal error whose cause is logged, not shown.
func asError(err error, what string) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var uu *UnknownUsersError
	if errors.As(err, &uu) {
		return apiErr(http.StatusBadRequest, serviceapi.CodeUnknownUsers, "%s; create them first (signet admin user create)", uu.Error())
	}
	var iu *InUseError
	if errors.As(err, &iu) {
		return &Error{Status: http.StatusConflict, Code: serviceapi.CodeConflict, Message: iu.Error(), Err: err}
	}
	switch {
	case errors.Is(err, store.ErrUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: serviceapi.CodeUnavailable,
			Message: "the database is unavailable; retry later", RetryAfter: 5 * time.Second, Err: err}
	case errors.Is(err, store.ErrNotFound):
		if what == "" {
			what = "the record"
		}
		return &Error{Status: http.StatusNotFound, Code: serviceapi.CodeNotFound, Message: what + " does not exist", Err: err}
	case errors.Is(err, store.ErrConflict):
		if what == "" {
			what = "the record"
		}
		return &Error{Status: http.StatusConflict, Code: serviceapi.CodeConflict, Message: what + " already exists", Err: err}
	case errors.Is(err, ErrOriginUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: serviceapi.CodeUnavailable,
			Message: "the ID token's issuer could not be reached to check the token; retry later", RetryAfter: 30 * time.Second, Err: err}
	}
	return &Error{Status: http.StatusInternalServerError, Code: serviceapi.CodeInternal, Message: "internal error", Err: err}
}
