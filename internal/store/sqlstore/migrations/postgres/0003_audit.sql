-- The audit log (internal/audit): a C2SP tlog-tiles transparency log.

-- Entries appended and not yet integrated into the tree; the writes they
-- record commit with them. Identity values are never reused, so an
-- integrated entry keeps its append ID.
CREATE TABLE audit_pending (
	id   BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	data BYTEA  NOT NULL
);

-- The tree's entries by index, byte for byte as hashed and served.
CREATE TABLE audit_entries (
	idx       BIGINT PRIMARY KEY,
	append_id BIGINT NOT NULL UNIQUE,
	data      BYTEA  NOT NULL
);

-- Hash tiles of height 8, 32-byte hashes concatenated; a partial tile's
-- row is rewritten, longer, until it is full.
CREATE TABLE audit_tiles (
	level  INTEGER NOT NULL,
	idx    BIGINT  NOT NULL,
	hashes BYTEA   NOT NULL,
	PRIMARY KEY (level, idx)
);

-- The tree: its size and root, and the latest signed checkpoint. One row,
-- locked (FOR UPDATE) by each integration.
CREATE TABLE audit_state (
	id              INTEGER PRIMARY KEY CHECK (id = 1),
	size            BIGINT  NOT NULL,
	root            BYTEA   NOT NULL,
	checkpoint_size BIGINT  NOT NULL,
	checkpoint      BYTEA
);
INSERT INTO audit_state (id, size, root, checkpoint_size, checkpoint)
VALUES (1, 0, '\xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'::bytea, 0, NULL);

-- The integrator lease: one process at a time integrates; expiry on the
-- database's clock, shared by every replica.
CREATE TABLE audit_lease (
	name       TEXT        PRIMARY KEY,
	holder     TEXT        NOT NULL,
	expires_at TIMESTAMPTZ NOT NULL
);
