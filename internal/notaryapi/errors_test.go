package notaryapi

import (
	"testing"
)

// TestCodes pins every code to the reference's table (notary-v1.md §2.9),
// written out here independently of the package's own table.
func TestCodes(t *testing.T) {
	want := []struct {
		code    Code
		name    string
		status  int
		message string
	}{
		{NoStorage, "NO_STORAGE", 500, "The server is misconfigured and has no storage."},
		{NoFilename, "NO_FILENAME", 400, "No file/role name provided."},
		{InvalidRole, "INVALID_ROLE", 400, "The role you are attempting to operate on is invalid."},
		{MalformedJSON, "MALFORMED_JSON", 400, "JSON sent by the client could not be parsed by the server"},
		{Updating, "UPDATING", 500, "An error has occurred while updating the TUF repository."},
		{OldVersion, "VERSION", 400, "A newer version of metadata is already available."},
		{MetadataNotFound, "METADATA_NOT_FOUND", 404, "You have requested metadata that does not exist."},
		{InvalidUpdate, "INVALID_UPDATE", 400, "Update sent by the client is invalid."},
		{MalformedUpload, "MALFORMED_UPLOAD", 400, "The body of your request is malformed."},
		{GenericNotFound, "GENERIC_NOT_FOUND", 404, "You have requested a resource that does not exist."},
		{NoCryptoService, "NO_CRYPTOSERVICE", 500, "The server does not have a signing service configured."},
		{NoKeyAlgorithm, "NO_KEYALGORITHM", 500, "The server does not have a key algorithm configured."},
		{InvalidGUN, "INVALID_GUN", 400, "The server does not support actions on images of this name."},
		{InvalidParams, "INVALID_PARAMETERS", 400, "The parameters provided are not valid."},
		{Unknown, "UNKNOWN", 500, "unknown error"},
		{Unauthorized, "UNAUTHORIZED", 401, "authentication required"},
		{Unavailable, "UNAVAILABLE", 503, "The service is temporarily unavailable; retry later."},
	}
	if len(want) != int(numCodes) {
		t.Fatalf("%d codes listed here, %d in the package", len(want), numCodes)
	}
	for _, w := range want {
		if w.code.Name() != w.name || w.code.Status() != w.status || w.code.Message() != w.message {
			t.Errorf("%s: %q %d %q, want %q %d %q", w.name, w.code.Name(), w.code.Status(), w.code.Message(), w.name, w.status, w.message)
		}
		if c, ok := LookupCode(w.name); !ok || c != w.code {
			t.Errorf("LookupCode(%q) = %v %v", w.name, c, ok)
		}
	}
	if _, ok := LookupCode("NOPE"); ok {
		t.Error("LookupCode found an unknown name")
	}
	if Code(200).Name() != "UNKNOWN" {
		t.Error("an out-of-range code is not UNKNOWN")
	}
}

// TestErrorBody compares envelopes with bodies the reference server sent
// (notary-v1.md §2.9 and §2.12, verified).
func TestErrorBody(t *testing.T) {
	tests := []struct {
		code   Code
		detail any
		want   string
	}{
		{OldVersion, struct{}{}, `{"errors":[{"code":"VERSION","message":"A newer version of metadata is already available.","detail":{}}]}`},
		{InvalidUpdate, ValidationDetail{Name: NameBadTargets, Error: ValidationError{Msg: "valid signatures did not meet threshold for targets"}},
			`{"errors":[{"code":"INVALID_UPDATE","message":"Update sent by the client is invalid.","detail":{"Name":"ErrBadTargets","Error":{"Msg":"valid signatures did not meet threshold for targets"}}}]}`},
		{InvalidUpdate, ValidationDetail{Name: NameBadHierarchy, Error: ValidationError{Missing: "snapshot", Msg: "m"}},
			`{"errors":[{"code":"INVALID_UPDATE","message":"Update sent by the client is invalid.","detail":{"Name":"ErrBadHierarchy","Error":{"Missing":"snapshot","Msg":"m"}}}]}`},
		{Unauthorized, []AccessRecord{{Type: "repository", Name: "example.com/a", Action: "push"}, {Type: "repository", Name: "example.com/a", Action: "pull"}},
			`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required","detail":[{"Type":"repository","Class":"","Name":"example.com/a","Action":"push"},{"Type":"repository","Class":"","Name":"example.com/a","Action":"pull"}]}]}`},
		{MetadataNotFound, nil, `{"errors":[{"code":"METADATA_NOT_FOUND","message":"You have requested metadata that does not exist."}]}`},
		{InvalidParams, make(chan int), unknownBody},
	}
	for _, tt := range tests {
		if got := string(ErrorBody(tt.code, tt.detail)); got != tt.want {
			t.Errorf("ErrorBody(%s):\n got %s\nwant %s", tt.code, got, tt.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	body := ErrorBody(InvalidUpdate, ValidationDetail{Name: NameBadRoot, Error: ValidationError{Msg: "no"}})
	errs, ok := ParseErrors(body)
	if !ok || len(errs) != 1 || errs[0].Code != "INVALID_UPDATE" || errs[0].Message != InvalidUpdate.Message() {
		t.Fatalf("ParseErrors: %+v %v", errs, ok)
	}
	if d, ok := errs[0].Validation(); !ok || d.Name != NameBadRoot || d.Error.Msg != "no" {
		t.Errorf("Validation: %+v %v", d, ok)
	}
	errs, ok = ParseErrors(ErrorBody(InvalidRole, "targets/x"))
	if !ok || string(errs[0].Detail) != `"targets/x"` {
		t.Errorf("string detail: %+v %v", errs, ok)
	}
	if _, ok := errs[0].Validation(); ok {
		t.Error("a string detail read as a validation error")
	}
	for _, bad := range []string{"", "{}", `{"errors":[]}`, "<html>", `{"errors":{}}`} {
		if _, ok := ParseErrors([]byte(bad)); ok {
			t.Errorf("ParseErrors(%q) ok", bad)
		}
	}
}
