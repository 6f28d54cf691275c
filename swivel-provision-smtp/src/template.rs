//! Templates for the subject and bodies of the provision email.
//!
//! A template is text with placeholders in braces:
//!
//! | placeholder          | value                                                                 |
//! |----------------------|-----------------------------------------------------------------------|
//! | `{username}`         | the user's name                                                        |
//! | `{code}`             | the provision code (empty when the policy sends only the URL)          |
//! | `{link}`             | the Provision URL to open: *complete* if configured, else *provision*  |
//! | `{getsettings_link}` | the *getsettings* link (empty when not configured)                     |
//! | `{validity_minutes}` | how long the code is valid, in whole minutes (rounded up)             |
//! | `{qr_image}`         | HTML only: `<img src="cid:…">` of the QR code (empty without one)     |
//!
//! `{{` and `}}` stand for literal braces. Any other placeholder is refused when the
//! transport is built ([`SmtpConfigError::Template`](crate::SmtpConfigError::Template)).
//! Values inserted into the HTML template are HTML-escaped.
//!
//! Without overrides the transport sends [`ProvisionMessage::SUBJECT`], the core's
//! [`ProvisionMessage::text_body`] and [`default_html`]: English texts that leave out what
//! the message does not carry.

use swivel_provision::ProvisionMessage;

/// The Content-ID of the inline QR image (`<img src="cid:…">`).
pub const QR_CONTENT_ID: &str = "provision-qr@swivel-provision";

/// A placeholder a template may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    Username,
    Code,
    Link,
    GetsettingsLink,
    ValidityMinutes,
    QrImage,
}

impl Placeholder {
    fn parse(name: &str, html: bool) -> Option<Self> {
        Some(match name {
            "username" => Self::Username,
            "code" => Self::Code,
            "link" => Self::Link,
            "getsettings_link" => Self::GetsettingsLink,
            "validity_minutes" => Self::ValidityMinutes,
            "qr_image" if html => Self::QrImage,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
enum Segment {
    Text(String),
    Value(Placeholder),
}

/// A parsed template. Parsing checks every placeholder, so rendering cannot fail.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    segments: Vec<Segment>,
    html: bool,
}

/// Why a template was refused. Names the template and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{template}: {problem}")]
pub struct TemplateError {
    /// Which template (`subject`, `text_template`, `html_template`).
    pub template: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl Template {
    /// Parses `source`; `html` templates escape their values and may use `{qr_image}`.
    pub(crate) fn parse(
        name: &'static str,
        source: &str,
        html: bool,
    ) -> Result<Self, TemplateError> {
        let err = |problem: String| TemplateError {
            template: name,
            problem,
        };
        let mut segments = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(i) = rest.find(['{', '}']) {
            text.push_str(&rest[..i]);
            let brace = rest.as_bytes()[i];
            let after = &rest[i + 1..];
            if after.as_bytes().first() == Some(&brace) {
                text.push(brace as char);
                rest = &after[1..];
                continue;
            }
            if brace == b'}' {
                return Err(err("unmatched `}` (write `}}` for a literal brace)".into()));
            }
            let end = after
                .find('}')
                .ok_or_else(|| err("unclosed `{` (write `{{` for a literal brace)".into()))?;
            let key = &after[..end];
            let placeholder = Placeholder::parse(key, html).ok_or_else(|| {
                err(format!(
                    "unknown placeholder `{{{key}}}` (known: {{username}}, {{code}}, {{link}}, \
                     {{getsettings_link}}, {{validity_minutes}}{})",
                    if html { ", {qr_image}" } else { "" }
                ))
            })?;
            if !text.is_empty() {
                segments.push(Segment::Text(std::mem::take(&mut text)));
            }
            segments.push(Segment::Value(placeholder));
            rest = &after[end + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            segments.push(Segment::Text(text));
        }
        Ok(Self { segments, html })
    }

    /// Whether the template shows the QR image.
    pub(crate) fn uses_qr(&self) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Value(Placeholder::QrImage)))
    }

    /// Renders the template for one message. Values are inserted once (a value that looks
    /// like a placeholder stays as it is) and HTML-escaped in HTML templates.
    pub(crate) fn render(&self, message: &ProvisionMessage) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            match segment {
                Segment::Text(t) => out.push_str(t),
                Segment::Value(Placeholder::QrImage) => {
                    if message.qr().is_some() {
                        out.push_str(&qr_img_tag());
                    }
                }
                Segment::Value(p) => {
                    let minutes;
                    let value = match p {
                        Placeholder::Username => message.username.as_str(),
                        Placeholder::Code => message.code().map_or("", |c| c.expose()),
                        Placeholder::Link => message.links().best().unwrap_or(""),
                        Placeholder::GetsettingsLink => message.links().getsettings().unwrap_or(""),
                        Placeholder::ValidityMinutes => {
                            minutes = message.validity_minutes().to_string();
                            &minutes
                        }
                        Placeholder::QrImage => "",
                    };
                    if self.html {
                        out.push_str(&escape_html(value));
                    } else {
                        out.push_str(value);
                    }
                }
            }
        }
        out
    }
}

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn qr_img_tag() -> String {
    format!(
        "<img src=\"cid:{QR_CONTENT_ID}\" alt=\"QR code of the Provision URL\" width=\"240\" height=\"240\">"
    )
}

