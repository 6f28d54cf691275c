//! Server settings discovery (SSD, DESIGN §7): the XML a device receives from
//! `GET /ssdserver/getServerDetails?id=SITEID`, in Swivel's format.
//!
//! ```text
//! <?xml version="1.0" encoding="UTF-8"?><getServerDetailsResponse>
//!   <responseCode>0</responseCode><SSDetails><hostname>auth.example.com</hostname>
//!   <port>8443</port><connectionType>proxy</connectionType><usingSSL>YES</usingSSL>
//!   <pushSupport>NO</pushSupport><local>NO</local><pin>YES</pin><oath>NO</oath>
//!   </SSDetails></getServerDetailsResponse>
//! ```
//!
//! The five flags are written `YES`/`NO`, as Swivel writes them and as clients compare
//! them; [`parse_server_details`] reads `YES`/`NO`, `true`/`false` (any case) and `1`/`0`.
//!
//! On error: `<responseCode>1</responseCode><error>Error Server, Unknown Server ID</error>`
//! and no `SSDetails`.

use crate::Provisioner;
use crate::agentxml::{Attributes, Node, parse_tree, push_element};
use crate::error::Error;
use crate::site::ServerSettings;
use crate::types::SiteId;

/// Largest SSD response [`parse_server_details`] accepts (64 KiB).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why an SSD response gave no settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SsdError {
    /// The server does not know the Site ID (`Error Server, Unknown Server ID`).
    #[error("Error Server, Unknown Server ID")]
    UnknownServerId,
    /// The server answered with another error (its words).
    #[error("server error: {0}")]
    Server(String),
    /// The response is not a well-formed `getServerDetailsResponse`.
    #[error("malformed server details: {0}")]
    Malformed(String),
}

/// Renders the `getServerDetailsResponse` for a site's settings, or for an error (its
/// [`public_message`](Error::public_message), with `responseCode` 1).
pub fn render_server_details(result: Result<&ServerSettings, &Error>) -> String {
    let mut out = String::with_capacity(400);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><getServerDetailsResponse>"#);
    match result {
        Ok(s) => {
            push_element(&mut out, "responseCode", "0");
            out.push_str("<SSDetails>");
            push_element(&mut out, "hostname", &s.hostname);
            push_element(&mut out, "port", &s.port.to_string());
            push_element(&mut out, "connectionType", &s.connection_type);
            let flags = [
                ("usingSSL", s.using_ssl),
                ("pushSupport", s.push_support),
                ("local", s.local),
                ("pin", s.pin),
                ("oath", s.oath),
            ];
            for (name, value) in flags {
                push_element(&mut out, name, if value { "YES" } else { "NO" });
            }
            out.push_str("</SSDetails>");
        }
        Err(e) => {
            push_element(&mut out, "responseCode", "1");
            push_element(&mut out, "error", &e.public_message());
        }
    }
    out.push_str("</getServerDetailsResponse>");
    out
}

/// Parses a `getServerDetailsResponse` (for clients). `hostname` and `port` are required;
/// a missing `connectionType` or flag takes its [`ServerSettings::default`] value.
///
/// # Errors
/// [`SsdError::UnknownServerId`] when the response says the Site ID is unknown,
/// [`SsdError::Server`] for another error response, [`SsdError::Malformed`] otherwise.
pub fn parse_server_details(body: &[u8]) -> Result<ServerSettings, SsdError> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(SsdError::Malformed("response too large".into()));
    }
    let root = parse_tree(body, Attributes::Few).map_err(SsdError::Malformed)?;
    if root.name != "getServerDetailsResponse" {
        return Err(SsdError::Malformed("wrong root element".into()));
    }
    let code = text(&root, "responseCode")?
        .ok_or_else(|| missing("responseCode"))?
        .trim();
    if code != "0" {
        let error = text(&root, "error")?.unwrap_or_default().trim();
        return Err(if error.contains("Unknown Server ID") {
            SsdError::UnknownServerId
        } else if code.parse::<i64>().is_ok() {
            SsdError::Server(
                error
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(256)
                    .collect(),
            )
        } else {
            SsdError::Malformed("responseCode is not a number".into())
        });
    }
    let details = root
        .child("SSDetails")
        .map_err(SsdError::Malformed)?
        .ok_or_else(|| missing("SSDetails"))?;
    let defaults = ServerSettings::default();
    let flag = |name: &'static str, default: bool| -> Result<bool, SsdError> {
        match text(details, name)?.map(parse_flag) {
            None => Ok(default),
            Some(Some(v)) => Ok(v),
            Some(None) => Err(SsdError::Malformed(format!("{name} is not YES or NO"))),
        }
    };
    let hostname = text(details, "hostname")?
        .ok_or_else(|| missing("hostname"))?
        .trim();
    if hostname.is_empty() {
        return Err(missing("hostname"));
    }
    let port = text(details, "port")?
        .ok_or_else(|| missing("port"))?
        .trim()
        .parse::<u16>()
        .map_err(|_| SsdError::Malformed("port is not a number from 0 to 65535".into()))?;
    Ok(ServerSettings {
        hostname: hostname.to_owned(),
        port,
        connection_type: text(details, "connectionType")?
            .map(|s| s.trim().to_owned())
            .unwrap_or(defaults.connection_type),
        using_ssl: flag("usingSSL", defaults.using_ssl)?,
        push_support: flag("pushSupport", defaults.push_support)?,
        local: flag("local", defaults.local)?,
        pin: flag("pin", defaults.pin)?,
        oath: flag("oath", defaults.oath)?,
    })
}

