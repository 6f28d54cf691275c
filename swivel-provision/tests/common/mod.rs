//! Shared setup for the core's integration tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::sync::Arc;

use swivel_provision::testing::{ManualClock, RecordingSink, RecordingTransport};
use swivel_provision::*;

pub struct Kit {
    pub p: Provisioner,
    pub users: Arc<MemoryUsers>,
    pub store: Arc<MemoryStore>,
    pub sites: Arc<MemorySites>,
    pub outbox: Arc<RecordingTransport>,
    pub clock: Arc<ManualClock>,
    pub events: Arc<RecordingSink>,
}

pub fn user(name: &str) -> Username {
    Username::parse(name).unwrap()
}

pub fn kit_with(policy: Policy) -> Kit {
    let users = Arc::new(MemoryUsers::new());
    users.insert(
        UserEntry::new(user("alice"))
            .with_destination(Destination::email("alice@example.com").unwrap())
            .with_mobile_group(true),
    );
    users.insert(
        UserEntry::new(user("bob"))
            .with_destination(Destination::sms("+447700900123").unwrap())
            .with_mobile_group(true),
    );
    users.insert(
        UserEntry::new(user("carol"))
            .with_destination(Destination::email("carol@example.com").unwrap())
            .with_mobile_group(false),
    );
    users.insert(UserEntry::new(user("dave")).with_mobile_group(true));
    let store = Arc::new(MemoryStore::new());
    let sites = Arc::new(MemorySites::new());
    let outbox = Arc::new(RecordingTransport::new());
    let clock = Arc::new(ManualClock::fixed());
    let events = Arc::new(RecordingSink::new());
    let p = Provisioner::builder()
        .store(store.clone())
        .users(users.clone())
        .sites(sites.clone())
        .transport(Channel::Email, outbox.clone())
        .transport(Channel::Sms, outbox.clone())
        .server_key(ServerKey::from_bytes([5; 32]))
        .clock(clock.clone())
        .events(events.clone())
        .policy(policy)
        .delivery(Delivery::Direct)
        .build()
        .unwrap();
    Kit {
        p,
        users,
        store,
        sites,
        outbox,
        clock,
        events,
    }
}

pub fn kit() -> Kit {
    kit_with(Policy::default())
}

/// The default policy with detailed device errors (the seed's words).
pub fn detailed() -> Policy {
    let mut p = Policy::default();
    p.device_errors = DeviceErrors::Detailed;
    p
}

impl Kit {
    /// Requests a code for `name` as admin and returns it.
    pub async fn code(&self, name: &str) -> ProvisionCode {
        self.p
            .request_provision(&user(name), Origin::Admin)
            .await
            .unwrap();
        self.outbox.last_code_for(&user(name)).unwrap()
    }

    /// Provisions `name` and downloads strings once.
    pub async fn provisioned(&self, name: &str) -> (ProvisionId, SecurityStrings) {
        let code = self.code(name).await;
        let id = self
            .p
            .redeem(&user(name), &code, DeviceInfo::default())
            .await
            .unwrap();
        let s = self.p.download_strings(&id).await.unwrap().strings;
        (id, s)
    }
}

/// A wrong code of the right shape, different from `code`.
pub fn wrong(code: &ProvisionCode) -> ProvisionCode {
    let mut s: Vec<u8> = code.expose().bytes().collect();
    s[0] = if s[0] == b'0' { b'1' } else { b'0' };
    ProvisionCode::new(std::str::from_utf8(&s).unwrap())
}
