//! HTTPS and WSS on the server's own listener: the real binary started with
//! `--tls-self-signed` or `--tls-cert/--tls-key`, reached over TLS on 127.0.0.1 (pure
//! TCP on loopback: no network namespace needed).
//!
//! The self-signed server is trusted by pinning the SHA-256 fingerprint it prints on
//! stderr (what a person compares in the browser); the configured certificate is
//! verified the ordinary way, against the test's own CA.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    verify_tls12_signature, verify_tls13_signature, CryptoProvider,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, ClientConfig, DigitallySignedStruct, RootCertStore};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

/// Longest the server may take to print its listening line (a cold debug binary on a
/// busy two-core machine); only bounds a hang, asserts nothing about speed.
const STARTUP_LIMIT: Duration = Duration::from_secs(120);

/// A server process and what it printed on the way up.
struct Server {
    child: Child,
    dir: PathBuf,
    /// `https://127.0.0.1:port`.
    base: String,
    addr: SocketAddr,
    /// The `TLS: SHA-256 fingerprint ...` value, when it printed one.
    fingerprint: Option<String>,
}

impl Server {
    /// Starts the binary on 127.0.0.1 port 0 with `tls_args`, and waits for its
    /// `TheraRoom listening` log line, which carries the URL with the real port.
    fn start(dir: &Path, tls_args: &[&str]) -> Server {
        let mut child = server_command(dir, tls_args)
            .args(["--max-connections-per-ip", "1"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn theraroom");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (lines, seen) = mpsc::channel();
        // Keeps draining stderr after startup, so the server never blocks on it.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
        let mut fingerprint = None;
        let mut log = Vec::new();
        let base = loop {
            let line = match seen.recv_timeout(STARTUP_LIMIT) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "the server never said it listens; its output:\n{}",
                        log.join("\n")
                    );
                }
            };
            if let Some(fp) = line.strip_prefix("TLS: SHA-256 fingerprint ") {
                fingerprint = Some(fp.trim().to_string());
            }
            if line.contains("TheraRoom listening") {
                break field_value(&line, "https://")
                    .unwrap_or_else(|| panic!("no https:// URL in {line:?}"));
            }
            log.push(line);
        };
        let addr = base
            .trim_start_matches("https://")
            .parse()
            .expect("URL holds the socket address");
        Server {
            child,
            dir: dir.to_path_buf(),
            base,
            addr,
            fingerprint,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `theraroom` with a fresh data directory, loopback listener and media, `tls_args`.
fn server_command(dir: &Path, tls_args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_theraroom"));
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["--bind", "127.0.0.1:0", "--rtc-ip", "127.0.0.1"])
        .args(["--rtc-port", "0", "--rtc-workers", "1"])
        .args(tls_args)
        .arg("serve")
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    cmd
}

/// The text from `prefix` up to the next space or escape code (log lines may be
/// coloured).
fn field_value(line: &str, prefix: &str) -> Option<String> {
    let start = line.find(prefix)?;
    let value: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '\u{1b}')
        .collect();
    Some(value)
}

/// A fresh temporary directory.
fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("theraroom-{what}-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn sha256_fingerprint(der: &[u8]) -> String {
    let hex: Vec<String> = Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    hex.join(":")
}

/// Trusts exactly the certificate whose SHA-256 fingerprint was printed (signatures
/// are still checked, with the ring provider's algorithms).
#[derive(Debug)]
struct PinnedFingerprint {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedFingerprint {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = sha256_fingerprint(end_entity);
        if seen == self.fingerprint {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "certificate fingerprint {seen} is not the printed {}",
                self.fingerprint
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn ring() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client trusting only the certificate with `fingerprint`.
fn pinned_client(fingerprint: &str) -> Arc<ClientConfig> {
    let verifier = PinnedFingerprint {
        fingerprint: fingerprint.to_string(),
        provider: ring(),
    };
    let config = ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Arc::new(config)
}

/// A client trusting the CAs in `roots` (ordinary WebPKI verification).
fn rooted_client(roots: RootCertStore) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

async fn tls_connect(
    addr: SocketAddr,
    client: &Arc<ClientConfig>,
    name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(name.to_string()).expect("server name");
    TlsConnector::from(client.clone()).connect(name, tcp).await
}

/// `GET /readyz` over TLS: (status, body).
async fn readyz(server: &Server, client: &Arc<ClientConfig>, name: &str) -> (u16, String) {
    let stream = tls_connect(server.addr, client, name)
        .await
        .expect("TLS handshake");
    let resp =
        theraroom_load::rest::request_over(stream, &server.base, "GET", "/readyz", None, None)
            .await
            .expect("GET /readyz over HTTPS");
    (
        resp.status,
        String::from_utf8_lossy(&resp.body).into_owned(),
    )
}

/// A WebSocket to `wss://.../rtc` over a TLS connection of `client`.
async fn wss(
    server: &Server,
    client: &Arc<ClientConfig>,
    name: &str,
) -> Result<WebSocketStream<TlsStream<TcpStream>>, WsError> {
    let stream = tls_connect(server.addr, client, name)
        .await
        .expect("TLS handshake");
    let url = format!("{}/rtc", server.base.replacen("https://", "wss://", 1));
    tokio_tungstenite::client_async(url.as_str(), stream)
        .await
        .map(|(ws, _)| ws)
}

/// Sends a protocol `ping` and expects the matching `pong`.
async fn ping_pong(ws: &mut WebSocketStream<TlsStream<TcpStream>>, ts: u64) {
    let ping = serde_json::json!({"type": "ping", "ts": ts});
    ws.send(Message::text(ping.to_string()))
        .await
        .expect("send ping");
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                let pong: serde_json::Value = serde_json::from_str(&text).expect("JSON");
                assert_eq!(pong, serde_json::json!({"type": "pong", "ts": ts}));
                return;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            other => panic!("expected a pong, got {other:?}"),
        }
    }
}

/// What a plain-HTTP client gets from the TLS port: no HTTP response.
async fn plain_http_answer(addr: SocketAddr) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.expect("tcp connect");
    tcp.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("send plain HTTP");
    let mut answer = Vec::new();
    // A reset is as good as a close here: all that matters is what arrived before.
    let _ = tcp.read_to_end(&mut answer).await;
    answer
}

