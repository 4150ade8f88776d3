package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signet-trust/signet/internal/audit"
	"github.com/signet-trust/signet/internal/service/record"
	"github.com/signet-trust/signet/internal/store"
)

// The signing service's tables (migration 0004). Every change appends its
// audit events (audit.Event.Encode) to audit_pending inside its own
// transaction, so that the change and the entries recording it commit
// together. Read-modify-write methods lock the row they change (FOR UPDATE
// on PostgreSQL; SQLite's writes are serialized by the one writer).

var _ record.Store = (*Store)(nil)

// appendEvents encodes events and appends them inside tx.
func (s *Store) appendEvents(ctx context.Context, tx *sql.Tx, events []audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	entries := make([][]byte, len(events))
	for i, e := range events {
		b, err := e.Encode()
		if err != nil {
			return err
		}
		entries[i] = b
	}
	_, err := s.AppendAudit(ctx, tx, entries)
	return err
}

func (s *Store) nullTimeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.d.timeArg(storeTime(t))
}

func (s *Store) timeArg(t time.Time) any { return s.d.timeArg(storeTime(t)) }

// svcErr wraps an error of a service method: store.ErrNotFound for a
// missing row, store.ErrUnavailable for a transient failure.
func svcErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sqlstore: %s: %w", op, classify(notFound(err)))
}

// queryRows runs a read query on the read pool and calls fn for each row.
func (s *Store) queryRows(ctx context.Context, q querier, query string, args []any, fn func(scanner) error) error {
	rows, err := q.QueryContext(ctx, s.d.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// unknownUsers returns the names among users that no user has (in order).
func (s *Store) unknownUsers(ctx context.Context, tx *sql.Tx, users []string) error {
	var missing []string
	for _, u := range users {
		var one int
		err := tx.QueryRowContext(ctx, s.d.q(`SELECT 1 FROM service_users WHERE name = ?`), u).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			if !slices.Contains(missing, u) {
				missing = append(missing, u)
			}
			continue
		}
		if err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return &record.UnknownUsersError{Names: missing}
	}
	return nil
}

// ---- users ----

const userColumns = `name, email, password_hash, admin, auditor, created_at, updated_at`

func scanUser(row scanner) (record.User, error) {
	var (
		u                record.User
		created, updated dbTime
	)
	if err := row.Scan(&u.Name, &u.Email, &u.PasswordHash, &u.Admin, &u.Auditor, &created, &updated); err != nil {
		return record.User{}, err
	}
	u.Created, u.Updated = created.t, updated.t
	return u, nil
}

// CreateUser implements record.Store.
func (s *Store) CreateUser(ctx context.Context, u record.User, tok *record.Token, events []audit.Event) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO service_users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			u.Name, u.Email, u.PasswordHash, u.Admin, u.Auditor, s.timeArg(u.Created), s.timeArg(u.Updated))
		if err != nil {
			if s.d.isUnique(err) {
				return fmt.Errorf("user %s: %w", u.Name, store.ErrConflict)
			}
			return err
		}
		if tok != nil {
			if err := s.insertToken(ctx, tx, *tok); err != nil {
				return err
			}
		}
		return s.appendEvents(ctx, tx, events)
	})
	return svcErr("create user", err)
}

// GetUser implements record.Store.
func (s *Store) GetUser(ctx context.Context, name string) (record.User, error) {
	u, err := scanUser(s.queryRow(ctx, queryUser, name))
	if err != nil {
		return record.User{}, svcErr("get user "+name, err)
	}
	return u, nil
}

// ListUsers implements record.Store.
func (s *Store) ListUsers(ctx context.Context) ([]record.User, error) {
	var out []record.User
	err := s.queryRows(ctx, s.r, `SELECT `+userColumns+` FROM service_users ORDER BY name`, nil, func(r scanner) error {
		u, err := scanUser(r)
		out = append(out, u)
		return err
	})
	return out, svcErr("list users", err)
}

// UpdateUser implements record.Store.
func (s *Store) UpdateUser(ctx context.Context, name string, fn func(*record.User) ([]audit.Event, error)) (record.User, error) {
	var out record.User
	err := s.tx(ctx, func(tx *sql.Tx) error {
		u, err := scanUser(tx.QueryRowContext(ctx, s.d.q(`SELECT `+userColumns+` FROM service_users WHERE name = ?`+s.d.forUpdate), name))
		if err != nil {
			return err
		}
		out = u
		events, err := fn(&u)
		if err != nil {
			return err
		}
		u.Name = name
		if _, err := tx.ExecContext(ctx, s.d.q(`UPDATE service_users SET email = ?, password_hash = ?, admin = ?, auditor = ?, updated_at = ? WHERE name = ?`),
			u.Email, u.PasswordHash, u.Admin, u.Auditor, s.timeArg(u.Updated), name); err != nil {
			return err
		}
		out = u
		return s.appendEvents(ctx, tx, events)
	})
	if errors.Is(err, record.ErrUnchanged) {
		return out, nil
	}
	if err != nil {
		return record.User{}, svcErr("update user "+name, err)
	}
	return storedUser(out), nil
}

func storedUser(u record.User) record.User {
	u.Created, u.Updated = storeTime(u.Created), storeTime(u.Updated)
	return u
}

// DeleteUser implements record.Store.
func (s *Store) DeleteUser(ctx context.Context, name string, events []audit.Event) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var by []string
		err := s.queryRows(ctx, tx, `SELECT 'project ' || project FROM service_project_managers WHERE user_name = ?
UNION ALL SELECT 'policy ' || project || '/' || policy FROM service_policy_members WHERE user_name = ? ORDER BY 1`,
			[]any{name, name}, func(r scanner) error {
				var w string
				err := r.Scan(&w)
				by = append(by, w)
				return err
			})
		if err != nil {
			return err
		}
		if len(by) > 0 {
			return &record.InUseError{What: "user " + name, By: by}
		}
		if _, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM service_tokens WHERE user_name = ?`), name); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM service_users WHERE name = ?`), name)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("user %s: %w", name, store.ErrNotFound)
		}
		return s.appendEvents(ctx, tx, events)
	})
	return svcErr("delete user "+name, err)
}

// ---- tokens ----

const tokenColumns = `id, user_name, description, hash, created_at, expires_at, revoked_at`

