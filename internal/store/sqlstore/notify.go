package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// Invalidation between processes sharing one PostgreSQL database (replicas
// of signet-server): every transaction that changes a GUN's metadata sends
// NOTIFY on notifyChannel with the payload "<origin> <GUN>", where origin
// names the Store that wrote. PostgreSQL delivers it at commit and drops it
// on rollback, so listeners hear of exactly the writes that happened.
//
// The payload is never trusted for anything but "drop this GUN from a
// cache": a listener that misses one (its connection was down) is told to
// drop everything when it reconnects.
const (
	notifyChannel = "signet_invalidate"
	// maxPayload is below PostgreSQL's 8000-byte limit on a payload; a
	// longer GUN is announced as "everything".
	maxPayload = 7900
	// How long the listener waits for a notification before it checks that
	// its connection is still alive.
	listenIdleCheck = 30 * time.Second
	listenPingTime  = 10 * time.Second
	listenMaxDelay  = 5 * time.Second
)

// InvalidateAll is what Invalidations sends when any GUN may have changed.
const InvalidateAll = ""

// ListenerApplicationName is the application_name of the listening
// connection, so operators can tell it apart in pg_stat_activity.
const ListenerApplicationName = "signet-invalidation-listener"

func newOrigin() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// notify announces, inside tx, a change to gun (PostgreSQL only).
func (s *Store) notify(ctx context.Context, tx *sql.Tx, gun string) error {
	if !s.d.notify {
		return nil
	}
	payload := s.origin + " " + gun
	if len(payload) > maxPayload {
		payload = s.origin + " " + InvalidateAll
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, notifyChannel, payload)
	return err
}

// Invalidations follows the writes other Stores (other processes) make to
// the same PostgreSQL database. It sends on the returned channel the GUN of
// each such write once it has committed, and InvalidateAll ("") each time
// the listening connection is established, first and after every
// reconnect, because writes made while it was down went unannounced. The
// Store's own writes are not sent. It reconnects with backoff until ctx
// ends, then closes the channel; log receives connection trouble.
//
// For SQLite, whose database has no other writers, it returns nil.
func (s *Store) Invalidations(ctx context.Context, log *slog.Logger) <-chan string {
	if !s.d.notify {
		return nil
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out := make(chan string, 256)
	go func() {
		defer close(out)
		delay := 100 * time.Millisecond
		for {
			start := time.Now()
			err := s.listen(ctx, out)
			if ctx.Err() != nil {
				return
			}
			if time.Since(start) > time.Minute {
				delay = 100 * time.Millisecond
			}
			log.WarnContext(ctx, "invalidation listener: connection lost, reconnecting", "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, listenMaxDelay)
		}
	}()
	return out
}

// listen runs one listening connection until it fails or ctx ends.
func (s *Store) listen(ctx context.Context, out chan<- string) error {
	cfg, err := pgconn.ParseConfig(s.url)
	if err != nil {
		return err
	}
	cfg.RuntimeParams["application_name"] = ListenerApplicationName
	send := func(gun string) bool {
		select {
		case out <- gun:
			return true
		case <-ctx.Done():
			return false
		}
	}
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
		origin, gun, ok := strings.Cut(n.Payload, " ")
		if n.Channel != notifyChannel || origin == s.origin {
			return
		}
		if !ok {
			gun = InvalidateAll
		}
		send(gun)
	}
	// A context that ends only sets a deadline on the socket, so the idle
	// wait below can time out without spoiling the connection.
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel).ReadAll(); err != nil {
		return err
	}
	// Listening from here on: whatever was written before may have been
	// missed.
	if !send(InvalidateAll) {
		return ctx.Err()
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdleCheck)
		err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil:
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed():
			return err
		}
		// Idle: check the connection is alive (a silently dropped one would
		// otherwise wait forever).
		pctx, cancel := context.WithTimeout(ctx, listenPingTime)
		_, err = conn.Exec(pctx, "SELECT 1").ReadAll()
		cancel()
		if err != nil {
			return fmt.Errorf("ping: %w", err)
		}
	}
}
