//! A small W3C WebDriver client for the browser tests: it starts Debian's `chromedriver` on a
//! free loopback port, opens one headless Chromium session with a download directory of its
//! own, and speaks WebDriver's JSON over HTTP/1.1 on `std::net::TcpStream` (one connection a
//! command, `Connection: close`). Everything panics with a message naming what it looked for;
//! the `try_` methods return the WebDriver error instead, for polling.

use base64ct::{Base64, Encoding};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::fmt;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The key under which WebDriver sends an element reference (W3C "web element identifier").
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// What to do when the browser is missing.
const INSTALL_HINT: &str = "install Debian's `chromium` and `chromium-driver` packages \
     (apt-get install chromium chromium-driver; .ci/run does): the browser tests need them";

/// One browser at a time: a Chromium is heavy and the CI machines are small.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// The WebDriver keys (W3C "keyboard actions" code points).
pub(crate) mod keys {
    pub(crate) const TAB: &str = "\u{E004}";
    pub(crate) const ENTER: &str = "\u{E007}";
}

/// A WebDriver error answer (or a transport failure, `status` 0).
#[derive(Debug, Clone)]
pub(crate) struct WdError {
    pub(crate) status: u16,
    pub(crate) error: String,
    pub(crate) message: String,
}

impl fmt::Display for WdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first line of chromedriver's message; the rest is its session info.
        let first = self.message.lines().next().unwrap_or("");
        write!(f, "{} ({}): {first}", self.error, self.status)
    }
}

/// A reference to one element of the page, with the selector it was found by.
#[derive(Debug, Clone)]
pub(crate) struct Element {
    pub(crate) id: String,
    pub(crate) what: String,
}

impl Element {
    /// The element as a script argument of [`Browser::execute`].
    pub(crate) fn json(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }
}

/// Something that names an element: a CSS selector or an element already found.
pub(crate) trait Target {
    fn element(&self, browser: &Browser) -> Element;
}

impl Target for &str {
    fn element(&self, browser: &Browser) -> Element {
        browser.find(self)
    }
}

impl Target for &String {
    fn element(&self, browser: &Browser) -> Element {
        browser.find(self)
    }
}

impl Target for &Element {
    fn element(&self, _: &Browser) -> Element {
        (*self).clone()
    }
}

impl Target for Element {
    fn element(&self, _: &Browser) -> Element {
        self.clone()
    }
}

/// One headless Chromium driven through its own chromedriver; both end when this is dropped.
pub(crate) struct Browser {
    driver: Child,
    port: u16,
    session: String,
    /// Where the browser saves downloads (empty at the start).
    pub(crate) downloads: PathBuf,
    /// Every browser log entry read so far: (level, message).
    log: RefCell<Vec<(String, String)>>,
    _downloads: tempfile::TempDir,
    profile: tempfile::TempDir,
    _one: MutexGuard<'static, ()>,
}

/// An answer of chromedriver: status and body.
struct HttpAnswer {
    status: u16,
    body: Vec<u8>,
}

/// One HTTP/1.1 request to 127.0.0.1:`port`, `Connection: close`; reads the whole answer.
fn http(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<HttpAnswer, String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    // A page load or a script can take a while; chromedriver answers within its own timeouts.
    stream
        .set_read_timeout(Some(Duration::from_secs(180)))
        .map_err(|e| e.to_string())?;
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: application/json\r\n\
         Connection: close\r\n"
    );
    if method != "GET" && method != "DELETE" {
        request.push_str("Content-Type: application/json; charset=utf-8\r\n");
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    // chromedriver keeps the connection open despite `Connection: close`: the answer ends where
    // its Content-Length (or last chunk) says, not at EOF.
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        if answer_complete(&raw) {
            break;
        }
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    parse_answer(&raw)
}

/// Whether `raw` holds a whole answer: headers and all the body they announce (without a
/// length or chunks, only EOF ends it).
fn answer_complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    let body = &raw[end + 4..];
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            match name.trim() {
                "content-length" => {
                    return value.trim().parse::<usize>().is_ok_and(|n| body.len() >= n)
                }
                "transfer-encoding" if value.contains("chunked") => {
                    return body.ends_with(b"0\r\n\r\n") && parse_answer(raw).is_ok()
                }
                _ => {}
            }
        }
    }
    false
}

