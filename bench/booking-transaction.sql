-- pgbench script: the statement the bookings service runs to create a booking (services/bookings
-- src/store.rs, BOOK_SQL): take a seat, insert the booking, insert its outbox event, in one
-- statement and one round trip, committed by itself. The service also sends an Idempotency-Key
-- insert when the client gave a key; the load generator does not, and neither does this script.
-- Variables: :flights (how many flights the load spreads over; 1 = one hot flight).
\set flight random(1, :flights)
\set age random(0, 90)
WITH seat AS (
    INSERT INTO bookings.flight_seats AS s (flight_id, capacity, seats_taken) VALUES (:flight, 2000000000, 1)
    ON CONFLICT (flight_id) DO UPDATE SET seats_taken = s.seats_taken + 1
    WHERE s.seats_taken < s.capacity
    RETURNING s.flight_id
), booking AS (
    INSERT INTO bookings.bookings (id, passenger_name, passenger_age, has_pet, flight_id, flight_number,
        destination_id, destination_name, base_price, discount, tax_amount, total_price, user_id, created_at)
    SELECT nextval('bookings.booking_id_blocks'), 'Pasajero pgbench', :age, false, seat.flight_id,
        'PGB-' || :flight, 1, 'Cartagena', 1000.00, 100.00, 50.00, 950.00, NULL, now() FROM seat
    RETURNING id
), event AS (
    INSERT INTO bookings.outbox (event_id, event_type, aggregate_id, exchange, routing_key, payload,
        payload_json, traceparent, created_at)
    SELECT gen_random_uuid(), 'booking.created', booking.id, 'flightmesh.bookings', 'booking.created',
        '\x0a2430313933643262612d653430382d373030302d383030302d303030303030303030303031120f626f6f6b696e672e63726561746564',
        '{"event_type": "booking.created", "passenger_name": "Pasajero pgbench", "total_price": "950.00"}', NULL, now()
    FROM booking
    RETURNING id
), claim AS (
    INSERT INTO bookings.idempotency_keys (scope, key, fingerprint, booking_id)
    SELECT NULL, NULL, NULL, booking.id FROM booking WHERE NULL::text IS NOT NULL
    RETURNING booking_id
)
SELECT count(*) AS booked FROM event;
