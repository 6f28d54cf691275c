//! AgentXML (DESIGN §9): the XML protocol a mobile client speaks to provision itself and
//! download its security strings, in Swivel's format, and the wire protocol around it.
//!
//! Servers call [`respond`] (or [`answer`]) with the request body and send back what it
//! returns. Clients use [`render_request`] and [`parse_response`]. The SSD answer is in
//! [`ssd`](crate::ssd); `TokenIndex` is [`Provisioner::token_index`].
//!
//! # Endpoints
//! | Request | Answer |
//! |---|---|
//! | `POST /{context}/AgentXML`, body `<SASRequest>` | `text/xml`, `<SASResponse>` |
//! | `GET /{context}/TokenIndex?username=U` | `text/plain`, an index `1`–`99` |
//! | `GET /ssdserver/getServerDetails?id=SITEID` | `text/xml`, `<getServerDetailsResponse>` |
//!
//! `{context}` is one of [`CONTEXTS`](crate::CONTEXTS): `pinsafe`, `sentry`, `proxy`; a
//! host serves every one, and a site can advertise no other (see [`site`](crate::site)).
//!
//! # Reading a request
//! - Elements are matched by **local name**: a namespace prefix on the root or any child is
//!   accepted (`<ns:SASRequest xmlns:ns="…"><ns:Action>…`), as is a default namespace.
//! - **No attributes**, except namespace declarations (`xmlns`, `xmlns:*`, at most 8 per
//!   element): any other attribute makes the request `Malformed request`. The count is
//!   checked while reading, before any duplicate check, so a 64 KiB start tag of thousands
//!   of attributes costs one pass (quick-xml's own duplicate check, quadratic, is off).
//!   Before any of that, a body with more than 256 `=` bytes in all is malformed (one
//!   vectorised count; responses may have 4,096), because quick-xml's scan of a start tag
//!   of thousands of attributes costs about 30 times what text of the same size costs.
//!   At most 2,048 elements, nested at most 8 deep.
//! - An element given twice (under any prefix) is malformed; unknown elements are ignored;
//!   `Action` values are matched without regard to case.
//! - Bodies over [`MAX_REQUEST_BYTES`] are `Request too large`; `DOCTYPE` and entities other
//!   than the five predefined ones and character references are refused.
//!
//! Elements of `<SASRequest>`:
//!
//! | Element | For | Meaning |
//! |---|---|---|
//! | `Version` | all | protocol version (optional; this crate sends [`VERSION`]) |
//! | `Action` | all | `ping`, `provision` or `SecurityStrings` (required) |
//! | `RequestID` or `RequestId` | all | echoed in the answer in the spelling received, when it is 1–128 printable ASCII characters (both spellings at once: malformed) |
//! | `Username` | `provision` | the user (required) |
//! | `ProvisionCode` | `provision` | the code (required; blanks and dashes ignored) |
//! | `DeviceModel`, `DeviceOS`, `AppVersion` | `provision` | kept with the device and logged only when the policy's `log_device_info` is on (each cut to 128 characters) |
//! | `PushId` | `provision` | the device's push Id: always kept with the device, never logged (cut to 512 characters) |
//! | `Id` | `SecurityStrings` | the provision Id (required) |
//!
//! # The answer
//! Elements of `<SASResponse>`, in this order: `Version`, the echoed `RequestID` /
//! `RequestId`, `Result` (`PASS` or `FAIL`), then `Id` (after a good `provision`), or
//! `SecurityStrings` (100 strings of 10 digits, `;`-separated, index 0 first) and
//! `<Policies>` of `<Policy id="…" section="…" show="true|false">value</Policy>`, or
//! `Error` (after `FAIL`). The client side ([`parse_response`]) reads by local name too,
//! accepts either request Id spelling, and caps attributes at 8 per element (a `Policy` has
//! 3) before checking duplicates.
//!
//! `Error` never echoes the request: `Malformed request`, `Request too large`, `Unknown
//! action`, `Missing field …`, or the core's [`public_message`](crate::Error::public_message)
//! (`User not set`, `Invalid Username`, `Invalid Provision Code`, `Provision Failure`,
//! `Mobile request from unknown user; the user needs to reprovision`, `Error Downloading
//! Security Strings`, …).
//!
//! # Exchanges
//! **ping**
//! ```text
//! → <SASRequest><Version>3.6</Version><Action>ping</Action><RequestID>r1</RequestID></SASRequest>
//! ← <SASResponse><Version>3.6</Version><RequestID>r1</RequestID><Result>PASS</Result></SASResponse>
//! ```
//! **provision** (a namespaced client that spells `RequestId`)
//! ```text
//! → <ns:SASRequest xmlns:ns="urn:x"><ns:Version>3.6</ns:Version><ns:Action>provision</ns:Action>
//!     <ns:Username>alice</ns:Username><ns:ProvisionCode>1234567890</ns:ProvisionCode>
//!     <ns:DeviceOS>iOS 18</ns:DeviceOS><ns:PushId>apns-…</ns:PushId><ns:RequestId>q</ns:RequestId>
//!   </ns:SASRequest>
//! ← <SASResponse><Version>3.6</Version><RequestId>q</RequestId><Result>PASS</Result>
//!     <Id>00112233445566778899aabbccddeeff</Id></SASResponse>
//! ← <SASResponse><Version>3.6</Version><RequestId>q</RequestId><Result>FAIL</Result>
//!     <Error>Provision Failure</Error></SASResponse>
//! ```
//! **SecurityStrings**
//! ```text
//! → <SASRequest><Version>3.6</Version><Action>SecurityStrings</Action>
//!     <Id>00112233445566778899aabbccddeeff</Id></SASRequest>
//! ← <SASResponse><Version>3.6</Version><Result>PASS</Result>
//!     <SecurityStrings>0123456789;…;9876543210</SecurityStrings>
//!     <Policies><Policy id="PinLength" section="Security" show="true">4</Policy></Policies>
//!   </SASResponse>
//! ```
//! **TokenIndex** (plain text; the lowest index of the current generation not used yet;
//! unknown users and users without a device get a stable index from a keyed hash of the
//! username, so the answer does not tell who exists; `404` when the policy's `token_index`
//! is off)
//! ```text
//! → GET /proxy/TokenIndex?username=alice
//! ← 200 text/plain: 7
//! ```
//! **SSD** (flags are `YES`/`NO`; clients read `YES`/`NO`, `true`/`false` in any case, and
//! `1`/`0`; a client goes to `http[s]://hostname:port/connectionType/AgentXML`, `https`
//! when `usingSSL` is `YES`)
//! ```text
//! → GET /ssdserver/getServerDetails?id=EDGE
//! ← <getServerDetailsResponse><responseCode>0</responseCode><SSDetails>
//!     <hostname>auth.example.com</hostname><port>8443</port><connectionType>proxy</connectionType>
//!     <usingSSL>YES</usingSSL><pushSupport>NO</pushSupport><local>NO</local><pin>YES</pin>
//!     <oath>NO</oath></SSDetails></getServerDetailsResponse>
//! ← <getServerDetailsResponse><responseCode>1</responseCode>
//!     <error>Error Server, Unknown Server ID</error></getServerDetailsResponse>
//! ```
//!
//! # Security
//! - Bodies larger than [`MAX_REQUEST_BYTES`] are refused before parsing; `DOCTYPE`
//!   declarations and unknown entities are refused (no entity expansion at all); attributes
//!   are refused (requests) or capped (responses) before any duplicate check, so the parse
//!   cost is linear in the body.
//! - Error responses never echo the request: they name what is wrong (`Malformed request`,
//!   `Unknown action`, `Missing field Id`) or give the core's
//!   [`public_message`](crate::Error::public_message).
//! - The `Debug` output of every type here redacts codes, provision Ids, strings and push
//!   Ids.
//!
//! # What it does not do
//! - No XML Schema validation and no namespace checking: a prefix is dropped, whatever
//!   namespace it is bound to.
//! - No push authentication: the push Id is only kept for a push transport to come.

use std::borrow::Cow;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::code::{ProvisionCode, ProvisionId};
use crate::policy::MobilePolicy;
use crate::strings::SecurityStrings;
use crate::types::{DeviceInfo, Username};
use crate::{DownloadedStrings, Provisioner};

/// The protocol version this crate speaks and puts into every message.
pub const VERSION: &str = "3.6";

/// Largest request body [`parse_request`] accepts (64 KiB).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Largest response body [`parse_response`] accepts (1 MiB: strings and policies).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Longest `RequestID` that is echoed (longer ones are dropped).
pub const MAX_REQUEST_ID_CHARS: usize = 128;