func scanToken(row scanner) (record.Token, error) {
	var (
		t                record.Token
		created          dbTime
		expires, revoked nullTime
	)
	if err := row.Scan(&t.ID, &t.User, &t.Description, &t.Hash, &created, &expires, &revoked); err != nil {
		return record.Token{}, err
	}
	t.Created, t.Expires, t.Revoked = created.t, expires.t, revoked.t
	return t, nil
}

func (s *Store) insertToken(ctx context.Context, tx *sql.Tx, t record.Token) error {
	if len(t.Hash) == 0 || t.ID == "" {
		return errors.New("a token needs an ID and a hash")
	}
	_, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO service_tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		t.ID, t.User, t.Description, t.Hash, s.timeArg(t.Created), s.nullTimeArg(t.Expires), s.nullTimeArg(t.Revoked))
	if err != nil && s.d.isUnique(err) {
		return fmt.Errorf("token %s: %w", t.ID, store.ErrConflict)
	}
	return err
}

// CreateToken implements record.Store.
func (s *Store) CreateToken(ctx context.Context, t record.Token, events []audit.Event) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, s.d.q(`SELECT 1 FROM service_users WHERE name = ?`+s.d.forUpdate), t.User).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("user %s: %w", t.User, store.ErrNotFound)
			}
			return err
		}
		if err := s.insertToken(ctx, tx, t); err != nil {
			return err
		}
		return s.appendEvents(ctx, tx, events)
	})
	return svcErr("create token", err)
}

// TokenByHash implements record.Store.
func (s *Store) TokenByHash(ctx context.Context, hash []byte) (record.Token, record.User, error) {
	row := s.queryRow(ctx, `SELECT t.id, t.user_name, t.description, t.hash, t.created_at, t.expires_at, t.revoked_at,
u.name, u.email, u.password_hash, u.admin, u.auditor, u.created_at, u.updated_at
FROM service_tokens t JOIN service_users u ON u.name = t.user_name WHERE t.hash = ?`, hash)
	var (
		t                            record.Token
		u                            record.User
		tCreated, uCreated, uUpdated dbTime
		expires, revoked             nullTime
	)
	err := row.Scan(&t.ID, &t.User, &t.Description, &t.Hash, &tCreated, &expires, &revoked,
		&u.Name, &u.Email, &u.PasswordHash, &u.Admin, &u.Auditor, &uCreated, &uUpdated)
	if err != nil {
		return record.Token{}, record.User{}, svcErr("token", err)
	}
	t.Created, t.Expires, t.Revoked = tCreated.t, expires.t, revoked.t
	u.Created, u.Updated = uCreated.t, uUpdated.t
	return t, u, nil
}

// ListTokens implements record.Store.
func (s *Store) ListTokens(ctx context.Context, user string) ([]record.Token, error) {
	var out []record.Token
	err := s.queryRows(ctx, s.r, `SELECT `+tokenColumns+` FROM service_tokens WHERE user_name = ? ORDER BY id DESC`, []any{user}, func(r scanner) error {
		t, err := scanToken(r)
		out = append(out, t)
		return err
	})
	return out, svcErr("list tokens", err)
}

// RevokeToken implements record.Store.
func (s *Store) RevokeToken(ctx context.Context, user, id string, at time.Time, events []audit.Event) (record.Token, error) {
	var out record.Token
	err := s.tx(ctx, func(tx *sql.Tx) error {
		t, err := scanToken(tx.QueryRowContext(ctx, s.d.q(`SELECT `+tokenColumns+` FROM service_tokens WHERE id = ? AND user_name = ?`+s.d.forUpdate), id, user))
		if err != nil {
			return err
		}
		out = t
		if !t.Revoked.IsZero() {
			return nil
		}
		if _, err := tx.ExecContext(ctx, s.d.q(`UPDATE service_tokens SET revoked_at = ? WHERE id = ?`), s.timeArg(at), id); err != nil {
			return err
		}
		out.Revoked = storeTime(at)
		return s.appendEvents(ctx, tx, events)
	})
	if err != nil {
		return record.Token{}, svcErr("revoke token "+id, err)
	}
	return out, nil
}

// ---- projects ----

const projectColumns = `name, repository, signer, key_id, cosign_key_id, rate_limit, created_at, updated_at`

func scanProject(row scanner) (record.Project, error) {
	var (
		p                record.Project
		created, updated dbTime
	)
	if err := row.Scan(&p.Name, &p.Repository, &p.Signer, &p.KeyID, &p.CosignKeyID, &p.RateLimit, &created, &updated); err != nil {
		return record.Project{}, err
	}
	p.Created, p.Updated = created.t, updated.t
	return p, nil
}

func (s *Store) projectManagers(ctx context.Context, q querier, project string) ([]string, error) {
	out := []string{}
	err := s.queryRows(ctx, q, queryManagers, []any{project}, func(r scanner) error {
		var u string
		err := r.Scan(&u)
		out = append(out, u)
		return err
	})
	return out, err
}

func (s *Store) getProject(ctx context.Context, q querier, name string, lock bool) (record.Project, error) {
	query := queryProject
	if lock {
		query += s.d.forUpdate
	}
	p, err := scanProject(s.row(ctx, q, query, name))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return record.Project{}, fmt.Errorf("project %s: %w", name, store.ErrNotFound)
		}
		return record.Project{}, err
	}
	if p.Managers, err = s.projectManagers(ctx, q, name); err != nil {
		return record.Project{}, err
	}
	return p, nil
}

func (s *Store) setManagers(ctx context.Context, tx *sql.Tx, project string, managers []string) error {
	if err := s.unknownUsers(ctx, tx, managers); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM service_project_managers WHERE project = ?`), project); err != nil {
		return err
	}
	var seen []string
	for i, u := range managers {
		if slices.Contains(seen, u) {
			continue
		}
		seen = append(seen, u)
		if _, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO service_project_managers (project, user_name, position) VALUES (?, ?, ?)`), project, u, i); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) insertKey(ctx context.Context, tx *sql.Tx, k record.ProjectKey) error {
	_, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO service_project_keys (key_id, project, policy, role, purpose, public, imported, created_at, retired_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), k.ID, k.Project, k.Policy, k.Role, string(k.Purpose), nonNil(k.Public), k.Imported,
		s.timeArg(k.Created), s.nullTimeArg(k.Retired))
	if err != nil && s.d.isUnique(err) {
		return fmt.Errorf("key %s of project %s: %w", k.ID, k.Project, store.ErrConflict)
	}
	return err
}

