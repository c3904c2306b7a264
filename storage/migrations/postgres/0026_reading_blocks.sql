-- Readings rolled up in five-minute blocks (issue 20: an epoch of 1,000 homes must be computed in
-- a second, and reading back every sample of the day does not fit). One row per gateway, device and
-- block of 300,000 ms of `at` (`block` = at / 300000), kept up to date in the transaction that
-- stores the readings:
-- - `periods`: bit i set when the device has a reading in the block's i-th five-second slice
--   (i = (at % 300000) / 5000, 0..59), whichever its kind or quality; the uptime share is counted
--   from these, in periods that are a whole number of slices;
-- - `export_max`: the highest export counter among the block's grid-meter readings not marked
--   suspect (NULL when there is none); an interval's export is counted from these, intervals
--   being whole numbers of blocks (5, 15 or 60 minutes).
-- Both are idempotent to keep up (bitwise or, max), so a re-sent envelope changes nothing. The key
-- begins with the block: an epoch reads a range of blocks.
CREATE TABLE reading_blocks (
    gateway_id BIGINT NOT NULL REFERENCES gateways (id),
    device     TEXT    NOT NULL,
    block      BIGINT NOT NULL,
    periods    BIGINT NOT NULL,
    export_max BIGINT ,
    PRIMARY KEY (block, gateway_id, device)
);

-- The readings stored before this migration.
INSERT INTO reading_blocks (gateway_id, device, block, periods, export_max)
SELECT gateway_id, device, at / 300000 AS block,
       bit_or(CAST(1 AS BIGINT) << CAST((at % 300000) / 5000 AS INTEGER)) AS periods,
       max(CASE WHEN kind = 'grid_meter' AND quality <> 'suspect' THEN energy_out_wh END) AS export_max
FROM readings GROUP BY gateway_id, device, at / 300000;
