//! The README's TOML examples parse and build a transport, so the documented shapes stay
//! true.

use swivel_provision_sms::{SmsConfig, SmsTransport};

#[derive(serde::Deserialize)]
struct HostConfig {
    sms: SmsConfig,
}

fn toml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, l) if l.starts_with("```toml") => current = Some(String::new()),
            (Some(_), l) if l.starts_with("```") => blocks.push(current.take().unwrap()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn readme_toml_examples_build_transports() {
    let blocks = toml_blocks(include_str!("../README.md"));
    assert_eq!(blocks.len(), 4, "twilio, two webhooks, smpp");
    let mut backends = Vec::new();
    for block in blocks {
        let host: HostConfig = toml::from_str(&block)
            .unwrap_or_else(|e| panic!("README block does not parse: {e}\n{block}"));
        let sms = SmsTransport::new(host.sms)
            .unwrap_or_else(|e| panic!("README block is not a valid config: {e}\n{block}"));
        backends.push(sms.backend_name());
    }
    assert_eq!(backends, ["twilio", "webhook", "webhook", "smpp"]);
}