// CreateProject implements record.Store.
func (s *Store) CreateProject(ctx context.Context, p record.Project, keys []record.ProjectKey, events []audit.Event) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var taken string
		err := tx.QueryRowContext(ctx, s.d.q(`SELECT name FROM service_projects WHERE name = ? OR repository = ?`), p.Name, p.Repository).Scan(&taken)
		switch {
		case err == nil && taken == p.Name:
			return fmt.Errorf("project %s: %w", p.Name, store.ErrConflict)
		case err == nil:
			return fmt.Errorf("repository %s belongs to project %s: %w", p.Repository, taken, store.ErrConflict)
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO service_projects (`+projectColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			p.Name, p.Repository, p.Signer, p.KeyID, p.CosignKeyID, p.RateLimit, s.timeArg(p.Created), s.timeArg(p.Updated)); err != nil {
			if s.d.isUnique(err) {
				return fmt.Errorf("project %s: %w", p.Name, store.ErrConflict)
			}
			return err
		}
		if err := s.setManagers(ctx, tx, p.Name, p.Managers); err != nil {
			return err
		}
		for _, k := range keys {
			k.Project = p.Name
			if err := s.insertKey(ctx, tx, k); err != nil {
				return err
			}
		}
		return s.appendEvents(ctx, tx, events)
	})
	return svcErr("create project "+p.Name, err)
}

// GetProject implements record.Store.
func (s *Store) GetProject(ctx context.Context, name string) (record.Project, error) {
	p, err := s.getProject(ctx, s.r, name, false)
	return p, svcErr("get project", err)
}

// ListProjects implements record.Store.
func (s *Store) ListProjects(ctx context.Context) ([]record.Project, error) {
	var out []record.Project
	err := s.queryRows(ctx, s.r, `SELECT `+projectColumns+` FROM service_projects ORDER BY name`, nil, func(r scanner) error {
		p, err := scanProject(r)
		out = append(out, p)
		return err
	})
	if err == nil && len(out) > 0 {
		// Every project's managers in one query, not one per project.
		at := make(map[string]int, len(out))
		for i := range out {
			out[i].Managers = []string{}
			at[out[i].Name] = i
		}
		err = s.queryRows(ctx, s.r, `SELECT project, user_name FROM service_project_managers ORDER BY project, position`, nil, func(r scanner) error {
			var project, u string
			if err := r.Scan(&project, &u); err != nil {
				return err
			}
			if i, ok := at[project]; ok {
				out[i].Managers = append(out[i].Managers, u)
			}
			return nil
		})
	}
	return out, svcErr("list projects", err)
}

// UpdateProject implements record.Store.
func (s *Store) UpdateProject(ctx context.Context, name string, fn func(*record.Project) ([]audit.Event, error)) (record.Project, error) {
	var out record.Project
	err := s.tx(ctx, func(tx *sql.Tx) error {
		p, err := s.getProject(ctx, tx, name, true)
		if err != nil {
			return err
		}
		out = p
		keep := p
		events, err := fn(&p)
		if err != nil {
			return err
		}
		p.Name, p.Repository, p.Signer, p.KeyID, p.CosignKeyID, p.Created = keep.Name, keep.Repository, keep.Signer, keep.KeyID, keep.CosignKeyID, keep.Created
		if _, err := tx.ExecContext(ctx, s.d.q(`UPDATE service_projects SET rate_limit = ?, updated_at = ? WHERE name = ?`),
			p.RateLimit, s.timeArg(p.Updated), name); err != nil {
			return err
		}
		if !slices.Equal(p.Managers, keep.Managers) {
			if err := s.setManagers(ctx, tx, name, p.Managers); err != nil {
				return err
			}
		}
		out = p
		return s.appendEvents(ctx, tx, events)
	})
	if errors.Is(err, record.ErrUnchanged) {
		return out, nil
	}
	if err != nil {
		return record.Project{}, svcErr("update project "+name, err)
	}
	out.Created, out.Updated = storeTime(out.Created), storeTime(out.Updated)
	return out, nil
}

// pendingRequests names up to 10 pending requests matching a condition.
func (s *Store) pendingRequests(ctx context.Context, tx *sql.Tx, cond string, args ...any) ([]string, error) {
	var out []string
	err := s.queryRows(ctx, tx, `SELECT id FROM service_requests WHERE status IN ('awaiting_approval', 'signing') AND `+cond+` ORDER BY id LIMIT 10`, args, func(r scanner) error {
		var id string
		err := r.Scan(&id)
		out = append(out, "pending request "+id)
		return err
	})
	return out, err
}

// DeleteProject implements record.Store.
func (s *Store) DeleteProject(ctx context.Context, name string, events []audit.Event) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getProject(ctx, tx, name, true); err != nil {
			return err
		}
		by, err := s.pendingRequests(ctx, tx, `project = ?`, name)
		if err != nil {
			return err
		}
		if len(by) > 0 {
			return &record.InUseError{What: "project " + name, By: by}
		}
		for _, q := range []string{
			`DELETE FROM service_policy_members WHERE project = ?`,
			`DELETE FROM service_policies WHERE project = ?`,
			`DELETE FROM service_project_keys WHERE project = ?`,
			`DELETE FROM service_project_managers WHERE project = ?`,
			`DELETE FROM service_projects WHERE name = ?`,
		} {
			if _, err := tx.ExecContext(ctx, s.d.q(q), name); err != nil {
				return err
			}
		}
		return s.appendEvents(ctx, tx, events)
	})
	return svcErr("delete project "+name, err)
}

const keyRowColumns = `key_id, project, policy, role, purpose, public, imported, created_at, retired_at`

// ListProjectKeys implements record.Store.
func (s *Store) ListProjectKeys(ctx context.Context, project string) ([]record.ProjectKey, error) {
	var out []record.ProjectKey
	err := s.queryRows(ctx, s.r, `SELECT `+keyRowColumns+` FROM service_project_keys WHERE project = ? ORDER BY created_at DESC, key_id`, []any{project}, func(r scanner) error {
		var (
			k       record.ProjectKey
			purpose string
			created dbTime
			retired nullTime
		)
		err := r.Scan(&k.ID, &k.Project, &k.Policy, &k.Role, &purpose, &k.Public, &k.Imported, &created, &retired)
		k.Purpose, k.Created, k.Retired = record.KeyPurpose(purpose), created.t, retired.t
		out = append(out, k)
		return err
	})
	return out, svcErr("list project keys", err)
}

// RotateKey implements record.Store.
func (s *Store) RotateKey(ctx context.Context, k record.ProjectKey, events []audit.Event) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		p, err := s.getProject(ctx, tx, k.Project, true)
		if err != nil {
			return err
		}
		old := p.KeyID
		if k.Policy != "" {
			var keyID string
			err := tx.QueryRowContext(ctx, s.d.q(`SELECT key_id FROM service_policies WHERE project = ? AND name = ?`+s.d.forUpdate), k.Project, k.Policy).Scan(&keyID)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("policy %s/%s: %w", k.Project, k.Policy, store.ErrNotFound)
			}
			if err != nil {
				return err
			}
			old = keyID
		}
		if err := s.insertKey(ctx, tx, k); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.q(`UPDATE service_project_keys SET retired_at = ? WHERE project = ? AND key_id = ? AND retired_at IS NULL`),
			s.timeArg(k.Created), k.Project, old); err != nil {
			return err
		}
		if k.Policy != "" {
			_, err = tx.ExecContext(ctx, s.d.q(`UPDATE service_policies SET key_id = ?, updated_at = ? WHERE project = ? AND name = ?`),
				k.ID, s.timeArg(k.Created), k.Project, k.Policy)
		} else {
			_, err = tx.ExecContext(ctx, s.d.q(`UPDATE service_projects SET key_id = ?, updated_at = ? WHERE name = ?`),
				k.ID, s.timeArg(k.Created), k.Project)
		}
		if err != nil {
			return err
		}
		return s.appendEvents(ctx, tx, events)
	})
	return svcErr("rotate key of "+k.Project, err)
}

// ---- policies ----

// policySpec is what service_policies.spec holds.
type policySpec struct {
	Required   int             `json:"required"`
	Approvers  []string        `json:"approvers"`
	Submitters []string        `json:"submitters"`
	Origin     *record.Origin  `json:"origin,omitempty"`
	Tags       string          `json:"tags,omitempty"`
	Formats    []record.Format `json:"formats"`
	Expiry     time.Duration   `json:"expiry,omitempty"`
	Webhook    *record.Webhook `json:"webhook,omitempty"`
}

const policyColumns = `project, name, spec, signer, key_id, created_at, updated_at`

func scanPolicy(row scanner) (record.Policy, error) {
	var (
		p                record.Policy
		spec             string
		created, updated dbTime
	)
	if err := row.Scan(&p.Project, &p.Name, &spec, &p.Signer, &p.KeyID, &created, &updated); err != nil {
		return record.Policy{}, err
	}
	var ps policySpec
	if err := json.Unmarshal([]byte(spec), &ps); err != nil {
		return record.Policy{}, fmt.Errorf("policy %s/%s: stored spec: %w", p.Project, p.Name, err)
	}
	p.Required, p.Approvers, p.Submitters, p.Origin, p.Tags, p.Formats, p.Expiry, p.Webhook =
		ps.Required, orEmpty(ps.Approvers), orEmpty(ps.Submitters), ps.Origin, ps.Tags, ps.Formats, ps.Expiry, ps.Webhook
	p.Created, p.Updated = created.t, updated.t
	return p, nil
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func specOf(p record.Policy) (string, error) {
	b, err := json.Marshal(policySpec{
		Required: p.Required, Approvers: orEmpty(p.Approvers), Submitters: orEmpty(p.Submitters), Origin: p.Origin,
		Tags: p.Tags, Formats: orEmpty(p.Formats), Expiry: p.Expiry, Webhook: p.Webhook,
	})
	return string(b), err
}

func (s *Store) setMembers(ctx context.Context, tx *sql.Tx, p record.Policy) error {
	members := p.Members()
	if err := s.unknownUsers(ctx, tx, members); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM service_policy_members WHERE project = ? AND policy = ?`), p.Project, p.Name); err != nil {
		return err
	}
	for _, u := range members {
		if _, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO service_policy_members (project, policy, user_name) VALUES (?, ?, ?)`), p.Project, p.Name, u); err != nil {
			return err
		}
	}
	return nil
}

// CreatePolicy implements record.Store.
func (s *Store) CreatePolicy(ctx context.Context, p record.Policy, keys []record.ProjectKey, events []audit.Event) error {
	spec, err := specOf(p)
	if err != nil {
		return svcErr("create policy", err)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getProject(ctx, tx, p.Project, true); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO service_policies (`+policyColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			p.Project, p.Name, spec, p.Signer, p.KeyID, s.timeArg(p.Created), s.timeArg(p.Updated)); err != nil {
			if s.d.isUnique(err) {
				return fmt.Errorf("policy %s/%s: %w", p.Project, p.Name, store.ErrConflict)
			}
			return err
		}
		if err := s.setMembers(ctx, tx, p); err != nil {
			return err
		}
		for _, k := range keys {
			k.Project = p.Project
			if err := s.insertKey(ctx, tx, k); err != nil {
				return err
			}
		}
		return s.appendEvents(ctx, tx, events)
	})
	return svcErr("create policy "+p.Project+"/"+p.Name, err)
}