/// Elements nest at most this deep (`SASResponse` / `Policies` / `Policy` needs 3).
const MAX_DEPTH: usize = 8;

/// Attributes one element may carry (a `Policy` has 3); more is malformed, checked before
/// any duplicate check so that a start tag with thousands of attributes costs no more than
/// reading it once.
pub(crate) const MAX_ATTRIBUTES: usize = 8;

/// Elements one message may hold (a strings response with its policies needs a few dozen).
pub(crate) const MAX_ELEMENTS: usize = 2048;

/// `=` bytes a request (or an SSD answer) may hold in all: every attribute needs one, and a
/// request has only namespace declarations and the XML declaration's two. Counted in one
/// pass before the XML is read, because quick-xml's start-tag scan costs about 30 times as
/// much per byte for a tag of thousands of attributes as for text.
const MAX_EQUALS_STRICT: usize = 256;

/// `=` bytes a response may hold (each `Policy` has 3 attributes).
const MAX_EQUALS_RESPONSE: usize = 4096;

/// Longest action name kept in [`AgentXmlError::UnknownAction`].
const MAX_ACTION_CHARS: usize = 64;

/// What a device asks for.
#[derive(Debug, Clone)]
pub enum AgentAction {
    /// `ping`: is the server there?
    Ping,
    /// `provision`: redeem a provision code for this device.
    Provision {
        /// The username as sent (not checked; may be empty).
        username: String,
        /// The provision code (secret; `Debug` redacts it).
        code: ProvisionCode,
        /// `DeviceModel`, `DeviceOS` and `AppVersion`, when sent.
        device: DeviceInfo,
    },
    /// `SecurityStrings`: download a new set of strings.
    SecurityStrings {
        /// The provision Id received when provisioning (secret; `Debug` redacts it).
        id: ProvisionId,
    },
}

impl AgentAction {
    /// The action's name on the wire (`ping`, `provision`, `SecurityStrings`).
    pub fn name(&self) -> &'static str {
        match self {
            AgentAction::Ping => "ping",
            AgentAction::Provision { .. } => "provision",
            AgentAction::SecurityStrings { .. } => "SecurityStrings",
        }
    }
}

/// How the request Id element is spelled: clients send `RequestID` or `RequestId`, and the
/// answer echoes the spelling it received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RequestIdTag {
    /// `<RequestID>` (Swivel's documents; the default).
    #[default]
    Upper,
    /// `<RequestId>` (as some clients send it).
    Lower,
}

impl RequestIdTag {
    /// The element name.
    pub fn name(self) -> &'static str {
        match self {
            RequestIdTag::Upper => "RequestID",
            RequestIdTag::Lower => "RequestId",
        }
    }
}

/// A parsed `<SASRequest>`.
#[derive(Debug, Clone)]
pub struct AgentRequest {
    /// The `Version` the client sent (empty when it sent none).
    pub version: String,
    /// The `RequestID` to echo, when the client sent a valid one (at most 128 printable
    /// ASCII characters).
    pub request_id: Option<String>,
    /// How the request Id element was (or is to be) spelled.
    pub request_id_tag: RequestIdTag,
    /// What the client asks for.
    pub action: AgentAction,
}

impl AgentRequest {
    /// A request of the current [`VERSION`] without a `RequestID`.
    pub fn new(action: AgentAction) -> Self {
        Self {
            version: VERSION.to_owned(),
            request_id: None,
            request_id_tag: RequestIdTag::Upper,
            action,
        }
    }
}

