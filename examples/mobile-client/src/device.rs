//! What the device says to servers: SSD look-ups and AgentXML requests, through the
//! core's codec.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use swivel_provision::agentxml::{self, AgentAction, AgentRequest, AgentResponse};
use swivel_provision::ssd::{self, SsdError};
use swivel_provision::{DeviceInfo, ProvisionCode, ProvisionId, SecurityStrings};
use url::Url;

use crate::error::ClientError;

/// Where to provision: the server's base URL and AgentXML endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http(s)://host:port`.
    pub server: String,
    /// `http(s)://host:port/{context}/AgentXML`.
    pub agent_url: String,
}

impl Endpoint {
    /// The endpoint of a server given by its base URL (context `pinsafe`).
    pub fn of_server(server: &str) -> Result<Self, ClientError> {
        let url = Url::parse(server.trim())
            .map_err(|_| ClientError::Usage(format!("not a URL: {server}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ClientError::Usage(format!("not an http(s) URL: {server}")));
        }
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            agent_url: format!("{base}/pinsafe/AgentXML"),
            server: base,
        })
    }
}

/// What a Provision URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionLink {
    /// The server the link points at (base URL).
    pub server: String,
    /// `provision`, `getsettings` or `complete`.
    pub kind: String,
    /// The Site ID, when the link has one.
    pub site: Option<String>,
    /// The user, when the link has one.
    pub user: Option<String>,
    /// The code, when the link has one (secret).
    pub code: Option<String>,
}

/// Reads a Provision URL: `http(s)://host/smc/{provision,getsettings,complete}/?...` or the
/// landing page's app link `swivel-provision://{kind}?server=...&site=...&user=...&code=...`.
pub fn parse_link(raw: &str) -> Result<ProvisionLink, ClientError> {
    let bad = || {
        ClientError::Usage("not a Provision URL (expected .../smc/provision/, .../smc/getsettings/ or .../smc/complete/)".into())
    };
    let url = Url::parse(raw.trim()).map_err(|_| bad())?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let (server, kind) = match url.scheme() {
        "http" | "https" => {
            let path = url.path().trim_end_matches('/');
            let kind = path.rsplit('/').next().unwrap_or_default().to_owned();
            let prefix = path
                .strip_suffix(&kind)
                .and_then(|p| p.strip_suffix("/smc/"))
                .ok_or_else(bad)?;
            let mut base = url.clone();
            base.set_query(None);
            base.set_path(prefix);
            (base.as_str().trim_end_matches('/').to_owned(), kind)
        }
        "swivel-provision" => (
            param("server").ok_or_else(bad)?,
            url.host_str().unwrap_or_default().to_owned(),
        ),
        _ => return Err(bad()),
    };
    if !matches!(kind.as_str(), "provision" | "getsettings" | "complete") {
        return Err(bad());
    }
    Ok(ProvisionLink {
        server,
        kind,
        site: param("site"),
        user: param("user"),
        code: param("code"),
    })
}

