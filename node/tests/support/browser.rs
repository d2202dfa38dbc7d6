//! A real browser for tests: headless Chromium driven over the W3C WebDriver protocol through
//! chromedriver, with `fantoccini` as the client. Blocking methods (the tests hold
//! `serial()`, a std mutex, so they stay synchronous); chromedriver and the browser it started
//! are stopped on drop.
//!
//! chromedriver cannot be told which address to bind: it listens on 127.0.0.1 only (unless
//! given `--allowed-ips`, which opens every interface), so it gets a free port there; the
//! pages it loads are the nodes' own 127.0.x.y addresses.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use super::require;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// axe-core's browser build, as `scripts/test.sh` installs it (`CALLFLEET_AXE` overrides).
pub fn axe_source() -> String {
    let path = std::env::var_os("CALLFLEET_AXE").map_or_else(
        || {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/npm/node_modules/axe-core/axe.min.js")
        },
        PathBuf::from,
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is not installed at {} ({e}): npm install --prefix target/npm axe-core@4 \
             (or run scripts/test.sh)",
            path.display()
        )
    })
}

/// Runs axe with the rules every page is held to: WCAG 2.1 A and AA (labels, contrast,
/// keyboard, names, structure) and axe's best practices; answers the violations, one line each.
const AXE_RUN: &str = "var done = arguments[arguments.length - 1];\
    axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},\
      resultTypes: ['violations']})\
    .then(function (r) { done(r.violations.map(function (v) {\
        return v.id + ' (' + v.impact + '): ' + v.help + ' at ' + v.nodes.map(function (n) { return n.target.join(' '); }).join(', ');\
      })); }, function (e) { done(['axe failed: ' + e]); });";

