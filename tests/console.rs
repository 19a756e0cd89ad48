//! The web console (`/console/`) end to end: the real `certmill serve`, headless Chromium
//! driven over WebDriver (tests/webdriver.rs), and the same checks on what comes out as the API
//! tests make (openssl on the PKCS#12 files, the API's view of a revocation). Screenshots of
//! every page go to `target/console-screenshots/` (artifacts, not committed).

use crate::server::{batch_id, Body, Server, ADMIN_PASSWORD, BOB_PASSWORD, PKCS12_PASSWORD};
use crate::util::{openssl, unzip, Fixture};
use crate::webdriver::{css_string, keys, screenshot_dir, Browser};
use serde_json::{json, Value};
use std::time::Duration;

/// How long a page or an answer of the console may take.
const WAIT: Duration = Duration::from_secs(15);
/// How long a small batch may take to issue.
const ISSUE: Duration = Duration::from_secs(60);

/// The pages every signed-in user's navigation has.
const USER_PAGES: &[(&str, &str)] = &[
    ("#/batches", "table#batch-list"),
    ("#/new", "select#profile-select"),
    ("#/devices", "form#device-search"),
    ("#/authorities", "table#authority-list"),
];

/// The pages only an ADMIN's navigation has.
const ADMIN_PAGES: &[(&str, &str)] = &[
    ("#/organizations", "table#org-list"),
    ("#/users", "table#user-list"),
    ("#/clients", "table#client-list"),
    ("#/signers", "table#signer-list"),
];

/// A server on a fresh data directory and a browser; dropped browser first.
struct Console {
    browser: Browser,
    server: Server,
    f: Fixture,
}

impl Console {
    fn start() -> Console {
        let f = crate::util::Fixture::new();
        let server = Server::start(&f, &[]);
        let browser = Browser::start();
        Console { browser, server, f }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base)
    }

    /// Saves `target/console-screenshots/<name>.png`.
    fn shot(&self, name: &str) {
        self.browser
            .screenshot(&screenshot_dir().join(format!("{name}.png")));
    }

    /// Opens `/console/` and waits for the login form.
    fn open_login(&self) {
        self.browser.goto(&self.url("/console/"));
        self.browser.wait_for("form#login-form", WAIT);
        for css in [
            "input#login-username",
            "input#login-password",
            "button#login-submit",
        ] {
            self.browser.find(css);
        }
    }

    /// Signs in through the login form; waits until `#whoami` names the user.
    fn login(&self, user: &str, password: &str) {
        self.open_login();
        let b = &self.browser;
        b.clear("input#login-username");
        b.send_keys("input#login-username", user);
        b.clear("input#login-password");
        b.send_keys("input#login-password", password);
        b.click("button#login-submit");
        self.wait_signed_in(user);
    }

    fn wait_signed_in(&self, user: &str) {
        self.browser
            .wait_until(WAIT, &format!("#whoami to name {user}"), |b| {
                b.try_text("#whoami")?.contains(user).then_some(())
            });
        self.browser.wait_for("button#logout", WAIT);
    }

    /// `location.hash` of the page.
    fn hash(&self) -> String {
        self.browser
            .try_execute("return location.hash;", &[])
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Follows the navigation link to `hash`; waits for the page's `h1` in `main#main` and
    /// for `ready`.
    fn open(&self, hash: &str, ready: &str) {
        let link = format!("nav#nav a[href={}]", css_string(hash));
        self.browser.click(&link);
        self.wait_page(hash, ready);
    }

    fn wait_page(&self, hash: &str, ready: &str) {
        self.browser
            .wait_until(WAIT, &format!("the page {hash}"), |_| {
                (self.hash() == hash).then_some(())
            });
        self.browser.wait_for(ready, WAIT);
        let h1 = self
            .browser
            .wait_until(WAIT, &format!("an h1 in main#main on {hash}"), |b| {
                b.try_text("main#main h1").filter(|t| !t.trim().is_empty())
            });
        assert!(!h1.is_empty(), "{hash}: empty h1");
    }

    /// On `#/new`: picks profile 1 (ecc-device), the kind, the file and the batch parameters,
    /// and submits.
    fn upload(&self, kind: &str, file: &std::path::Path, params: &[(&str, &str)], name: &str) {
        let b = &self.browser;
        b.select_by_value("select#profile-select", "1");
        b.wait_for("table#profile-params tr[data-name=\"deviceClass\"]", WAIT);
        b.select_by_value("select#upload-kind", kind);
        b.send_keys("input#upload-file", file.to_str().expect("UTF-8 path"));
        for (param, value) in params {
            let css = format!("#param-{param}");
            b.wait_for(&css, WAIT);
            // A closed list of values (deviceClass) is a select, any other value an input.
            if b.property(css.as_str(), "tagName") == "SELECT" {
                b.select_by_value(&css, value);
            } else {
                b.clear(&css);
                b.send_keys(&css, value);
            }
        }
        if !name.is_empty() {
            b.clear("input#batch-name");
            b.send_keys("input#batch-name", name);
        }
    }

    /// Every SEVERE entry of the browser log (JavaScript errors, CSP violations, failed loads).
    fn assert_no_severe_log(&self, what: &str) {
        let severe = self.browser.severe_log();
        assert!(
            severe.is_empty(),
            "{what}: SEVERE browser log entries: {severe:#?}"
        );
    }
}

