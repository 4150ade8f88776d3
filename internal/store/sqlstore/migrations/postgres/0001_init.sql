-- Signet storage schema, PostgreSQL dialect.

-- Every stored version of every role; rows are never updated.
CREATE TABLE tuf_files (
	id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	gun        TEXT        NOT NULL,
	role       TEXT        NOT NULL,
	version    BIGINT      NOT NULL,
	data       BYTEA       NOT NULL,
	sha256     TEXT        NOT NULL,
	expires    TIMESTAMPTZ NOT NULL,
	created_at TIMESTAMPTZ NOT NULL,
	UNIQUE (gun, role, version)
);
CREATE INDEX tuf_files_sha256 ON tuf_files (sha256);

-- The highest stored version of each (gun, role): the point where
-- concurrent updates of one role serialize, and the index Expiring reads.
CREATE TABLE tuf_heads (
	gun     TEXT        NOT NULL,
	role    TEXT        NOT NULL,
	version BIGINT      NOT NULL,
	expires TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (gun, role),
	FOREIGN KEY (gun, role, version) REFERENCES tuf_files (gun, role, version)
		DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX tuf_heads_role_expires ON tuf_heads (role, expires);

-- sha256 is TEXT, not CHAR(64): deletions carry '', not 64 spaces.
CREATE TABLE changefeed (
	id         BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	created_at TIMESTAMPTZ NOT NULL,
	gun        TEXT        NOT NULL,
	version    BIGINT      NOT NULL,
	sha256     TEXT        NOT NULL DEFAULT '',
	category   TEXT        NOT NULL CHECK (category IN ('update', 'deletion'))
);
CREATE INDEX changefeed_gun_id ON changefeed (gun, id);

CREATE TABLE private_keys (
	seq        BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	key_id     TEXT        NOT NULL UNIQUE,
	gun        TEXT        NOT NULL,
	role       TEXT        NOT NULL,
	algorithm  TEXT        NOT NULL,
	public     BYTEA       NOT NULL,
	sealed     BYTEA       NOT NULL,
	created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX private_keys_gun_role ON private_keys (gun, role, created_at);

CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value BYTEA NOT NULL
);
