package cli

// The audit log check of signet verify --audit-key (and of signet list
// with audit_key in config.json): the timestamp the trust server served
// this client must be in the server's audit log, proven against a
// checkpoint consistent with the last one this trust directory saw. A
// server showing one client a timestamp it did not log (a split view, a
// targeted rollback or freeze) is caught.

import (
	"context"
	"fmt"
	"strconv"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/audit/auditclient"
	"github.com/signet-trust/signet/internal/notaryapi"
)

// auditKey is the verifier key to check timestamps against: the flag,
// else config.json's audit_key; "" for none.
func (s *settings) auditKey(flag string) string {
	if flag != "" {
		return flag
	}
	if s.pinning != nil {
		return s.pinning.AuditKey
	}
	return ""
}

// checkTimestampLogged proves that the timestamp r's last update received
// is the one recorded by the audit log entry the server named for it.
func (a *app) checkTimestampLogged(ctx context.Context, r *repo, vkey, flag string) error {
	seen := r.remote.LastTimestamp()
	if seen == nil {
		return fmt.Errorf("no timestamp was downloaded from the trust server, so the audit log cannot vouch for it")
	}
	gun := r.gun.String()
	if seen.AuditIndex == "" {
		return withCode(ExitVerify, fmt.Errorf("the trust server did not name the audit log entry of the timestamp of %s it served (no %s header): "+
			"either it keeps no audit log, or it showed this client a timestamp it did not log", gun, notaryapi.AuditIndexHeader))
	}
	idx, err := strconv.ParseUint(seen.AuditIndex, 10, 64)
	if err != nil {
		return withCode(ExitVerify, fmt.Errorf("the trust server named the audit log entry of the timestamp of %s as %q, which is not an index", gun, seen.AuditIndex))
	}
	s := r.settings
	ac, err := a.newAuditClient(s.server, vkey, flag, r.remote.HTTPClient())
	if err != nil {
		return err
	}
	path := auditclient.StatePath(s.trustDir, ac.Origin())
	prev, err := auditclient.LoadState(path)
	if err != nil {
		return err
	}
	entry, _, next, err := ac.ProveEntry(ctx, prev, idx)
	if err != nil {
		return auditError(s, fmt.Errorf("the audit log entry %d of the timestamp of %s: %w", idx, gun, err))
	}
	ev, err := audit.ParseEvent(entry)
	if err != nil {
		return withCode(ExitVerify, fmt.Errorf("audit log entry %d: %w", idx, err))
	}
	logged := ""
	if (ev.Type == audit.TUFPublish || ev.Type == audit.TUFResign) && ev.Subject.GUN == gun {
		for _, rv := range ev.Roles {
			if rv.Role == "timestamp" {
				logged = rv.SHA256
			}
		}
	}
	if logged != seen.SHA256 {
		return withCode(ExitVerify, fmt.Errorf("the timestamp of %s the trust server served (SHA-256 %s) is not the one its audit log recorded at entry %d (%s of %q): "+
			"the server is showing this client metadata it did not log", gun, seen.SHA256, idx, ev.Type, ev.Subject.GUN))
	}
	if err := next.Save(path); err != nil {
		return fmt.Errorf("saving the audit state: %w", err)
	}
	return nil
}
