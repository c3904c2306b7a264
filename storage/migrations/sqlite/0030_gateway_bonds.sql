-- Whether each gateway's bond reaches the staking contract's minimum, as the service last read it
-- from chain (every 30 s): 'bonded', 'unbonded', or 'not_required' while the minimum is zero.
-- NULL: not read yet (or the incentive contracts are off). What the installer's, the
-- homeowner's, the admin's and the network page show.
ALTER TABLE gateways ADD COLUMN bond_state TEXT;
