-- The custodial account of each participant: the address whose key the service derives from its
-- custody seed (`gridshare_domain::accounts::Custody`). Assigned once and never changed (funds and
-- rewards are paid there); unique, so two participants can never share one.
ALTER TABLE participants ADD COLUMN custody_address TEXT;
CREATE UNIQUE INDEX participants_custody_address ON participants (custody_address);
