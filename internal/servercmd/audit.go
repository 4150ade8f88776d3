package servercmd

import (
	"bytes"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/custody"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/store/sqlstore"
)

// AuditConfig configures the audit log (YAML audit:). The log is on by
// default, on the server's own database.
type AuditConfig struct {
	// Disabled turns the audit log off: no /audit/ routes, and writes are
	// not recorded.
	Disabled bool `yaml:"disabled"`
	// Origin is the checkpoints' origin line and the name of their key
	// (default: the origin of the log already in the database, else
	// <server name>/audit, the server name being service.base_url's host,
	// else auth.service, else the listen host or the machine's name).
	Origin string `yaml:"origin"`
}

func (c AuditConfig) validate() error {
	if c.Origin != "" && !audit.ValidKeyName(c.Origin) {
		return fmt.Errorf("audit.origin %q: a checkpoint origin has no spaces and no '+'", c.Origin)
	}
	return nil
}

// defaultOrigin is <server name>/audit.
func (c Config) defaultOrigin() string {
	name := ""
	if u, err := url.Parse(c.Service.BaseURL); err == nil && c.Service.BaseURL != "" {
		name = u.Host
	}
	if name == "" {
		name = c.Auth.Service
	}
	if name == "" {
		if h, p, err := net.SplitHostPort(c.Listen); err == nil {
			if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
				if hn, err := os.Hostname(); err == nil {
					h = hn
				}
			}
			name = net.JoinHostPort(h, p)
		}
	}
	if name == "" || !audit.ValidKeyName(name) {
		name = "signet-server"
	}
	return name + "/audit"
}

// storedOrigin is the origin of the log's latest checkpoint ("" before the
// first).
func storedOrigin(ctx context.Context, st audit.Store) (string, error) {
	ts, err := st.State(ctx)
	if err != nil || ts.Checkpoint == nil {
		return "", err
	}
	i := bytes.Index(ts.Checkpoint, []byte("\n\n"))
	if i < 0 {
		return "", errors.New("the stored checkpoint is not a signed note")
	}
	cp, err := audit.ParseCheckpoint(ts.Checkpoint[:i+1])
	if err != nil {
		return "", err
	}
	return cp.Origin, nil
}

// checkpointSigner returns the signer of the log's checkpoints, held in
// key custody: the oldest active audit-checkpoint key of the server,
// created (Ed25519) on first start. The oldest, so that replicas starting
// together for the first time agree on one key.
func checkpointSigner(ctx context.Context, cust server.Custodian) (signer crypto.Signer, keyID string, created bool, err error) {
	c, ok := cust.(custody.Custodian)
	if !ok {
		return nil, "", false, fmt.Errorf("the custodian (%T) cannot hold the audit log's checkpoint key", cust)
	}
	f := custody.Filter{Purpose: custody.PurposeAuditCheckpoint, Owner: custody.OwnerServer}
	ks, err := c.ListKeys(ctx, f)
	if err != nil {
		return nil, "", false, fmt.Errorf("listing the checkpoint key: %w", err)
	}
	if len(ks) == 0 {
		if _, err := c.CreateKey(ctx, custody.Spec{Purpose: custody.PurposeAuditCheckpoint, Owner: custody.OwnerServer, Algorithm: custody.AlgorithmED25519}); err != nil {
			return nil, "", false, fmt.Errorf("creating the checkpoint key: %w", err)
		}
		created = true
		if ks, err = c.ListKeys(ctx, f); err != nil || len(ks) == 0 {
			return nil, "", false, fmt.Errorf("listing the checkpoint key: %v", err)
		}
	}
	k := ks[len(ks)-1] // newest first
	if k.Public.Type() != custody.AlgorithmED25519 {
		return nil, "", false, fmt.Errorf("the checkpoint key %s is %s, not ed25519", k.ID(), k.Public.Type())
	}
	s, err := c.Signer(ctx, "", k.ID())
	if err != nil {
		return nil, "", false, fmt.Errorf("the checkpoint key %s: %w", k.ID(), err)
	}
	return s, k.ID(), created, nil
}

// openAuditLog makes the audit log on the server's database, with its
// checkpoint key from custody; nil when the log is disabled.
func openAuditLog(ctx context.Context, cfg Config, st *sqlstore.Store, cust server.Custodian, log *slog.Logger) (*audit.Log, error) {
	if cfg.Audit.Disabled {
		log.Warn("the audit log is disabled (audit.disabled): writes are not recorded")
		return nil, nil
	}
	as := st.AuditLog()
	stored, err := storedOrigin(ctx, as)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	origin := cfg.Audit.Origin
	switch {
	case origin != "" && stored != "" && origin != stored:
		return nil, fmt.Errorf("audit.origin %q: the log in this database has origin %q, which its checkpoints are signed under; it cannot change", origin, stored)
	case origin == "" && stored != "":
		origin = stored
	case origin == "":
		origin = cfg.defaultOrigin()
	}
	signer, keyID, created, err := checkpointSigner(ctx, cust)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	l, err := audit.New(audit.Config{Store: as, Origin: origin, Signer: signer, Logger: log.With("component", "audit")})
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	if created {
		if _, err := l.Append(ctx, audit.Event{Type: audit.KeyCreate, Actor: audit.Actor{Kind: audit.ActorSystem, Name: "audit"},
			Subject: audit.Subject{KeyID: keyID, Role: string(custody.PurposeAuditCheckpoint)}}); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
	}
	return l, nil
}