/// An HTTP client for the device (timeouts; rustls with the ring provider). With `ca`, a
/// PEM file of certificate authorities, `https` servers are checked against those only (a
/// private or test CA) instead of the platform's roots.
pub fn http_client(ca: Option<&Path>) -> Result<reqwest::Client, ClientError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .user_agent(concat!("mobile-client/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = ca {
        let usage =
            |what: &str| ClientError::Usage(format!("--ca-cert {}: {what}", path.display()));
        let pem = std::fs::read(path).map_err(|e| usage(&e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|_| usage("not a PEM certificate bundle"))?;
        if certs.is_empty() {
            return Err(usage("no certificate in the file"));
        }
        builder = builder.tls_certs_only(certs);
    }
    builder.build().map_err(ClientError::connection)
}

/// Asks the SSD at `ssd` (a base URL, or the full `getServerDetails` URL) for the site's
/// server settings.
pub async fn resolve_site(
    client: &reqwest::Client,
    ssd: &str,
    site: &str,
) -> Result<Endpoint, ClientError> {
    if site.trim().is_empty() {
        return Err(ClientError::UnknownServerId);
    }
    let mut url =
        Url::parse(ssd.trim()).map_err(|_| ClientError::Usage(format!("not a URL: {ssd}")))?;
    if !url.path().ends_with("getServerDetails") {
        let path = format!(
            "{}/ssdserver/getServerDetails",
            url.path().trim_end_matches('/')
        );
        url.set_path(&path);
    }
    url.query_pairs_mut().clear().append_pair("id", site.trim());
    let response = client
        .get(url)
        .send()
        .await
        .map_err(ClientError::connection)?;
    let body = response.bytes().await.map_err(ClientError::connection)?;
    let settings = match ssd::parse_server_details(&body) {
        Ok(s) => s,
        Err(SsdError::UnknownServerId) => return Err(ClientError::UnknownServerId),
        Err(e) => return Err(ClientError::connection(e)),
    };
    Ok(Endpoint::of_settings(&settings))
}

impl Endpoint {
    /// Where an SSD answer points, as a Swivel client follows it: `usingSSL` YES → `https`,
    /// else `http`; `hostname` (bracketed when it is an IPv6 address); `port`; the
    /// `connectionType` context before `/AgentXML` (`pinsafe` when blank).
    pub fn of_settings(settings: &swivel_provision::ServerSettings) -> Self {
        let scheme = if settings.using_ssl { "https" } else { "http" };
        let host = if settings.hostname.contains(':') {
            format!("[{}]", settings.hostname)
        } else {
            settings.hostname.clone()
        };
        let server = format!("{scheme}://{host}:{}", settings.port);
        let context = settings.connection_type.trim_matches('/');
        let context = if context.is_empty() {
            "pinsafe"
        } else {
            context
        };
        Endpoint {
            agent_url: format!("{server}/{context}/AgentXML"),
            server,
        }
    }

    /// The `TokenIndex` URL next to the AgentXML endpoint.
    pub fn token_index_url(&self) -> String {
        let base = self
            .agent_url
            .strip_suffix("/AgentXML")
            .unwrap_or(&self.agent_url);
        format!("{base}/TokenIndex")
    }
}

/// A fresh `RequestID` for one request (the time in nanoseconds: unique enough for a
/// simulator, and not secret).
fn request_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("mc-{nanos:x}")
}

async fn exchange(
    client: &reqwest::Client,
    agent_url: &str,
    action: AgentAction,
) -> Result<AgentResponse, ClientError> {
    let mut request = AgentRequest::new(action);
    let sent_id = request_id();
    request.request_id = Some(sent_id.clone());
    let body = agentxml::render_request(&request);
    let response = client
        .post(agent_url)
        .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
        .body(body)
        .send()
        .await
        .map_err(ClientError::connection)?;
    if !response.status().is_success() {
        return Err(ClientError::Connection(Some(
            format!("HTTP {}", response.status()).into(),
        )));
    }
    let bytes = response.bytes().await.map_err(ClientError::connection)?;
    let reply = agentxml::parse_response(&bytes).map_err(ClientError::connection)?;
    // A client matches the answer to its request by the echoed RequestID.
    if reply.request_id.as_deref() != Some(sent_id.as_str()) {
        return Err(ClientError::Connection(Some(
            "the answer does not echo the RequestID".into(),
        )));
    }
    Ok(reply.response)
}

/// This device's description, sent with the provision request as real clients send it:
/// `DeviceModel`, `DeviceOS`, `AppVersion` and the `PushId` the device registered with its
/// push service.
pub fn device_info(push_id: &str) -> DeviceInfo {
    DeviceInfo::new(
        Some("mobile-client simulator"),
        Some(std::env::consts::OS),
        Some(env!("CARGO_PKG_VERSION")),
    )
    .with_push_id(Some(push_id))
}

/// Redeems the code; returns the provision Id.
pub async fn provision(
    client: &reqwest::Client,
    agent_url: &str,
    user: &str,
    code: &str,
    push_id: &str,
) -> Result<ProvisionId, ClientError> {
    let action = AgentAction::Provision {
        username: user.to_owned(),
        code: ProvisionCode::new(code),
        device: device_info(push_id),
    };
    match exchange(client, agent_url, action).await? {
        AgentResponse::Provisioned { id } => Ok(id),
        AgentResponse::Fail { error } => Err(ClientError::from_provision_fail(&error)),
        _ => Err(ClientError::Connection(Some(
            "unexpected answer to provision".into(),
        ))),
    }
}

