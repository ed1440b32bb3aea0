//! The `identity.users` table (PostgreSQL schema `identity`), the SQL `lower` it is searched
//! with, and the row read from it.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

diesel::table! {
    identity.users (id) {
        id -> Int8,
        email -> Text,
        password_hash -> Text,
        full_name -> Text,
        role -> Text,
        is_active -> Bool,
        created_at -> Timestamptz,
        token_version -> Int8,
    }
}

diesel::define_sql_function! {
    /// SQL `lower(text)`.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub(super) struct UserRow {
    pub(super) id: i64,
    pub(super) email: String,
    pub(super) password_hash: String,
    pub(super) full_name: String,
    pub(super) role: String,
    pub(super) is_active: bool,
    pub(super) created_at: DateTime<Utc>,
    pub(super) token_version: i64,
}
