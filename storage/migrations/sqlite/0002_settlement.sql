-- Settlement batches and the on-chain transaction queue (SQLite).
-- Parallel to migrations/postgres/0002_settlement.sql.

-- One row per batch; status moves built → submitting → confirmed, or to
-- parked (needs an operator) with the error that stopped it.
CREATE TABLE settlement_batches (
    batch_id             INTEGER PRIMARY KEY,
    first_interval_start INTEGER NOT NULL,
    last_interval_end    INTEGER NOT NULL,
    prev_state_hash      TEXT    NOT NULL,
    trades_root          TEXT    NOT NULL,
    trade_count          INTEGER NOT NULL,
    state_hash           TEXT,
    status               TEXT    NOT NULL CHECK (status IN ('built', 'submitting', 'confirmed', 'parked')),
    error                TEXT,
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);

-- Netted money movement per account per batch; sums to zero per batch.
CREATE TABLE batch_deltas (
    batch_id INTEGER NOT NULL REFERENCES settlement_batches (batch_id),
    account  TEXT    NOT NULL,
    delta    INTEGER NOT NULL,
    PRIMARY KEY (batch_id, account)
);

-- Every signed transaction is stored (raw bytes) before it is broadcast, so
-- a crash never loses one and a restart re-sends the same bytes (same nonce).
CREATE TABLE chain_txs (
    id                       INTEGER PRIMARY KEY,
    batch_id                 INTEGER NOT NULL REFERENCES settlement_batches (batch_id),
    chunk_index              INTEGER NOT NULL,
    nonce                    INTEGER NOT NULL,
    raw_tx                   BLOB    NOT NULL,
    tx_hash                  TEXT    NOT NULL UNIQUE,
    max_fee_per_gas          TEXT    NOT NULL,
    max_priority_fee_per_gas TEXT    NOT NULL,
    status                   TEXT    NOT NULL CHECK (status IN ('signed', 'broadcast', 'mined', 'confirmed', 'replaced', 'dropped', 'failed')),
    block_number             INTEGER,
    block_hash               TEXT,
    attempts                 INTEGER NOT NULL DEFAULT 0,
    last_error               TEXT,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL
);
CREATE INDEX chain_txs_by_batch ON chain_txs (batch_id, chunk_index);
CREATE INDEX chain_txs_by_nonce ON chain_txs (nonce);