/// Asks the server's `TokenIndex` which index (1–99) to use next.
pub async fn token_index(
    client: &reqwest::Client,
    endpoint: &Endpoint,
    user: &str,
) -> Result<u8, ClientError> {
    let mut url = Url::parse(&endpoint.token_index_url())
        .map_err(|_| ClientError::Usage("not a URL".into()))?;
    url.query_pairs_mut().append_pair("username", user);
    let response = client
        .get(url)
        .send()
        .await
        .map_err(ClientError::connection)?;
    if !response.status().is_success() {
        return Err(ClientError::Connection(Some(
            format!("HTTP {}", response.status()).into(),
        )));
    }
    let text = response.text().await.map_err(ClientError::connection)?;
    text.trim()
        .parse::<u8>()
        .ok()
        .filter(|i| (1..=99).contains(i))
        .ok_or_else(|| ClientError::Connection(Some("TokenIndex is not an index 1-99".into())))
}

/// Downloads a new set of strings.
pub async fn download(
    client: &reqwest::Client,
    agent_url: &str,
    id: &str,
) -> Result<SecurityStrings, ClientError> {
    let action = AgentAction::SecurityStrings {
        id: ProvisionId::new(id),
    };
    match exchange(client, agent_url, action).await {
        Ok(AgentResponse::Strings { strings, .. }) => Ok(strings),
        Ok(AgentResponse::Fail { error }) => Err(ClientError::from_strings_fail(&error)),
        Ok(_) => Err(ClientError::Strings(None)),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_provision_links() {
        let l = parse_link("http://127.0.0.1:8080/smc/complete/?site=DEMO&user=al%20ice&code=123")
            .unwrap();
        assert_eq!(l.server, "http://127.0.0.1:8080");
        assert_eq!(l.kind, "complete");
        assert_eq!(
            (l.site.as_deref(), l.user.as_deref(), l.code.as_deref()),
            (Some("DEMO"), Some("al ice"), Some("123"))
        );
        let l = parse_link("https://h.example/base/smc/provision/?user=bob&code=9").unwrap();
        assert_eq!(l.server, "https://h.example/base");
        let l =
            parse_link("swivel-provision://getsettings?server=http%3A%2F%2Fh%3A1&site=S").unwrap();
        assert_eq!(
            (l.server.as_str(), l.kind.as_str()),
            ("http://h:1", "getsettings")
        );
        assert!(parse_link("http://h/other/?code=1").is_err());
        assert!(parse_link("ftp://h/smc/provision/").is_err());
    }

    #[test]
    fn endpoints() {
        let e = Endpoint::of_server("http://127.0.0.1:8080/").unwrap();
        assert_eq!(e.agent_url, "http://127.0.0.1:8080/pinsafe/AgentXML");
        assert_eq!(
            e.token_index_url(),
            "http://127.0.0.1:8080/pinsafe/TokenIndex"
        );
        assert!(Endpoint::of_server("nope").is_err());
    }

    #[test]
    fn follows_an_ssd_answer_like_a_client() {
        let xml = "<getServerDetailsResponse><responseCode>0</responseCode><SSDetails>\
                   <hostname>auth.example.com</hostname><port>8443</port>\
                   <connectionType>proxy</connectionType><usingSSL>YES</usingSSL>\
                   </SSDetails></getServerDetailsResponse>";
        let s = ssd::parse_server_details(xml.as_bytes()).unwrap();
        let e = Endpoint::of_settings(&s);
        assert_eq!(e.agent_url, "https://auth.example.com:8443/proxy/AgentXML");
        assert_eq!(
            e.token_index_url(),
            "https://auth.example.com:8443/proxy/TokenIndex"
        );
        let xml = xml
            .replace("YES", "false")
            .replace("auth.example.com", "::1");
        let e = Endpoint::of_settings(&ssd::parse_server_details(xml.as_bytes()).unwrap());
        assert_eq!(e.agent_url, "http://[::1]:8443/proxy/AgentXML");
    }
}
