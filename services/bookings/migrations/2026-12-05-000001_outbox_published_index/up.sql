-- The outbox retention purge (ADR 0007) deletes published rows older than OUTBOX_RETENTION in
-- batches: this index finds them oldest first without scanning the pending ones.
CREATE INDEX outbox_published_idx ON bookings.outbox (published_at) WHERE published_at IS NOT NULL;
