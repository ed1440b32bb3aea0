-- The catalog. Runs with search_path = flights (see flightmesh-db::migrate); names are qualified
-- anyway so the file reads the same everywhere.

CREATE TABLE flights.destinations (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT           NOT NULL CHECK (btrim(name) <> ''),
    tax_amount   NUMERIC(12, 2) NOT NULL CHECK (tax_amount >= 0),
    is_promotion BOOLEAN        NOT NULL DEFAULT FALSE,
    allows_pets  BOOLEAN        NOT NULL DEFAULT TRUE,
    created_at   TIMESTAMPTZ    NOT NULL DEFAULT now()
);

-- One destination per name, whatever the case: "Cartagena" and "cartagena" are the same place,
-- and lookups by name (stats, AI agent) are case-insensitive.
CREATE UNIQUE INDEX destinations_name_key ON flights.destinations (lower(name));

CREATE TABLE flights.flights (
    id             BIGSERIAL PRIMARY KEY,
    flight_number  TEXT           NOT NULL CHECK (btrim(flight_number) <> ''),
    origin         TEXT           NOT NULL CHECK (btrim(origin) <> ''),
    base_price     NUMERIC(12, 2) NOT NULL CHECK (base_price > 0),
    destination_id BIGINT         NOT NULL
        CONSTRAINT flights_destination_id_fkey REFERENCES flights.destinations (id),
    capacity       INTEGER        NOT NULL DEFAULT 180 CHECK (capacity > 0),
    created_at     TIMESTAMPTZ    NOT NULL DEFAULT now()
);

-- Flight numbers are codes: "ct-123" is the same flight as "CT-123".
CREATE UNIQUE INDEX flights_flight_number_key ON flights.flights (upper(flight_number));

CREATE INDEX flights_destination_id_idx ON flights.flights (destination_id);