/// An SSD flag as clients read it: `YES`/`NO` (Swivel's form), `true`/`false` in any case,
/// or `1`/`0`, blanks around it ignored; `None` for anything else.
pub fn parse_flag(value: &str) -> Option<bool> {
    let v = value.trim();
    if ["yes", "true", "1"]
        .iter()
        .any(|t| v.eq_ignore_ascii_case(t))
    {
        Some(true)
    } else if ["no", "false", "0"]
        .iter()
        .any(|f| v.eq_ignore_ascii_case(f))
    {
        Some(false)
    } else {
        None
    }
}

fn text<'a>(node: &'a Node, name: &str) -> Result<Option<&'a str>, SsdError> {
    node.child_text(name).map_err(SsdError::Malformed)
}

fn missing(name: &str) -> SsdError {
    SsdError::Malformed(format!("missing {name}"))
}

/// Answers an SSD request for `site_id`: the site's settings, or `Error Server, Unknown
/// Server ID` (also for a malformed Site ID, which no site can have). Other errors give
/// their [`public_message`](Error::public_message).
pub async fn respond(provisioner: &Provisioner, site_id: &str) -> String {
    let result = match SiteId::parse(site_id) {
        Ok(site) => provisioner.server_details(&site).await,
        Err(_) => Err(Error::UnknownServerId),
    };
    if let Err(e) = &result {
        tracing::debug!(error = %e, "SSD request refused");
    }
    render_server_details(result.as_ref())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::{MemorySites, MemoryStore, MemoryUsers, ServerKey};

    fn settings() -> ServerSettings {
        ServerSettings {
            hostname: "auth.example.com".into(),
            port: 8443,
            connection_type: "pinsafe".into(),
            using_ssl: true,
            push_support: false,
            local: true,
            pin: false,
            oath: true,
        }
    }

    fn provisioner(sites: Option<Arc<MemorySites>>) -> Provisioner {
        let mut b = Provisioner::builder()
            .store(Arc::new(MemoryStore::new()))
            .users(Arc::new(MemoryUsers::new()))
            .server_key(ServerKey::generate())
            .delivery(crate::Delivery::Direct);
        if let Some(sites) = sites {
            b = b.sites(sites);
        }
        b.build().unwrap()
    }

    #[test]
    fn renders_swivel_format_and_round_trips() {
        let xml = render_server_details(Ok(&settings()));
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><getServerDetailsResponse><responseCode>0</responseCode>\
             <SSDetails><hostname>auth.example.com</hostname><port>8443</port>\
             <connectionType>pinsafe</connectionType><usingSSL>YES</usingSSL>\
             <pushSupport>NO</pushSupport><local>YES</local><pin>NO</pin><oath>YES</oath>\
             </SSDetails></getServerDetailsResponse>"
        );
        assert_eq!(parse_server_details(xml.as_bytes()).unwrap(), settings());
        let mut odd = settings();
        odd.hostname = "h<&>".into();
        odd.connection_type = "a&b".into();
        let xml = render_server_details(Ok(&odd));
        assert!(xml.contains("<hostname>h&lt;&amp;&gt;</hostname>"), "{xml}");
        assert_eq!(parse_server_details(xml.as_bytes()).unwrap(), odd);
    }

    #[test]
    fn flags_parse_in_every_form_clients_meet() {
        for (v, want) in [
            ("YES", true),
            ("yes", true),
            (" Yes ", true),
            ("true", true),
            ("TRUE", true),
            ("1", true),
            ("NO", false),
            ("no", false),
            ("False", false),
            ("0", false),
        ] {
            assert_eq!(parse_flag(v), Some(want), "{v}");
            let xml = format!(
                "<getServerDetailsResponse><responseCode>0</responseCode><SSDetails>\
                 <hostname>h</hostname><port>1</port><usingSSL>{v}</usingSSL><pushSupport>{v}</pushSupport>\
                 <local>{v}</local><pin>{v}</pin><oath>{v}</oath></SSDetails></getServerDetailsResponse>"
            );
            let s = parse_server_details(xml.as_bytes()).unwrap();
            assert_eq!(
                [s.using_ssl, s.push_support, s.local, s.pin, s.oath],
                [want; 5],
                "{v}"
            );
        }
        for bad in ["", "Y", "N", "yess", "2", "on"] {
            assert_eq!(parse_flag(bad), None, "{bad}");
        }
    }

    #[test]
    fn namespaced_and_attribute_heavy_answers() {
        let xml = "<s:getServerDetailsResponse xmlns:s=\"urn:x\"><s:responseCode>0</s:responseCode>\
                   <s:SSDetails><s:hostname>h</s:hostname><s:port>443</s:port><s:usingSSL>YES</s:usingSSL>\
                   </s:SSDetails></s:getServerDetailsResponse>";
        let s = parse_server_details(xml.as_bytes()).unwrap();
        assert_eq!((s.hostname.as_str(), s.port, s.using_ssl), ("h", 443, true));
        let attrs: String = (0..9).map(|i| format!(" a{i}=\"\"")).collect();
        let xml = format!(
            "<getServerDetailsResponse{attrs}><responseCode>0</responseCode></getServerDetailsResponse>"
        );
        assert!(matches!(
            parse_server_details(xml.as_bytes()),
            Err(SsdError::Malformed(m)) if m.contains("too many attributes")
        ));
    }

    #[test]
    fn errors_render_and_parse() {
        let xml = render_server_details(Err(&Error::UnknownServerId));
        assert_eq!(
            xml,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><getServerDetailsResponse><responseCode>1</responseCode>\
             <error>Error Server, Unknown Server ID</error></getServerDetailsResponse>"
        );
        assert!(matches!(
            parse_server_details(xml.as_bytes()),
            Err(SsdError::UnknownServerId)
        ));
        let xml = render_server_details(Err(&Error::Contention));
        assert!(!xml.contains("SSDetails"));
        match parse_server_details(xml.as_bytes()) {
            Err(SsdError::Server(m)) => assert_eq!(m, "Server error, please try again later"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_responses() {
        for bad in [
            "",
            "<getServerDetailsResponse>",
            "<other><responseCode>0</responseCode></other>",
            "<getServerDetailsResponse><SSDetails/></getServerDetailsResponse>",
            "<getServerDetailsResponse><responseCode>0</responseCode></getServerDetailsResponse>",
            "<getServerDetailsResponse><responseCode>0</responseCode><SSDetails><port>1</port></SSDetails></getServerDetailsResponse>",
            "<getServerDetailsResponse><responseCode>0</responseCode><SSDetails><hostname>h</hostname><port>99999</port></SSDetails></getServerDetailsResponse>",
            "<getServerDetailsResponse><responseCode>0</responseCode><SSDetails><hostname>h</hostname><port>1</port><pin>maybe</pin></SSDetails></getServerDetailsResponse>",
            "<getServerDetailsResponse><responseCode>x</responseCode></getServerDetailsResponse>",
        ] {
            assert!(
                matches!(
                    parse_server_details(bad.as_bytes()),
                    Err(SsdError::Malformed(_))
                ),
                "{bad}"
            );
        }
        // Missing flags take their defaults.
        let s = parse_server_details(
            b"<getServerDetailsResponse><responseCode>0</responseCode><SSDetails><hostname>h</hostname><port>1</port></SSDetails></getServerDetailsResponse>",
        )
        .unwrap();
        assert_eq!(
            (s.hostname.as_str(), s.port, s.pin),
            ("h", 1, ServerSettings::default().pin)
        );
    }

    #[tokio::test]
    async fn respond_with_a_site_directory() {
        let sites = Arc::new(MemorySites::new());
        sites.insert(SiteId::parse("DEMO").unwrap(), settings());
        let p = provisioner(Some(sites));
        let xml = respond(&p, "DEMO").await;
        assert_eq!(parse_server_details(xml.as_bytes()).unwrap(), settings());
        for unknown in ["OTHER", "", "bad id<>", &"x".repeat(100)] {
            let xml = respond(&p, unknown).await;
            assert!(
                xml.contains("<error>Error Server, Unknown Server ID</error>"),
                "{xml}"
            );
            assert!(!xml.contains("bad id"), "{xml}");
            assert!(matches!(
                parse_server_details(xml.as_bytes()),
                Err(SsdError::UnknownServerId)
            ));
        }
        let xml = respond(&provisioner(None), "DEMO").await;
        assert!(matches!(
            parse_server_details(xml.as_bytes()),
            Err(SsdError::UnknownServerId)
        ));
    }
}
