-- Governed parameters (issue 22): every version of the on-chain parameters the service has seen,
-- with when it saw it (market time), the parameters as JSON (field names as in the contract), and
-- what it applied them to from then on. Version 0 is the deployment's initial values.
CREATE TABLE parameter_versions (
    version     BIGINT PRIMARY KEY CHECK (version >= 0),
    observed_at BIGINT  NOT NULL,
    params      TEXT    NOT NULL
);
