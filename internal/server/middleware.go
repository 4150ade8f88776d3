package server

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server/apierr"
)

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Request IDs are a random per-process prefix and a counter: unique, cheap,
// and they sort in arrival order within a process.
var (
	idPrefix  = newIDPrefix()
	idCounter atomic.Uint64
)

func newIDPrefix() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:]) + "-"
}

func requestID() string {
	var buf [32]byte
	b := append(buf[:0], idPrefix...)
	return string(strconv.AppendUint(b, idCounter.Add(1), 10))
}

// middleware adds a request ID, recovers from panics with a 500 envelope,
// and logs each request (reads at debug level, everything else at info).
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestID()
		w.Header()["X-Request-Id"] = []string{id}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				s.log.ErrorContext(r.Context(), "panic serving request", "request_id", id, "panic", p)
				if sw.status == 0 {
					apierr.Write(sw, apierr.New(notaryapi.Unknown, nil))
				}
			}
			if sw.status == 0 { // the handler wrote nothing: net/http sent 200
				sw.status = http.StatusOK
			}
			lvl := slog.LevelInfo
			if r.Method == http.MethodGet && sw.status < 400 {
				lvl = slog.LevelDebug
			}
			if s.log.Enabled(r.Context(), lvl) {
				s.log.LogAttrs(r.Context(), lvl, "request", slog.String("request_id", id), slog.String("method", r.Method),
					slog.String("path", r.URL.Path), slog.Int("status", sw.status), slog.Duration("duration", time.Since(start)))
			}
		}()
		next.ServeHTTP(sw, r)
	})
}
