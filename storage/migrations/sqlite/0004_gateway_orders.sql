-- A gateway names its orders with its own ids; the market gives each its own. The link is kept
-- here so a gateway can cancel by its id, and hear of its fills under it, across restarts.
CREATE TABLE gateway_orders (
    gateway_id      BIGINT NOT NULL REFERENCES gateways (id),
    client_order_id BIGINT NOT NULL,
    order_id        BIGINT NOT NULL UNIQUE,
    PRIMARY KEY (gateway_id, client_order_id)
);