func (s *Store) getPolicy(ctx context.Context, q querier, project, name string, lock bool) (record.Policy, error) {
	query := queryPolicy
	if lock {
		query += s.d.forUpdate
	}
	p, err := scanPolicy(s.row(ctx, q, query, project, name))
	if errors.Is(err, sql.ErrNoRows) {
		return record.Policy{}, fmt.Errorf("policy %s/%s: %w", project, name, store.ErrNotFound)
	}
	return p, err
}

// GetPolicy implements record.Store.
func (s *Store) GetPolicy(ctx context.Context, project, name string) (record.Policy, error) {
	p, err := s.getPolicy(ctx, s.r, project, name, false)
	return p, svcErr("get policy", err)
}

// ListPolicies implements record.Store.
func (s *Store) ListPolicies(ctx context.Context, project string) ([]record.Policy, error) {
	var out []record.Policy
	err := s.queryRows(ctx, s.r, `SELECT `+policyColumns+` FROM service_policies WHERE project = ? ORDER BY name`, []any{project}, func(r scanner) error {
		p, err := scanPolicy(r)
		out = append(out, p)
		return err
	})
	return out, svcErr("list policies", err)
}

// PoliciesNaming implements record.Store.
func (s *Store) PoliciesNaming(ctx context.Context, user string) ([]record.Policy, error) {
	var out []record.Policy
	err := s.queryRows(ctx, s.r, `SELECT p.project, p.name, p.spec, p.signer, p.key_id, p.created_at, p.updated_at
FROM service_policies p JOIN service_policy_members m ON m.project = p.project AND m.policy = p.name
WHERE m.user_name = ? ORDER BY p.project, p.name`, []any{user}, func(r scanner) error {
		p, err := scanPolicy(r)
		out = append(out, p)
		return err
	})
	return out, svcErr("policies naming "+user, err)
}

