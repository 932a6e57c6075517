//! `provisio serve`: opens and migrates the store, creates the first administrator on an empty
//! store, serves HTTP, and shuts everything down through one signal.

use crate::api::{self, HubState};
use crate::config::Config;
use crate::domain::{Error, Result};
use crate::listener::{self, tls::ReloadingCertificate};
use crate::outbound::scim::http_client;
use crate::outbound::{Engine, Wake, worker};
use crate::secrets::SecretKey;
use crate::service::AuthService;
use crate::service::ReportService;
use crate::store::SqlStore;
use secrecy::ExposeSecret;
use std::io::Write;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Opens the configured store and brings its schema up to date.
pub async fn open_store(database: &crate::config::DatabaseConfig) -> Result<SqlStore> {
    let store = match database {
        crate::config::DatabaseConfig::Sqlite { data_dir } => SqlStore::open_data_dir(data_dir).await?,
        crate::config::DatabaseConfig::Url(url) => SqlStore::connect(url.expose_secret()).await?,
    };
    let applied = store.migrate().await?;
    if !applied.is_empty() {
        tracing::info!(?applied, "database migrations applied");
    }
    let indexed = crate::store::ScimStore::reindex_missing(&store).await?;
    if indexed > 0 {
        tracing::info!(indexed, "users and groups added to the SCIM search index");
    }
    Ok(store)
}

/// Serves `store` on `listener` and runs the provisioning workers until `shutdown` is cancelled.
/// Then no new connection is accepted, in-flight requests and the jobs in hand get up to
/// `config.shutdown_timeout` to finish, and the store is closed.
pub async fn run(store: SqlStore, listener: TcpListener, config: &Config, shutdown: CancellationToken) -> Result<()> {
    let key = SecretKey::load_or_create(&config.secret_key_file)?;
    let wake = Wake::default();
    let http = http_client(config.request_timeout, config.engine.allow_link_local_targets).map_err(Error::Config)?;
    let metrics = Arc::new(crate::telemetry::Metrics::new());
    metrics.watch_write_batches(store.write_batch_counters());
    let engine = Arc::new(Engine::new(
        store.clone(),
        key.clone(),
        http,
        config.engine.clone(),
        metrics.store.clone(),
    ));
    let tasks = TaskTracker::new();
    worker::spawn(engine, config.workers.clone(), wake.clone(), &tasks, shutdown.clone());
    spawn_retention(
        ReportService::new(store.clone()),
        config.report_retention,
        &tasks,
        shutdown.clone(),
    );
    if let Some(schedule) = &config.backups {
        spawn_backups(config.database.clone(), schedule.clone(), &tasks, shutdown.clone());
    }
    let health = metrics.store.clone();
    let mut state = HubState::new(store.clone(), key, wake.clone(), metrics, config.max_body_bytes);
    crate::ldap_runner::spawn(
        state.ldap.clone(),
        health,
        config.workers.node.clone(),
        wake,
        &tasks,
        shutdown.clone(),
    );
    tasks.close();
    state.auth = crate::service::AuthService::with_policy(store.clone(), config.login_throttle, config.sessions);
    state.apps = state
        .apps
        .allow_link_local_targets(config.engine.allow_link_local_targets);
    state.config = state
        .config
        .allow_link_local_targets(config.engine.allow_link_local_targets);
    let console = crate::console::ConsoleConfig {
        secure_cookies: config.secure_cookies,
    };
    state.rate_limiter = Arc::new(crate::api::rate_limit::RateLimiter::new(config.network.rate_limit));
    let app = crate::console::router(state.clone(), console).merge(api::router(state));
    let tls = match &config.network.tls {
        Some(files) => {
            let certificate = ReloadingCertificate::load(files.clone())?;
            certificate.spawn_reloader(&tasks, shutdown.clone());
            Some(certificate.acceptor()?)
        }
        None => None,
    };
    let file_limit = listener::raise_open_file_limit();
    let limits = listener::ListenerLimits {
        header_timeout: config.network.header_timeout,
        idle_timeout: config.network.idle_timeout,
        max_connections: config
            .network
            .max_connections
            .unwrap_or_else(|| listener::connections_for_file_limit(file_limit)),
    };
    tracing::debug!(
        ?file_limit,
        max_connections = limits.max_connections,
        "connection limits"
    );
    let server = tokio::spawn(listener::serve(
        listener,
        app,
        tls,
        config.network.trusted_proxies.clone(),
        limits,
        shutdown.clone(),
    ));
    let mut server = std::pin::pin!(server);
    tokio::select! {
        result = &mut server => finish(result)?,
        () = shutdown.cancelled() => {
            match tokio::time::timeout(config.shutdown_timeout, &mut server).await {
                Ok(result) => finish(result)?,
                Err(_) => tracing::warn!("in-flight requests did not finish within the shutdown timeout"),
            }
        }
    }
    if tokio::time::timeout(config.shutdown_timeout, tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!("provisioning workers did not finish their jobs within the shutdown timeout");
    }
    store.close().await;
    Ok(())
}

