//! Serving an HTTP service the way Cloud Run stops it: on SIGTERM stop
//! accepting, let in-flight requests finish, and give up after a grace
//! period (Cloud Run kills 10 s after SIGTERM). Both services use this.

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::settings::Settings;

/// What every binary does around its work: one TLS crypto provider, the
/// settings, telemetry (flushed whatever the outcome: the spans of a failure
/// matter most), and the exit code, with the error chain on stderr.
pub async fn run_binary<Work, Done>(service: &'static str, work: Work) -> ExitCode
where
    Work: FnOnce(Settings) -> Done,
    Done: Future<Output = anyhow::Result<()>>,
{
    crate::tls::install_crypto_provider();
    let outcome = async {
        let settings = Settings::from_env()?;
        let telemetry = crate::telemetry::init(service, &settings)?;
        let outcome = work(settings).await;
        telemetry.shutdown();
        outcome
    };
    match outcome.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", crate::error_chain::render(&*error));
            ExitCode::FAILURE
        }
    }
}

/// Serves `router` until `shutdown` resolves, then drains for at most
/// `grace`. `stopping` turns true when shutdown begins, so background work
/// (the relay) can stop with the server.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
    stopping: watch::Sender<bool>,
) -> std::io::Result<()> {
    let mut stopped = stopping.subscribe();
    let server = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing in-flight requests");
            stopping.send_replace(true);
        });
    let grace_expired = async move {
        let _ = stopped.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        served = server => served,
        () = grace_expired => {
            tracing::warn!(grace_seconds = grace.as_secs(), "in-flight requests outlived the grace period");
            Ok(())
        }
    }
}

/// Resolves on SIGTERM (Cloud Run's stop signal) or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
