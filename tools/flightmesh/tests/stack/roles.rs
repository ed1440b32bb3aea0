//! Each service connects as its own database role, set up by `libs/db/sql/database-roles.sql`
//! (what docs/operations.md, "Database roles", tells operators to run; the test mesh runs the same
//! file): it migrates and serves its own schema, cannot read another service's, and nothing lands
//! in `public`.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh::testing::TestMesh;
use flightmesh_runtime::config::Secret;
use flightmesh_testkit::ServiceRole;
use serde_json::json;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Owned {
    #[diesel(sql_type = Text)]
    schema: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    owner: String,
}

async fn connect(url: &str) -> AsyncPgConnection {
    AsyncPgConnection::establish(url)
        .await
        .expect("connect to the test database")
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> Result<i64, String> {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .map(|row| row.n)
        .map_err(|err| err.to_string())
}

/// The connection of `service`'s role.
fn as_role(
    roles: &mut [(ServiceRole, AsyncPgConnection)],
    service: ServiceRole,
) -> &mut AsyncPgConnection {
    roles
        .iter_mut()
        .find_map(|(s, conn)| (*s == service).then_some(conn))
        .expect("a connection per role")
}

/// The error of `sql`, which must fail.
async fn refused(conn: &mut AsyncPgConnection, sql: &str) -> String {
    match diesel::sql_query(sql).execute(conn).await {
        Ok(_) => panic!("{sql} should be refused"),
        Err(err) => err.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn each_service_role_migrates_and_serves_only_its_own_schema() {
    // The mesh starts with MIGRATE_ON_START: every service migrated as its own role.
    let mesh = TestMesh::start().await;
    let destination = mesh.destination("Cartagena", 50.0, true, true).await;
    let flight = mesh.flight("CT-1", 100.0, destination, 10).await;
    let (status, body) = mesh
        .post(
            "/api/v1/bookings/",
            &json!({"passenger_name": "Ana", "passenger_age": 30, "flight_id": flight}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = mesh
        .post(
            "/api/v1/auth/register",
            &json!({"email": "ana@example.com", "password": "correct horse battery", "full_name": "Ana"}),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");

    let mut admin = connect(mesh.db.url()).await;
    // Everything the migrations made (diesel's bookkeeping included) is in the three schemas and
    // owned by the schema's role: the roles migrated.
    let owned: Vec<Owned> = diesel::sql_query(
        "SELECT n.nspname AS schema, c.relname AS name, pg_get_userbyid(c.relowner)::text AS owner \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') \
         AND c.relkind IN ('r', 'p', 'S', 'v', 'm') ORDER BY 1, 2",
    )
    .load(&mut admin)
    .await
    .unwrap();
    assert!(!owned.is_empty());
    for service in ServiceRole::ALL {
        let schema = service.schema();
        assert!(
            owned
                .iter()
                .any(|o| o.schema == schema && o.name == "__diesel_schema_migrations"),
            "diesel's migrations table is in {schema}"
        );
    }
    for o in &owned {
        let service = ServiceRole::ALL
            .into_iter()
            .find(|s| s.schema() == o.schema)
            .unwrap_or_else(|| panic!("{}.{} is outside the services' schemas", o.schema, o.name));
        assert_eq!(o.owner, mesh.db.role(service), "{}.{}", o.schema, o.name);
    }
    let in_public = count(
        &mut admin,
        "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public'",
    )
    .await
    .unwrap();
    assert_eq!(in_public, 0, "nothing in public");

    // Each role reads its own schema.
    let mut roles = Vec::new();
    for service in ServiceRole::ALL {
        roles.push((service, connect(&mesh.db.service_url(service)).await));
    }
    let own = [
        (ServiceRole::Flights, "flights.flights"),
        (ServiceRole::Bookings, "bookings.bookings"),
        (ServiceRole::Gateway, "identity.users"),
    ];
    for (service, table) in own {
        let conn = as_role(&mut roles, service);
        let sql = format!("SELECT count(*) AS n FROM {table}");
        assert_eq!(count(conn, &sql).await, Ok(1), "{sql}");
    }

    // And no other: the gateway cannot read bookings, bookings cannot read identity, flights
    // neither.
    let foreign = [
        (ServiceRole::Gateway, "bookings.bookings", "bookings"),
        (ServiceRole::Gateway, "flights.flights", "flights"),
        (ServiceRole::Bookings, "identity.users", "identity"),
        (ServiceRole::Bookings, "flights.flights", "flights"),
        (ServiceRole::Flights, "bookings.bookings", "bookings"),
        (ServiceRole::Flights, "identity.users", "identity"),
    ];
    for (service, table, schema) in foreign {
        let conn = as_role(&mut roles, service);
        let err = count(conn, &format!("SELECT count(*) AS n FROM {table}"))
            .await
            .expect_err(table);
        assert_eq!(
            err,
            format!("permission denied for schema {schema}"),
            "{service:?} reading {table}"
        );
    }

    // Nobody creates anything outside its schema.
    for (service, conn) in &mut roles {
        let err = refused(conn, "CREATE TABLE public.intruder (id INT)").await;
        assert_eq!(err, "permission denied for schema public", "{service:?}");
        let err = refused(conn, "CREATE SCHEMA intruder").await;
        assert!(
            err.starts_with("permission denied for database"),
            "{service:?}: {err}"
        );
    }

    // Migrating again as the role: nothing pending, and no CREATE SCHEMA needed.
    let flights_url = Secret::new(mesh.db.service_url(ServiceRole::Flights));
    let applied = flightmesh_db::migrate(
        &flights_url,
        flightmesh_flights::SCHEMA,
        flightmesh_flights::MIGRATIONS,
    )
    .await
    .unwrap();
    assert!(applied.is_empty(), "{applied:?}");
    // A role cannot migrate another service's schema, nor make a schema of its own.
    let err = flightmesh_db::migrate(
        &flights_url,
        flightmesh_bookings::SCHEMA,
        flightmesh_bookings::MIGRATIONS,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("may not create objects in schema bookings"),
        "{err}"
    );
    let err = flightmesh_db::migrate(
        &flights_url,
        "flights_elsewhere",
        flightmesh_flights::MIGRATIONS,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("cannot create it") && err.contains("libs/db/sql/database-roles.sql"),
        "{err}"
    );

    mesh.stop().await;
}
