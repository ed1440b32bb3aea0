-- Bookings, the seat ledger and idempotency keys: with the outbox (see the end), everything a
-- booking writes, so that one local transaction covers it (ADR 0003).

-- Seats taken per flight. A flight's row is created by its first booking, from the capacity the
-- flights service reported; the CHECK makes overbooking impossible even for a buggy writer.
CREATE TABLE bookings.flight_seats (
    flight_id   BIGINT  PRIMARY KEY,
    capacity    INTEGER NOT NULL CHECK (capacity > 0),
    seats_taken INTEGER NOT NULL DEFAULT 0,
    CONSTRAINT flight_seats_within_capacity CHECK (seats_taken BETWEEN 0 AND capacity)
);

-- Booking ids come in blocks of 100 (block n holds ids (n-1)*100+1 … n*100), taken by each
-- replica as it needs them: a booking's id is known before it is written, so the booking, its
-- seat and its event go to the database as ONE statement (store.rs). Ids are unique and grow,
-- but two replicas interleave and a restart leaves a gap.
CREATE SEQUENCE bookings.booking_id_blocks;

-- A booking keeps the snapshot it was sold with: flight, destination and the price breakdown.
CREATE TABLE bookings.bookings (
    id               BIGINT         PRIMARY KEY,
    passenger_name   TEXT           NOT NULL,
    passenger_age    INTEGER        NOT NULL CHECK (passenger_age BETWEEN 0 AND 150),
    has_pet          BOOLEAN        NOT NULL,
    flight_id        BIGINT         NOT NULL REFERENCES bookings.flight_seats (flight_id),
    flight_number    TEXT           NOT NULL,
    destination_id   BIGINT         NOT NULL,
    destination_name TEXT           NOT NULL,
    base_price       NUMERIC(12, 2) NOT NULL,
    discount         NUMERIC(12, 2) NOT NULL,
    tax_amount       NUMERIC(12, 2) NOT NULL,
    total_price      NUMERIC(12, 2) NOT NULL,
    status           TEXT           NOT NULL DEFAULT 'confirmed'
        CHECK (status IN ('confirmed', 'cancelled')),
    user_id          TEXT,
    created_at       TIMESTAMPTZ    NOT NULL DEFAULT now(),
    cancelled_at     TIMESTAMPTZ,
    CONSTRAINT bookings_price_adds_up CHECK (total_price = base_price - discount + tax_amount)
);


-- Idempotency-Key → the booking it created. `scope` is the user id ('' when anonymous) so that
-- two users' keys never collide. Kept at least IDEMPOTENCY_RETENTION.
CREATE TABLE bookings.idempotency_keys (
    scope       TEXT        NOT NULL,
    key         TEXT        NOT NULL,
    fingerprint TEXT        NOT NULL,
    booking_id  BIGINT      REFERENCES bookings.bookings (id),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);

CREATE INDEX idempotency_keys_created_at_idx ON bookings.idempotency_keys (created_at);

-- The transactional outbox, the last table a booking writes (also the event log served by
-- GET /bookings/events), is the migration every publishing service shares:
-- libs/events/migrations/2026-11-28-000002_create_outbox. It was created here until it moved
-- there; that migration leaves a table created here as it is.
