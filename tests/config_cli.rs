//! The built binary's configuration: `--config` files, `config print`, and the log
//! lines `serve` writes to a redirected stderr (text without escape codes, or JSON).
//! Every run gets a cleared environment, so the machine's variables play no part.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Longest the server may take to log that it listens (a cold debug binary on a busy
/// two-core machine); only bounds a hang, asserts nothing about speed.
const STARTUP_LIMIT: Duration = Duration::from_secs(120);

/// A JWT secret long enough for the server.
const JWT_SECRET: &str = "config-cli-test-jwt-secret-0123456789abcdef";
/// A data key (base64 of 32 bytes).
const DATA_KEY: &str = "Y29uZmlnLWNsaS10ZXN0LWRhdGEta2V5LTAxMjM0NTY=";

/// A fresh temporary directory, removed at the end of the test.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "theraroom-config-cli-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// Writes `text` to `name` in the directory and returns its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The binary with an empty environment plus `env`.
fn theraroom(env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_theraroom"));
    cmd.env_clear().envs(env.iter().copied());
    cmd
}

/// Runs the binary to the end.
fn run(env: &[(&str, &str)], args: &[&str]) -> Output {
    theraroom(env).args(args).output().expect("run theraroom")
}

/// stdout of a successful run.
fn stdout_of(output: Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "failed: {stderr}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn config_print_shows_every_source_and_can_be_read_back() {
    let dir = TempDir::new();
    let data_dir = dir.0.join("data");
    let config = dir.file(
        "theraroom.toml",
        &format!(
            "data_dir = {:?}\njwt_secret = \"{JWT_SECRET}\"\n\
             database_url = \"postgres://app:pa55word@db.internal/theraroom\"\n\
             turn_uris = [\"turn:a.example:3478\", \"stun:a.example:3478\"]\n\
             turn_ttl = \"2h\"\nhsts = true\n",
            data_dir.display()
        ),
    );
    let config_arg = config.to_str().unwrap();
    let env = [
        ("THERAROOM_TURN_TTL", "3h"),
        ("THERAROOM_RTC_PORT", "7000"),
        ("THERAROOM_DATA_KEY", DATA_KEY),
    ];
    let printed = stdout_of(run(
        &env,
        &[
            "--config",
            config_arg,
            "config",
            "print",
            "--rtc-port",
            "7001",
        ],
    ));
    assert!(
        !printed.contains(JWT_SECRET)
            && !printed.contains("pa55word")
            && !printed.contains(DATA_KEY),
        "{printed}"
    );
    let from_file = format!("# file {config_arg}");
    for line in [
        format!("data_dir = {:?}  {from_file}", data_dir.display()),
        format!("jwt_secret = \"********\"  {from_file}, masked"),
        "data_key = \"********\"  # env THERAROOM_DATA_KEY, masked".to_string(),
        format!(
            "database_url = \"postgres://app:********@db.internal/theraroom\"  {from_file}, masked"
        ),
        "turn_ttl = \"3h\"  # env THERAROOM_TURN_TTL".to_string(),
        "rtc_port = 7001  # flag --rtc-port".to_string(),
        format!("hsts = true  {from_file}"),
        "bind = \"127.0.0.1:8080\"  # default".to_string(),
    ] {
        assert!(
            printed.lines().any(|l| l == line),
            "no {line:?} in\n{printed}"
        );
    }
    // Saved as a file, the report configures the same settings again.
    let saved = dir.file("saved.toml", &printed);
    let again = stdout_of(run(
        &[],
        &["config", "print", "--config", saved.to_str().unwrap()],
    ));
    let first: toml::Table = toml::from_str(&printed).unwrap();
    let second: toml::Table = toml::from_str(&again).unwrap();
    assert_eq!(first, second);
    assert_eq!(second["turn_uris"].as_array().map(Vec::len), Some(2));
    assert!(again.contains(&format!("rtc_port = 7001  # file {}", saved.display())));
}

