//! What the users page and a user's page both show: the path of a user's page, the
//! destinations on one line, the one-button action forms, and the inputs of the Add user
//! and Edit forms.

use maud::{Markup, html};
use swivel_provision::{Channel, Purpose, UserEntry, Username};

use crate::html::csrf_field;
use crate::routes::landing::encode_component;

/// The path of a user's page (the name percent-encoded, so any username is one segment).
pub fn user_path(username: &Username) -> String {
    format!("/admin/users/{}", encode_component(username.as_str()))
}

/// A user's destinations on one line: `email: a@example.com, sms (strings): +44...`.
pub fn destinations_text(user: &UserEntry) -> String {
    user.destinations
        .iter()
        .map(|d| match d.purpose {
            Purpose::Alert => format!("{}: {}", d.channel, d.address),
            Purpose::SecurityString => format!("{} (strings): {}", d.channel, d.address),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A one-button form posting `csrf` and the username `value` to `action`; the button has
/// the id and name `id`.
pub fn button(csrf: &str, action: &str, id: &str, label: &str, value: &str) -> Markup {
    html! {
        form method="post" action=(action) style="display:inline" {
            (csrf_field(csrf))
            input type="hidden" name="username" value=(value);
            button type="submit" id=(id) name=(id) value=(value) { (label) }
        }
    }
}

/// The inputs of the Add user form (`None`) and of the Edit form, filled with `user`'s
/// values.
pub fn user_inputs(user: Option<&UserEntry>) -> Markup {
    let find = |channel: Channel, purpose: Purpose| {
        user.and_then(|u| {
            u.destinations
                .iter()
                .find(|d| d.channel == channel && d.purpose == purpose)
        })
        .map_or("", |d| d.address.as_str())
    };
    html! {
        label {
            "Email "
            input name="email" id="email" value=(find(Channel::Email, Purpose::Alert));
        }
        label {
            "Phone "
            input name="phone" id="phone" value=(find(Channel::Sms, Purpose::Alert));
        }
        label {
            "Security-string email "
            input name="strings_email" id="strings_email"
                value=(find(Channel::Email, Purpose::SecurityString));
        }
        label {
            "Security-string phone "
            input name="strings_phone" id="strings_phone"
                value=(find(Channel::Sms, Purpose::SecurityString));
        }
        label {
            input type="checkbox" name="mobile_group" id="mobile_group"
                checked[user.is_some_and(|u| u.mobile_group)];
            " Mobile group"
        }
        label {
            "PIN (4 to 10 digits" @if user.is_some() { "; empty: unchanged" } ") "
            input type="password" name="pin" id="pin" autocomplete="new-password";
        }
    }
}
