-- Which installer may commission gateways for which home: assigned by an administrator or by the
-- homeowner (issue 17: any installer could commission a gateway for any home, then trade in its
-- name).
CREATE TABLE installer_homes (
    installer_id BIGINT NOT NULL REFERENCES participants (id),
    home_id      BIGINT NOT NULL REFERENCES participants (id),
    assigned_by  BIGINT NOT NULL REFERENCES participants (id),
    assigned_at  BIGINT NOT NULL,
    PRIMARY KEY (installer_id, home_id)
);
