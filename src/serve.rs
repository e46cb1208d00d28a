//! The subcommands' bodies: serve, migrate, demo, token.

use std::net::SocketAddr;
use std::sync::Arc;

use std::time::Duration;
use theraroom::auth::{AuthGuard, JwtKeys, Role};
use theraroom::clock::parse_duration_secs;
use theraroom::config::{load_or_create_secret, Settings};

use signaling::HubConfig;
use theraroom::rtc::{HubControl, StoreGatekeeper};
use theraroom::state::AppState;
use theraroom::store::Store;
use theraroom::tls::TlsSource;
use theraroom::turn::TurnIssuer;

/// Opens the database (creating the data directory for SQLite), migrates it, installs
/// the data keys and seals notes still stored in plaintext.
pub(crate) async fn open_store(settings: &Settings) -> Result<Store, String> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        format!(
            "cannot create data dir {}: {e}",
            settings.data_dir.display()
        )
    })?;
    let store = Store::connect(&settings.database_url())
        .await
        .map_err(|e| format!("cannot open database: {e}"))?;
    store
        .migrate()
        .await
        .map_err(|e| format!("migration failed: {e}"))?;
    let keys = theraroom::data_keys::load(&settings.data_dir, settings.data_key.as_deref())?;
    store.install_data_keys(keys);
    store
        .seal_plaintext_notes()
        .await
        .map_err(|e| format!("cannot seal the notes stored in plaintext: {e}"))?;
    Ok(store)
}

fn jwt_keys(settings: &Settings) -> Result<JwtKeys, String> {
    let secret = load_or_create_secret(
        &settings.data_dir,
        "jwt_secret",
        settings.jwt_secret.as_deref(),
        "JWT secret",
    )?;
    Ok(JwtKeys::with_policy(&secret, settings.token_policy()?))
}

/// Refuses a `--ttl` above the longest lifetime tokens of `role` may have.
fn checked_ttl(keys: &JwtKeys, role: Role, ttl: &str) -> Result<i64, String> {
    let secs = parse_duration_secs(ttl)
        .and_then(|s| i64::try_from(s).ok())
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("invalid --ttl {ttl:?}"))?;
    let max = keys.policy().max_ttl_secs(role);
    if secs > max {
        let flag = if role == Role::Guest {
            "--max-guest-token-ttl"
        } else {
            "--max-token-ttl"
        };
        return Err(format!(
            "--ttl {ttl} is longer than the {max} s a {} token may live (see {flag})",
            role.as_str()
        ));
    }
    Ok(secs)
}

fn turn_issuer(settings: &Settings) -> Result<TurnIssuer, String> {
    let secret = load_or_create_secret(
        &settings.data_dir,
        "turn_secret",
        settings.turn_secret.as_deref(),
        "TURN secret",
    )?;
    let uris = settings
        .turn_uris
        .iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect();
    Ok(TurnIssuer::new(secret, uris, settings.turn_ttl_secs()?))
}

/// `theraroom migrate`.
pub async fn migrate(settings: &Settings) -> Result<(), String> {
    let store = open_store(settings).await?;
    tracing::info!(backend = ?store.backend(), "migrations applied");
    store.close().await;
    Ok(())
}

