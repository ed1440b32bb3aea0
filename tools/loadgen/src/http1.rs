//! The load's HTTP/1.1 client for `http://` gateways: keep-alive connections, each carrying one
//! request at a time, reused most recent first.
//!
//! The load generator shares the cores it measures, so its own CPU per request lowers the
//! figures it reports (`docs/benchmarks.md`, "The answer written from the wire, and a leaner
//! load generator"). A general client (reqwest) parses the URL, arms its own timers and keeps
//! pool bookkeeping for every request; this does only what a request needs. Setup calls and
//! `https://` gateways keep reqwest.

use std::sync::Mutex;
use std::time::Duration;

use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, HOST, HeaderMap, HeaderValue, RETRY_AFTER};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// How long one request may take, as the reqwest client allowed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum Http1Error {
    /// Connecting failed.
    #[error("connect: {0}")]
    Connect(#[from] std::io::Error),
    /// The connection failed mid-request.
    #[error(transparent)]
    Http(#[from] hyper::Error),
    /// The request could not be built (a path that is not a URI).
    #[error(transparent)]
    Request(#[from] hyper::http::Error),
    /// No answer within [`REQUEST_TIMEOUT`].
    #[error("timed out")]
    Timeout,
}

/// An answer: its status, and how long it asked the client to wait (`Retry-After`).
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// `Retry-After`, in seconds.
    pub retry_after: Option<Duration>,
}

impl Answer {
    /// The answer of `status` with `headers` (whichever client read them).
    #[must_use]
    pub fn of(status: u16, headers: &HeaderMap) -> Self {
        Self {
            status,
            retry_after: headers
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                .map(Duration::from_secs),
        }
    }
}

/// Keep-alive HTTP/1.1 connections to one server.
#[derive(Debug)]
pub struct Http1 {
    /// `host:port`, to connect to.
    addr: String,
    /// The `Host` header.
    host: HeaderValue,
    /// Connections between requests.
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Http1 {
    /// A client for `base` (`http://host:port`); `None` for any other scheme.
    #[must_use]
    pub fn new(base: &str) -> Option<Self> {
        let addr = base.strip_prefix("http://")?.trim_end_matches('/');
        if addr.is_empty() || addr.contains('/') {
            return None;
        }
        Some(Self {
            addr: addr.to_owned(),
            host: HeaderValue::from_str(addr).ok()?,
            idle: Mutex::new(Vec::new()),
        })
    }

    /// Sends `method path` (with `json` as the body, if any) and reads the answer to its end.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        json: Option<String>,
    ) -> Result<Answer, Http1Error> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.clone());
        if json.is_some() {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let request = request.body(Full::new(json.map(Bytes::from).unwrap_or_default()))?;
        tokio::time::timeout(REQUEST_TIMEOUT, async {
            let mut connection = self.connection().await?;
            let response = connection.send_request(request).await?;
            let answer = Answer::of(response.status().as_u16(), response.headers());
            // The connection takes the next request only once this body is read.
            response.into_body().collect().await?;
            self.release(connection);
            Ok(answer)
        })
        .await
        .map_err(|_| Http1Error::Timeout)?
    }

    /// An idle connection that can take a request, or a new one.
    async fn connection(&self) -> Result<SendRequest<Full<Bytes>>, Http1Error> {
        while let Some(mut idle) = self.take_idle() {
            // A connection the server closed meanwhile (keep-alive timeout, restart) is dropped.
            if idle.ready().await.is_ok() {
                return Ok(idle);
            }
        }
        let tcp = TcpStream::connect(&self.addr).await?;
        tcp.set_nodelay(true)?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        // Drives the connection; ends when its sender is dropped or the server closes it.
        tokio::spawn(connection);
        Ok(sender)
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop()
    }

    fn release(&self, connection: SendRequest<Full<Bytes>>) {
        if !connection.is_closed() {
            self.idle
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(connection);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_bases_are_taken() {
        assert!(Http1::new("http://127.0.0.1:8000").is_some());
        assert!(Http1::new("http://127.0.0.1:8000/").is_some());
        assert!(Http1::new("https://gateway.example:443").is_none());
        assert!(Http1::new("http://127.0.0.1:8000/api").is_none());
        assert!(Http1::new("http://").is_none());
    }

    #[tokio::test]
    async fn requests_reuse_one_keep_alive_connection_and_read_retry_after() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A server that accepts one connection and answers three requests on it.
        let server = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            let mut seen = String::new();
            for answer in [
                "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}",
                "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 0\r\n\r\n",
                "HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
            ] {
                let mut request = Vec::new();
                while !request.ends_with(b"\r\n\r\n") {
                    request.push(tcp.read_u8().await.unwrap());
                }
                let head = String::from_utf8(request).unwrap();
                let length = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length: "))
                    .map_or(0, |n| n.parse::<usize>().unwrap());
                let mut body = vec![0_u8; length];
                tcp.read_exact(&mut body).await.unwrap();
                seen.push_str(&head);
                seen.push_str(&String::from_utf8(body).unwrap());
                tcp.write_all(answer.as_bytes()).await.unwrap();
            }
            seen
        });
        let client = Http1::new(&format!("http://{addr}")).unwrap();
        let first = client
            .send(Method::POST, "/api/v1/bookings/", Some("{}".to_owned()))
            .await
            .unwrap();
        let second = client.send(Method::GET, "/health", None).await.unwrap();
        let third = client.send(Method::GET, "/health", None).await.unwrap();
        assert_eq!(
            (first.status, first.retry_after),
            (200, None),
            "the first answer"
        );
        assert_eq!(
            (second.status, second.retry_after),
            (429, Some(Duration::from_secs(7)))
        );
        assert_eq!(third.status, 201);
        let seen = server.await.unwrap();
        assert!(
            seen.starts_with("POST /api/v1/bookings/ HTTP/1.1\r\n"),
            "{seen}"
        );
        assert!(seen.contains(&format!("host: {addr}\r\n")), "{seen}");
        assert!(
            seen.contains("content-type: application/json\r\n"),
            "{seen}"
        );
        assert!(
            seen.contains("\r\n\r\n{}GET /health"),
            "the body, then the next request: {seen}"
        );
        assert!(seen.contains("GET /health HTTP/1.1\r\n"), "{seen}");
    }
}
