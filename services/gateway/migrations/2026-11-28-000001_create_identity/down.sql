DROP TABLE identity.users;