/// Splits an HTTP/1.1 answer into status and body (Content-Length, chunked, or to EOF).
fn parse_answer(raw: &[u8]) -> Result<HttpAnswer, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("no header end in {:?}", String::from_utf8_lossy(raw)))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let rest = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("status line {status_line:?}"))?;
    let mut length = None;
    let mut chunked = false;
    for line in lines {
        // chromedriver writes `Content-Length:252`, without the space.
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim(), value.trim());
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
            {
                chunked = true;
            }
        }
    }
    let body = if chunked {
        let mut body = Vec::new();
        let mut at = rest;
        loop {
            let line_end = at
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("chunk size line")?;
            let size_text = String::from_utf8_lossy(&at[..line_end]);
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| format!("chunk size {size_text:?}"))?;
            at = &at[line_end + 2..];
            if size == 0 {
                break;
            }
            if at.len() < size {
                return Err("chunk cut short".into());
            }
            body.extend_from_slice(&at[..size]);
            at = &at[(size + 2).min(at.len())..];
        }
        body
    } else if let Some(length) = length {
        if rest.len() < length {
            return Err(format!("body of {} bytes, expected {length}", rest.len()));
        }
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpAnswer { status, body })
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local address").port()
}

/// The directory for screenshots: `target/console-screenshots` (created).
pub(crate) fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).expect("create target/console-screenshots");
    dir
}

