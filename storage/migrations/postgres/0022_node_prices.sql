-- The gate-closure auction's price at each node of the feeder tree (issue 19): with a feeder
-- network each node has its own price; flow_wh is the auction's energy over the edge above the
-- node (positive: up), congestion how far the price gap across that edge exceeds its grid fee
-- (positive only where the edge was full).
CREATE TABLE node_prices (
    zone             BIGINT NOT NULL,
    interval_start   BIGINT NOT NULL,
    interval_minutes BIGINT NOT NULL,
    node             BIGINT NOT NULL,
    price            BIGINT NOT NULL,
    flow_wh          BIGINT NOT NULL,
    congestion       BIGINT NOT NULL,
    PRIMARY KEY (zone, interval_start, interval_minutes, node)
);