/// One headless Chromium session.
pub struct Browser {
    client: Option<Client>,
    rt: tokio::runtime::Runtime,
    driver: Child,
    /// Where [`Browser::screenshot`] writes its PNG files.
    pub shots: PathBuf,
    /// Chromium's profile and chromedriver's log.
    pub dir: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium with a fresh profile under `dir`;
    /// screenshots go to `shots`.
    pub fn start(dir: &Path, shots: &Path) -> Browser {
        require(CHROMIUM, "chromium");
        require(CHROMEDRIVER, "chromium-driver");
        let dir = dir.join("browser");
        let profile = dir.join("profile");
        std::fs::create_dir_all(&profile).expect("create the browser profile folder");
        std::fs::create_dir_all(shots).expect("create the screenshot folder");
        let port = free_port();
        let log = dir.join("chromedriver.log");
        // Its own process group, so that drop can stop chromedriver and every browser process
        // it started, and only those.
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let mut browser = Browser {
            client: None,
            rt,
            driver,
            shots: shots.to_path_buf(),
            dir,
        };
        let url = format!("http://127.0.0.1:{port}");
        let up = super::wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(
            up.is_some(),
            "chromedriver did not listen on {url}; see {}",
            log.display()
        );
        let mut args = vec![
            "--headless=new".to_string(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--no-first-run".into(),
            "--no-default-browser-check".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        // Chromium refuses to start as root with its sandbox on.
        if is_root() {
            args.push("--no-sandbox".into());
        }
        let mut caps = Capabilities::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": args }),
        );
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let client = browser
            .rt
            .block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(30),
                    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                        .capabilities(caps)
                        .connect(&url),
                )
                .await
            })
            .unwrap_or_else(|_| panic!("no browser session within 30 s; see {}", log.display()))
            .unwrap_or_else(|e| panic!("start a browser session: {e}; see {}", log.display()));
        browser.client = Some(client);
        browser
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("browser session open")
    }

    /// Runs one WebDriver exchange, bounded to 20 s.
    fn run<T>(
        &self,
        what: &str,
        f: impl std::future::Future<Output = Result<T, fantoccini::error::CmdError>>,
    ) -> T {
        self.rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(20), f).await })
            .unwrap_or_else(|_| panic!("browser: {what} took over 20 s"))
            .unwrap_or_else(|e| panic!("browser: {what}: {e}"))
    }

    /// Navigates to `url` and waits for the page to load.
    pub fn goto(&self, url: &str) {
        self.run(&format!("open {url}"), self.client().goto(url));
    }

    /// The address of the page shown.
    pub fn url(&self) -> String {
        self.run("read the URL", self.client().current_url())
            .to_string()
    }

    /// Types `text` into the element matching the CSS selector `css`.
    pub fn type_into(&self, css: &str, text: &str) {
        let c = self.client();
        self.run(&format!("type into {css}"), async {
            c.find(Locator::Css(css)).await?.send_keys(text).await
        });
    }

    /// Replaces the text of the input matching `css` with `text`, as a user would type it.
    pub fn retype(&self, css: &str, text: &str) {
        let c = self.client();
        self.run(&format!("retype {css}"), async {
            let input = c.find(Locator::Css(css)).await?;
            input.clear().await?;
            input.send_keys(text).await
        });
    }

    /// Clicks the element matching `css`.
    pub fn click(&self, css: &str) {
        let c = self.client();
        self.run(&format!("click {css}"), async {
            c.find(Locator::Css(css)).await?.click().await
        });
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page and returns what it
    /// returns.
    pub fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.run("run a script", self.client().execute(script, args))
    }

    /// Polls `script` every 100 ms until it returns `true`, at most `limit`; whether it did.
    pub fn wait_js(&self, limit: Duration, script: &str, args: Vec<Value>) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self.js(script, args.clone()) == Value::Bool(true) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Sets the browser window's size (the viewport follows), e.g. to the page's height before a
    /// screenshot of the whole page.
    pub fn resize(&self, width: u32, height: u32) {
        self.run(
            "resize the window",
            self.client().set_window_size(width, height),
        );
    }

    /// Saves a screenshot of the viewport as `shots/NAME.png` and returns its path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.run("take a screenshot", self.client().screenshot());
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// The text of an open `alert()`/`confirm()` dialog, if one is open.
    pub fn alert_text(&self) -> Option<String> {
        self.rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(5), self.client().get_alert_text()).await
            })
            .ok()
            .and_then(Result::ok)
    }

    /// Runs `script` asynchronously (its last argument is the callback to call with the
    /// result) and returns the result, waiting at most `limit`.
    pub fn js_async(&self, script: &str, args: Vec<Value>, limit: Duration) -> Value {
        self.rt
            .block_on(async {
                tokio::time::timeout(limit, self.client().execute_async(script, args)).await
            })
            .unwrap_or_else(|_| panic!("browser: an async script took over {limit:?}"))
            .unwrap_or_else(|e| panic!("browser: an async script: {e}"))
    }

    /// Presses `key` on the focused element.
    pub fn press(&self, key: fantoccini::key::Key) {
        self.type_focused(&char::from(key).to_string());
    }

    /// Types `text` into the focused element, as a user would.
    pub fn type_focused(&self, text: &str) {
        let c = self.client();
        self.run("type into the focused element", async {
            c.active_element().await?.send_keys(text).await
        });
    }

    /// Makes the window as tall as the page (at most 4000 px), so a screenshot shows it all.
    pub fn fit_page(&self) {
        let height = self
            .js(
                "return Math.ceil(document.documentElement.scrollHeight);",
                vec![],
            )
            .as_u64()
            .unwrap_or(900)
            .clamp(900, 4000);
        let height = u32::try_from(height).unwrap_or(900);
        self.run(
            "resize the window",
            self.client().set_window_size(1280, height),
        );
        // What the window's frame takes, if anything, is added once.
        let inner = self.js("return window.innerHeight;", vec![]).as_u64();
        let frame = inner.map_or(0, |i| u64::from(height).saturating_sub(i));
        if frame > 0 {
            let frame = u32::try_from(frame).unwrap_or(0);
            self.run(
                "resize the window",
                self.client().set_window_size(1280, height + frame),
            );
        }
    }

    /// The window's usual size again (1280×900).
    pub fn reset_size(&self) {
        self.run(
            "resize the window",
            self.client().set_window_size(1280, 900),
        );
    }

    /// The browser console's entries since the previous call (chromedriver's log endpoint),
    /// each as `LEVEL message`.
    pub fn console(&self) -> Vec<String> {
        let v = self.run("read the console", self.client().issue_cmd(BrowserLog));
        v.as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{} {}",
                            e["level"].as_str().unwrap_or("?"),
                            e["message"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// axe's violations on the page shown, one line each (`axe`: [`axe_source`]'s text).
    pub fn axe_violations(&self, axe: &str) -> Vec<String> {
        let kind = self.js(&format!("{axe}\n;return typeof window.axe;"), vec![]);
        assert_eq!(kind, json!("object"), "axe did not load on {}", self.url());
        let violations = self.js_async(AXE_RUN, vec![], Duration::from_secs(60));
        let list = violations
            .as_array()
            .unwrap_or_else(|| panic!("axe answered {violations}"));
        list.iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Reviews the page shown: axe finds nothing, the console has no error (but those
    /// containing one of `expected`), and a full-page screenshot is saved as `name`.
    pub fn review(&self, axe: &str, name: &str, expected: &[&str]) -> PathBuf {
        let violations = self.axe_violations(axe);
        assert!(
            violations.is_empty(),
            "axe on {name} ({}): {violations:#?}",
            self.url()
        );
        let console = self.console();
        let errors: Vec<&String> = console
            .iter()
            .filter(|l| l.starts_with("SEVERE") && !expected.iter().any(|e| l.contains(e)))
            .collect();
        assert!(errors.is_empty(), "console errors on {name}: {console:?}");
        self.fit_page();
        let shot = self.screenshot(name);
        self.reset_size();
        shot
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(5), client.close()).await
            });
        }
        // chromedriver and the browser processes it started share its process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// chromedriver's `POST /session/{id}/se/log` with `{"type": "browser"}`: the console
/// entries collected since the last read (with `goog:loggingPrefs` asking for them).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or("")))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(r#"{"type":"browser"}"#.to_string()),
        )
    }
}

/// A port free on 127.0.0.1 right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port on 127.0.0.1")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}