/// `theraroom demo --json`.
pub async fn demo(settings: &Settings, ttl: &str) -> Result<(), String> {
    let keys = jwt_keys(settings)?;
    let ttl = checked_ttl(&keys, Role::Therapist, ttl)?;
    let password = demo_password(settings)?;
    let store = open_store(settings).await?;
    let data = theraroom::demo::ensure_demo(&store, &keys, ttl, &password)
        .await
        .map_err(|e| format!("cannot create demo data: {e}"))?;
    store.close().await;
    println!(
        "{}",
        serde_json::to_string_pretty(&data).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// The demo accounts' password: generated once, kept in `<data dir>/demo-password`.
fn demo_password(settings: &Settings) -> Result<String, String> {
    let path = settings.data_dir.join("demo-password");
    if let Ok(text) = std::fs::read_to_string(&path) {
        if text.trim().len() >= theraroom::accounts::password::MIN_LEN {
            return Ok(text.trim().to_string());
        }
    }
    let password: String = theraroom::random::url_token().chars().take(16).collect();
    std::fs::create_dir_all(&settings.data_dir)
        .and_then(|()| std::fs::write(&path, &password))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(password)
}

/// `theraroom token`.
pub fn token(
    settings: &Settings,
    role: &str,
    user: &str,
    org: Option<&str>,
    session: Option<&str>,
    ttl: &str,
) -> Result<(), String> {
    let role = Role::parse(role).ok_or_else(|| format!("unknown role {role:?}"))?;
    if role == Role::Guest && session.is_none() {
        return Err("guest tokens need --session".into());
    }
    let keys = jwt_keys(settings)?;
    let ttl = checked_ttl(&keys, role, ttl)?;
    let (token, _) = keys.issue(user, role, org, session, ttl);
    println!("{token}");
    Ok(())
}

/// `theraroom serve`: runs until SIGINT/SIGTERM, then drains connections.
pub async fn serve(settings: Settings) -> Result<(), String> {
    // First, so that a bad certificate or key fails before anything else starts.
    let tls = load_tls(&settings)?;
    theraroom::cluster::startup::check_settings(&settings, tls.is_some())?;
    let store = open_store(&settings).await?;
    if settings.cluster.enabled() {
        // Rows marked active may be calls running on the other nodes.
        tracing::info!("several nodes: participant rows of earlier runs are left as they are");
    } else {
        let stale = store
            .close_all_active_participants()
            .await
            .map_err(|e| e.to_string())?;
        if stale > 0 {
            tracing::info!(
                stale,
                "closed participant rows left active by a previous run"
            );
        }
    }
    let jwt = jwt_keys(&settings)?;
    let turn = turn_issuer(&settings)?;
    // The metrics recorder goes in before the SFU: its workers take their counter
    // handles when they start, and handles taken earlier would count into nothing.
    let _ = theraroom::metrics::handle();
    let sfu = sfu::Sfu::new(sfu::SfuConfig {
        bind_ip: settings.rtc_ip,
        public_ips: settings.rtc_public_ips.clone(),
        ice_lite: settings.ice_lite,
        ice_tcp: !settings.no_ice_tcp,
        rtc_port: settings.rtc_port,
        workers: settings.rtc_workers,
        coalesce_us: settings.rtc_coalesce_us,
    })
    .map_err(|e| format!("cannot start the SFU: {e}"))?;
    let hub = theraroom::rtc::hub(
        sfu,
        StoreGatekeeper {
            store: store.clone(),
            jwt: jwt.clone(),
            turn: turn.clone(),
        },
        HubConfig {
            reconnect_grace: Duration::from_secs(settings.reconnect_grace_secs()?),
            write_timeout: Duration::from_secs(settings.ws_write_timeout_secs()?),
            max_connections: settings.max_connections,
            max_connections_per_ip: settings.max_connections_per_ip,
            ..HubConfig::default()
        },
    );
    let listener = tokio::net::TcpListener::bind(settings.bind)
        .await
        .map_err(|e| format!("cannot bind {}: {e}", settings.bind))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot bind {}: {e}", settings.bind))?;
    let auth_guard = AuthGuard::new(settings.auth_failures_per_minute()?);
    let cluster = theraroom::cluster::startup::join(&settings, local, &hub, &auth_guard).await?;
    let live: Arc<dyn theraroom::state::LiveControl> = match &cluster {
        Some(cluster) => Arc::new(theraroom::cluster::bus::ClusterLive {
            cluster: cluster.clone(),
            hub: hub.clone(),
        }),
        None => Arc::new(HubControl(hub.clone())),
    };
    let state = AppState {
        store: store.clone(),
        jwt,
        turn,
        live: Arc::clone(&live),
        auth_guard,
        accounts: settings.accounts_config(tls.is_some(), local),
    };
    tokio::spawn(remind_group_sessions(store.clone(), live));
    // Holds found past their expiry are recorded `expired` (and audited) from here on.
    theraroom::schedule::expiry::spawn_sweeper(store.clone());
    // Events left in the outbox by a previous run are sent from here on.
    theraroom::webhooks::Worker::new(store.clone(), settings.webhooks.delivery_config()?)?.spawn();
    let extra =
        theraroom::rtc::routes(hub.clone(), cluster.clone()).merge(theraroom::metrics::routes());
    let http = settings.http_options()?;
    if let Some(cluster) = &cluster {
        http.limiters.share(cluster.clone());
    }
    tokio::spawn(http.limiters.clone().prune_forever(Duration::from_secs(60)));
    let app = theraroom::app::build_with(state, settings.static_dir(), extra, &http)
        .layer(axum::Extension(settings.webhooks.policy()))
        .layer(axum::Extension(settings.service_codes()));
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(addr = %local, url = %format!("{scheme}://{local}"), backend = ?store.backend(), "TheraRoom listening");
    serve_http(listener, app, tls, hub, cluster).await?;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Serves `app` on `listener`, over TLS when `tls` is set, until SIGINT/SIGTERM; then
/// closes the live calls and drains the HTTP connections.
async fn serve_http(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    tls: Option<theraroom::tls::Tls>,
    hub: signaling::Hub,
    cluster: Option<theraroom::cluster::Cluster>,
) -> Result<(), String> {
    let shutdown = async move {
        shutdown_signal().await;
        // Several nodes: let go of the rooms first, so that the clients told to
        // reconnect below reopen them on the other nodes at once.
        if let Some(cluster) = &cluster {
            cluster.drain(&hub).await;
        }
        // Live calls are upgraded connections the HTTP server does not wait for:
        // close them ourselves so clients know to reconnect and rows are closed.
        hub.shutdown().await;
    };
    // The peer address keys the REST rate limits, the failed-authentication limit and
    // the per-address cap of `/rtc`.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    let served = match tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(tls) => {
            use axum::serve::ListenerExt;
            let listener = theraroom::tls::TlsListener::new(listener, tls.config)
                .map_err(|e| format!("cannot listen over TLS: {e}"))?
                // `TapIo` is what gives a listener of our own `ConnectInfo<SocketAddr>`.
                .tap_io(|_| {});
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    served.map_err(|e| format!("server error: {e}"))
}

/// The certificate of `--tls-cert/--tls-key` or `--tls-self-signed`, if any; a
/// generated one is announced with its fingerprint (log and stderr) and a warning.
fn load_tls(settings: &Settings) -> Result<Option<theraroom::tls::Tls>, String> {
    let Some(source) = settings.tls_source()? else {
        return Ok(None);
    };
    let tls = theraroom::tls::load(&source)?;
    match &source {
        TlsSource::SelfSigned { names } => {
            let names = names.join(", ");
            tracing::warn!(
                fingerprint = %tls.fingerprint,
                names = %names,
                "HTTPS with a self-signed certificate generated at startup: browsers will show a \
                 certificate warning; this is for trying TheraRoom on a LAN, not for production"
            );
            eprintln!(
                "TLS: self-signed certificate for {names}\n\
                 TLS: SHA-256 fingerprint {}\n\
                 TLS: WARNING: browsers will show a certificate warning (compare the fingerprint \
                 before accepting it). This is for trying TheraRoom on a LAN, not for production: \
                 use --tls-cert/--tls-key or a TLS-terminating proxy there.",
                tls.fingerprint
            );
        }
        TlsSource::Files { cert, .. } => tracing::info!(
            cert = %cert.display(),
            fingerprint = %tls.fingerprint,
            "HTTPS with the configured certificate"
        ),
    }
    Ok(Some(tls))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown requested");
}

/// How far ahead group-session reminders go out, and how often to look.
const REMINDER_LEAD_MS: i64 = 30 * 60 * 1000;
const REMINDER_EVERY: Duration = Duration::from_secs(60);

/// Sends group-session reminders (stored, and pushed to connected users) once per
/// session, `REMINDER_LEAD_MS` before it starts. Runs until the process stops.
async fn remind_group_sessions(store: Store, live: Arc<dyn theraroom::state::LiveControl>) {
    let mut tick = tokio::time::interval(REMINDER_EVERY);
    loop {
        tick.tick().await;
        match theraroom::store::group_reminders::send_due_reminders(
            &store,
            theraroom::clock::now_ms(),
            REMINDER_LEAD_MS,
        )
        .await
        {
            Ok(sent) => {
                for n in sent {
                    live.notify(&n.user_id, n.to_json());
                }
            }
            Err(err) => tracing::warn!(error = %err, "group session reminders failed"),
        }
    }
}
