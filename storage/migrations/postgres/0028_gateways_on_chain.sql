-- When the service found each gateway's key in the registry on chain (market time, ms): with the
-- incentive contracts deployed the chain is the authority on gateways, and the intake refuses a
-- gateway commissioned in the market until its key is there. NULL: not (yet) seen on chain.
ALTER TABLE gateways ADD COLUMN on_chain_at BIGINT;
