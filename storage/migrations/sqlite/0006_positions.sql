-- Each participant's position in each settled delivery interval, stored with the batch that
-- settled it: what they traded, what their grid meter measured (or the estimate that stood in
-- for a late reading), the imbalance and its cash at the utility tariff (kept, µ/kWh, so a
-- true-up prices at the tariff the interval was settled at). An estimated position is trued up
-- once its readings arrive: the real net import, the correction (the participant's side, µ;
-- zero is recorded too) and the batch that posted it (none when it moved no money).
CREATE TABLE positions (
    interval_start        INTEGER NOT NULL,
    interval_end          INTEGER NOT NULL CHECK (interval_end > interval_start),
    participant_id        INTEGER NOT NULL REFERENCES participants (id),
    batch_id              INTEGER NOT NULL REFERENCES settlement_batches (batch_id),
    bought_wh             INTEGER NOT NULL CHECK (bought_wh >= 0),
    sold_wh               INTEGER NOT NULL CHECK (sold_wh >= 0),
    metered_net_import_wh INTEGER NOT NULL,
    estimated             BOOLEAN NOT NULL,
    imbalance_wh          INTEGER NOT NULL,
    imbalance_cash        INTEGER NOT NULL,
    import_tariff         INTEGER NOT NULL,
    export_tariff         INTEGER NOT NULL,
    real_net_import_wh    INTEGER,
    true_up_cash          INTEGER,
    true_up_batch_id      INTEGER REFERENCES settlement_batches (batch_id),
    trued_up_at           INTEGER,
    PRIMARY KEY (interval_start, participant_id),
    CHECK (estimated OR real_net_import_wh IS NULL),
    CHECK ((real_net_import_wh IS NULL) = (true_up_cash IS NULL)),
    CHECK ((real_net_import_wh IS NULL) = (trued_up_at IS NULL))
);
-- The estimates still waiting for their readings.
CREATE INDEX positions_awaiting_readings ON positions (interval_start)
    WHERE estimated AND real_net_import_wh IS NULL;
CREATE INDEX positions_by_participant ON positions (participant_id, interval_start);
