//! The catalog in PostgreSQL. Uniqueness and existence are left to constraints (no
//! check-then-insert races): a violated constraint becomes the matching domain error.

use diesel::dsl::{Limit, avg, count_star, sum};
use diesel::prelude::*;
use diesel_async::methods::LoadQuery;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh_db::{DbError, PgConn, PgPool, Violation, constraint_violation};
use flightmesh_events::outbox;
use flightmesh_runtime::status::{Fault, Page};
use rust_decimal::Decimal;

use crate::error::Error;
use crate::events::{OUTBOX, destination_created, record_catalog_changed};
use crate::schema::{destinations, flights};
use crate::validate::{NewDestination, NewFlight};

/// A destination row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = destinations)]
pub struct DestinationRow {
    pub id: i64,
    pub name: String,
    pub tax_amount: Decimal,
    pub is_promotion: bool,
    pub allows_pets: bool,
    pub description: String,
}

/// A flight row.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = flights)]
pub struct FlightRow {
    pub id: i64,
    pub flight_number: String,
    pub origin: String,
    pub base_price: Decimal,
    pub destination_id: i64,
    pub capacity: i32,
}

/// Aggregates over the flights to one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarketRow {
    pub flight_count: i64,
    pub average_base_price: Option<Decimal>,
    pub total_capacity: i64,
    pub flight_ids: Vec<i64>,
}

/// Data access for the catalog.
#[derive(Clone)]
pub struct Store {
    pool: PgPool,
    /// Where catalog events go.
    exchange: String,
}

impl Store {
    pub fn new(pool: PgPool, exchange: String) -> Self {
        Self { pool, exchange }
    }

    /// The pool (the embedding index reads through it).
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Where catalog events go.
    #[must_use]
    pub fn exchange(&self) -> &str {
        &self.exchange
    }

    /// The destinations with these ids, in any order (unknown ids are left out).
    pub async fn destinations_by_id(&self, ids: &[i64]) -> Result<Vec<DestinationRow>, Error> {
        self.load(
            destinations::table
                .filter(destinations::id.eq_any(ids.to_vec()))
                .select(DestinationRow::as_select()),
        )
        .await
    }

    async fn conn(&self) -> Result<PgConn<'_>, Error> {
        Ok(self.pool.get().await.map_err(DbError::from)?)
    }

    /// Every row `query` selects (a read: retried once on a connection found broken). The query
    /// owns its binds (`'static`): it is built once and cloned for each attempt.
    async fn load<Q, U>(&self, query: Q) -> Result<Vec<U>, Error>
    where
        Q: LoadQuery<'static, AsyncPgConnection, U> + Clone + Send + Sync + 'static,
        U: Send,
    {
        Ok(flightmesh_db::read(&self.pool, async |conn| query.clone().load(conn).await).await?)
    }

    /// The first row `query` selects, `missing` when there is none (a read, as [`Self::load`]).
    async fn first<Q, U>(&self, query: Q, missing: Error) -> Result<U, Error>
    where
        Q: diesel::query_dsl::methods::LimitDsl + Clone + Send + Sync + 'static,
        Limit<Q>: LoadQuery<'static, AsyncPgConnection, U> + Send + 'static,
        U: Send,
    {
        flightmesh_db::read(&self.pool, async |conn| {
            query.clone().first(conn).await.optional()
        })
        .await?
        .ok_or(missing)
    }

    /// Creates a destination and its `destination.created` event in one transaction.
    pub async fn create_destination(&self, new: &NewDestination) -> Result<DestinationRow, Error> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let exchange = self.exchange.clone();
        conn.transaction(async |conn: &mut AsyncPgConnection| {
            let row = insert_destination(conn, new).await?;
            outbox::insert(conn, OUTBOX, &destination_created(&row, &exchange)).await?;
            record_catalog_changed(conn, "destination", row.id, &exchange).await?;
            Ok::<_, Error>(row)
        })
        .await
    }

    pub async fn list_destinations(&self, page: Page) -> Result<Vec<DestinationRow>, Error> {
        self.load(
            destinations::table
                .select(DestinationRow::as_select())
                .order(destinations::id)
                .offset(page.offset)
                .limit(page.limit),
        )
        .await
    }

    pub async fn destination(&self, id: i64) -> Result<DestinationRow, Error> {
        let query = destinations::table
            .find(id)
            .select(DestinationRow::as_select());
        self.first(query, Error::DestinationNotFound).await
    }

    /// The destination whose name equals `name` ignoring case (the unique index's rule).
    pub async fn destination_by_name(&self, name: &str) -> Result<DestinationRow, Error> {
        let name = name.trim().to_lowercase();
        let query = destinations::table
            .filter(lower(destinations::name).eq(name))
            .select(DestinationRow::as_select());
        self.first(query, Error::DestinationNotFound).await
    }

    pub async fn create_flight(
        &self,
        new: &NewFlight,
    ) -> Result<(FlightRow, DestinationRow), Error> {
        let mut pooled = self.conn().await?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let exchange = self.exchange.clone();
        let flight = conn
            .transaction(async |conn: &mut AsyncPgConnection| {
                let flight = insert_flight(conn, new).await?;
                record_catalog_changed(conn, "flight", flight.id, &exchange).await?;
                Ok::<_, Error>(flight)
            })
            .await?;
        drop(pooled);
        // Destinations are never deleted, so the one the foreign key just checked is there.
        let destination = self.destination(flight.destination_id).await?;
        Ok((flight, destination))
    }

    pub async fn list_flights(
        &self,
        page: Page,
    ) -> Result<Vec<(FlightRow, DestinationRow)>, Error> {
        self.load(
            flights::table
                .inner_join(destinations::table)
                .select((FlightRow::as_select(), DestinationRow::as_select()))
                .order(flights::id)
                .offset(page.offset)
                .limit(page.limit),
        )
        .await
    }

    pub async fn flight(&self, id: i64) -> Result<(FlightRow, DestinationRow), Error> {
        let query = flights::table
            .inner_join(destinations::table)
            .filter(flights::id.eq(id))
            .select((FlightRow::as_select(), DestinationRow::as_select()));
        self.first(query, Error::FlightNotFound).await
    }

    /// Flight count, mean base price and seats of the flights to `destination_id`.
    pub async fn market(&self, destination_id: i64) -> Result<MarketRow, Error> {
        let mut conn = self.conn().await?;
        let to_destination = flights::table.filter(flights::destination_id.eq(destination_id));
        let (flight_count, average_base_price, total_capacity): (
            i64,
            Option<Decimal>,
            Option<i64>,
        ) = to_destination
            .select((
                count_star(),
                avg(flights::base_price),
                sum(flights::capacity),
            ))
            .first(&mut conn)
            .await?;
        let flight_ids = to_destination
            .select(flights::id)
            .order(flights::id)
            .load(&mut conn)
            .await?;
        Ok(MarketRow {
            flight_count,
            average_base_price,
            total_capacity: total_capacity.unwrap_or(0),
            flight_ids,
        })
    }

    /// Flights whose origin and destination name contain the given texts (ignoring case).
    pub async fn search_flights(
        &self,
        origin: &str,
        destination_name: &str,
        limit: i64,
    ) -> Result<Vec<(FlightRow, DestinationRow)>, Error> {
        let (origin, destination_name) =
            (contains_pattern(origin), contains_pattern(destination_name));
        self.load(
            flights::table
                .inner_join(destinations::table)
                .filter(flights::origin.ilike(origin))
                .filter(destinations::name.ilike(destination_name))
                .select((FlightRow::as_select(), DestinationRow::as_select()))
                .order(flights::id)
                .limit(limit),
        )
        .await
    }
}

