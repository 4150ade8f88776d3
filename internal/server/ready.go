package server

import (
	"context"
	"net/http"
	"time"

	"github.com/signet-trust/signet/internal/notaryapi"
	"github.com/signet-trust/signet/internal/tuf"
)

// readyProbeGUN is the repository the readiness check lists keys of; no
// repository has this name (GUNs never start with "_").
const readyProbeGUN = "_signet/ready"

// handleReady answers /_signet/ready, for load balancers and orchestrators:
// 200 {} when the health checks (the database) pass and the custodian can
// list keys, else 503 with the reason of each failure by name.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	failed := map[string]string{}
	for name, check := range s.cfg.Checks {
		if err := check(ctx); err != nil {
			failed[name] = err.Error()
		}
	}
	for name, check := range s.cfg.ReadyChecks {
		if err := check(ctx); err != nil {
			failed[name] = err.Error()
		}
	}
	if err := s.custodianReady(ctx); err != nil {
		failed["custodian"] = err.Error()
	}
	w.Header().Set("Content-Type", notaryapi.ContentTypeJSON)
	w.Header().Set("Cache-Control", "no-store")
	if len(failed) > 0 {
		s.log.WarnContext(ctx, "not ready", "failed", failed)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(mustJSON(failed))
		return
	}
	_, _ = w.Write([]byte("{}"))
}

// custodianReady asks a custodian that can check itself (a remote signer)
// to do so; any other must at least list keys.
func (s *Server) custodianReady(ctx context.Context) error {
	if c, ok := s.cfg.Custodian.(interface{ Ready(context.Context) error }); ok {
		return c.Ready(ctx)
	}
	_, err := s.cfg.Custodian.Keys(ctx, readyProbeGUN, tuf.RoleTimestamp)
	return err
}
