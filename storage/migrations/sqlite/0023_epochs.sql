-- Reward epochs (issue 20): one row per computed epoch with its public report (canonical JSON),
-- the report's keccak hash and the cumulative Merkle root that go on chain, and the transaction
-- that posts them; one row per participant rewarded in an epoch, the mirror the dashboard and
-- the API read.
CREATE TABLE epochs (
    epoch            INTEGER PRIMARY KEY CHECK (epoch >= 1),
    start_ms         INTEGER NOT NULL,
    end_ms           INTEGER NOT NULL,
    budget           INTEGER NOT NULL,
    paid             INTEGER NOT NULL,
    cumulative_total INTEGER NOT NULL,
    participants     INTEGER NOT NULL,
    root             TEXT    NOT NULL,
    report_hash      TEXT    NOT NULL,
    report           TEXT    NOT NULL,
    computed_at      INTEGER NOT NULL,
    -- the transaction posting root and hash, stored signed before it is broadcast (crash-safe)
    post_nonce       INTEGER,
    post_tx_hash     TEXT,
    post_raw         TEXT,
    -- the transaction that posted them, once its receipt is seen
    posted_tx        TEXT
);

CREATE TABLE epoch_rewards (
    epoch           INTEGER NOT NULL REFERENCES epochs (epoch),
    participant_id  INTEGER NOT NULL REFERENCES participants (id),
    account         TEXT    NOT NULL,
    local_renewable INTEGER NOT NULL,
    demand_response INTEGER NOT NULL,
    uptime          INTEGER NOT NULL,
    raw             INTEGER NOT NULL,
    reward          INTEGER NOT NULL,
    cumulative      INTEGER NOT NULL,
    PRIMARY KEY (epoch, participant_id)
);
CREATE INDEX epoch_rewards_by_participant ON epoch_rewards (participant_id, epoch);
