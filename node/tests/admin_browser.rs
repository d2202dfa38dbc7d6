//! The admin pages in a real browser (headless Chromium through chromedriver): an admin logs
//! in and sets up a small call centre with the forms alone (agents, a phone, a queue with
//! members and a VIP caller, a user, a carrier, an IVR menu, a number and a ring group), sees a refused form's messages next to its
//! fields, confirms a delete on its own page, and fills a form with the keyboard alone. Every
//! page is checked with axe-core (labels, contrast, keyboard and focus rules: any violation
//! fails; a planted unlabelled field and faint text show it would), its console has no errors,
//! and a screenshot of it is saved under the test's work folder; the admin pages' ones are
//! copied to `docs/img/admin-*.png` for the docs. The panel, which shares the layout, passes
//! axe too. Address: 127.0.41.1.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::key::Key;
use serde_json::{json, Value};
use support::browser::{axe_source, Browser};
use support::{serial, workdir, NodeProc, NodeSpec, Pg};

const IP: &str = "127.0.41.1";
const ADMIN: &str = "ada";
const PASSWORD: &str = "ada-browser-pw";
const HOSTILE_NAME: &str = "<img src=x onerror=alert(1)>";

/// `docs/img`, where the docs' screenshots are kept.
fn docs_img() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/img")
}

/// One page under review: the browser, axe's source, where screenshots go.
struct Review {
    b: Browser,
    axe: String,
    base: String,
    shots: Vec<PathBuf>,
}

impl Review {
    /// Checks the page shown: axe finds nothing, the console has no error (but `expected`,
    /// e.g. the status of a refused form), and saves a full-page screenshot as `name`.
    fn check(&mut self, name: &str, expected: &[&str]) {
        let shot = self.b.review(&self.axe, name, expected);
        self.shots.push(shot);
    }

    /// axe's violations on the page shown, one line each.
    fn axe(&self) -> Vec<String> {
        self.b.axe_violations(&self.axe)
    }

    fn open(&mut self, path: &str) {
        self.b.goto(&format!("{}{path}", self.base));
    }

    /// Fills `fields` (CSS selector, text) of a form, then submits it with its button.
    fn fill_and_submit(&self, form: &str, fields: &[(&str, &str)]) {
        for (css, text) in fields {
            self.b.retype(&format!("#{form} {css}"), text);
        }
        self.click_and_wait(&format!("#{form} button[type=submit]"));
    }

    /// Clicks `css` and waits until the page it leads to has loaded.
    fn click_and_wait(&self, css: &str) {
        self.b.js("window.cfOldPage = true; return null;", vec![]);
        self.b.click(css);
        self.wait_new_page(css);
    }

    /// Waits until the page shown is not the one marked with `cfOldPage`, and has loaded.
    fn wait_new_page(&self, what: &str) {
        let loaded = self.b.wait_js(
            Duration::from_secs(15),
            "return !window.cfOldPage && document.readyState === 'complete';",
            vec![],
        );
        assert!(loaded, "no new page after {what}: {}", self.b.url());
    }

    /// Asserts the flash message, or shows what the page says instead.
    fn expect_flash(&self, want: &str) {
        let flash = self.flash();
        assert_eq!(flash, want, "at {}: {}", self.b.url(), self.text("main"));
    }

    /// The flash message shown, if any.
    fn flash(&self) -> String {
        let text = self.b.js(
            "var f = document.querySelector('[data-testid=flash]'); return f ? f.textContent : '';",
            vec![],
        );
        text.as_str().unwrap_or_default().to_owned()
    }

    fn text(&self, css: &str) -> String {
        let text = self.b.js(
            "var e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
            vec![json!(css)],
        );
        text.as_str().unwrap_or("(none)").to_owned()
    }
}

