//! TURN credentials checked against a real coturn (`turnserver --use-auth-secret`):
//! a fresh credential allocates; an expired one and one signed with another secret are
//! refused. Each test starts its own loopback-only coturn on a free port.
//!
//! Needs `turnserver` and `turnutils_uclient` (Debian package `coturn`). Without them
//! the tests print SKIP, unless `CI=true`: then they fail.

use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use theraroom::turn::{TurnCredential, TurnIssuer};

const SECRET: &[u8] = b"coturn-test-shared-secret";

/// How long coturn may take to answer its first STUN request after it was started.
const READY_WITHIN_SECS: u64 = 60;

fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The two coturn tools, or `None` after a SKIP line (a panic when `CI=true`).
fn tools(test: &str) -> Option<(PathBuf, PathBuf)> {
    match (find_tool("turnserver"), find_tool("turnutils_uclient")) {
        (Some(server), Some(client)) => Some((server, client)),
        _ => {
            if in_ci() {
                panic!("coturn is required when CI=true: install the `coturn` package (turnserver, turnutils_uclient)");
            }
            eprintln!("\n!!!!!!!! SKIP {test}: coturn not installed (apt-get install -y coturn); set CI=true to fail instead\n");
            None
        }
    }
}

/// A free UDP port on 127.0.0.1 (free when asked; coturn binds it right after).
fn free_udp_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral UDP port");
    socket.local_addr().unwrap().port()
}

/// A running coturn, killed (and its temp dir removed) on drop, also when a test panics.
struct Coturn {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Coturn {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Ok(log) = std::fs::read_to_string(self.dir.join("turnserver.log")) {
                eprintln!("---- coturn log ----\n{log}\n--------------------");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Coturn {
    fn start(turnserver: &Path, secret: &[u8]) -> Coturn {
        let dir = std::env::temp_dir().join(format!(
            "theraroom-coturn-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port = free_udp_port();
        // A relay range of its own per run, away from the listening port.
        let min_port = 50_000 + (u32::from(port) * 7 % 9_000) as u16;
        let log = std::fs::File::create(dir.join("turnserver.log")).unwrap();
        let child = Command::new(turnserver)
            .args([
                "-c",
                "/dev/null",
                "--listening-ip=127.0.0.1",
                "--relay-ip=127.0.0.1",
            ])
            .arg(format!("--listening-port={port}"))
            .arg(format!("--min-port={min_port}"))
            .arg(format!("--max-port={}", min_port + 60))
            .arg("--use-auth-secret")
            .arg(format!(
                "--static-auth-secret={}",
                String::from_utf8_lossy(secret)
            ))
            .args([
                "--realm=theraroom.test",
                "--no-tls",
                "--no-dtls",
                "--no-cli",
                "--allow-loopback-peers",
            ])
            .args(["--log-file=stdout", "--simple-log"])
            .arg(format!(
                "--pidfile={}",
                dir.join("turnserver.pid").display()
            ))
            .arg(format!("--userdb={}", dir.join("turndb").display()))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start turnserver");
        let mut server = Coturn { child, port, dir };
        server.wait_ready();
        server
    }

    /// Waits until the server answers a STUN binding request (at most
    /// [`READY_WITHIN_SECS`]; a start, not a timing: the test asserts nothing about it).
    fn wait_ready(&mut self) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut request = vec![0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xA4, 0x42];
        request.extend_from_slice(&uuid::Uuid::new_v4().as_bytes()[..12]);
        // Generous: on a busy 2-core machine coturn once took more than 20 s to listen.
        let deadline = Instant::now() + Duration::from_secs(READY_WITHIN_SECS);
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("turnserver exited early with {status}; see its log above");
            }
            socket.send_to(&request, ("127.0.0.1", self.port)).unwrap();
            if let Ok((n, _)) = socket.recv_from(&mut buf) {
                // A binding success response: type 0x0101 with our transaction id.
                if n >= 20 && buf[0] == 0x01 && buf[1] == 0x01 && buf[8..20] == request[8..20] {
                    return;
                }
            }
        }
        panic!(
            "turnserver did not answer STUN on 127.0.0.1:{} within {READY_WITHIN_SECS} s",
            self.port
        );
    }

    /// What the server logged so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("turnserver.log")).unwrap_or_default()
    }

