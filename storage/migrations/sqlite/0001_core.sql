-- GridShare core schema (SQLite). Kept structurally parallel to
-- migrations/postgres/0001_core.sql: same tables, columns and constraints.
-- Times are BIGINT milliseconds since the Unix epoch, UTC; energy in Wh,
-- power in W, prices in micro-currency per kWh, money in micro-currency.

CREATE TABLE participants (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL,
    role        TEXT    NOT NULL CHECK (role IN ('homeowner', 'installer', 'operator', 'trader', 'admin', 'utility', 'grid_operator', 'community')),
    evm_address TEXT    UNIQUE,
    feeder_node INTEGER,
    created_at  INTEGER NOT NULL
);

CREATE TABLE users (
    id             INTEGER PRIMARY KEY,
    username       TEXT    NOT NULL UNIQUE,
    password_hash  TEXT    NOT NULL,
    participant_id INTEGER NOT NULL REFERENCES participants (id),
    created_at     INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE api_keys (
    id             TEXT    PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants (id),
    token_hash     TEXT    NOT NULL,
    scopes         TEXT    NOT NULL,
    label          TEXT    NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    revoked_at     INTEGER
);

CREATE TABLE gateways (
    id              INTEGER PRIMARY KEY,
    owner_id        INTEGER NOT NULL REFERENCES participants (id),
    installer_id    INTEGER REFERENCES participants (id),
    public_key      TEXT    NOT NULL UNIQUE,
    evm_address     TEXT    NOT NULL UNIQUE,
    feeder_node     INTEGER NOT NULL,
    commissioned_at INTEGER NOT NULL,
    revoked_at      INTEGER,
    replay_highest  INTEGER NOT NULL DEFAULT 0,
    replay_seen     INTEGER NOT NULL DEFAULT 0,
    last_seen_at    INTEGER,
    online          INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE devices (
    gateway_id INTEGER NOT NULL REFERENCES gateways (id),
    name       TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('grid_meter', 'pv_inverter', 'battery', 'ev_charger', 'sub_meter')),
    profile    TEXT    NOT NULL,
    PRIMARY KEY (gateway_id, name)
);

-- (gateway_id, seq, device) is the idempotency key: a sample arrives once
-- however often its envelope is re-sent. `at` is in the key because a
-- TimescaleDB hypertable needs its time column in every unique index.
CREATE TABLE readings (
    gateway_id    INTEGER NOT NULL REFERENCES gateways (id),
    seq           INTEGER NOT NULL,
    device        TEXT    NOT NULL,
    at            INTEGER NOT NULL,
    kind          TEXT    NOT NULL,
    power_w       INTEGER,
    energy_in_wh  INTEGER,
    energy_out_wh INTEGER,
    soc_permille  INTEGER,
    status        TEXT    NOT NULL,
    quality       TEXT    NOT NULL,
    PRIMARY KEY (gateway_id, seq, device, at)
);
CREATE INDEX readings_by_device_time ON readings (gateway_id, device, at);
CREATE INDEX readings_by_time ON readings (at);

CREATE TABLE orders (
    order_id         INTEGER PRIMARY KEY,
    participant_id   INTEGER NOT NULL REFERENCES participants (id),
    gateway_id       INTEGER REFERENCES gateways (id),
    zone             INTEGER NOT NULL,
    interval_start   INTEGER NOT NULL,
    interval_minutes INTEGER NOT NULL,
    side             TEXT    NOT NULL CHECK (side IN ('buy', 'sell')),
    quantity_wh      INTEGER NOT NULL CHECK (quantity_wh > 0),
    limit_price      INTEGER NOT NULL,
    tif              TEXT    NOT NULL,
    mode             TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    filled_wh        INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX orders_by_participant ON orders (participant_id, created_at);
CREATE INDEX orders_by_book ON orders (zone, interval_start);

CREATE TABLE trades (
    trade_id       INTEGER PRIMARY KEY,
    zone           INTEGER NOT NULL,
    interval_start INTEGER NOT NULL,
    buy_order      INTEGER NOT NULL,
    sell_order     INTEGER NOT NULL,
    buyer_id       INTEGER NOT NULL REFERENCES participants (id),
    seller_id      INTEGER NOT NULL REFERENCES participants (id),
    quantity_wh    INTEGER NOT NULL CHECK (quantity_wh > 0),
    price          INTEGER NOT NULL,
    grid_fee       INTEGER NOT NULL,
    at             INTEGER NOT NULL,
    batch_id       INTEGER
);
CREATE INDEX trades_by_book ON trades (zone, interval_start);
CREATE INDEX trades_by_buyer ON trades (buyer_id, interval_start);
CREATE INDEX trades_by_seller ON trades (seller_id, interval_start);

CREATE TABLE interval_results (
    zone             INTEGER NOT NULL,
    interval_start   INTEGER NOT NULL,
    interval_minutes INTEGER NOT NULL,
    clearing_price   INTEGER,
    auction_volume   INTEGER NOT NULL,
    total_volume     INTEGER NOT NULL,
    trades           INTEGER NOT NULL,
    closed_at        INTEGER NOT NULL,
    PRIMARY KEY (zone, interval_start)
);

CREATE TABLE dr_programs (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    description TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

-- targets and intervals are JSON documents (OpenADR 3 shapes), validated by
-- the domain types before they are written.
CREATE TABLE dr_events (
    id           INTEGER PRIMARY KEY,
    program_id   INTEGER NOT NULL REFERENCES dr_programs (id),
    priority     INTEGER NOT NULL DEFAULT 0,
    targets      TEXT    NOT NULL,
    intervals    TEXT    NOT NULL,
    starts_at    INTEGER NOT NULL,
    ends_at      INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('scheduled', 'active', 'completed', 'cancelled')),
    created_by   INTEGER REFERENCES participants (id),
    created_at   INTEGER NOT NULL,
    cancelled_at INTEGER
);
CREATE INDEX dr_events_by_time ON dr_events (starts_at);

CREATE TABLE dr_reports (
    event_id    INTEGER NOT NULL REFERENCES dr_events (id),
    gateway_id  INTEGER NOT NULL REFERENCES gateways (id),
    interval_id INTEGER NOT NULL,
    baseline_w  INTEGER,
    measured_w  INTEGER NOT NULL,
    confirmed   INTEGER NOT NULL,
    note        TEXT,
    at          INTEGER NOT NULL,
    PRIMARY KEY (event_id, gateway_id, interval_id)
);

CREATE TABLE rewards (
    id             INTEGER PRIMARY KEY,
    participant_id INTEGER NOT NULL REFERENCES participants (id),
    kind           TEXT    NOT NULL CHECK (kind IN ('renewable_export', 'demand_response')),
    amount         INTEGER NOT NULL CHECK (amount > 0),
    interval_start INTEGER,
    event_id       INTEGER REFERENCES dr_events (id),
    reference      TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    minted_tx      TEXT,
    UNIQUE (participant_id, kind, reference)
);
