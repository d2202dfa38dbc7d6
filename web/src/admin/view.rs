//! What an admin page shows, as plain data for its template (`templates/admin/page.html` in
//! the layout shared with the panel): a heading, the flash message of the last change, the
//! problems of a refused form (each also shown next to its field), notes, and sections that
//! hold a table and a form. Every value is text the template escapes; no HTML is built here.

use std::fmt::Write as _;

use askama::Template;

use super::form::{Fields, Problems};
use crate::page::{Area, Chrome};

/// An admin page.
#[derive(Debug, Template)]
#[template(path = "admin/page.html")]
pub struct Page {
    /// The layout's part.
    pub chrome: Chrome,
    /// The `<h1>`.
    pub heading: String,
    /// What the last change did (shown once, after the redirect).
    pub flash: Option<String>,
    /// Why the request was refused, one line each, linked to the field when there is one.
    pub problems: Vec<ProblemLine>,
    /// Paragraphs under the heading.
    pub notes: Vec<String>,
    /// The page's sections, in order.
    pub sections: Vec<Section>,
}

impl Page {
    /// An empty page titled `heading`.
    pub fn new(chrome: Chrome, heading: impl Into<String>) -> Page {
        Page {
            chrome,
            heading: heading.into(),
            flash: None,
            problems: Vec::new(),
            notes: Vec::new(),
            sections: Vec::new(),
        }
    }

    /// The page as HTML.
    pub fn html(&self) -> String {
        self.render().unwrap_or_else(|e| {
            // Rendering writes plain text into a String: this does not happen.
            tracing::error!(error = %e, "cannot render an admin page");
            String::from("<!DOCTYPE html><title>callfleet</title><p>The page cannot be shown.</p>")
        })
    }

    /// Shows `problems`: a summary at the top, and each next to its field in the page's forms
    /// (a problem of a field no form shows goes in the summary alone).
    pub fn show_problems(&mut self, problems: &Problems) {
        for p in &problems.0 {
            let field = self
                .sections
                .iter_mut()
                .filter_map(|s| s.form.as_mut())
                .find_map(|form| form.field_mut(p.field));
            let line = match field {
                Some(field) if !p.field.is_empty() => {
                    field.error = Some(p.problem.clone());
                    ProblemLine {
                        text: format!("{}: {}", field.label, p.problem),
                        href: Some(format!("#{}", field.id)),
                    }
                }
                _ => ProblemLine {
                    text: p.to_string(),
                    href: None,
                },
            };
            self.problems.push(line);
        }
    }
}

/// One line of the problem summary.
#[derive(Debug, Clone)]
pub struct ProblemLine {
    /// What is wrong.
    pub text: String,
    /// The field's anchor.
    pub href: Option<String>,
}

/// A part of a page: a heading, notes, a table and a form.
#[derive(Debug, Default)]
pub struct Section {
    /// Its element id (the heading's is `{id}-title`).
    pub id: String,
    /// The `<h2>`.
    pub title: String,
    /// Paragraphs under the title.
    pub notes: Vec<String>,
    /// The list.
    pub table: Option<Table>,
    /// The form.
    pub form: Option<Form>,
    /// Links shown as buttons below (e.g. "Delete this queue…").
    pub links: Vec<Link>,
}

/// A list of rows.
#[derive(Debug)]
pub struct Table {
    /// Its element id.
    pub id: String,
    /// Column headings; the last column holds the row's actions.
    pub headers: Vec<&'static str>,
    /// The rows.
    pub rows: Vec<Row>,
    /// What the table says when it has no row.
    pub empty: String,
}

/// A table row.
#[derive(Debug)]
pub struct Row {
    /// Its `data-testid`.
    pub testid: String,
    /// Its cells, one per heading.
    pub cells: Vec<Cell>,
}

/// A table cell.
#[derive(Debug)]
pub enum Cell {
    /// Text.
    Text(String),
    /// Links (a name to its page).
    Links(Vec<Link>),
    /// The row's actions, and a note when one is missing ("you").
    Actions(Vec<Link>, String),
    /// An audio player: its source and what a screen reader calls it.
    Audio {
        /// The audio's URL (same origin).
        src: String,
        /// Its accessible name.
        label: String,
    },
}

