-- The transactional outbox of the catalog (shape documented in flightmesh-events::outbox):
-- destination events are written here in the transaction that creates the destination.
CREATE TABLE flights.outbox (
    id            BIGSERIAL   PRIMARY KEY,
    event_id      UUID        NOT NULL,
    event_type    TEXT        NOT NULL,
    aggregate_id  BIGINT      NOT NULL,
    exchange      TEXT        NOT NULL,
    routing_key   TEXT        NOT NULL,
    payload       BYTEA       NOT NULL,
    payload_json  JSONB       NOT NULL,
    traceparent   TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_until TIMESTAMPTZ,
    attempts      INTEGER     NOT NULL DEFAULT 0,
    published_at  TIMESTAMPTZ
-- Room on every page for the relay's two updates of a row (claim, then published), so that
-- they are HOT updates: the write cost of the outbox stays close to that of the insert.
) WITH (fillfactor = 50);

CREATE INDEX outbox_pending_idx ON flights.outbox (id) WHERE published_at IS NULL;