/// `"` and `\` escaped for a CSS string literal.
pub(crate) fn css_string(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' => out.push_str("\\a "),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session; panics with an install hint when
    /// either is missing.
    pub(crate) fn start() -> Browser {
        let one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
        let profile = tempfile::Builder::new()
            .prefix("certmill-chromium-")
            .tempdir()
            .expect("temp dir for the browser profile");
        let downloads_dir = tempfile::Builder::new()
            .prefix("certmill-downloads-")
            .tempdir()
            .expect("temp dir for downloads");
        let downloads = downloads_dir
            .path()
            .canonicalize()
            .expect("canonical download dir");
        let port = free_port();
        let log_path = profile.path().join("chromedriver.log");
        let log_file = std::fs::File::create(&log_path).expect("chromedriver log file");
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run chromedriver ({e}): {INSTALL_HINT}"));
        let user_data = profile.path().join("user-data");
        std::fs::create_dir_all(&user_data).expect("user data dir");
        let mut browser = Browser {
            driver,
            port,
            session: String::new(),
            downloads,
            log: RefCell::new(Vec::new()),
            _downloads: downloads_dir,
            profile,
            _one: one,
        };
        browser.wait_driver_ready();
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "args": [
                            "--headless=new",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-dev-shm-usage",
                            "--window-size=1280,900",
                            "--no-first-run",
                            "--no-default-browser-check",
                            "--disable-search-engine-choice-screen",
                            format!("--user-data-dir={}", user_data.display()),
                        ],
                        "prefs": {
                            "download.default_directory": browser.downloads.display().to_string(),
                            "download.prompt_for_download": false,
                            "download.directory_upgrade": true,
                            "safebrowsing.enabled": false,
                        },
                    },
                    "goog:loggingPrefs": {"browser": "ALL"},
                    "timeouts": {"script": 30_000, "pageLoad": 60_000, "implicit": 0},
                }
            }
        });
        let answer = match http(port, "POST", "/session", Some(&capabilities)) {
            Ok(answer) => answer,
            Err(e) => panic!(
                "chromedriver did not answer the new session ({e}); its log:\n{}",
                browser.driver_log()
            ),
        };
        let value: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
        let session = value["value"]["sessionId"].as_str().map(str::to_owned);
        match session {
            Some(session) if answer.status == 200 => browser.session = session,
            _ => panic!(
                "chromedriver could not start Chromium (status {}): {}\n{INSTALL_HINT}\n\
                 chromedriver log:\n{}",
                answer.status,
                value["value"]["message"]
                    .as_str()
                    .unwrap_or(&value.to_string()),
                browser.driver_log()
            ),
        }
        // Chromium 156 headless honours download.default_directory from the prefs; the
        // DevTools command makes sure on builds that do not.
        let downloads = browser.downloads.display().to_string();
        let allow = browser.cdp(
            "Browser.setDownloadBehavior",
            json!({"behavior": "allow", "downloadPath": downloads, "eventsEnabled": false}),
        );
        if allow.is_err() {
            browser
                .cdp(
                    "Page.setDownloadBehavior",
                    json!({"behavior": "allow", "downloadPath": downloads}),
                )
                .unwrap_or_else(|e| panic!("cannot allow downloads: {e}"));
        }
        browser
    }

    fn driver_log(&self) -> String {
        std::fs::read_to_string(self.profile.path().join("chromedriver.log")).unwrap_or_default()
    }

    fn wait_driver_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!(
                    "chromedriver exited ({status}) before it was ready: {}\n{INSTALL_HINT}",
                    self.driver_log()
                );
            }
            if let Ok(answer) = http(self.port, "GET", "/status", None) {
                let value: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
                if value["value"]["ready"] == true {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver on port {} not ready after 30 s: {}",
                self.port,
                self.driver_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One WebDriver command of this session (`path` after `/session/{id}`): its `value`.
    pub(crate) fn try_command(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WdError> {
        let full = format!("/session/{}{path}", self.session);
        // POST commands without parameters still need a JSON object.
        let body = match (method, body) {
            ("POST", None) => Some(json!({})),
            (_, body) => body,
        };
        let answer = http(self.port, method, &full, body.as_ref()).map_err(|e| WdError {
            status: 0,
            error: "transport".into(),
            message: format!("{method} {full}: {e}"),
        })?;
        let value: Value = serde_json::from_slice(&answer.body).map_err(|e| WdError {
            status: answer.status,
            error: "not JSON".into(),
            message: format!("{e}: {}", String::from_utf8_lossy(&answer.body)),
        })?;
        let value = value.get("value").cloned().unwrap_or(Value::Null);
        if answer.status == 200 {
            Ok(value)
        } else {
            Err(WdError {
                status: answer.status,
                error: value["error"].as_str().unwrap_or("unknown error").into(),
                message: value["message"].as_str().unwrap_or("").into(),
            })
        }
    }

    /// [`Browser::try_command`] that panics, naming `what`.
    pub(crate) fn command(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
        what: &str,
    ) -> Value {
        self.try_command(method, path, body)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
    }

    /// A Chrome DevTools Protocol command through chromedriver's `chromium/send_command`.
    pub(crate) fn cdp(&self, cmd: &str, params: Value) -> Result<Value, WdError> {
        self.try_command(
            "POST",
            "/chromium/send_command_and_get_result",
            Some(json!({"cmd": cmd, "params": params})),
        )
    }

    /// A script that runs in every document this session opens, before the page's own
    /// (DevTools `Page.addScriptToEvaluateOnNewDocument`; a page's CSP does not apply to it).
    pub(crate) fn add_init_script(&self, source: &str) {
        self.cdp(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({ "source": source }),
        )
        .unwrap_or_else(|e| panic!("add an init script: {e}"));
    }

    pub(crate) fn goto(&self, url: &str) {
        self.command(
            "POST",
            "/url",
            Some(json!({ "url": url })),
            &format!("goto {url}"),
        );
    }

    pub(crate) fn current_url(&self) -> String {
        self.command("GET", "/url", None, "current url")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub(crate) fn title(&self) -> String {
        self.command("GET", "/title", None, "title")
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    fn element_of(value: &Value, what: &str) -> Element {
        Element {
            id: value[ELEMENT_KEY]
                .as_str()
                .unwrap_or_else(|| panic!("{what}: no element reference in {value}"))
                .to_owned(),
            what: what.to_owned(),
        }
    }

    /// The first element matching `css`, or None; errors other than "no such element" too.
    pub(crate) fn try_find(&self, css: &str) -> Result<Option<Element>, WdError> {
        match self.try_command(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        ) {
            Ok(value) => Ok(Some(Browser::element_of(&value, css))),
            Err(e) if e.error == "no such element" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The first element matching `css`; panics when there is none.
    pub(crate) fn find(&self, css: &str) -> Element {
        match self.try_find(css) {
            Ok(Some(element)) => element,
            Ok(None) => panic!(
                "no element matches {css:?} at {}; the page says:\n{}",
                self.current_url(),
                self.page_text()
            ),
            Err(e) => panic!("find {css:?}: {e}"),
        }
    }

    /// Every element matching `css` (maybe none).
    pub(crate) fn find_all(&self, css: &str) -> Vec<Element> {
        self.command(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
            &format!("find all {css:?}"),
        )
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| Browser::element_of(v, css))
        .collect()
    }

    /// Elements matching `css` inside `parent`.
    pub(crate) fn find_in(&self, parent: &Element, css: &str) -> Vec<Element> {
        let what = format!("{} {css}", parent.what);
        self.command(
            "POST",
            &format!("/element/{}/elements", parent.id),
            Some(json!({"using": "css selector", "value": css})),
            &format!("find {what:?}"),
        )
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|v| Browser::element_of(v, &what))
        .collect()
    }

    pub(crate) fn click(&self, target: impl Target) {
        let element = target.element(self);
        self.command(
            "POST",
            &format!("/element/{}/click", element.id),
            None,
            &format!("click {:?}", element.what),
        );
    }

    pub(crate) fn clear(&self, target: impl Target) {
        let element = target.element(self);
        self.command(
            "POST",
            &format!("/element/{}/clear", element.id),
            None,
            &format!("clear {:?}", element.what),
        );
    }

    /// Types `text` into the element (for `<input type=file>`: an absolute path).
    pub(crate) fn send_keys(&self, target: impl Target, text: &str) {
        let element = target.element(self);
        self.command(
            "POST",
            &format!("/element/{}/value", element.id),
            Some(json!({ "text": text })),
            &format!("send keys to {:?}", element.what),
        );
    }

    /// Types `text` wherever the focus is (keyboard actions; [`keys`] for Tab, Enter).
    pub(crate) fn keys(&self, text: &str) {
        let mut actions = Vec::new();
        for c in text.chars() {
            actions.push(json!({"type": "keyDown", "value": c.to_string()}));
            actions.push(json!({"type": "keyUp", "value": c.to_string()}));
        }
        self.command(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
            "keyboard actions",
        );
        self.command("DELETE", "/actions", None, "release actions");
    }

    /// The focused element.
    pub(crate) fn active_element(&self) -> Element {
        let value = self.command("GET", "/element/active", None, "active element");
        Browser::element_of(&value, "(focused element)")
    }

    /// The rendered text of an element.
    pub(crate) fn text(&self, target: impl Target) -> String {
        let element = target.element(self);
        self.command(
            "GET",
            &format!("/element/{}/text", element.id),
            None,
            &format!("text of {:?}", element.what),
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// The text of the first element matching `css`, None when there is none (or it went
    /// stale while read): for polling.
    pub(crate) fn try_text(&self, css: &str) -> Option<String> {
        let element = self.try_find(css).ok().flatten()?;
        self.try_command("GET", &format!("/element/{}/text", element.id), None)
            .ok()?
            .as_str()
            .map(str::to_owned)
    }

    /// A DOM property of the first element matching `css`, None when there is none (or it
    /// went stale while read): for polling.
    pub(crate) fn try_property(&self, css: &str, name: &str) -> Option<Value> {
        let element = self.try_find(css).ok().flatten()?;
        self.try_command(
            "GET",
            &format!("/element/{}/property/{name}", element.id),
            None,
        )
        .ok()
    }

    /// An HTML attribute (None when absent).
    pub(crate) fn attribute(&self, target: impl Target, name: &str) -> Option<String> {
        let element = target.element(self);
        self.command(
            "GET",
            &format!("/element/{}/attribute/{name}", element.id),
            None,
            &format!("attribute {name} of {:?}", element.what),
        )
        .as_str()
        .map(str::to_owned)
    }

    /// A DOM property (`value`, `checked`, `disabled`, ...).
    pub(crate) fn property(&self, target: impl Target, name: &str) -> Value {
        let element = target.element(self);
        self.command(
            "GET",
            &format!("/element/{}/property/{name}", element.id),
            None,
            &format!("property {name} of {:?}", element.what),
        )
    }

    pub(crate) fn is_enabled(&self, target: impl Target) -> bool {
        let element = target.element(self);
        self.command(
            "GET",
            &format!("/element/{}/enabled", element.id),
            None,
            &format!("enabled {:?}", element.what),
        ) == true
    }

    pub(crate) fn is_displayed(&self, target: impl Target) -> bool {
        let element = target.element(self);
        self.command(
            "GET",
            &format!("/element/{}/displayed", element.id),
            None,
            &format!("displayed {:?}", element.what),
        ) == true
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) and returns what it returns.
    pub(crate) fn try_execute(&self, script: &str, args: &[Value]) -> Result<Value, WdError> {
        self.try_command(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    pub(crate) fn execute(&self, script: &str, args: &[Value]) -> Value {
        self.try_execute(script, args)
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// The page's visible text, cut to 2,000 characters (for failure messages).
    pub(crate) fn page_text(&self) -> String {
        let text = self
            .try_execute(
                "return document.body ? document.body.innerText : document.documentElement.outerHTML;",
                &[],
            )
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        text.chars().take(2000).collect()
    }

    /// Polls `check` every 100 ms until it gives Some; panics naming `what` after `timeout`.
    pub(crate) fn wait_until<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&Browser) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check(self) {
                return value;
            }
            if Instant::now() >= deadline {
                panic!(
                    "waited {timeout:?} for {what}; at {} the page says:\n{}\nbrowser log: {:?}",
                    self.current_url(),
                    self.page_text(),
                    self.browser_log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until an element matches `css` and is displayed.
    pub(crate) fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        self.wait_until(timeout, &format!("an element {css:?}"), |b| {
            let element = b.try_find(css).ok().flatten()?;
            let shown = b
                .try_command("GET", &format!("/element/{}/displayed", element.id), None)
                .ok()?;
            (shown == true).then_some(element)
        })
    }

    /// Waits until the text of `css` (trimmed) is `expected`.
    pub(crate) fn wait_text(&self, css: &str, expected: &str, timeout: Duration) {
        self.wait_until(timeout, &format!("{css:?} to read {expected:?}"), |b| {
            (b.try_text(css)?.trim() == expected).then_some(())
        });
    }

    /// Picks the `<option value=value>` of the `<select>` matching `select_css`.
    pub(crate) fn select_by_value(&self, select_css: &str, value: &str) {
        let option_css = format!("{select_css} option[value={}]", css_string(value));
        let option = match self.try_find(&option_css) {
            Ok(Some(option)) => option,
            _ => {
                let options = self.execute(
                    "const s = document.querySelector(arguments[0]);
                     return s ? Array.from(s.options).map(o => o.value) : null;",
                    &[json!(select_css)],
                );
                panic!("{select_css:?} has no option with value {value:?}; options: {options}")
            }
        };
        self.click(&option);
        let now = self.property(select_css, "value");
        assert_eq!(
            now.as_str(),
            Some(value),
            "{select_css:?} value after picking {value:?}"
        );
    }

    /// Saves a PNG screenshot of the window.
    pub(crate) fn screenshot(&self, path: &Path) {
        let value = self.command("GET", "/screenshot", None, "screenshot");
        let png = Base64::decode_vec(value.as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("screenshot is not base64: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "screenshot is not a PNG");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Every browser log entry since the session started: (level, message); levels are
    /// `SEVERE`, `WARNING`, `INFO`, `DEBUG`. JavaScript errors and CSP violations are SEVERE.
    pub(crate) fn browser_log(&self) -> Vec<(String, String)> {
        let fresh = self
            .try_command("POST", "/se/log", Some(json!({"type": "browser"})))
            .or_else(|_| self.try_command("POST", "/log", Some(json!({"type": "browser"}))))
            .unwrap_or_else(|e| panic!("browser log: {e}"));
        let mut log = self.log.borrow_mut();
        for entry in fresh.as_array().cloned().unwrap_or_default() {
            log.push((
                entry["level"].as_str().unwrap_or("").to_owned(),
                entry["message"].as_str().unwrap_or("").to_owned(),
            ));
        }
        log.clone()
    }

    /// The SEVERE entries of [`Browser::browser_log`].
    pub(crate) fn severe_log(&self) -> Vec<String> {
        self.browser_log()
            .into_iter()
            .filter(|(level, _)| level == "SEVERE")
            .map(|(_, message)| message)
            .collect()
    }

    /// The files in the download directory.
    pub(crate) fn downloaded(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.downloads)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        files.sort();
        files
    }

    /// Waits until a download has finished (a file is there, no `.crdownload` and no
    /// temporary file is, and its size holds for 300 ms); returns it.
    pub(crate) fn wait_download(&self, timeout: Duration) -> PathBuf {
        let mut last: Option<(PathBuf, u64, Instant)> = None;
        self.wait_until(timeout, "a finished download", |b| {
            let files = b.downloaded();
            let partial = files.iter().any(|f| {
                let name = f.file_name().unwrap_or_default().to_string_lossy();
                name.ends_with(".crdownload") || name.starts_with(".com.google.Chrome")
            });
            if partial || files.len() != 1 {
                last = None;
                return None;
            }
            let file = files[0].clone();
            let size = std::fs::metadata(&file).ok()?.len();
            match &last {
                Some((path, len, since))
                    if *path == file
                        && *len == size
                        && since.elapsed() >= Duration::from_millis(300) =>
                {
                    Some(file)
                }
                Some((path, len, _)) if *path == file && *len == size => None,
                _ => {
                    last = Some((file, size, Instant::now()));
                    None
                }
            }
        })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = http(
                self.port,
                "DELETE",
                &format!("/session/{}", self.session),
                None,
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A one-thread HTTP server for the client's own test: `/` is `page`, `/file.zip` an
/// attachment; returns its base URL. Serves until the process ends.
fn serve_test_page(page: &'static str, attachment: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let line = String::from_utf8_lossy(&request)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let (head, body): (String, &[u8]) = if path == "/file.zip" {
                (
                    "Content-Type: application/zip\r\n\
                     Content-Disposition: attachment; filename=\"from-server.zip\"\r\n"
                        .into(),
                    attachment,
                )
            } else if path == "/" {
                (
                    "Content-Type: text/html; charset=utf-8\r\n".into(),
                    page.as_bytes(),
                )
            } else {
                ("Content-Type: text/plain\r\n".into(), b"not found")
            };
            let status = if path == "/" || path == "/file.zip" {
                "200 OK"
            } else {
                "404 Not Found"
            };
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 {status}\r\n{head}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            let _ = stream.write_all(body);
        }
    });
    base
}

const TEST_PAGE: &str = r#"<!doctype html>
<html><head><title>webdriver self-test</title></head><body>
<main id="main"><h1>Self test</h1>
<form id="f">
  <label for="name">Name</label><input id="name" name="name">
  <label for="pw">Password</label><input id="pw" type="password">
  <label for="kind">Kind</label>
  <select id="kind"><option value="csv">CSV</option><option value="csr">CSR</option></select>
  <label for="file">File</label><input id="file" type="file">
  <button id="go" type="submit">Go</button>
</form>
<p id="out"></p>
<p id="later"></p>
<button id="blob" type="button">Blob download</button>
<a id="attachment" href="/file.zip">Server download</a>
</main>
<script>
document.getElementById('f').addEventListener('submit', e => {
  e.preventDefault();
  const file = document.getElementById('file').files[0];
  const parts = [document.getElementById('name').value, document.getElementById('pw').value,
                 document.getElementById('kind').value];
  const show = t => { document.getElementById('out').textContent = parts.concat([t]).join('|'); };
  if (file) { file.text().then(t => show(file.name + ':' + t.trim().replace(/\n/g, '/'))); } else { show('no file'); }
});
setTimeout(() => { document.getElementById('later').textContent = 'arrived'; }, 400);
document.getElementById('blob').addEventListener('click', () => {
  const url = URL.createObjectURL(new Blob(['PK-from-blob'], {type: 'application/zip'}));
  const a = document.createElement('a');
  a.href = url; a.download = 'from-blob.zip';
  document.body.appendChild(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
});
console.error('self-test console error');
</script></body></html>"#;

/// The client against a page of its own: find, type, select, upload a file, the keyboard,
/// scripts, waiting, the browser log, screenshots, and both kinds of download.
#[test]
fn webdriver_client_drives_chromium() {
    let base = serve_test_page(TEST_PAGE, b"PK-from-server");
    let browser = Browser::start();
    browser.goto(&format!("{base}/"));
    assert_eq!(browser.title(), "webdriver self-test");
    assert_eq!(browser.current_url(), format!("{base}/"));
    assert_eq!(browser.text("main#main h1"), "Self test");
    assert!(browser.try_find("#nothing-here").unwrap().is_none());
    assert_eq!(browser.find_all("label").len(), 4);
    let form = browser.find("#f");
    assert_eq!(browser.find_in(&form, "input").len(), 3);

    // Waiting for something that comes later.
    browser.wait_text("#later", "arrived", Duration::from_secs(5));

    // Typing, clearing, selecting, a file, submitting with the keyboard.
    browser.send_keys("#name", "first");
    browser.clear("#name");
    browser.send_keys("#name", "alice");
    assert_eq!(browser.property("#name", "value"), "alice");
    assert_eq!(
        browser.attribute("#pw", "type").as_deref(),
        Some("password")
    );
    assert_eq!(browser.attribute("#pw", "data-none"), None);
    browser.select_by_value("#kind", "csr");
    let upload = tempfile::tempdir().unwrap();
    let file = upload.path().join("devices.csv");
    std::fs::write(&file, "macAddress\n00:1A:2B:3C:4D:01\n").unwrap();
    browser.send_keys("#file", file.to_str().unwrap());
    browser.click("#name");
    browser.keys(keys::TAB);
    assert_eq!(
        browser.attribute(browser.active_element(), "id").as_deref(),
        Some("pw")
    );
    browser.keys("s3cret");
    browser.keys(keys::ENTER);
    browser.wait_text(
        "#out",
        "alice|s3cret|csr|devices.csv:macAddress/00:1A:2B:3C:4D:01",
        Duration::from_secs(5),
    );
    assert!(browser.is_enabled("#go") && browser.is_displayed("#go"));

    // Scripts with element arguments.
    let h1 = browser.find("h1");
    let tag = browser.execute(
        "return arguments[0].tagName + arguments[1];",
        &[h1.json(), json!(1)],
    );
    assert_eq!(tag, "H11");
    assert!(browser.try_execute("throw new Error('x')", &[]).is_err());

    // The browser log has the page's console.error, and keeps what was read before.
    let severe = browser.severe_log();
    assert!(
        severe.iter().any(|m| m.contains("self-test console error")),
        "{severe:?}"
    );
    assert_eq!(browser.severe_log(), severe);

    // Screenshots decode to PNG.
    let shot = upload.path().join("shot.png");
    browser.screenshot(&shot);
    assert!(std::fs::metadata(&shot).unwrap().len() > 1000);

    // Downloads land in the download directory, by blob URL and by an attachment.
    assert!(browser.downloaded().is_empty());
    browser.click("#blob");
    let blob = browser.wait_download(Duration::from_secs(20));
    assert_eq!(blob.file_name().unwrap(), "from-blob.zip");
    assert_eq!(std::fs::read(&blob).unwrap(), b"PK-from-blob");
    std::fs::remove_file(&blob).unwrap();
    browser.click("#attachment");
    let attached = browser.wait_download(Duration::from_secs(20));
    assert_eq!(attached.file_name().unwrap(), "from-server.zip");
    assert_eq!(std::fs::read(&attached).unwrap(), b"PK-from-server");
}

/// Chunked and Content-Length answers both parse.
#[test]
fn webdriver_http_answers_parse() {
    let a = parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length:2\r\n\r\n{}").unwrap();
    assert_eq!((a.status, a.body.as_slice()), (200, &b"{}"[..]));
    let a = parse_answer(
        b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4;x=y\r\n\":1}\r\n0\r\n\r\n",
    )
    .unwrap();
    assert_eq!((a.status, a.body.as_slice()), (404, &b"{\"a\":1}"[..]));
    let a = parse_answer(b"HTTP/1.1 500 Oops\r\n\r\nto the end").unwrap();
    assert_eq!((a.status, a.body.as_slice()), (500, &b"to the end"[..]));
    assert!(parse_answer(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
    assert_eq!(css_string("a\"b\\c"), r#""a\"b\\c""#);
}
