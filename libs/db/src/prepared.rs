//! Raw SQL that PostgreSQL parses and plans once per connection.
//!
//! `diesel::sql_query` marks every statement "unsafe to cache", so PostgreSQL parses and plans a
//! raw statement on every execution — for the bookings statement (a four-step CTE) that was most
//! of the database's CPU. [`prepared`] is the same builder (SQL text with `$n` placeholders, then
//! typed binds in order) but lets diesel's statement cache keep the prepared statement, keyed by
//! the SQL text. Use it for hot statements whose text does not vary with the input.
//!
//! A placeholder may appear several times (`$15 … $15`); the text must hold no other `$`
//! (no dollar-quoted bodies).

use std::borrow::Cow;

use diesel::QueryResult;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};

/// A statement with its binds; build it with [`prepared`] and [`Prepared::bind`].
#[derive(Debug, Clone)]
#[must_use]
pub struct Prepared<'a, B> {
    sql: Cow<'a, str>,
    binds: B,
}

/// Starts a cacheable statement. The text must not depend on the input (use binds).
pub fn prepared<'a>(sql: impl Into<Cow<'a, str>>) -> Prepared<'a, ()> {
    Prepared {
        sql: sql.into(),
        binds: (),
    }
}

/// One bound value of SQL type `ST`.
#[derive(Debug, Clone)]
pub struct Bind<ST, U> {
    value: U,
    sql_type: std::marker::PhantomData<ST>,
}

impl<'a, B> Prepared<'a, B> {
    /// Binds the next `$n` placeholder.
    pub fn bind<ST, U>(self, value: U) -> Prepared<'a, (B, Bind<ST, U>)> {
        Prepared {
            sql: self.sql,
            binds: (
                self.binds,
                Bind {
                    value,
                    sql_type: std::marker::PhantomData,
                },
            ),
        }
    }
}

/// The bound values, addressable by position.
pub trait Binds {
    /// How many values are bound.
    fn len(&self) -> usize;

    /// Whether nothing is bound.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pushes value number `n` (0-based) as a bind parameter.
    fn push<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

impl Binds for () {
    fn len(&self) -> usize {
        0
    }

    fn push<'b>(&'b self, n: usize, _out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        Err(diesel::result::Error::QueryBuilderError(
            format!("no bind value for ${}", n + 1).into(),
        ))
    }
}

impl<B, ST, U> Binds for (B, Bind<ST, U>)
where
    B: Binds,
    Pg: HasSqlType<ST>,
    U: ToSql<ST, Pg>,
{
    fn len(&self) -> usize {
        self.0.len() + 1
    }

    fn push<'b>(&'b self, n: usize, out: &mut AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if n == self.0.len() {
            out.push_bind_param::<ST, U>(&self.1.value)
        } else {
            self.0.push(n, out)
        }
    }
}

impl<B: Binds> QueryFragment<Pg> for Prepared<'_, B> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        // Unlike `sql_query`, no `unsafe_to_cache_prepared`: the cache keys the statement by its
        // text. diesel writes a placeholder for every bind it is given, so the text is pushed in
        // pieces with the binds in between, in the order the placeholders appear. diesel walks a
        // query several times per execution, so the scan jumps from `$` to `$` (a memchr).
        let sql = self.sql.as_ref();
        let bytes = sql.as_bytes();
        let mut start = 0;
        let mut i = 0;
        while let Some(offset) = sql[i..].find('$') {
            i += offset;
            let digits = bytes[i + 1..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == 0 {
                i += 1;
                continue;
            }
            let n: usize = sql[i + 1..i + 1 + digits]
                .parse()
                .map_err(|_| diesel::result::Error::QueryBuilderError("bad placeholder".into()))?;
            out.push_sql(&sql[start..i]);
            self.binds
                .push(n.checked_sub(1).unwrap_or(usize::MAX), &mut out)?;
            i += 1 + digits;
            start = i;
        }
        out.push_sql(&sql[start..]);
        Ok(())
    }
}

impl<B> QueryId for Prepared<'_, B> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<B> Query for Prepared<'_, B> {
    type SqlType = Untyped;
}

impl<B, Conn> diesel::RunQueryDsl<Conn> for Prepared<'_, B> {}

#[cfg(test)]
mod tests {
    use diesel::sql_types::{BigInt, Text};

    use super::*;

    #[test]
    fn placeholders_become_binds_in_order_and_repeat() {
        let query = prepared("SELECT $1::text, $2, $1::text || 'x' FROM t WHERE id = $2")
            .bind::<Text, _>("a")
            .bind::<BigInt, _>(7_i64);
        let rendered = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(
            rendered.starts_with("SELECT $1::text, $2, $3::text || 'x' FROM t WHERE id = $4"),
            "{rendered}"
        );
        assert!(
            rendered.contains(r#"binds: ["a", 7, "a", 7]"#),
            "{rendered}"
        );
    }

    #[test]
    fn a_dollar_without_digits_is_text() {
        let query = prepared("SELECT '$x', $1, 'US$' || $1, '$'").bind::<Text, _>("a");
        let rendered = diesel::debug_query::<Pg, _>(&query).to_string();
        assert!(
            rendered.starts_with("SELECT '$x', $1, 'US$' || $2, '$'"),
            "{rendered}"
        );
        assert!(rendered.contains(r#"binds: ["a", "a"]"#), "{rendered}");
    }

    #[test]
    fn a_missing_bind_is_an_error_not_a_panic() {
        let query = prepared("SELECT $2").bind::<BigInt, _>(1_i64);
        let mut builder = diesel::pg::PgQueryBuilder::default();
        let result = QueryFragment::<Pg>::to_sql(&query, &mut builder, &Pg);
        assert!(result.is_err());
    }
}