// UpdatePolicy implements record.Store.
func (s *Store) UpdatePolicy(ctx context.Context, project, name string, fn func(*record.Policy) ([]audit.Event, error)) (record.Policy, error) {
	var out record.Policy
	err := s.tx(ctx, func(tx *sql.Tx) error {
		p, err := s.getPolicy(ctx, tx, project, name, true)
		if err != nil {
			return err
		}
		out = p
		keep := p
		events, err := fn(&p)
		if err != nil {
			return err
		}
		p.Project, p.Name, p.Signer, p.KeyID, p.Created = keep.Project, keep.Name, keep.Signer, keep.KeyID, keep.Created
		spec, err := specOf(p)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.d.q(`UPDATE service_policies SET spec = ?, updated_at = ? WHERE project = ? AND name = ?`),
			spec, s.timeArg(p.Updated), project, name); err != nil {
			return err
		}
		if err := s.setMembers(ctx, tx, p); err != nil {
			return err
		}
		out = p
		return s.appendEvents(ctx, tx, events)
	})
	if errors.Is(err, record.ErrUnchanged) {
		return out, nil
	}
	if err != nil {
		return record.Policy{}, svcErr("update policy "+project+"/"+name, err)
	}
	out.Created, out.Updated = storeTime(out.Created), storeTime(out.Updated)
	out.Approvers, out.Submitters = orEmpty(out.Approvers), orEmpty(out.Submitters)
	return out, nil
}

// DeletePolicy implements record.Store.
func (s *Store) DeletePolicy(ctx context.Context, project, name string, events []audit.Event) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getPolicy(ctx, tx, project, name, true); err != nil {
			return err
		}
		by, err := s.pendingRequests(ctx, tx, `project = ? AND policy = ?`, project, name)
		if err != nil {
			return err
		}
		if len(by) > 0 {
			return &record.InUseError{What: "policy " + project + "/" + name, By: by}
		}
		for _, q := range []string{
			`DELETE FROM service_policy_members WHERE project = ? AND policy = ?`,
			`DELETE FROM service_policies WHERE project = ? AND name = ?`,
		} {
			if _, err := tx.ExecContext(ctx, s.d.q(q), project, name); err != nil {
				return err
			}
		}
		return s.appendEvents(ctx, tx, events)
	})
	return svcErr("delete policy "+project+"/"+name, err)
}

// ---- requests ----

// requestData is what service_requests.data holds.
type requestData struct {
	Images          []record.Image      `json:"images"`
	Submitter       string              `json:"submitter,omitempty"`
	Origin          map[string]string   `json:"origin,omitempty"`
	OriginIssuer    string              `json:"origin_issuer,omitempty"`
	OriginSubject   string              `json:"origin_subject,omitempty"`
	Description     string              `json:"description,omitempty"`
	Parameters      map[string]string   `json:"parameters,omitempty"`
	Approvals       []record.Decision   `json:"approvals,omitempty"`
	Denials         []record.Decision   `json:"denials,omitempty"`
	Reason          string              `json:"reason,omitempty"`
	Signed          []record.SignedRole `json:"signed,omitempty"`
	ResubmittedFrom string              `json:"resubmitted_from,omitempty"`
	StatusTokenHash []byte              `json:"status_token_hash,omitempty"`
	Attempts        int                 `json:"attempts,omitempty"`

	// The signing's progress per format.
	Formats []record.Format          `json:"formats,omitempty"`
	Cosign  []record.CosignSignature `json:"cosign,omitempty"`
	Started *time.Time               `json:"started,omitempty"`
	Done    []record.Format          `json:"done,omitempty"`
}

const requestColumns = `id, project, policy, status, run_key, data, created_at, updated_at, expires_at, claimed_by, claimed_until`

func scanRequest(row scanner) (record.Request, error) {
	var (
		r                         record.Request
		status, data              string
		runKey                    sql.NullString
		created, updated, expires dbTime
		claimed                   nullTime
	)
	if err := row.Scan(&r.ID, &r.Project, &r.Policy, &status, &runKey, &data, &created, &updated, &expires, &r.ClaimedBy, &claimed); err != nil {
		return record.Request{}, err
	}
	var d requestData
	if err := json.Unmarshal([]byte(data), &d); err != nil {
		return record.Request{}, fmt.Errorf("request %s: stored data: %w", r.ID, err)
	}
	r.Status, r.RunKey = record.Status(status), runKey.String
	r.Created, r.Updated, r.Expires, r.ClaimedUntil = created.t, updated.t, expires.t, claimed.t
	r.Images, r.Submitter, r.Origin, r.OriginIssuer, r.OriginSubject = orEmpty(d.Images), d.Submitter, d.Origin, d.OriginIssuer, d.OriginSubject
	r.Description, r.Parameters, r.Approvals, r.Denials, r.Reason = d.Description, d.Parameters, orEmpty(d.Approvals), orEmpty(d.Denials), d.Reason
	r.Signed, r.ResubmittedFrom, r.StatusTokenHash, r.Attempts = orEmpty(d.Signed), d.ResubmittedFrom, d.StatusTokenHash, d.Attempts
	r.Formats, r.Cosign, r.Done = orEmpty(d.Formats), orEmpty(d.Cosign), orEmpty(d.Done)
	if d.Started != nil {
		r.Started = d.Started.UTC()
	}
	return r, nil
}