/// Inserts a destination; a taken name (any case) is `DestinationExists`.
async fn insert_destination(
    conn: &mut AsyncPgConnection,
    new: &NewDestination,
) -> Result<DestinationRow, Error> {
    let insert = diesel::insert_into(destinations::table)
        .values((
            destinations::name.eq(&new.name),
            destinations::tax_amount.eq(new.tax_amount),
            destinations::is_promotion.eq(new.is_promotion),
            destinations::allows_pets.eq(new.allows_pets),
            destinations::description.eq(&new.description),
        ))
        .returning(DestinationRow::as_returning());
    insert_one(conn, insert, |violation| match violation {
        Violation::Unique("destinations_name_key") => Some(Error::DestinationExists {
            name: new.name.clone(),
        }),
        _ => None,
    })
    .await
}

/// Inserts a flight; a taken flight number is `FlightExists`, an unknown destination
/// `DestinationNotFound`.
async fn insert_flight(conn: &mut AsyncPgConnection, new: &NewFlight) -> Result<FlightRow, Error> {
    let insert = diesel::insert_into(flights::table)
        .values((
            flights::flight_number.eq(&new.flight_number),
            flights::origin.eq(&new.origin),
            flights::base_price.eq(new.base_price),
            flights::destination_id.eq(new.destination_id),
            flights::capacity.eq(new.capacity),
        ))
        .returning(FlightRow::as_returning());
    insert_one(conn, insert, |violation| match violation {
        Violation::Unique("flights_flight_number_key") => Some(Error::FlightExists {
            flight_number: new.flight_number.clone(),
        }),
        Violation::ForeignKey("flights_destination_id_fkey") => Some(Error::DestinationNotFound),
        _ => None,
    })
    .await
}

/// Runs an `INSERT … RETURNING` of one row. A violated constraint is the error `conflict` makes
/// of it; one it makes nothing of, like any other failure, is a database error.
// Not an `async fn`: the future is declared `Send` here, which the transactions that await it
// need and the compiler cannot infer for them through the generic query.
fn insert_one<'a, Q, T>(
    conn: &'a mut AsyncPgConnection,
    insert: Q,
    conflict: impl FnOnce(Violation<'_>) -> Option<Error> + Send + 'a,
) -> impl Future<Output = Result<T, Error>> + Send + 'a
where
    Q: LoadQuery<'a, AsyncPgConnection, T> + 'a,
    T: Send + 'a,
{
    let rows = insert.get_results(conn);
    async move {
        rows.await
            .map_err(|err| match constraint_violation(&err).and_then(conflict) {
                Some(error) => error,
                None => err.into(),
            })?
            .pop()
            .ok_or_else(|| Error::from(Fault::internal("INSERT … RETURNING returned no row")))
    }
}

diesel::define_sql_function! {
    /// SQL `lower(text)`.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// `%text%` for ILIKE, with the pattern characters of `text` escaped.
fn contains_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.trim().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::contains_pattern;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(contains_pattern(" Bog "), "%Bog%");
        assert_eq!(contains_pattern("50%_off"), "%50\\%\\_off%");
        assert_eq!(contains_pattern(""), "%%");
    }
}
