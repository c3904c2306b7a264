-- An API key made with another key is its child: revoking a key revokes its children too
-- (issue 17: keys made by a key used to survive that key's revocation).
ALTER TABLE api_keys ADD COLUMN parent_id TEXT REFERENCES api_keys (id);
CREATE INDEX api_keys_parent ON api_keys (parent_id);