#[test]
fn an_admin_sets_up_a_call_centre_in_the_browser_and_every_page_passes_axe() {
    let _serial = serial();
    let axe = axe_source();
    let dir = workdir("admin_browser");
    let pg = Pg::fresh("admin_browser");
    let mut node = NodeProc::configure(
        &dir,
        NodeSpec {
            name: "admin-node",
            role: "main",
            ip: IP,
            db: &pg.url,
            capacity: 20,
            extra: "",
        },
    );
    let text = std::fs::read_to_string(&node.config).expect("read the node config");
    std::fs::write(
        &node.config,
        text.replacen("[http]\n", "[http]\ntrust_loopback = false\n", 1),
    )
    .expect("write the node config");
    // spawn waits for /healthz.
    node.spawn();
    support::user_add(&node, ADMIN, "admin", PASSWORD, None);

    let shots = dir.join("shots");
    let mut r = Review {
        b: Browser::start(&dir, &shots),
        axe,
        base: format!("http://{}", node.http),
        shots: Vec::new(),
    };
    log_in_and_check_axe_on_the_overview(&mut r);
    agents_and_a_phone(&mut r);
    a_queue_with_members_and_a_vip_caller(&mut r);
    a_refused_form(&mut r);
    a_confirmed_delete(&mut r);
    a_user(&mut r);
    a_carrier_with_the_keyboard_alone(&mut r);
    a_menu_and_a_number(&mut r);
    a_prompt_uploaded(&mut r, &dir);
    a_ring_group(&mut r);
    the_panel_in_the_same_layout(&mut r);
    copy_to_docs(&r, &shots);
    assert!(!node.log_text().contains("panicked"), "{}", node.log_text());
}

/// Logs in; axe finds its probes, then nothing on the overview.
fn log_in_and_check_axe_on_the_overview(r: &mut Review) {
    // Log in; the overview.
    r.open("/admin");
    assert!(r.b.url().contains("/login"), "no session: {}", r.b.url());
    r.b.type_into("#name", ADMIN);
    r.b.type_into("#password", PASSWORD);
    r.click_and_wait("#login");
    let at_admin = r.b.wait_js(
        Duration::from_secs(10),
        "return location.pathname === '/admin' && !!document.querySelector('h1');",
        vec![],
    );
    assert!(at_admin, "after login: {}", r.b.url());
    r.b.console();
    // axe finds what it is here to find: an unlabelled field and grey on white.
    r.b.js(
        "var i = document.createElement('input'); i.id = 'cf-probe'; document.querySelector('main').appendChild(i);\
         var p = document.createElement('p'); p.id = 'cf-probe-text'; p.textContent = 'faint'; p.style.color = '#bbb'; p.style.background = '#fff';\
         document.querySelector('main').appendChild(p); return null;",
        vec![],
    );
    let found = r.axe();
    for rule in ["label", "color-contrast"] {
        assert!(
            found.iter().any(|v| v.starts_with(&format!("{rule} ("))),
            "axe misses the {rule} probe: {found:?}"
        );
    }
    r.b.js(
        "document.getElementById('cf-probe').remove(); document.getElementById('cf-probe-text').remove(); return null;",
        vec![],
    );
    r.check("admin-overview", &[]);
}

/// Two agents, one with a hostile name, and a phone, made with the forms.
fn agents_and_a_phone(r: &mut Review) {
    // Agents: two, one with a hostile name, made with the form; each change says so.
    r.open("/admin/agents");
    r.fill_and_submit(
        "agent-new",
        &[
            ("[name=extension]", "1001"),
            ("[name=name]", "Alice Martin"),
            ("[name=pin]", "4321"),
            ("[name=daily_limit]", "40"),
        ],
    );
    r.expect_flash("Agent 1001 created.");
    r.fill_and_submit(
        "agent-new",
        &[
            ("[name=extension]", "1002"),
            ("[name=name]", HOSTILE_NAME),
            ("[name=pin]", "1234"),
        ],
    );
    r.expect_flash("Agent 1002 created.");
    let shown = r.b.js(
        "return [document.querySelector('[data-testid=\"agent-1002\"]').textContent.indexOf(arguments[0]) >= 0, document.querySelectorAll('main img').length];",
        vec![json!(HOSTILE_NAME)],
    );
    assert_eq!(shown, json!([true, 0]), "the hostile name is text");
    r.check("admin-agents", &[]);
    r.open("/admin/agents/1001");
    r.check("admin-agent", &[]);

    // A phone.
    r.open("/admin/devices");
    r.fill_and_submit(
        "device-new",
        &[
            ("[name=extension]", "2001"),
            ("[name=name]", "Front desk"),
            ("[name=password]", "phone-secret-1"),
        ],
    );
    r.expect_flash("Phone 2001 created.");
    r.check("admin-phones", &[]);
}

