-- Equivocation (issue 22): two different envelopes signed by one gateway with one sequence
-- number prove that the gateway (or whoever holds its key) forged data.
--
-- envelope_log keeps, per gateway, the envelopes accepted within its replay window (the last 64
-- sequence numbers), exactly as received, so that a second, different envelope for one of those
-- numbers is recognised even after a restart; older rows are pruned as the window moves on.
CREATE TABLE envelope_log (
    gateway_id INTEGER NOT NULL REFERENCES gateways (id),
    seq        INTEGER NOT NULL,
    envelope   TEXT    NOT NULL,
    PRIMARY KEY (gateway_id, seq)
);

-- One row per proof: both envelopes as received, the evidence key the staking contract uses
-- (keccak256 of the two digests, lower first), and the slashing transaction, stored signed before
-- it is broadcast (crash-safe, like an epoch's post).
CREATE TABLE equivocations (
    evidence        TEXT    NOT NULL PRIMARY KEY,
    gateway_id      INTEGER NOT NULL REFERENCES gateways (id),
    seq             INTEGER NOT NULL,
    first_envelope  TEXT    NOT NULL,
    second_envelope TEXT    NOT NULL,
    detected_at     INTEGER NOT NULL,
    slash_nonce     INTEGER,
    slash_tx_hash   TEXT,
    slash_raw       TEXT,
    -- once on chain: the transaction that slashed (or 'slashed by another transaction')
    slashed_tx      TEXT,
    -- why the chain refused the proof, when it did (the gateway stays stopped here)
    slash_error     TEXT
);
CREATE INDEX equivocations_by_gateway ON equivocations (gateway_id);
