-- The gate-closure auction's price at each node of the feeder tree (issue 19): with a feeder
-- network each node has its own price; flow_wh is the auction's energy over the edge above the
-- node (positive: up), congestion how far the price gap across that edge exceeds its grid fee
-- (positive only where the edge was full).
CREATE TABLE node_prices (
    zone             INTEGER NOT NULL,
    interval_start   INTEGER NOT NULL,
    interval_minutes INTEGER NOT NULL,
    node             INTEGER NOT NULL,
    price            INTEGER NOT NULL,
    flow_wh          INTEGER NOT NULL,
    congestion       INTEGER NOT NULL,
    PRIMARY KEY (zone, interval_start, interval_minutes, node)
);
