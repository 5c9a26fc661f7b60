//! Starting, watching and stopping the services of `tokenlb up`.
//!
//! Order matters and is kept in one place: bind every port (a taken one fails before anything
//! runs), open the manager (store, credentials, tokens.json, demo tokens), serve, self-test,
//! then wait for Ctrl-C / SIGTERM or a service that stops by itself. Stopping is two-phase
//! through two watch channels: the web API first, then the manager and the emulator, so the
//! web API's last reports reach a manager that then flushes them.

use super::{demo, pool, selftest, summary, webapi_args, Args};
use crate::cmd::{manager::shutdown_signal, webapi, CliError};
use anyhow::Context;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;
use tokenlb_core::Secret;
use tokenlb_manager::config::{Config, HealthConfig, HealthKind};
use tokenlb_manager::Manager;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a service may take to finish its requests after the stop signal.
const STOP_GRACE: Duration = Duration::from_secs(15);

type Task = JoinHandle<anyhow::Result<()>>;

pub async fn up(args: Args, mut config: Config) -> Result<(), CliError> {
    let emulator = match args.demo {
        true => Some(bind(args.emulator_listen, "Wopan emulator", "--emulator-listen").await?),
        false => None,
    };
    let manager_listener = bind(config.listen, "token manager", "--manager-listen").await?;
    let webapi_listener = bind(args.webapi_listen, "web API", "--webapi-listen").await?;
    let manager_addr = local_addr(&manager_listener)?;
    let webapi_addr = local_addr(&webapi_listener)?;

    let (user_tx, mut user_stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = user_tx.send(true);
    });
    let (web_tx, web_rx) = watch::channel(false);
    let (core_tx, core_rx) = watch::channel(false);

    let mut emulator_task: Option<Task> = None;
    let mut emulator_addr = None;
    if let Some(listener) = emulator {
        emulator_addr = Some(local_addr(&listener)?);
        emulator_task = Some(demo::spawn_emulator(listener, stopped(core_rx.clone())));
    }

    let data_dir = config.data_dir.clone();
    let (wopan_url, cache_dir) = match emulator_addr {
        Some(a) => (format!("http://{}", reachable(a)), data_dir.clone()),
        None => (
            args.wopan_base_url
                .clone()
                .unwrap_or_else(|| tokenlb_wopan::client::DEFAULT_BASE_URL.to_string()),
            data_dir.clone(),
        ),
    };
    // The launcher knows the Wopan base URL, so pools without a health table of their own
    // are checked (and their tokens refreshed) against it.
    config.default_health = Some(HealthConfig {
        kind: HealthKind::Wopan,
        wopan_base_url: wopan_url.clone(),
        ..HealthConfig::default()
    });
    if args.demo {
        demo::add_proxy_route(&mut config, &wopan_url, &pool(&args));
    }
    let access = client_access(&config, manager_addr);
    let coordinator = tokenlb_cluster::coordinator(&config).await?;
    let manager = Manager::open_with(config.clone(), coordinator).await?;
    let mut demo_reset = 0;
    let demo_added = match args.demo {
        true => {
            let svc = manager.state().service();
            demo::claim(svc, &data_dir).map_err(|e| CliError::usage(format!("{e:#}")))?;
            demo_reset = demo::reset_refreshed(svc, &pool(&args)).await?;
            Some(demo::add_tokens(svc, &pool(&args)).await?)
        }
        false => None,
    };
    let tokens_file = manager.tokens_file_import().cloned();
    let svc_for_demo = manager.state().service().clone();
    let manager_task: Task = tokio::spawn(manager.serve(manager_listener, stopped(core_rx)));

    let key = match access {
        Access::Key(k) => Some(k),
        Access::Loopback => None,
        Access::AdminKey => Some(admin_key(&config)?),
    };
    let manager_url = format!("http://{}", reachable(manager_addr));
    let key_text = key.as_ref().map(|k| k.expose().to_string());
    let wargs = webapi_args(&args, manager_url.clone(), key_text, wopan_url, cache_dir);
    let webapi_cfg = webapi::config(&wargs)?;
    let state = tokenlb_webapi::AppState::new(&webapi_cfg).map_err(CliError::runtime)?;
    let webapi_task: Task = tokio::spawn(async move {
        tokenlb_webapi::serve(state, webapi_listener, stopped(web_rx))
            .await
            .context("the web API stopped")
    });

    let mut demo_enabled = 0;
    if args.demo {
        match demo::reactivate(&svc_for_demo, &wargs.pool).await {
            Ok(n) => demo_enabled = n,
            Err(e) => println!("warning: demo tokens left invalid or cooling stay so: {e:#}"),
        }
    }
    let services = summary::Services {
        manager: manager_addr,
        webapi: webapi_addr,
        emulator: emulator_addr,
        demo_added,
        demo_enabled,
        demo_reset,
        tokens_file,
    };
    summary::started(&services, &config, &wargs.pool);
    let plan = selftest::Plan {
        manager_url: manager_url.clone(),
        key,
        admin_key: admin_key(&config).ok(),
        pool: wargs.pool.clone(),
        webapi_url: format!("http://{}", reachable(webapi_addr)),
    };
    let report = tokio::select! {
        r = selftest::run(&plan) => Some(r),
        _ = user_stop.wait_for(|s| *s) => None,
    };
    let mut failure = None;
    if let Some(report) = &report {
        summary::self_test_result(report, args.demo, &config, &manager_url, &wargs.pool);
        if args.demo && !report.passed() {
            failure = Some(CliError::runtime(
                "the demo self-test failed (see the steps above); stopping",
            ));
        } else {
            summary::running(&services, &config, report, &wargs.pool);
        }
    }

    let mut web = Some(webapi_task);
    let mut core = Some(manager_task);
    if failure.is_none() && report.is_some() {
        failure = wait(&mut user_stop, &mut web, &mut core, &mut emulator_task).await;
    }
    println!("Stopping…");
    let _ = web_tx.send(true);
    let mut problems: Vec<anyhow::Error> = finish("web API", web).await.into_iter().collect();
    let _ = core_tx.send(true);
    problems.extend(finish("token manager", core).await);
    problems.extend(finish("Wopan emulator", emulator_task).await);
    if let Some(f) = failure {
        return Err(f);
    }
    if let Some(p) = problems.into_iter().next() {
        return Err(CliError::Runtime(p));
    }
    println!("Stopped (stats flushed).");
    Ok(())
}

