package apierr

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/store"
)

func TestFrom(t *testing.T) {
	down := store.Unavailable(errors.New("dial tcp: connection refused"))
	tests := []struct {
		name string
		err  error
		code notaryapi.Code
		body string
	}{
		{"transient", fmt.Errorf("get: %w", down), notaryapi.Unavailable, `{"errors":[{"code":"UNAVAILABLE","message":"The service is temporarily unavailable; retry later."}]}`},
		{"transient inside a write error", Wrap(notaryapi.Updating, down), notaryapi.Unavailable, ""},
		{"not found", fmt.Errorf("get: %w", store.ErrNotFound), notaryapi.MetadataNotFound, `{"errors":[{"code":"METADATA_NOT_FOUND","message":"You have requested metadata that does not exist.","detail":{}}]}`},
		{"old version", fmt.Errorf("update: %w", store.ErrOldVersion), notaryapi.OldVersion, `{"errors":[{"code":"VERSION","message":"A newer version of metadata is already available.","detail":{}}]}`},
		{"api error", Invalid(notaryapi.NameBadRoot, "no"), notaryapi.InvalidUpdate, ""},
		{"write error", Wrap(notaryapi.Updating, errors.New("constraint")), notaryapi.Updating, ""},
		{"cancelled", fmt.Errorf("get: %w", context.Canceled), notaryapi.Unknown, `{"errors":[{"code":"UNKNOWN","message":"unknown error"}]}`},
		{"anything", errors.New("boom"), notaryapi.Unknown, ""},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		e := Write(w, tt.err)
		if e.Code != tt.code || w.Code != tt.code.Status() {
			t.Errorf("%s: %s %d, want %s", tt.name, e.Code, w.Code, tt.code)
		}
		if tt.body != "" && w.Body.String() != tt.body {
			t.Errorf("%s: body %s, want %s", tt.name, w.Body, tt.body)
		}
		if ra := w.Header().Get("Retry-After"); (ra != "") != (tt.code == notaryapi.Unavailable) {
			t.Errorf("%s: Retry-After %q", tt.name, ra)
		}
		if ct := w.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", tt.name, ct)
		}
		if !errors.Is(e, tt.err) && e != tt.err {
			t.Errorf("%s: the cause is lost", tt.name)
		}
	}
}