/// `POST /api/v1/certificates/find` by common name: the items.
fn find_certificates(server: &Server, token: &str, cn: &str) -> Vec<Value> {
    server
        .json(
            "POST",
            "/api/v1/certificates/find",
            token,
            json!({ "commonName": cn }),
        )
        .expect(200, "certificates/find")
        .json()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The batches of profile 1 the API lists.
fn batch_count(server: &Server, token: &str) -> usize {
    server
        .json(
            "POST",
            "/api/v1/batches?profileId=1",
            token,
            json!({"filter": {"pagingSettings": {"pageIndex": 0, "pageSize": 100}}, "sortColumns": null}),
        )
        .expect(200, "batch list")
        .json()["batches"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
}

const MACS: [&str; 3] = [
    "00:1A:2B:3C:4D:01",
    "00:1A:2B:3C:4D:02",
    "00:1A:2B:3C:4D:03",
];

/// The whole path of a batch in the browser: sign in, upload a CSV with the profile's
/// parameters, follow it to "Ready for download", download the ZIP through the browser (its
/// PKCS#12 files open with openssl), find one device and revoke it (the API agrees), and see
/// every page, with a screenshot of each.
#[test]
fn console_issues_downloads_and_revokes() {
    let c = Console::start();
    let b = &c.browser;
    let token = c.server.admin();

    c.open_login();
    c.shot("login");
    c.login("admin", ADMIN_PASSWORD);
    for (hash, _) in USER_PAGES.iter().chain(ADMIN_PAGES) {
        b.find(&format!("nav#nav a[href={}]", css_string(hash)));
    }

    // A new batch: the profile's parameters, the batch parameters, a 3-row CSV.
    c.open("#/new", "select#profile-select");
    b.select_by_value("select#profile-select", "1");
    b.wait_for("table#profile-params tr[data-name=\"deviceClass\"]", WAIT);
    b.find("table#profile-params tr[data-name=\"macAddress\"]");
    assert_eq!(
        b.attribute("input#upload-file", "type").as_deref(),
        Some("file")
    );
    assert_eq!(
        b.attribute("#param-pkcs12Password", "type").as_deref(),
        Some("password"),
        "the PKCS#12 password field hides what is typed"
    );
    let csv =
        c.f.write("console.csv", &format!("macAddress\n{}\n", MACS.join("\n")));
    c.upload(
        "csv",
        &csv,
        &[
            ("deviceClass", "Aircraft"),
            ("pkcs12Password", PKCS12_PASSWORD),
        ],
        "console batch",
    );
    c.shot("new-batch");
    b.click("button#upload-submit");

    // The batch page follows it to the end.
    let id: i64 = b.wait_until(WAIT, "the batch page after the upload", |_| {
        c.hash().strip_prefix("#/batches/")?.parse().ok()
    });
    b.wait_for("#batch-status", WAIT);
    b.wait_text("#batch-status", "Ready for download", ISSUE);
    b.wait_until(WAIT, "#batch-done to say 3 of 3", |b| {
        b.try_text("#batch-done")?.contains("3 of 3").then_some(())
    });
    for css in [
        "#batch-seed-status",
        "progress#batch-progress",
        "#batch-failed",
        "#batch-rate",
        "#batch-eta",
        "table#batch-audit",
        "table#batch-devices",
    ] {
        b.find(css);
    }
    b.wait_until(WAIT, "#batch-seed-status to read Ready For Download", |b| {
        (b.try_text("#batch-seed-status")?.trim() == "Ready For Download").then_some(())
    });
    b.wait_until(WAIT, "a row in table#batch-audit", |b| {
        let rows = b
            .try_execute(
                "return document.querySelectorAll('table#batch-audit tr td').length;",
                &[],
            )
            .ok()?;
        (rows.as_u64()? > 0).then_some(())
    });
    b.wait_until(WAIT, "the three devices in table#batch-devices", |b| {
        let text = b.try_text("table#batch-devices")?;
        MACS.iter().all(|m| text.contains(m)).then_some(())
    });
    c.shot("batch");

    // Download through the browser.
    b.wait_until(WAIT, "#batch-download to be enabled", |b| {
        (b.try_property("button#batch-download", "disabled")? == false).then_some(())
    });
    assert!(b.downloaded().is_empty());
    b.click("button#batch-download");
    let zip = b.wait_download(ISSUE);
    assert_eq!(
        zip.file_name().unwrap().to_string_lossy(),
        format!("batch-{id}.zip"),
        "the name of the server's Content-Disposition"
    );
    let out = c.f.path("from-browser");
    let names = unzip(&zip, &out);
    let p12: Vec<&String> = names.iter().filter(|n| n.ends_with(".p12")).collect();
    assert_eq!(p12.len(), 3, "{names:?}");
    assert!(names.iter().any(|n| n == "manifest.csv"), "{names:?}");
    assert!(names.iter().any(|n| n == "chain.pem"), "{names:?}");
    let first = out.join("00-1A-2B-3C-4D-01.p12");
    assert!(first.exists(), "{names:?}");
    let text = openssl(&[
        "pkcs12",
        "-in",
        first.to_str().unwrap(),
        "-nodes",
        "-passin",
        &format!("pass:{PKCS12_PASSWORD}"),
    ]);
    assert!(
        text.contains("-----BEGIN CERTIFICATE-----") && text.contains("PRIVATE KEY-----"),
        "{text}"
    );
    assert!(text.contains(MACS[0]), "the device's CN in {text}");
    // The batch is now downloaded: the page offers the whole-batch revoke.
    b.find("select#batch-revoke-reason");
    b.find("button#batch-revoke");

    // The batch list links to it.
    c.open("#/batches", "table#batch-list");
    b.wait_for(
        &format!("tr[data-batch-id=\"{id}\"] a[href=\"#/batches/{id}\"]"),
        WAIT,
    );
    b.find("input#batch-search");
    b.find("button#batch-search-submit");
    c.shot("batches");

    // The other pages.
    c.open("#/authorities", "table#authority-list");
    b.wait_until(WAIT, "an authority row", |b| {
        let text = b.try_text("table#authority-list")?;
        text.to_ascii_lowercase().contains("ecc").then_some(())
    });
    c.shot("authorities");
    for (hash, table) in ADMIN_PAGES {
        c.open(hash, table);
        c.shot(hash.trim_start_matches("#/"));
    }
    c.open("#/users", "table#user-list");
    b.wait_until(WAIT, "admin in table#user-list", |b| {
        b.try_text("table#user-list")?
            .contains("admin")
            .then_some(())
    });

    // Find one device by CN and revoke it (keyCompromise).
    c.open("#/devices", "form#device-search");
    b.send_keys("input#device-cn", MACS[1]);
    b.find("input#device-serial");
    b.click("button#device-search-submit");
    let row_css = "table#device-results tr[data-device-id]";
    let device = b.wait_until(WAIT, "one device in table#device-results", |b| {
        let rows = b.find_all(row_css);
        if rows.len() != 1 {
            return None;
        }
        let status = b.try_text(&format!("{row_css} td.status"))?;
        (status.trim() == "COLLECTED").then(|| b.attribute(&rows[0], "data-device-id"))?
    });
    let row = format!(
        "table#device-results tr[data-device-id={}]",
        css_string(&device)
    );
    c.shot("devices");
    b.click(format!("{row} input.device-pick").as_str());
    assert_eq!(
        b.property(format!("{row} input.device-pick").as_str(), "checked"),
        true
    );
    b.select_by_value("select#revoke-reason", "1");
    b.click("button#revoke-submit");
    b.wait_text(&format!("{row} td.status"), "REVOKED", WAIT);
    b.wait_until(WAIT, "#flash to tell of the revocation", |b| {
        let flash = b.try_text("#flash")?.to_ascii_lowercase();
        flash.contains("revoked").then_some(())
    });
    assert_eq!(b.attribute("#flash", "role").as_deref(), Some("status"));
    c.shot("devices-revoked");

    // The API agrees: that device is revoked, its neighbours are not.
    let items = find_certificates(&c.server, &token, MACS[1]);
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["status"], "REVOKED", "{items:?}");
    assert_eq!(items[0]["deviceId"].as_str(), Some(device.as_str()));
    for mac in [MACS[0], MACS[2]] {
        let items = find_certificates(&c.server, &token, mac);
        assert_eq!(items[0]["status"], "COLLECTED", "{mac}: {items:?}");
    }

    // Revoke the whole batch from its page (through the batch list's link): the page follows
    // it to Revoked.
    c.open("#/batches", "table#batch-list");
    b.click(format!("table#batch-list a[href=\"#/batches/{id}\"]").as_str());
    c.wait_page(&format!("#/batches/{id}"), "button#batch-revoke");
    b.select_by_value("select#batch-revoke-reason", "5");
    b.click("button#batch-revoke");
    b.wait_until(ISSUE, "#batch-seed-status to read Revoked", |b| {
        (b.try_text("#batch-seed-status")?.trim() == "Revoked").then_some(())
    });
    b.wait_until(WAIT, "the revocation in table#batch-audit", |b| {
        b.try_text("table#batch-audit")?
            .contains("Processing Revoke -> Revoked")
            .then_some(())
    });
    c.shot("batch-revoked");
    for mac in MACS {
        let items = find_certificates(&c.server, &token, mac);
        assert_eq!(items[0]["status"], "REVOKED", "{mac}: {items:?}");
    }

    // Log out: the login form again.
    b.click("button#logout");
    b.wait_for("form#login-form", WAIT);
}

/// A CSV with a bad MAC address in row 3: the console shows the server's description naming
/// the row, and nothing is ordered.
#[test]
fn console_shows_refused_rows() {
    let c = Console::start();
    let b = &c.browser;
    let token = c.server.admin();
    let authority = c.server.authority(&token, 1);
    let balance = c.server.balance_available(&token, authority);

    c.login("admin", ADMIN_PASSWORD);
    c.open("#/new", "select#profile-select");
    let csv = c.f.write(
        "refused.csv",
        "macAddress\n00:1A:2B:3C:4D:11\n00:1A:2B:3C:4D:12\nnot-a-mac\n00:1A:2B:3C:4D:14\n",
    );
    c.upload(
        "csv",
        &csv,
        &[
            ("deviceClass", "Aircraft"),
            ("pkcs12Password", PKCS12_PASSWORD),
        ],
        "",
    );
    b.click("button#upload-submit");
    let message = b.wait_until(WAIT, "#upload-error to name a row", |b| {
        let text = b.try_text("#upload-error")?;
        text.contains("row").then_some(text)
    });
    c.shot("refused-rows");
    assert!(message.contains("row 3"), "{message}");
    assert!(
        !message.contains("row 1:") && !message.contains("row 2:") && !message.contains("row 4"),
        "only row 3 is refused: {message}"
    );
    assert_eq!(
        b.attribute("#upload-error", "role").as_deref(),
        Some("alert")
    );
    assert_eq!(c.hash(), "#/new", "the console stays on the form");

    // Nothing was ordered.
    assert_eq!(batch_count(&c.server, &token), 0);
    assert_eq!(c.server.balance_available(&token, authority), balance);
}

/// The parts of `text` outside comments (`<!-- -->`, `/* */`, and `//` to the end of a line
/// where `//` starts the line or follows a space, a `;` or a brace).
fn without_comments(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").map(|(_, r)| r).unwrap_or("");
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map(|(_, r)| r).unwrap_or("");
        } else if rest.starts_with("//")
            && out
                .chars()
                .last()
                .is_none_or(|c| c.is_whitespace() || matches!(c, ';' | '{' | '}'))
        {
            rest = rest.split_once('\n').map(|(_, r)| r).unwrap_or("");
            out.push('\n');
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// References to other hosts in `text`: absolute URLs, and protocol-relative `//host` in an
/// attribute, a string or `url()`. The SVG and XHTML namespaces are names, not loads.
fn foreign_references(text: &str) -> Vec<String> {
    let code = without_comments(text);
    let mut found = Vec::new();
    for scheme in ["http://", "https://", "ws://", "wss://", "ftp://"] {
        for (at, _) in code.match_indices(scheme) {
            let tail: String = code[at..]
                .chars()
                .take_while(|c| !c.is_whitespace() && !"\"'`)<>".contains(*c))
                .collect();
            if !tail.starts_with("http://www.w3.org/") {
                found.push(tail);
            }
        }
    }
    for opener in ["\"//", "'//", "`//", "(//", "=//"] {
        for (at, _) in code.match_indices(opener) {
            let host = code[at + opener.len()..].chars().next();
            if host.is_some_and(|c| c.is_ascii_alphanumeric() || c == '[') {
                found.push(code[at..].chars().take(60).collect());
            }
        }
    }
    found
}

/// The values of `name="..."` attributes in an HTML text.
fn attribute_values(html: &str, name: &str) -> Vec<String> {
    let mut values = Vec::new();
    let lower = html.to_ascii_lowercase();
    let marker = format!(" {name}=");
    for (at, _) in lower.match_indices(&marker) {
        let rest = &html[at + marker.len()..];
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => rest[1..].split(q).next().unwrap_or(""),
            _ => rest
                .split(|c: char| c.is_whitespace() || c == '>')
                .next()
                .unwrap_or(""),
        };
        values.push(value.to_owned());
    }
    values
}

/// The console names no other host and runs under a strict Content-Security-Policy: checked
/// on its files over HTTP, then in the browser on every page (what it loaded, and a log with no
/// error and no CSP violation).
#[test]
fn console_loads_nothing_external_and_sets_csp() {
    let c = Console::start();
    let b = &c.browser;
    let server = &c.server;

    // The page and its policy.
    let page = server
        .call("GET", "/console/", None, Body::Empty, &[])
        .expect(200, "GET /console/");
    assert!(
        page.header("content-type")
            .is_some_and(|t| t.starts_with("text/html")),
        "{:?}",
        page.header("content-type")
    );
    let csp = page
        .header("content-security-policy")
        .unwrap_or_else(|| {
            panic!(
                "no Content-Security-Policy on /console/: {:?}",
                page.headers
            )
        })
        .to_owned();
    let directive = |name: &str| -> Option<String> {
        csp.split(';')
            .map(str::trim)
            .find(|d| d.split_whitespace().next() == Some(name))
            .map(str::to_owned)
    };
    let default = directive("default-src").unwrap_or_else(|| panic!("default-src in {csp}"));
    assert!(
        default == "default-src 'none'" || default == "default-src 'self'",
        "{csp}"
    );
    assert_eq!(
        directive("script-src").as_deref(),
        Some("script-src 'self'"),
        "{csp}"
    );
    assert!(!csp.contains("unsafe-"), "{csp}");
    assert!(
        !csp.contains("http:") && !csp.contains("https:") && !csp.contains('*'),
        "{csp}"
    );

    // The HTML: no inline script, handler or style; every file it names is the server's, and
    // none of those files names another host.
    let html = page.text();
    let lower = html.to_ascii_lowercase();
    for (at, _) in lower.match_indices("<script") {
        let tag = &lower[at..at + lower[at..].find('>').unwrap_or(0)];
        assert!(
            tag.contains(" src="),
            "an inline script in /console/: {tag}"
        );
    }
    assert!(
        !lower.contains(" style="),
        "an inline style attribute in /console/"
    );
    assert!(!lower.contains("<style"), "a <style> element in /console/");
    for handler in [
        " onclick=",
        " onload=",
        " onerror=",
        " onsubmit=",
        " onchange=",
    ] {
        assert!(
            !lower.contains(handler),
            "an inline handler ({handler}) in /console/"
        );
    }
    let mut files = vec![("/console/".to_owned(), html.clone())];
    for value in attribute_values(&html, "src")
        .into_iter()
        .chain(attribute_values(&html, "href"))
    {
        if value.starts_with('#') || value.is_empty() {
            continue;
        }
        assert!(
            value.starts_with('/') && !value.starts_with("//"),
            "/console/ refers to {value:?}: only absolute paths of this server"
        );
        let r = server
            .call("GET", &value, None, Body::Empty, &[])
            .expect(200, &format!("GET {value}"));
        if value.ends_with(".js") {
            assert!(
                r.header("content-type")
                    .is_some_and(|t| t.contains("javascript")),
                "{value}: {:?}",
                r.header("content-type")
            );
        }
        files.push((value, r.text()));
    }
    assert!(
        files.iter().any(|(name, _)| name.ends_with(".js")),
        "no script file in {:?}",
        files.iter().map(|(n, _)| n).collect::<Vec<_>>()
    );
    for (name, text) in &files {
        let foreign = foreign_references(text);
        assert!(foreign.is_empty(), "{name} names other hosts: {foreign:?}");
    }

    // A batch to look at, made over the API.
    let token = server.admin();
    let batch = server
        .upload_csv(
            &token,
            "macAddress\n00:1A:2B:3C:4D:21\n",
            json!({"deviceClass": "Aircraft", "pkcs12Password": PKCS12_PASSWORD}),
        )
        .expect(200, "upload-csv")
        .json();
    let id = batch_id(&batch);
    server.wait_ready(&token, id);

    // In the browser: a listener for CSP violations runs before the console's own script.
    b.add_init_script(
        "window.__csp = [];
         document.addEventListener('securitypolicyviolation', e => {
           window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
         });",
    );
    c.login("admin", ADMIN_PASSWORD);
    for (hash, ready) in USER_PAGES.iter().chain(ADMIN_PAGES) {
        c.open(hash, ready);
        // docs/CONSOLE.md: the current page is marked in the navigation, and tables have
        // captions and column headers.
        let current = b.wait_until(WAIT, &format!("aria-current on {hash}"), |b| {
            let value = b
                .try_execute(
                    "const a = document.querySelector('nav#nav a[aria-current]');
                     return a ? a.getAttribute('href') : null;",
                    &[],
                )
                .ok()?;
            value.as_str().map(str::to_owned)
        });
        assert_eq!(current, *hash, "the page marked current in nav#nav");
        let bare = b.execute(
            "return Array.from(document.querySelectorAll('main#main table'))
               .filter(t => !(t.caption && t.caption.textContent.trim())
                            || !t.querySelector('th'))
               .map(t => t.id || t.outerHTML.slice(0, 80));",
            &[],
        );
        assert_eq!(
            bare,
            json!([]),
            "{hash}: tables without a caption or headers"
        );
    }
    c.open("#/batches", "table#batch-list");
    b.click(format!("tr[data-batch-id=\"{id}\"] a[href=\"#/batches/{id}\"]").as_str());
    c.wait_page(&format!("#/batches/{id}"), "#batch-status");
    b.wait_text("#batch-status", "Ready for download", WAIT);
    c.open("#/new", "select#profile-select");
    b.select_by_value("select#profile-select", "1");
    b.wait_for("table#profile-params tr[data-name=\"deviceClass\"]", WAIT);

    let origin = format!("{}/", server.base);
    let loaded = b.execute(
        "return performance.getEntriesByType('navigation')
           .concat(performance.getEntriesByType('resource')).map(e => e.name);",
        &[],
    );
    let loaded: Vec<String> = loaded
        .as_array()
        .expect("an array of names")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    assert!(
        loaded.iter().any(|n| n.ends_with(".js")),
        "the script among {loaded:?}"
    );
    let elsewhere: Vec<&String> = loaded.iter().filter(|n| !n.starts_with(&origin)).collect();
    assert!(elsewhere.is_empty(), "loaded from elsewhere: {elsewhere:?}");
    let referenced = b.execute(
        "return Array.from(document.querySelectorAll(
           'script[src], link[href], img[src], iframe, object, embed, source[src], audio, video'))
           .map(e => e.src || e.href || e.data || e.tagName);",
        &[],
    );
    for name in referenced.as_array().cloned().unwrap_or_default() {
        let name = name.as_str().unwrap_or_default();
        assert!(name.starts_with(&origin), "the page refers to {name}");
    }
    let violations = b.execute("return window.__csp;", &[]);
    assert_eq!(violations, json!([]), "CSP violations");
    c.assert_no_severe_log("after every page");
}

