package audit

import (
	"bytes"
	"compress/gzip"
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Cache-Control of the read API: tiles and full entry bundles never change;
// partial ones are replaced by wider ones as the log grows; the checkpoint
// changes with every batch.
const (
	cacheImmutable = "public, max-age=31536000, immutable"
	cachePartial   = "public, max-age=10"
	cacheNone      = "no-store"
	cacheKey       = "public, max-age=300"
)

// HandlerConfig configures the read API.
type HandlerConfig struct {
	// Store is read. Required.
	Store Store
	// VerifierKey is served at verifier-key. Required.
	VerifierKey string
	// CacheBytes bounds the memory kept for full tiles and entry bundles
	// (immutable) between requests; 0 keeps nothing.
	CacheBytes int
	Logger     *slog.Logger
}

// Handler serves the log's read API (C2SP tlog-tiles) at paths relative to
// where it is mounted (mount it with http.StripPrefix("/audit", h)):
//
//	GET checkpoint                     the latest signed checkpoint
//	GET tile/<L>/<N>[.p/<W>]           hash tiles
//	GET tile/entries/<N>[.p/<W>]       entry bundles (gzip when accepted)
//	GET verifier-key                   the checkpoint verifier key
//
// It answers 404 for a tile the log does not (yet) hold, never a shorter
// one, and 405 for methods other than GET and HEAD.
type Handler struct {
	cfg   HandlerConfig
	log   *slog.Logger
	cache *lru
}

// NewHandler returns the read API over cfg.Store.
func NewHandler(cfg HandlerConfig) (*Handler, error) {
	if cfg.Store == nil || cfg.VerifierKey == "" {
		return nil, errors.New("audit: the read API needs a store and a verifier key")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Handler{cfg: cfg, log: cfg.Logger, cache: newLRU(cfg.CacheBytes)}, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(r.URL.Path, "/")
	switch {
	case p == "checkpoint":
		h.checkpoint(w, r)
	case p == "verifier-key":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", cacheKey)
		_, _ = w.Write([]byte(h.cfg.VerifierKey + "\n"))
	case strings.HasPrefix(p, "tile/"):
		t, err := ParseTilePath(p)
		if err != nil {
			http.Error(w, "not a tile path", http.StatusNotFound)
			return
		}
		h.tile(w, r, t)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) checkpoint(w http.ResponseWriter, r *http.Request) {
	st, err := h.cfg.Store.State(r.Context())
	if err != nil {
		h.internal(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", cacheNone)
	if st.Checkpoint == nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "the log has no checkpoint yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(st.Checkpoint)))
	_, _ = w.Write(st.Checkpoint)
}

func (h *Handler) internal(w http.ResponseWriter, r *http.Request, err error) {
	if r.Context().Err() == nil {
		h.log.ErrorContext(r.Context(), "audit: read API", "path", r.URL.Path, "err", err)
	}
	w.Header().Set("Cache-Control", cacheNone)
	http.Error(w, "internal error", http.StatusInternalServerError)
}

func (h *Handler) tile(w http.ResponseWriter, r *http.Request, t Tile) {
	ctx := r.Context()
	gz := t.Level == EntriesLevel && acceptsGzip(r)
	key := t.Path()
	if gz {
		key += "#gzip"
	}
	body, ok := h.cache.get(key)
	if !ok {
		var err error
		if t.Level == EntriesLevel {
			body, err = h.bundle(ctx, t)
		} else {
			body, err = h.hashes(ctx, t)
		}
		if errors.Is(err, ErrNotFound) {
			w.Header().Set("Cache-Control", cacheNone)
			http.Error(w, "no such tile", http.StatusNotFound)
			return
		} else if err != nil {
			h.internal(w, r, err)
			return
		}
		if gz {
			if body, err = gzipped(body); err != nil {
				h.internal(w, r, err)
				return
			}
		}
		if t.Full() {
			h.cache.put(key, body)
		}
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if t.Full() {
		w.Header().Set("Cache-Control", cacheImmutable)
	} else {
		w.Header().Set("Cache-Control", cachePartial)
	}
	if t.Level == EntriesLevel {
		w.Header().Set("Vary", "Accept-Encoding")
	}
	if gz {
		w.Header().Set("Content-Encoding", "gzip")
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// hashes returns the first t.Width hashes of the stored tile.
func (h *Handler) hashes(ctx context.Context, t Tile) ([]byte, error) {
	b, err := h.cfg.Store.Tile(ctx, t.Level, t.Index)
	if err != nil {
		return nil, err
	}
	if len(b) < t.Width*HashSize {
		return nil, ErrNotFound
	}
	return b[:t.Width*HashSize], nil
}

// bundle builds the entry bundle of the first t.Width entries of level-0
// tile t.Index, from the stored entries as they are.
func (h *Handler) bundle(ctx context.Context, t Tile) ([]byte, error) {
	if t.Index > (^uint64(0))/TileWidth {
		return nil, ErrNotFound
	}
	start := t.Index * TileWidth
	entries, err := h.cfg.Store.Entries(ctx, start, t.Width)
	if err != nil {
		return nil, err
	}
	if len(entries) < t.Width {
		return nil, ErrNotFound
	}
	var b []byte
	for _, e := range entries {
		if b, err = AppendBundle(b, e.Data); err != nil {
			return nil, fmt.Errorf("entry %d: %w", e.Index, err)
		}
	}
	return b, nil
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if k, v, ok := strings.Cut(p, "="); ok && strings.TrimSpace(k) == "q" {
				if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
					q = f
				}
			}
		}
		return q > 0
	}
	return false
}

func gzipped(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// lru is a byte-bounded least-recently-used cache of immutable bodies.
type lru struct {
	mu    sync.Mutex
	max   int
	size  int
	ll    *list.List
	items map[string]*list.Element
}

type lruItem struct {
	key  string
	body []byte
}

func newLRU(max int) *lru { return &lru{max: max, ll: list.New(), items: map[string]*list.Element{}} }

func (c *lru) get(key string) ([]byte, bool) {
	if c.max <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*lruItem).body, true
	}
	return nil, false
}

func (c *lru) put(key string, body []byte) {
	if c.max <= 0 || len(body) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; ok {
		return
	}
	c.items[key] = c.ll.PushFront(&lruItem{key, body})
	c.size += len(body)
	for c.size > c.max {
		e := c.ll.Back()
		it := e.Value.(*lruItem)
		c.ll.Remove(e)
		delete(c.items, it.key)
		c.size -= len(it.body)
	}
}

// AppendPath is where signet-server serves the append API (AppendHandler),
// and where signet-admission posts its decisions.
const AppendPath = "/audit/append"

// AppendHandlerConfig configures the append API.
type AppendHandlerConfig struct {
	Log *Log
	// Actor returns who is calling, as the route table authenticated them;
	// the event is recorded with this actor whatever the body says. An
	// error answers 401.
	Actor func(*http.Request) (Actor, error)
	// Types are the event types callers may append (default
	// AdmissionTypes).
	Types []EventType
	// Wait bounds how long a request waits for its entry to be in a
	// checkpoint before answering 202 without its index (default 5 s).
	Wait   time.Duration
	Logger *slog.Logger
}

// AppendHandler serves POST of one event (JSON, at most MaxEntrySize
// bytes, no unknown fields). The server sets the time and the actor. It
// answers 201 {"index", "leaf_hash", "checkpoint"} once a checkpoint
// covers the entry, 202 {"leaf_hash"} when the entry is durable but not
// yet in a checkpoint after Wait, and errors as
// {"error":{"code","message"}}: 400 bad event, 401, 403 type not allowed,
// 405, 413, 415, 503 when the entry could not be stored (nothing stored).
type AppendHandler struct {
	cfg AppendHandlerConfig
	log *slog.Logger
}

// NewAppendHandler returns the append API.
func NewAppendHandler(cfg AppendHandlerConfig) (*AppendHandler, error) {
	if cfg.Log == nil || cfg.Actor == nil {
		return nil, errors.New("audit: the append API needs a log and an actor function")
	}
	if cfg.Types == nil {
		cfg.Types = AdmissionTypes
	}
	if cfg.Wait <= 0 {
		cfg.Wait = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &AppendHandler{cfg: cfg, log: cfg.Logger}, nil
}

// AppendResponse is the body of a successful append.
type AppendResponse struct {
	Index      *uint64 `json:"index,omitempty"`
	LeafHash   string  `json:"leaf_hash"`
	Checkpoint string  `json:"checkpoint,omitempty"`
}

func writeAPIError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", cacheNone)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func (h *AppendHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeAPIError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use POST to append an event")
		return
	}
	actor, err := h.cfg.Actor(r)
	if err != nil {
		writeAPIError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "credentials are missing or invalid")
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		writeAPIError(w, http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE", "the event must be sent as application/json")
		return
	}
	body := http.MaxBytesReader(w, r.Body, MaxEntrySize)
	e, err := DecodeEvent(body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeAPIError(w, http.StatusRequestEntityTooLarge, "TOO_LARGE", fmt.Sprintf("an event is at most %d bytes", MaxEntrySize))
			return
		}
		writeAPIError(w, http.StatusBadRequest, "INVALID_EVENT", err.Error())
		return
	}
	allowed := false
	for _, t := range h.cfg.Types {
		allowed = allowed || e.Type == t
	}
	if !allowed {
		writeAPIError(w, http.StatusForbidden, "TYPE_NOT_ALLOWED", fmt.Sprintf("events of type %q cannot be appended through this API", e.Type))
		return
	}
	e.Actor = actor
	e.Time = time.Time{} // the log's clock
	a, err := h.cfg.Log.Append(r.Context(), e)
	if errors.Is(err, ErrInvalidEvent) {
		writeAPIError(w, http.StatusBadRequest, "INVALID_EVENT", err.Error())
		return
	} else if err != nil {
		h.log.ErrorContext(r.Context(), "audit: append", "err", err)
		w.Header().Set("Retry-After", "1")
		writeAPIError(w, http.StatusServiceUnavailable, "UNAVAILABLE", "the event could not be stored; try again")
		return
	}
	resp := AppendResponse{LeafHash: a.LeafHash.Hex()}
	status := http.StatusAccepted
	wctx, cancel := context.WithTimeout(r.Context(), h.cfg.Wait)
	idx, cp, err := h.cfg.Log.Await(wctx, a.ID)
	cancel()
	if err == nil {
		resp.Index, resp.Checkpoint = &idx, string(cp)
		status = http.StatusCreated
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", cacheNone)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(resp)
}
