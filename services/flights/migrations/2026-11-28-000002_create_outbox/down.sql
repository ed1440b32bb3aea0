DROP TABLE flights.outbox;
