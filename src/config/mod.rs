//! Configuration, layered: built-in defaults, then a TOML file, then `PROVISIO_*` environment
//! variables, then command-line flags. Secrets may come from `*_FILE` paths and are redacted in `Debug`.

mod network;

pub use network::{NetworkArgs, NetworkConfig, RateLimit};

use crate::domain::{Error, Result};
use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Default HTTP listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory (relative to the working directory).
pub const DEFAULT_DATA_DIR: &str = "./provisio-data";
/// Default largest accepted request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// How logs are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// Where the store lives: flags and variables shared by every command that opens it.
#[derive(Debug, Clone, Args, Default)]
pub struct StoreArgs {
    /// TOML configuration file (keys as the flags, with `_` for `-`).
    #[arg(long, env = "PROVISIO_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the embedded SQLite store (created when missing). Default: ./provisio-data.
    #[arg(long, env = "PROVISIO_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL URL (`postgres://user:password@host/db`); replaces the embedded SQLite store.
    #[arg(long, env = "PROVISIO_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// File holding the database URL, for secrets managers.
    #[arg(long, env = "PROVISIO_DATABASE_URL_FILE", value_name = "FILE")]
    pub database_url_file: Option<PathBuf>,
}

/// Flags of `provisio serve`.
#[derive(Debug, Clone, Args, Default)]
pub struct ServeArgs {
    /// Where the store lives.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on for HTTP. Default: 127.0.0.1:8080.
    #[arg(long, env = "PROVISIO_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Log format on standard error. Default: human.
    #[arg(long, env = "PROVISIO_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `provisio=debug`. Default: info.
    #[arg(long, env = "PROVISIO_LOG_LEVEL", value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Largest accepted request body in bytes. Default: 1048576.
    #[arg(long, env = "PROVISIO_MAX_BODY_BYTES", value_name = "BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Seconds to let in-flight requests finish on shutdown. Default: 30.
    #[arg(long, env = "PROVISIO_SHUTDOWN_TIMEOUT", value_name = "SECS")]
    pub shutdown_timeout: Option<u64>,
    /// Key file that encrypts app tokens (created when missing). Nodes sharing a database must share
    /// it. Default: secret.key in the data directory.
    #[arg(long, env = "PROVISIO_SECRET_KEY_FILE", value_name = "FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Most provisioning jobs in flight on this node, over all apps: a safety valve. Each app's
    /// own concurrency (its flow settings) bounds its work. Default: 4096.
    #[arg(long, env = "PROVISIO_MAX_IN_FLIGHT", value_name = "N")]
    pub max_in_flight: Option<usize>,
    /// Seconds before a request to a target times out. Default: 30.
    #[arg(long, env = "PROVISIO_REQUEST_TIMEOUT", value_name = "SECS")]
    pub request_timeout: Option<u64>,
    /// Attempts before a failing job becomes a dead letter. Default: 12.
    #[arg(long, env = "PROVISIO_MAX_ATTEMPTS", value_name = "N")]
    pub max_attempts: Option<i64>,
    /// Transient failures in a row that quarantine an app. Default: 20.
    #[arg(long, env = "PROVISIO_QUARANTINE_AFTER", value_name = "N")]
    pub quarantine_after: Option<i64>,
    /// Seconds a worker keeps a claimed job before another node may take it over. Default: 120.
    #[arg(long, env = "PROVISIO_JOB_LEASE", value_name = "SECS")]
    pub job_lease: Option<u64>,
    /// Days to keep provisioning report records. Default: 180.
    #[arg(long, env = "PROVISIO_REPORT_RETENTION_DAYS", value_name = "DAYS")]
    pub report_retention_days: Option<u32>,
    /// Keep request and response bodies (redacted, truncated) in report records. Default: true.
    #[arg(long, env = "PROVISIO_REPORT_BODIES", value_name = "BOOL")]
    pub report_bodies: Option<bool>,
    /// Seconds between looks for accounts deactivated long enough to be deleted (apps with
    /// delete_deactivated_after_days). Default: 3600.
    #[arg(long, env = "PROVISIO_DEPROVISION_SWEEP", value_name = "SECS")]
    pub deprovision_sweep: Option<u64>,
    /// Accept app URLs at link-local addresses (169.254.0.0/16, fe80::/10, where clouds serve
    /// instance metadata) and connect to them. Default: false.
    #[arg(
        long,
        env = "PROVISIO_ALLOW_LINK_LOCAL_TARGETS",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub allow_link_local_targets: Option<bool>,
    /// Mark the console's cookies `Secure`: set it when a TLS proxy serves the hub (over the hub's
    /// own TLS, and from a --trusted-proxy that sends `X-Forwarded-Proto: https`, they are
    /// `Secure` anyway). Default: false.
    #[arg(
        long,
        env = "PROVISIO_SECURE_COOKIES",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub secure_cookies: Option<bool>,
    /// Directory for scheduled backups of the store (SQLite copies, or pg_dump archives on
    /// PostgreSQL); none are taken unless it is set.
    #[arg(long, env = "PROVISIO_BACKUP_DIR", value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Seconds between scheduled backups. Default: 86400 (daily).
    #[arg(long, env = "PROVISIO_BACKUP_INTERVAL", value_name = "SECS")]
    pub backup_interval: Option<u64>,
    /// How many scheduled backups are kept (the oldest go first). Default: 7.
    #[arg(long, env = "PROVISIO_BACKUP_KEEP", value_name = "N")]
    pub backup_keep: Option<usize>,
    /// TLS, trusted proxies, connection limits and the rate limit per token.
    #[command(flatten)]
    pub network: NetworkArgs,
    /// Minutes without a request after which a console session ends. Default: 30.
    #[arg(long, env = "PROVISIO_SESSION_IDLE_MINUTES", value_name = "MINUTES")]
    pub session_idle_minutes: Option<u32>,
    /// Hours after which a console session ends however busy. Default: 12.
    #[arg(long, env = "PROVISIO_SESSION_MAX_HOURS", value_name = "HOURS")]
    pub session_max_hours: Option<u32>,
}

