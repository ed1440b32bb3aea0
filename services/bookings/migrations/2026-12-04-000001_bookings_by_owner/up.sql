-- A user's bookings in id order (ADR 0010): the production access policy lists, gets and cancels
-- bookings by (user_id, id), so one index answers each of those without reading other users' rows.
CREATE INDEX bookings_user_id_id_idx ON bookings.bookings (user_id, id);