/// Why an AgentXML message could not be read. Messages never contain a code, an Id or
/// security strings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentXmlError {
    /// The body is larger than the limit ([`MAX_REQUEST_BYTES`] for requests).
    #[error("message too large")]
    TooLarge,
    /// The body is not well-formed XML (the message describes the problem and its byte
    /// position, never the input).
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The `Action` is none of `ping`, `provision`, `SecurityStrings` (the name, cut to 64
    /// characters, control characters removed).
    #[error("unknown action {0:?}")]
    UnknownAction(String),
    /// A required element is missing.
    #[error("missing field {0}")]
    MissingField(&'static str),
    /// The root element is not `SASRequest` (or `SASResponse` for responses).
    #[error("wrong root element")]
    WrongRoot,
}

impl AgentXmlError {
    /// The words sent back to the device in `<Error>`; they never echo the request.
    pub fn public_message(&self) -> String {
        match self {
            AgentXmlError::TooLarge => "Request too large".into(),
            AgentXmlError::Malformed(_) | AgentXmlError::WrongRoot => "Malformed request".into(),
            AgentXmlError::UnknownAction(_) => "Unknown action".into(),
            AgentXmlError::MissingField(field) => format!("Missing field {field}"),
        }
    }
}

/// What the server answers.
#[derive(Debug, Clone)]
pub enum AgentResponse {
    /// `PASS` with nothing else (the answer to `ping`).
    Pass,
    /// `PASS` and the provision Id (the answer to a good `provision`).
    Provisioned {
        /// The new provision Id (secret; `Debug` redacts it).
        id: ProvisionId,
    },
    /// `PASS`, the security strings and the mobile-client policies.
    ///
    /// Parsed strings carry generation 0: the wire does not say which generation they are.
    Strings {
        /// The strings (secret; `Debug` redacts them).
        strings: SecurityStrings,
        /// The mobile-client policies.
        policies: Vec<MobilePolicy>,
    },
    /// `FAIL` and why, in words a user may see.
    Fail {
        /// The error (Swivel's wording).
        error: String,
    },
}

/// A `<SASResponse>`: the answer and the echoed `RequestID`.
#[derive(Debug, Clone)]
pub struct AgentReply {
    /// The request's `RequestID`, echoed.
    pub request_id: Option<String>,
    /// The request Id element's spelling, as the request had it.
    pub request_id_tag: RequestIdTag,
    /// The answer.
    pub response: AgentResponse,
}

impl AgentReply {
    /// An answer without a request Id.
    pub fn new(response: AgentResponse) -> Self {
        Self {
            request_id: None,
            request_id_tag: RequestIdTag::Upper,
            response,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// The `RequestID` to echo: trimmed, 1 to 128 printable ASCII characters, else `None`.
fn valid_request_id(raw: &str) -> Option<&str> {
    let id = raw.trim();
    (!id.is_empty()
        && id.len() <= MAX_REQUEST_ID_CHARS
        && id.bytes().all(|b| (0x20..=0x7e).contains(&b)))
    .then_some(id)
}

/// The request Id element of a message (either spelling; both at once is malformed).
fn request_id_of(root: &Node) -> Result<(Option<String>, RequestIdTag), String> {
    let upper = root.child_text(RequestIdTag::Upper.name())?;
    let lower = root.child_text(RequestIdTag::Lower.name())?;
    match (upper, lower) {
        (Some(_), Some(_)) => Err("duplicate element RequestID".into()),
        (Some(id), None) => Ok((valid_request_id(id).map(str::to_owned), RequestIdTag::Upper)),
        (None, Some(id)) => Ok((valid_request_id(id).map(str::to_owned), RequestIdTag::Lower)),
        (None, None) => Ok((None, RequestIdTag::Upper)),
    }
}

/// The request Id to echo and its spelling, with the error when a request was refused.
type Refusal = (Option<String>, RequestIdTag, AgentXmlError);

/// Reads a request; on error also returns the `RequestID` when it could be read, so that
/// [`respond`] can echo it.
fn read_request(body: &[u8]) -> Result<AgentRequest, Refusal> {
    let bare = |e| (None, RequestIdTag::Upper, e);
    if body.len() > MAX_REQUEST_BYTES {
        return Err(bare(AgentXmlError::TooLarge));
    }
    let root =
        parse_tree(body, Attributes::Namespaces).map_err(|m| bare(AgentXmlError::Malformed(m)))?;
    if root.name != "SASRequest" {
        return Err(bare(AgentXmlError::WrongRoot));
    }
    let (request_id, request_id_tag) =
        request_id_of(&root).map_err(|m| bare(AgentXmlError::Malformed(m)))?;
    let fail = |e| (request_id.clone(), request_id_tag, e);
    let text = |name| {
        root.child_text(name)
            .map_err(|m| fail(AgentXmlError::Malformed(m)))
    };
    let required =
        |name: &'static str| text(name)?.ok_or_else(|| fail(AgentXmlError::MissingField(name)));
    let version = text("Version")?.unwrap_or_default().trim().to_owned();
    let action = required("Action")?.trim();
    let action = if action.eq_ignore_ascii_case("ping") {
        AgentAction::Ping
    } else if action.eq_ignore_ascii_case("provision") {
        let username = required("Username")?.to_owned();
        let code = ProvisionCode::new(required("ProvisionCode")?);
        let device = DeviceInfo::new(text("DeviceModel")?, text("DeviceOS")?, text("AppVersion")?)
            .with_push_id(text("PushId")?);
        AgentAction::Provision {
            username,
            code,
            device,
        }
    } else if action.eq_ignore_ascii_case("securitystrings") {
        AgentAction::SecurityStrings {
            id: ProvisionId::new(required("Id")?),
        }
    } else {
        let shown: String = action
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_ACTION_CHARS)
            .collect();
        return Err(fail(AgentXmlError::UnknownAction(shown)));
    };
    Ok(AgentRequest {
        version,
        request_id,
        request_id_tag,
        action,
    })
}

/// Parses a `<SASRequest>` (at most [`MAX_REQUEST_BYTES`]). Action names are matched
/// without regard to case; unknown elements are ignored; an element given twice is
/// malformed.
///
/// # Errors
/// [`AgentXmlError::TooLarge`], [`AgentXmlError::Malformed`],
/// [`AgentXmlError::WrongRoot`], [`AgentXmlError::UnknownAction`], or
/// [`AgentXmlError::MissingField`] (`Action`; `Username` and `ProvisionCode` for
/// `provision`; `Id` for `SecurityStrings`).
pub fn parse_request(body: &[u8]) -> Result<AgentRequest, AgentXmlError> {
    read_request(body).map_err(|(_, _, e)| e)
}

/// Renders a `<SASRequest>` (for clients). An invalid `request_id` is left out.
pub fn render_request(req: &AgentRequest) -> String {
    let mut out = String::with_capacity(256);
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><SASRequest>"#);
    push_element(&mut out, "Version", &req.version);
    push_element(&mut out, "Action", req.action.name());
    match &req.action {
        AgentAction::Ping => {}
        AgentAction::Provision {
            username,
            code,
            device,
        } => {
            push_element(&mut out, "Username", username);
            push_element(&mut out, "ProvisionCode", code.expose());
            let fields = [
                ("DeviceModel", &device.model),
                ("DeviceOS", &device.os),
                ("AppVersion", &device.app_version),
                ("PushId", &device.push_id),
            ];
            for (name, value) in fields {
                if let Some(value) = value {
                    push_element(&mut out, name, value);
                }
            }
        }
        AgentAction::SecurityStrings { id } => push_element(&mut out, "Id", id.expose()),
    }
    if let Some(id) = req.request_id.as_deref().and_then(valid_request_id) {
        push_element(&mut out, req.request_id_tag.name(), id);
    }
    out.push_str("</SASRequest>");
    out
}

// ---------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------

/// Renders a `<SASResponse>`. An invalid `request_id` is left out.
pub fn render_response(reply: &AgentReply) -> String {
    let mut out = String::with_capacity(match reply.response {
        AgentResponse::Strings { .. } => 1400,
        _ => 192,
    });
    out.push_str(r#"<?xml version="1.0" encoding="UTF-8"?><SASResponse>"#);
    push_element(&mut out, "Version", VERSION);
    if let Some(id) = reply.request_id.as_deref().and_then(valid_request_id) {
        push_element(&mut out, reply.request_id_tag.name(), id);
    }
    match &reply.response {
        AgentResponse::Pass => push_element(&mut out, "Result", "PASS"),
        AgentResponse::Provisioned { id } => {
            push_element(&mut out, "Result", "PASS");
            push_element(&mut out, "Id", id.expose());
        }
        AgentResponse::Strings { strings, policies } => {
            push_element(&mut out, "Result", "PASS");
            push_element(&mut out, "SecurityStrings", &strings.to_wire());
            out.push_str("<Policies>");
            for p in policies {
                out.push_str("<Policy id=\"");
                out.push_str(&escape(&p.id));
                out.push_str("\" section=\"");
                out.push_str(&escape(&p.section));
                out.push_str(if p.show {
                    "\" show=\"true\">"
                } else {
                    "\" show=\"false\">"
                });
                out.push_str(&escape(&p.value));
                out.push_str("</Policy>");
            }
            out.push_str("</Policies>");
        }
        AgentResponse::Fail { error } => {
            push_element(&mut out, "Result", "FAIL");
            push_element(&mut out, "Error", error);
        }
    }
    out.push_str("</SASResponse>");
    out
}

/// Parses a `<SASResponse>` (for clients; at most [`MAX_RESPONSE_BYTES`]).
///
/// `PASS` with an `Id` is [`AgentResponse::Provisioned`], with `SecurityStrings` is
/// [`AgentResponse::Strings`] (generation 0), otherwise [`AgentResponse::Pass`].
///
/// # Errors
/// [`AgentXmlError::TooLarge`], [`AgentXmlError::Malformed`] (also for a `Result` other
/// than `PASS`/`FAIL` or strings that are not 100 strings of 10 digits),
/// [`AgentXmlError::WrongRoot`], [`AgentXmlError::MissingField`] (`Result`, `Policy id`).
pub fn parse_response(body: &[u8]) -> Result<AgentReply, AgentXmlError> {
    if body.len() > MAX_RESPONSE_BYTES {
        return Err(AgentXmlError::TooLarge);
    }
    let root = parse_tree(body, Attributes::Response).map_err(AgentXmlError::Malformed)?;
    if root.name != "SASResponse" {
        return Err(AgentXmlError::WrongRoot);
    }
    let text = |name| root.child_text(name).map_err(AgentXmlError::Malformed);
    let (request_id, request_id_tag) = request_id_of(&root).map_err(AgentXmlError::Malformed)?;
    let result = text("Result")?
        .ok_or(AgentXmlError::MissingField("Result"))?
        .trim();
    let response = if result.eq_ignore_ascii_case("PASS") {
        if let Some(id) = text("Id")? {
            AgentResponse::Provisioned {
                id: ProvisionId::new(id),
            }
        } else if let Some(wire) = text("SecurityStrings")? {
            let strings = SecurityStrings::from_wire(0, wire)
                .map_err(|_| AgentXmlError::Malformed("invalid security strings".into()))?;
            let mut policies = Vec::new();
            if let Some(list) = root.child("Policies").map_err(AgentXmlError::Malformed)? {
                for p in list.children.iter().filter(|c| c.name == "Policy") {
                    let show = p.attr("show").unwrap_or("false").trim();
                    policies.push(MobilePolicy {
                        id: p
                            .attr("id")
                            .ok_or(AgentXmlError::MissingField("Policy id"))?
                            .to_owned(),
                        section: p.attr("section").unwrap_or_default().to_owned(),
                        show: show.eq_ignore_ascii_case("true") || show == "1",
                        value: p.text.trim().to_owned(),
                    });
                }
            }
            AgentResponse::Strings { strings, policies }
        } else {
            AgentResponse::Pass
        }
    } else if result.eq_ignore_ascii_case("FAIL") {
        AgentResponse::Fail {
            error: text("Error")?.unwrap_or_default().trim().to_owned(),
        }
    } else {
        return Err(AgentXmlError::Malformed("unknown Result".into()));
    };
    Ok(AgentReply {
        request_id,
        request_id_tag,
        response,
    })
}

// ---------------------------------------------------------------------------------------
// The server side
// ---------------------------------------------------------------------------------------

/// Answers one AgentXML request body: parses it, asks the provisioner, renders the
/// `<SASResponse>`. Never panics; every problem becomes a `FAIL` with an `<Error>` that
/// does not echo the request.
///
/// - `ping` → `PASS`.
/// - `provision` → [`Provisioner::redeem`]: `PASS` and the `Id`, or `FAIL` with the
///   error's [`public_message`](crate::Error::public_message) (`User not set`,
///   `Invalid Username`, `Invalid Provision Code`, `Provision Failure`, ...).
/// - `SecurityStrings` → [`Provisioner::download_strings`]: the strings and the
///   mobile-client policies, or `FAIL` (`Mobile request from unknown user; the user needs
///   to reprovision`, `Error Downloading Security Strings`, ...).
pub async fn respond(provisioner: &Provisioner, body: &[u8]) -> String {
    answer(provisioner, body).await.xml
}

/// What [`answer`] produced: the response body and whether the request was a failed
/// attempt that a host should count against the client (a refused `provision` or
/// `SecurityStrings`, or a request that could not be read).
#[derive(Clone, PartialEq, Eq)]
pub struct Answer {
    /// The `SASResponse` to send back.
    pub xml: String,
    /// Whether the request failed (a host's throttle counts these).
    pub failed: bool,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The body may carry a provision Id or strings.
        f.debug_struct("Answer")
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Like [`respond`], and says whether the request failed, for hosts that throttle failed
/// attempts per client.
pub async fn answer(provisioner: &Provisioner, body: &[u8]) -> Answer {
    let (request_id, request_id_tag, response) = match read_request(body) {
        Ok(req) => {
            let response = dispatch(provisioner, req.action).await;
            (req.request_id, req.request_id_tag, response)
        }
        Err((request_id, tag, e)) => {
            tracing::debug!(error = %e, "AgentXML request refused");
            (
                request_id,
                tag,
                AgentResponse::Fail {
                    error: e.public_message(),
                },
            )
        }
    };
    let failed = matches!(response, AgentResponse::Fail { .. });
    Answer {
        xml: render_response(&AgentReply {
            request_id,
            request_id_tag,
            response,
        }),
        failed,
    }
}

async fn dispatch(provisioner: &Provisioner, action: AgentAction) -> AgentResponse {
    let fail = |e: crate::Error| {
        tracing::debug!(error = %e, "AgentXML request failed");
        AgentResponse::Fail {
            error: e.public_message(),
        }
    };
    match action {
        AgentAction::Ping => AgentResponse::Pass,
        AgentAction::Provision {
            username,
            code,
            device,
        } => {
            let username = match Username::parse(&username) {
                Ok(u) => u,
                Err(e) => return fail(crate::provisioner::device_error(&provisioner.policy(), e)),
            };
            match provisioner.redeem(&username, &code, device).await {
                Ok(id) => AgentResponse::Provisioned { id },
                Err(e) => fail(e),
            }
        }
        AgentAction::SecurityStrings { id } => match provisioner.download_strings(&id).await {
            Ok(DownloadedStrings {
                strings, policies, ..
            }) => AgentResponse::Strings { strings, policies },
            Err(e) => fail(e),
        },
    }
}

// ---------------------------------------------------------------------------------------
// A small XML tree, enough for flat Swivel messages (shared with `ssd`).
// ---------------------------------------------------------------------------------------

/// Which attributes [`parse_tree`] accepts. Either way an element with more than
/// [`MAX_ATTRIBUTES`] is malformed, and namespace declarations are read and dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attributes {
    /// Namespace declarations only (`xmlns`, `xmlns:*`): the AgentXML request has none. At
    /// most 256 `=` in the whole body.
    Namespaces,
    /// Up to [`MAX_ATTRIBUTES`] of any name, at most 256 `=` in the whole body (SSD).
    Few,
    /// As `Few`, with up to 4,096 `=` in the whole body (responses: `Policy id section show`).
    Response,
}

impl Attributes {
    fn max_equals(self) -> usize {
        match self {
            Attributes::Namespaces | Attributes::Few => MAX_EQUALS_STRICT,
            Attributes::Response => MAX_EQUALS_RESPONSE,
        }
    }
}

/// An element: its local name (any namespace prefix removed), attributes (local names,
/// namespace declarations left out), text (all text and CDATA directly inside it,
/// unescaped) and child elements.
#[derive(Debug, Default)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) attrs: Vec<(String, String)>,
    pub(crate) text: String,
    pub(crate) children: Vec<Node>,
}

impl Node {
    /// The only child named `name`; an error when there are several.
    pub(crate) fn child(&self, name: &str) -> Result<Option<&Node>, String> {
        let mut found = None;
        for c in self.children.iter().filter(|c| c.name == name) {
            if found.is_some() {
                return Err(format!("duplicate element {name}"));
            }
            found = Some(c);
        }
        Ok(found)
    }

    /// The text of the only child named `name`.
    pub(crate) fn child_text(&self, name: &str) -> Result<Option<&str>, String> {
        Ok(self.child(name)?.map(|c| c.text.as_str()))
    }

    /// The value of attribute `name`.
    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether `c` may appear in an XML 1.0 document.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Escapes text or an attribute value, dropping characters XML 1.0 cannot carry.
pub(crate) fn escape(s: &str) -> Cow<'_, str> {
    if s.chars().all(xml_char) {
        quick_xml::escape::escape(s)
    } else {
        let clean: String = s.chars().filter(|c| xml_char(*c)).collect();
        Cow::Owned(quick_xml::escape::escape(clean.as_str()).into_owned())
    }
}

/// Appends `<name>escaped text</name>`.
pub(crate) fn push_element(out: &mut String, name: &str, text: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    out.push_str(&escape(text));
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Parses a whole document into its root element. Names are matched by local name, so
/// `<ns:SASRequest xmlns:ns="…">` reads as `SASRequest`. Errors describe the problem and its
/// byte position, never the input.
///
/// Cost is linear in the body: at most [`MAX_ELEMENTS`] elements and [`MAX_ATTRIBUTES`]
/// attributes each, counted before duplicates are looked for.
pub(crate) fn parse_tree(body: &[u8], allowed: Attributes) -> Result<Node, String> {
    // One cheap pass bounds the attributes before quick-xml scans any tag.
    if count_equals(body) > allowed.max_equals() {
        return Err("too many attributes".into());
    }
    let mut reader = Reader::from_reader(body);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut elements = 0usize;
    let malformed = |reader: &Reader<&[u8]>, what: &str| {
        format!(
            "{what} at byte {}",
            reader.error_position().max(reader.buffer_position())
        )
    };
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            Err(_) => {
                return Err(format!(
                    "not well-formed XML at byte {}",
                    reader.error_position()
                ));
            }
        };
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(malformed(&reader, "content after the root element"));
            }
            Event::Start(_) | Event::Empty(_) if stack.len() >= MAX_DEPTH => {
                return Err(malformed(&reader, "elements nested too deep"));
            }
            Event::Start(_) | Event::Empty(_) if elements >= MAX_ELEMENTS => {
                return Err(malformed(&reader, "too many elements"));
            }
            Event::Start(e) => {
                elements += 1;
                let node = open_node(&reader, &e, allowed).map_err(|w| malformed(&reader, w))?;
                stack.push(node);
            }
            Event::Empty(e) => {
                elements += 1;
                let node = open_node(&reader, &e, allowed).map_err(|w| malformed(&reader, w))?;
                stack.push(node);
                close(&mut stack, &mut root);
            }
            Event::End(_) => {
                if stack.is_empty() {
                    return Err(malformed(&reader, "unexpected end tag"));
                }
                close(&mut stack, &mut root);
            }
            Event::Text(t) => {
                let text = t
                    .decode()
                    .map_err(|_| malformed(&reader, "invalid UTF-8"))?;
                append_text(&mut stack, &text).map_err(|w| malformed(&reader, w))?;
            }
            Event::CData(t) => {
                let text = t
                    .decode()
                    .map_err(|_| malformed(&reader, "invalid UTF-8"))?;
                append_text(&mut stack, &text).map_err(|w| malformed(&reader, w))?;
            }
            Event::GeneralRef(r) => {
                let resolved: char = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match r.as_ref() {
                        b"amp" => '&',
                        b"lt" => '<',
                        b"gt" => '>',
                        b"quot" => '"',
                        b"apos" => '\'',
                        _ => return Err(malformed(&reader, "unknown entity")),
                    },
                    Err(_) => return Err(malformed(&reader, "invalid character reference")),
                };
                if !xml_char(resolved) {
                    return Err(malformed(&reader, "invalid character reference"));
                }
                append_text(&mut stack, resolved.encode_utf8(&mut [0; 4]))
                    .map_err(|w| malformed(&reader, w))?;
            }
            Event::DocType(_) => return Err(malformed(&reader, "DOCTYPE is not allowed")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => {
                if !stack.is_empty() {
                    return Err(malformed(&reader, "unexpected end of document"));
                }
                return root.ok_or_else(|| malformed(&reader, "no root element"));
            }
        }
    }
}

