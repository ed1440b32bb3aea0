-- Semantic destination search: the description belongs to the catalog, and so do the
-- embeddings of it. One vector per destination, of the model that produced it; search compares
-- only vectors of one model and dimension (ADR 0012).

ALTER TABLE flights.destinations
    ADD COLUMN description TEXT NOT NULL DEFAULT '';

CREATE TABLE flights.destination_embeddings (
    destination_id BIGINT      PRIMARY KEY
        CONSTRAINT destination_embeddings_destination_id_fkey REFERENCES flights.destinations (id),
    model          TEXT        NOT NULL CHECK (btrim(model) <> ''),
    dimensions     INTEGER     NOT NULL CHECK (dimensions BETWEEN 1 AND 4096),
    -- L2-normalised components.
    vector         REAL[]      NOT NULL CHECK (cardinality(vector) = dimensions),
    -- The writer's clock time (not the transaction's start): the in-memory index reads the
    -- rows changed since its last look by this column.
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- Loading one model's vectors, and the index's incremental refresh.
CREATE INDEX destination_embeddings_model_idx
    ON flights.destination_embeddings (model, dimensions);
CREATE INDEX destination_embeddings_updated_at_idx
    ON flights.destination_embeddings (updated_at);
