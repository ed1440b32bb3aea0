ALTER TABLE identity.users DROP COLUMN token_version;