/// The TOML file's shape; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    database_url_file: Option<PathBuf>,
    log_format: Option<LogFormat>,
    log_level: Option<String>,
    max_body_bytes: Option<usize>,
    shutdown_timeout: Option<u64>,
    secret_key_file: Option<PathBuf>,
    max_in_flight: Option<usize>,
    request_timeout: Option<u64>,
    max_attempts: Option<i64>,
    report_retention_days: Option<u32>,
    report_bodies: Option<bool>,
    quarantine_after: Option<i64>,
    job_lease: Option<u64>,
    deprovision_sweep: Option<u64>,
    allow_link_local_targets: Option<bool>,
    secure_cookies: Option<bool>,
    session_idle_minutes: Option<u32>,
    session_max_hours: Option<u32>,
    backup_dir: Option<PathBuf>,
    backup_interval: Option<u64>,
    backup_keep: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    trusted_proxy: Option<Vec<String>>,
    header_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    max_connections: Option<usize>,
    rate_limit: Option<u32>,
    rate_limit_burst: Option<u32>,
}

/// Which database to open.
#[derive(Debug, Clone)]
pub enum DatabaseConfig {
    /// The embedded SQLite store in this directory.
    Sqlite {
        /// Its directory.
        data_dir: PathBuf,
    },
    /// A server reached by this URL (a secret: it may hold a password).
    Url(SecretString),
}

impl DatabaseConfig {
    /// The connection URL.
    pub fn url(&self) -> SecretString {
        match self {
            DatabaseConfig::Sqlite { data_dir } => SecretString::from(crate::store::sqlite_url(data_dir)),
            DatabaseConfig::Url(url) => url.clone(),
        }
    }

    /// Says where the store is without revealing credentials.
    pub fn describe(&self) -> String {
        match self {
            DatabaseConfig::Sqlite { data_dir } => format!("SQLite in {}", data_dir.display()),
            DatabaseConfig::Url(url) => {
                let text = url.expose_secret();
                let host = text
                    .rsplit_once('@')
                    .map(|(_, rest)| rest)
                    .unwrap_or_else(|| text.split_once("://").map(|(_, r)| r).unwrap_or(""));
                format!("PostgreSQL at {host}")
            }
        }
    }
}

/// Scheduled backups: where they go, how often, how many are kept.
#[derive(Debug, Clone)]
pub struct BackupSchedule {
    /// The directory the backups are written to.
    pub dir: PathBuf,
    /// Time between backups.
    pub every: std::time::Duration,
    /// How many of the newest backups are kept.
    pub keep: usize,
}

