//! The signal that asks a long-running labsync process to stop: SIGINT (Ctrl-C) or SIGTERM
//! (systemd, `kill`); Ctrl-C only where there is no SIGTERM.

/// Resolves when SIGINT or SIGTERM arrives. Where no handler can be installed it never
/// resolves: the signal then simply ends the process, and the next run converges.
pub async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}
