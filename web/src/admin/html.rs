//! The admin pages as HTML strings, in the panel's look (its style sheet, no script). Every
//! value from the database or a form goes through [`escape`]; every form carries the
//! session's CSRF token as the hidden field `csrf`.

use std::fmt::Write as _;

use crate::panel::html::escape;

/// Who is looking at the page.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The logged-in admin.
    pub name: String,
    /// The session's CSRF token, embedded in every form.
    pub csrf: String,
}

/// A path segment, percent-encoded (names and numbers may hold `+`, `#`, `*`...).
pub fn seg(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The whole page around `body`, with the navigation and an error message if any.
pub fn page(viewer: &Viewer, title: &str, error: Option<&str>, body: &str) -> String {
    let mut h = String::with_capacity(body.len() + 2048);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        h,
        "<meta name=\"csrf\" content=\"{}\">",
        escape(&viewer.csrf)
    );
    let _ = writeln!(h, "<title>callfleet admin: {}</title>", escape(title));
    h.push_str(
        "<link rel=\"stylesheet\" href=\"/static/panel.css\">\n</head>\n<body class=\"admin\">\n",
    );
    h.push_str("<header>\n<h1>callfleet admin</h1>\n<nav>");
    for (href, label) in [
        ("/admin", "overview"),
        ("/admin/queues", "queues"),
        ("/admin/agents", "agents"),
        ("/admin/devices", "phones"),
        ("/admin/users", "users"),
        ("/admin/carriers", "carriers"),
        ("/", "panel"),
    ] {
        let _ = write!(h, " <a href=\"{href}\">{label}</a>");
    }
    h.push_str("</nav>\n");
    let _ = writeln!(
        h,
        "<span id=\"user\">{}</span> <form method=\"post\" action=\"/logout\" class=\"inline\">{}\
         <button type=\"submit\">log out</button></form>",
        escape(&viewer.name),
        csrf_field(viewer)
    );
    h.push_str("</header>\n<main>\n");
    let _ = writeln!(h, "<h2>{}</h2>", escape(title));
    if let Some(error) = error {
        let _ = writeln!(
            h,
            "<p class=\"error\" role=\"alert\" data-testid=\"error\">{}</p>",
            escape(error)
        );
    }
    h.push_str(body);
    h.push_str("</main>\n</body>\n</html>\n");
    h
}

/// The hidden CSRF field of a form.
pub fn csrf_field(viewer: &Viewer) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        escape(&viewer.csrf)
    )
}

/// A one-button form that POSTs to `action` (a delete), asking nothing else.
pub fn post_button(viewer: &Viewer, action: &str, label: &str, testid: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\">{}<button type=\"submit\" \
         data-testid=\"{}\">{}</button></form>",
        escape(action),
        csrf_field(viewer),
        escape(testid),
        escape(label)
    )
}

/// A labelled text input.
pub fn input(label: &str, name: &str, value: &str, attrs: &str) -> String {
    format!(
        "<label>{} <input name=\"{name}\" value=\"{}\" {attrs}></label>\n",
        escape(label),
        escape(value)
    )
}

/// A labelled select over `options`, `value` selected.
pub fn select(label: &str, name: &str, options: &[&str], value: &str) -> String {
    let mut h = format!("<label>{} <select name=\"{name}\">", escape(label));
    for o in options {
        let sel = if *o == value { " selected" } else { "" };
        let _ = write!(h, "<option{sel}>{}</option>", escape(o));
    }
    h.push_str("</select></label>\n");
    h
}

/// A labelled checkbox.
pub fn checkbox(label: &str, name: &str, checked: bool) -> String {
    format!(
        "<label><input type=\"checkbox\" name=\"{name}\"{}> {}</label>\n",
        if checked { " checked" } else { "" },
        escape(label)
    )
}

/// A table with a header row; `rows` are already HTML (`<tr>...</tr>`).
pub fn table(id: &str, headers: &[&str], rows: &[String]) -> String {
    let mut h = format!("<table id=\"{id}\">\n<thead><tr>");
    for th in headers {
        let _ = write!(h, "<th>{}</th>", escape(th));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    if rows.is_empty() {
        let _ = writeln!(
            h,
            "<tr><td colspan=\"{}\">none yet</td></tr>",
            headers.len()
        );
    }
    for r in rows {
        h.push_str(r);
        h.push('\n');
    }
    h.push_str("</tbody>\n</table>\n");
    h
}

/// A table cell holding escaped text.
pub fn td(text: &str) -> String {
    format!("<td>{}</td>", escape(text))
}

/// [`escape`] for attribute values (the same rules; named for where it is used).
pub fn escape_attr(text: &str) -> String {
    escape(text)
}
