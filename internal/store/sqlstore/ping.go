package sqlstore

import (
	"context"
	"fmt"
)

// Ping checks that the database answers (for health checks).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping: %w", classify(err))
	}
	return nil
}
