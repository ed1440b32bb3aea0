DROP INDEX bookings.bookings_user_id_id_idx;
