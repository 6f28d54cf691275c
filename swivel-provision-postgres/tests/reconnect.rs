//! Connection loss: calls fail with a transient error, and the pool recovers.
//!
//! Two ways to lose the server: PostgreSQL terminates the store's backends
//! (`pg_terminate_backend`), and a loopback TCP proxy in front of PostgreSQL goes away
//! (refusing connections) and comes back on the same port.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::TestSchema;
use swivel_provision::{CodeStore, ProvisionRecord, SettingsStore, StoreError, Username};
use swivel_provision_postgres::{PostgresOptions, PostgresStore};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The result of a call right after the connection was lost: success, or a transient error.
fn ok_or_transient<T: std::fmt::Debug>(result: Result<T, StoreError>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            assert!(e.is_transient(), "connection loss must be transient: {e:?}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminated_backends_give_transient_errors_then_the_pool_recovers() {
    let Some(url) = common::url("terminated_backends_give_transient_errors_then_the_pool_recovers")
    else {
        return;
    };
    let schema = TestSchema::new(&url);
    // A unique application name, so that only this store's connections are terminated.
    let app = format!("swivel_reconnect_{}", common::random_suffix());
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.application_name(&app);
    let store_url = key_value_url(&config, None);
    let store = PostgresStore::connect_with(&store_url, schema.options())
        .await
        .unwrap();
    let admin = common::admin_client(&url).await;
    let user = Username::parse("frank").unwrap();

    for round in 1..=3u64 {
        // Several pooled connections, all idle.
        let warm: Vec<_> = (0..4)
            .map(|i| {
                let s = store.clone();
                tokio::spawn(async move { s.put_setting(&format!("k{i}"), "v").await })
            })
            .collect();
        for w in warm {
            w.await.unwrap().unwrap();
        }
        let killed = admin
            .query(
                // The second argument makes each call wait (up to 10 s) until the backend is
                // gone, so no pooled connection is still half-alive when the store is used.
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap();
        assert!(
            !killed.is_empty(),
            "round {round}: the store had connections to kill"
        );

        // The next call succeeds or fails transiently; the one after succeeds.
        let mut record = ProvisionRecord::new(user.clone());
        record.version = round;
        let expected = (round > 1).then_some(round - 1);
        let first = ok_or_transient(store.compare_and_swap(expected, &record).await);
        eprintln!(
            "round {round}: first call after termination succeeded: {}",
            first.is_some()
        );
        if first.is_none() {
            // Nothing half-written: the record is either the old one or the new one, whole.
            let now = store.load(&user).await.unwrap();
            let version = now.as_ref().map(|r| r.version);
            assert!(version == expected || version == Some(round), "{version:?}");
            if version == expected {
                assert!(store.compare_and_swap(expected, &record).await.unwrap());
            }
        } else {
            assert_eq!(first, Some(true));
        }
        assert_eq!(store.load(&user).await.unwrap(), Some(record));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_and_returns_is_used_again() {
    let Some(url) = common::url("a_server_that_goes_away_and_returns_is_used_again") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let admin = common::admin_client(&url).await;
    let row = admin
        .query_one("SELECT host(inet_server_addr()), inet_server_port()", &[])
        .await
        .unwrap();
    let (Some(host), Some(port)) = (
        row.get::<_, Option<String>>(0),
        row.get::<_, Option<i32>>(1),
    ) else {
        common::skipped("proxy check needs a TCP connection to PostgreSQL, not a Unix socket");
        return;
    };
    let target: SocketAddr = format!("{host}:{port}")
        .parse()
        .or_else(|_| format!("[{host}]:{port}").parse())
        .unwrap();

    let (proxy_addr, proxy) = start_proxy("127.0.0.1:0".parse().unwrap(), target).await;
    let config: tokio_postgres::Config = url.parse().unwrap();
    let store_url = key_value_url(&config, Some(proxy_addr));
    let options = PostgresOptions {
        connect_timeout: Duration::from_secs(15),
        ..schema.options()
    };
    let store = PostgresStore::connect_with(&store_url, options)
        .await
        .unwrap();
    store.put_setting("state", "before").await.unwrap();

    // The server goes away: pooled connections are cut and new ones are refused.
    proxy.abort();
    let _ = proxy.await;
    for _ in 0..3 {
        let err = store.get_setting("state").await.unwrap_err();
        assert!(err.is_transient(), "server away: {err:?}");
        assert!(matches!(err, StoreError::Unavailable(_)));
        let err = store.put_setting("state", "during").await.unwrap_err();
        assert!(err.is_transient(), "server away: {err:?}");
    }

    // It comes back on the same address: the same store works again.
    let (_, proxy) = start_proxy(proxy_addr, target).await;
    let first = ok_or_transient(store.get_setting("state").await);
    eprintln!(
        "first call after the server returned succeeded: {}",
        first.is_some()
    );
    if let Some(value) = first {
        assert_eq!(value.as_deref(), Some("before"));
    }
    assert_eq!(
        store.get_setting("state").await.unwrap().as_deref(),
        Some("before")
    );
    store.put_setting("state", "after").await.unwrap();
    assert_eq!(
        store.get_setting("state").await.unwrap().as_deref(),
        Some("after")
    );
    proxy.abort();
}

/// A key/value connection string from a parsed config, optionally through another address.
fn key_value_url(config: &tokio_postgres::Config, via: Option<SocketAddr>) -> String {
    fn quote(v: &str) -> String {
        format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
    }
    let mut parts = Vec::new();
    match via {
        Some(addr) => {
            parts.push(format!("host={}", addr.ip()));
            parts.push(format!("port={}", addr.port()));
        }
        None => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .collect();
            parts.push(format!("host={}", quote(&hosts.join(","))));
            let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
            if !ports.is_empty() {
                parts.push(format!("port={}", ports.join(",")));
            }
        }
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={}", quote(user)));
    }
    if let Some(password) = config.get_password() {
        parts.push(format!(
            "password={}",
            quote(&String::from_utf8_lossy(password))
        ));
    }
    if let Some(db) = config.get_dbname() {
        parts.push(format!("dbname={}", quote(db)));
    }
    if let Some(app) = config.get_application_name() {
        parts.push(format!("application_name={}", quote(app)));
    }
    parts.join(" ")
}

/// A TCP proxy on `listen` to `target`. Aborting the task closes the listener and every
/// connection through it.
async fn start_proxy(listen: SocketAddr, target: SocketAddr) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind(listen).await.expect("bind the proxy");
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            connections.spawn(async move {
                if let Ok(mut server) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                }
            });
        }
    });
    (addr, task)
}