/// Waits for Ctrl-C / SIGTERM, or for a service that stops on its own (an error).
async fn wait(
    user_stop: &mut watch::Receiver<bool>,
    web: &mut Option<Task>,
    core: &mut Option<Task>,
    emulator: &mut Option<Task>,
) -> Option<CliError> {
    let (name, joined) = tokio::select! {
        _ = user_stop.wait_for(|s| *s) => return None,
        r = join_opt(web) => ("web API", r),
        r = join_opt(core) => ("token manager", r),
        r = join_opt(emulator) => ("Wopan emulator", r),
    };
    Some(CliError::runtime(format!(
        "the {name} stopped unexpectedly: {}",
        match joined {
            Some(Ok(Ok(()))) => "no error".to_string(),
            Some(Ok(Err(e))) => format!("{e:#}"),
            Some(Err(e)) => e.to_string(),
            None => "not running".to_string(),
        }
    )))
}

/// Joins a task once; a finished task is taken out so it is not joined again.
async fn join_opt(
    task: &mut Option<Task>,
) -> Option<Result<anyhow::Result<()>, tokio::task::JoinError>> {
    match task.as_mut() {
        Some(t) => {
            let r = t.await;
            *task = None;
            Some(r)
        }
        None => std::future::pending().await,
    }
}

/// Waits (bounded) for a stopped service; its error, if any.
async fn finish(name: &str, task: Option<Task>) -> Option<anyhow::Error> {
    let mut task = task?;
    match tokio::time::timeout(STOP_GRACE, &mut task).await {
        Ok(Ok(Ok(()))) => None,
        Ok(Ok(Err(e))) => Some(e.context(format!("the {name} failed while stopping"))),
        Ok(Err(e)) => Some(anyhow::anyhow!("the {name} failed while stopping: {e}")),
        Err(_) => {
            task.abort();
            Some(anyhow::anyhow!(
                "the {name} did not stop within {} s",
                STOP_GRACE.as_secs()
            ))
        }
    }
}

/// A future that resolves when the channel says stop (or its sender is gone).
async fn stopped(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Binds one service's port, turning the usual failures into one sentence.
async fn bind(addr: SocketAddr, what: &str, flag: &str) -> Result<TcpListener, CliError> {
    TcpListener::bind(addr).await.map_err(|e| {
        CliError::runtime(match e.kind() {
            ErrorKind::AddrInUse => format!(
                "port {addr} for the {what} is already in use (is tokenlb already running?); \
                 stop the other program or choose another address with {flag}"
            ),
            ErrorKind::PermissionDenied => format!(
                "no permission to listen on {addr} for the {what} (ports below 1024 need privileges); use {flag}"
            ),
            ErrorKind::AddrNotAvailable => {
                format!("address {addr} ({flag}) does not belong to this machine")
            }
            _ => format!("cannot listen on {addr} for the {what}: {e}"),
        })
    })
}

fn local_addr(listener: &TcpListener) -> Result<SocketAddr, CliError> {
    listener
        .local_addr()
        .map_err(|e| CliError::runtime(format!("cannot read the listening address: {e}")))
}

pub use tokenlb_manager::server::reachable;

/// How the in-process web API (and the self-test) may call the manager's client routes.
enum Access {
    /// Client keys are configured: use the first.
    Key(Secret),
    /// None configured and the manager is reachable on loopback, which it lets in.
    Loopback,
    /// None configured and the manager is bound to a non-loopback address: the admin key.
    AdminKey,
}

fn client_access(config: &Config, manager: SocketAddr) -> Access {
    if let Some(k) = config.client_keys.first() {
        return Access::Key(k.key.clone());
    }
    if reachable(manager).ip().is_loopback() {
        Access::Loopback
    } else {
        Access::AdminKey
    }
}

/// The admin key: configured, or the file the manager generated at open.
fn admin_key(config: &Config) -> Result<Secret, CliError> {
    if let Some(k) = &config.admin.key {
        return Ok(k.clone());
    }
    let path = config.data_dir.join("admin-key");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the admin key file {}", path.display()))?;
    Ok(Secret::new(text.trim()))
}
