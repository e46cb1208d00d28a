//! The few REST calls a participant needs before joining (a guest token from a share
//! link, a session for a therapist, the participant list), over plain HTTP/1.1.
//!
//! A hand-written request over a `TcpStream` instead of an HTTP client crate: three
//! calls against a test or LAN server do not justify another dependency tree on a
//! two-core build machine. [`request`] opens plain TCP (`http://`); for `https://`
//! the caller opens the TLS stream and uses [`request_over`].

use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ClientError;

/// A response: status code and body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// Body bytes (de-chunked).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as JSON (`Value::Null` when empty or not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as JSON if the status is 2xx, else [`ClientError::Http`].
    pub fn ok_json(&self) -> Result<Value, ClientError> {
        if (200..300).contains(&self.status) {
            Ok(self.json())
        } else {
            Err(ClientError::Http {
                status: self.status,
                body: String::from_utf8_lossy(&self.body).into_owned(),
            })
        }
    }
}

/// Splits `http://host:port[/prefix]` (or `https://...`) into the authority and a path
/// prefix; the flag says whether the scheme was `https`.
fn split_base(base: &str) -> Result<(bool, &str, &str), ClientError> {
    let (tls, rest) = match (base.strip_prefix("http://"), base.strip_prefix("https://")) {
        (Some(rest), _) => (false, rest),
        (None, Some(rest)) => (true, rest),
        (None, None) => {
            return Err(ClientError::Config(format!(
                "expected an http:// or https:// URL, got {base:?}"
            )))
        }
    };
    Ok(match rest.find('/') {
        Some(i) => (tls, &rest[..i], rest[i..].trim_end_matches('/')),
        None => (tls, rest, ""),
    })
}

/// Sends one request to `base` (`http://host:port`) and reads the whole response.
/// `bearer` becomes an `Authorization: Bearer` header; `body` is sent as JSON.
pub async fn request(
    base: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Result<HttpResponse, ClientError> {
    let (tls, authority, _) = split_base(base)?;
    if tls {
        return Err(ClientError::Config(format!(
            "{base:?}: this client opens plain TCP only; open the TLS stream yourself and use request_over"
        )));
    }
    let stream = TcpStream::connect(authority).await?;
    request_over(stream, base, method, path, bearer, body).await
}

/// [`request`] over a connection the caller opened to `base`: a TLS stream to an
/// `https://` server (the caller chooses which certificates to trust), or any other
/// byte stream. `base` gives the `Host` header and the path prefix.
pub async fn request_over<S>(
    stream: S,
    base: &str,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> Result<HttpResponse, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let authorization = bearer.map(|token| format!("Bearer {token}"));
    let headers: Vec<(&str, &str)> = authorization
        .as_deref()
        .map(|value| ("Authorization", value))
        .into_iter()
        .collect();
    send(stream, base, method, path, &headers, body).await
}

/// [`request`] with extra request headers (name, value) and no body, over plain TCP.
pub async fn request_with_headers(
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Result<HttpResponse, ClientError> {
    let (_, authority, _) = split_base(base)?;
    let stream = TcpStream::connect(authority).await?;
    send(stream, base, method, path, headers, None).await
}

async fn send<S>(
    mut stream: S,
    base: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Result<HttpResponse, ClientError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (_, authority, prefix) = split_base(base)?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut head = format!(
        "{method} {prefix}{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nAccept: application/json\r\n"
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse_response(&raw)
}

fn bad(what: &str) -> ClientError {
    ClientError::Protocol(format!("malformed HTTP response: {what}"))
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse, ClientError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no header end"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("header not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("status line"))?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse { status, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("chunk size"))?;
        let size_text = std::str::from_utf8(&data[..line_end]).map_err(|_| bad("chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("chunk size"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = data.get(..size).ok_or_else(|| bad("short chunk"))?;
        out.extend_from_slice(chunk);
        data = data.get(size + 2..).ok_or_else(|| bad("chunk end"))?;
    }
}

/// A guest token issued through a share link (`POST /api/join/{share}/guest`).
#[derive(Debug, Clone, Deserialize)]
pub struct GuestToken {
    /// The JWT to send in `join.token`; keep it to resume after a reload.
    pub token: String,
    /// The one session it admits to.
    pub session_id: String,
    /// The guest's id (the token subject).
    pub guest_id: String,
    /// Expiry, RFC 3339.
    pub expires_at: String,
}

/// Gets a guest token for share link `share_token` under the name `name`.
pub async fn guest_token(
    base: &str,
    share_token: &str,
    name: &str,
) -> Result<GuestToken, ClientError> {
    let body = serde_json::json!({ "name": name });
    let resp = request(
        base,
        "POST",
        &format!("/api/join/{share_token}/guest"),
        None,
        Some(&body),
    )
    .await?;
    serde_json::from_value(resp.ok_json()?)
        .map_err(|e| ClientError::Protocol(format!("guest token: {e}")))
}

/// A session created through `POST /api/sessions` (the fields a client needs).
#[derive(Debug, Clone, Deserialize)]
pub struct CreatedSession {
    /// Session id (`join.session_id`).
    pub id: String,
    /// Share token for guests.
    pub share_token: String,
    /// Capacity.
    pub max_participants: u32,
}

/// Starts a session as the therapist owning `therapist_token`, without a waiting room:
/// simulated participants (and the media tests built on them) enter at once.
pub async fn create_session(
    base: &str,
    therapist_token: &str,
    name: &str,
    max_participants: u32,
) -> Result<CreatedSession, ClientError> {
    let body = serde_json::json!({
        "session_name": name,
        "max_participants": max_participants,
        "waiting_room": false,
    });
    let resp = request(
        base,
        "POST",
        "/api/sessions",
        Some(therapist_token),
        Some(&body),
    )
    .await?;
    serde_json::from_value(resp.ok_json()?)
        .map_err(|e| ClientError::Protocol(format!("session: {e}")))
}

/// The participant rows of a session (`GET /api/sessions/{id}/participants`), as JSON
/// objects (`id`, `is_active`, `removed`, `left_at`, ...).
pub async fn participants(
    base: &str,
    token: &str,
    session_id: &str,
) -> Result<Vec<Value>, ClientError> {
    let resp = request(
        base,
        "GET",
        &format!("/api/sessions/{session_id}/participants"),
        Some(token),
        None,
    )
    .await?;
    match resp.ok_json()?.get("participants") {
        Some(Value::Array(rows)) => Ok(rows.clone()),
        _ => Err(ClientError::Protocol(
            "participants: no `participants` array".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked() {
        let r =
            parse_response(b"HTTP/1.1 201 Created\r\ncontent-length: 7\r\n\r\n{\"a\":1}").unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.json()["a"], 1);
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":2}\r\n0\r\n\r\n")
            .unwrap();
        assert_eq!(r.json()["a"], 2);
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn splits_base() {
        assert_eq!(
            split_base("http://127.0.0.1:80").unwrap(),
            (false, "127.0.0.1:80", "")
        );
        assert_eq!(split_base("http://h:1/x/").unwrap(), (false, "h:1", "/x"));
        assert_eq!(split_base("https://h:2").unwrap(), (true, "h:2", ""));
        assert!(split_base("ftp://h").is_err());
    }
}
