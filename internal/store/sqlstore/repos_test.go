package sqlstore

import (
	"slices"
	"testing"
	"time"

	"github.com/signet-trust/signet/internal/store"
)

func TestRepositories(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) { testRepositories(t, openT(t, "sqlite::memory:")) })
	t.Run("PostgreSQL", func(t *testing.T) { testRepositories(t, openT(t, postgresSchema(t, postgresURL(t)))) })
}

func testRepositories(t *testing.T, s *Store) {
	ctx := t.Context()
	exp := time.Now().Add(time.Hour)
	for _, gun := range []string{"docker.io/b/app", "docker.io/a/app", "quay.io/x/tool", "docker.io/a/lib_x", "docker.io/a/libyx"} {
		if err := s.UpdateMany(ctx, gun, []store.File{{Role: "root", Version: 1, Data: []byte("{}"), Expires: exp}}); err != nil {
			t.Fatal(err)
		}
	}
	// A GUN with only a delegation's file is no repository of its own.
	if err := s.UpdateMany(ctx, "docker.io/z/half", []store.File{{Role: "targets", Version: 1, Data: []byte("{}"), Expires: exp}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		search, after string
		limit         int
		want          []string
	}{
		{"", "", 10, []string{"docker.io/a/app", "docker.io/a/lib_x", "docker.io/a/libyx", "docker.io/b/app", "quay.io/x/tool"}},
		{"", "", 2, []string{"docker.io/a/app", "docker.io/a/lib_x"}},
		{"", "docker.io/a/lib_x", 2, []string{"docker.io/a/libyx", "docker.io/b/app"}},
		{"app", "", 10, []string{"docker.io/a/app", "docker.io/b/app"}},
		{"lib_", "", 10, []string{"docker.io/a/lib_x"}}, // _ is no wildcard
		{"%", "", 10, nil},
		{"APP", "", 10, nil}, // exact bytes
		{"", "", 0, nil},
	} {
		got, err := s.Repositories(ctx, tc.search, tc.after, tc.limit)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Repositories(%q, %q, %d) = %q, want %q", tc.search, tc.after, tc.limit, got, tc.want)
		}
	}
}
