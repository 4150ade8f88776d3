package servercmd

import (
	"log/slog"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/server"
	"github.com/signet-trust/signet/internal/service"
	"github.com/signet-trust/signet/internal/store/sqlstore"
	"github.com/signet-trust/signet/internal/ui"
)

// DashboardGroup is the web dashboard under /ui/ as a group of the route
// table. Its routes are public there: the dashboard checks its own
// browser sessions (a page without one redirects to /ui/login) and CSRF
// tokens, and every decision goes through the service with the session's
// user. It is served whenever the signing service is (its users log in).
// With log (the server's audit log, nil without one) it shows the log's
// entries, checkpoint and self-check.
func DashboardGroup(svc *service.Service, st *sqlstore.Store, log *audit.Log, baseURL string, logger *slog.Logger) (server.Group, error) {
	cfg := ui.Config{Service: svc, Meta: st, Repos: st, ServerURL: baseURL, Logger: logger.With("component", "ui")}
	if log != nil {
		cfg.Audit, cfg.AuditEntries = log, st.AuditLog()
	}
	d, err := ui.New(cfg)
	if err != nil {
		return server.Group{}, err
	}
	g := server.Group{Name: "web dashboard"}
	for _, rt := range d.Routes() {
		g.Routes = append(g.Routes, server.Route{Method: rt.Method, Pattern: rt.Pattern, Op: rt.Op, Access: server.Public(), Handler: rt.Handler})
	}
	return g, nil
}
