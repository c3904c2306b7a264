-- Reward epochs (issue 20): one row per computed epoch with its public report (canonical JSON),
-- the report's keccak hash and the cumulative Merkle root that go on chain, and the transaction
-- that posts them; one row per participant rewarded in an epoch, the mirror the dashboard and
-- the API read.
CREATE TABLE epochs (
    epoch            BIGINT PRIMARY KEY CHECK (epoch >= 1),
    start_ms         BIGINT  NOT NULL,
    end_ms           BIGINT  NOT NULL,
    budget           BIGINT  NOT NULL,
    paid             BIGINT  NOT NULL,
    cumulative_total BIGINT  NOT NULL,
    participants     BIGINT  NOT NULL,
    root             TEXT    NOT NULL,
    report_hash      TEXT    NOT NULL,
    report           TEXT    NOT NULL,
    computed_at      BIGINT  NOT NULL,
    -- the transaction posting root and hash, stored signed before it is broadcast (crash-safe)
    post_nonce       BIGINT,
    post_tx_hash     TEXT,
    post_raw         TEXT,
    -- the transaction that posted them, once its receipt is seen
    posted_tx        TEXT
);

CREATE TABLE epoch_rewards (
    epoch           BIGINT  NOT NULL REFERENCES epochs (epoch),
    participant_id  BIGINT  NOT NULL REFERENCES participants (id),
    account         TEXT    NOT NULL,
    local_renewable BIGINT  NOT NULL,
    demand_response BIGINT  NOT NULL,
    uptime          BIGINT  NOT NULL,
    raw             BIGINT  NOT NULL,
    reward          BIGINT  NOT NULL,
    cumulative      BIGINT  NOT NULL,
    PRIMARY KEY (epoch, participant_id)
);
CREATE INDEX epoch_rewards_by_participant ON epoch_rewards (participant_id, epoch);
