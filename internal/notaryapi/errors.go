// Package notaryapi is the wire vocabulary of the Notary v1 HTTP API, in
// one place for the server, the client and test fixtures: the error codes
// of group notary.api.v1 with their HTTP statuses and messages, the error
// envelope, the detail shapes and names clients branch on, and the URL
// forms of the API with the parser the server routes by (notary-v1.md §2.1
// and §2.9).
//
// Invariants: every code name, message, status and detail name is the
// reference server's, byte for byte (Signet's one addition, UNAVAILABLE,
// is listed in docs/notary-compat.md); ParsePath matches exactly what the
// reference's route patterns match, in their order; every path the
// builders make parses back to the route and values it was made from. The
// package is pure: no I/O, no clock, no state.
package notaryapi

import (
	"encoding/json"
)

// Code is one error code of the API. The zero Code is Unknown.
type Code uint8

// The reference server's codes (§2.9), and Signet's UNAVAILABLE.
const (
	Unknown Code = iota
	NoStorage
	NoFilename
	InvalidRole
	MalformedJSON
	Updating
	OldVersion
	MetadataNotFound
	InvalidUpdate
	MalformedUpload
	GenericNotFound
	NoCryptoService
	NoKeyAlgorithm
	InvalidGUN
	InvalidParams
	Unauthorized
	// Unavailable is Signet's own: a dependency (the database, key
	// custody) is temporarily down and the client may retry; it is sent
	// with a Retry-After header.
	Unavailable

	numCodes
)

// codeInfo is a code's name, message and HTTP status.
type codeInfo struct {
	name, message string
	status        int
}

// codes are the reference's strings (server/errors/errors.go), and the
// statuses of net/http's names (this package does no HTTP itself).
var codes = [numCodes]codeInfo{
	Unknown:          {"UNKNOWN", "unknown error", 500},
	NoStorage:        {"NO_STORAGE", "The server is misconfigured and has no storage.", 500},
	NoFilename:       {"NO_FILENAME", "No file/role name provided.", 400},
	InvalidRole:      {"INVALID_ROLE", "The role you are attempting to operate on is invalid.", 400},
	MalformedJSON:    {"MALFORMED_JSON", "JSON sent by the client could not be parsed by the server", 400},
	Updating:         {"UPDATING", "An error has occurred while updating the TUF repository.", 500},
	OldVersion:       {"VERSION", "A newer version of metadata is already available.", 400},
	MetadataNotFound: {"METADATA_NOT_FOUND", "You have requested metadata that does not exist.", 404},
	InvalidUpdate:    {"INVALID_UPDATE", "Update sent by the client is invalid.", 400},
	MalformedUpload:  {"MALFORMED_UPLOAD", "The body of your request is malformed.", 400},
	GenericNotFound:  {"GENERIC_NOT_FOUND", "You have requested a resource that does not exist.", 404},
	NoCryptoService:  {"NO_CRYPTOSERVICE", "The server does not have a signing service configured.", 500},
	NoKeyAlgorithm:   {"NO_KEYALGORITHM", "The server does not have a key algorithm configured.", 500},
	InvalidGUN:       {"INVALID_GUN", "The server does not support actions on images of this name.", 400},
	InvalidParams:    {"INVALID_PARAMETERS", "The parameters provided are not valid.", 400},
	Unauthorized:     {"UNAUTHORIZED", "authentication required", 401},
	Unavailable:      {"UNAVAILABLE", "The service is temporarily unavailable; retry later.", 503},
}

func (c Code) info() codeInfo {
	if c >= numCodes {
		return codes[Unknown]
	}
	return codes[c]
}

// Name is the code as sent in "code" ("METADATA_NOT_FOUND").
func (c Code) Name() string { return c.info().name }

// Message is the reference's fixed message of the code.
func (c Code) Message() string { return c.info().message }

// Status is the HTTP status the code is sent with.
func (c Code) Status() int { return c.info().status }

func (c Code) String() string { return c.Name() }

// LookupCode returns the code named name, as a client reads it.
func LookupCode(name string) (Code, bool) {
	for c, info := range codes {
		if info.name == name {
			return Code(c), true
		}
	}
	return Unknown, false
}

// RetryAfter is the Retry-After value (seconds) sent with Unavailable.
const RetryAfter = "5"

// ContentTypeJSON is the Content-Type of error envelopes (and of the
// health and readiness answers).
const ContentTypeJSON = "application/json; charset=utf-8"

// The validation error names of INVALID_UPDATE details (the reference's
// tuf/validation): the notary client turns them back into typed errors.
const (
	NameBadRoot      = "ErrBadRoot"
	NameBadTargets   = "ErrBadTargets"
	NameBadSnapshot  = "ErrBadSnapshot"
	NameBadHierarchy = "ErrBadHierarchy"
	NameValidation   = "ErrValidation"
)

// ValidationDetail is the detail of INVALID_UPDATE:
// {"Name":"ErrBadTargets","Error":{"Msg":"…"}}.
type ValidationDetail struct {
	Name  string          `json:"Name"`
	Error ValidationError `json:"Error"`
}

// ValidationError is the inner error of a ValidationDetail; Missing is set
// for ErrBadHierarchy (the role the update lacks).
type ValidationError struct {
	Missing string `json:"Missing,omitempty"`
	Msg     string `json:"Msg"`
}

// AccessRecord is one entry of the UNAUTHORIZED detail: an action the
// request needed, as the reference serialises distribution's auth.Access.
type AccessRecord struct {
	Type   string `json:"Type"`
	Class  string `json:"Class"`
	Name   string `json:"Name"`
	Action string `json:"Action"`
}

// entryOut is one error of an envelope as the server writes it; a nil
// detail is omitted, as by the reference (errcode.ServeJSON).
type entryOut struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// unknownBody is the envelope sent when a detail cannot be encoded.
const unknownBody = `{"errors":[{"code":"UNKNOWN","message":"unknown error"}]}`

// ErrorBody returns the envelope of one error:
// {"errors":[{"code":…,"message":…,"detail":…}]}. A detail that cannot be
// encoded as JSON gives the envelope of UNKNOWN without detail.
func ErrorBody(c Code, detail any) []byte {
	b, err := json.Marshal(struct {
		Errors []entryOut `json:"errors"`
	}{[]entryOut{{Code: c.Name(), Message: c.Message(), Detail: detail}}})
	if err != nil {
		return []byte(unknownBody)
	}
	return b
}

// ErrorEntry is one error of an envelope as a client reads it.
type ErrorEntry struct {
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Detail  json.RawMessage `json:"detail"`
}

// ParseErrors reads the errors of an envelope; ok is false when body is
// not an envelope with at least one error.
func ParseErrors(body []byte) (errs []ErrorEntry, ok bool) {
	var env struct {
		Errors []ErrorEntry `json:"errors"`
	}
	if json.Unmarshal(body, &env) != nil || len(env.Errors) == 0 {
		return nil, false
	}
	return env.Errors, true
}

// Validation reads the detail of an INVALID_UPDATE entry; ok is false when
// the detail has no validation error name.
func (e ErrorEntry) Validation() (d ValidationDetail, ok bool) {
	if json.Unmarshal(e.Detail, &d) != nil || d.Name == "" {
		return ValidationDetail{}, false
	}
	return d, true
}
