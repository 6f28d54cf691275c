//! The console's Policy / Self-Reset page (`/admin/policy`): one field per policy key,
//! the values shown, and every refused value listed above the form.

use std::collections::HashMap;

use maud::{Markup, html};

use crate::html::csrf_field;
use crate::views::console;

/// One field of the form: the policy key, its label, and its choices (a text input when
/// there are none).
struct Field {
    key: &'static str,
    label: &'static str,
    choices: Option<&'static [&'static str]>,
}

const FIELDS: &[Field] = &[
    Field {
        key: "allow_self_provision",
        label: "Allow user self-provision of mobile client",
        choices: Some(&["Yes", "No"]),
    },
    Field {
        key: "log_device_info",
        label: "Log device information when provisioning",
        choices: Some(&["Yes", "No"]),
    },
    Field {
        key: "notify_device_bound",
        label: "Tell the user when a new device is provisioned",
        choices: Some(&["Yes", "No"]),
    },
    Field {
        key: "validity_secs",
        label: "Provision Code Validity period (seconds, 10-1000000)",
        choices: None,
    },
    Field {
        key: "code_length",
        label: "Provision code length",
        choices: None,
    },
    Field {
        key: "code_alphabet",
        label: "Provision code alphabet",
        choices: Some(&["digits", "alphanumeric"]),
    },
    Field {
        key: "max_attempts",
        label: "Wrong attempts per code (1-100)",
        choices: None,
    },
    Field {
        key: "self_service_interval_secs",
        label: "Seconds between self-service requests per user (0-86400)",
        choices: None,
    },
    Field {
        key: "delivery",
        label: "Message carries",
        choices: Some(&["both", "code_only", "url_only"]),
    },
    Field {
        key: "links.provision",
        label: "Provision URL (provision)",
        choices: None,
    },
    Field {
        key: "links.getsettings",
        label: "Provision URL (getsettings)",
        choices: None,
    },
    Field {
        key: "links.complete",
        label: "Provision URL (complete)",
        choices: None,
    },
    Field {
        key: "site_id",
        label: "Site ID",
        choices: None,
    },
    Field {
        key: "token_index",
        label: "Answer TokenIndex (next index for the mobile client)",
        choices: Some(&["Yes", "No"]),
    },
    Field {
        key: "provision_code_as_security_string",
        label: "Send provision code as security string",
        choices: Some(&["Yes", "No"]),
    },
];

fn field_input(field: &Field, value: &str) -> Markup {
    html! {
        @if let Some(choices) = field.choices {
            select name=(field.key) id=(field.key) {
                @for c in choices {
                    option value=(c) selected[c.eq_ignore_ascii_case(value)] { (c) }
                }
            }
        } @else {
            input name=(field.key) id=(field.key) value=(value) size="60";
        }
    }
}

/// The page: `values` by policy key, the refused values' `errors`, and "Policy saved."
/// when `saved`.
pub fn page(
    csrf: &str,
    values: &HashMap<String, String>,
    errors: &[String],
    saved: bool,
) -> String {
    let body = html! {
        @if saved {
            p class="ok" id="message" { "Policy saved." }
        }
        @if !errors.is_empty() {
            ul class="error" id="errors" {
                @for e in errors {
                    li { (e) }
                }
            }
        }
        form method="post" action="/admin/policy" {
            (csrf_field(csrf))
            @for f in FIELDS {
                label {
                    (f.label) ": "
                    (field_input(f, values.get(f.key).map_or("", String::as_str)))
                }
            }
            button type="submit" id="save" { "Save" }
        }
    };
    console::page(csrf, "Policy / Self-Reset", body)
}
