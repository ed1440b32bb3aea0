-- The outbox retention purge (ADR 0007) deletes published rows older than OUTBOX_RETENTION in
-- batches: this index finds them oldest first without scanning the pending ones.
--
-- IF NOT EXISTS: bookings' databases have it already, from bookings' own migration
-- 20261205000001, which this one replaced when the index moved here for every outbox.
CREATE INDEX IF NOT EXISTS outbox_published_idx ON outbox (published_at)
    WHERE published_at IS NOT NULL;
