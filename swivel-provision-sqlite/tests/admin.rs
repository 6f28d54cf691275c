//! Users, sites and settings: the administration calls hosts use.

use std::sync::Arc;

use swivel_provision::{
    Destination, ServerSettings, SettingsStore, SiteAdmin, SiteDirectory, SiteId, StoreError,
    UserAdmin, UserEntry, UserRepository, Username,
};
use swivel_provision_sqlite::{MAX_KEY_BYTES, MAX_VALUE_BYTES, SqliteStore};

fn user(name: &str) -> Username {
    Username::parse(name).expect("valid")
}

fn assert_shareable<T: Clone + Send + Sync + 'static>() {}

#[test]
fn the_store_can_be_shared() {
    assert_shareable::<SqliteStore>();
    fn as_traits(s: SqliteStore) {
        let _: Arc<dyn swivel_provision::CodeStore> = Arc::new(s.clone());
        let _: Arc<dyn UserAdmin> = Arc::new(s.clone());
        let _: Arc<dyn SiteAdmin> = Arc::new(s.clone());
        let _: Arc<dyn SettingsStore> = Arc::new(s);
    }
    let _ = as_traits;
}

#[tokio::test]
async fn users_are_added_updated_listed_and_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("users.db");
    let store = SqliteStore::open(&path).await.expect("open");
    let bob = UserEntry::new(user("bob"))
        .with_destination(Destination::email("bob@example.com").unwrap())
        .with_destination(Destination::sms("+15551234567").unwrap())
        .with_mobile_group(true);
    let alice = UserEntry::new(user("alice"));
    store.put_user(&bob).await.unwrap();
    store.put_user(&alice).await.unwrap();
    assert_eq!(
        store.find_user(&user("bob")).await.unwrap(),
        Some(bob.clone())
    );
    assert_eq!(store.find_user(&user("carol")).await.unwrap(), None);
    assert_eq!(
        store.list_users().await.unwrap(),
        vec![alice.clone(), bob.clone()]
    );

    let alice2 = alice
        .clone()
        .with_destination(Destination::email("alice@example.com").unwrap())
        .with_mobile_group(true);
    store.put_user(&alice2).await.unwrap();
    drop(store);

    let store = SqliteStore::open(&path).await.expect("reopen");
    assert_eq!(store.find_user(&user("alice")).await.unwrap(), Some(alice2));
    assert!(store.remove_user(&user("bob")).await.unwrap());
    assert!(!store.remove_user(&user("bob")).await.unwrap());
    assert_eq!(store.list_users().await.unwrap().len(), 1);
}

#[tokio::test]
async fn sites_are_added_listed_and_removed() {
    let store = SqliteStore::open_in_memory().await.expect("open");
    let demo = SiteId::parse("DEMO").unwrap();
    let acme = SiteId::parse("ACME").unwrap();
    let settings = ServerSettings {
        hostname: "auth.example.com".into(),
        port: 8443,
        using_ssl: true,
        ..ServerSettings::default()
    };
    store.put_site(&demo, &settings).await.unwrap();
    store
        .put_site(&acme, &ServerSettings::default())
        .await
        .unwrap();
    assert_eq!(
        store.find_site(&demo).await.unwrap(),
        Some(settings.clone())
    );
    assert_eq!(
        store.list_sites().await.unwrap(),
        vec![
            (acme.clone(), ServerSettings::default()),
            (demo.clone(), settings)
        ]
    );
    store
        .put_site(&demo, &ServerSettings::default())
        .await
        .unwrap();
    assert_eq!(
        store.find_site(&demo).await.unwrap(),
        Some(ServerSettings::default())
    );
    assert!(store.remove_site(&demo).await.unwrap());
    assert!(!store.remove_site(&demo).await.unwrap());
    assert_eq!(store.find_site(&demo).await.unwrap(), None);
}

#[tokio::test]
async fn settings_are_stored_replaced_and_deleted() {
    let store = SqliteStore::open_in_memory().await.expect("open");
    assert_eq!(store.get_setting("policy").await.unwrap(), None);
    store.put_setting("policy", "a = 1").await.unwrap();
    store.put_setting("policy", "a = 2").await.unwrap();
    assert_eq!(
        store.get_setting("policy").await.unwrap().as_deref(),
        Some("a = 2")
    );
    assert!(store.delete_setting("policy").await.unwrap());
    assert!(!store.delete_setting("policy").await.unwrap());

    let long_key = "k".repeat(MAX_KEY_BYTES + 1);
    let err = store
        .put_setting(&long_key, "v")
        .await
        .expect_err("key too long");
    assert!(matches!(err, StoreError::Backend(_)));
    let big = "v".repeat(MAX_VALUE_BYTES + 1);
    assert!(store.put_setting("big", &big).await.is_err());
    let fits = "v".repeat(MAX_VALUE_BYTES);
    store.put_setting("big", &fits).await.unwrap();
    assert_eq!(
        store.get_setting("big").await.unwrap().map(|v| v.len()),
        Some(MAX_VALUE_BYTES)
    );
}