/// The effective configuration of `provisio serve`.
#[derive(Debug, Clone)]
pub struct Config {
    /// HTTP listen address.
    pub listen: SocketAddr,
    /// The store.
    pub database: DatabaseConfig,
    /// Log format.
    pub log_format: LogFormat,
    /// Log filter.
    pub log_level: String,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Grace period for in-flight requests at shutdown.
    pub shutdown_timeout: std::time::Duration,
    /// The key file for app tokens.
    pub secret_key_file: PathBuf,
    /// Timeout of requests to targets.
    pub request_timeout: std::time::Duration,
    /// The engine's retry policy.
    pub engine: crate::outbound::EngineConfig,
    /// The background workers.
    pub workers: crate::outbound::WorkerConfig,
    /// How long report records are kept.
    pub report_retention: time::Duration,
    /// Scheduled backups, when a backup directory is set.
    pub backups: Option<BackupSchedule>,
    /// TLS, trusted proxies, connection limits, rate limit.
    pub network: NetworkConfig,
    /// Whether the console's cookies are always `Secure`.
    pub secure_cookies: bool,
    /// How long console sessions last.
    pub sessions: crate::domain::admin::SessionTimeouts,
    /// How failed logins are slowed down and locked out.
    pub login_throttle: crate::domain::admin::LoginThrottle,
}

fn read_file_config(path: Option<&Path>) -> Result<FileConfig> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read the configuration file {}: {e}", path.display())))?;
    toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
}

fn read_secret_file(path: &Path) -> Result<SecretString> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read the secret file {}: {e}", path.display())))?;
    Ok(SecretString::from(text.trim().to_owned()))
}

fn resolve_database(args: &StoreArgs, file: &FileConfig) -> Result<DatabaseConfig> {
    if let Some(url) = &args.database_url {
        return Ok(DatabaseConfig::Url(SecretString::from(url.clone())));
    }
    if let Some(path) = &args.database_url_file {
        return Ok(DatabaseConfig::Url(read_secret_file(path)?));
    }
    if let Some(dir) = &args.data_dir {
        return Ok(DatabaseConfig::Sqlite { data_dir: dir.clone() });
    }
    if let Some(url) = &file.database_url {
        return Ok(DatabaseConfig::Url(SecretString::from(url.clone())));
    }
    if let Some(path) = &file.database_url_file {
        return Ok(DatabaseConfig::Url(read_secret_file(path)?));
    }
    Ok(DatabaseConfig::Sqlite {
        data_dir: file.data_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
    })
}

impl StoreArgs {
    /// Resolves the store location from flags, environment, file and defaults.
    pub fn database(&self) -> Result<DatabaseConfig> {
        let file = read_file_config(self.config.as_deref())?;
        resolve_database(self, &file)
    }
}

