//! The full cycle the benches measure works on both stores, and the transport keeps only
//! what is needed.

use swivel_provision::{Origin, Pin, one_time_code};
use swivel_provision_benches::{Fixture, full_cycle};
use swivel_provision_sqlite::Durability;

#[tokio::test(flavor = "current_thread")]
async fn memory_cycle_downloads_strings_that_verify() {
    let f = Fixture::memory(4).unwrap();
    let user = &f.users[2];
    let first = full_cycle(&f.provisioner, &f.transport, user)
        .await
        .unwrap();
    assert_eq!(&first.username, user);
    assert_eq!(f.transport.pending(), 0, "the code was taken");
    // A second cycle on the same user replaces the device: new strings.
    let second = full_cycle(&f.provisioner, &f.transport, user)
        .await
        .unwrap();
    assert_ne!(first.strings.to_wire(), second.strings.to_wire());
    let pin = Pin::parse("1234").unwrap();
    let otc = one_time_code(second.strings.get(5).unwrap(), &pin, 5).unwrap();
    f.provisioner.verify_otc(user, &otc, &pin).await.unwrap();
    assert!(
        f.provisioner.verify_otc(user, &otc, &pin).await.is_err(),
        "index used once"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn unknown_user_fails_the_cycle() {
    let f = Fixture::memory(1).unwrap();
    let stranger = swivel_provision_benches::username(99);
    assert!(
        full_cycle(&f.provisioner, &f.transport, &stranger)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_cycle_on_prepared_users() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cycle.sqlite");
    let f = Fixture::sqlite(&path, Durability::Normal, 100, 10)
        .await
        .unwrap();
    assert_eq!(f.users.len(), 10);
    for user in &f.users {
        let got = full_cycle(&f.provisioner, &f.transport, user)
            .await
            .unwrap();
        assert_eq!(&got.username, user);
    }
    // The prepared user had generation 1; after a new device and download it is 1 again
    // for the new device, and the pending code is gone.
    let status = f.provisioner.status(&f.users[0]).await.unwrap();
    assert!(status.pending.is_none());
    assert_eq!(status.device.unwrap().generation, 1);
    // A code can be requested by an administrator for a prepared user.
    f.provisioner
        .request_provision(&f.users[1], Origin::Admin)
        .await
        .unwrap();
    assert_eq!(f.transport.pending(), 1);
}