/// Deletes report records past their retention once an hour, starting a minute after start.
fn spawn_retention(
    reports: ReportService<SqlStore>,
    retention: time::Duration,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    tasks.spawn(async move {
        let mut wait = std::time::Duration::from_secs(60);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(wait) => {},
            }
            match reports.enforce_retention(retention, 1000).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "deleted provisioning report records past their retention"),
                Err(e) => tracing::error!(error = %e, "report retention failed"),
            }
            wait = std::time::Duration::from_secs(3600);
        }
    });
}

/// Takes a backup every `schedule.every` (the first one interval after start) and keeps the
/// newest `schedule.keep`.
fn spawn_backups(
    database: crate::config::DatabaseConfig,
    schedule: crate::config::BackupSchedule,
    tasks: &TaskTracker,
    shutdown: CancellationToken,
) {
    tasks.spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(schedule.every) => {},
            }
            match crate::backup::scheduled_backup(&database, &schedule).await {
                Ok(taken) => {
                    tracing::info!(path = %taken.path.display(), bytes = taken.bytes, "scheduled backup taken")
                }
                Err(e) => tracing::error!(error = %e, "scheduled backup failed"),
            }
        }
    });
}

fn finish(result: std::result::Result<(), tokio::task::JoinError>) -> Result<()> {
    result.map_err(|e| Error::Config(format!("HTTP server task failed: {e}")))
}

/// Prints the first administrator's credentials on standard output (never to the log).
fn announce_first_admin(first: &crate::service::auth::FirstAdmin, base_url: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\nProvisio created the first administrator. These credentials are shown once only:\n\n  username: {}\n  password: {}\n\nLog in (you will be asked to choose a new password) in the console at\n  {base_url}/console/\nor with the CLI:\n  provisio login --server {base_url} --username {}\n",
        first.username,
        first.password.expose_secret(),
        first.username,
    );
    let _ = out.flush();
}

/// Runs `provisio serve` until SIGINT or SIGTERM.
pub async fn serve(config: Config) -> Result<()> {
    tracing::info!(database = %config.database.describe(), "opening the store");
    // Held while the hub runs: a restore refuses the data directory meanwhile.
    let _lock = match &config.database {
        crate::config::DatabaseConfig::Sqlite { data_dir } => {
            std::fs::create_dir_all(data_dir)
                .map_err(|e| Error::Config(format!("cannot create the data directory {}: {e}", data_dir.display())))?;
            Some(crate::data_lock::DataDirLock::acquire(data_dir)?)
        }
        crate::config::DatabaseConfig::Url(_) => None,
    };
    let store = open_store(&config.database).await?;
    let listener =
        listener::bind(config.listen).map_err(|e| Error::Config(format!("cannot listen on {}: {e}", config.listen)))?;
    let address = listener.local_addr().map_err(|e| Error::Config(e.to_string()))?;
    let scheme = if config.network.tls.is_some() { "https" } else { "http" };
    let base_url = format!("{scheme}://{address}");
    if let Some(first) = AuthService::new(store.clone()).bootstrap().await? {
        announce_first_admin(&first, &base_url);
    }
    tracing::info!(%address, "Provisio is listening; console at {base_url}/console/, admin API at {base_url}/api/v1");
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "Provisio console: {base_url}/console/");
        let _ = out.flush();
    }
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; finishing in-flight requests");
        on_signal.cancel();
    });
    run(store, listener, &config, shutdown).await?;
    tracing::info!("Provisio stopped");
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
