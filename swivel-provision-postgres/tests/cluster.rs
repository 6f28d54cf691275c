//! Two server instances (two `Provisioner`s, each with its own pool) on one database:
//! codes cross instances, redeem is exactly-once across them, strings agree.

mod common;

use std::sync::Arc;

use common::TestSchema;
use swivel_provision::testing::RecordingTransport;
use swivel_provision::{
    Channel, Delivery, Destination, DeviceInfo, Error, Origin, Pin, Provisioner, ServerKey,
    UserAdmin, UserEntry, Username, one_time_code,
};
use swivel_provision_postgres::PostgresStore;

const REDEEMS: usize = 32;

struct Instance {
    provisioner: Provisioner,
    outbox: Arc<RecordingTransport>,
}

fn instance(store: PostgresStore, key: &ServerKey) -> Instance {
    let outbox = Arc::new(RecordingTransport::new());
    let store = Arc::new(store);
    let provisioner = Provisioner::builder()
        .store(store.clone())
        .users(store.clone())
        .sites(store)
        .transport(Channel::Email, outbox.clone())
        .server_key(ServerKey::from_bytes(*key.expose_bytes()))
        .delivery(Delivery::Direct)
        .build()
        .expect("provisioner");
    Instance {
        provisioner,
        outbox,
    }
}

async fn add_user(store: &PostgresStore, name: &str) -> Username {
    let username = Username::parse(name).unwrap();
    store
        .put_user(
            &UserEntry::new(username.clone())
                .with_destination(Destination::email(&format!("{name}@example.com")).unwrap())
                .with_mobile_group(true),
        )
        .await
        .unwrap();
    username
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn exactly_one_of_32_redeems_spread_over_two_instances_wins() {
    let Some(url) = common::url("exactly_one_of_32_redeems_spread_over_two_instances_wins") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let key = ServerKey::generate();
    let store_a = schema.store().await;
    let store_b = schema.store().await;
    let alice = add_user(&store_a, "alice").await;
    let a = instance(store_a, &key);
    let b = instance(store_b, &key);

    // Requested on A ...
    a.provisioner
        .request_provision(&alice, Origin::Admin)
        .await
        .unwrap();
    let code = a.outbox.last_code_for(&alice).expect("A sent the code");
    assert!(b.outbox.messages().is_empty());

    // ... redeemed 32 times at once, half through A, half through B.
    let mut tasks = Vec::new();
    for i in 0..REDEEMS {
        let p = if i % 2 == 0 {
            a.provisioner.clone()
        } else {
            b.provisioner.clone()
        };
        let (alice, code) = (alice.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            p.redeem(&alice, &code, DeviceInfo::default()).await
        }));
    }
    let mut wins = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(id) => wins.push(id),
            // The default policy answers every failure alike (`device_errors = uniform`).
            Err(Error::ProvisionFailure) => {}
            Err(e) => panic!("a losing redeem must fail as a used code does, got {e:?}"),
        }
    }
    assert_eq!(
        wins.len(),
        1,
        "exactly one redeem wins across both instances"
    );
    let id = wins.pop().unwrap();

    // The code is spent for both instances (refused; uniform device errors say only that).
    for p in [&a.provisioner, &b.provisioner] {
        assert!(matches!(
            p.redeem(&alice, &code, DeviceInfo::default()).await,
            Err(Error::ProvisionFailure)
        ));
        assert!(p.status(&alice).await.unwrap().pending.is_none());
    }

    // Strings downloaded from B are the ones A checks, and the other way round; an index
    // used on one instance is used on both.
    let pin = Pin::parse("9132").unwrap();
    let from_b = b.provisioner.download_strings(&id).await.unwrap();
    let otc = one_time_code(from_b.strings.get(6).unwrap(), &pin, 6).unwrap();
    a.provisioner
        .verify_otc(&alice, &otc, &pin)
        .await
        .expect("A accepts B's strings");
    assert!(matches!(
        b.provisioner.verify_otc(&alice, &otc, &pin).await,
        Err(Error::OtcRejected)
    ));
    let from_a = a.provisioner.download_strings(&id).await.unwrap();
    assert_eq!(from_a.strings.generation(), from_b.strings.generation() + 1);
    let otc = one_time_code(from_a.strings.get(7).unwrap(), &pin, 7).unwrap();
    b.provisioner
        .verify_otc(&alice, &otc, &pin)
        .await
        .expect("B accepts A's strings");

    // Control: an instance with another key does not compute the same strings.
    let stranger = instance(schema.store().await, &ServerKey::generate());
    let otc = one_time_code(from_a.strings.get(8).unwrap(), &pin, 8).unwrap();
    assert!(
        stranger
            .provisioner
            .verify_otc(&alice, &otc, &pin)
            .await
            .is_err()
    );
    // The same key computes the same strings: a right code on the next index passes.
    let otc = one_time_code(from_a.strings.get(9).unwrap(), &pin, 9).unwrap();
    a.provisioner
        .verify_otc(&alice, &otc, &pin)
        .await
        .expect("same key: accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_requested_on_one_instance_is_redeemed_on_the_other() {
    let Some(url) = common::url("a_code_requested_on_one_instance_is_redeemed_on_the_other") else {
        return;
    };
    let schema = TestSchema::new(&url);
    let key = ServerKey::generate();
    let store_a = schema.store().await;
    let store_b = schema.store().await;
    let bob = add_user(&store_b, "bob").await;
    let a = instance(store_a, &key);
    let b = instance(store_b, &key);

    // B → A.
    b.provisioner
        .request_provision(&bob, Origin::Admin)
        .await
        .unwrap();
    let code = b.outbox.last_code_for(&bob).unwrap();
    let first = a
        .provisioner
        .redeem(&bob, &code, DeviceInfo::default())
        .await
        .unwrap();
    assert!(a.provisioner.status(&bob).await.unwrap().device.is_some());

    // A → B: reprovisioning on A makes the device from the first redeem stale on both.
    a.provisioner
        .request_provision(&bob, Origin::Admin)
        .await
        .unwrap();
    let code = a.outbox.last_code_for(&bob).unwrap();
    let second = b
        .provisioner
        .redeem(&bob, &code, DeviceInfo::default())
        .await
        .unwrap();
    for p in [&a.provisioner, &b.provisioner] {
        assert!(matches!(
            p.download_strings(&first).await,
            Err(Error::UnknownProvisionId)
        ));
        p.download_strings(&second).await.expect("current device");
    }
    // A wrong code on one instance costs an attempt seen by the other.
    a.provisioner
        .request_provision(&bob, Origin::Admin)
        .await
        .unwrap();
    let before = b
        .provisioner
        .status(&bob)
        .await
        .unwrap()
        .pending
        .unwrap()
        .attempts_left;
    let wrong = swivel_provision::ProvisionCode::new("0000000000");
    assert!(
        a.provisioner
            .redeem(&bob, &wrong, DeviceInfo::default())
            .await
            .is_err()
    );
    let after = b
        .provisioner
        .status(&bob)
        .await
        .unwrap()
        .pending
        .unwrap()
        .attempts_left;
    assert_eq!(after + 1, before);
}
