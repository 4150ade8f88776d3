package crash

import (
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/signet-trust/signet/internal/e2e/e2etest"
)

// TestKillMidStreamPostgres is TestKillMidStream with the server on
// PostgreSQL (--db postgres://…), in a database created for the test and
// dropped after it. The server's transactions die with its connections, so
// PostgreSQL rolls back whatever the kill interrupted.
func TestKillMidStreamPostgres(t *testing.T) {
	t.Parallel()
	killMidStream(t, t.TempDir(), "--db", e2etest.PostgresDB(t, "signet_crash_"))
}
