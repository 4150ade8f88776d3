package audit

import (
	"context"
	"errors"
	"time"
)

// inliner is the log's side of the integrations its store runs inside the
// commits of the writes that append entries (InlineStore): the integration
// Run's loop would run right after such a write, done in the write's own
// commit. It runs only while this process leads, the log is healthy, the
// tree's edge is the one this process committed last (so that nothing is
// rebuilt or re-verified inside a write) and no other integration is under
// way; otherwise the write commits alone and Run's loop integrates.
type inliner struct{ l *Log }

// Begin implements Inliner.
func (in inliner) Begin() (IntegrateFunc, int, func(error), bool) {
	l := in.l
	if time.Now().UnixNano() >= l.leaseUntil.Load() || !l.Status().Healthy {
		return nil, 0, nil, false
	}
	if !l.emu.TryLock() {
		return nil, 0, nil, false
	}
	prev := l.edge
	if prev == nil {
		l.emu.Unlock()
		return nil, 0, nil, false
	}
	// As in IntegrateOnce: unless this integration commits, the next one
	// starts from the store again.
	l.edge = nil
	var (
		res   extension
		taken int
		fnErr error
	)
	integrate := l.integrateFunc(prev, &res, &taken)
	fn := func(ctx context.Context, st TreeState, pending []Pending, tile func(int, uint64) ([]byte, error)) (*Batch, error) {
		b, err := integrate(ctx, st, pending, tile)
		fnErr = err
		return b, err
	}
	finish := func(err error) {
		notify := false
		defer func() {
			l.emu.Unlock()
			if notify {
				l.notify()
			}
		}()
		switch {
		case err == nil && res.batch != nil:
			l.committed(res)
			l.update(func(s *Status) { s.Inline++ })
			notify = true
		case errors.Is(fnErr, ErrHistory):
			l.fail(context.Background(), fnErr)
		case fnErr == nil && res.batch == nil && res.edge != nil && !res.sign:
			l.edge = res.edge // nothing was pending
		case res.batch != nil:
			l.log.Warn("audit: integrating inside a write's commit failed; the integrator takes the entries", "err", err)
		}
		if (err != nil && res.batch != nil) || fnErr != nil || (res.batch == nil && res.sign) || taken == l.cfg.MaxBatch {
			l.Kick()
		}
	}
	return fn, l.cfg.MaxBatch, finish, true
}

// Integrated reports whether this process has integrated the entry of
// append ID id and stored a checkpoint covering it: a writer that appended
// it need not Kick the integrator.
func (l *Log) Integrated(id int64) bool {
	_, _, ok := l.recentIndex(id)
	return ok
}
