-- The PostgreSQL roles of flightmesh: one login role per service, owner of its own schema and of
-- nothing else (docs/operations.md, "Database roles"). Run once, as a superuser (or a role with
-- CREATEROLE that owns the database), connected to the flightmesh database:
--
--   psql "postgres://admin@db.example:5432/flightmesh" -v ON_ERROR_STOP=1 --single-transaction \
--     -v database=flightmesh \
--     -v flights_role=flightmesh_flights -v flights_password="$FLIGHTS_DB_PASSWORD" \
--     -v bookings_role=flightmesh_bookings -v bookings_password="$BOOKINGS_DB_PASSWORD" \
--     -v gateway_role=flightmesh_gateway -v gateway_password="$GATEWAY_DB_PASSWORD" \
--     -f libs/db/sql/database-roles.sql
--
-- The integration tests run this same file for every test database (flightmesh-testkit's
-- TestDatabase, with role names of their own): what is documented here is what is tested.

-- Only the roles granted CONNECT below (and superusers) may connect: PUBLIC loses its default
-- CONNECT and TEMPORARY. Nobody but the owner creates objects in public (PostgreSQL < 15 let
-- every role do it); the services' migrations create nothing outside their own schema.
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- flights: the catalog and its outbox, schema flights.
CREATE ROLE :"flights_role" LOGIN PASSWORD :'flights_password';
GRANT CONNECT ON DATABASE :"database" TO :"flights_role";
CREATE SCHEMA flights AUTHORIZATION :"flights_role";

-- bookings: bookings, the seat ledger, idempotency keys and the outbox, schema bookings.
CREATE ROLE :"bookings_role" LOGIN PASSWORD :'bookings_password';
GRANT CONNECT ON DATABASE :"database" TO :"bookings_role";
CREATE SCHEMA bookings AUTHORIZATION :"bookings_role";

-- gateway: users and password hashes, schema identity.
CREATE ROLE :"gateway_role" LOGIN PASSWORD :'gateway_password';
GRANT CONNECT ON DATABASE :"database" TO :"gateway_role";
CREATE SCHEMA identity AUTHORIZATION :"gateway_role";