// AuditGroup is the audit log's routes: the read API (C2SP tlog-tiles,
// public) under /audit/, and the append API at audit.AppendPath for any
// user's API token of the signing service (signet-admission's), recorded
// with that user as the actor. Without the service there is no append API.
func AuditGroup(l *audit.Log, svc *service.Service, log *slog.Logger) (server.Group, error) {
	h, err := audit.NewHandler(audit.HandlerConfig{Store: l.Store(), VerifierKey: l.VerifierKey(), CacheBytes: 32 << 20, Logger: log})
	if err != nil {
		return server.Group{}, err
	}
	read := http.StripPrefix("/audit", h)
	g := server.Group{Name: "audit log", Routes: []server.Route{
		{Pattern: "/audit/checkpoint", Op: "AuditCheckpoint", Access: server.Public(), Handler: read},
		{Pattern: "/audit/verifier-key", Op: "AuditVerifierKey", Access: server.Public(), Handler: read},
		{Pattern: "/audit/tile/", Op: "AuditTile", Access: server.Public(), Handler: read},
	}}
	if svc == nil {
		return g, nil
	}
	ah, err := audit.NewAppendHandler(audit.AppendHandlerConfig{Log: l, Actor: svc.Actor, Logger: log})
	if err != nil {
		return server.Group{}, err
	}
	g.Routes = append(g.Routes, server.Route{Pattern: audit.AppendPath, Op: "AuditAppend", Access: server.ServiceRole(service.RoleUser), Handler: ah})
	g.WriteError = svc.WriteError
	return g, nil
}

// runAudit runs the log's sequencer until stop is called.
type auditRunner struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func runAudit(ctx context.Context, l *audit.Log, log *slog.Logger) *auditRunner {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &auditRunner{cancel: cancel}
	if l == nil {
		return r
	}
	r.wg.Go(func() {
		if err := l.Run(rctx); err != nil {
			log.Error("audit: the sequencer stopped", "err", err)
		}
	})
	return r
}

// firstCheckpoint waits (bounded) until the log has a signed checkpoint
// and has checked its stored tree against it once, so that a server that
// says it listens serves its log and is ready: on a new database the
// sequencer signs the empty tree first.
func firstCheckpoint(ctx context.Context, l *audit.Log, log *slog.Logger) {
	if l == nil {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := l.Store().State(ctx)
		if err == nil && st.Checkpoint != nil && l.Status().Checked {
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			log.Warn("audit: the log has not signed or checked a checkpoint yet; /audit/checkpoint and /_signet/ready answer 503 until it has", "status", l.Status().Problem)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *auditRunner) stop() {
	r.cancel()
	r.wg.Wait()
}

// auditReady is the readiness check of the log: its self-check passed and
// the stored tree matches its signed checkpoint.
func auditReady(l *audit.Log) map[string]func(context.Context) error {
	if l == nil {
		return nil
	}
	return map[string]func(context.Context) error{"Audit log": l.Ready}
}

// auditCollectors are the log's metrics, read from its status.
func auditCollectors(l *audit.Log) []prometheus.Collector {
	if l == nil {
		return nil
	}
	gauge := func(name, help string, f func(audit.Status) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(l.Status()) })
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	return []prometheus.Collector{
		gauge("signet_audit_healthy", "1 while the stored audit log matches its latest signed checkpoint (0: the self-check failed; no checkpoint is signed).", func(s audit.Status) float64 { return b(s.Healthy) }),
		gauge("signet_audit_leader", "1 while this process sequences the audit log.", func(s audit.Status) float64 { return b(s.Leader) }),
		gauge("signet_audit_tree_size", "Entries in the audit log's tree, as last seen.", func(s audit.Status) float64 { return float64(s.Size) }),
		gauge("signet_audit_checkpoint_size", "Entries covered by the latest signed checkpoint, as last seen.", func(s audit.Status) float64 { return float64(s.CheckpointSize) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "signet_audit_check_failures_total", Help: "Self-checks (full or per batch) that found the stored log differing from its signed checkpoint."},
			func() float64 { return float64(l.Status().CheckFailures) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "signet_audit_integrated_entries_total", Help: "Entries this process integrated into the audit log."},
			func() float64 { return float64(l.Status().Integrated) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "signet_audit_batches_total", Help: "Integrations this process committed into the audit log."},
			func() float64 { return float64(l.Status().Batches) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "signet_audit_inline_batches_total", Help: "Integrations this process committed inside the commit of the write that appended their entries (SQLite)."},
			func() float64 { return float64(l.Status().Inline) }),
	}
}

// printAuditKey prints the verifier key clients pass to verify the log.
func printAuditKey(w io.Writer, l *audit.Log) {
	if l == nil {
		return
	}
	fmt.Fprintf(w, "signet-server: audit log verifier key %s (signet audit verify --key KEY; docs/audit.md)\n", l.VerifierKey())
}
