//! A small HTTP/1.1 client (hyper) for what vigil pushes to other programs: alerts to
//! Alertmanager, scores by remote-write. Plain `http://` only: such peers usually sit on the
//! same network; put a local TLS proxy in front of one that does not.

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

/// What became of a push: the peer's status and the start of its answer, or why none came.
pub type Outcome = Result<(u16, String), String>;

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

/// Refuses a URL vigil cannot push to (at start, naming the setting).
pub fn check_url(setting: &str, url: &str) -> Result<(), String> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|e| format!("{setting} `{url}` is not a URL ({e})"))?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() {
        return Err(format!(
            "{setting} `{url}` must be an http:// URL with a host (vigil pushes plain HTTP; put a \
             TLS proxy in front of a peer that needs https)"
        ));
    }
    Ok(())
}

impl HttpClient {
    /// GETs `url`, waiting at most `timeout` for the answer, of at most `max_bytes`.
    pub async fn get(&self, url: &str, timeout: Duration, max_bytes: usize) -> Outcome {
        let request = hyper::Request::get(url)
            .body(Full::new(Bytes::new()))
            .map_err(|e| format!("cannot build the request to {url}: {e}"))?;
        self.send(url, request, timeout, max_bytes).await
    }

    /// POSTs `body` to `url` with `headers`, waiting at most `timeout` for the answer.
    pub async fn post(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Outcome {
        let mut request = hyper::Request::post(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("cannot build the request to {url}: {e}"))?;
        // A peer's answer to a push is read for its status; its start goes to the log.
        let (status, answer) = self.send(url, request, timeout, 1 << 20).await?;
        Ok((status, answer.chars().take(500).collect()))
    }

    /// Sends `request`; the answer's status and body, refused when over `max_bytes`.
    async fn send(
        &self,
        url: &str,
        request: hyper::Request<Full<Bytes>>,
        timeout: Duration,
        max_bytes: usize,
    ) -> Outcome {
        let response = tokio::time::timeout(timeout, self.client.request(request))
            .await
            .map_err(|_| format!("{url} did not answer within {timeout:?}"))?
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let limited = http_body_util::Limited::new(response.into_body(), max_bytes);
        let body = tokio::time::timeout(timeout, limited.collect())
            .await
            .map_err(|_| format!("{url} did not finish its answer within {timeout:?}"))?
            .map_err(|e| format!("{url}: the answer is over {max_bytes} bytes or broke off ({e})"))?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}
