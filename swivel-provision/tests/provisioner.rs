//! Every transition and rule of DESIGN §3 through the public API.

mod common;

use common::*;
use swivel_provision::*;
use time::Duration;

#[tokio::test]
async fn seed_log_lines_for_a_provision() {
    let k = kit();
    let (_, _) = k.provisioned("alice").await;
    let lines = k.events.lines();
    assert_eq!(lines[0], "Provision code created for user \"alice\"");
    assert_eq!(
        lines[1],
        "Message sent to user: alice, destination: alice@example.com."
    );
    assert_eq!(
        lines[2],
        "User \"alice\" can now reprovision their mobile device."
    );
    assert_eq!(lines[3], "User \"alice\" provisioned successfully");
}

#[tokio::test]
async fn code_goes_to_the_users_own_destination() {
    let k = kit();
    k.p.request_provision(&user("bob"), Origin::Admin)
        .await
        .unwrap();
    let m = k.outbox.last_message_for(&user("bob")).unwrap();
    assert_eq!(m.destination, Destination::sms("+447700900123").unwrap());
    assert_eq!(m.code().unwrap().expose().len(), 10);
    assert!(
        m.code()
            .unwrap()
            .expose()
            .bytes()
            .all(|b| b.is_ascii_digit())
    );
}

#[tokio::test]
async fn no_transport_no_code() {
    let k = kit();
    let e =
        k.p.request_provision(&user("dave"), Origin::Admin)
            .await
            .unwrap_err();
    assert!(matches!(e, Error::NoSuitableTransport { .. }), "{e:?}");
    assert_eq!(
        k.p.status(&user("dave")).await.unwrap(),
        ProvisionStatus::default()
    );
}

#[tokio::test]
async fn unknown_user() {
    let k = kit_with(detailed());
    let e =
        k.p.request_provision(&user("zed"), Origin::Admin)
            .await
            .unwrap_err();
    assert_eq!(e.public_message(), "Invalid Username");
    let e =
        k.p.redeem(
            &user("zed"),
            &ProvisionCode::new("1234567890"),
            DeviceInfo::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.public_message(), "Invalid Username");
    assert!(
        k.events.lines().contains(
            &"Mobile request from unknown user; the user needs to reprovision".to_owned()
        )
    );
}

#[tokio::test]
async fn wrong_code_leaves_working_device_untouched() {
    let k = kit_with(detailed());
    let (id, strings) = k.provisioned("alice").await;
    let code = k.code("alice").await;
    for _ in 0..5 {
        let e =
            k.p.redeem(&user("alice"), &wrong(&code), DeviceInfo::default())
                .await
                .unwrap_err();
        assert_eq!(e.public_message(), "Provision Failure");
    }
    // Burned after 5 wrong attempts: even the right code is now refused.
    let e =
        k.p.redeem(&user("alice"), &code, DeviceInfo::default())
            .await
            .unwrap_err();
    assert_eq!(e.public_message(), "Invalid Provision Code");
    // The old device still works: strings download and an OTC verifies.
    let pin = Pin::parse("1234").unwrap();
    let s = k.p.download_strings(&id).await.unwrap().strings;
    assert_ne!(s, strings, "a new generation");
    let otc = one_time_code(s.get(5).unwrap(), &pin, 5).unwrap();
    k.p.verify_otc(&user("alice"), &otc, &pin).await.unwrap();
    assert!(k.events.lines().iter().any(|l| l
        == "User \"alice\" provision failed, A valid session could not be loaded or created for the user."));
}

#[tokio::test]
async fn expired_code_is_provision_failure() {
    let k = kit();
    let code = k.code("alice").await;
    k.clock.advance(Duration::seconds(600));
    let e =
        k.p.redeem(&user("alice"), &code, DeviceInfo::default())
            .await
            .unwrap_err();
    assert!(matches!(e, Error::ProvisionFailure));
    assert_eq!(e.public_message(), "Provision Failure");
}

#[tokio::test]
async fn code_valid_just_before_expiry() {
    let mut p = Policy::default();
    p.set_validity_secs(10).unwrap();
    let k = kit_with(p);
    let code = k.code("alice").await;
    k.clock.advance(Duration::seconds(9));
    let status = k.p.status(&user("alice")).await.unwrap();
    assert!(status.pending.is_some() && status.device.is_none());
    k.p.redeem(&user("alice"), &code, DeviceInfo::default())
        .await
        .expect("one second before expiry the code is still valid");
    let status = k.p.status(&user("alice")).await.unwrap();
    assert!(status.pending.is_none(), "the code is spent");
    assert!(status.device.is_some(), "alice now has a device");
}

