//! Fixtures: a temporary data directory and a way to run `certmill` in it.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary directory with a certmill data directory inside.
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

/// `fixture!()` gives a fresh [`Fixture`].
macro_rules! fixture {
    () => {
        crate::util::Fixture::new()
    };
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn data(&self) -> PathBuf {
        self.path("data")
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write fixture file");
        path
    }

    /// `certmill --data <dir>/data ARGS...` with a clean environment for certmill's variables.
    pub fn certmill(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_certmill"))
            .arg("--data")
            .arg(self.data())
            .args(args)
            .env_remove("CERTMILL_DATA")
            .env_remove("CERTMILL_PKCS12_PASSWORD")
            .env_remove("CERTMILL_CA_PASSPHRASE")
            .env_remove("CERTMILL_MAX_PROFILE_BYTES")
            .env_remove("CERTMILL_MAX_PROFILE_DEPTH")
            .env("CERTMILL_BASE_URL", "http://ca.certmill.test")
            .current_dir(self.dir.path())
            .output()
            .expect("run certmill")
    }

    /// Runs certmill and asserts success; returns stdout.
    pub fn certmill_ok(&self, args: &[&str]) -> String {
        let out = self.certmill(args);
        assert!(
            out.status.success(),
            "certmill {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Issues a CSV batch; returns the ZIP path.
    pub fn issue(
        &self,
        profile: &str,
        csv: &str,
        params: &[&str],
        password: &str,
        extra: &[&str],
    ) -> PathBuf {
        let (out, zip) = self.try_issue(profile, csv, params, password, extra);
        assert!(
            out.status.success(),
            "certmill issue failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        zip
    }

    /// `certmill issue` of a CSV batch into `<profile>.zip`, whatever its outcome: the
    /// process output and the ZIP path.
    pub fn try_issue(
        &self,
        profile: &str,
        csv: &str,
        params: &[&str],
        password: &str,
        extra: &[&str],
    ) -> (Output, PathBuf) {
        let csv_path = self.write(&format!("{profile}.csv"), csv);
        let password_file = self.write("password.txt", &format!("{password}\n"));
        let out = self.path(&format!("{profile}.zip"));
        let mut args = vec![
            "issue",
            "--profile",
            profile,
            "--csv",
            csv_path.to_str().unwrap(),
            "--password-file",
            password_file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        let params: Vec<String> = params.iter().map(|p| p.to_string()).collect();
        for p in &params {
            args.push("--param");
            args.push(p);
        }
        args.extend_from_slice(extra);
        (self.certmill(&args), out)
    }
}

/// Runs a tool; panics with a hint to install it when it is missing.
pub fn tool(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {program} ({e}): install it (see .ci/run), the interop tests need it"
            )
        })
}

/// Extracts every entry of a ZIP into `dir`; returns the entry names in order.
pub fn unzip(zip_path: &Path, dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip_path).unwrap()).unwrap();
    let mut names = Vec::new();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        assert!(
            !name.contains('/') && !name.starts_with('.'),
            "unsafe entry name {name}"
        );
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        std::fs::write(dir.join(&name), bytes).unwrap();
        names.push(name);
    }
    names
}

/// Splits a PEM bundle into its certificate blocks.
pub fn pem_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.starts_with("-----BEGIN CERTIFICATE") {
            current.clear();
        }
        current.push_str(line);
        current.push('\n');
        if line.starts_with("-----END CERTIFICATE") {
            blocks.push(current.clone());
        }
    }
    blocks
}

/// A CSV of `n` devices with unique MAC addresses.
pub fn mac_csv(n: usize, extra_header: &str, extra_value: &str) -> String {
    let mut csv = format!("macAddress{extra_header}\n");
    for i in 0..n {
        csv.push_str(&format!(
            "00:1A:2B:00:{:02X}:{:02X}{extra_value}\n",
            i >> 8,
            i & 0xff
        ));
    }
    csv
}

/// `/crl/<key id>.crl`: where the server serves the CRL of the signer whose certificate is in
/// `issuing_crt` (PEM), the `{issuerKeyId}` of the shipped profiles' distribution points.
pub fn crl_path_of(issuing_crt: &Path) -> String {
    let out = tool(
        "openssl",
        &[
            "x509",
            "-in",
            issuing_crt.to_str().expect("UTF-8 path"),
            "-noout",
            "-ext",
            "subjectKeyIdentifier",
        ],
    );
    assert!(
        out.status.success(),
        "openssl x509 -ext subjectKeyIdentifier"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let key_id: String = text
        .lines()
        .last()
        .expect("a key identifier line")
        .trim()
        .replace(':', "")
        .to_ascii_lowercase();
    assert!(
        key_id.len() >= 8 && key_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "key identifier {key_id:?}"
    );
    format!("/crl/{key_id}.crl")
}

/// What a finished tool printed: stdout then stderr.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs openssl, asserts success and returns what it printed (stdout then stderr).
pub fn openssl(args: &[&str]) -> String {
    let out = tool("openssl", args);
    assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    text(&out)
}

/// `text` percent-encoded for a URL query: letters and digits stay, every other octet is
/// `%XX` (a `filter=` expression has spaces, quotes and parentheses).
pub fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
