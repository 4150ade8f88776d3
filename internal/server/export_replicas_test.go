package server

import "context"

// UpdateExpiryMetrics sets the soonest-expiry gauges once (for tests).
func UpdateExpiryMetrics(s *Server, ctx context.Context) error { return s.updateExpiryMetrics(ctx) }

// PruneOnce runs one retention pass (for tests).
func PruneOnce(s *Server, ctx context.Context, keep int) int { return s.pruneOnce(ctx, keep) }