impl ServeArgs {
    /// Resolves the full serve configuration.
    pub fn resolve(&self) -> Result<Config> {
        let file = read_file_config(self.store.config.as_deref())?;
        let database = resolve_database(&self.store, &file)?;
        let network = self.network.resolve(&file)?;
        let listen = match self.listen.or(file.listen) {
            Some(addr) => addr,
            None => DEFAULT_LISTEN
                .parse()
                .map_err(|e| Error::Config(format!("default listen address: {e}")))?,
        };
        let max_body_bytes = self
            .max_body_bytes
            .or(file.max_body_bytes)
            .unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            return Err(Error::Config("max_body_bytes must be at least 1024".into()));
        }
        let data_dir = match &database {
            DatabaseConfig::Sqlite { data_dir } => data_dir.clone(),
            DatabaseConfig::Url(_) => file.data_dir.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        };
        let secret_key_file = self
            .secret_key_file
            .clone()
            .or(file.secret_key_file)
            .unwrap_or_else(|| data_dir.join("secret.key"));
        let max_in_flight = self
            .max_in_flight
            .or(file.max_in_flight)
            .unwrap_or(crate::outbound::worker::DEFAULT_MAX_IN_FLIGHT);
        if max_in_flight == 0 || max_in_flight > 100_000 {
            return Err(Error::Config("max_in_flight must be between 1 and 100000".into()));
        }
        let mut engine = crate::outbound::EngineConfig::default();
        engine.max_attempts = self
            .max_attempts
            .or(file.max_attempts)
            .unwrap_or(engine.max_attempts)
            .max(1);
        engine.keep_bodies = self.report_bodies.or(file.report_bodies).unwrap_or(true);
        engine.quarantine_after = self
            .quarantine_after
            .or(file.quarantine_after)
            .unwrap_or(engine.quarantine_after)
            .max(1);
        engine.allow_link_local_targets = self
            .allow_link_local_targets
            .or(file.allow_link_local_targets)
            .unwrap_or(false);
        let lease = std::time::Duration::from_secs(self.job_lease.or(file.job_lease).unwrap_or(120).max(1));
        let retention_days = self.report_retention_days.or(file.report_retention_days).unwrap_or(180);
        if retention_days == 0 {
            return Err(Error::Config("report_retention_days must be at least 1".into()));
        }
        let idle = self.session_idle_minutes.or(file.session_idle_minutes).unwrap_or(30);
        let max = self.session_max_hours.or(file.session_max_hours).unwrap_or(12);
        if idle == 0 || max == 0 {
            return Err(Error::Config(
                "session_idle_minutes and session_max_hours must be at least 1".into(),
            ));
        }
        let backups = match self.backup_dir.clone().or(file.backup_dir) {
            Some(dir) => {
                let seconds = self.backup_interval.or(file.backup_interval).unwrap_or(86_400);
                let keep = self.backup_keep.or(file.backup_keep).unwrap_or(7);
                if seconds == 0 || keep == 0 {
                    return Err(Error::Config(
                        "backup_interval and backup_keep must be at least 1".into(),
                    ));
                }
                Some(BackupSchedule {
                    dir,
                    every: std::time::Duration::from_secs(seconds),
                    keep,
                })
            }
            None => None,
        };
        Ok(Config {
            network,
            backups,
            secure_cookies: self.secure_cookies.or(file.secure_cookies).unwrap_or(false),
            login_throttle: crate::domain::admin::LoginThrottle::default(),
            sessions: crate::domain::admin::SessionTimeouts {
                idle: time::Duration::minutes(i64::from(idle)),
                absolute: time::Duration::hours(i64::from(max)),
            },
            report_retention: time::Duration::days(i64::from(retention_days)),
            secret_key_file,
            request_timeout: std::time::Duration::from_secs(
                self.request_timeout.or(file.request_timeout).unwrap_or(30).max(1),
            ),
            engine,
            workers: crate::outbound::WorkerConfig {
                max_in_flight,
                lease,
                deprovision_sweep: std::time::Duration::from_secs(
                    self.deprovision_sweep.or(file.deprovision_sweep).unwrap_or(3600).max(1),
                ),
                ..Default::default()
            },
            listen,
            database,
            log_format: self.log_format.or(file.log_format).unwrap_or_default(),
            log_level: self
                .log_level
                .clone()
                .or(file.log_level)
                .unwrap_or_else(|| "info".to_owned()),
            max_body_bytes,
            shutdown_timeout: std::time::Duration::from_secs(
                self.shutdown_timeout.or(file.shutdown_timeout).unwrap_or(30),
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_file_and_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provisio.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nlog_format = \"json\"\ndata_dir = \"/srv/provisio\"\n",
        )
        .unwrap();
        let mut args = ServeArgs {
            store: StoreArgs {
                config: Some(path),
                ..Default::default()
            },
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(
            matches!(config.database, DatabaseConfig::Sqlite { ref data_dir } if data_dir == Path::new("/srv/provisio"))
        );
        args.listen = Some("127.0.0.1:9001".parse().unwrap());
        assert_eq!(args.resolve().unwrap().listen.port(), 9001);
    }

    #[test]
    fn secrets_come_from_files_and_stay_out_of_debug() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("db-url");
        std::fs::write(&secret, "postgres://u:hunter2-secret@db.internal/provisio\n").unwrap();
        let args = ServeArgs {
            store: StoreArgs {
                database_url_file: Some(secret),
                ..Default::default()
            },
            ..Default::default()
        };
        let config = args.resolve().unwrap();
        assert_eq!(
            config.database.url().expose_secret(),
            "postgres://u:hunter2-secret@db.internal/provisio"
        );
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!(!config.database.describe().contains("hunter2"));
    }

    #[test]
    fn link_local_targets_are_refused_unless_allowed() {
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            serve: ServeArgs,
        }
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provisio.toml");
        std::fs::write(&path, "allow_link_local_targets = true\n").unwrap();
        let resolve = |args: &[&str]| {
            let mut command = Command::try_parse_from(args).unwrap();
            if args.contains(&"--config") {
                command.serve.store.config = Some(path.clone());
            }
            command.serve.resolve().unwrap().engine.allow_link_local_targets
        };
        assert!(!resolve(&["serve"]), "refused by default");
        assert!(resolve(&["serve", "--allow-link-local-targets"]));
        assert!(resolve(&["serve", "--allow-link-local-targets=true"]));
        assert!(resolve(&["serve", "--config", "f"]), "the file allows it");
        assert!(
            !resolve(&["serve", "--config", "f", "--allow-link-local-targets=false"]),
            "the flag beats the file"
        );
    }

    #[test]
    fn unknown_file_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("provisio.toml");
        std::fs::write(&path, "lisen = \"127.0.0.1:9000\"\n").unwrap();
        let args = StoreArgs {
            config: Some(path),
            ..Default::default()
        };
        assert!(matches!(args.database(), Err(Error::Config(_))));
    }
}
