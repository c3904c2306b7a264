-- A home's trading preferences, set on the dashboard; `version` grows with every change and is
-- what the home's gateways confirm.
CREATE TABLE home_preferences (
    participant_id          INTEGER PRIMARY KEY REFERENCES participants (id),
    version                 INTEGER NOT NULL CHECK (version > 0),
    min_sell_price          INTEGER NOT NULL CHECK (min_sell_price >= 0),
    max_buy_price           INTEGER NOT NULL CHECK (max_buy_price >= min_sell_price),
    battery_reserve_percent INTEGER NOT NULL CHECK (battery_reserve_percent BETWEEN 0 AND 100),
    updated_at              INTEGER NOT NULL
);

-- What each gateway last answered to its home's preferences.
CREATE TABLE gateway_preferences (
    gateway_id INTEGER PRIMARY KEY REFERENCES gateways (id),
    version    INTEGER NOT NULL,
    applied    BOOLEAN NOT NULL,
    reason     TEXT,
    at         INTEGER NOT NULL
);

-- Remote checks an installer asked a gateway for, and what it read (a CheckResult as JSON).
CREATE TABLE gateway_checks (
    id           INTEGER PRIMARY KEY,
    gateway_id   INTEGER NOT NULL REFERENCES gateways (id),
    requested_by INTEGER NOT NULL REFERENCES participants (id),
    requested_at INTEGER NOT NULL,
    answered_at  INTEGER,
    result       TEXT
);
CREATE INDEX gateway_checks_by_gateway ON gateway_checks (gateway_id, id);
