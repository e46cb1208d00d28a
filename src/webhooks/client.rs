//! A small HTTPS client for one job: POST a signed event and read the status code.
//!
//! hyper's HTTP/1 client connection over tokio-rustls (TLS 1.3, ring, Mozilla's roots
//! from `webpki-roots`), one connection per attempt. No redirects are followed (a 3xx
//! is a failed attempt like any non-2xx), the response body is not read, and the whole
//! attempt — resolution, connection, TLS, request, response head — has one deadline.
//! Every resolved address passes [`super::target::address_allowed`] before it is used.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST, USER_AGENT};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;
use url::{Host, Url};

use super::target::{address_allowed, UrlPolicy};

/// `User-Agent` of deliveries.
const AGENT: &str = concat!("TheraRoom-Webhooks/", env!("CARGO_PKG_VERSION"));

/// Sends webhook requests; cheap to clone.
#[derive(Clone)]
pub struct Client {
    tls: TlsConnector,
    policy: UrlPolicy,
    timeout: Duration,
}

/// The answer to an attempt: a status code, or why there was none.
pub type AttemptResult = Result<u16, String>;

impl Client {
    /// A client trusting Mozilla's roots plus `extra_roots` (tests bring their own CA).
    pub fn new(
        policy: UrlPolicy,
        timeout: Duration,
        extra_roots: &[CertificateDer<'static>],
    ) -> Result<Client, String> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        for cert in extra_roots {
            roots
                .add(cert.clone())
                .map_err(|e| format!("cannot trust the extra webhook root: {e}"))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| format!("cannot build the webhook TLS client: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Client {
            tls: TlsConnector::from(Arc::new(config)),
            policy,
            timeout,
        })
    }

    /// POSTs `body` with `headers` to `url`; the status code, or a short reason.
    pub async fn post(&self, url: &Url, headers: &[(&str, String)], body: Bytes) -> AttemptResult {
        match tokio::time::timeout(self.timeout, self.post_now(url, headers, body)).await {
            Ok(result) => result,
            Err(_) => Err(format!("timeout after {} ms", self.timeout.as_millis())),
        }
    }

    async fn post_now(&self, url: &Url, headers: &[(&str, String)], body: Bytes) -> AttemptResult {
        let request = request(url, headers, body)?;
        let tcp = self.connect(url).await?;
        if url.scheme() == "http" {
            return exchange(tcp, request).await;
        }
        let name = match url.host() {
            Some(Host::Domain(d)) => ServerName::try_from(d.to_string()),
            Some(Host::Ipv4(ip)) => Ok(ServerName::from(IpAddr::V4(ip))),
            Some(Host::Ipv6(ip)) => Ok(ServerName::from(IpAddr::V6(ip))),
            None => return Err("url has no host".into()),
        }
        .map_err(|e| format!("invalid TLS name: {e}"))?;
        let tls = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| format!("tls: {e}"))?;
        exchange(tls, request).await
    }

    /// Resolves the host and connects to the first allowed address that answers.
    async fn connect(&self, url: &Url) -> Result<TcpStream, String> {
        let port = url
            .port_or_known_default()
            .ok_or_else(|| "url has no port".to_string())?;
        let addrs: Vec<SocketAddr> = match url.host() {
            Some(Host::Ipv4(ip)) => vec![SocketAddr::new(IpAddr::V4(ip), port)],
            Some(Host::Ipv6(ip)) => vec![SocketAddr::new(IpAddr::V6(ip), port)],
            Some(Host::Domain(name)) => tokio::net::lookup_host((name, port))
                .await
                .map_err(|e| format!("dns: {e}"))?
                .collect(),
            None => return Err("url has no host".into()),
        };
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|a| address_allowed(self.policy, a.ip()))
            .collect();
        if allowed.is_empty() {
            return Err("refused: the host has no public address".into());
        }
        let mut last = String::new();
        for addr in allowed {
            match TcpStream::connect(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = format!("connect: {e}"),
            }
        }
        Err(last)
    }
}

/// The request: `POST <path?query>` with `Host`, JSON content type and `headers`.
fn request(
    url: &Url,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<Request<Full<Bytes>>, String> {
    let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
    let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
    let mut builder = Request::post(if target.is_empty() { "/" } else { target })
        .header(HOST, host)
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header(USER_AGENT, AGENT);
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    builder
        .body(Full::new(body))
        .map_err(|e| format!("invalid request: {e}"))
}

/// Sends `request` over `io` (HTTP/1.1) and returns the response status.
async fn exchange<I>(io: I, request: Request<Full<Bytes>>) -> AttemptResult
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("http: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let answer = sender.send_request(request).await;
    // The body is not read: dropping the connection closes it.
    driver.abort();
    answer
        .map(|response| response.status().as_u16())
        .map_err(|e| format!("http: {e}"))
}
