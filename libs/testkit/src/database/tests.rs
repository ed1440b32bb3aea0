//! Unit tests of `database`.

use super::*;

#[test]
fn psql_variables_are_quoted_as_psql_quotes_them() {
    let sql = "-- a comment with :'ignored'\nCREATE ROLE :\"role\" PASSWORD :'password';";
    let out = psql_substitute(sql, &[("role", "we\"ird"), ("password", "it's")]);
    assert_eq!(out, "CREATE ROLE \"we\"\"ird\" PASSWORD 'it''s';");
}

#[test]
#[should_panic(expected = "a psql variable the test setup does not give")]
fn an_unknown_variable_is_refused() {
    let _ = psql_substitute("GRANT CONNECT ON DATABASE :\"database\" TO x;", &[]);
}

#[test]
fn the_operators_sql_uses_exactly_the_variables_the_test_databases_give() {
    let mut names = vec![("database".to_owned(), "d")];
    for service in ServiceRole::ALL {
        names.push((format!("{}_role", service.name()), "r"));
        names.push((format!("{}_password", service.name()), "p"));
    }
    let vars: Vec<(&str, &str)> = names.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    let out = psql_substitute(DATABASE_ROLES_SQL, &vars);
    for service in ServiceRole::ALL {
        assert!(out.contains(&format!(
            "CREATE SCHEMA {} AUTHORIZATION \"r\";",
            service.schema()
        )));
    }
}

#[test]
fn service_urls_keep_the_admin_host_and_replace_the_credentials() {
    let url = url_as(
        DEFAULT_ADMIN_URL,
        "fm_test_x_flights",
        "secret",
        "fm_test_x",
    );
    assert!(
        url.starts_with("postgres://fm_test_x_flights:secret@"),
        "{url}"
    );
    assert!(url.ends_with("/fm_test_x"), "{url}");
    assert!(!url.contains("postgres@"), "{url}");
}
