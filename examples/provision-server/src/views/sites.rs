//! The console's Sites page (`/admin/sites`): every site with its *Delete* button, and the
//! form that adds or changes one.

use maud::html;
use swivel_provision::{CONTEXTS, ServerSettings, SiteId};

use crate::actions::show_site;
use crate::html::csrf_field;
use crate::views::console::{self, Message};

/// The five SSD flags: the form field and the label.
const FLAGS: [(&str, &str); 5] = [
    ("using_ssl", "Devices use HTTPS (usingSSL)"),
    ("push_support", "Push authentication (pushSupport)"),
    ("local", "On the local network (local)"),
    ("pin", "The client asks for a PIN (pin)"),
    ("oath", "OATH tokens (oath)"),
];

/// The page: `message` (the outcome of a save or a delete), the `sites` and the form.
pub fn page(csrf: &str, sites: &[(SiteId, ServerSettings)], message: Option<&Message>) -> String {
    let body = html! {
        (console::message(message))
        table id="sites" {
            tr { th { "Site ID" } th { "Devices connect to" } th {} }
            @for (id, settings) in sites {
                tr {
                    td { (id.as_str()) }
                    td { (show_site(settings)) }
                    td {
                        form method="post" action="/admin/sites/delete" {
                            (csrf_field(csrf))
                            input type="hidden" name="site" value=(id.as_str());
                            button type="submit" id=(format!("delete-{}", id.as_str())) { "Delete" }
                        }
                    }
                }
            }
        }
        h2 { "Add or change a site" }
        form method="post" action="/admin/sites" {
            (csrf_field(csrf))
            label { "Site ID " input name="site" id="site" required; }
            label { "Host name " input name="hostname" id="hostname" required; }
            label { "Port " input name="port" id="port" value="8080" required; }
            label {
                "Context "
                select name="context" id="context" {
                    @for c in CONTEXTS {
                        option value=(c) { (c) }
                    }
                }
            }
            @for (name, label) in FLAGS {
                label {
                    input type="checkbox" name=(name) id=(name) value="on" checked[name == "pin"];
                    " " (label)
                }
            }
            button type="submit" id="save-site" { "Save site" }
        }
    };
    console::page(csrf, "Sites", body)
}
