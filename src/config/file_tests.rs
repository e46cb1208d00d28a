//! Tests of [`super`]: precedence, bad keys and values, and what `config print` shows.

use clap::parser::ValueSource;

use super::*;
use crate::config::{print, LogFormat};

/// A configuration file with `text` in a fresh temporary directory.
struct TempConfig {
    dir: PathBuf,
    path: PathBuf,
}

impl TempConfig {
    fn new(text: &str) -> TempConfig {
        let dir = std::env::temp_dir().join(format!("theraroom-config-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("theraroom.toml");
        std::fs::write(&path, text).unwrap();
        TempConfig { dir, path }
    }

    /// `theraroom --config <file> <args>`.
    fn load(&self, args: &[&str]) -> Result<Loaded, LoadError> {
        let mut argv: Vec<OsString> = vec!["theraroom".into(), "--config".into()];
        argv.push(self.path.clone().into());
        argv.extend(args.iter().map(OsString::from));
        load(argv)
    }

    /// The message of the file error `args` end in.
    fn file_error(&self, args: &[&str]) -> String {
        match self.load(args) {
            Err(LoadError::File(message)) => message,
            other => panic!("expected a file error, got {other:?}"),
        }
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn flags_beat_the_file_and_the_file_beats_defaults() {
    let config = TempConfig::new(
        r#"
        bind = "127.0.0.1:9090"
        rtc-port = 8000
        max_connections = 5
        turn_uris = ["turn:a.example:3478", "stun:b.example:3478"]
        hsts = true
        log_format = "json"
        tls_hostname = ["room.lan"]
        "#,
    );
    let loaded = config.load(&["--rtc-port", "9000", "serve"]).unwrap();
    let settings = &loaded.cli.settings;
    assert_eq!(settings.rtc_port, 9000);
    assert_eq!(settings.bind.to_string(), "127.0.0.1:9090");
    assert_eq!(settings.max_connections, 5);
    assert_eq!(settings.max_connections_per_ip, 50);
    assert_eq!(
        settings.turn_uris,
        ["turn:a.example:3478", "stun:b.example:3478"]
    );
    assert!(settings.hsts);
    assert_eq!(settings.log_format, LogFormat::Json);
    assert_eq!(settings.tls_hostnames, ["room.lan"]);
    let source = |id: &str| loaded.matches.value_source(id);
    assert_eq!(source("rtc_port"), Some(ValueSource::CommandLine));
    assert_eq!(source("max_connections"), Some(ValueSource::DefaultValue));
    let file = loaded.file.as_ref().unwrap();
    assert!(file.gave("max_connections") && file.gave("tls_hostnames"));
    assert!(!file.gave("max_connections_per_ip"));
}

#[test]
fn the_environment_beats_the_file_and_flags_beat_the_environment() {
    // The only test that sets this variable (no other test reads the setting).
    const VAR: &str = "THERAROOM_MAX_CONNECTIONS_PER_IP";
    let config = TempConfig::new("max_connections_per_ip = 7\nmax_connections = 70\n");
    std::env::set_var(VAR, "11");
    let from_env = config.load(&[]).map(|l| l.cli.settings);
    let from_flag = config
        .load(&["--max-connections-per-ip", "13"])
        .map(|l| l.cli.settings);
    std::env::remove_var(VAR);
    let from_env = from_env.unwrap();
    assert_eq!(from_env.max_connections_per_ip, 11);
    assert_eq!(from_env.max_connections, 70);
    assert_eq!(from_flag.unwrap().max_connections_per_ip, 13);
}

#[test]
fn unknown_and_repeated_keys_are_errors_naming_them() {
    let message = TempConfig::new("rtc_prot = 1\n").file_error(&[]);
    assert!(message.contains("unknown key `rtc_prot`"), "{message}");
    assert!(message.contains("theraroom.toml"), "{message}");
    // `--config` itself is no setting; nor are subcommand options.
    let message = TempConfig::new("ttl = \"1h\"\n").file_error(&[]);
    assert!(message.contains("unknown key `ttl`"), "{message}");
    let message = TempConfig::new("data_dir = \"a\"\ndata-dir = \"b\"\n").file_error(&[]);
    assert!(message.contains("same setting"), "{message}");
}

#[test]
fn wrong_types_name_the_key_and_the_expected_type() {
    let cases = [
        (
            "rtc_port = \"abc\"",
            "`rtc_port` must be an integer, not a string",
        ),
        ("hsts = 1", "`hsts` must be a boolean, not an integer"),
        (
            "turn_uris = \"turn:x\"",
            "`turn_uris` must be an array of strings, not a string",
        ),
        (
            "turn_uris = [1]",
            "`turn_uris` must be an array of strings, not an array",
        ),
        ("bind = 8080", "`bind` must be a string, not an integer"),
        (
            "[rtc_port]\nvalue = 1",
            "`rtc_port` must be an integer, not a table",
        ),
    ];
    for (text, expected) in cases {
        let message = TempConfig::new(text).file_error(&[]);
        assert!(message.contains(expected), "{text}: {message}");
    }
}

#[test]
fn values_are_checked_like_flags_naming_the_key() {
    let cases = [
        (
            "bind = \"nowhere\"",
            "`bind` has an invalid value \"nowhere\"",
        ),
        (
            "rtc_port = 70000",
            "`rtc_port` has an invalid value \"70000\"",
        ),
        ("rtc_public_ips = [\"1.2.3.4\", \"x\"]", "`rtc_public_ips`"),
        ("log_format = \"xml\"", "expected one of text, json"),
    ];
    for (text, expected) in cases {
        let message = TempConfig::new(text).file_error(&[]);
        assert!(message.contains(expected), "{text}: {message}");
    }
}

#[test]
fn a_missing_or_broken_file_is_an_error() {
    let config = TempConfig::new("");
    std::fs::remove_file(&config.path).unwrap();
    let message = config.file_error(&[]);
    assert!(message.contains("cannot read it"), "{message}");
    let message = TempConfig::new("bind = ").file_error(&[]);
    assert!(message.contains("not valid TOML"), "{message}");
    // No file asked for: built-in defaults, nothing read.
    let loaded = load(["theraroom", "migrate"]).unwrap();
    assert!(loaded.file.is_none());
    assert_eq!(loaded.cli.settings.rtc_port, 7882);
}

#[test]
fn print_masks_secrets_and_names_sources() {
    let jwt = "jwt-secret-from-the-file-0123456789abcdef";
    let config = TempConfig::new(&format!(
        "jwt_secret = \"{jwt}\"\n\
         database_url = \"postgres://app:pa55word@db.internal/theraroom\"\n\
         rtc_workers = 2\n"
    ));
    let loaded = config
        .load(&["config", "print", "--rtc-port", "9999"])
        .unwrap();
    let text = print::render(&loaded.matches, loaded.file.as_ref());
    assert!(!text.contains(jwt) && !text.contains("pa55word"), "{text}");
    let file = format!("# file {}", config.path.display());
    let expected = [
        format!("jwt_secret = \"{}\"  {file}, masked", secret::MASK),
        format!(
            "database_url = \"postgres://app:{}@db.internal/theraroom\"  {file}, masked",
            secret::MASK
        ),
        format!("rtc_workers = 2  {file}"),
        "rtc_port = 9999  # flag --rtc-port".to_string(),
        "bind = \"127.0.0.1:8080\"  # default".to_string(),
        "hsts = false  # default".to_string(),
        "log_format = \"text\"  # default".to_string(),
        "# turn_secret is not set  # default".to_string(),
    ];
    for line in expected {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    // The report is TOML again, with every setting that has a value.
    let table: toml::Table = toml::from_str(&text).unwrap();
    assert_eq!(table["rtc_port"].as_integer(), Some(9999));
    assert_eq!(table["max_token_ttl"].as_str(), Some("24h"));
    assert!(!table.contains_key("turn_secret"));
}