    /// True if the server logged an authentication refusal for `username`.
    fn refused_auth(&self, username: &str) -> bool {
        let needle = format!("<{username}>");
        self.log()
            .lines()
            .any(|l| l.contains("check_stun_auth") && l.contains(&needle))
    }

    /// Asserts that the server refused `username` at authentication (not for another reason).
    fn assert_auth_refused(&self, username: &str) {
        assert!(
            self.refused_auth(username),
            "coturn did not log an authentication refusal for {username}:\n{}",
            self.log()
        );
    }

    /// Runs `turnutils_uclient` with a credential: allocations on both ends relaying to
    /// each other (`-y`). Returns its exit status and output.
    fn allocate(&self, uclient: &Path, cred: &TurnCredential) -> (ExitStatus, String) {
        let out_path = self
            .dir
            .join(format!("uclient-{}.log", uuid::Uuid::new_v4().simple()));
        let out = std::fs::File::create(&out_path).unwrap();
        let mut child = Command::new(uclient)
            .args(["-y", "-n", "10", "-L", "127.0.0.1", "-e", "127.0.0.1"])
            .args(["-p", &self.port.to_string()])
            .args(["-u", &cred.username, "-w", &cred.password])
            .arg("127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("start turnutils_uclient");
        let deadline = Instant::now() + Duration::from_secs(90);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("turnutils_uclient did not finish within 90 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        (
            status,
            std::fs::read_to_string(out_path).unwrap_or_default(),
        )
    }
}

#[test]
fn fresh_credential_allocates() {
    let Some((server, client)) = tools("fresh_credential_allocates") else {
        return;
    };
    let coturn = Coturn::start(&server, SECRET);
    let issuer = TurnIssuer::new(
        SECRET.to_vec(),
        vec![format!("turn:127.0.0.1:{}", coturn.port)],
        600,
    );
    let cred = issuer.issue("therapist-1");
    let (status, output) = coturn.allocate(&client, &cred);
    assert!(
        status.success(),
        "a fresh credential must allocate; uclient {status}:\n{output}"
    );
    assert!(
        !coturn.refused_auth(&cred.username),
        "coturn logged a refusal for the fresh credential"
    );
}

#[test]
fn expired_credential_is_refused() {
    let Some((server, client)) = tools("expired_credential_is_refused") else {
        return;
    };
    let coturn = Coturn::start(&server, SECRET);
    let issuer = TurnIssuer::new(SECRET.to_vec(), vec![], 600);
    // Issued two hours ago with a ten-minute lifetime: expired 110 minutes ago.
    let cred = issuer.issue_at("therapist-1", chrono::Utc::now().timestamp() - 7200);
    let expiry: i64 = cred.username.split_once(':').unwrap().0.parse().unwrap();
    assert!(expiry < chrono::Utc::now().timestamp());
    let (status, output) = coturn.allocate(&client, &cred);
    assert!(
        !status.success(),
        "an expired credential must be refused; uclient {status}:\n{output}"
    );
    coturn.assert_auth_refused(&cred.username);
    // And the same server still accepts a fresh one, so the refusal is about expiry.
    let (status, output) = coturn.allocate(&client, &issuer.issue("therapist-1"));
    assert!(
        status.success(),
        "control: fresh credential; uclient {status}:\n{output}"
    );
}

#[test]
fn credential_signed_with_another_secret_is_refused() {
    let Some((server, client)) = tools("credential_signed_with_another_secret_is_refused") else {
        return;
    };
    let coturn = Coturn::start(&server, SECRET);
    let other = TurnIssuer::new(b"not-the-shared-secret".to_vec(), vec![], 600);
    let cred = other.issue("therapist-1");
    let (status, output) = coturn.allocate(&client, &cred);
    assert!(
        !status.success(),
        "a credential signed with another secret must be refused; uclient {status}:\n{output}"
    );
    coturn.assert_auth_refused(&cred.username);
    let good = TurnIssuer::new(SECRET.to_vec(), vec![], 600).issue("therapist-1");
    assert_eq!(good.username.split_once(':').unwrap().1, "therapist-1");
    let (status, output) = coturn.allocate(&client, &good);
    assert!(
        status.success(),
        "control: right secret; uclient {status}:\n{output}"
    );
}