#[test]
fn bad_configuration_files_stop_with_a_message_naming_the_problem() {
    let dir = TempDir::new();
    let cases = [
        ("unknown.toml", "rtc_prot = 1\n", "unknown key `rtc_prot`"),
        (
            "type.toml",
            "rtc_port = \"high\"\n",
            "`rtc_port` must be an integer, not a string",
        ),
        (
            "list.toml",
            "turn_uris = \"turn:x\"\n",
            "`turn_uris` must be an array of strings",
        ),
    ];
    for (name, text, expected) in cases {
        let path = dir.file(name, text);
        let output = run(
            &[],
            &["--config", path.to_str().unwrap(), "config", "print"],
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(expected), "{name}: {stderr}");
        assert!(output.stdout.is_empty());
    }
    let missing = dir.0.join("missing.toml");
    let env = [("THERAROOM_CONFIG", missing.to_str().unwrap())];
    let output = run(&env, &["config", "print"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("missing.toml") && stderr.contains("cannot read it"),
        "{stderr}"
    );
}

#[test]
fn help_never_shows_a_secret_from_the_file() {
    let dir = TempDir::new();
    let config = dir.file(
        "theraroom.toml",
        &format!("jwt_secret = \"{JWT_SECRET}\"\n"),
    );
    let help = stdout_of(run(
        &[],
        &["--config", config.to_str().unwrap(), "serve", "--help"],
    ));
    assert!(help.contains("--jwt-secret") && help.contains("--config"));
    assert!(!help.contains(JWT_SECRET), "{help}");
}

/// Starts `serve` on loopback ports chosen by the system with stderr redirected to a
/// file, waits for its listening line, stops it and returns what it logged.
fn serve_log(dir: &TempDir, extra: &[&str]) -> String {
    let log_path = dir.0.join(format!("serve-{}.log", extra.len()));
    let log = std::fs::File::create(&log_path).unwrap();
    let data_dir = dir.0.join("data");
    let mut child = theraroom(&[("THERAROOM_JWT_SECRET", JWT_SECRET)])
        .args([
            "--bind",
            "127.0.0.1:0",
            "--rtc-port",
            "0",
            "--rtc-workers",
            "1",
        ])
        .arg("--data-dir")
        .arg(&data_dir)
        .args(extra)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn theraroom serve");
    let started = Instant::now();
    let text = loop {
        let text = std::fs::read_to_string(&log_path).unwrap_or_default();
        if text.contains("TheraRoom listening") {
            break text;
        }
        let exited = child.try_wait().unwrap();
        if exited.is_some() || started.elapsed() > STARTUP_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("serve did not start ({exited:?}):\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    text
}

#[test]
fn serve_logs_to_a_file_without_escape_codes() {
    let dir = TempDir::new();
    let text = serve_log(&dir, &[]);
    assert!(!text.contains("\x1b["), "escape codes in:\n{text:?}");
    assert!(text.contains(" INFO "), "{text}");
}

#[test]
fn serve_logs_json_lines_with_log_format_json() {
    let dir = TempDir::new();
    let text = serve_log(&dir, &["--log-format", "json"]);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    let listening = lines
        .iter()
        .find(|line| line["fields"]["message"] == "TheraRoom listening")
        .unwrap_or_else(|| panic!("no listening line in {text}"));
    assert_eq!(listening["level"], "INFO");
    let addr = listening["fields"]["addr"].as_str().unwrap();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert!(!text.contains("\x1b["));
}

#[test]
fn admin_rotate_data_key_adds_a_current_key_and_shows_ids_only() {
    let dir = TempDir::new();
    let data_dir = dir.0.join("data");
    let data_arg = data_dir.to_str().unwrap();
    let env = [("THERAROOM_JWT_SECRET", JWT_SECRET)];
    let migrated = run(&env, &["--data-dir", data_arg, "migrate"]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    let keyring_path = data_dir.join("data_keys.json");
    let read_keyring = || -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&keyring_path).unwrap()).unwrap()
    };
    let first = read_keyring();
    assert_eq!(first["keys"].as_array().unwrap().len(), 1);

    let output = run(&env, &["--data-dir", data_arg, "admin", "rotate-data-key"]);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    let printed: serde_json::Value = serde_json::from_str(&stdout_of(output)).unwrap();
    let keyring = read_keyring();
    assert_eq!(printed["key_id"], keyring["current"]);
    assert_eq!(
        printed["previous_key_ids"],
        serde_json::json!([first["current"]])
    );
    assert_eq!(printed["resealed_notes"], 0);
    let keys = keyring["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    for key in keys {
        let secret = key["key"].as_str().unwrap();
        assert!(!stderr.contains(secret) && !printed.to_string().contains(secret));
    }
}