func dataOf(r record.Request) (string, error) {
	approvals := make([]record.Decision, len(r.Approvals))
	for i, d := range r.Approvals {
		d.Time = storeTime(d.Time)
		approvals[i] = d
	}
	denials := make([]record.Decision, len(r.Denials))
	for i, d := range r.Denials {
		d.Time = storeTime(d.Time)
		denials[i] = d
	}
	var started *time.Time
	if !r.Started.IsZero() {
		t := storeTime(r.Started)
		started = &t
	}
	b, err := json.Marshal(requestData{
		Images: orEmpty(r.Images), Submitter: r.Submitter, Origin: r.Origin, OriginIssuer: r.OriginIssuer, OriginSubject: r.OriginSubject,
		Description: r.Description, Parameters: r.Parameters, Approvals: approvals, Denials: denials, Reason: r.Reason,
		Signed: r.Signed, ResubmittedFrom: r.ResubmittedFrom, StatusTokenHash: r.StatusTokenHash, Attempts: r.Attempts,
		Formats: r.Formats, Cosign: r.Cosign, Started: started, Done: r.Done,
	})
	return string(b), err
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// The hot statements of the service's writes, prepared once at open
// (prepareWrites) and reused inside transactions (txExec, txQueryRow).
const (
	queryRequest       = `SELECT ` + requestColumns + ` FROM service_requests WHERE id = ?`
	queryUpdateRequest = `UPDATE service_requests SET status = ?, data = ?, updated_at = ?, expires_at = ?, claimed_by = ?, claimed_until = ? WHERE id = ?`
	queryInsertRequest = `INSERT INTO service_requests (` + requestColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	queryInsertDeliv   = `INSERT INTO service_deliveries (` + deliveryColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	queryPolicy        = `SELECT ` + policyColumns + ` FROM service_policies WHERE project = ? AND name = ?`
	queryProject       = `SELECT ` + projectColumns + ` FROM service_projects WHERE name = ?`
	queryManagers      = `SELECT user_name FROM service_project_managers WHERE project = ? ORDER BY position`
	queryUser          = `SELECT ` + userColumns + ` FROM service_users WHERE name = ?`
)

func (s *Store) serviceWriteQueries() []string {
	return []string{queryRequest, queryRequest + s.d.forUpdate, queryUpdateRequest, queryInsertRequest, queryInsertDeliv,
		queryPolicy + s.d.forUpdate}
}

// row runs a query on the read pool (q == s.r, cached statement) or inside
// a transaction.
func (s *Store) row(ctx context.Context, q querier, query string, args ...any) *sql.Row {
	if tx, ok := q.(*sql.Tx); ok {
		return s.txQueryRow(ctx, tx, query, args...)
	}
	return s.queryRow(ctx, query, args...)
}

func (s *Store) getRequest(ctx context.Context, q querier, id string, lock bool) (record.Request, error) {
	query := queryRequest
	if lock {
		query += s.d.forUpdate
	}
	r, err := scanRequest(s.row(ctx, q, query, id))
	if errors.Is(err, sql.ErrNoRows) {
		return record.Request{}, fmt.Errorf("request %s: %w", id, store.ErrNotFound)
	}
	return r, err
}

// CreateRequest implements record.Store.
func (s *Store) CreateRequest(ctx context.Context, r record.Request, fx record.Effects) (record.Request, bool, error) {
	if !r.Status.Valid() || r.Status.Final() {
		return record.Request{}, false, fmt.Errorf("sqlstore: create request: a new request is pending, not %q", r.Status)
	}
	data, err := dataOf(r)
	if err != nil {
		return record.Request{}, false, svcErr("create request", err)
	}
	var (
		got     record.Request
		created bool
	)
	err = s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := s.getPolicy(ctx, tx, r.Project, r.Policy, true); err != nil {
			return err
		}
		if r.RunKey != "" {
			var id string
			err := tx.QueryRowContext(ctx, s.d.q(`SELECT id FROM service_requests WHERE run_key = ? AND status IN ('awaiting_approval', 'signing')`), r.RunKey).Scan(&id)
			if err == nil {
				got, err = s.getRequest(ctx, tx, id, false)
				return err
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if _, err := s.txExec(ctx, tx, queryInsertRequest,
			r.ID, r.Project, r.Policy, string(r.Status), nullString(r.RunKey), data, s.timeArg(r.Created), s.timeArg(r.Updated),
			s.timeArg(r.Expires), r.ClaimedBy, s.nullTimeArg(r.ClaimedUntil)); err != nil {
			if s.d.isUnique(err) {
				return fmt.Errorf("request %s: %w", r.ID, store.ErrConflict)
			}
			return err
		}
		if err := s.applyEffects(ctx, tx, fx); err != nil {
			return err
		}
		created = true
		got, err = s.getRequest(ctx, tx, r.ID, false)
		return err
	})
	if err != nil {
		return record.Request{}, false, svcErr("create request", err)
	}
	return got, created, nil
}

// GetRequest implements record.Store.
func (s *Store) GetRequest(ctx context.Context, id string) (record.Request, error) {
	r, err := s.getRequest(ctx, s.r, id, false)
	return r, svcErr("get request", err)
}

// maxMergedProjects is the most projects ListRequests reads one by one
// and merges.
const maxMergedProjects = 50

// ListRequests implements record.Store.
func (s *Store) ListRequests(ctx context.Context, f record.RequestFilter) ([]record.Request, error) {
	if f.Limit < 1 {
		return nil, errors.New("sqlstore: list requests: limit must be at least 1")
	}
	if f.Projects != nil && len(f.Projects) == 0 {
		return nil, nil
	}
	var (
		conds []string
		args  []any
	)
	if f.Status != "" {
		conds, args = append(conds, "status = ?"), append(args, string(f.Status))
	}
	if f.Project != "" {
		conds, args = append(conds, "project = ?"), append(args, f.Project)
	}
	if f.Policy != "" {
		conds, args = append(conds, "policy = ?"), append(args, f.Policy)
	}
	if f.Before != "" {
		conds, args = append(conds, "id < ?"), append(args, f.Before)
	}
	if !f.Since.IsZero() {
		conds, args = append(conds, "created_at >= ?"), append(args, s.timeArg(f.Since))
	}
	q := `SELECT ` + requestColumns + ` FROM service_requests`
	switch {
	case f.Projects != nil && f.Project == "" && len(f.Projects) > 1 && len(f.Projects) <= maxMergedProjects:
		// Each project's newest IDs from its index, merged: one query
		// over a list of projects would sort all their requests first.
		var (
			parts []string
			all   []any
		)
		for i, p := range f.Projects {
			c := append([]string{"project = ?"}, conds...)
			parts = append(parts, `SELECT id FROM (SELECT id FROM service_requests WHERE `+strings.Join(c, " AND ")+
				` ORDER BY id DESC LIMIT ?) AS p`+strconv.Itoa(i))
			all = append(append(append(all, p), args...), f.Limit)
		}
		q += ` WHERE id IN (` + strings.Join(parts, " UNION ALL ") + `)`
		args = all
	case f.Projects != nil:
		conds = append(conds, "project IN ("+strings.TrimSuffix(strings.Repeat("?, ", len(f.Projects)), ", ")+")")
		for _, p := range f.Projects {
			args = append(args, p)
		}
		fallthrough
	default:
		if len(conds) > 0 {
			q += " WHERE " + strings.Join(conds, " AND ")
		}
	}
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, f.Limit)
	var out []record.Request
	err := s.queryRows(ctx, s.r, q, args, func(r scanner) error {
		req, err := scanRequest(r)
		out = append(out, req)
		return err
	})
	return out, svcErr("list requests", err)
}

