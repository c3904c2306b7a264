-- Governed parameters (issue 22): every version of the on-chain parameters the service has seen,
-- with when it saw it (market time), the parameters as JSON (field names as in the contract) and
-- the bounds the contract enforces on them. Version 0 is the deployment's initial values.
CREATE TABLE parameter_versions (
    version     INTEGER PRIMARY KEY CHECK (version >= 0),
    observed_at INTEGER NOT NULL,
    params      TEXT    NOT NULL,
    bounds      TEXT    NOT NULL
);

-- Proposals to change them, made through the service by the grid operator or an administrator:
-- the changes as JSON ([{"parameter", "value"}]), the description (part of the proposal's identity
-- on chain), the governor's proposal id once proposed, and its state and votes as last read.
CREATE TABLE proposals (
    id            INTEGER PRIMARY KEY,
    proposer_id   INTEGER NOT NULL REFERENCES participants (id),
    description   TEXT    NOT NULL,
    changes       TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    chain_id      TEXT,
    state         TEXT    NOT NULL,
    votes_for     TEXT    NOT NULL,
    votes_against TEXT    NOT NULL,
    votes_abstain TEXT    NOT NULL,
    error         TEXT,
    updated_at    INTEGER NOT NULL
);
