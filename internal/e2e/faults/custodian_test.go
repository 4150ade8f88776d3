package faults

import (
	"testing"
)

// TestCustodianKeysUnreadable makes the embedded custodian's key table
// unreadable under a running server (PostgreSQL: the table is renamed away
// and back, which the server cannot tell from a broken key store). There
// is no remote signet-signer yet, so this is the custodian failure that
// can happen: a publish that needs a key the custodian has not cached
// answers 503 UNAVAILABLE with Retry-After and stores nothing, a new
// repository cannot get a key, reads go on, and when the table is back the
// same process signs again.
func TestCustodianKeysUnreadable(t *testing.T) {
	db := postgresDB(t)
	dataDir := t.TempDir()
	flags := []string{"--db", db.url.String()}
	s := startServer(t, dataDir, flags...)
	a, b := newGUN("a"), newGUN("b")
	a.mustPublish(t, s)
	a.mustPublish(t, s)
	// A new process holds no key in memory.
	s.stop()
	s = startServer(t, dataDir, flags...)

	if _, err := db.admin.ExecContext(t.Context(), `ALTER TABLE private_keys RENAME TO private_keys_away`); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if restored {
			return
		}
		restored = true
		if _, err := db.admin.ExecContext(t.Context(), `ALTER TABLE private_keys_away RENAME TO private_keys`); err != nil {
			t.Fatal(err)
		}
	}
	defer restore()

	for i := range 2 {
		r, err := a.publish(t.Context(), s.Client, s.Base)
		if err != nil {
			t.Fatal(err)
		}
		wantUnavailable(t, "publish needing the timestamp key", r)
		if i == 0 {
			t.Logf("publish with the key table unreadable: %v", r)
		}
	}
	wantUnavailable(t, "GET timestamp.key of a new repository", s.get(b.path()+"timestamp.key"))
	wantUnavailable(t, "GET timestamp.key of an existing repository", s.get(a.path()+"timestamp.key"))
	a.verify(t, s) // reads need no key
	s.alive()

	restore()
	if a.reconcile(t, s) {
		t.Fatalf("%s: a publish answered 503 was stored", a.gun)
	}
	a.mustPublish(t, s)
	b.mustPublish(t, s)
	a.verify(t, s)
	b.verify(t, s)
	s.alive()
}
