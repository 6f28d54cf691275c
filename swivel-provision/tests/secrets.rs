//! No secret (code, provision Id, security string, server key) appears in any `Debug`
//! output, event line or error message.

mod common;

use common::*;
use swivel_provision::*;

#[tokio::test]
async fn no_secret_in_debug_events_or_errors() {
    let mut policy = Policy::default();
    policy.links = LinkTemplates::for_base_url("https://auth.example.com");
    policy.site_id = Some(SiteId::parse("DEMO").unwrap());
    policy.log_device_info = true;
    let k = kit_with(policy);
    let alice = user("alice");
    let code = k.code("alice").await;
    let message = k.outbox.last_message_for(&alice).unwrap();
    let wrong_code = wrong(&code);
    let err_wrong =
        k.p.redeem(&alice, &wrong_code, DeviceInfo::default())
            .await
            .unwrap_err();
    let id =
        k.p.redeem(&alice, &code, DeviceInfo::new(Some("Pixel"), None, None))
            .await
            .unwrap();
    let err_used =
        k.p.redeem(&alice, &code, DeviceInfo::default())
            .await
            .unwrap_err();
    let downloaded = k.p.download_strings(&id).await.unwrap();
    let pin = Pin::parse("9132").unwrap();
    let otc = one_time_code(downloaded.strings.get(3).unwrap(), &pin, 3).unwrap();
    k.p.verify_otc(&alice, &otc, &pin).await.unwrap();
    let err_otc = k.p.verify_otc(&alice, &otc, &pin).await.unwrap_err();
    let record = k.store.load(&alice).await.unwrap().unwrap();
    let status = k.p.status(&alice).await.unwrap();
    let key = ServerKey::from_bytes([5; 32]);

    let mut haystack = vec![
        format!("{message:?}"),
        format!("{:?}", message.links()),
        format!("{code:?}"),
        format!("{wrong_code:?}"),
        format!("{id:?}"),
        format!("{downloaded:?}"),
        format!("{record:?}"),
        format!("{status:?}"),
        format!("{:?}", k.p),
        format!("{key:?}"),
        format!("{pin:?}"),
        format!("{err_wrong:?} {err_wrong} {}", err_wrong.public_message()),
        format!("{err_used:?} {err_used} {}", err_used.public_message()),
        format!("{err_otc:?} {err_otc} {}", err_otc.public_message()),
        String::from_utf8(record.to_json()).unwrap(),
    ];
    haystack.extend(k.events.lines());
    haystack.extend(k.events.events().iter().map(|e| format!("{e:?}")));
    let all = haystack.join("\n");

    let mut secrets = vec![
        code.expose().to_owned(),
        wrong_code.expose().to_owned(),
        id.expose().to_owned(),
        hex::encode(key.expose_bytes()),
        otc.clone(),
        message.links().complete().unwrap().to_owned(),
    ];
    for i in 0..100 {
        secrets.push(downloaded.strings.get(i).unwrap().to_owned());
    }
    for s in &secrets {
        assert!(
            !all.contains(s.as_str()),
            "a secret leaked: {s:?} in\n{all}"
        );
    }
    // The hashes in the record are not the secrets either.
    assert!(!all.contains(&hex::encode(code.expose())));
    // The non-secret parts are there (the check is looking at real output).
    assert!(all.contains("alice@example.com"));
    assert!(all.contains("Pixel"));
}
