// Package apierr is the one place where Go errors become the error envelope
// of the Notary v1 API: {"errors":[{"code","message","detail"}]}, with the
// reference server's codes, HTTP statuses, messages and detail shapes, which
// notary and docker clients branch on.
package apierr

import (
	"encoding/json"
	"errors"
	"net/http"
)

// Code is one error code of the API (group notary.api.v1).
type Code struct {
	Name    string
	Message string
	Status  int
}

// The reference server's codes.
var (
	NoStorage        = Code{"NO_STORAGE", "The server is misconfigured and has no storage.", http.StatusInternalServerError}
	NoFilename       = Code{"NO_FILENAME", "No file/role name provided.", http.StatusBadRequest}
	InvalidRole      = Code{"INVALID_ROLE", "The role you are attempting to operate on is invalid.", http.StatusBadRequest}
	MalformedJSON    = Code{"MALFORMED_JSON", "JSON sent by the client could not be parsed by the server", http.StatusBadRequest}
	Updating         = Code{"UPDATING", "An error has occurred while updating the TUF repository.", http.StatusInternalServerError}
	OldVersion       = Code{"VERSION", "A newer version of metadata is already available.", http.StatusBadRequest}
	MetadataNotFound = Code{"METADATA_NOT_FOUND", "You have requested metadata that does not exist.", http.StatusNotFound}
	InvalidUpdate    = Code{"INVALID_UPDATE", "Update sent by the client is invalid.", http.StatusBadRequest}
	MalformedUpload  = Code{"MALFORMED_UPLOAD", "The body of your request is malformed.", http.StatusBadRequest}
	GenericNotFound  = Code{"GENERIC_NOT_FOUND", "You have requested a resource that does not exist.", http.StatusNotFound}
	NoCryptoService  = Code{"NO_CRYPTOSERVICE", "The server does not have a signing service configured.", http.StatusInternalServerError}
	NoKeyAlgorithm   = Code{"NO_KEYALGORITHM", "The server does not have a key algorithm configured.", http.StatusInternalServerError}
	InvalidGUN       = Code{"INVALID_GUN", "The server does not support actions on images of this name.", http.StatusBadRequest}
	InvalidParams    = Code{"INVALID_PARAMETERS", "The parameters provided are not valid.", http.StatusBadRequest}
	Unknown          = Code{"UNKNOWN", "unknown error", http.StatusInternalServerError}
	Unauthorized     = Code{"UNAUTHORIZED", "authentication required", http.StatusUnauthorized}
	// Unavailable is Signet's own: a dependency (database, signer) is down;
	// the client may retry.
	Unavailable = Code{"UNAVAILABLE", "The service is temporarily unavailable; retry later.", http.StatusServiceUnavailable}
)

// Error is an API error: a code, an optional detail sent to the client, and
// an internal cause that is logged but never sent.
type Error struct {
	Code   Code
	Detail any
	Cause  error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Code.Name + ": " + e.Cause.Error()
	}
	return e.Code.Name
}

func (e *Error) Unwrap() error { return e.Cause }

// New makes an API error with a detail for the client.
func New(code Code, detail any) *Error { return &Error{Code: code, Detail: detail} }

// Wrap makes an API error whose cause stays internal.
func Wrap(code Code, cause error) *Error { return &Error{Code: code, Cause: cause} }

// Validation error names of the reference (tuf/validation): clients turn
// them back into typed errors.
const (
	NameBadRoot      = "ErrBadRoot"
	NameBadTargets   = "ErrBadTargets"
	NameBadSnapshot  = "ErrBadSnapshot"
	NameBadHierarchy = "ErrBadHierarchy"
	NameValidation   = "ErrValidation"
)

// ValidationDetail is the detail of INVALID_UPDATE: {"Name":…,"Error":{…}}.
type ValidationDetail struct {
	Name  string          `json:"Name"`
	Error ValidationError `json:"Error"`
}

// ValidationError is the inner error; Missing is set for ErrBadHierarchy.
type ValidationError struct {
	Missing string `json:"Missing,omitempty"`
	Msg     string `json:"Msg"`
}

// Invalid makes an INVALID_UPDATE error with a validation detail.
func Invalid(name, msg string) *Error {
	return New(InvalidUpdate, ValidationDetail{Name: name, Error: ValidationError{Msg: msg}})
}

// Hierarchy makes an INVALID_UPDATE error for a missing role.
func Hierarchy(missing, msg string) *Error {
	return New(InvalidUpdate, ValidationDetail{Name: NameBadHierarchy, Error: ValidationError{Missing: missing, Msg: msg}})
}

type envelopeEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// Body returns the JSON envelope for err.
func Body(err *Error) []byte {
	b, mErr := json.Marshal(struct {
		Errors []envelopeEntry `json:"errors"`
	}{[]envelopeEntry{{Code: err.Code.Name, Message: err.Code.Message, Detail: err.Detail}}})
	if mErr != nil {
		return []byte(`{"errors":[{"code":"UNKNOWN","message":"unknown error"}]}`)
	}
	return b
}

// From converts any error into an API error: *Error as is, anything else
// UNKNOWN with the cause kept internal.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return Wrap(Unknown, err)
}

// Write sends the envelope for err with its status code.
func Write(w http.ResponseWriter, err error) *Error {
	e := From(err)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if e.Code.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	w.WriteHeader(e.Code.Status)
	_, _ = w.Write(Body(e))
	return e
}