/// The number of `=` bytes, in 255-byte chunks with a byte-wide counter each, a loop the
/// compiler turns into wide vector compares.
fn count_equals(body: &[u8]) -> usize {
    body.chunks(255)
        .map(|chunk| {
            chunk
                .iter()
                .fold(0u8, |n, &b| n.wrapping_add(u8::from(b == b'='))) as usize
        })
        .sum()
}

/// A new element from its start tag. Attributes are counted as they are read (quick-xml's
/// own duplicate check is quadratic, so it is off) and checked for duplicates only once
/// there are at most [`MAX_ATTRIBUTES`].
fn open_node(
    reader: &Reader<&[u8]>,
    e: &BytesStart<'_>,
    allowed: Attributes,
) -> Result<Node, &'static str> {
    let name = std::str::from_utf8(e.local_name().as_ref())
        .map_err(|_| "invalid UTF-8")?
        .to_owned();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    let mut attrs = Vec::new();
    for attr in e.attributes().with_checks(false) {
        let attr = attr.map_err(|_| "malformed attribute")?;
        if seen.len() >= MAX_ATTRIBUTES {
            return Err("too many attributes");
        }
        let key = attr.key.as_ref();
        let namespace = key == b"xmlns" || key.starts_with(b"xmlns:");
        if !namespace && allowed == Attributes::Namespaces {
            return Err("attributes are not allowed");
        }
        seen.push(key.to_vec());
        if namespace {
            continue;
        }
        let key = std::str::from_utf8(attr.key.local_name().as_ref())
            .map_err(|_| "invalid UTF-8")?
            .to_owned();
        let value = attr
            .decode_and_unescape_value(reader.decoder())
            .map_err(|_| "malformed attribute value")?
            .into_owned();
        attrs.push((key, value));
    }
    for (i, key) in seen.iter().enumerate() {
        if seen[..i].contains(key) {
            return Err("duplicate attribute");
        }
    }
    Ok(Node {
        name,
        attrs,
        ..Node::default()
    })
}