/// The login form works with the keyboard alone (Tab reaches it, Tab moves from the user name
/// to the password, Enter signs in), a USER's navigation has no admin page, and every field
/// of the login and new-batch forms has a label.
#[test]
fn console_works_from_the_keyboard_and_labels_its_fields() {
    let c = Console::start();
    let b = &c.browser;
    c.server.add_bob(&c.f);

    let focused = |b: &Browser| -> String {
        b.execute(
            "const e = document.activeElement; return e ? (e.id || e.tagName) : '';",
            &[],
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    };
    let unlabelled = |b: &Browser, scope: &str| -> Value {
        b.execute(
            "return Array.from(document.querySelectorAll(arguments[0]))
               .filter(e => e.type !== 'hidden' && e.type !== 'submit' && e.type !== 'button')
               .filter(e => !(e.labels && Array.from(e.labels).some(l => l.textContent.trim()))
                            && !e.getAttribute('aria-label')
                            && !e.getAttribute('aria-labelledby'))
               .map(e => e.id || e.name || e.outerHTML);",
            &[json!(scope)],
        )
    };

    c.open_login();
    assert_eq!(
        unlabelled(
            b,
            "#login-form input, #login-form select, #login-form textarea"
        ),
        json!([]),
        "login fields without a label"
    );
    let mut tabs = 0;
    while focused(b) != "login-username" {
        assert!(
            tabs < 15,
            "15 Tabs never reached #login-username; the focus is on {:?}",
            focused(b)
        );
        b.keys(keys::TAB);
        tabs += 1;
    }
    b.keys("bob");
    b.keys(keys::TAB);
    assert_eq!(focused(b), "login-password", "Tab from the user name");
    b.keys(BOB_PASSWORD);
    b.keys(keys::ENTER);
    c.wait_signed_in("bob");
    for (hash, _) in USER_PAGES {
        b.find(&format!("nav#nav a[href={}]", css_string(hash)));
    }
    for (hash, _) in ADMIN_PAGES {
        assert!(
            b.try_find(&format!("nav#nav a[href={}]", css_string(hash)))
                .unwrap()
                .is_none(),
            "a USER's navigation links to {hash}"
        );
    }
    b.click("button#logout");
    b.wait_for("form#login-form", WAIT);

    c.login("admin", ADMIN_PASSWORD);
    assert_eq!(b.attribute("#flash", "role").as_deref(), Some("status"));
    assert_eq!(b.attribute("#error", "role").as_deref(), Some("alert"));
    c.open("#/new", "select#profile-select");
    b.select_by_value("select#profile-select", "1");
    b.wait_for("#param-deviceClass", WAIT);
    let fields = "main#main input, main#main select, main#main textarea";
    for kind in ["csv", "csr"] {
        b.select_by_value("select#upload-kind", kind);
        assert_eq!(
            unlabelled(b, fields),
            json!([]),
            "fields of the new-batch page without a label ({kind})"
        );
    }
    let dangling = b.execute(
        "return Array.from(document.querySelectorAll('[aria-describedby]'))
           .filter(e => e.getAttribute('aria-describedby').split(/\\s+/)
                          .some(id => !document.getElementById(id)))
           .map(e => e.id || e.outerHTML.slice(0, 80));",
        &[],
    );
    assert_eq!(dangling, json!([]), "aria-describedby naming no element");
    let buttons = b.execute(
        "return Array.from(document.querySelectorAll('button'))
           .filter(e => !e.textContent.trim() && !e.getAttribute('aria-label'))
           .map(e => e.id || e.outerHTML);",
        &[],
    );
    assert_eq!(buttons, json!([]), "buttons without a name");
}

/// The helpers that read the console's files.
#[test]
fn console_file_scanners_find_other_hosts() {
    assert!(foreign_references("<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>").is_empty());
    assert!(foreign_references("// see https://example.com/spec\nlet a = 1;").is_empty());
    assert!(foreign_references("/* https://example.com */ body{}").is_empty());
    assert_eq!(
        foreign_references("fetch('https://cdn.example.com/x.js')"),
        ["https://cdn.example.com/x.js"]
    );
    assert_eq!(
        foreign_references("<img src=\"//cdn.example.com/a.png\">").len(),
        1
    );
    assert_eq!(
        foreign_references("a{background:url(//x.example/a.png)}").len(),
        1
    );
    assert!(foreign_references("const re = /^\\/\\//; let u = '/api/v1';").is_empty());
    assert_eq!(
        attribute_values(
            "<link rel=icon href=\"/console/icon.svg\"><script src='/a.js'>",
            "href"
        ),
        ["/console/icon.svg"]
    );
    assert_eq!(
        attribute_values("<script src='/a.js' defer>", "src"),
        ["/a.js"]
    );
}
