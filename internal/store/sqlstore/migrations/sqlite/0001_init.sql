-- Signet storage schema, SQLite dialect.
-- Times are INTEGER unix microseconds, UTC.

-- Every stored version of every role; rows are never updated.
CREATE TABLE tuf_files (
	id         INTEGER PRIMARY KEY,
	gun        TEXT    NOT NULL,
	role       TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	data       BLOB    NOT NULL,
	sha256     TEXT    NOT NULL,
	expires    INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (gun, role, version)
);
CREATE INDEX tuf_files_sha256 ON tuf_files (sha256);

-- The highest stored version of each (gun, role): the point where
-- concurrent updates of one role serialize, and the index Expiring reads.
CREATE TABLE tuf_heads (
	gun     TEXT    NOT NULL,
	role    TEXT    NOT NULL,
	version INTEGER NOT NULL,
	expires INTEGER NOT NULL,
	PRIMARY KEY (gun, role),
	FOREIGN KEY (gun, role, version) REFERENCES tuf_files (gun, role, version)
		DEFERRABLE INITIALLY DEFERRED
);
CREATE INDEX tuf_heads_role_expires ON tuf_heads (role, expires);

-- AUTOINCREMENT: change IDs are never reused.
CREATE TABLE changefeed (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	created_at INTEGER NOT NULL,
	gun        TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	sha256     TEXT    NOT NULL DEFAULT '',
	category   TEXT    NOT NULL CHECK (category IN ('update', 'deletion'))
);
CREATE INDEX changefeed_gun_id ON changefeed (gun, id);

CREATE TABLE private_keys (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	key_id     TEXT    NOT NULL UNIQUE,
	gun        TEXT    NOT NULL,
	role       TEXT    NOT NULL,
	algorithm  TEXT    NOT NULL,
	public     BLOB    NOT NULL,
	sealed     BLOB    NOT NULL,
	created_at INTEGER NOT NULL
);
CREATE INDEX private_keys_gun_role ON private_keys (gun, role, created_at);

CREATE TABLE settings (
	name  TEXT PRIMARY KEY,
	value BLOB NOT NULL
);