/// Closes the innermost open element.
fn close(stack: &mut Vec<Node>, root: &mut Option<Node>) {
    if let Some(node) = stack.pop() {
        match stack.last_mut() {
            Some(parent) => parent.children.push(node),
            None => *root = Some(node),
        }
    }
}

/// Adds text to the innermost open element; outside the root only blanks are allowed.
fn append_text(stack: &mut [Node], text: &str) -> Result<(), &'static str> {
    match stack.last_mut() {
        Some(node) => {
            node.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err("text outside the root element"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;
    use crate::testing::RecordingTransport;
    use crate::{
        Channel, Delivery, Destination, MemoryStore, MemoryUsers, Origin, Policy, ServerKey,
        UserEntry,
    };

    const CODE: &str = "1234567890";
    const ID: &str = "00112233445566778899aabbccddeeff";

    fn wire_strings() -> String {
        (0..100)
            .map(|i| format!("{:010}", i * 7))
            .collect::<Vec<_>>()
            .join(";")
    }

    fn provision(username: &str) -> AgentRequest {
        AgentRequest::new(AgentAction::Provision {
            username: username.into(),
            code: ProvisionCode::new(CODE),
            device: DeviceInfo::new(Some("Pixel 8"), Some("Android 15"), Some("2.1")),
        })
    }

    fn reparse(req: &AgentRequest) -> AgentRequest {
        parse_request(render_request(req).as_bytes()).expect("rendered request parses")
    }

    fn reparse_reply(reply: &AgentReply) -> AgentReply {
        parse_response(render_response(reply).as_bytes()).expect("rendered response parses")
    }

    fn fail_of(xml: &str) -> String {
        match parse_response(xml.as_bytes()).unwrap().response {
            AgentResponse::Fail { error } => error,
            other => panic!("expected FAIL, got {other:?}"),
        }
    }

    #[test]
    fn ping_round_trip_with_request_id() {
        let mut req = AgentRequest::new(AgentAction::Ping);
        req.request_id = Some("req-42".into());
        let xml = render_request(&req);
        assert!(xml.contains("<Action>ping</Action>") && xml.contains("<Version>3.6</Version>"));
        let back = reparse(&req);
        assert!(matches!(back.action, AgentAction::Ping));
        assert_eq!(back.version, VERSION);
        assert_eq!(back.request_id.as_deref(), Some("req-42"));
    }

    #[test]
    fn provision_round_trip_escapes_the_username() {
        let req = provision("a<b&c\"d'");
        let xml = render_request(&req);
        assert!(
            xml.contains("<Username>a&lt;b&amp;c&quot;d&apos;</Username>"),
            "{xml}"
        );
        let AgentAction::Provision {
            username,
            code,
            device,
        } = reparse(&req).action
        else {
            panic!("not a provision request");
        };
        assert_eq!(username, "a<b&c\"d'");
        assert_eq!(code.expose(), CODE);
        assert_eq!(device.model.as_deref(), Some("Pixel 8"));
        assert_eq!(device.os.as_deref(), Some("Android 15"));
        assert_eq!(device.app_version.as_deref(), Some("2.1"));
    }

    #[test]
    fn security_strings_request_round_trip() {
        let req = AgentRequest::new(AgentAction::SecurityStrings {
            id: ProvisionId::new(ID),
        });
        let AgentAction::SecurityStrings { id } = reparse(&req).action else {
            panic!("not a SecurityStrings request");
        };
        assert_eq!(id.expose(), ID);
    }

    #[test]
    fn swivel_requests_parse() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
            <SASRequest>
              <Version>3.6</Version>
              <Action>PROVISION</Action>
              <Username>alice</Username>
              <ProvisionCode><![CDATA[12345 67890]]></ProvisionCode>
              <Unknown>ignored</Unknown>
              <RequestID>  abc  </RequestID>
            </SASRequest>"#;
        let req = parse_request(body).unwrap();
        let AgentAction::Provision {
            username,
            code,
            device,
        } = req.action
        else {
            panic!("not a provision request");
        };
        assert_eq!(username, "alice");
        assert_eq!(code.expose(), CODE);
        assert!(device.is_empty());
        assert_eq!(req.request_id.as_deref(), Some("abc"));
        for action in ["securitystrings", "SECURITYSTRINGS", "SecurityStrings"] {
            let body = format!("<SASRequest><Action>{action}</Action><Id>{ID}</Id></SASRequest>");
            let req = parse_request(body.as_bytes()).unwrap();
            assert!(
                matches!(req.action, AgentAction::SecurityStrings { .. }),
                "{action}"
            );
            assert_eq!(req.version, "");
        }
        let req = parse_request(b"<SASRequest><Action> Ping </Action></SASRequest>").unwrap();
        assert!(matches!(req.action, AgentAction::Ping));
        // Character references and entities are resolved.
        let req = parse_request(
            b"<SASRequest><Action>provision</Action><Username>&#97;&amp;b</Username><ProvisionCode/></SASRequest>",
        )
        .unwrap();
        let AgentAction::Provision { username, code, .. } = req.action else {
            panic!()
        };
        assert_eq!(username, "a&b");
        assert_eq!(code.expose(), "");
    }

    #[test]
    fn invalid_request_ids_are_dropped() {
        let long = "x".repeat(129);
        for bad in [long.as_str(), "tab\there", "caf\u{e9}", "  "] {
            let mut req = AgentRequest::new(AgentAction::Ping);
            req.request_id = Some(bad.into());
            assert!(!render_request(&req).contains("RequestID"), "{bad:?}");
            let body = format!(
                "<SASRequest><Action>ping</Action><RequestID>{}</RequestID></SASRequest>",
                escape(bad)
            );
            assert_eq!(
                parse_request(body.as_bytes()).unwrap().request_id,
                None,
                "{bad:?}"
            );
        }
        let ok = "y".repeat(128);
        let body =
            format!("<SASRequest><Action>ping</Action><RequestID>{ok}</RequestID></SASRequest>");
        assert_eq!(parse_request(body.as_bytes()).unwrap().request_id, Some(ok));
    }

    #[test]
    fn request_errors() {
        let big = format!(
            "<SASRequest><Action>ping</Action><X>{}</X></SASRequest>",
            "a".repeat(MAX_REQUEST_BYTES)
        );
        assert!(matches!(
            parse_request(big.as_bytes()),
            Err(AgentXmlError::TooLarge)
        ));
        for bad in [
            &b""[..],
            b"not xml",
            b"<SASRequest><Action>ping</Action>",
            b"<SASRequest><Action>ping</SASRequest></Action>",
            b"<SASRequest><Action>ping</Action></SASRequest><SASRequest/>",
            b"<SASRequest><Action>ping</Action></SASRequest>trailing",
            b"<SASRequest><Action>&xxe;</Action></SASRequest>",
            b"<!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><SASRequest><Action>ping</Action></SASRequest>",
            b"<SASRequest><Action>&#0;</Action></SASRequest>",
            b"<SASRequest><Action>\xff</Action></SASRequest>",
            b"<SASRequest><Action>ping</Action><Action>ping</Action></SASRequest>",
            b"<a><a><a><a><a><a><a><a><a></a></a></a></a></a></a></a></a></a>",
        ] {
            let err = parse_request(bad).unwrap_err();
            let AgentXmlError::Malformed(msg) = &err else {
                panic!("{:?}: expected Malformed, got {err:?}", String::from_utf8_lossy(bad));
            };
            assert!(!msg.contains("xxe") && !msg.contains("passwd"), "{msg}");
        }
        assert!(matches!(
            parse_request(b"<SASResponse><Action>ping</Action></SASResponse>"),
            Err(AgentXmlError::WrongRoot)
        ));
        let long = format!(
            "<SASRequest><Action>{}</Action></SASRequest>",
            "z".repeat(100)
        );
        match parse_request(long.as_bytes()) {
            Err(AgentXmlError::UnknownAction(name)) => assert_eq!(name, "z".repeat(64)),
            other => panic!("expected UnknownAction, got {other:?}"),
        }
        let missing = [
            ("<SASRequest><Version>3.6</Version></SASRequest>", "Action"),
            (
                "<SASRequest><Action>provision</Action><ProvisionCode>1</ProvisionCode></SASRequest>",
                "Username",
            ),
            (
                "<SASRequest><Action>provision</Action><Username>u</Username></SASRequest>",
                "ProvisionCode",
            ),
            (
                "<SASRequest><Action>SecurityStrings</Action></SASRequest>",
                "Id",
            ),
        ];
        for (body, field) in missing {
            match parse_request(body.as_bytes()) {
                Err(AgentXmlError::MissingField(f)) => assert_eq!(f, field),
                other => panic!("{body}: expected MissingField, got {other:?}"),
            }
        }
    }

    #[test]
    fn namespaced_root_and_children_are_read_by_local_name() {
        let body = r#"<?xml version="1.0"?><ns:SASRequest xmlns:ns="urn:swivel" xmlns="urn:d">
            <ns:Version>3.6</ns:Version><ns:Action>provision</ns:Action>
            <Username>alice</Username><ns:ProvisionCode>1234567890</ns:ProvisionCode>
            </ns:SASRequest>"#;
        let req = parse_request(body.as_bytes()).unwrap();
        let AgentAction::Provision { username, code, .. } = req.action else {
            panic!("{:?}", req.action)
        };
        assert_eq!((username.as_str(), code.expose()), ("alice", CODE));
        // The same element under two prefixes is still given twice.
        let twice = r#"<a:SASRequest xmlns:a="u" xmlns:b="u"><a:Action>ping</a:Action><b:Action>ping</b:Action></a:SASRequest>"#;
        assert!(matches!(
            parse_request(twice.as_bytes()),
            Err(AgentXmlError::Malformed(_))
        ));
        let response = r#"<x:SASResponse xmlns:x="u"><x:Result>PASS</x:Result><x:Id>00112233445566778899aabbccddeeff</x:Id></x:SASResponse>"#;
        assert!(matches!(
            parse_response(response.as_bytes()).unwrap().response,
            AgentResponse::Provisioned { .. }
        ));
    }

    #[tokio::test]
    async fn request_id_is_echoed_in_the_spelling_received() {
        let (p, _) = provisioner(Policy::default());
        for (tag, other) in [("RequestID", "RequestId"), ("RequestId", "RequestID")] {
            let body = format!("<SASRequest><Action>ping</Action><{tag}>r-7</{tag}></SASRequest>");
            let req = parse_request(body.as_bytes()).unwrap();
            assert_eq!(req.request_id.as_deref(), Some("r-7"));
            assert_eq!(req.request_id_tag.name(), tag);
            assert!(render_request(&req).contains(&format!("<{tag}>r-7</{tag}>")));
            let xml = respond(&p, body.as_bytes()).await;
            assert!(xml.contains(&format!("<{tag}>r-7</{tag}>")), "{xml}");
            assert!(!xml.contains(other), "{xml}");
            let reply = parse_response(xml.as_bytes()).unwrap();
            assert_eq!(
                (reply.request_id.as_deref(), reply.request_id_tag.name()),
                (Some("r-7"), tag)
            );
            // Refused requests echo it the same way.
            let bad = format!("<SASRequest><Action>nope</Action><{tag}>r-8</{tag}></SASRequest>");
            let xml = respond(&p, bad.as_bytes()).await;
            assert!(xml.contains(&format!("<{tag}>r-8</{tag}>")), "{xml}");
        }
        let both = "<SASRequest><Action>ping</Action><RequestID>a</RequestID><RequestId>b</RequestId></SASRequest>";
        assert!(matches!(
            parse_request(both.as_bytes()),
            Err(AgentXmlError::Malformed(_))
        ));
    }

    #[test]
    fn push_id_and_device_fields_are_read_and_rendered() {
        let body = "<SASRequest><Action>provision</Action><Username>alice</Username>\
            <ProvisionCode>1234567890</ProvisionCode><DeviceOS>iOS 18</DeviceOS>\
            <DeviceModel>iPhone</DeviceModel><AppVersion>5.0</AppVersion><PushId>apns-abc</PushId></SASRequest>";
        let AgentAction::Provision { device, .. } = parse_request(body.as_bytes()).unwrap().action
        else {
            panic!()
        };
        assert_eq!(device.os.as_deref(), Some("iOS 18"));
        assert_eq!(device.model.as_deref(), Some("iPhone"));
        assert_eq!(device.app_version.as_deref(), Some("5.0"));
        assert_eq!(device.push_id.as_deref(), Some("apns-abc"));
        let req = AgentRequest::new(AgentAction::Provision {
            username: "alice".into(),
            code: ProvisionCode::new(CODE),
            device: device.clone(),
        });
        let xml = render_request(&req);
        assert!(
            xml.contains("<PushId>apns-abc</PushId>")
                && xml.contains("<DeviceOS>iOS 18</DeviceOS>"),
            "{xml}"
        );
        let AgentAction::Provision { device: back, .. } = reparse(&req).action else {
            panic!()
        };
        assert_eq!(back, device);
    }

    #[tokio::test]
    async fn push_id_and_os_are_kept_with_the_device() {
        let mut policy = Policy::default();
        policy.log_device_info = true;
        let (p, outbox) = provisioner(policy);
        p.request_provision(&alice(), Origin::Admin).await.unwrap();
        let code = outbox.last_code_for(&alice()).unwrap();
        let body = format!(
            "<SASRequest><Action>provision</Action><Username>alice</Username>\
             <ProvisionCode>{}</ProvisionCode><DeviceOS>Android 15</DeviceOS><PushId>fcm-1</PushId></SASRequest>",
            code.expose()
        );
        assert!(!answer(&p, body.as_bytes()).await.failed);
        let info = p
            .status(&alice())
            .await
            .unwrap()
            .device
            .unwrap()
            .info
            .unwrap();
        assert_eq!(
            (info.os.as_deref(), info.push_id.as_deref()),
            (Some("Android 15"), Some("fcm-1"))
        );
    }

    #[test]
    fn attributes_are_refused_on_requests_and_capped_on_responses() {
        // The attack: ~9,700 attributes in 64 KiB.
        let body = crate::testing::many_attributes_request();
        assert!(
            body.len() <= MAX_REQUEST_BYTES
                && body.windows(3).filter(|w| w == b"=\"\"").count() > 9_000
        );
        let e = parse_request(&body).unwrap_err();
        assert_eq!(e.public_message(), "Malformed request");
        // Even one attribute is refused; namespace declarations are not.
        for one in [
            "<SASRequest id=\"1\"><Action>ping</Action></SASRequest>",
            "<SASRequest><Action kind=\"x\">ping</Action></SASRequest>",
        ] {
            assert!(
                matches!(
                    parse_request(one.as_bytes()),
                    Err(AgentXmlError::Malformed(_))
                ),
                "{one}"
            );
        }
        assert!(
            parse_request(
                b"<SASRequest xmlns=\"u\" xmlns:p=\"v\"><Action>ping</Action></SASRequest>"
            )
            .is_ok()
        );
        // Namespace declarations are capped too.
        let many_ns: String = (0..9).map(|i| format!(" xmlns:n{i}=\"u\"")).collect();
        let body = format!("<SASRequest{many_ns}><Action>ping</Action></SASRequest>");
        assert!(matches!(
            parse_request(body.as_bytes()),
            Err(AgentXmlError::Malformed(_))
        ));
        // Responses keep their few attributes, but not thousands, nor duplicates.
        let attrs: String = (0..9_000).map(|i| format!(" a{i}=\"\"")).collect();
        let body = format!("<SASResponse{attrs}><Result>PASS</Result></SASResponse>");
        assert!(matches!(
            parse_response(body.as_bytes()),
            Err(AgentXmlError::Malformed(_))
        ));
        let dup = "<SASResponse><Result>PASS</Result><SecurityStrings>x</SecurityStrings>\
                   <Policies><Policy id=\"a\" id=\"b\">v</Policy></Policies></SASResponse>";
        assert!(
            matches!(parse_response(dup.as_bytes()), Err(AgentXmlError::Malformed(m)) if m.contains("duplicate attribute"))
        );
        // The whole body's `=` count is bounded before any tag is scanned.
        let eq = |n: usize| {
            format!(
                "<SASRequest><Action>ping</Action><Pad>{}</Pad></SASRequest>",
                "=".repeat(n)
            )
        };
        assert!(parse_request(eq(200).as_bytes()).is_ok());
        assert!(
            matches!(parse_request(eq(300).as_bytes()), Err(AgentXmlError::Malformed(m)) if m.contains("too many attributes"))
        );
        // A response keeps room for many policies of three attributes.
        let policies: String = (0..1000)
            .map(|i| format!("<Policy id=\"p{i}\" section=\"s\" show=\"true\">v</Policy>"))
            .collect();
        let body = format!(
            "<SASResponse><Result>PASS</Result><SecurityStrings>{}</SecurityStrings><Policies>{policies}</Policies></SASResponse>",
            wire_strings()
        );
        let AgentResponse::Strings { policies, .. } =
            parse_response(body.as_bytes()).unwrap().response
        else {
            panic!()
        };
        assert_eq!(policies.len(), 1000);
        // And a body of many tiny elements stops at the element cap.
        let many = format!(
            "<SASRequest>{}</SASRequest>",
            "<a/>".repeat(MAX_ELEMENTS + 1)
        );
        assert!(
            matches!(parse_request(many.as_bytes()), Err(AgentXmlError::Malformed(m)) if m.contains("too many elements"))
        );
    }

    #[test]
    fn response_round_trips() {
        let reply = reparse_reply(&AgentReply {
            request_id: Some("r1".into()),
            request_id_tag: RequestIdTag::Upper,
            ..AgentReply::new(AgentResponse::Pass)
        });
        assert_eq!(reply.request_id.as_deref(), Some("r1"));
        assert!(matches!(reply.response, AgentResponse::Pass));

        let reply = reparse_reply(&AgentReply {
            request_id: None,
            request_id_tag: RequestIdTag::Upper,
            response: AgentResponse::Provisioned {
                id: ProvisionId::new(ID),
            },
        });
        assert_eq!(reply.request_id, None);
        let AgentResponse::Provisioned { id } = reply.response else {
            panic!()
        };
        assert_eq!(id.expose(), ID);

        let strings = SecurityStrings::from_wire(3, &wire_strings()).unwrap();
        let policies = vec![
            MobilePolicy {
                id: "PinLength".into(),
                section: "Security".into(),
                show: true,
                value: "4".into(),
            },
            MobilePolicy {
                id: "a\"<&>".into(),
                section: "s'".into(),
                show: false,
                value: "<v&>".into(),
            },
        ];
        let xml = render_response(&AgentReply {
            request_id: None,
            request_id_tag: RequestIdTag::Upper,
            response: AgentResponse::Strings {
                strings: strings.clone(),
                policies: policies.clone(),
            },
        });
        assert!(
            xml.contains(r#"<Policy id="PinLength" section="Security" show="true">4</Policy>"#),
            "{xml}"
        );
        let AgentResponse::Strings {
            strings: got,
            policies: got_policies,
        } = parse_response(xml.as_bytes()).unwrap().response
        else {
            panic!()
        };
        assert_eq!(got.to_wire(), strings.to_wire());
        assert_eq!(got_policies, policies);

        let xml = render_response(&AgentReply {
            request_id: Some("r2".into()),
            request_id_tag: RequestIdTag::Upper,
            response: AgentResponse::Fail {
                error: "No <user> & \"co\"\u{0}".into(),
            },
        });
        assert!(
            xml.contains(
                "<Result>FAIL</Result><Error>No &lt;user&gt; &amp; &quot;co&quot;</Error>"
            ),
            "{xml}"
        );
        assert_eq!(fail_of(&xml), "No <user> & \"co\"");
    }

    #[test]
    fn response_errors() {
        assert!(matches!(
            parse_response(b"<SASRequest/>"),
            Err(AgentXmlError::WrongRoot)
        ));
        assert!(matches!(
            parse_response(b"<SASResponse><Version>3.6</Version></SASResponse>"),
            Err(AgentXmlError::MissingField("Result"))
        ));
        assert!(matches!(
            parse_response(b"<SASResponse><Result>MAYBE</Result></SASResponse>"),
            Err(AgentXmlError::Malformed(_))
        ));
        assert!(matches!(
            parse_response(b"<SASResponse><Result>PASS</Result><SecurityStrings>1;2</SecurityStrings></SASResponse>"),
            Err(AgentXmlError::Malformed(_))
        ));
        assert!(matches!(
            parse_response(b"<SASResponse>"),
            Err(AgentXmlError::Malformed(_))
        ));
        let big = vec![b' '; MAX_RESPONSE_BYTES + 1];
        assert!(matches!(parse_response(&big), Err(AgentXmlError::TooLarge)));
    }

    #[test]
    fn debug_shows_no_secret() {
        let strings = SecurityStrings::from_wire(1, &wire_strings()).unwrap();
        let mut req = provision("alice");
        req.request_id = Some("r".into());
        let outputs = [
            format!("{req:?}"),
            format!(
                "{:?}",
                AgentRequest::new(AgentAction::SecurityStrings {
                    id: ProvisionId::new(ID)
                })
            ),
            format!(
                "{:?}",
                AgentReply {
                    request_id: None,
                    request_id_tag: RequestIdTag::Upper,
                    response: AgentResponse::Provisioned {
                        id: ProvisionId::new(ID)
                    }
                }
            ),
            format!(
                "{:?}",
                AgentReply {
                    request_id: None,
                    request_id_tag: RequestIdTag::Upper,
                    response: AgentResponse::Strings {
                        strings,
                        policies: vec![]
                    }
                }
            ),
        ];
        for out in outputs {
            assert!(
                !out.contains(CODE) && !out.contains(ID) && !out.contains("0000000007"),
                "{out}"
            );
            assert!(out.contains("REDACTED"), "{out}");
        }
        // Errors never carry the input's secrets.
        let e = parse_request(format!("<SASRequest><Action>x</Action><Id>{ID}</Id>").as_bytes())
            .unwrap_err();
        assert!(!format!("{e} {e:?}").contains(ID));
    }

    fn valid_requests() -> Vec<String> {
        let mut with_id = AgentRequest::new(AgentAction::SecurityStrings {
            id: ProvisionId::new(ID),
        });
        with_id.request_id = Some("rid".into());
        vec![
            render_request(&AgentRequest::new(AgentAction::Ping)),
            render_request(&provision("al<ice")),
            render_request(&with_id),
        ]
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_bytes(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_request(&body);
            let _ = parse_response(&body);
        }

        #[test]
        fn parsers_never_panic_on_mutated_messages(
            which in 0usize..4,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8),
        ) {
            let mut body = if which < 3 {
                valid_requests()[which].clone().into_bytes()
            } else {
                render_response(&AgentReply {
                    request_id: Some("r".into()),
                    request_id_tag: RequestIdTag::Upper,
                    response: AgentResponse::Strings {
                        strings: SecurityStrings::from_wire(1, &wire_strings()).unwrap(),
                        policies: vec![MobilePolicy { id: "i".into(), section: "s".into(), show: true, value: "v".into() }],
                    },
                }).into_bytes()
            };
            for (pos, byte, kind) in edits {
                let pos = pos % (body.len() + 1);
                match kind {
                    0 if pos < body.len() => body[pos] = byte,
                    1 if pos < body.len() => { body.remove(pos); }
                    _ => body.insert(pos, byte),
                }
            }
            let _ = parse_request(&body);
            let _ = parse_response(&body);
        }
    }

    // --- respond, end to end ---

    fn alice() -> Username {
        Username::parse("alice").unwrap()
    }

    fn provisioner(policy: Policy) -> (Provisioner, Arc<RecordingTransport>) {
        let users = Arc::new(MemoryUsers::new());
        users.insert(
            UserEntry::new(alice())
                .with_destination(Destination::email("alice@example.com").unwrap())
                .with_mobile_group(true),
        );
        users.insert(
            UserEntry::new(Username::parse("bob").unwrap())
                .with_destination(Destination::email("bob@example.com").unwrap())
                .with_mobile_group(false),
        );
        let outbox = Arc::new(RecordingTransport::new());
        let p = Provisioner::builder()
            .store(Arc::new(MemoryStore::new()))
            .users(users)
            .transport(Channel::Email, outbox.clone())
            .server_key(ServerKey::generate())
            .policy(policy)
            .delivery(Delivery::Direct)
            .build()
            .unwrap();
        (p, outbox)
    }

    async fn ask(p: &Provisioner, req: &AgentRequest) -> AgentReply {
        let xml = respond(p, render_request(req).as_bytes()).await;
        parse_response(xml.as_bytes()).unwrap_or_else(|e| panic!("bad response {e}: {xml}"))
    }

    fn provision_with(username: &str, code: ProvisionCode) -> AgentRequest {
        AgentRequest::new(AgentAction::Provision {
            username: username.into(),
            code,
            device: DeviceInfo::default(),
        })
    }

    fn error_of(reply: AgentReply) -> String {
        match reply.response {
            AgentResponse::Fail { error } => error,
            other => panic!("expected FAIL, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn answer_says_which_requests_failed() {
        let (p, outbox) = provisioner(Policy::default());
        let ping = render_request(&AgentRequest::new(AgentAction::Ping));
        assert!(!answer(&p, ping.as_bytes()).await.failed);
        assert!(answer(&p, b"<nonsense").await.failed);
        p.request_provision(&alice(), Origin::Admin).await.unwrap();
        let wrong = render_request(&provision_with("alice", ProvisionCode::new(CODE)));
        let reply = answer(&p, wrong.as_bytes()).await;
        assert!(reply.failed);
        assert!(!format!("{reply:?}").contains("SASResponse"));
        let code = outbox.last_code_for(&alice()).unwrap();
        let right = render_request(&provision_with("alice", code));
        assert!(!answer(&p, right.as_bytes()).await.failed);
    }

    #[tokio::test]
    async fn respond_end_to_end() {
        let mut policy = Policy::default();
        policy.device_errors = crate::DeviceErrors::Detailed;
        policy.mobile_policies = vec![MobilePolicy {
            id: "PinLength".into(),
            section: "Security".into(),
            show: true,
            value: "4".into(),
        }];
        let (p, outbox) = provisioner(policy);

        let mut ping = AgentRequest::new(AgentAction::Ping);
        ping.request_id = Some("p-1".into());
        let reply = ask(&p, &ping).await;
        assert!(matches!(reply.response, AgentResponse::Pass));
        assert_eq!(reply.request_id.as_deref(), Some("p-1"));

        p.request_provision(&alice(), Origin::Admin).await.unwrap();
        let code = outbox.last_code_for(&alice()).unwrap();
        let mut req = provision_with("alice", code.clone());
        req.request_id = Some("p-2".into());
        let reply = ask(&p, &req).await;
        assert_eq!(reply.request_id.as_deref(), Some("p-2"));
        let AgentResponse::Provisioned { id } = reply.response else {
            panic!("expected PASS with Id, got {:?}", reply.response);
        };
        assert_eq!(id.expose().len(), 32);

        // Single use.
        let reply = ask(&p, &provision_with("alice", code)).await;
        assert_eq!(error_of(reply), "Invalid Provision Code");

        let reply = ask(
            &p,
            &AgentRequest::new(AgentAction::SecurityStrings { id: id.clone() }),
        )
        .await;
        let AgentResponse::Strings { strings, policies } = reply.response else {
            panic!("expected strings, got {:?}", reply.response);
        };
        assert_eq!(strings.to_wire().split(';').count(), 100);
        assert!((0..100).all(|i| strings.get(i).is_some_and(|s| s.len() == 10)));
        assert_eq!(policies.len(), 1);
        assert_eq!(policies[0].id, "PinLength");
        // The strings work for one-time codes.
        let pin = crate::Pin::parse("9132").unwrap();
        let otc = crate::one_time_code(strings.get(6).unwrap(), &pin, 6).unwrap();
        p.verify_otc(&alice(), &otc, &pin).await.unwrap();

        for blank in ["", "  "] {
            let reply = ask(&p, &provision_with(blank, ProvisionCode::new(CODE))).await;
            assert_eq!(error_of(reply), "User not set");
        }
        let reply = ask(&p, &provision_with("nobody", ProvisionCode::new(CODE))).await;
        assert_eq!(error_of(reply), "Invalid Username");
        let reply = ask(
            &p,
            &provision_with("bad\u{1}name", ProvisionCode::new(CODE)),
        )
        .await;
        assert_eq!(error_of(reply), "Invalid Username");

        let reply = ask(
            &p,
            &AgentRequest::new(AgentAction::SecurityStrings {
                id: ProvisionId::new(ID),
            }),
        )
        .await;
        assert_eq!(
            error_of(reply),
            "Mobile request from unknown user; the user needs to reprovision"
        );
    }

    #[tokio::test]
    async fn uniform_errors_tell_no_cause() {
        // The default policy: unknown user, blank or bad username, no pending code, wrong
        // code and a used code all answer the same.
        let (p, outbox) = provisioner(Policy::default());
        let mut answers = Vec::new();
        for name in ["nobody", "", "bad\u{1}name", "alice"] {
            let reply = ask(&p, &provision_with(name, ProvisionCode::new(CODE))).await;
            answers.push(error_of(reply));
        }
        p.request_provision(&alice(), Origin::Admin).await.unwrap();
        let code = outbox.last_code_for(&alice()).unwrap();
        let wrong = if code.expose() == CODE {
            "0987654321"
        } else {
            CODE
        };
        let reply = ask(&p, &provision_with("alice", ProvisionCode::new(wrong))).await;
        answers.push(error_of(reply));
        let reply = ask(&p, &provision_with("alice", code.clone())).await;
        assert!(matches!(reply.response, AgentResponse::Provisioned { .. }));
        let reply = ask(&p, &provision_with("alice", code)).await;
        answers.push(error_of(reply));
        assert_eq!(answers, vec!["Provision Failure"; 6]);
    }

    #[tokio::test]
    async fn respond_reports_provision_failures_and_mobile_group() {
        let (p, outbox) = provisioner(Policy::default());
        let bob = Username::parse("bob").unwrap();
        p.request_provision(&bob, Origin::Admin).await.unwrap();
        let code = outbox.last_code_for(&bob).unwrap();
        let wrong = if code.expose() == CODE {
            "0987654321"
        } else {
            CODE
        };
        let reply = ask(&p, &provision_with("bob", ProvisionCode::new(wrong))).await;
        assert_eq!(error_of(reply), "Provision Failure");
        let reply = ask(&p, &provision_with("bob", code)).await;
        let AgentResponse::Provisioned { id } = reply.response else {
            panic!("{:?}", reply.response)
        };
        let reply = ask(&p, &AgentRequest::new(AgentAction::SecurityStrings { id })).await;
        assert_eq!(error_of(reply), "Error Downloading Security Strings");
    }

    #[tokio::test]
    async fn respond_refuses_bad_requests_without_echoing_them() {
        let (p, _) = provisioner(Policy::default());
        let cases: [(&[u8], &str); 6] = [
            (b"<SASRequest><Action>ping</Action", "Malformed request"),
            (b"<Other><Action>ping</Action></Other>", "Malformed request"),
            (b"<SASRequest><Action>secretsauce</Action><RequestID>q</RequestID></SASRequest>", "Unknown action"),
            (b"<SASRequest><Action>SecurityStrings</Action></SASRequest>", "Missing field Id"),
            (b"<SASRequest><Action>provision</Action><ProvisionCode>77</ProvisionCode></SASRequest>", "Missing field Username"),
            (b"<SASRequest><Action>provision</Action><Username>u</Username></SASRequest>", "Missing field ProvisionCode"),
        ];
        for (body, expected) in cases {
            let xml = respond(&p, body).await;
            assert!(!xml.contains("secretsauce") && !xml.contains("77"), "{xml}");
            assert_eq!(fail_of(&xml), expected, "{}", String::from_utf8_lossy(body));
        }
        // The RequestID is echoed when the request could be read.
        let xml = respond(&p, cases[2].0).await;
        assert_eq!(
            parse_response(xml.as_bytes())
                .unwrap()
                .request_id
                .as_deref(),
            Some("q")
        );
        let big = vec![b'a'; MAX_REQUEST_BYTES + 1];
        assert_eq!(fail_of(&respond(&p, &big).await), "Request too large");
    }
}
