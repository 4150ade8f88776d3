package servercmd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/notify"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

// ReplicasConfig tunes several signet-server processes sharing one
// PostgreSQL database (see docs/adr/0005-replica-cache-invalidation.md).
// It has no effect with SQLite.
type ReplicasConfig struct {
	// CacheMaxStale bounds how long current metadata is served from memory
	// before it is read from the database again: the worst-case delay for
	// a write of another replica to show if its invalidation is lost
	// (default 30s; normally invalidations arrive within milliseconds).
	CacheMaxStale time.Duration `yaml:"cache_max_stale"`
}

// RetentionConfig is the optional pruning of superseded metadata versions
// (off unless keep_versions is set).
type RetentionConfig struct {
	// KeepVersions of each role are kept, newest first; every root version
	// and every file a current snapshot or timestamp refers to are kept
	// too. 0 turns retention off.
	KeepVersions int `yaml:"keep_versions"`
	// Interval between pruning passes (default 1h).
	Interval time.Duration `yaml:"interval"`
}

const (
	defaultCacheMaxStale     = 30 * time.Second
	defaultRetentionInterval = time.Hour
	expiryMetricsInterval    = time.Minute
)

func (c ReplicasConfig) validate() error {
	if c.CacheMaxStale < 0 {
		return fmt.Errorf("replicas.cache_max_stale %v: must not be negative", c.CacheMaxStale)
	}
	return nil
}

func (c RetentionConfig) validate() error {
	var errs []error
	if c.KeepVersions < 0 {
		errs = append(errs, fmt.Errorf("retention.keep_versions %d: must be at least 1 (or 0 for no retention)", c.KeepVersions))
	}
	if c.Interval < 0 {
		errs = append(errs, fmt.Errorf("retention.interval %v: must not be negative", c.Interval))
	}
	return errors.Join(errs...)
}

// background runs beside the HTTP API until stopped: the invalidation
// listener (PostgreSQL), the soonest-expiry gauges and, when configured,
// retention.
type background struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	cfg    Config
	log    *slog.Logger

	// For server.Config.
	invalidations <-chan string
	cacheMaxStale time.Duration
}

// startBackground starts what must run before the server exists: the
// listener for other replicas' writes, when the database has any.
func startBackground(ctx context.Context, cfg Config, st *sqlstore.Store, log *slog.Logger) *background {
	bctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b := &background{ctx: bctx, cancel: cancel, cfg: cfg, log: log}
	if feed := st.Invalidations(bctx, log); feed != nil {
		b.invalidations = feed
		b.cacheMaxStale = cmp.Or(cfg.Replicas.CacheMaxStale, defaultCacheMaxStale)
		log.Info("replicas: following other processes' writes through PostgreSQL LISTEN/NOTIFY", "cache_max_stale", b.cacheMaxStale)
	}
	return b
}

// run starts the loops that need the server.
func (b *background) run(srv *server.Server) {
	b.wg.Go(func() { srv.RunExpiryMetrics(b.ctx, expiryMetricsInterval) })
	if keep := b.cfg.Retention.KeepVersions; keep > 0 {
		interval := cmp.Or(b.cfg.Retention.Interval, defaultRetentionInterval)
		b.log.Info("retention: pruning superseded metadata", "keep_versions", keep, "interval", interval)
		b.wg.Go(func() { srv.RunRetention(b.ctx, keep, interval) })
	}
}

// runService starts the signing service's worker and sweeps, and the
// notifier sending its notifications.
func (b *background) runService(svc *service.Service, w *notify.Worker) {
	b.wg.Go(func() { svc.Run(b.ctx) })
	b.wg.Go(func() { _ = w.Run(b.ctx, 5*time.Second) })
}

// stop ends everything started and waits for it.
func (b *background) stop() {
	b.cancel()
	b.wg.Wait()
}