/// A queue typed in seconds; on its page, members and a VIP caller.
fn a_queue_with_members_and_a_vip_caller(r: &mut Review) {
    // A queue, typed in seconds; its page: members and a VIP caller.
    r.open("/admin/queues");
    r.b.retype("#queue-new [name=name]", "sales");
    r.b.js(
        "document.querySelector('#queue-new [name=strategy]').value = 'leastrecent'; return null;",
        vec![],
    );
    r.fill_and_submit(
        "queue-new",
        &[
            ("[name=ring_timeout_s]", "15"),
            ("[name=max_wait_s]", "120"),
            ("[name=wrapup_s]", "2.5"),
        ],
    );
    r.expect_flash("Queue sales created.");
    assert!(r.b.url().ends_with("/admin/queues/sales"), "{}", r.b.url());
    for (agent, tier, vip) in [("1001", "0", true), ("1002", "1", false)] {
        r.b.js(
            "var f = document.getElementById('member-add');\
             f.querySelector('[name=agent]').value = arguments[0];\
             f.querySelector('[name=vip_allowed]').checked = arguments[1]; return null;",
            vec![json!(agent), json!(vip)],
        );
        r.fill_and_submit("member-add", &[("[name=tier]", tier)]);
        assert!(
            r.flash()
                .starts_with(&format!("Agent {agent} is a member of sales: tier {tier}")),
            "{}",
            r.flash()
        );
    }
    r.fill_and_submit("vip-add", &[("[name=number]", "+4930123456")]);
    r.expect_flash("+4930123456 is a VIP caller of sales.");
    assert_eq!(
        r.b.js(
            "return document.querySelector('#queue-edit [name=wrapup_s]').value;",
            vec![]
        ),
        json!("2.5"),
        "seconds shown as typed"
    );
    r.check("admin-queue", &[]);
    r.open("/admin/queues");
    r.check("admin-queues", &[]);
}

/// A refused form: the problem next to its field and in the summary.
fn a_refused_form(r: &mut Review) {
    // A refused form: the problem next to its field and in the summary, nothing saved.
    r.open("/admin/queues/sales");
    r.b.js(
        "document.querySelector('#queue-edit [name=fallback]').value = 'voicemail'; return null;",
        vec![],
    );
    r.fill_and_submit("queue-edit", &[("[name=fallback_target]", "9999")]);
    let inline = r.text("#queue-edit-fallback_target-error");
    assert!(inline.contains("there is no agent \"9999\""), "{inline}");
    let invalid = r.b.js(
        "var i = document.getElementById('queue-edit-fallback_target');\
         return [i.getAttribute('aria-invalid'), i.getAttribute('aria-describedby'), i.value];",
        vec![],
    );
    assert_eq!(
        invalid,
        json!([
            "true",
            "queue-edit-fallback_target-hint queue-edit-fallback_target-error",
            "9999"
        ])
    );
    let summary = r.text("[data-testid=error]");
    assert!(
        summary.contains("Fallback target: there is no agent"),
        "{summary}"
    );
    r.check("admin-queue-invalid", &["status of 422"]);
}

