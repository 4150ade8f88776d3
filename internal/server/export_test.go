package server

import "context"

// RefreshDue runs one refresher pass (for tests).
func RefreshDue(s *Server, ctx context.Context) int { return s.refreshDue(ctx) }
