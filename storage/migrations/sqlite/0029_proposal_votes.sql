-- Votes homeowners without a wallet of their own ask the service to cast (issue 22): the service
-- signs a ballot with the homeowner's custodial key and sends it to the governor
-- (`castVoteBySig`), paying the gas. One per proposal and participant, as the governor counts one
-- vote per account. support: 0 against, 1 for, 2 abstain (the governor's numbers). state:
-- 'waiting' (not cast yet), 'cast' (counted on chain, with the votes it carried and its
-- transaction when this service sent it), 'refused' (with the reason).
CREATE TABLE proposal_votes (
    proposal_id    INTEGER NOT NULL REFERENCES proposals (id),
    participant_id INTEGER NOT NULL REFERENCES participants (id),
    support        INTEGER NOT NULL CHECK (support IN (0, 1, 2)),
    requested_at   INTEGER NOT NULL,
    state          TEXT    NOT NULL CHECK (state IN ('waiting', 'cast', 'refused')),
    weight         TEXT,
    tx_hash        TEXT,
    error          TEXT,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (proposal_id, participant_id)
);
