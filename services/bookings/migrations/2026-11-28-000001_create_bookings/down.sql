DROP TABLE bookings.idempotency_keys;
DROP TABLE bookings.bookings;
DROP TABLE bookings.flight_seats;
DROP SEQUENCE bookings.booking_id_blocks;
