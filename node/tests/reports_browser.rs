//! The report pages in a real browser (headless Chromium through chromedriver) on a seeded
//! history in PostgreSQL (`callfleet dev seed`): a supervisor logs in, opens every report,
//! changes a filter with the form, and meets a refused filter. Every page is checked with
//! axe-core (WCAG 2.1 A/AA and best practices: any violation fails), its console has no
//! errors, its chart is drawn (SVG shapes with their tooltips) and its table has rows; a
//! screenshot of each is saved under the test's work folder and copied to
//! `docs/img/report-*.png` for the docs. Address: 127.0.42.1.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use support::browser::{axe_source, Browser};
use support::{serial, workdir, NodeProc, NodeSpec, Pg};

const IP: &str = "127.0.42.1";
const USER: &str = "sam";
const PASSWORD: &str = "sam-browser-pw";

struct Review {
    b: Browser,
    axe: String,
    base: String,
    shots: Vec<PathBuf>,
}

impl Review {
    fn open(&mut self, path: &str) {
        self.b.goto(&format!("{}{path}", self.base));
        let loaded = self.b.wait_js(
            Duration::from_secs(30),
            "return document.readyState === 'complete' && !!document.querySelector('h1');",
            vec![],
        );
        assert!(loaded, "{path} did not load: {}", self.b.url());
    }

    /// axe finds nothing, the console has no error but `expected`, and a screenshot is kept.
    fn check(&mut self, name: &str, expected: &[&str]) {
        let shot = self.b.review(&self.axe, name, expected);
        self.shots.push(shot);
    }

    fn count(&self, css: &str) -> u64 {
        let n = self.b.js(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(css)],
        );
        n.as_u64().unwrap_or(0)
    }

    fn text(&self, css: &str) -> String {
        let t: Value = self.b.js(
            "var e = document.querySelector(arguments[0]); return e ? e.textContent : '';",
            vec![json!(css)],
        );
        t.as_str().unwrap_or_default().to_owned()
    }

    /// A report page with its chart drawn (at least `shapes` shapes) and rows in its table.
    fn report(&mut self, name: &str, path: &str, shapes: &str) {
        self.open(path);
        assert!(
            self.count(shapes) > 0,
            "{name}: no {shapes} in the chart: {}",
            self.text("main")
        );
        assert!(
            self.count("[data-testid=chart] title") > 0,
            "{name}: no tooltips"
        );
        assert!(
            self.count("#report tbody tr td:not(.empty)") > 0,
            "{name}: an empty table: {}",
            self.text("main")
        );
        assert!(self.count("[data-testid=csv]") == 1, "{name}: no CSV link");
        self.check(name, &[]);
    }
}

#[test]
fn a_supervisor_reads_every_report_in_the_browser_and_every_page_passes_axe() {
    let _serial = serial();
    let axe = axe_source();
    let dir = workdir("reports_browser");
    let pg = Pg::fresh("reports_browser");
    let mut node = NodeProc::configure(
        &dir,
        NodeSpec {
            name: "reports-node",
            role: "main",
            ip: IP,
            db: &pg.url,
            capacity: 20,
            extra: "",
        },
    );
    node.spawn();
    support::user_add(&node, USER, "supervisor", PASSWORD, None);
    let (ok, out, err) = support::cli(
        &node,
        &["dev", "seed", "--cdrs", "20000", "--days", "30"],
        "",
    );
    assert!(ok, "callfleet dev seed failed: {out}{err}");
    assert!(out.contains("20000 CDRs over 30 days"), "{out}");

    let shots = dir.join("shots");
    let mut r = Review {
        b: Browser::start(&dir, &shots),
        axe,
        base: format!("http://{}", node.http),
        shots: Vec::new(),
    };
    // No session: the login page, then back to the reports.
    r.open("/reports");
    assert!(r.b.url().contains("/login"), "no session: {}", r.b.url());
    r.b.type_into("#name", USER);
    r.b.type_into("#password", PASSWORD);
    r.b.click("#login");
    let at_reports = r.b.wait_js(
        Duration::from_secs(10),
        "return location.pathname === '/reports' && !!document.querySelector('h1');",
        vec![],
    );
    assert!(at_reports, "after login: {}", r.b.url());
    r.b.console();
    assert_eq!(
        r.count("main a[href^='/reports/']"),
        8,
        "{}",
        r.text("main")
    );
    r.check("report-index", &[]);

    let tz = "tz=America%2FNew_York";
    r.report(
        "report-queues",
        &format!("/reports/queues?interval=day&{tz}"),
        "rect.col",
    );
    // The form: a weekly view of one queue.
    r.b.js(
        "document.getElementById('f-interval').value = 'week';\
         document.getElementById('f-queue').value = 'sales'; return null;",
        vec![],
    );
    r.b.js("window.cfOldPage = true; return null;", vec![]);
    r.b.click("#filters button[type=submit]");
    let moved = r.b.wait_js(
        Duration::from_secs(30),
        "return !window.cfOldPage && document.readyState === 'complete';",
        vec![],
    );
    assert!(moved, "the filter form did not submit");
    let url = r.b.url();
    assert!(
        url.contains("interval=week") && url.contains("queue=sales"),
        "{url}"
    );
    assert!(
        r.text("#report tbody").contains("week of"),
        "{}",
        r.text("main")
    );
    assert!(!r.text("#report tbody").contains("support"));

    r.report(
        "report-agents",
        &format!("/reports/agents?{tz}"),
        "rect.col",
    );
    r.report(
        "report-heatmap",
        &format!("/reports/heatmap?{tz}"),
        "rect.heat5",
    );
    r.report(
        "report-evening",
        &format!("/reports/evening?queue=sales&{tz}"),
        "rect.col",
    );
    r.report(
        "report-departments",
        &format!("/reports/departments?interval=week&{tz}"),
        "rect.col",
    );
    r.report(
        "report-callers",
        &format!("/reports/callers?{tz}"),
        "rect.col",
    );
    r.report(
        "report-quality",
        &format!("/reports/quality?{tz}"),
        "rect.col",
    );
    assert!(
        r.text("#report tbody").contains("United States"),
        "{}",
        r.text("main")
    );

    // A refused filter: the page says why, with the form filled as typed.
    r.open("/reports/queues?tz=Mars%2FOlympus&sl=0");
    let problems = r.text("[data-testid=error]");
    assert!(
        problems.contains("Unknown time zone") && problems.contains("service-level"),
        "{problems}"
    );
    let typed =
        r.b.js("return document.getElementById('f-tz').value;", vec![]);
    assert_eq!(typed, json!("Mars/Olympus"));
    r.check("report-refused", &["400"]);

    let img = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/img");
    std::fs::create_dir_all(&img).expect("create docs/img");
    for shot in &r.shots {
        let name = shot.file_name().expect("a file name");
        std::fs::copy(shot, img.join(name)).expect("copy a screenshot to docs/img");
    }
    assert!(!node.log_text().contains("panicked"), "{}", node.log_text());
}
