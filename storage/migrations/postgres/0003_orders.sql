-- Why an order left the book; the interval length of a trade (so a trade row
-- names its delivery interval on its own).
ALTER TABLE orders ADD COLUMN reason TEXT;
ALTER TABLE trades ADD COLUMN interval_minutes BIGINT NOT NULL DEFAULT 15;
