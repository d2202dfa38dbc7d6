//! The one HTML layout of the node's pages: the supervisor panel and the admin pages render
//! through `templates/layout.html` (askama: checked when the crate compiles, every value
//! escaped unless a template says otherwise, which none does).
//!
//! [`Chrome`] is what the layout needs from a page: its title, which part of the site it
//! belongs to (the navigation marks it with `aria-current`), the signed-in user and the
//! session's CSRF token (a `<meta name="csrf">` for the panel's script and the hidden field of
//! the log-out form), whether the user is an admin (the admin links are shown to admins only),
//! and the page's script, if any (the admin pages have none).

/// The templates' HTML escaper: `&`, `<`, `>`, `"` and `'` as `&amp;`, `&lt;`, `&gt;`,
/// `&quot;` and `&#39;`, the same text [`escape`](crate::panel::html::escape) writes (askama's
/// own escaper writes numeric entities; one form everywhere keeps pages and tests alike).
#[derive(Debug, Clone, Copy, Default)]
pub struct Html;

impl askama::filters::Escaper for Html {
    fn write_escaped_str<W: std::fmt::Write>(&self, mut dest: W, text: &str) -> std::fmt::Result {
        let mut rest = text;
        while let Some(i) = rest.find(['&', '<', '>', '"', '\'']) {
            let (plain, special) = rest.split_at(i);
            dest.write_str(plain)?;
            let mut chars = special.chars();
            dest.write_str(match chars.next() {
                Some('&') => "&amp;",
                Some('<') => "&lt;",
                Some('>') => "&gt;",
                Some('"') => "&quot;",
                _ => "&#39;",
            })?;
            rest = chars.as_str();
        }
        dest.write_str(rest)
    }
}

/// The part of the site a page belongs to; its navigation link is marked current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The supervisor panel, `/`.
    Panel,
    /// The finished call legs and their RTP quality, `/calls`.
    Calls,
    /// The admin overview, `/admin`.
    Overview,
    /// `/admin/queues` and a queue's page.
    Queues,
    /// `/admin/agents`.
    Agents,
    /// `/admin/devices`.
    Phones,
    /// `/admin/users`.
    Users,
    /// `/admin/carriers`.
    Carriers,
    /// `/admin/numbers` (DIDs).
    Numbers,
    /// `/admin/menus` (IVR menus).
    Menus,
    /// `/admin/groups` (ring groups).
    Groups,
    /// `/admin/departments` (groups of queues for the reports).
    Departments,
    /// `/reports` and each report.
    Reports,
}

impl Area {
    /// Every area in navigation order, with its address and label.
    const ALL: [(Area, &'static str, &'static str); 13] = [
        (Area::Panel, "/", "Panel"),
        (Area::Calls, "/calls", "Calls"),
        (Area::Reports, "/reports", "Reports"),
        (Area::Overview, "/admin", "Admin"),
        (Area::Queues, "/admin/queues", "Queues"),
        (Area::Agents, "/admin/agents", "Agents"),
        (Area::Phones, "/admin/devices", "Phones"),
        (Area::Users, "/admin/users", "Users"),
        (Area::Carriers, "/admin/carriers", "Carriers"),
        (Area::Numbers, "/admin/numbers", "Numbers"),
        (Area::Menus, "/admin/menus", "IVR menus"),
        (Area::Groups, "/admin/groups", "Ring groups"),
        (Area::Departments, "/admin/departments", "Departments"),
    ];

    /// The `class` of the page's `<body>`.
    pub fn body_class(self) -> &'static str {
        match self {
            Area::Panel => "panel",
            _ => "admin",
        }
    }
}

/// One link of the navigation bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavLink {
    /// Where it goes.
    pub href: &'static str,
    /// What it says.
    pub label: &'static str,
    /// It is the page shown (or the page's section).
    pub current: bool,
}

/// What the layout needs from every page.
#[derive(Debug, Clone)]
pub struct Chrome {
    /// The page's title (the `<title>` adds "callfleet").
    pub title: String,
    /// Where the page belongs in the navigation.
    pub area: Area,
    /// The signed-in user, shown in the header beside the log-out button.
    pub user: Option<String>,
    /// The session's CSRF token.
    pub csrf: Option<String>,
    /// The user may see the admin pages (their links are shown).
    pub admin: bool,
    /// The page's script (same origin), loaded with `defer`.
    pub script: Option<&'static str>,
}

impl Chrome {
    /// The navigation links this user sees: the panel, the calls and the reports, and the
    /// admin pages for an admin.
    pub fn nav(&self) -> Vec<NavLink> {
        Area::ALL
            .iter()
            .filter(|(area, _, _)| {
                self.admin || matches!(area, Area::Panel | Area::Calls | Area::Reports)
            })
            .map(|&(area, href, label)| NavLink {
                href,
                label,
                current: area == self.area,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrome(area: Area, admin: bool) -> Chrome {
        Chrome {
            title: "t".into(),
            area,
            user: None,
            csrf: None,
            admin,
            script: None,
        }
    }

    #[test]
    fn supervisors_see_only_the_panel_and_calls_links_and_the_current_area_is_marked() {
        let nav = chrome(Area::Panel, false).nav();
        assert_eq!(nav.len(), 3);
        assert!(nav[0].current);
        assert_eq!(nav[1].label, "Calls");
        assert_eq!(nav[2].href, "/reports");
        let nav = chrome(Area::Queues, true).nav();
        assert_eq!(nav.len(), 13);
        let current: Vec<&str> = nav.iter().filter(|l| l.current).map(|l| l.label).collect();
        assert_eq!(current, ["Queues"]);
        assert_eq!(Area::Queues.body_class(), "admin");
        assert_eq!(Area::Panel.body_class(), "panel");
    }

    #[test]
    fn the_escaper_writes_what_escape_writes() {
        use askama::filters::Escaper;
        for text in [
            "",
            "plain",
            "<script>alert('x')</script>\"&",
            "a&&b",
            "ünï<cödé>",
        ] {
            let mut out = String::new();
            Html.write_escaped_str(&mut out, text)
                .expect("write to a String");
            assert_eq!(out, crate::panel::html::escape(text), "{text}");
        }
    }
}
