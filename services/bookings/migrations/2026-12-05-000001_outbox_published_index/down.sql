DROP INDEX bookings.outbox_published_idx;
