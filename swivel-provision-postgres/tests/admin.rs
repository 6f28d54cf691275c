//! Users, sites and settings on PostgreSQL, and records shared by two pools.

mod common;

use common::TestSchema;
use swivel_provision::{
    CodeStore, Destination, ProvisionRecord, ServerSettings, SettingsStore, SiteAdmin,
    SiteDirectory, SiteId, UserAdmin, UserEntry, UserRepository, Username,
};
use swivel_provision_postgres::{MAX_SETTING_KEY_BYTES, MAX_SETTING_VALUE_BYTES};

fn user(name: &str) -> Username {
    Username::parse(name).expect("valid username")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_are_added_replaced_listed_in_byte_order_and_removed() {
    let Some(url) = common::url("users_are_added_replaced_listed_in_byte_order_and_removed") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let store = schema.store().await;

    assert_eq!(store.find_user(&user("alice")).await.unwrap(), None);
    let alice = UserEntry::new(user("alice"))
        .with_destination(Destination::email("alice@example.com").unwrap())
        .with_destination(Destination::sms("+447700900123").unwrap())
        .with_mobile_group(true);
    store.put_user(&alice).await.unwrap();
    assert_eq!(
        store.find_user(&user("alice")).await.unwrap(),
        Some(alice.clone())
    );

    // Replace: new destinations and group membership.
    let alice2 = UserEntry::new(user("alice"))
        .with_destination(Destination::email("a2@example.com").unwrap());
    store.put_user(&alice2).await.unwrap();
    assert_eq!(
        store.find_user(&user("alice")).await.unwrap(),
        Some(alice2.clone())
    );

    // Byte order ("B" < "a" < "b" < "é"), whatever the database collation says.
    for name in ["b", "B", "\u{e9}t\u{e9}", "Zed"] {
        store.put_user(&UserEntry::new(user(name))).await.unwrap();
    }
    let names: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username.to_string())
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(names, ["B", "Zed", "alice", "b", "\u{e9}t\u{e9}"]);

    assert!(store.remove_user(&user("alice")).await.unwrap());
    assert!(!store.remove_user(&user("alice")).await.unwrap());
    assert_eq!(store.find_user(&user("alice")).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_are_added_replaced_listed_and_removed() {
    let Some(url) = common::url("sites_are_added_replaced_listed_and_removed") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let store = schema.store().await;
    let site = SiteId::parse("acme-1").unwrap();
    assert_eq!(store.find_site(&site).await.unwrap(), None);

    let mut settings = ServerSettings {
        hostname: "auth.example.com".into(),
        port: 8443,
        using_ssl: true,
        ..ServerSettings::default()
    };
    store.put_site(&site, &settings).await.unwrap();
    assert_eq!(
        store.find_site(&site).await.unwrap(),
        Some(settings.clone())
    );
    settings.push_support = true;
    store.put_site(&site, &settings).await.unwrap();
    let other = SiteId::parse("Acme.0").unwrap();
    store
        .put_site(&other, &ServerSettings::default())
        .await
        .unwrap();

    let listed = store.list_sites().await.unwrap();
    assert_eq!(
        listed,
        vec![
            (other.clone(), ServerSettings::default()),
            (site.clone(), settings)
        ]
    );
    assert!(store.remove_site(&site).await.unwrap());
    assert!(!store.remove_site(&site).await.unwrap());
    assert_eq!(store.find_site(&site).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_stored_replaced_deleted_and_bounded() {
    let Some(url) = common::url("settings_are_stored_replaced_deleted_and_bounded") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let store = schema.store().await;
    assert_eq!(store.get_setting("policy").await.unwrap(), None);
    store.put_setting("policy", "{\"a\":1}").await.unwrap();
    store.put_setting("policy", "{\"a\":2}").await.unwrap();
    assert_eq!(
        store.get_setting("policy").await.unwrap().as_deref(),
        Some("{\"a\":2}")
    );

    // The largest allowed value round-trips; one byte more is refused, not truncated.
    let big = "x".repeat(MAX_SETTING_VALUE_BYTES);
    store.put_setting("big", &big).await.unwrap();
    assert_eq!(
        store.get_setting("big").await.unwrap().map(|v| v.len()),
        Some(big.len())
    );
    let err = store
        .put_setting("big", &format!("{big}y"))
        .await
        .unwrap_err();
    assert!(!err.is_transient());
    let long_key = "k".repeat(MAX_SETTING_KEY_BYTES + 1);
    assert!(store.put_setting(&long_key, "v").await.is_err());

    assert!(store.delete_setting("policy").await.unwrap());
    assert!(!store.delete_setting("policy").await.unwrap());
    assert_eq!(store.get_setting("policy").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_pools_on_one_schema_see_each_others_writes() {
    let Some(url) = common::url("two_pools_on_one_schema_see_each_others_writes") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let a = schema.store().await;
    let b = schema.store().await;

    let mut record = ProvisionRecord::new(user("carol"));
    record.version = 1;
    assert!(a.compare_and_swap(None, &record).await.unwrap());
    assert_eq!(b.load(&user("carol")).await.unwrap(), Some(record.clone()));
    // b cannot insert again, and a stale swap from a fails once b moved on.
    assert!(!b.compare_and_swap(None, &record).await.unwrap());
    let mut next = record.clone();
    next.version = 2;
    assert!(b.compare_and_swap(Some(1), &next).await.unwrap());
    let mut stale = record.clone();
    stale.version = 2;
    stale.last_self_request = Some(time::OffsetDateTime::UNIX_EPOCH);
    assert!(!a.compare_and_swap(Some(1), &stale).await.unwrap());
    assert_eq!(a.load(&user("carol")).await.unwrap(), Some(next));

    b.put_setting("k", "v").await.unwrap();
    assert_eq!(a.get_setting("k").await.unwrap().as_deref(), Some("v"));
    let dave = UserEntry::new(user("dave"));
    a.put_user(&dave).await.unwrap();
    assert_eq!(b.find_user(&user("dave")).await.unwrap(), Some(dave));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemas_isolate_stores() {
    let Some(url) = common::url("schemas_isolate_stores") else {
        return;
    };
    let one = TestSchema::new(&url);
    let two = TestSchema::new(&url);
    let a = one.store().await;
    let b = two.store().await;
    a.put_setting("only-in-one", "1").await.unwrap();
    assert_eq!(b.get_setting("only-in-one").await.unwrap(), None);
    let record = {
        let mut r = ProvisionRecord::new(user("erin"));
        r.version = 1;
        r
    };
    assert!(a.compare_and_swap(None, &record).await.unwrap());
    assert!(b.load(&user("erin")).await.unwrap().is_none());
    let admin = common::admin_client(&url).await;
    let tables: i64 = admin
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1",
            &[&one.name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        tables, 8,
        "records, users, sites, settings, events, delivery_jobs, counters, schema_version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_expired_is_exact_below_the_microsecond() {
    let Some(url) = common::url("list_expired_is_exact_below_the_microsecond") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let store = schema.store().await;
    // PostgreSQL keeps microseconds; the record keeps nanoseconds.
    let t = time::OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
    let expires = t + time::Duration::nanoseconds(500);
    let mut r = ProvisionRecord::new(user("grace"));
    r.version = 1;
    r.pending = Some(swivel_provision::PendingCode {
        code_hash: swivel_provision::CodeHash([1; 32]),
        created_at: t,
        expires_at: expires,
        attempts_left: 5,
        origin: swivel_provision::Origin::Admin,
    });
    assert!(store.compare_and_swap(None, &r).await.unwrap());
    let listed = |now| {
        let store = store.clone();
        async move { store.list_expired(now, 10).await.unwrap() }
    };
    assert!(listed(t).await.is_empty(), "500 ns before expiry");
    assert!(
        listed(expires - time::Duration::nanoseconds(1))
            .await
            .is_empty()
    );
    assert_eq!(listed(expires).await, vec![user("grace")]);
    assert_eq!(
        listed(expires + time::Duration::nanoseconds(1)).await,
        vec![user("grace")]
    );
    assert_eq!(
        listed(t + time::Duration::seconds(1)).await,
        vec![user("grace")]
    );
}