#[tokio::test]
async fn self_signed_server_speaks_https_and_wss_and_survives_bad_clients() {
    let server = Server::start(&temp_dir("tls-self"), &["--tls-self-signed"]);
    let fingerprint = server
        .fingerprint
        .clone()
        .expect("a self-signed server prints its fingerprint on stderr");
    let client = pinned_client(&fingerprint);

    let (status, body) = readyz(&server, &client, "127.0.0.1").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));

    // Clients the listener must shrug off: plain HTTP, and a client that refuses the
    // certificate (what a browser does before the person accepts it).
    let answer = plain_http_answer(server.addr).await;
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP got an HTTP answer: {:?}",
        String::from_utf8_lossy(&answer)
    );
    let distrusting = rooted_client(RootCertStore::empty());
    let refused = tls_connect(server.addr, &distrusting, "localhost").await;
    assert!(
        refused.is_err(),
        "a client without the certificate must not connect"
    );

    let (status, _) = readyz(&server, &client, "localhost").await;
    assert_eq!(
        status, 200,
        "the listener still serves after the bad clients"
    );

    // WSS on the same port, and the peer address reaches `/rtc`: the server runs
    // with one socket per address, so a second one from 127.0.0.1 is refused.
    let mut ws = wss(&server, &client, "localhost")
        .await
        .expect("wss handshake");
    ping_pong(&mut ws, 1).await;
    match wss(&server, &client, "localhost").await {
        Err(WsError::Http(resp)) => assert_eq!(resp.status().as_u16(), 429),
        Err(other) => panic!("expected 429 for a second socket, got {other}"),
        Ok(_) => panic!("a second socket from 127.0.0.1 was accepted over the cap of 1"),
    }
    ping_pong(&mut ws, 2).await;
    ws.close(None).await.expect("close");
}

/// A test CA and a `localhost` certificate it signed, written as PEM files.
struct TestPki {
    ca: CertificateDer<'static>,
    cert: PathBuf,
    key: PathBuf,
    other_key: PathBuf,
}

fn test_pki(dir: &Path) -> TestPki {
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "TheraRoom test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf_params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).expect("leaf");
    let leaf = leaf_params
        .signed_by(&leaf_key, &ca)
        .expect("leaf certificate");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let other_key = dir.join("other-key.pem");
    std::fs::write(&cert, leaf.pem()).expect("write cert");
    std::fs::write(&key, leaf_key.serialize_pem()).expect("write key");
    let other = rcgen::KeyPair::generate().expect("other key");
    std::fs::write(&other_key, other.serialize_pem()).expect("write other key");
    TestPki {
        ca: ca.der().clone(),
        cert,
        key,
        other_key,
    }
}

#[tokio::test]
async fn configured_certificate_files_serve_https_and_wss() {
    let dir = temp_dir("tls-files");
    let pki = test_pki(&dir);
    let (cert, key) = (pki.cert.to_string_lossy(), pki.key.to_string_lossy());
    let server = Server::start(&dir, &["--tls-cert", &cert, "--tls-key", &key]);
    assert_eq!(
        server.fingerprint, None,
        "only generated certificates are announced"
    );
    let mut roots = RootCertStore::empty();
    roots.add(pki.ca.clone()).expect("CA as trust anchor");
    let client = rooted_client(roots);

    let (status, body) = readyz(&server, &client, "localhost").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
    let mut ws = wss(&server, &client, "localhost")
        .await
        .expect("wss handshake");
    ping_pong(&mut ws, 1).await;
    ws.close(None).await.expect("close");
}

/// Runs the binary expecting it to refuse to start; returns its stderr.
fn refused_startup(dir: &Path, tls_args: &[&str]) -> String {
    let mut child = server_command(dir, tls_args)
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn theraroom");
    let pipe = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            use std::io::Read;
            let _ = pipe.read_to_string(&mut text);
        }
        text
    });
    let deadline = Instant::now() + STARTUP_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = reader.join().unwrap_or_default();
            panic!("the server kept running although it should have refused to start:\n{stderr}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = reader.join().expect("stderr reader");
    assert!(!status.success(), "startup should fail; stderr:\n{stderr}");
    stderr
}

#[test]
fn missing_or_mismatched_key_fails_startup_with_a_clear_message() {
    let dir = temp_dir("tls-bad");
    let pki = test_pki(&dir);
    let cert = pki.cert.to_string_lossy().into_owned();
    let missing = dir.join("no-such-key.pem").to_string_lossy().into_owned();
    let stderr = refused_startup(&dir, &["--tls-cert", &cert, "--tls-key", &missing]);
    assert!(
        stderr.contains("cannot read the TLS key") && stderr.contains("no-such-key.pem"),
        "{stderr}"
    );
    let other = pki.other_key.to_string_lossy().into_owned();
    let stderr = refused_startup(&dir, &["--tls-cert", &cert, "--tls-key", &other]);
    assert!(
        stderr.contains("cannot use the TLS certificate") && stderr.contains("other-key.pem"),
        "{stderr}"
    );
    let stderr = refused_startup(&dir, &["--tls-cert", &cert]);
    assert!(stderr.contains("--tls-key"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
