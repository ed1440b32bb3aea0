//! Unit tests of `config`.

use super::*;

const PORT: Var = Var::new("PORT", "8080").doc("the port");
const KEY: Var = Var::optional("API_KEY").doc("a key").secret();

#[test]
fn layers_override_prefix_plain_default() {
    let env = Env::from_pairs([("PORT", "1"), ("SVC_PORT", "2")]);
    assert_eq!(env.get::<u16>(&PORT), Ok(1));
    let env = env.with_prefix("SVC_");
    assert_eq!(env.get::<u16>(&PORT), Ok(2));
    let env = env.set("PORT", "4");
    assert_eq!(env.get::<u16>(&PORT), Ok(4));
    let env = env.set("SVC_PORT", "5");
    assert_eq!(env.get::<u16>(&PORT), Ok(5));
    let env = Env::from_pairs::<&str, &str>([]).with_default("PORT", "3");
    assert_eq!(env.get::<u16>(&PORT), Ok(3));
    assert_eq!(
        Env::from_pairs::<&str, &str>([]).get::<u16>(&PORT),
        Ok(8080)
    );
}

#[test]
fn errors_name_the_variable_and_hide_secrets() {
    let err = Env::from_pairs([("PORT", "eighty")])
        .get::<u16>(&PORT)
        .unwrap_err();
    assert!(err.to_string().contains("PORT=eighty is invalid"), "{err}");

    let err = Env::from_pairs::<&str, &str>([])
        .get::<String>(&KEY)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "environment variable API_KEY is required but not set"
    );

    let err = Env::from_pairs([("API_KEY", "hunter2")])
        .get::<u16>(&KEY)
        .unwrap_err();
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[test]
fn a_reader_reports_every_invalid_variable_and_lists_what_it_read() {
    const WAIT: Var = Var::new("WAIT", "5s").doc("a wait");
    let read = |r: &mut Reader<'_>| {
        let port: u16 = r.positive(PORT);
        let wait = r.positive_duration(WAIT);
        let key = r.opt::<String>(KEY);
        (port, wait, key)
    };
    assert_eq!(
        super::read(&Env::from_pairs([("API_KEY", "k")]), read),
        Ok((8080, Duration::from_secs(5), Some("k".to_owned())))
    );

    let err = super::read(&Env::from_pairs([("PORT", "0"), ("WAIT", "soon")]), read)
        .expect_err("two invalid variables");
    let ConfigError::Several(errors) = &err else {
        panic!("both errors, not only the first: {err}");
    };
    assert_eq!(errors.len(), 2, "{err}");
    assert!(
        err.to_string()
            .contains("PORT=0 is invalid: must be positive"),
        "{err}"
    );
    assert!(err.to_string().contains("WAIT=soon is invalid"), "{err}");

    let names: Vec<_> = declared(read).iter().map(|var| var.name).collect();
    assert_eq!(names, ["PORT", "WAIT", "API_KEY"]);
}

#[test]
fn parses_durations() {
    assert_eq!("250ms".parse(), Ok(Dur(Duration::from_millis(250))));
    assert_eq!("5".parse(), Ok(Dur(Duration::from_secs(5))));
    assert_eq!("2m".parse(), Ok(Dur(Duration::from_secs(120))));
    assert!("5 parsecs".parse::<Dur>().is_err());
}

#[test]
fn secrets_never_debug_print() {
    let secret: Secret<String> = "hunter2".parse().unwrap();
    assert_eq!(format!("{secret:?}"), "<redacted>");
    assert_eq!(secret.expose(), "hunter2");
}