/// A link.
#[derive(Debug, Clone)]
pub struct Link {
    /// Where it goes.
    pub href: String,
    /// What it says.
    pub text: String,
    /// What a screen reader says, when the text alone is ambiguous ("Delete" → "Delete queue
    /// sales").
    pub label: Option<String>,
    /// Its `data-testid`.
    pub testid: Option<String>,
    /// `danger` for destructive actions, `button` for a link styled as a button.
    pub class: &'static str,
}

impl Link {
    /// A plain link.
    pub fn new(href: impl Into<String>, text: impl Into<String>) -> Link {
        Link {
            href: href.into(),
            text: text.into(),
            label: None,
            testid: None,
            class: "",
        }
    }

    /// With an accessible name.
    pub fn label(mut self, label: impl Into<String>) -> Link {
        self.label = Some(label.into());
        self
    }

    /// With a `data-testid`.
    pub fn testid(mut self, testid: impl Into<String>) -> Link {
        self.testid = Some(testid.into());
        self
    }

    /// With a class.
    pub fn class(mut self, class: &'static str) -> Link {
        self.class = class;
        self
    }
}

/// A form that POSTs to this node, with the session's CSRF token.
#[derive(Debug)]
pub struct Form {
    /// Its element id; each field's id is `{id}-{name}`.
    pub id: String,
    /// Where it posts.
    pub action: String,
    /// The session's CSRF token (hidden field `csrf`).
    pub csrf: String,
    /// Its groups of fields.
    pub fieldsets: Vec<Fieldset>,
    /// The submit button's text.
    pub submit: String,
    /// The submit button's class (`primary`, `danger`).
    pub submit_class: &'static str,
    /// A link beside the button (cancel).
    pub cancel: Option<Link>,
    /// Sent as `multipart/form-data` (a form with a file).
    pub multipart: bool,
}

impl Form {
    /// A form of `fieldsets`; field ids are made unique to it.
    pub fn new(
        id: impl Into<String>,
        action: impl Into<String>,
        csrf: &str,
        submit: impl Into<String>,
        mut fieldsets: Vec<Fieldset>,
    ) -> Form {
        let id = id.into();
        for field in fieldsets.iter_mut().flat_map(|s| s.fields.iter_mut()) {
            field.id = format!("{id}-{}", field.name);
        }
        Form {
            id,
            action: action.into(),
            csrf: csrf.to_owned(),
            fieldsets,
            submit: submit.into(),
            submit_class: "primary",
            cancel: None,
            multipart: false,
        }
    }

    /// The form sent as `multipart/form-data`, for its file field. Its action must carry the
    /// CSRF token in its query (`?csrf=`): the guard does not read multipart bodies.
    pub fn multipart(mut self) -> Form {
        self.multipart = true;
        self
    }

    fn field_mut(&mut self, name: &str) -> Option<&mut Field> {
        self.fieldsets
            .iter_mut()
            .flat_map(|s| s.fields.iter_mut())
            .find(|f| f.name == name)
    }
}

/// A group of fields under a legend.
#[derive(Debug)]
pub struct Fieldset {
    /// The `<legend>`.
    pub legend: &'static str,
    /// Its fields.
    pub fields: Vec<Field>,
}

