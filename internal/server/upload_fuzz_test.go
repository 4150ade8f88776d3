package server

import (
	"bytes"
	"net/http/httptest"
	"testing"
)

// FuzzReadUpload feeds the multipart parser arbitrary bodies: it must never
// panic, and everything it accepts is a set of valid roles with parsable
// envelopes.
func FuzzReadUpload(f *testing.F) {
	for _, unknown := range []bool{false, true} {
		f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"targets/releases\"\r\n\r\n{\"signed\":{\"_type\":\"Targets\",\"expires\":\"2030-01-01T00:00:00Z\",\"version\":2},\"signatures\":[]}\r\n--b--\r\n"), unknown)
		f.Add([]byte("--b\r\nContent-Disposition: form-data; name=\"files\"\r\n\r\n{}\r\n--b--\r\n"), unknown)
		f.Add([]byte("--b--"), unknown)
	}
	f.Fuzz(func(t *testing.T, body []byte, unknownLength bool) {
		r := httptest.NewRequest("POST", "/v2/g/_trust/tuf/", bytes.NewReader(body))
		r.Header.Set("Content-Type", "multipart/form-data; boundary=b")
		if unknownLength {
			r.ContentLength = -1
		}
		b := &budget{limit: 1 << 30}
		res := &reservation{b: b}
		ups, err := readUpload(r, 1<<16, res)
		if res.held > 0 && res.held < int64(len(body))*UploadMemoryPerByte && err == nil {
			t.Fatalf("read %d bytes holding %d of the budget", len(body), res.held)
		}
		res.release()
		if b.used != 0 {
			t.Fatalf("%d bytes of the budget still used", b.used)
		}
		if err != nil {
			return
		}
		for role, u := range ups {
			if role != u.role || len(u.data) == 0 {
				t.Fatalf("inconsistent upload for %q", role)
			}
		}
	})
}
