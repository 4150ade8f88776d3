package admission

// Posting to the audit log's append API: break-glass synchronously (its
// failure refuses the break-glass), everything else through a bounded
// queue that never holds a decision up.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/signet-trust/signet/internal/audit"
)

// auditQueue bounds the records waiting to be posted; auditWorkers post
// them side by side (each append waits for the log's checkpoint).
const (
	auditQueue   = 1024
	auditWorkers = 4
)

// auditSink posts events to signet-server's append API.
type auditSink struct {
	url   string // "" when no audit log is configured
	token string
	hc    *http.Client
	log   *slog.Logger
	m     *metrics

	queue chan audit.Event
	wg    sync.WaitGroup
}

func newAuditSink(p *Policy, log *slog.Logger, m *metrics) *auditSink {
	s := &auditSink{log: log, m: m, queue: make(chan audit.Event, auditQueue)}
	if p.cfg.Audit.URL != "" {
		s.url = strings.TrimSuffix(p.cfg.Audit.URL, "/") + audit.AppendPath
		s.token = p.auditToken
		s.hc = &http.Client{Transport: p.auditHTTP, Timeout: 5 * time.Second, CheckRedirect: noRedirect}
	}
	return s
}

// start runs the workers that post queued records until ctx ends, then
// what is left, for at most a few seconds.
func (s *auditSink) start(ctx context.Context) {
	for i := 0; i < auditWorkers; i++ {
		s.wg.Add(1)
		go s.run(ctx)
	}
}

func (s *auditSink) run(ctx context.Context) {
	defer s.wg.Done()
	for {
		select {
		case e := <-s.queue:
			s.post(context.WithoutCancel(ctx), e)
		case <-ctx.Done():
			drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
			defer cancel()
			for {
				select {
				case e := <-s.queue:
					s.post(drain, e)
				default:
					return
				}
			}
		}
	}
}

func (s *auditSink) post(ctx context.Context, e audit.Event) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.append(ctx, e); err != nil {
		s.log.WarnContext(ctx, "audit: record not appended", "type", e.Type, "namespace", e.Subject.Namespace, "image", e.Subject.Image, "err", err)
	}
}

// record queues an event; a full queue drops it (counted and logged).
func (s *auditSink) record(ctx context.Context, e audit.Event) {
	if s.url == "" {
		return
	}
	select {
	case s.queue <- e:
	default:
		s.m.audit.WithLabelValues("dropped").Inc()
		s.log.WarnContext(ctx, "audit: queue full, record dropped", "type", e.Type, "namespace", e.Subject.Namespace, "image", e.Subject.Image)
	}
}

// append posts one event and waits for the log to hold it durably (201 or
// 202). Any other outcome is an error.
func (s *auditSink) append(ctx context.Context, e audit.Event) error {
	if s.url == "" {
		s.m.audit.WithLabelValues("unconfigured").Inc()
		return errNoAudit
	}
	body, err := json.Marshal(e)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.token)
	resp, err := s.hc.Do(req)
	if err != nil {
		s.m.audit.WithLabelValues("error").Inc()
		return fmt.Errorf("audit log unreachable: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusAccepted {
		s.m.audit.WithLabelValues("error").Inc()
		var env struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &env) == nil && env.Error.Code != "" {
			return fmt.Errorf("audit log answered %d %s: %s", resp.StatusCode, env.Error.Code, env.Error.Message)
		}
		return fmt.Errorf("audit log answered HTTP %d", resp.StatusCode)
	}
	s.m.audit.WithLabelValues("appended").Inc()
	return nil
}
