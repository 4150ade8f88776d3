package sqlstore

import (
	"context"
	"testing"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/service/servicetest"
)

// pendingEvents reads the audit events appended and not yet integrated
// (no log integrates them in these tests), oldest first.
func pendingEvents(s *Store) func(context.Context) ([]audit.Event, error) {
	return func(ctx context.Context) ([]audit.Event, error) {
		rows, err := s.w.QueryContext(ctx, `SELECT data FROM audit_pending ORDER BY id`)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []audit.Event
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				return nil, err
			}
			e, err := audit.ParseEvent(b)
			if err != nil {
				return nil, err
			}
			out = append(out, e)
		}
		return out, rows.Err()
	}
}

func openService(t *testing.T, url string) servicetest.Opened {
	s := openT(t, url)
	return servicetest.Opened{Store: s, Events: pendingEvents(s)}
}

func TestServiceStoreSQLite(t *testing.T) {
	servicetest.Run(t, func(t *testing.T) servicetest.Opened { return openService(t, sqliteURL(t)) })
}

func TestServiceStoreSQLiteMemory(t *testing.T) {
	servicetest.Run(t, func(t *testing.T) servicetest.Opened { return openService(t, "sqlite::memory:") })
}

func TestServiceStorePostgres(t *testing.T) {
	base := postgresURL(t)
	servicetest.Run(t, func(t *testing.T) servicetest.Opened { return openService(t, postgresSchema(t, base)) })
}
