//! The `/metrics` endpoint of `labsync watch --metrics ADDR`: a tiny axum server that renders
//! the shared [`Metrics`](super::metrics::Metrics) on each scrape. A bare port binds to
//! loopback; another interface only when the address names it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::metrics::SharedMetrics;

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why the metrics endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsServerError {
    #[error(
        "`{0}` is not a metrics address; write a port (`9184`, on loopback) or an address \
         (`127.0.0.1:9184`, `[::1]:9184`, `0.0.0.0:9184` to listen on every interface)"
    )]
    BadAddr(String),
    #[error("cannot listen on {addr} for metrics: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Reads `--metrics ADDR`: a bare port means `127.0.0.1:PORT`.
pub fn parse_addr(s: &str) -> Result<SocketAddr, MetricsServerError> {
    let s = s.trim();
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Some(port) = s.strip_prefix("localhost:").and_then(|p| p.parse().ok()) {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    s.parse()
        .map_err(|_| MetricsServerError::BadAddr(s.to_string()))
}

/// A running metrics endpoint.
pub struct MetricsServer {
    /// The address it listens on (the real port when 0 was asked for).
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Stops accepting and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Open event streams (a dashboard left open) would hold a graceful shutdown forever:
        // they get two seconds, then are cut.
        if tokio::time::timeout(std::time::Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn scrape(State(metrics): State<SharedMetrics>) -> impl IntoResponse {
    let body = metrics.lock().render();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body)
}

/// HTTPS: each connection's TLS handshake, then HTTP/1.1 on it, until shut down.
async fn serve_tls(
    listener: TcpListener,
    app: Router,
    config: Arc<rustls::ServerConfig>,
    mut stop: oneshot::Receiver<()>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let acceptor = acceptor.clone();
                let service = hyper_util::service::TowerToHyperService::new(app.clone());
                conns.spawn(async move {
                    let tls = match acceptor.accept(stream).await {
                        Ok(tls) => tls,
                        Err(e) => {
                            tracing::debug!("TLS handshake with {peer} failed: {e}");
                            return;
                        }
                    };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// Serves `metrics` on `addr` (in the current tokio runtime) until shut down.
pub async fn serve(
    addr: SocketAddr,
    metrics: SharedMetrics,
    api: Option<crate::engine::api::ApiState>,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<MetricsServer, MetricsServerError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| MetricsServerError::Listen { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| MetricsServerError::Listen { addr, source })?;
    let mut app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(metrics);
    if let Some(state) = api {
        app = app.merge(crate::engine::api::router(state));
    }
    let (tx, rx) = oneshot::channel::<()>();
    let task = match tls {
        None => tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!("metrics endpoint stopped: {e}");
            }
        }),
        Some(config) => tokio::spawn(serve_tls(listener, app, config, rx)),
    };
    Ok(MetricsServer {
        addr,
        shutdown: Some(tx),
        task,
    })
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;
    use crate::engine::events::{Event, OpKind, Reporter};
    use crate::plan::StepId;

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[test]
    fn a_bare_port_listens_on_loopback_and_other_addresses_are_taken_as_written() {
        assert_eq!(parse_addr("9184").unwrap().to_string(), "127.0.0.1:9184");
        assert_eq!(
            parse_addr("localhost:9184").unwrap().to_string(),
            "127.0.0.1:9184"
        );
        assert_eq!(parse_addr("[::1]:9184").unwrap().to_string(), "[::1]:9184");
        assert_eq!(
            parse_addr("0.0.0.0:9184").unwrap().to_string(),
            "0.0.0.0:9184"
        );
        assert!(matches!(
            parse_addr("metrics.example.com:9184"),
            Err(MetricsServerError::BadAddr(_))
        ));
    }

    #[tokio::test]
    async fn the_endpoint_serves_the_current_metrics_as_prometheus_text() {
        let metrics = SharedMetrics::default();
        let server = serve(parse_addr("0").unwrap(), metrics.clone(), None, None)
            .await
            .unwrap();
        assert!(server.addr.ip().is_loopback());

        let before = get(server.addr, "/metrics").await;
        assert!(before.starts_with("HTTP/1.1 200"), "{before}");
        assert!(before.contains(CONTENT_TYPE), "{before}");
        assert!(!before.contains("op=\"instant-clone\""), "{before}");

        metrics.event(
            jiff::Timestamp::UNIX_EPOCH,
            &Event::OpFinished {
                step: StepId(0),
                op: OpKind::InstantClone,
                target: "alice-db".into(),
                elapsed: std::time::Duration::from_millis(1500),
                error: Some("SystemError".into()),
                fault: Some(crate::engine::failure::FailureKind::Fault(
                    "SystemError".into(),
                )),
            },
        );
        let after = get(server.addr, "/metrics").await;
        assert!(
            after.contains(
                "labsync_task_failures_total{op=\"instant-clone\",fault=\"SystemError\"} 1\n"
            ),
            "{after}"
        );
        assert!(get(server.addr, "/other").await.starts_with("HTTP/1.1 404"));
        server.shutdown().await;
    }
}
