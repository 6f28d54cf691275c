//! `Provisioner::purge_expired` with SqliteStore as store and user directory: expired codes
//! go, live codes and devices stay.

use std::sync::Arc;

use swivel_provision::testing::{ManualClock, RecordingTransport};
use swivel_provision::{
    Channel, CodeStore, Delivery, Destination, DeviceInfo, Origin, Provisioner, ServerKey,
    UserAdmin, UserEntry, Username,
};
use swivel_provision_sqlite::SqliteStore;
use time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_clears_expired_codes_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = SqliteStore::open(dir.path().join("purge.db"))
        .await
        .expect("open");
    let names = [
        "expired-no-device",
        "expired-with-device",
        "live",
        "provisioned",
    ];
    for n in names {
        store
            .put_user(
                &UserEntry::new(Username::parse(n).unwrap())
                    .with_destination(Destination::email("u@example.com").unwrap())
                    .with_mobile_group(true),
            )
            .await
            .unwrap();
    }
    let [gone, kept_device, live, provisioned] = names.map(|n| Username::parse(n).unwrap());
    let clock = Arc::new(ManualClock::fixed());
    let outbox = Arc::new(RecordingTransport::new());
    let p = Provisioner::builder()
        .store(Arc::new(store.clone()))
        .users(Arc::new(store.clone()))
        .transport(Channel::Email, outbox.clone())
        .server_key(ServerKey::generate())
        .clock(clock.clone())
        .delivery(Delivery::Direct)
        .build()
        .unwrap();
    let provision = |u: Username| {
        let (p, outbox) = (p.clone(), outbox.clone());
        async move {
            p.request_provision(&u, Origin::Admin).await.unwrap();
            let code = outbox.last_code_for(&u).unwrap();
            p.redeem(&u, &code, DeviceInfo::default()).await.unwrap()
        }
    };
    provision(kept_device.clone()).await;
    let provisioned_id = provision(provisioned.clone()).await;
    p.request_provision(&gone, Origin::Admin).await.unwrap();
    p.request_provision(&kept_device, Origin::Admin)
        .await
        .unwrap();
    clock.advance(Duration::seconds(601));
    p.request_provision(&live, Origin::Admin).await.unwrap();
    let live_code = outbox.last_code_for(&live).unwrap();

    assert_eq!(p.purge_expired().await.unwrap(), 2);
    assert_eq!(
        store.load(&gone).await.unwrap(),
        None,
        "empty expired record deleted"
    );
    let kept = store
        .load(&kept_device)
        .await
        .unwrap()
        .expect("record with a device kept");
    assert!(kept.pending.is_none() && kept.device.is_some());
    assert!(
        store.load(&live).await.unwrap().unwrap().pending.is_some(),
        "live code kept"
    );
    assert!(store.list_expired(p.now(), 10).await.unwrap().is_empty());
    // The untouched ones still work.
    p.redeem(&live, &live_code, DeviceInfo::default())
        .await
        .expect("live code redeems");
    p.download_strings(&provisioned_id)
        .await
        .expect("device still works");
    assert_eq!(p.purge_expired().await.unwrap(), 0);
}
