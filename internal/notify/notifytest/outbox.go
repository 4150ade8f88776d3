// Package notifytest helps test notifications: an in-memory Outbox, the
// Outbox conformance suite every implementation must pass, and a real SMTP
// sink (Debian's exim4, started on 127.0.0.1 on a free port with a
// temporary configuration) whose delivered messages a test reads back.
//
// It exists only for tests and is imported only from _test.go files.
package notifytest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/notify"
)

// MemOutbox is an in-memory notify.Outbox for tests.
type MemOutbox struct {
	mu sync.Mutex
	ds map[string]notify.Delivery
}

// NewMemOutbox returns an empty outbox.
func NewMemOutbox() *MemOutbox { return &MemOutbox{ds: map[string]notify.Delivery{}} }

// Add stores a new pending delivery.
func (m *MemOutbox) Add(_ context.Context, d notify.Delivery) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.ds[d.ID]; dup {
		return fmt.Errorf("delivery %s exists", d.ID)
	}
	d.State = notify.StatePending
	m.ds[d.ID] = d
	return nil
}

// Get returns a delivery.
func (m *MemOutbox) Get(_ context.Context, id string) (notify.Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.ds[id]
	if !ok {
		return d, fmt.Errorf("no delivery %s", id)
	}
	return d, nil
}

// Claim implements notify.Outbox.
func (m *MemOutbox) Claim(_ context.Context, now time.Time, lease time.Duration, limit int) ([]notify.Delivery, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var due []notify.Delivery
	for _, d := range m.ds {
		if d.State == notify.StatePending && !d.NextAttempt.After(now) {
			due = append(due, d)
		}
	}
	slices.SortFunc(due, func(a, b notify.Delivery) int {
		return cmp.Or(a.NextAttempt.Compare(b.NextAttempt), cmp.Compare(a.ID, b.ID))
	})
	if len(due) > limit {
		due = due[:limit]
	}
	for _, d := range due {
		d.NextAttempt = now.Add(lease)
		m.ds[d.ID] = d
	}
	return due, nil
}

// Record implements notify.Outbox.
func (m *MemOutbox) Record(_ context.Context, id string, o notify.Outcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.ds[id]
	if !ok {
		return fmt.Errorf("no delivery %s", id)
	}
	d.State, d.Attempts, d.LastError = o.State, o.Attempts, o.LastError
	if o.State == notify.StatePending {
		d.NextAttempt = o.NextAttempt
	}
	m.ds[id] = d
	return nil
}

// Harness is an Outbox under test with the service-side operations the
// suite needs: Add stores a new pending delivery, Get reads one back.
type Harness struct {
	Outbox notify.Outbox
	Add    func(ctx context.Context, d notify.Delivery) error
	Get    func(ctx context.Context, id string) (notify.Delivery, error)
}