/// What kind of control a field is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// `<input type=…>` (`text`, `number`, `password`).
    Input(&'static str),
    /// `<input type=file>` taking the media types and extensions of `accept`.
    File(&'static str),
    /// `<select>` over (value, label) choices.
    Select(Vec<(String, String)>),
    /// A checkbox, ticked when the value is `on`.
    Checkbox,
}

/// One labelled field.
#[derive(Debug, Clone)]
pub struct Field {
    /// Its element id (set by [`Form::new`]).
    pub id: String,
    /// Its `name`.
    pub name: &'static str,
    /// Its `<label>`.
    pub label: &'static str,
    /// The control.
    pub control: Control,
    /// Its value.
    pub value: String,
    /// Help shown under it.
    pub hint: Option<String>,
    /// Its problem, shown under it.
    pub error: Option<String>,
    /// Required.
    pub required: bool,
    /// Shown, not changed (a row's key on its own page).
    pub readonly: bool,
    /// `min`, `max`, `step` of a number.
    pub range: Option<(String, String, &'static str)>,
    /// `autocomplete`.
    pub autocomplete: Option<&'static str>,
}

impl Field {
    fn control(name: &'static str, label: &'static str, control: Control) -> Field {
        Field {
            id: String::new(),
            name,
            label,
            control,
            value: String::new(),
            hint: None,
            error: None,
            required: false,
            readonly: false,
            range: None,
            autocomplete: None,
        }
    }

    /// A text input.
    pub fn text(name: &'static str, label: &'static str) -> Field {
        Field::control(name, label, Control::Input("text"))
    }

    /// A file input taking `accept` (`audio/wav,.wav`).
    pub fn file(name: &'static str, label: &'static str, accept: &'static str) -> Field {
        Field::control(name, label, Control::File(accept))
    }

    /// A password input (never filled in).
    pub fn password(name: &'static str, label: &'static str) -> Field {
        let mut f = Field::control(name, label, Control::Input("password"));
        f.autocomplete = Some("new-password");
        f
    }

    /// A number input in `min..=max`, `step` apart (`any` for decimals).
    pub fn number(
        name: &'static str,
        label: &'static str,
        min: impl ToString,
        max: impl ToString,
        step: &'static str,
    ) -> Field {
        let mut f = Field::control(name, label, Control::Input("number"));
        f.range = Some((min.to_string(), max.to_string(), step));
        f
    }

    /// A select over `choices` (value = label).
    pub fn select(name: &'static str, label: &'static str, choices: &[&str]) -> Field {
        let choices = choices
            .iter()
            .map(|c| ((*c).to_owned(), (*c).to_owned()))
            .collect();
        Field::control(name, label, Control::Select(choices))
    }

    /// A select over (value, label) choices.
    pub fn select_pairs(
        name: &'static str,
        label: &'static str,
        choices: Vec<(String, String)>,
    ) -> Field {
        Field::control(name, label, Control::Select(choices))
    }

    /// A checkbox.
    pub fn checkbox(name: &'static str, label: &'static str) -> Field {
        Field::control(name, label, Control::Checkbox)
    }

    /// Filled from `values` (passwords stay empty); `default` when `values` has none.
    pub fn from(mut self, values: &Fields, default: &str) -> Field {
        if self.control == Control::Input("password") {
            return self;
        }
        self.value = match values.get(self.name) {
            "" if self.control != Control::Checkbox => default.to_owned(),
            v => v.to_owned(),
        };
        self
    }

    /// With this value.
    pub fn value(mut self, value: impl Into<String>) -> Field {
        self.value = value.into();
        self
    }

    /// With help text.
    pub fn hint(mut self, hint: impl Into<String>) -> Field {
        self.hint = Some(hint.into());
        self
    }

    /// Required.
    pub fn required(mut self) -> Field {
        self.required = true;
        self
    }

    /// Read-only.
    pub fn readonly(mut self) -> Field {
        self.readonly = true;
        self
    }

    /// The checkbox is ticked.
    pub fn checked(&self) -> bool {
        matches!(self.value.as_str(), "on" | "1" | "true" | "yes")
    }

    /// The ids of its hint and problem, for `aria-describedby` (empty: none).
    pub fn described_by(&self) -> String {
        let mut ids = String::new();
        if self.hint.is_some() {
            let _ = write!(ids, "{}-hint", self.id);
        }
        if self.error.is_some() {
            if !ids.is_empty() {
                ids.push(' ');
            }
            let _ = write!(ids, "{}-error", self.id);
        }
        ids
    }
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

/// The layout's part for an admin page.
pub fn chrome(title: &str, area: Area, user: &str, csrf: &str) -> Chrome {
    Chrome {
        title: title.to_owned(),
        area,
        user: Some(user.to_owned()),
        csrf: Some(csrf.to_owned()),
        admin: true,
        script: None,
    }
}