#[tokio::test]
async fn used_code_is_invalid() {
    let k = kit_with(detailed());
    let code = k.code("alice").await;
    k.p.redeem(&user("alice"), &code, DeviceInfo::default())
        .await
        .unwrap();
    let e =
        k.p.redeem(&user("alice"), &code, DeviceInfo::default())
            .await
            .unwrap_err();
    assert!(matches!(e, Error::InvalidProvisionCode));
    assert_eq!(e.public_message(), "Invalid Provision Code");
}

#[tokio::test]
async fn new_request_replaces_pending_code() {
    let k = kit();
    let old = k.code("alice").await;
    let new = k.code("alice").await;
    let e =
        k.p.redeem(&user("alice"), &old, DeviceInfo::default())
            .await
            .unwrap_err();
    assert_eq!(e.public_message(), "Provision Failure");
    k.p.redeem(&user("alice"), &new, DeviceInfo::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn reprovision_invalidates_old_device_and_its_strings() {
    let k = kit();
    let pin = Pin::parse("9132").unwrap();
    let (old_id, old_strings) = k.provisioned("alice").await;
    // Pending + Provisioned: the old device keeps working until the new code is redeemed.
    let code = k.code("alice").await;
    let otc = one_time_code(old_strings.get(1).unwrap(), &pin, 1).unwrap();
    k.p.verify_otc(&user("alice"), &otc, &pin).await.unwrap();
    let new_id =
        k.p.redeem(&user("alice"), &code, DeviceInfo::default())
            .await
            .unwrap();
    let e = k.p.download_strings(&old_id).await.unwrap_err();
    assert_eq!(
        e.public_message(),
        "Mobile request from unknown user; the user needs to reprovision"
    );
    let otc = one_time_code(old_strings.get(2).unwrap(), &pin, 2).unwrap();
    assert!(matches!(
        k.p.verify_otc(&user("alice"), &otc, &pin).await,
        Err(Error::OtcRejected)
    ));
    let new_strings = k.p.download_strings(&new_id).await.unwrap().strings;
    assert_ne!(new_strings.to_wire(), old_strings.to_wire());
}

#[tokio::test]
async fn otc_index_once_per_generation() {
    let k = kit();
    let pin = Pin::parse("4711").unwrap();
    let (id, s) = k.provisioned("alice").await;
    let otc = one_time_code(s.get(7).unwrap(), &pin, 7).unwrap();
    k.p.verify_otc(&user("alice"), &otc, &pin).await.unwrap();
    assert!(
        k.p.verify_otc(&user("alice"), &otc, &pin).await.is_err(),
        "index 07 used"
    );
    // Index 00 is never accepted.
    let otc0 = one_time_code(s.get(0).unwrap(), &pin, 0).unwrap();
    assert!(k.p.verify_otc(&user("alice"), &otc0, &pin).await.is_err());
    // Wrong PIN.
    let other = Pin::parse("1111").unwrap();
    let bad = one_time_code(s.get(8).unwrap(), &other, 8).unwrap();
    if bad != one_time_code(s.get(8).unwrap(), &pin, 8).unwrap() {
        assert!(k.p.verify_otc(&user("alice"), &bad, &pin).await.is_err());
    }
    // A new generation frees the index, and the old generation's strings stop working.
    let s2 = k.p.download_strings(&id).await.unwrap().strings;
    let old = one_time_code(s.get(9).unwrap(), &pin, 9).unwrap();
    let new = one_time_code(s2.get(9).unwrap(), &pin, 9).unwrap();
    if old != new {
        assert!(k.p.verify_otc(&user("alice"), &old, &pin).await.is_err());
        // A wrong code spends nothing: index 09 of the new generation still works.
        k.p.verify_otc(&user("alice"), &new, &pin).await.unwrap();
    }
    let new10 = one_time_code(s2.get(10).unwrap(), &pin, 10).unwrap();
    k.p.verify_otc(&user("alice"), &new10, &pin).await.unwrap();
    let again = one_time_code(s2.get(7).unwrap(), &pin, 7).unwrap();
    k.p.verify_otc(&user("alice"), &again, &pin).await.unwrap();
}

#[tokio::test]
async fn self_service_needs_policy_and_is_rate_limited() {
    let k = kit();
    let e =
        k.p.request_provision(&user("alice"), Origin::SelfService)
            .await
            .unwrap_err();
    assert!(matches!(e, Error::SelfProvisionDisabled));
    assert!(k.outbox.messages().is_empty());
    let mut p = k.p.policy();
    p.allow_self_provision = true;
    k.p.set_policy(p).unwrap();
    k.p.request_provision(&user("alice"), Origin::SelfService)
        .await
        .unwrap();
    let e =
        k.p.request_provision(&user("alice"), Origin::SelfService)
            .await
            .unwrap_err();
    assert!(
        matches!(
            e,
            Error::RateLimited {
                retry_after_secs: 60
            }
        ),
        "{e:?}"
    );
    k.clock.advance(Duration::seconds(60));
    k.p.request_provision(&user("alice"), Origin::SelfService)
        .await
        .unwrap();
    assert_eq!(k.outbox.messages().len(), 2);
}

#[tokio::test]
async fn outside_mobile_group_cannot_download() {
    let k = kit();
    let code = k.code("carol").await;
    let id =
        k.p.redeem(&user("carol"), &code, DeviceInfo::default())
            .await
            .unwrap();
    let e = k.p.download_strings(&id).await.unwrap_err();
    assert_eq!(e.public_message(), "Error Downloading Security Strings");
}

#[tokio::test]
async fn removed_user_has_no_auth_method() {
    let k = kit();
    let (id, _) = k.provisioned("alice").await;
    k.users.remove_user(&user("alice")).await.unwrap();
    let e = k.p.download_strings(&id).await.unwrap_err();
    assert_eq!(
        e.public_message(),
        "No suitable authentication method for the user \"alice\" was found"
    );
}

#[tokio::test]
async fn status_shows_pending_and_device_with_info_when_logged() {
    let mut policy = Policy::default();
    policy.log_device_info = true;
    let k = kit_with(policy);
    assert_eq!(
        k.p.status(&user("alice")).await.unwrap(),
        ProvisionStatus::default()
    );
    let code = k.code("alice").await;
    let st = k.p.status(&user("alice")).await.unwrap();
    assert_eq!(
        st.pending.unwrap().expires_at,
        k.p.now() + Duration::seconds(600)
    );
    let info = DeviceInfo::new(Some("Pixel 8"), Some("Android 15"), Some("3.1"));
    k.p.redeem(&user("alice"), &code, info.clone())
        .await
        .unwrap();
    let st = k.p.status(&user("alice")).await.unwrap();
    assert!(st.pending.is_none());
    assert_eq!(st.device.unwrap().info, Some(info));
    assert!(k.events.lines().contains(
        &"User \"alice\" provisioned successfully, device: Pixel 8, Android 15, 3.1".to_owned()
    ));
}

#[tokio::test]
async fn device_info_not_kept_by_default() {
    let k = kit();
    let code = k.code("alice").await;
    let info = DeviceInfo::new(Some("Pixel 8"), None, None);
    k.p.redeem(&user("alice"), &code, info).await.unwrap();
    assert_eq!(
        k.p.status(&user("alice"))
            .await
            .unwrap()
            .device
            .unwrap()
            .info,
        None
    );
    assert!(!k.events.lines().iter().any(|l| l.contains("Pixel")));
}

#[tokio::test]
async fn push_id_kept_even_when_device_info_is_not() {
    let k = kit();
    let code = k.code("alice").await;
    let info = DeviceInfo::new(Some("Pixel 8"), Some("Android 15"), None)
        .with_push_id(Some("fcm-token-1"));
    k.p.redeem(&user("alice"), &code, info).await.unwrap();
    let kept =
        k.p.status(&user("alice"))
            .await
            .unwrap()
            .device
            .unwrap()
            .info;
    assert_eq!(
        kept,
        Some(DeviceInfo::default().with_push_id(Some("fcm-token-1")))
    );
    assert!(
        !k.events
            .lines()
            .iter()
            .any(|l| l.contains("Pixel") || l.contains("fcm-token")),
        "{:?}",
        k.events.lines()
    );
}

#[tokio::test]
async fn revoke_removes_device_and_code() {
    let k = kit();
    let (id, _) = k.provisioned("alice").await;
    let code = k.code("alice").await;
    assert!(k.p.revoke(&user("alice")).await.unwrap());
    assert!(k.p.download_strings(&id).await.is_err());
    assert!(
        k.p.redeem(&user("alice"), &code, DeviceInfo::default())
            .await
            .is_err()
    );
    assert!(!k.p.revoke(&user("alice")).await.unwrap());
}

#[tokio::test]
async fn cancel_code_drops_the_code_and_keeps_the_device() {
    let k = kit();
    let (id, _) = k.provisioned("alice").await;
    let code = k.code("alice").await;
    assert!(k.p.cancel_code(&user("alice")).await.unwrap());
    assert!(
        k.p.redeem(&user("alice"), &code, DeviceInfo::default())
            .await
            .is_err(),
        "a cancelled code does not redeem"
    );
    assert!(
        k.p.download_strings(&id).await.is_ok(),
        "the device still downloads its strings"
    );
    assert!(
        k.events
            .lines()
            .iter()
            .any(|l| l == "Provision code of user \"alice\" cancelled"),
        "{:?}",
        k.events.lines()
    );
    assert!(!k.p.cancel_code(&user("alice")).await.unwrap());
}

#[tokio::test]
async fn permanent_delivery_failure_revokes_the_code() {
    let k = kit();
    k.outbox.fail_next(1, false);
    let e =
        k.p.request_provision(&user("alice"), Origin::Admin)
            .await
            .unwrap_err();
    assert!(matches!(e, Error::Transport(ref t) if !t.is_transient()));
    assert_eq!(k.p.status(&user("alice")).await.unwrap().pending, None);
}

#[tokio::test]
async fn queued_delivery_retries_transient_errors() {
    let users = std::sync::Arc::new(MemoryUsers::new());
    users.insert(
        UserEntry::new(user("alice"))
            .with_destination(Destination::email("alice@example.com").unwrap())
            .with_mobile_group(true),
    );
    let outbox = std::sync::Arc::new(testing::RecordingTransport::new());
    let events = std::sync::Arc::new(testing::RecordingSink::new());
    let p = Provisioner::builder()
        .store(std::sync::Arc::new(MemoryStore::new()))
        .users(users)
        .transport(Channel::Email, outbox.clone())
        .server_key(ServerKey::generate())
        .events(events.clone())
        .delivery(Delivery::Queued(QueueConfig {
            initial_backoff: std::time::Duration::from_millis(1),
            ..QueueConfig::default()
        }))
        .build()
        .unwrap();
    outbox.fail_next(2, true);
    let receipt = p
        .request_provision(&user("alice"), Origin::Admin)
        .await
        .unwrap();
    assert!(receipt.queued);
    p.deliveries_idle().await;
    assert_eq!(outbox.messages().len(), 1);
    let lines = events.lines();
    assert_eq!(lines[0], "Provision code created for user \"alice\"");
    assert_eq!(
        lines[1],
        "Message added to message queue for user: alice, destination: alice@example.com."
    );
    assert_eq!(
        lines[2],
        "User \"alice\" can now reprovision their mobile device."
    );
    assert_eq!(lines.iter().filter(|l| l.contains("will retry")).count(), 2);
    assert_eq!(
        lines.last().unwrap(),
        "Message sent to user: alice, destination: alice@example.com."
    );

    // A permanent failure revokes the code.
    outbox.fail_next(1, false);
    p.request_provision(&user("alice"), Origin::Admin)
        .await
        .unwrap();
    p.deliveries_idle().await;
    assert_eq!(p.status(&user("alice")).await.unwrap().pending, None);
    assert!(
        events
            .lines()
            .last()
            .unwrap()
            .contains("could not be delivered")
    );
}

#[tokio::test]
async fn links_and_qr_in_message() {
    let mut policy = Policy::default();
    policy.links = LinkTemplates::for_base_url("https://auth.example.com/");
    policy.site_id = Some(SiteId::parse("DEMO").unwrap());
    let k = kit_with(policy);
    let code = k.code("alice").await;
    let m = k.outbox.last_message_for(&user("alice")).unwrap();
    let complete = m.links().complete().unwrap();
    assert_eq!(
        complete,
        format!(
            "https://auth.example.com/smc/complete/?site=DEMO&user=alice&code={}",
            code.expose()
        )
    );
    assert_eq!(
        m.links().getsettings().unwrap(),
        "https://auth.example.com/smc/getsettings/?site=DEMO"
    );
    assert!(m.text_body().contains(complete));
    // The QR code is rendered when a transport first asks for it, then kept.
    assert!(format!("{m:?}").contains("qr: None"), "{m:?}");
    let qr = m.qr().expect("QR of the complete link");
    assert!(qr.svg.contains("<svg") && qr.png.starts_with(b"\x89PNG"));
    assert!(format!("{m:?}").contains("qr: Some(QrImage("), "{m:?}");
    assert!(!format!("{m:?}").contains(code.expose()));

    let mut p = k.p.policy();
    p.delivery = DeliveryMode::UrlOnly;
    k.p.set_policy(p).unwrap();
    k.p.request_provision(&user("alice"), Origin::Admin)
        .await
        .unwrap();
    let m = k.outbox.last_message_for(&user("alice")).unwrap();
    assert!(m.code().is_none() && m.links().complete().is_some());
}

#[tokio::test]
async fn without_a_site_id_no_link_names_a_site() {
    let mut policy = Policy::default();
    policy.links = LinkTemplates::for_base_url("https://auth.example.com/");
    let k = kit_with(policy);
    let code = k.code("alice").await;
    let m = k.outbox.last_message_for(&user("alice")).unwrap();
    assert_eq!(m.links().getsettings(), None);
    assert_eq!(m.links().complete(), None);
    assert_eq!(
        m.links().provision().map(str::to_owned),
        Some(format!(
            "https://auth.example.com/smc/provision/?user=alice&code={}",
            code.expose()
        ))
    );
    assert!(!m.text_body().contains("site="), "{}", m.text_body());
}

#[tokio::test]
async fn ssd_lookup() {
    let k = kit();
    k.sites
        .insert(SiteId::parse("DEMO").unwrap(), ServerSettings::default());
    assert_eq!(
        k.p.server_details(&SiteId::parse("DEMO").unwrap())
            .await
            .unwrap(),
        ServerSettings::default()
    );
    let e =
        k.p.server_details(&SiteId::parse("NOPE").unwrap())
            .await
            .unwrap_err();
    assert_eq!(e.public_message(), "Error Server, Unknown Server ID");
}

#[tokio::test]
async fn purge_expired_clears_codes() {
    let k = kit();
    k.provisioned("alice").await;
    k.code("alice").await;
    k.code("bob").await;
    k.clock.advance(Duration::seconds(601));
    assert_eq!(k.p.purge_expired().await.unwrap(), 2);
    assert_eq!(
        k.store.len(),
        1,
        "bob's record had nothing else and is gone"
    );
    assert!(k.p.status(&user("alice")).await.unwrap().device.is_some());
}

#[tokio::test]
async fn malformed_code_costs_no_attempt() {
    let k = kit_with(detailed());
    let code = k.code("alice").await;
    for _ in 0..10 {
        let e =
            k.p.redeem(
                &user("alice"),
                &ProvisionCode::new("12ab"),
                DeviceInfo::default(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.public_message(), "Invalid Provision Code");
    }
    k.p.redeem(&user("alice"), &code, DeviceInfo::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn mocks_are_generated() {
    // The `mock` feature's mocks can stand in for a part: a store that is down.
    let mut store = mock::MockCodeStore::new();
    store
        .expect_update()
        .returning(|_, _| Err(StoreError::unavailable(std::io::Error::other("down"))));
    let users = std::sync::Arc::new(MemoryUsers::new());
    users.insert(
        UserEntry::new(user("alice"))
            .with_destination(Destination::email("a@example.com").unwrap()),
    );
    let p = Provisioner::builder()
        .store(std::sync::Arc::new(store))
        .users(users)
        .transport(
            Channel::Email,
            std::sync::Arc::new(testing::RecordingTransport::new()),
        )
        .server_key(ServerKey::generate())
        .delivery(Delivery::Direct)
        .build()
        .unwrap();
    let e = p
        .request_provision(&user("alice"), Origin::Admin)
        .await
        .unwrap_err();
    assert!(e.is_transient());
    assert_eq!(e.public_message(), "Server error, please try again later");
}

#[tokio::test]
async fn wrong_otcs_spend_nothing_and_never_block_the_right_code() {
    let k = kit();
    let pin = Pin::parse("1357").unwrap();
    let (_, s) = k.provisioned("alice").await;
    let bad = |i: u8| {
        let right = one_time_code(s.get(i).unwrap(), &pin, i).unwrap();
        let flipped = if right.starts_with('9') { "0" } else { "9" };
        format!("{flipped}{}", &right[1..])
    };
    // Wrong codes on index 1, of every length, from anyone: nothing is spent...
    for otc in [bad(1), "00001".into(), "0000001".into(), "000000001".into()] {
        assert!(k.p.verify_otc(&user("alice"), &otc, &pin).await.is_err());
    }
    assert_eq!(k.p.token_index("alice").await.unwrap(), Some(1));
    for i in 2..30 {
        assert!(k.p.verify_otc(&user("alice"), &bad(i), &pin).await.is_err());
    }
    // ...and the right code still works on every index, after 32 wrong ones.
    let right1 = one_time_code(s.get(1).unwrap(), &pin, 1).unwrap();
    k.p.verify_otc(&user("alice"), &right1, &pin).await.unwrap();
    assert_eq!(k.p.token_index("alice").await.unwrap(), Some(2));
    assert_eq!(k.p.status(&user("alice")).await.unwrap().failures, 0);
}

#[tokio::test]
async fn leaving_the_mobile_group_ends_one_time_codes() {
    let k = kit();
    let pin = Pin::parse("1357").unwrap();
    let (_, s) = k.provisioned("alice").await;
    let entry = |member: bool| {
        UserEntry::new(user("alice"))
            .with_destination(Destination::email("alice@example.com").unwrap())
            .with_mobile_group(member)
    };
    k.users.insert(entry(false));
    let right = one_time_code(s.get(1).unwrap(), &pin, 1).unwrap();
    let e =
        k.p.verify_otc(&user("alice"), &right, &pin)
            .await
            .unwrap_err();
    assert!(matches!(e, Error::OtcRejected), "{e:?}");
    assert_eq!(k.p.status(&user("alice")).await.unwrap().failures, 1);
    k.users.insert(entry(true));
    k.p.verify_otc(&user("alice"), &right, &pin).await.unwrap();
}

#[tokio::test]
async fn an_unknown_name_never_locks_and_a_user_added_starts_clean() {
    let mut policy = Policy::default();
    policy.set_max_account_failures(3).unwrap();
    let k = kit_with(policy);
    let pin = Pin::parse("1357").unwrap();
    for _ in 0..10 {
        assert!(k.p.verify_otc(&user("erin"), "135701", &pin).await.is_err());
        assert!(
            k.p.redeem(
                &user("erin"),
                &ProvisionCode::new("1234567890"),
                DeviceInfo::default()
            )
            .await
            .is_err()
        );
    }
    let st = k.p.status(&user("erin")).await.unwrap();
    assert_eq!((st.failures, st.locked_at), (20, None));
    assert!(
        !k.events
            .events()
            .iter()
            .any(|e| matches!(e, ProvisionEvent::AccountLocked { .. }))
    );
    // erin joins the directory: the record left under the name goes.
    k.users
        .insert(UserEntry::new(user("erin")).with_mobile_group(true));
    assert!(k.p.user_added(&user("erin")).await.unwrap());
    assert!(k.store.load(&user("erin")).await.unwrap().is_none());
    assert!(
        !k.p.user_added(&user("erin")).await.unwrap(),
        "nothing left"
    );
    // A known user still locks at the ceiling.
    for _ in 0..3 {
        assert!(k.p.verify_otc(&user("erin"), "135701", &pin).await.is_err());
    }
    assert!(k.p.status(&user("erin")).await.unwrap().locked_at.is_some());
}

#[tokio::test]
async fn uniform_answers_for_unknown_user_no_pending_code_and_wrong_code() {
    // The default policy: the attacker's three probes answer alike, and each does the same
    // work, a write included (a record for the name, with the failure counted).
    let k = kit();
    let code = k.code("bob").await;
    let probes = [
        ("zed", ProvisionCode::new("1234567890")),   // no such user
        ("alice", ProvisionCode::new("1234567890")), // no pending code
        ("bob", wrong(&code)),                       // wrong code
    ];
    for (name, code) in probes {
        let e =
            k.p.redeem(&user(name), &code, DeviceInfo::default())
                .await
                .unwrap_err();
        assert!(matches!(e, Error::ProvisionFailure), "{name}: {e:?}");
        assert_eq!(e.public_message(), "Provision Failure");
        let record = k.store.load(&user(name)).await.unwrap();
        assert_eq!(
            record.map(|r| r.failures),
            Some(1),
            "{name}: the failure is written"
        );
    }
    // The operator's log still says what happened.
    let lines = k.events.lines();
    assert!(
        lines.contains(&"Mobile request from unknown user; the user needs to reprovision".into())
    );
    assert!(lines.contains(
        &"User \"bob\" provision failed, A valid session could not be loaded or created for the user.".into()
    ));
}

#[tokio::test]
async fn the_account_locks_after_the_limit_and_an_administrator_unlocks_it() {
    let mut policy = detailed();
    policy.set_max_account_failures(12).unwrap();
    let k = kit_with(policy);
    let pin = Pin::parse("1234").unwrap();
    let (_, strings) = k.provisioned("alice").await;
    // Failures count across codes and across kinds: wrong one-time codes...
    for index in 1..=4 {
        let mut otc = one_time_code(strings.get(index).unwrap(), &pin, index).unwrap();
        otc.replace_range(0..1, if otc.starts_with('9') { "0" } else { "9" });
        assert!(k.p.verify_otc(&user("alice"), &otc, &pin).await.is_err());
    }
    // ...and wrong provision codes, each new code not resetting the count.
    let mut code = None;
    for _ in 0..2 {
        let fresh = k.code("alice").await;
        for _ in 0..4 {
            let e =
                k.p.redeem(&user("alice"), &wrong(&fresh), DeviceInfo::default())
                    .await
                    .unwrap_err();
            assert!(matches!(e, Error::ProvisionFailure), "{e:?}");
        }
        code = Some(fresh);
    }
    // The twelfth failure locked the account: even the right code is refused now.
    let e =
        k.p.redeem(&user("alice"), &code.unwrap(), DeviceInfo::default())
            .await
            .unwrap_err();
    assert!(matches!(e, Error::AccountLocked { .. }), "{e:?}");
    let status = k.p.status(&user("alice")).await.unwrap();
    assert!(status.locked_at.is_some());
    assert_eq!(status.failures, 13);
    assert!(
        k.events.lines().contains(
            &"Account of user \"alice\" locked after too many failed attempts".to_owned()
        )
    );
    // Locked: no new code, not even from an administrator, and no redeem.
    let e =
        k.p.request_provision(&user("alice"), Origin::Admin)
            .await
            .unwrap_err();
    assert!(matches!(e, Error::AccountLocked { .. }), "{e:?}");
    // An administrator unlocks; then everything works again and a success resets.
    assert!(k.p.unlock(&user("alice")).await.unwrap());
    assert!(
        !k.p.unlock(&user("alice")).await.unwrap(),
        "nothing left to unlock"
    );
    assert!(
        k.events
            .lines()
            .contains(&"Account of user \"alice\" unlocked".to_owned())
    );
    let code = k.code("alice").await;
    k.p.redeem(&user("alice"), &code, DeviceInfo::default())
        .await
        .unwrap();
    let status = k.p.status(&user("alice")).await.unwrap();
    assert_eq!((status.failures, status.locked_at), (0, None));
}

#[tokio::test]
async fn self_service_does_not_replace_an_administrators_code() {
    let mut policy = Policy::default();
    policy.allow_self_provision = true;
    let k = kit_with(policy);
    let admin_code = k.code("alice").await;
    let e =
        k.p.request_provision(&user("alice"), Origin::SelfService)
            .await
            .unwrap_err();
    assert!(matches!(e, Error::AdminCodePending), "{e:?}");
    assert_eq!(k.outbox.messages().len(), 1, "nothing more was sent");
    k.p.redeem(&user("alice"), &admin_code, DeviceInfo::default())
        .await
        .expect("the administrator's code still works");
}

#[tokio::test]
async fn a_code_dated_in_the_future_is_refused() {
    let k = kit_with(detailed());
    let code = k.code("alice").await;
    // The clock is set back an hour (NTP step, VM restore): the code would otherwise live
    // an hour longer than its validity.
    let now = k.p.now();
    k.clock.set(now - Duration::hours(1));
    let e =
        k.p.redeem(&user("alice"), &code, DeviceInfo::default())
            .await
            .unwrap_err();
    assert!(matches!(e, Error::ProvisionFailure), "{e:?}");
    assert!(k.p.status(&user("alice")).await.unwrap().device.is_none());
}

#[tokio::test]
async fn a_one_time_code_for_an_unknown_user_costs_a_write_too() {
    let k = kit();
    let pin = Pin::parse("1234").unwrap();
    for name in ["zed", "alice"] {
        // zed does not exist; alice exists without a device.
        let e =
            k.p.verify_otc(&user(name), "123405", &pin)
                .await
                .unwrap_err();
        assert!(matches!(e, Error::OtcRejected), "{e:?}");
        let record = k
            .store
            .load(&user(name))
            .await
            .unwrap()
            .expect("a record is written");
        assert_eq!(record.failures, 1);
    }
}

#[tokio::test]
async fn token_index_follows_the_device_and_hides_who_exists() {
    let k = kit();
    let (_, strings) = k.provisioned("alice").await;
    assert_eq!(k.p.token_index("alice").await.unwrap(), Some(1));
    let pin = Pin::parse("1234").unwrap();
    let otc = one_time_code(strings.get(1).unwrap(), &pin, 1).unwrap();
    k.p.verify_otc(&user("alice"), &otc, &pin).await.unwrap();
    assert_eq!(k.p.token_index("alice").await.unwrap(), Some(2));

    // bob exists without a device; nobody does not exist; both get a stable, well-formed
    // index, like anyone else.
    for name in ["bob", "nobody", "", "bad\u{1}name"] {
        let first = k.p.token_index(name).await.unwrap().unwrap();
        assert!((1..=99).contains(&first), "{name}: {first}");
        assert_eq!(k.p.token_index(name).await.unwrap(), Some(first), "{name}");
    }
    // The decoys are spread, not one constant that would mark them.
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..50 {
        seen.insert(
            k.p.token_index(&format!("ghost{i}"))
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert!(seen.len() > 20, "{seen:?}");

    let mut off = Policy::default();
    off.token_index = false;
    k.p.set_policy(off).unwrap();
    assert_eq!(k.p.token_index("alice").await.unwrap(), None);
}

#[tokio::test]
async fn provision_code_goes_by_the_transport_the_policy_names() {
    let both = UserEntry::new(user("erin"))
        .with_destination(
            Destination::sms("+447700900999")
                .unwrap()
                .for_security_strings(),
        )
        .with_destination(Destination::email("erin@example.com").unwrap())
        .with_mobile_group(true);
    let only_alert = UserEntry::new(user("frank"))
        .with_destination(Destination::email("frank@example.com").unwrap());

    // Default (as before): the alert destination, even when listed second.
    let k = kit();
    k.users.insert(both.clone());
    k.users.insert(only_alert.clone());
    k.p.request_provision(&user("erin"), Origin::Admin)
        .await
        .unwrap();
    let m = k.outbox.last_message_for(&user("erin")).unwrap();
    assert_eq!(
        m.destination,
        Destination::email("erin@example.com").unwrap()
    );

    // "Send provision code as security string: Yes": the security-string destination.
    let mut policy = Policy::default();
    policy
        .set("provision_code_as_security_string", "Yes")
        .unwrap();
    let k = kit_with(policy);
    k.users.insert(both);
    k.users.insert(only_alert);
    k.p.request_provision(&user("erin"), Origin::Admin)
        .await
        .unwrap();
    let m = k.outbox.last_message_for(&user("erin")).unwrap();
    assert_eq!(
        m.destination,
        Destination::sms("+447700900999")
            .unwrap()
            .for_security_strings()
    );
    // A user with only an alert destination still gets the code there.
    k.p.request_provision(&user("frank"), Origin::Admin)
        .await
        .unwrap();
    let m = k.outbox.last_message_for(&user("frank")).unwrap();
    assert_eq!(
        m.destination,
        Destination::email("frank@example.com").unwrap()
    );
}

#[test]
fn destination_purpose_is_stored_and_old_destinations_are_alerts() {
    let d = Destination::sms("+447700900999")
        .unwrap()
        .for_security_strings();
    let json = serde_json::to_string(&d).unwrap();
    assert!(json.contains("security_string"), "{json}");
    assert_eq!(serde_json::from_str::<Destination>(&json).unwrap(), d);
    let old: Destination =
        serde_json::from_str(r#"{"channel":"email","address":"a@example.com"}"#).unwrap();
    assert_eq!(old.purpose, Purpose::Alert);
    assert!(!serde_json::to_string(&old).unwrap().contains("purpose"));
}
