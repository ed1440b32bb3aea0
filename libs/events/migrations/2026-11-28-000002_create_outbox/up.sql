-- The transactional outbox of the schema being migrated (`flightmesh_db::migrate` sets the
-- search_path to it): every service that publishes events writes them here, in the transaction
-- that makes the change, and its relay publishes them (flightmesh-events::relay).
--
-- IF NOT EXISTS: bookings' first migration created this table itself before the table moved
-- here, so on its databases this migration finds it and leaves it as it is.
CREATE TABLE IF NOT EXISTS outbox (
    id            BIGSERIAL   PRIMARY KEY,
    event_id      UUID        NOT NULL,
    event_type    TEXT        NOT NULL,
    aggregate_id  BIGINT      NOT NULL,
    exchange      TEXT        NOT NULL,
    routing_key   TEXT        NOT NULL,
    -- The protobuf message published.
    payload       BYTEA       NOT NULL,
    -- The same event for people and REST listings (bookings serves it as GET /bookings/events).
    payload_json  JSONB       NOT NULL,
    traceparent   TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- A relay is publishing the row until then.
    claimed_until TIMESTAMPTZ,
    attempts      INTEGER     NOT NULL DEFAULT 0,
    -- Confirmed by the broker.
    published_at  TIMESTAMPTZ
-- Room on every page for the relay's two updates of a row (claim, then published), so that
-- they are HOT updates: the write cost of the outbox stays close to that of the insert.
) WITH (fillfactor = 50);

CREATE INDEX IF NOT EXISTS outbox_pending_idx ON outbox (id) WHERE published_at IS NULL;
