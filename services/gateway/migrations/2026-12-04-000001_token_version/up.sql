-- A user's token version: tokens carry it (`ver`) and are refused once it moves on. Bumped when
-- the bootstrap admin takes an account over or changes its password (ADR 0011).
ALTER TABLE identity.users ADD COLUMN token_version BIGINT NOT NULL DEFAULT 0;
