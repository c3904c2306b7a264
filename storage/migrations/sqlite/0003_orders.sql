-- Why an order left the book; the interval length of a trade (so a trade row
-- names its delivery interval on its own).
ALTER TABLE orders ADD COLUMN reason TEXT;
ALTER TABLE trades ADD COLUMN interval_minutes INTEGER NOT NULL DEFAULT 15;
-- A settled trade's Merkle leaf and the addresses it committed to (JSON), so
-- its proof can be served later exactly as the vault verifies it.
ALTER TABLE trades ADD COLUMN onchain TEXT;
-- Account indices the vault gave to addresses (mirrored when settlement registers them), so a
-- participant's netted deltas can be found by address.
CREATE TABLE settlement_accounts (
    account_index BIGINT PRIMARY KEY,
    address       TEXT   NOT NULL UNIQUE
);