/// The default HTML body: greeting, the Provision URL as a link, the QR code (when the
/// message has one), the code, the server-settings link and the validity. Every value is
/// HTML-escaped; parts the message does not carry are left out.
pub fn default_html(message: &ProvisionMessage) -> String {
    let e = escape_html;
    if message.notice().is_some() {
        // A device-bound notice: its text, escaped (the device information comes from the
        // device), one paragraph per line.
        let paragraphs: String = message
            .text_body()
            .split("\n\n")
            .map(|p| format!("<p>{}</p>\n", e(p).replace('\n', "<br>\n")))
            .collect();
        return format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head>\n\
             <body style=\"font-family: sans-serif\">\n{paragraphs}</body></html>\n",
            ProvisionMessage::NOTICE_SUBJECT
        );
    }
    let mut out = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Mobile Provision Code</title></head>\n\
         <body style=\"font-family: sans-serif\">\n",
    );
    out.push_str(&format!("<p>Hello {},</p>\n", e(message.username.as_str())));
    out.push_str("<p>Use this to provision your Swivel mobile client.</p>\n");
    if let Some(link) = message.links().best() {
        let link = e(link);
        out.push_str(&format!(
            "<p><a href=\"{link}\">Provision your mobile client</a><br>\n<small>{link}</small></p>\n"
        ));
    }
    if message.qr().is_some() {
        out.push_str(&format!(
            "<p>Or scan this QR code with the mobile client:<br>\n{}</p>\n",
            qr_img_tag()
        ));
    }
    if let Some(code) = message.code() {
        out.push_str(&format!(
            "<p>Provision code: <strong>{}</strong></p>\n",
            e(code.expose())
        ));
    }
    if let Some(link) = message.links().getsettings() {
        let link = e(link);
        out.push_str(&format!(
            "<p>Server settings: <a href=\"{link}\">{link}</a></p>\n"
        ));
    }
    let minutes = message.validity_minutes();
    out.push_str(&format!(
        "<p>It can be used once and is valid for {minutes} minute{}. Provisioning this device \
         replaces any device provisioned before.</p>\n</body></html>\n",
        if minutes == 1 { "" } else { "s" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use swivel_provision::{Destination, ProvisionCode, Username};
    use time::OffsetDateTime;

    fn message(username: &str, link: Option<&str>) -> ProvisionMessage {
        ProvisionMessage::new(
            Username::parse(username).unwrap(),
            Destination::email("user@example.com").unwrap(),
            Some(ProvisionCode::new("1234567890")),
            ProvisionMessage::links_for_test(None, Some("https://a.example/gs?id=S"), link),
            OffsetDateTime::UNIX_EPOCH,
            90,
        )
    }

    #[test]
    fn renders_every_placeholder_once() {
        let t = Template::parse(
            "text_template",
            "{username}|{code}|{link}|{getsettings_link}|{validity_minutes}|{{code}}",
            false,
        )
        .unwrap();
        let m = message("{code}", Some("https://a.example/c?x=1&y=2"));
        assert_eq!(
            t.render(&m),
            "{code}|1234567890|https://a.example/c?x=1&y=2|https://a.example/gs?id=S|2|{code}"
        );
    }

    #[test]
    fn html_templates_escape_values() {
        let t = Template::parse(
            "html_template",
            "<a href=\"{link}\">{username}</a>{qr_image}",
            true,
        )
        .unwrap();
        let m = message("<b>\"o'k\"</b>", Some("https://a.example/c?x=1&y=\"2\""));
        let out = t.render(&m);
        assert_eq!(
            out,
            "<a href=\"https://a.example/c?x=1&amp;y=&quot;2&quot;\">&lt;b&gt;&quot;o&#39;k&quot;&lt;/b&gt;</a>"
        );
        assert!(t.uses_qr());
    }

    #[test]
    fn unknown_or_unbalanced_placeholders_are_refused() {
        let e = Template::parse("subject", "Hi {user}", false).unwrap_err();
        assert_eq!(e.template, "subject");
        assert!(e.problem.contains("{user}"), "{e}");
        assert!(Template::parse("subject", "{qr_image}", false).is_err());
        assert!(Template::parse("subject", "open {code", false).is_err());
        assert!(Template::parse("subject", "close }", false).is_err());
        assert!(Template::parse("subject", "{{ ok }}", false).is_ok());
    }

    #[test]
    fn missing_values_render_empty() {
        let m = ProvisionMessage::new(
            Username::parse("alice").unwrap(),
            Destination::email("user@example.com").unwrap(),
            None,
            ProvisionMessage::links_for_test(None, None, None),
            OffsetDateTime::UNIX_EPOCH,
            600,
        );
        let t = Template::parse("t", "[{code}][{link}][{getsettings_link}]", false).unwrap();
        assert_eq!(t.render(&m), "[][][]");
        let html = default_html(&m);
        assert!(!html.contains("Provision code"));
        assert!(!html.contains("<a "));
        assert!(html.contains("10 minutes"));
    }

    #[test]
    fn default_html_links_and_escapes() {
        let m = message("a&b", Some("https://a.example/c?site=S&code=1234567890"));
        let html = default_html(&m);
        assert!(html.contains("<a href=\"https://a.example/c?site=S&amp;code=1234567890\">"));
        assert!(html.contains("Hello a&amp;b,"));
        assert!(html.contains("<strong>1234567890</strong>"));
        assert!(html.contains("2 minutes"));
        assert!(!html.contains("cid:"), "no QR in this message");
    }
}
