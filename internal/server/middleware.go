package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/server/apierr"
)

type statusWriter struct {
	http.ResponseWriter
	status int
	start  time.Time // when the request began (requestStart)
	id     [1]string // the request ID; id[:] is the X-Request-Id header's value
}

// requestStart returns when the middleware began serving the request w
// answers, or now if w did not come through it.
func requestStart(w http.ResponseWriter) time.Time {
	if sw, ok := w.(*statusWriter); ok {
		return sw.start
	}
	return time.Now()
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

// Unwrap lets http.ResponseController reach the connection (read
// deadlines, flushing).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// bodyTooSlowError means a request body arrived slower than the minimum
// rate the server requires.
type bodyTooSlowError struct {
	rate int64         // bytes a second required, on average
	got  int64         // bytes read
	took time.Duration // since the request began
}

func (e *bodyTooSlowError) Error() string {
	return fmt.Sprintf("the request body arrived too slowly: %d bytes in %v, where the server requires %d bytes a second", e.got, e.took.Round(time.Millisecond), e.rate)
}

// rateBody is a request body that must keep arriving: before each read it
// sets the connection's read deadline to the time by which the bytes read
// so far, plus one, were due at the minimum rate after the grace period
// (never past the body timeout), so that a body trickling in fails in
// seconds instead of holding its connection, goroutine and memory
// reservation for the whole read timeout.
type rateBody struct {
	io.ReadCloser
	rc       *http.ResponseController
	start    time.Time
	grace    time.Duration
	rate     int64 // bytes a second
	deadline time.Time
	read     int64
	err      error
}

func (b *rateBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	due := b.start.Add(b.grace + time.Duration(float64(b.read+1)/float64(b.rate)*float64(time.Second)))
	if due.After(b.deadline) {
		due = b.deadline
	}
	if err := b.rc.SetReadDeadline(due); err != nil {
		// The connection cannot take deadlines (a test recorder): read
		// without the minimum rate.
		b.rate = 0
		n, err := b.ReadCloser.Read(p)
		b.read += int64(n)
		return n, err
	}
	n, err := b.ReadCloser.Read(p)
	b.read += int64(n)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		b.err = &bodyTooSlowError{rate: b.rate, got: b.read, took: time.Since(b.start)}
		return n, b.err
	}
	return n, err
}

// limitBodyRate puts a request body under the minimum rate. A body of
// known length must also arrive fast enough to finish within the body
// timeout, so the rate it must keep is the larger of the minimum and its
// length over the time left after the grace period.
func (s *Server) limitBodyRate(w http.ResponseWriter, r *http.Request, start time.Time) {
	if s.cfg.MinBodyRate < 0 || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return
	}
	rate := s.cfg.MinBodyRate
	if window := s.cfg.BodyTimeout - s.cfg.BodyRateGrace; r.ContentLength > 0 && window > 0 {
		rate = max(rate, int64(float64(r.ContentLength)/window.Seconds()))
	}
	r.Body = &rateBody{
		ReadCloser: r.Body, rc: http.NewResponseController(w), start: start,
		grace: s.cfg.BodyRateGrace, rate: rate, deadline: start.Add(s.cfg.BodyTimeout),
	}
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

// serveHTTP is the server's handler: it gives the request an ID, routes
// it (s.route), recovers from a panic with a 500 envelope, and logs the
// request (reads at debug level, everything else at info).
//
// Its frame, and those below it, are part of the stack net/http writes a
// response from (see writeMeta), so the bookkeeping is in begin and end.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	sw := s.begin(w, r)
	defer s.end(sw, r)
	s.route(sw, r)
}

// begin starts the middleware's work on a request: the start time, the
// request ID (and its header), the minimum body rate.
func (s *Server) begin(w http.ResponseWriter, r *http.Request) *statusWriter {
	sw := &statusWriter{ResponseWriter: w, start: time.Now()}
	sw.id[0] = requestID()
	// The header's value is the writer's own one-element slice: one
	// allocation fewer per request than a new []string.
	w.Header()["X-Request-Id"] = sw.id[:]
	s.limitBodyRate(sw, r, sw.start)
	return sw
}

// end finishes a request begun by begin: it answers a panic of the
// handler with a 500 envelope (recover works here, as end is the deferred
// call itself), and logs the request.
func (s *Server) end(sw *statusWriter, r *http.Request) {
	if p := recover(); p != nil {
		s.log.ErrorContext(r.Context(), "panic serving request", "request_id", sw.id[0], "panic", p)
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
		s.log.LogAttrs(r.Context(), lvl, "request", slog.String("request_id", sw.id[0]), slog.String("method", r.Method),
			slog.String("path", shorten(r.URL.Path, 1024)), slog.Int("status", sw.status), slog.Duration("duration", time.Since(sw.start)))
	}
}