/// A delete is asked first: cancel keeps the agent, confirm deletes it.
fn a_confirmed_delete(r: &mut Review) {
    // A delete is asked first; cancel keeps the agent, confirm deletes it.
    r.open("/admin/agents");
    r.click_and_wait("[data-testid=\"agent-delete-1002\"]");
    assert!(
        r.b.url().ends_with("/admin/agents/1002/delete"),
        "{}",
        r.b.url()
    );
    r.check("admin-delete-confirm", &[]);
    r.click_and_wait("[data-testid=cancel]");
    assert!(r.b.url().ends_with("/admin/agents/1002"), "{}", r.b.url());
    r.open("/admin/agents/1002/delete");
    r.click_and_wait("#confirm button[type=submit]");
    r.expect_flash("Agent 1002 deleted.");
    assert!(r.b.url().ends_with("/admin/agents"), "{}", r.b.url());
}

/// A panel user.
fn a_user(r: &mut Review) {
    // Users.
    r.open("/admin/users");
    r.fill_and_submit(
        "user-new",
        &[
            ("[name=name]", "sam"),
            ("[name=password]", "sam-password-1"),
            ("[name=device]", "2001"),
        ],
    );
    r.expect_flash("User sam created.");
    r.check("admin-users", &[]);
}

/// The keyboard alone fills the carrier form.
fn a_carrier_with_the_keyboard_alone(r: &mut Review) {
    // The keyboard alone: Tab from the top reaches the carrier form, every stop shows its
    // focus, the skip link comes first; Enter submits.
    r.open("/admin/carriers");
    let mut stops = Vec::new();
    for _ in 0..60 {
        r.b.press(Key::Tab);
        let focused = r.b.js(
            "var e = document.activeElement; var s = getComputedStyle(e);\
             return [e.id || e.getAttribute('href') || e.tagName, s.outlineStyle !== 'none' && s.outlineWidth !== '0px'];",
            vec![],
        );
        let visible = focused[1] == Value::Bool(true);
        let id = focused[0].as_str().unwrap_or_default().to_owned();
        assert!(visible, "no visible focus on {id} (after {stops:?})");
        stops.push(id.clone());
        if id == "carrier-new-name" {
            break;
        }
    }
    assert_eq!(
        stops.first().map(String::as_str),
        Some("#main"),
        "the skip link first"
    );
    assert_eq!(
        stops.last().map(String::as_str),
        Some("carrier-new-name"),
        "Tab reaches the form: {stops:?}"
    );
    r.b.type_focused("trunk-a");
    r.b.press(Key::Tab);
    r.b.type_focused("203.0.113.7/24");
    r.b.js("window.cfOldPage = true; return null;", vec![]);
    r.b.press(Key::Enter);
    r.wait_new_page("Enter in the carrier form");
    let saved = r.b.wait_js(
        Duration::from_secs(10),
        "var f = document.querySelector('[data-testid=flash]'); return !!f && f.textContent === 'Carrier trunk-a created.';",
        vec![],
    );
    assert!(saved, "the keyboard's form: {}", r.flash());
    assert!(
        r.text("[data-testid=\"carrier-trunk-a\"]")
            .contains("203.0.113.0/24"),
        "stored canonical"
    );
    r.check("admin-carriers", &[]);
}

/// An IVR menu with two keys and a number that leads to it, made with the forms.
fn a_menu_and_a_number(r: &mut Review) {
    r.open("/admin/menus");
    r.fill_and_submit(
        "menu-new",
        &[
            ("[name=name]", "main"),
            ("[name=prompt]", "welcome.wav"),
            ("[name=key_1]", "queue:sales"),
            ("[name=key_9]", "agent:1001"),
        ],
    );
    r.expect_flash("IVR menu main created.");
    assert!(
        r.text("[data-testid=\"menu-main\"]")
            .contains("1 queue:sales"),
        "the menu's keys in the list"
    );
    r.check("admin-menus", &[]);
    r.open("/admin/numbers");
    r.fill_and_submit(
        "number-new",
        &[
            ("[name=number]", "0800100"),
            ("[name=open]", "menu:main"),
            ("[name=time_zone]", "Europe/Paris"),
            ("[name=open_hours]", "mon-fri 09:00-17:00"),
            ("[name=holidays]", "2026-12-25"),
        ],
    );
    r.expect_flash("Number 0800100 created.");
    r.check("admin-numbers", &[]);
}

