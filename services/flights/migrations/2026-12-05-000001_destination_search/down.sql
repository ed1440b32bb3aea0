DROP TABLE flights.destination_embeddings;
ALTER TABLE flights.destinations DROP COLUMN description;
