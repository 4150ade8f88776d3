-- The audit log (internal/audit): a C2SP tlog-tiles transparency log.

-- Entries appended and not yet integrated into the tree; the writes they
-- record commit with them. AUTOINCREMENT: append IDs are never reused, so
-- an integrated entry keeps its own.
CREATE TABLE audit_pending (
	id   INTEGER PRIMARY KEY AUTOINCREMENT,
	data BLOB    NOT NULL
);

-- The tree's entries by index, byte for byte as hashed and served.
CREATE TABLE audit_entries (
	idx       INTEGER PRIMARY KEY,
	append_id INTEGER NOT NULL UNIQUE,
	data      BLOB    NOT NULL
);

-- Hash tiles of height 8, 32-byte hashes concatenated; a partial tile's
-- row is rewritten, longer, until it is full.
CREATE TABLE audit_tiles (
	level  INTEGER NOT NULL,
	idx    INTEGER NOT NULL,
	hashes BLOB    NOT NULL,
	PRIMARY KEY (level, idx)
) WITHOUT ROWID;

-- The tree: its size and root, and the latest signed checkpoint. One row,
-- locked by each integration.
CREATE TABLE audit_state (
	id              INTEGER PRIMARY KEY CHECK (id = 1),
	size            INTEGER NOT NULL,
	root            BLOB    NOT NULL,
	checkpoint_size INTEGER NOT NULL,
	checkpoint      BLOB
);
INSERT INTO audit_state (id, size, root, checkpoint_size, checkpoint)
VALUES (1, 0, X'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 0, NULL);

-- The integrator lease: one process at a time integrates.
CREATE TABLE audit_lease (
	name       TEXT    PRIMARY KEY,
	holder     TEXT    NOT NULL,
	expires_at INTEGER NOT NULL
);