/// A recording uploaded as a prompt with the file chooser (a 16 kHz WAV), listed with its
/// length and a player.
fn a_prompt_uploaded(r: &mut Review, dir: &Path) {
    let wav = dir.join("welcome-16k.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&wav, spec).expect("create the WAV");
    for i in 0..24_000u32 {
        let x = (2.0 * std::f32::consts::PI * 700.0 * i as f32 / 16_000.0).sin() * 8_000.0;
        w.write_sample(x as i16).expect("write a sample");
    }
    w.finalize().expect("close the WAV");
    r.open("/admin/prompts");
    r.b.retype("#prompt-new [name=name]", "welcome");
    r.b.type_into("#prompt-new [name=file]", &wav.to_string_lossy());
    r.click_and_wait("#prompt-new button[type=submit]");
    r.expect_flash("Prompt welcome uploaded (1.5 s).");
    assert!(
        r.text("[data-testid=\"prompt-welcome\"]").contains("1.5 s"),
        "the prompt's length in the list"
    );
    r.check("admin-prompts", &[]);
}

/// A ring group of an agent and a phone, a number that leads to it, and the refused delete of
/// the group while the number uses it.
fn a_ring_group(r: &mut Review) {
    r.open("/admin/groups");
    r.fill_and_submit(
        "group-new",
        &[
            ("[name=name]", "office"),
            ("[name=members]", "agent:1001, device:2001"),
            ("[name=no_answer]", "voicemail:1001"),
        ],
    );
    r.expect_flash("Ring group office created.");
    assert!(
        r.text("[data-testid=\"group-office\"]")
            .contains("agent:1001, device:2001"),
        "the group's members in the list"
    );
    r.check("admin-groups", &[]);
    r.open("/admin/numbers");
    r.fill_and_submit(
        "number-new",
        &[
            ("[name=number]", "0800200"),
            ("[name=open]", "group:office"),
        ],
    );
    r.expect_flash("Number 0800200 created.");
    r.open("/admin/groups/office/delete");
    r.click_and_wait("#confirm button[type=submit]");
    assert!(
        r.text("main")
            .contains("is a destination of number 0800200"),
        "{}",
        r.text("main")
    );
    r.check("admin-group-in-use", &["status of 422"]);
}

/// The panel in the same layout, as an admin sees it.
fn the_panel_in_the_same_layout(r: &mut Review) {
    // The panel shares the layout: the admin sees the admin links there, and it passes too.
    r.open("/");
    let live = r.b.wait_js(
        Duration::from_secs(10),
        "var s = document.getElementById('status'); return !!s && s.textContent.indexOf('live') === 0;",
        vec![],
    );
    assert!(live, "the panel shows no snapshot");
    let nav = r.b.js(
        "return Array.prototype.map.call(document.querySelectorAll('header nav a'), function (a) { return a.textContent; });",
        vec![],
    );
    assert_eq!(
        nav,
        json!([
            "Panel",
            "Calls",
            "Reports",
            "Admin",
            "Queues",
            "Agents",
            "Phones",
            "Users",
            "Carriers",
            "Numbers",
            "IVR menus",
            "Ring groups",
            "Departments"
        ])
    );
    r.check("panel-as-admin", &[]);
}

/// Copies the admin pages' screenshots to `docs/img`.
fn copy_to_docs(r: &Review, shots: &Path) {
    let img = docs_img();
    std::fs::create_dir_all(&img).expect("create docs/img");
    for shot in &r.shots {
        let name = shot.file_name().expect("a file name");
        if !name.to_string_lossy().starts_with("admin-") {
            continue;
        }
        std::fs::copy(shot, img.join(name))
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", shot.display(), img.display()));
    }
    eprintln!("screenshots in {} and {}", shots.display(), img.display());
}
