-- One custody core (ADR 0008): private_keys holds every key of the custody
-- core, sealed under a named passphrase alias (format 1 or 2) or held in a
-- PKCS#11 token (token <> ''). Rows of earlier releases keep format 0 (one
-- key-encryption key, settings 'kek.scrypt.v1') until the core re-seals
-- them, one compare-and-swap each, on its first start.

ALTER TABLE private_keys
	ADD COLUMN format      INTEGER     NOT NULL DEFAULT 0,
	ADD COLUMN alias       TEXT        NOT NULL DEFAULT '',
	ADD COLUMN wrapped_dek BYTEA       NOT NULL DEFAULT '\x'::bytea,
	ADD COLUMN token       TEXT        NOT NULL DEFAULT '',
	ADD COLUMN label       TEXT        NOT NULL DEFAULT '',
	ADD COLUMN object_id   BYTEA       NOT NULL DEFAULT '\x'::bytea,
	ADD COLUMN purpose     TEXT        NOT NULL DEFAULT '',
	ADD COLUMN owner       TEXT        NOT NULL DEFAULT '',
	ADD COLUMN retired_at  TIMESTAMPTZ;
CREATE INDEX private_keys_owner ON private_keys (owner, purpose, created_at);

-- Passphrase aliases: scrypt salt and cost, and a check value sealed under
-- the key-encryption key they derive.
CREATE TABLE key_aliases (
	alias       TEXT        PRIMARY KEY,
	kdf         TEXT        NOT NULL,
	salt        BYTEA       NOT NULL,
	check_value BYTEA       NOT NULL,
	created_at  TIMESTAMPTZ NOT NULL
);
