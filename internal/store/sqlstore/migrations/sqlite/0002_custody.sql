-- One custody core (ADR 0008): private_keys holds every key of the custody
-- core, sealed under a named passphrase alias (format 1 or 2) or held in a
-- PKCS#11 token (token <> ''). Rows of earlier releases keep format 0 (one
-- key-encryption key, settings 'kek.scrypt.v1') until the core re-seals
-- them, one compare-and-swap each, on its first start.

ALTER TABLE private_keys ADD COLUMN format      INTEGER NOT NULL DEFAULT 0;
ALTER TABLE private_keys ADD COLUMN alias       TEXT    NOT NULL DEFAULT '';
ALTER TABLE private_keys ADD COLUMN wrapped_dek BLOB    NOT NULL DEFAULT x'';
ALTER TABLE private_keys ADD COLUMN token       TEXT    NOT NULL DEFAULT '';
ALTER TABLE private_keys ADD COLUMN label       TEXT    NOT NULL DEFAULT '';
ALTER TABLE private_keys ADD COLUMN object_id   BLOB    NOT NULL DEFAULT x'';
ALTER TABLE private_keys ADD COLUMN purpose     TEXT    NOT NULL DEFAULT '';
ALTER TABLE private_keys ADD COLUMN owner       TEXT    NOT NULL DEFAULT '';
ALTER TABLE private_keys ADD COLUMN retired_at  INTEGER;
CREATE INDEX private_keys_owner ON private_keys (owner, purpose, created_at);

-- Passphrase aliases: scrypt salt and cost, and a check value sealed under
-- the key-encryption key they derive.
CREATE TABLE key_aliases (
	alias       TEXT    PRIMARY KEY,
	kdf         TEXT    NOT NULL,
	salt        BLOB    NOT NULL,
	check_value BLOB    NOT NULL,
	created_at  INTEGER NOT NULL
);

-- signet-signer's own database of earlier releases (signer.db, PRAGMA
-- user_version 2: aliases, keys, token_keys, times in unix nanoseconds)
-- moves into these tables. In any other database the three tables do not
-- exist: they are created empty here, copied (nothing) and dropped.
CREATE TABLE IF NOT EXISTS aliases (
	alias       TEXT PRIMARY KEY,
	kdf         TEXT NOT NULL,
	salt        BLOB NOT NULL,
	check_value BLOB NOT NULL,
	created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS keys (
	id          TEXT PRIMARY KEY,
	gun         TEXT NOT NULL,
	role        TEXT NOT NULL,
	algorithm   TEXT NOT NULL,
	public      BLOB NOT NULL,
	alias       TEXT NOT NULL,
	wrapped_dek BLOB NOT NULL,
	sealed      BLOB NOT NULL,
	created_at  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS token_keys (
	id          TEXT PRIMARY KEY,
	gun         TEXT NOT NULL,
	role        TEXT NOT NULL,
	algorithm   TEXT NOT NULL,
	public      BLOB NOT NULL,
	token       TEXT NOT NULL,
	label       TEXT NOT NULL,
	object_id   BLOB NOT NULL,
	created_at  INTEGER NOT NULL
);
INSERT INTO key_aliases (alias, kdf, salt, check_value, created_at)
	SELECT alias, kdf, salt, check_value, created_at / 1000 FROM aliases;
-- Their seals (format 1) do not bind purpose and owner: the core accepts
-- them only with the purpose their role implies and owner 'server'.
INSERT INTO private_keys (key_id, gun, role, algorithm, public, sealed, created_at,
		format, alias, wrapped_dek, purpose, owner)
	SELECT id, gun, role, algorithm, public, sealed, created_at / 1000,
		1, alias, wrapped_dek,
		CASE WHEN role IN ('timestamp', 'snapshot') THEN role
		     WHEN role LIKE 'targets/_%' THEN 'delegation' ELSE '' END, 'server'
	FROM keys ORDER BY created_at, id;
INSERT INTO private_keys (key_id, gun, role, algorithm, public, sealed, created_at,
		format, token, label, object_id, purpose, owner)
	SELECT id, gun, role, algorithm, public, x'', created_at / 1000,
		1, token, label, object_id,
		CASE WHEN role IN ('timestamp', 'snapshot') THEN role
		     WHEN role LIKE 'targets/_%' THEN 'delegation' ELSE '' END, 'server'
	FROM token_keys ORDER BY created_at, id;
DROP TABLE keys;
DROP TABLE token_keys;
DROP TABLE aliases;
-- A signet-signer of an earlier release then refuses this database as
-- newer than itself, instead of finding its tables gone.
PRAGMA user_version = 3;
