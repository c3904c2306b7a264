-- The text and BIGINT primary keys of 0001 and 0003 accept NULL on SQLite (only an INTEGER
-- PRIMARY KEY, or a column declared NOT NULL, refuses it there; PostgreSQL refuses NULL in every
-- primary key). SQLite cannot add NOT NULL to a column, so these tables are rebuilt with it,
-- keeping their rows; no other table refers to them.
CREATE TABLE sessions_new (
    token_hash TEXT    NOT NULL PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
INSERT INTO sessions_new (token_hash, user_id, created_at, expires_at)
    SELECT token_hash, user_id, created_at, expires_at FROM sessions;
DROP TABLE sessions;
ALTER TABLE sessions_new RENAME TO sessions;

CREATE TABLE api_keys_new (
    id             TEXT    NOT NULL PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants (id),
    token_hash     TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    label          TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER
);
INSERT INTO api_keys_new (id, participant_id, token_hash, scopes, label, created_at, revoked_at)
    SELECT id, participant_id, token_hash, scopes, label, created_at, revoked_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;

CREATE TABLE settlement_accounts_new (
    account_index BIGINT NOT NULL PRIMARY KEY,
    address       TEXT   NOT NULL UNIQUE
);
INSERT INTO settlement_accounts_new (account_index, address)
    SELECT account_index, address FROM settlement_accounts;
DROP TABLE settlement_accounts;
ALTER TABLE settlement_accounts_new RENAME TO settlement_accounts;
