-- The tables notary-server 0.7 reads and writes on PostgreSQL (its storage
-- layer does not create them). Written for the Signet test recipe from the
-- columns notary-server's SQL store uses.

-- Every version of every role's metadata of every GUN.
CREATE TABLE tuf_files (
    id          serial       PRIMARY KEY,
    created_at  timestamp    NULL DEFAULT NULL,
    updated_at  timestamp    NULL DEFAULT NULL,
    deleted_at  timestamp    NULL DEFAULT NULL,
    gun         varchar(255) NOT NULL,
    role        varchar(255) NOT NULL,
    version     integer      NOT NULL,
    data        bytea        NOT NULL,
    sha256      char(64)     DEFAULT NULL,
    UNIQUE (gun, role, version)
);
CREATE INDEX tuf_files_sha256_idx ON tuf_files (sha256);

-- The kinds of changefeed record.
CREATE TABLE change_category (
    category varchar(20) PRIMARY KEY
);
INSERT INTO change_category (category) VALUES ('update'), ('deletion');

-- One record per new timestamp or deleted GUN (/v2/_trust/changefeed).
CREATE TABLE changefeed (
    id          serial       PRIMARY KEY,
    created_at  timestamp    DEFAULT CURRENT_TIMESTAMP,
    gun         varchar(255) NOT NULL,
    version     integer      NOT NULL,
    sha256      char(64)     DEFAULT NULL,
    category    varchar(20)  NOT NULL DEFAULT 'update' REFERENCES change_category
);
CREATE INDEX idx_changefeed_gun ON changefeed (gun);
