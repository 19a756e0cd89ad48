//! The web console (`/console/`) end to end: the real `certmill serve`, headless Chromium
//! driven over WebDriver (tests/webdriver.rs), and the same checks on what comes out as the API
//! tests make (openssl on the PKCS#12 files, the API's view of a revocation). Screenshots of
//! every page go to `target/console-screenshots/` (artifacts, not committed).

use crate::server::{
    batch_id, make_csr, Body, Server, ADMIN_PASSWORD, BOB_PASSWORD, PKCS12_PASSWORD,
};
use crate::util::{openssl, unzip, Fixture};
use crate::webdriver::{css_string, keys, screenshot_dir, Browser};
use serde_json::{json, Value};
use std::time::Duration;

/// How long a page or an answer of the console may take.
const WAIT: Duration = Duration::from_secs(30);
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

    /// Replaces the value of the input matching `css` with `value`.
    fn fill(&self, css: &str, value: &str) {
        self.browser.clear(css);
        self.browser.send_keys(css, value);
    }

    /// Waits until `#flash` (role=status) contains `text`; returns it.
    fn wait_flash(&self, text: &str) -> String {
        self.wait_message("#flash", "status", text)
    }

    /// Waits until `#error` (role=alert) contains `text`; returns it.
    fn wait_error(&self, text: &str) -> String {
        self.wait_message("#error", "alert", text)
    }

    /// Waits until the message region `css` contains `text`, and checks its ARIA `role`.
    fn wait_message(&self, css: &str, role: &str, text: &str) -> String {
        let message = self
            .browser
            .wait_until(WAIT, &format!("{css} to say {text:?}"), |b| {
                b.try_text(css).filter(|t| t.contains(text))
            });
        assert_eq!(self.browser.attribute(css, "role").as_deref(), Some(role));
        message
    }

    /// The body rows of the table matching `table`: `[data attributes, cell texts...]` per
    /// row, or None while the table is being replaced (for polling).
    fn try_rows(&self, table: &str) -> Option<Vec<Row>> {
        let value = self
            .browser
            .try_execute(
                "const t = document.querySelector(arguments[0]);
                 if (!t) return null;
                 return Array.from(t.querySelectorAll('tbody tr')).map(tr => ({
                   data: Object.assign({}, tr.dataset),
                   cells: Array.from(tr.cells).map(td => td.textContent.trim()),
                 }));",
                &[json!(table)],
            )
            .ok()?;
        let rows = value.as_array()?;
        Some(
            rows.iter()
                .map(|row| Row {
                    data: row["data"]
                        .as_object()
                        .map(|o| {
                            o.iter()
                                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                                .collect()
                        })
                        .unwrap_or_default(),
                    cells: row["cells"]
                        .as_array()
                        .map(|c| {
                            c.iter()
                                .map(|v| v.as_str().unwrap_or("").to_owned())
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect(),
        )
    }

    /// Waits until a row of `table` satisfies `check`; returns it.
    fn wait_row(&self, table: &str, what: &str, check: impl Fn(&Row) -> bool) -> Row {
        self.browser.wait_until(WAIT, what, |_| {
            self.try_rows(table)?.into_iter().find(|r| check(r))
        })
    }

    /// Logs out with the top bar's button and waits for the login form.
    fn logout(&self) {
        self.browser.click("button#logout");
        self.browser.wait_for("form#login-form", WAIT);
        self.wait_flash("You are logged out.");
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

/// One body row of a console table: its `data-*` attributes (camelCase, as `dataset` names
/// them) and the text of its cells.
#[derive(Debug, Clone)]
struct Row {
    data: std::collections::BTreeMap<String, String>,
    cells: Vec<String>,
}

impl Row {
    /// The text of cell `i` ("" past the end).
    fn cell(&self, i: usize) -> &str {
        self.cells.get(i).map(String::as_str).unwrap_or("")
    }

    fn data(&self, name: &str) -> &str {
        self.data.get(name).map(String::as_str).unwrap_or("")
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

/// A PEM bundle of CSRs through the console: no PKCS#12 password is asked for, and the ZIP
/// holds a certificate for each device's own key.
#[test]
fn console_certifies_a_csr_bundle() {
    let c = Console::start();
    let b = &c.browser;
    let dir = c.f.path("csrs");
    std::fs::create_dir_all(&dir).unwrap();
    let cns = ["00:1A:2B:3C:4D:41", "00:1A:2B:3C:4D:42"];
    let mut bundle = String::new();
    let mut keys = Vec::new();
    for (i, cn) in cns.iter().enumerate() {
        let csr = make_csr(&dir, &format!("d{i}"), cn);
        bundle.push_str(&std::fs::read_to_string(&csr).unwrap());
        keys.push(dir.join(format!("d{i}.key")));
    }
    let bundle = c.f.write("requests.pem", &bundle);

    c.login("admin", ADMIN_PASSWORD);
    c.open("#/new", "select#profile-select");
    b.select_by_value("select#profile-select", "1");
    b.wait_for("#param-pkcs12Password", WAIT);
    b.select_by_value("select#upload-kind", "csr");
    assert!(
        !b.is_displayed("#param-pkcs12Password"),
        "a CSR batch makes no PKCS#12"
    );
    c.upload("csr", &bundle, &[("deviceClass", "Aircraft")], "csr bundle");
    b.click("button#upload-submit");
    let id: i64 = b.wait_until(WAIT, "the batch page after the upload", |_| {
        c.hash().strip_prefix("#/batches/")?.parse().ok()
    });
    b.wait_text("#batch-status", "Ready for download", ISSUE);
    b.wait_until(WAIT, "#batch-done to say 2 of 2", |b| {
        b.try_text("#batch-done")?.contains("2 of 2").then_some(())
    });
    c.shot("csr-batch");
    b.wait_until(WAIT, "#batch-download to be enabled", |b| {
        (b.try_property("button#batch-download", "disabled")? == false).then_some(())
    });
    b.click("button#batch-download");
    let zip = b.wait_download(ISSUE);
    assert_eq!(
        zip.file_name().unwrap().to_string_lossy(),
        format!("batch-{id}.zip")
    );
    let out = c.f.path("csr-zip");
    let names = unzip(&zip, &out);
    assert!(names.iter().all(|n| !n.ends_with(".p12")), "{names:?}");
    for (cn, key) in cns.iter().zip(&keys) {
        let crt = out.join(format!("{}.crt", cn.replace(':', "-")));
        assert!(crt.exists(), "{names:?}");
        // The certificate certifies the CSR's own key.
        let certified = openssl(&["x509", "-in", crt.to_str().unwrap(), "-noout", "-pubkey"]);
        let own = openssl(&["pkey", "-in", key.to_str().unwrap(), "-pubout"]);
        assert_eq!(certified, own, "{cn}");
        let verified = openssl(&[
            "verify",
            "-CAfile",
            out.join("chain.pem").to_str().unwrap(),
            crt.to_str().unwrap(),
        ]);
        assert!(verified.contains(": OK"), "{verified}");
    }
    c.assert_no_severe_log("CSR bundle");
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

/// `POST /auth/token` with a client's id and secret in the form (RFC 6749 §4.4).
fn client_token(server: &Server, id: &str, secret: &str) -> crate::server::Resp {
    let form = format!("grant_type=client_credentials&client_id={id}&client_secret={secret}");
    server.call(
        "POST",
        "/auth/token",
        None,
        Body::Raw(form.as_bytes(), "application/x-www-form-urlencoded"),
        &[],
    )
}

/// Whether `text` is 64 lower- or upper-case hex digits (a client secret: 256 bits).
fn is_secret(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The administration pages as ADMIN: a new organization (after a refused e-mail address), a
/// user in it who then signs in (a USER's navigation), an API client whose secret gets a token
/// until it is locked, a rotation of the default issuer's signer, and the admin's own password.
/// Each step is checked in the page and over the API.
#[test]
fn console_administers_organizations_users_clients_and_signers() {
    let c = Console::start();
    let b = &c.browser;
    let server = &c.server;
    let token = server.admin();
    c.login("admin", ADMIN_PASSWORD);

    // ---- #/organizations: every field but the manufacturer id is required
    // (organizations_api.rs), the phone in digit groups such as +38 012 345 6789.
    const ORG: &str = "Line Seven Works";
    c.open("#/organizations", "table#org-list");
    for css in [
        "input#org-name",
        "input#org-address",
        "input#org-contact",
        "input#org-email",
        "input#org-phone",
        "input#org-manufacturer",
    ] {
        b.find(css);
    }
    c.fill("input#org-name", ORG);
    c.fill("input#org-address", "7 Foundry Road, Springfield");
    c.fill("input#org-contact", "Olga Line");
    c.fill("input#org-email", "olga.line7.example");
    c.fill("input#org-phone", "+38 012 345 6789");
    c.fill("input#org-manufacturer", "LSW-7");
    b.click("button#org-create");
    let error = c.wait_error("primaryContactEmail");
    c.shot("admin-organization-refused");
    assert!(
        error.contains("e-mail") || error.contains("email"),
        "{error}"
    );
    assert!(
        !b.text("table#org-list").contains(ORG),
        "a refused organization is listed"
    );
    assert_eq!(
        b.property("input#org-name", "value"),
        ORG,
        "the form keeps what was typed after a refusal"
    );
    c.fill("input#org-email", "olga@line7.example");
    b.click("button#org-create");
    c.wait_flash(&format!("Organization {ORG} created."));
    let org_row = c.wait_row("table#org-list", "the new organization's row", |r| {
        r.cell(1) == ORG
    });
    assert_eq!(org_row.cell(2), "ACTIVE", "{org_row:?}");
    assert!(
        org_row.cell(3).contains("Olga Line") && org_row.cell(3).contains("olga@line7.example"),
        "{org_row:?}"
    );
    let org_id: i64 = org_row
        .data("organizationId")
        .parse()
        .unwrap_or_else(|_| panic!("data-organization-id of {org_row:?}"));
    assert_eq!(org_row.cell(0), org_id.to_string());
    assert_eq!(
        b.text("#error").trim(),
        "",
        "the error is gone after a success"
    );
    assert_eq!(
        b.property("input#org-name", "value"),
        "",
        "the form is empty after a success"
    );
    c.shot("admin-organization-created");
    let org = server
        .get(&format!("/api/v1/organizations/{org_id}"), &token)
        .expect(200, "the new organization")
        .json();
    assert_eq!(org["organizationName"], ORG, "{org}");
    assert_eq!(org["primaryContactPhone"], "+38 012 345 6789", "{org}");
    assert_eq!(org["manufactureId"], "LSW-7", "{org}");

    // ---- #/users: a USER in the new organization.
    const LOGIN: &str = "line7_operator";
    const PASSWORD: &str = "line-seven-operator-pw";
    c.open("#/users", "table#user-list");
    b.select_by_value("select#user-org", &org_id.to_string());
    b.wait_until(WAIT, "the new organization's (empty) user list", |_| {
        let rows = c.try_rows("table#user-list")?;
        let caption = b.try_text("table#user-list caption")?;
        (rows.is_empty() && caption.trim() == "0 users").then_some(())
    });
    c.fill("input#user-login", LOGIN);
    c.fill("input#user-first", "Olga");
    c.fill("input#user-last", "Line");
    c.fill("input#user-email", "olga.operator@line7.example");
    c.fill("input#user-phone", "+38 050 492 4110");
    c.fill("input#user-password", PASSWORD);
    assert_eq!(
        b.property("select#user-role", "value"),
        "USER",
        "the role a new user gets unless another is chosen"
    );
    b.select_by_value("select#user-role", "USER");
    b.click("button#user-create");
    c.wait_flash(&format!("User {LOGIN} created."));
    let user_row = c.wait_row("table#user-list", "the new user's row", |r| {
        r.cell(1) == LOGIN
    });
    assert_eq!(user_row.cell(2), "Olga Line", "{user_row:?}");
    assert_eq!(user_row.cell(3), "olga.operator@line7.example");
    assert_eq!(user_row.cell(4), "USER", "{user_row:?}");
    assert_eq!(user_row.cell(5), "yes", "{user_row:?}");
    assert_eq!(
        b.property("select#user-org", "value"),
        org_id.to_string(),
        "the list stays on the chosen organization"
    );
    c.shot("admin-user-created");
    let user_id: i64 = user_row.data("userId").parse().expect("data-user-id");
    let user = server
        .get(&format!("/api/v1/users/{user_id}"), &token)
        .expect(200, "the new user")
        .json();
    assert_eq!(user["credentials"]["login"], LOGIN, "{user}");
    assert_eq!(user["organizationId"], org_id, "{user}");
    assert_eq!(user["organizationName"], ORG, "{user}");
    assert_eq!(user["phone"], "+38 050 492 4110", "{user}");
    let roles: Vec<&Value> = user["userPrivileges"]
        .as_array()
        .expect("userPrivileges")
        .iter()
        .map(|p| &p["userRole"])
        .collect();
    assert_eq!(roles, [&json!("USER")], "{user}");
    assert_eq!(
        user["userPrivileges"][0]["organizationId"], org_id,
        "{user}"
    );
    let listed = server
        .json(
            "POST",
            &format!("/api/v1/users/organizations/{org_id}"),
            &token,
            json!({}),
        )
        .expect(200, "the organization's users")
        .json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(1),
        "only the new user: {listed}"
    );

    // The new user signs in: their organization, no administration in the navigation.
    c.logout();
    c.login(LOGIN, PASSWORD);
    let whoami = b.text("#whoami");
    assert!(whoami.contains(ORG), "{whoami}");
    for (hash, _) in USER_PAGES {
        b.find(&format!("nav#nav a[href={}]", css_string(hash)));
    }
    b.find("nav#nav a[href=\"#/account\"]");
    for (hash, _) in ADMIN_PAGES {
        assert!(
            b.try_find(&format!("nav#nav a[href={}]", css_string(hash)))
                .unwrap()
                .is_none(),
            "a USER's navigation links to {hash}"
        );
    }
    c.wait_page("#/batches", "table#batch-list");
    c.shot("admin-user-signed-in");
    c.logout();
    c.login("admin", ADMIN_PASSWORD);

    // ---- #/clients: a factory-station client of the new organization for profile 1.
    const CLIENT: &str = "station-7";
    c.open("#/clients", "table#client-list");
    c.fill("input#client-name", CLIENT);
    b.select_by_value("select#client-org", &org_id.to_string());
    b.select_by_value("select#client-profile", "1");
    b.click("button#client-create");
    c.wait_flash(&format!("API client {CLIENT} created."));
    let secret = b.wait_until(WAIT, "#client-secret to show the secret", |b| {
        b.try_text("#client-secret").filter(|t| is_secret(t.trim()))
    });
    let secret = secret.trim().to_owned();
    let client_id = b.text("#client-id").trim().to_owned();
    assert_eq!(client_id.len(), 36, "a UUID: {client_id}");
    let client_row = c.wait_row("table#client-list", "the new client's row", |r| {
        r.cell(0) == CLIENT
    });
    assert_eq!(client_row.data("clientId"), client_id, "{client_row:?}");
    assert_eq!(client_row.cell(1), client_id, "{client_row:?}");
    assert_eq!(client_row.cell(2), ORG, "{client_row:?}");
    assert_eq!(client_row.cell(3), "1", "{client_row:?}");
    assert_eq!(client_row.cell(4), "no", "locked: {client_row:?}");
    assert!(
        !b.text("table#client-list").contains(&secret),
        "the secret is not in the list"
    );
    c.shot("admin-client-created");
    let answer = client_token(server, &client_id, &secret)
        .expect(200, "a token for the new client")
        .json();
    assert_eq!(answer["token_type"], "Bearer", "{answer}");
    assert!(
        answer["access_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{answer}"
    );

    // Lock: the row says so, the secret box is gone, and the client gets no token.
    let row_css = format!(
        "table#client-list tr[data-client-id={}]",
        css_string(&client_id)
    );
    b.click(
        format!(
            "{row_css} button[aria-label={}]",
            css_string(&format!("Lock {CLIENT}"))
        )
        .as_str(),
    );
    c.wait_flash(&format!("{CLIENT} locked."));
    let locked = c.wait_row("table#client-list", "the client's row to say locked", |r| {
        r.cell(0) == CLIENT && r.cell(4) == "yes"
    });
    assert!(locked.cell(6).contains("Unlock"), "{locked:?}");
    b.find(
        format!(
            "{row_css} button[aria-label={}]",
            css_string(&format!("Unlock {CLIENT}"))
        )
        .as_str(),
    );
    assert!(
        b.try_find("#client-secret").unwrap().is_none(),
        "the secret is shown only once"
    );
    c.shot("admin-client-locked");
    let refused = client_token(server, &client_id, &secret).expect_error(401, "a locked client");
    assert_eq!(refused["error"], "invalid_client", "{refused}");

    // New secret: shown once, a new generation; the old one is dead.
    b.click(
        format!(
            "{row_css} button[aria-label={}]",
            css_string(&format!("New secret for {CLIENT}"))
        )
        .as_str(),
    );
    c.wait_flash(&format!("{CLIENT} has a new secret"));
    let renewed = b.wait_until(WAIT, "#client-secret to show a new secret", |b| {
        b.try_text("#client-secret")
            .map(|t| t.trim().to_owned())
            .filter(|t| is_secret(t) && *t != secret)
    });
    assert_eq!(b.text("#client-id").trim(), client_id);
    let reset = c.wait_row("table#client-list", "the client's second generation", |r| {
        r.cell(0) == CLIENT && r.cell(5) == "2"
    });
    assert_eq!(
        reset.cell(4),
        "yes",
        "a new secret does not unlock: {reset:?}"
    );
    c.shot("admin-client-new-secret");
    client_token(server, &client_id, &renewed).expect_error(401, "new secret, still locked");
    // Unlock: the new secret works, the old one does not.
    b.click(
        format!(
            "{row_css} button[aria-label={}]",
            css_string(&format!("Unlock {CLIENT}"))
        )
        .as_str(),
    );
    c.wait_flash(&format!("{CLIENT} unlocked."));
    c.wait_row(
        "table#client-list",
        "the client's row to say unlocked",
        |r| r.cell(0) == CLIENT && r.cell(4) == "no",
    );
    client_token(server, &client_id, &renewed).expect(200, "the new secret, unlocked");
    client_token(server, &client_id, &secret).expect_error(401, "the old secret");
    // Delete takes two clicks: the first only asks for confirmation.
    let delete = format!(
        "{row_css} button[aria-label={}]",
        css_string(&format!("Delete {CLIENT}"))
    );
    b.click(delete.as_str());
    let armed = format!(
        "{row_css} button[aria-label={}]",
        css_string(&format!("Confirm delete: Delete {CLIENT}"))
    );
    b.wait_text(&armed, "Confirm delete", WAIT);
    client_token(server, &client_id, &renewed).expect(200, "armed, not yet deleted");
    b.click(armed.as_str());
    c.wait_flash(&format!("{CLIENT} deleted."));
    b.wait_until(WAIT, "the deleted client's row to go", |b| {
        (!b.try_text("table#client-list")?.contains(CLIENT)).then_some(())
    });
    client_token(server, &client_id, &renewed).expect_error(401, "a deleted client");

    // ---- #/signers: the default issuer's ACTIVE signer; rotate it (two clicks).
    c.open("#/signers", "table#signer-list");
    let default_rows = |rows: Vec<Row>| -> Vec<Row> {
        rows.into_iter()
            .filter(|r| r.cell(0) == "default")
            .collect()
    };
    let before = default_rows(c.try_rows("table#signer-list").expect("the signer rows"));
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].cell(2), "ACTIVE", "{before:?}");
    assert_eq!(before[0].cell(3), "ISSUED", "{before:?}");
    let first_signer = before[0].data("signerId").to_owned();
    assert!(!first_signer.is_empty(), "{before:?}");
    let label = b.text("button#rotate-default");
    b.click("button#rotate-default");
    b.wait_until(WAIT, "the rotate button to ask for confirmation", |b| {
        b.try_text("button#rotate-default")
            .filter(|t| *t != label && t.contains("Confirm"))
    });
    assert_eq!(
        default_rows(c.try_rows("table#signer-list").expect("the signer rows")).len(),
        1,
        "the first click only arms the button"
    );
    c.shot("admin-signer-armed");
    b.click("button#rotate-default");
    let after = b.wait_until(WAIT, "two signers of the default issuer", |_| {
        let rows = default_rows(c.try_rows("table#signer-list")?);
        (rows.len() == 2).then_some(rows)
    });
    c.wait_flash("Issuer default now signs with");
    let state_of = |id: &str| {
        after
            .iter()
            .find(|r| r.data("signerId") == id)
            .map(|r| r.cell(2).to_owned())
    };
    assert_eq!(
        state_of(&first_signer).as_deref(),
        Some("RETIRED"),
        "{after:?}"
    );
    let active: Vec<&Row> = after.iter().filter(|r| r.cell(2) == "ACTIVE").collect();
    assert_eq!(active.len(), 1, "{after:?}");
    assert_ne!(active[0].data("signerId"), first_signer);
    assert_eq!(
        b.text("button#rotate-default"),
        label,
        "the page is drawn again with the button disarmed"
    );
    c.shot("admin-signer-rotated");
    let issuers = server
        .get("/api/v1/issuers", &token)
        .expect(200, "issuers")
        .json();
    let default = issuers
        .as_array()
        .expect("an array")
        .iter()
        .find(|i| i["name"] == "default")
        .unwrap_or_else(|| panic!("no default issuer: {issuers}"));
    assert_eq!(
        default["current"]["id"].as_str(),
        Some(active[0].data("signerId")),
        "{issuers}"
    );

    // ---- #/account: a wrong current password, then the admin's new password.
    const NEW_PASSWORD: &str = "admin-password-changed-in-console";
    c.open("#/account", "input#account-current");
    let submit = "main#main form button[type=\"submit\"]";
    c.fill("input#account-current", "not-the-admin-password");
    c.fill("input#account-new", NEW_PASSWORD);
    c.fill("input#account-repeat", NEW_PASSWORD);
    b.click(submit);
    c.wait_error("The current password is wrong.");
    c.fill("input#account-current", ADMIN_PASSWORD);
    c.fill("input#account-new", NEW_PASSWORD);
    c.fill("input#account-repeat", NEW_PASSWORD);
    b.click(submit);
    c.wait_flash("Password changed.");
    assert_eq!(b.text("#error").trim(), "");
    assert_eq!(b.property("input#account-current", "value"), "");
    c.shot("admin-account-changed");
    let old = server
        .call(
            "POST",
            "/auth/pwd",
            None,
            Body::Json(json!({"username": "admin", "password": ADMIN_PASSWORD})),
            &[],
        )
        .expect_error(401, "the old admin password");
    assert!(old["error"].is_string(), "{old}");
    // The change revoked every refresh token of the admin; the console logged in again, so
    // this tab's refresh token is a live one (it rotates once here; the tab then holds a
    // spent token, which no longer matters: it logs out next).
    let refresh = b.execute("return sessionStorage.getItem('certmill.refresh');", &[]);
    let refresh = refresh.as_str().expect("a refresh token in sessionStorage");
    server
        .call(
            "POST",
            "/auth/refresh",
            None,
            Body::Raw(refresh.as_bytes(), "text/plain"),
            &[],
        )
        .expect(200, "the console's refresh token after the password change");
    c.logout();
    assert_eq!(c.hash(), "", "logging out forgets the page");
    c.login("admin", NEW_PASSWORD);
    c.wait_page("#/batches", "table#batch-list");
    // The refused organization was a 400 (logged as a failed load); nothing else is SEVERE.
    let severe: Vec<String> = b
        .severe_log()
        .into_iter()
        .filter(|m| {
            !m.contains("/api/v1/organizations - Failed to load resource: the server responded with a status of 400")
        })
        .collect();
    assert!(severe.is_empty(), "SEVERE browser log entries: {severe:#?}");
}

/// Devices of the live-progress batch: on a 2-core machine at the test build's ~5,500
/// devices/s, about 7 s of "Processing" (about 165 MB of data directory).
const LIVE_DEVICES: u32 = 40_000;

/// What the batch page shows at one moment: `#batch-status`, `progress#batch-progress`
/// value and max, `#batch-rate`, `#batch-eta`.
#[derive(Debug, Clone, PartialEq)]
struct Progress {
    status: String,
    value: f64,
    max: f64,
    rate: String,
    eta: String,
}

fn progress(b: &Browser) -> Option<Progress> {
    let v = b
        .try_execute(
            "const t = (s) => { const e = document.querySelector(s); return e ? e.textContent.trim() : null; };
             const p = document.querySelector('progress#batch-progress');
             if (!p) return null;
             return [t('#batch-status'), p.value, p.max, t('#batch-rate'), t('#batch-eta')];",
            &[],
        )
        .ok()?;
    let text = |i: usize| v[i].as_str().unwrap_or("").to_owned();
    Some(Progress {
        status: text(0),
        value: v[1].as_f64()?,
        max: v[2].as_f64()?,
        rate: text(3),
        eta: text(4),
    })
}

/// `1,234 devices/s` (any digit grouping of the browser's locale): the number.
fn rate_of(text: &str) -> Option<u64> {
    let number = text.strip_suffix(" devices/s")?;
    if !number.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let others = number
        .chars()
        .filter(|c| !c.is_ascii_digit() && !matches!(c, ',' | '.' | ' ' | '\u{a0}' | '\u{202f}'))
        .count();
    (others == 0).then(|| digits.parse().ok())?
}

/// `12 s`: the seconds.
fn eta_of(text: &str) -> Option<u64> {
    text.strip_suffix(" s")?.parse().ok()
}

/// A batch big enough to watch: while it is Processing, the batch page's progress bar grows
/// between polls, the rate reads `N devices/s` and the time left `N s`; then "Ready for
/// download", the bar full and the time left "done". What needs the page to have been seen
/// Processing over two of its 1-second polls is required only when it was (a much faster
/// machine may finish first); on this 2-core machine it is, for about 7 s.
#[test]
fn console_shows_live_progress() {
    use std::fmt::Write as _;
    use std::time::Instant;
    let c = Console::start();
    let b = &c.browser;
    let mut csv = String::with_capacity(11 + 18 * LIVE_DEVICES as usize);
    csv.push_str("macAddress\n");
    for i in 0..LIVE_DEVICES {
        let [_, x, y, z] = i.to_be_bytes();
        writeln!(csv, "02:00:5E:{x:02X}:{y:02X}:{z:02X}").unwrap();
    }
    let file = c.f.write("live.csv", &csv);

    c.login("admin", ADMIN_PASSWORD);
    c.open("#/new", "select#profile-select");
    c.upload(
        "csv",
        &file,
        &[
            ("deviceClass", "Aircraft"),
            ("pkcs12Password", PKCS12_PASSWORD),
        ],
        "live progress",
    );
    let ordered = Instant::now();
    b.click("button#upload-submit");
    let id: i64 = b.wait_until(WAIT, "the batch page after the upload", |_| {
        c.hash().strip_prefix("#/batches/")?.parse().ok()
    });
    c.wait_page(&format!("#/batches/{id}"), "progress#batch-progress");
    let page_at = ordered.elapsed();

    // Watch the page 5 times a second until the batch is ready.
    let max = f64::from(LIVE_DEVICES);
    let mut samples: Vec<(Instant, Progress)> = Vec::new();
    let mut shot = false;
    let deadline = Instant::now() + Duration::from_secs(180);
    let last = loop {
        if let Some(p) = progress(b) {
            match p.status.as_str() {
                "" => {}
                "Processing" => {
                    if !shot && p.value > 0.0 && rate_of(&p.rate).is_some() {
                        c.shot("batch-live-progress");
                        shot = true;
                    }
                    samples.push((Instant::now(), p));
                }
                "Ready for download" => break p,
                other => panic!("batch {id}: status {other:?}; samples {samples:?}"),
            }
        }
        assert!(
            Instant::now() < deadline,
            "batch {id} not ready after 180 s: {:?}",
            samples.last()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let ready_at = ordered.elapsed();

    // Everything seen while Processing is consistent.
    for (_, p) in &samples {
        assert_eq!(p.max, max, "{p:?}");
        assert!((0.0..=max).contains(&p.value), "{p:?}");
        assert!(p.rate == "—" || rate_of(&p.rate).is_some(), "{p:?}");
        assert!(p.eta == "—" || eta_of(&p.eta).is_some(), "{p:?}");
    }
    for pair in samples.windows(2) {
        assert!(
            pair[1].1.value >= pair[0].1.value,
            "the bar went back: {pair:?}"
        );
    }
    let span = match (samples.first(), samples.last()) {
        (Some((first, _)), Some((last, _))) => last.duration_since(*first),
        _ => Duration::ZERO,
    };
    let values: Vec<f64> = samples.iter().map(|(_, p)| p.value).collect();
    let grew = values.windows(2).any(|w| w[1] > w[0]);
    let rate = samples.iter().find_map(|(_, p)| rate_of(&p.rate));
    let eta = samples.iter().find_map(|(_, p)| eta_of(&p.eta));
    eprintln!(
        "live progress: {LIVE_DEVICES} devices; batch page after {page_at:?}, Processing seen \
         for {span:?} ({} samples, bar {:?} to {:?}), ready after {ready_at:?}; first rate {rate:?} \
         devices/s, first time left {eta:?} s",
        samples.len(),
        values.first(),
        values.last(),
    );
    if span >= Duration::from_secs(2) {
        // Two or more of the page's polls fell inside the span: the bar moved, and the page
        // had a rate and a time left.
        assert!(grew, "the bar never grew while Processing: {values:?}");
        assert!(
            rate.is_some_and(|r| r > 0),
            "no rate while Processing: {samples:?}"
        );
        assert!(eta.is_some(), "no time left while Processing: {samples:?}");
        assert!(shot, "a screenshot of the running batch");
    } else {
        eprintln!("live progress: the batch finished too soon to watch ({span:?})");
    }

    // Ready: the bar full, "done", every device counted.
    let done = b.wait_until(WAIT, "#batch-eta to say done", |b| {
        progress(b).filter(|p| p.eta == "done" && p.value == max)
    });
    assert_eq!(done.status, "Ready for download", "{done:?} after {last:?}");
    assert!(
        done.rate == "—" || rate_of(&done.rate).is_some(),
        "{done:?}"
    );
    b.wait_until(WAIT, "#batch-done to count every device", |b| {
        let digits: String = b
            .try_text("#batch-done")?
            .chars()
            .filter(char::is_ascii_digit)
            .collect();
        (digits == format!("{LIVE_DEVICES}{LIVE_DEVICES}")).then_some(())
    });
    assert_eq!(b.text("#batch-failed").trim(), "0");
    b.wait_until(WAIT, "#batch-download to be enabled", |b| {
        (b.try_property("button#batch-download", "disabled")? == false).then_some(())
    });
    c.shot("batch-live-done");
    c.assert_no_severe_log("the live batch page");
}