// UpdateRequest implements record.Store.
func (s *Store) UpdateRequest(ctx context.Context, id string, fn func(*record.Request) (record.Effects, error)) (record.Request, error) {
	var out record.Request
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		out, err = s.updateRequest(ctx, tx, id, fn)
		return err
	})
	if errors.Is(err, record.ErrUnchanged) {
		return out, nil
	}
	if err != nil {
		return record.Request{}, svcErr("update request "+id, err)
	}
	return out, nil
}

// UpdateRequests implements record.Store.
func (s *Store) UpdateRequests(ctx context.Context, ids []string, fn func(*record.Request) (record.Effects, error)) ([]record.Request, error) {
	var out []record.Request
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		for _, id := range ids {
			r, err := s.updateRequest(ctx, tx, id, fn)
			if err != nil && !errors.Is(err, record.ErrUnchanged) {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, svcErr("update requests", err)
	}
	return out, nil
}

// updateRequest changes one request inside tx; with ErrUnchanged it
// returns the request as stored and changes nothing.
func (s *Store) updateRequest(ctx context.Context, tx *sql.Tx, id string, fn func(*record.Request) (record.Effects, error)) (record.Request, error) {
	r, err := s.getRequest(ctx, tx, id, true)
	if err != nil {
		return record.Request{}, err
	}
	keep := r
	fx, err := fn(&r)
	if errors.Is(err, record.ErrUnchanged) {
		return keep, err
	}
	if err != nil {
		return record.Request{}, err
	}
	if !r.Status.Valid() {
		return record.Request{}, fmt.Errorf("request %s: status %q", id, r.Status)
	}
	if keep.Status.Final() && r.Status != keep.Status {
		return record.Request{}, fmt.Errorf("request %s is %s; a final status never changes: %w", id, keep.Status, store.ErrConflict)
	}
	// What never changes.
	r.ID, r.Project, r.Policy, r.Images, r.Submitter, r.Origin = keep.ID, keep.Project, keep.Policy, keep.Images, keep.Submitter, keep.Origin
	r.OriginIssuer, r.OriginSubject, r.RunKey, r.Description, r.Parameters = keep.OriginIssuer, keep.OriginSubject, keep.RunKey, keep.Description, keep.Parameters
	r.ResubmittedFrom, r.Created = keep.ResubmittedFrom, keep.Created
	data, err := dataOf(r)
	if err != nil {
		return record.Request{}, err
	}
	if _, err := s.txExec(ctx, tx, queryUpdateRequest,
		string(r.Status), data, s.timeArg(r.Updated), s.timeArg(r.Expires), r.ClaimedBy, s.nullTimeArg(r.ClaimedUntil), id); err != nil {
		return record.Request{}, err
	}
	if err := s.applyEffects(ctx, tx, fx); err != nil {
		return record.Request{}, err
	}
	return s.getRequest(ctx, tx, id, false)
}

// CountRequests implements record.Store.
func (s *Store) CountRequests(ctx context.Context, project string, since time.Time) (int, error) {
	var n int
	err := s.queryRow(ctx, `SELECT COUNT(*) FROM service_requests WHERE project = ? AND created_at >= ?`, project, s.timeArg(since)).Scan(&n)
	return n, svcErr("count requests", err)
}

// CountRequestsPerDay implements record.Store: one query, a count of each
// day's range of the index of (project, created_at), the days joined by
// UNION ALL (no sort, where grouping by day sorts every request counted).
func (s *Store) CountRequestsPerDay(ctx context.Context, projects []string, since time.Time, days int) ([]int, error) {
	if days < 1 || days > record.MaxCountDays {
		return nil, fmt.Errorf("sqlstore: count requests per day: %d days: use 1 to %d", days, record.MaxCountDays)
	}
	out := make([]int, days)
	if len(projects) == 0 {
		return out, nil
	}
	in := `project IN (` + strings.TrimSuffix(strings.Repeat("?, ", len(projects)), ", ") + `)`
	var (
		parts []string
		args  []any
	)
	for d := range days {
		parts = append(parts, `SELECT `+strconv.Itoa(d)+`, COUNT(*) FROM service_requests WHERE created_at >= ? AND created_at < ? AND `+in)
		args = append(args, s.timeArg(since.Add(time.Duration(d)*24*time.Hour)), s.timeArg(since.Add(time.Duration(d+1)*24*time.Hour)))
		for _, p := range projects {
			args = append(args, p)
		}
	}
	err := s.queryRows(ctx, s.r, strings.Join(parts, " UNION ALL "), args, func(r scanner) error {
		var d, n int
		if err := r.Scan(&d, &n); err != nil {
			return err
		}
		if d < 0 || d >= days {
			return fmt.Errorf("day %d out of range", d)
		}
		out[d] = n
		return nil
	})
	if err != nil {
		return nil, svcErr("count requests per day", err)
	}
	return out, nil
}

// ClaimSigning implements record.Store.
func (s *Store) ClaimSigning(ctx context.Context, holder string, now time.Time, lease time.Duration, limit int) ([]record.Request, error) {
	if holder == "" || lease <= 0 || limit < 1 {
		return nil, errors.New("sqlstore: claim signing: need a holder, a positive lease and a limit")
	}
	skipLocked := ""
	if s.d.name == "postgres" {
		skipLocked = " FOR UPDATE SKIP LOCKED"
	}
	var out []record.Request
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var ids []string
		err := s.queryRows(ctx, tx, `UPDATE service_requests SET claimed_by = ?, claimed_until = ?
WHERE id IN (SELECT id FROM service_requests WHERE status = 'signing' AND (claimed_until IS NULL OR claimed_until <= ?)
ORDER BY id LIMIT ?`+skipLocked+`) RETURNING id`,
			[]any{holder, s.timeArg(now.Add(lease)), s.timeArg(now), limit}, func(r scanner) error {
				var id string
				err := r.Scan(&id)
				ids = append(ids, id)
				return err
			})
		if err != nil {
			return err
		}
		slices.Sort(ids)
		for _, id := range ids {
			r, err := s.getRequest(ctx, tx, id, false)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	return out, svcErr("claim signing", err)
}

// DueRequests implements record.Store.
func (s *Store) DueRequests(ctx context.Context, now time.Time, limit int) ([]string, error) {
	var out []string
	err := s.queryRows(ctx, s.r, `SELECT id FROM service_requests WHERE status = 'awaiting_approval' AND expires_at <= ? ORDER BY expires_at, id LIMIT ?`,
		[]any{s.timeArg(now), limit}, func(r scanner) error {
			var id string
			err := r.Scan(&id)
			out = append(out, id)
			return err
		})
	return out, svcErr("due requests", err)
}

// FinishedBefore implements record.Store.
func (s *Store) FinishedBefore(ctx context.Context, t time.Time, limit int) ([]string, error) {
	var out []string
	err := s.queryRows(ctx, s.r, `SELECT id FROM service_requests WHERE status NOT IN ('awaiting_approval', 'signing') AND updated_at < ? ORDER BY updated_at, id LIMIT ?`,
		[]any{s.timeArg(t), limit}, func(r scanner) error {
			var id string
			err := r.Scan(&id)
			out = append(out, id)
			return err
		})
	return out, svcErr("finished requests", err)
}

// DeleteRequest implements record.Store.
func (s *Store) DeleteRequest(ctx context.Context, id string, events []audit.Event) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		r, err := s.getRequest(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if !r.Status.Final() {
			return fmt.Errorf("request %s is %s: %w", id, r.Status, store.ErrConflict)
		}
		if _, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM service_requests WHERE id = ?`), id); err != nil {
			return err
		}
		return s.appendEvents(ctx, tx, events)
	})
	return svcErr("delete request "+id, err)
}

// applyEffects appends a change's audit events and queues its deliveries.
func (s *Store) applyEffects(ctx context.Context, tx *sql.Tx, fx record.Effects) error {
	if err := s.appendEvents(ctx, tx, fx.Events); err != nil {
		return err
	}
	for _, d := range fx.Deliveries {
		if d.State == "" {
			d.State = record.DeliveryPending
		}
		if _, err := s.txExec(ctx, tx, queryInsertDeliv,
			d.ID, d.RequestID, d.Kind, d.Target, string(d.Notification), d.State, d.Attempts, s.timeArg(d.NextAttempt),
			d.LastError, s.timeArg(d.Created), s.timeArg(d.Updated)); err != nil {
			if s.d.isUnique(err) {
				return fmt.Errorf("delivery %s: %w", d.ID, store.ErrConflict)
			}
			return err
		}
	}
	return nil
}

// Commit implements record.Store.
func (s *Store) Commit(ctx context.Context, fx record.Effects) error {
	err := s.tx(ctx, func(tx *sql.Tx) error { return s.applyEffects(ctx, tx, fx) })
	return svcErr("commit", err)
}

// ---- the notification outbox ----

const deliveryColumns = `id, request_id, kind, target, notification, state, attempts, next_attempt, last_error, created_at, updated_at`

func scanDelivery(row scanner) (record.Delivery, error) {
	var (
		d                      record.Delivery
		n                      string
		next, created, updated dbTime
	)
	if err := row.Scan(&d.ID, &d.RequestID, &d.Kind, &d.Target, &n, &d.State, &d.Attempts, &next, &d.LastError, &created, &updated); err != nil {
		return record.Delivery{}, err
	}
	d.Notification, d.NextAttempt, d.Created, d.Updated = []byte(n), next.t, created.t, updated.t
	return d, nil
}

// ClaimDeliveries implements record.Store.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]record.Delivery, error) {
	if lease <= 0 || limit < 1 {
		return nil, errors.New("sqlstore: claim deliveries: need a positive lease and a limit")
	}
	skipLocked := ""
	if s.d.name == "postgres" {
		skipLocked = " FOR UPDATE SKIP LOCKED"
	}
	var out []record.Delivery
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return s.queryRows(ctx, tx, `UPDATE service_deliveries SET next_attempt = ?
WHERE id IN (SELECT id FROM service_deliveries WHERE state = 'pending' AND next_attempt <= ?
ORDER BY next_attempt, id LIMIT ?`+skipLocked+`) RETURNING `+deliveryColumns,
			[]any{s.timeArg(now.Add(lease)), s.timeArg(now), limit}, func(r scanner) error {
				d, err := scanDelivery(r)
				out = append(out, d)
				return err
			})
	})
	slices.SortFunc(out, func(a, b record.Delivery) int { return strings.Compare(a.ID, b.ID) })
	return out, svcErr("claim deliveries", err)
}

// RecordDelivery implements record.Store.
func (s *Store) RecordDelivery(ctx context.Context, id, state string, attempts int, next time.Time, lastError string, at time.Time) error {
	switch state {
	case record.DeliveryPending, record.DeliveryDelivered, record.DeliveryFailed:
	default:
		return fmt.Errorf("sqlstore: record delivery %s: state %q", id, state)
	}
	if next.IsZero() {
		next = at
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.q(`UPDATE service_deliveries SET state = ?, attempts = ?, next_attempt = ?, last_error = ?, updated_at = ? WHERE id = ?`),
			state, attempts, s.timeArg(next), lastError, s.timeArg(at), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("delivery %s: %w", id, store.ErrNotFound)
		}
		return nil
	})
	return svcErr("record delivery", err)
}

// ListDeliveries implements record.Store.
func (s *Store) ListDeliveries(ctx context.Context, requestID string) ([]record.Delivery, error) {
	var out []record.Delivery
	err := s.queryRows(ctx, s.r, `SELECT `+deliveryColumns+` FROM service_deliveries WHERE request_id = ? ORDER BY id`, []any{requestID}, func(r scanner) error {
		d, err := scanDelivery(r)
		out = append(out, d)
		return err
	})
	return out, svcErr("list deliveries", err)
}

// GetDelivery implements record.Store.
func (s *Store) GetDelivery(ctx context.Context, id string) (record.Delivery, error) {
	d, err := scanDelivery(s.r.QueryRowContext(ctx, s.d.q(`SELECT `+deliveryColumns+` FROM service_deliveries WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return record.Delivery{}, fmt.Errorf("sqlstore: delivery %s: %w", id, store.ErrNotFound)
	}
	return d, svcErr("get delivery", err)
}
