-- The signing service (internal/service): users and API tokens, projects
-- and their keys, signing policies, signing requests. Times are INTEGER
-- unix microseconds, UTC; NULL where a time is not set.

CREATE TABLE service_users (
	name          TEXT    PRIMARY KEY,
	email         TEXT    NOT NULL DEFAULT '',
	password_hash TEXT    NOT NULL DEFAULT '',
	admin         INTEGER NOT NULL DEFAULT 0,
	auditor       INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);

-- API tokens: only the SHA-256 of the token string is kept.
CREATE TABLE service_tokens (
	id          TEXT    PRIMARY KEY,
	user_name   TEXT    NOT NULL REFERENCES service_users (name) ON DELETE CASCADE,
	description TEXT    NOT NULL DEFAULT '',
	hash        BLOB    NOT NULL UNIQUE,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER,
	revoked_at  INTEGER
);
CREATE INDEX service_tokens_user ON service_tokens (user_name, id);

CREATE TABLE service_projects (
	name          TEXT    PRIMARY KEY,
	repository    TEXT    NOT NULL UNIQUE,
	signer        TEXT    NOT NULL,
	key_id        TEXT    NOT NULL,
	cosign_key_id TEXT    NOT NULL DEFAULT '',
	rate_limit    INTEGER NOT NULL DEFAULT 0,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL
);

-- A user named here cannot be deleted (RESTRICT).
CREATE TABLE service_project_managers (
	project   TEXT    NOT NULL REFERENCES service_projects (name) ON DELETE CASCADE,
	user_name TEXT    NOT NULL REFERENCES service_users (name),
	position  INTEGER NOT NULL,
	PRIMARY KEY (project, user_name)
);
CREATE INDEX service_project_managers_user ON service_project_managers (user_name);

-- Keys the custodian holds for a project; rotated keys stay, retired.
CREATE TABLE service_project_keys (
	key_id     TEXT    NOT NULL,
	project    TEXT    NOT NULL REFERENCES service_projects (name) ON DELETE CASCADE,
	policy     TEXT    NOT NULL DEFAULT '',
	role       TEXT    NOT NULL DEFAULT '',
	purpose    TEXT    NOT NULL,
	public     BLOB    NOT NULL,
	imported   INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL,
	retired_at INTEGER,
	PRIMARY KEY (project, key_id)
);

-- spec is the policy's rules as JSON (approvals, submitters, origin, tags,
-- formats, expiry, webhook); the users it names are mirrored in
-- service_policy_members so that they cannot be deleted under it.
CREATE TABLE service_policies (
	project    TEXT    NOT NULL REFERENCES service_projects (name) ON DELETE CASCADE,
	name       TEXT    NOT NULL,
	spec       TEXT    NOT NULL,
	signer     TEXT    NOT NULL DEFAULT '',
	key_id     TEXT    NOT NULL DEFAULT '',
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (project, name)
);

CREATE TABLE service_policy_members (
	project   TEXT NOT NULL,
	policy    TEXT NOT NULL,
	user_name TEXT NOT NULL REFERENCES service_users (name),
	PRIMARY KEY (project, policy, user_name),
	FOREIGN KEY (project, policy) REFERENCES service_policies (project, name) ON DELETE CASCADE
);
CREATE INDEX service_policy_members_user ON service_policy_members (user_name);

-- Signing requests. Project and policy are kept as names (a request
-- outlives a deleted policy as history); data holds the rest as JSON.
-- IDs are UUIDv7 strings, so ORDER BY id is creation order.
CREATE TABLE service_requests (
	id            TEXT    PRIMARY KEY,
	project       TEXT    NOT NULL,
	policy        TEXT    NOT NULL,
	status        TEXT    NOT NULL CHECK (status IN ('awaiting_approval', 'signing', 'signed', 'denied', 'failed', 'canceled', 'expired')),
	run_key       TEXT,
	data          TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	expires_at    INTEGER NOT NULL,
	claimed_by    TEXT    NOT NULL DEFAULT '',
	claimed_until INTEGER
);
CREATE INDEX service_requests_status ON service_requests (status, id);
CREATE INDEX service_requests_project ON service_requests (project, id);
CREATE INDEX service_requests_project_created ON service_requests (project, created_at);
-- One pending request per run key: a re-run of a CI job attaches to it.
CREATE UNIQUE INDEX service_requests_run_key ON service_requests (run_key)
	WHERE run_key IS NOT NULL AND status IN ('awaiting_approval', 'signing');
CREATE INDEX service_requests_expiry ON service_requests (expires_at)
	WHERE status = 'awaiting_approval';
CREATE INDEX service_requests_finished ON service_requests (updated_at)
	WHERE status NOT IN ('awaiting_approval', 'signing');

-- The notification outbox (package notify): one row per notification and
-- target, written in the transaction of the change that causes it;
-- request_id is the request the notification is about.
CREATE TABLE service_deliveries (
	id           TEXT    PRIMARY KEY,
	request_id   TEXT    NOT NULL,
	kind         TEXT    NOT NULL CHECK (kind IN ('webhook', 'email')),
	target       TEXT    NOT NULL,
	notification TEXT    NOT NULL,
	state        TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL,
	last_error   TEXT    NOT NULL DEFAULT '',
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);
CREATE INDEX service_deliveries_due ON service_deliveries (state, next_attempt);
CREATE INDEX service_deliveries_request ON service_deliveries (request_id, id);