// RunOutbox is the conformance suite of notify.Outbox: open returns a fresh,
// empty outbox for each subtest.
func RunOutbox(t *testing.T, open func(t *testing.T) Harness) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	n := notify.Notification{Event: notify.EventSigned, RequestID: "req-1", Project: "app", Policy: "release",
		Image: "registry.test/app:1", Digest: "sha256:" + fmt.Sprintf("%064d", 1), URL: "https://signet.test/ui/requests/req-1", Time: t0}
	add := func(t *testing.T, h Harness, id string, next time.Time) {
		t.Helper()
		if err := h.Add(ctx, notify.Delivery{ID: id, Kind: notify.KindWebhook, Target: "wh-1", Notification: n, NextAttempt: next}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(ds []notify.Delivery) []string {
		var out []string
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}

	t.Run("ClaimDueEarliestFirst", func(t *testing.T) {
		h := open(t)
		add(t, h, "c", t0.Add(-time.Minute))
		add(t, h, "a", t0.Add(-time.Hour))
		add(t, h, "b", t0.Add(-30*time.Minute))
		add(t, h, "later", t0.Add(time.Minute))
		got, err := h.Outbox.Claim(ctx, t0, time.Minute, 2)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(got), []string{"a", "b"}) {
			t.Fatalf("claimed %v, want [a b]", ids(got))
		}
		if got[0].Notification != n || got[0].Kind != notify.KindWebhook || got[0].Target != "wh-1" || got[0].State != notify.StatePending {
			t.Errorf("claimed delivery %+v", got[0])
		}
		got, _ = h.Outbox.Claim(ctx, t0, time.Minute, 10)
		if !slices.Equal(ids(got), []string{"c"}) {
			t.Fatalf("second claim %v, want [c] (a, b leased; later not due)", ids(got))
		}
	})
	t.Run("LeaseExpires", func(t *testing.T) {
		h := open(t)
		add(t, h, "a", t0)
		if got, _ := h.Outbox.Claim(ctx, t0, time.Minute, 10); len(got) != 1 {
			t.Fatalf("claimed %v", ids(got))
		}
		if got, _ := h.Outbox.Claim(ctx, t0.Add(59*time.Second), time.Minute, 10); len(got) != 0 {
			t.Fatalf("claimed %v during the lease", ids(got))
		}
		if got, _ := h.Outbox.Claim(ctx, t0.Add(time.Minute), time.Minute, 10); len(got) != 1 {
			t.Fatalf("not claimed again after the lease: %v", ids(got))
		}
	})
	t.Run("ConcurrentClaimsDisjoint", func(t *testing.T) {
		h := open(t)
		for i := range 40 {
			add(t, h, fmt.Sprintf("d%02d", i), t0)
		}
		var mu sync.Mutex
		seen := map[string]int{}
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					got, err := h.Outbox.Claim(ctx, t0, time.Hour, 3)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, d := range got {
						seen[d.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != 40 {
			t.Errorf("%d deliveries claimed, want 40", len(seen))
		}
		for id, c := range seen {
			if c != 1 {
				t.Errorf("%s claimed %d times", id, c)
			}
		}
	})
	t.Run("RecordOutcomes", func(t *testing.T) {
		h := open(t)
		add(t, h, "ok", t0)
		add(t, h, "retry", t0)
		add(t, h, "fail", t0)
		if _, err := h.Outbox.Claim(ctx, t0, time.Minute, 10); err != nil {
			t.Fatal(err)
		}
		next := t0.Add(5 * time.Minute)
		for id, o := range map[string]notify.Outcome{
			"ok":    {State: notify.StateDelivered, Attempts: 1, At: t0},
			"retry": {State: notify.StatePending, Attempts: 1, NextAttempt: next, LastError: "HTTP 503", At: t0},
			"fail":  {State: notify.StateFailed, Attempts: 1, LastError: "HTTP 404", At: t0},
		} {
			if err := h.Outbox.Record(ctx, id, o); err != nil {
				t.Fatal(err)
			}
		}
		for id, want := range map[string]struct {
			state notify.State
			err   string
		}{"ok": {notify.StateDelivered, ""}, "retry": {notify.StatePending, "HTTP 503"}, "fail": {notify.StateFailed, "HTTP 404"}} {
			d, err := h.Get(ctx, id)
			if err != nil || d.State != want.state || d.Attempts != 1 || d.LastError != want.err {
				t.Errorf("%s: %+v %v, want %s %q", id, d, err, want.state, want.err)
			}
		}
		if d, _ := h.Get(ctx, "retry"); !d.NextAttempt.Equal(next) {
			t.Errorf("retry NextAttempt %v, want %v", d.NextAttempt, next)
		}
		got, _ := h.Outbox.Claim(ctx, next.Add(time.Hour), time.Minute, 10)
		if !slices.Equal(ids(got), []string{"retry"}) {
			t.Errorf("claimed %v later, want only the retry (delivered and failed are done)", ids(got))
		}
		if got[0].Attempts != 1 || got[0].LastError != "HTTP 503" {
			t.Errorf("retry claimed as %+v", got[0])
		}
	})
}
