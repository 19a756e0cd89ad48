//! Stage one of the CLI: parse arguments, no I/O (ripgrep's `lowargs`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// certmill: batch X.509 certificate issuance for IoT device provisioning.
#[derive(Debug, Parser)]
#[command(name = "certmill", version, about, long_about = None)]
pub struct Cli {
    /// Data directory: CA, store, demo output.
    #[arg(
        long,
        global = true,
        env = "CERTMILL_DATA",
        default_value = "./certmill-data"
    )]
    pub data: PathBuf,
    /// The store: a PostgreSQL URL (`postgres://user@host:port/db`, no TLS) shared by several
    /// nodes; without it, `certmill.db` (SQLite) in the data directory. See docs/SCALE-OUT.md.
    #[arg(long, global = true, env = "CERTMILL_STORE", hide_env_values = true)]
    pub store: Option<String>,
    /// Base URL where certmill serves OCSP and CRLs; replaces {baseUrl} in profile URLs.
    #[arg(
        long,
        global = true,
        env = "CERTMILL_BASE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub base_url: String,
    /// Largest profile file accepted, in bytes; larger ones are refused unread.
    #[arg(
        long,
        global = true,
        env = "CERTMILL_MAX_PROFILE_BYTES",
        default_value_t = crate::profile::DEFAULT_MAX_PROFILE_BYTES
    )]
    pub max_profile_bytes: usize,
    /// Deepest nesting of JSON objects and arrays accepted in a profile.
    #[arg(
        long,
        global = true,
        env = "CERTMILL_MAX_PROFILE_DEPTH",
        default_value_t = crate::profile::DEFAULT_MAX_PROFILE_DEPTH
    )]
    pub max_profile_depth: usize,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Issue a demo batch on the embedded defaults (creates a development CA if needed).
    Demo(DemoArgs),
    /// Issue a batch (CSV, CSRs, a generator sequence, or one device) into a ZIP.
    Issue(IssueArgs),
    /// Show the values the first device of a generator batch would get, without issuing.
    Preview(PreviewArgs),
    /// List the generators and their parameters.
    Generators,
    /// Manage the issuing CA.
    #[command(subcommand)]
    Ca(CaCommand),
    /// Check and describe profiles.
    #[command(subcommand)]
    Profile(ProfileCommand),
    /// Look up issued certificates.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Batches: list, show, reject, audit log, download.
    #[command(subcommand)]
    Batches(BatchesCommand),
    /// Authorities (an organization's balance for a profile).
    #[command(subcommand)]
    Authorities(AuthoritiesCommand),
    /// The tamper-evident audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Revoke certificates: one by serial or device, or every certificate of a batch.
    Revoke(RevokeArgs),
    /// The CA's certificate revocation list: show it, or issue one now.
    #[command(subcommand)]
    Crl(CrlCommand),
    /// What the OCSP responder answers for a serial number.
    #[command(subcommand)]
    Ocsp(OcspCommand),
    /// Benchmark: issue a synthetic batch end to end in a temporary directory and report
    /// devices/s, time per stage, peak memory and the machine's ceiling.
    Bench(super::bench::BenchArgs),
    /// The HTTP API (seed 001's /auth and /api/v1 endpoints) until SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Users of the HTTP API: add, list, change a password.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Organizations users and authorities belong to: add, list.
    #[command(subcommand)]
    Orgs(OrgsCommand),
}

/// `certmill demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of devices.
    #[arg(long, default_value_t = 1000)]
    pub devices: u64,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Where the devices come from: exactly one of these.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct DeviceSource {
    /// CSV of devices (header row required); keys are generated.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// CSRs: a PEM bundle or a ZIP of .csr/.pem/.der files; the devices' own keys are signed.
    #[arg(long)]
    pub csr: Option<PathBuf>,
    /// Generator for batch serialization: decimal (0), hex (1) or mac (2); needs --count.
    #[arg(long, requires = "count")]
    pub generator: Option<String>,
    /// One device from the --param values alone (a factory station's single request).
    #[arg(long)]
    pub single: bool,
}

/// `certmill issue`.
#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Profile: a JSON file, or the name of a shipped profile (ecc-device, ecc-server,
    /// rsa-device, rsa-server).
    #[arg(long)]
    pub profile: String,
    /// Where the devices come from.
    #[command(flatten)]
    pub source: DeviceSource,
    /// Devices in a generator batch.
    #[arg(long)]
    pub count: Option<u64>,
    /// Parameter NAME=VALUE (repeatable): profile parameters (--param deviceClass="Surface
    /// Vehicle") and, for --generator, the generator's own (startValue, increment, width).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// File whose first line is the PKCS#12 password (else CERTMILL_PKCS12_PASSWORD, else a prompt).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Output ZIP.
    #[arg(long)]
    pub out: PathBuf,
    /// Batch name recorded in the store (default: the output file name).
    #[arg(long)]
    pub batch_name: Option<String>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Legacy PKCS#12 for old devices: 3DES bags and a SHA-1 MAC instead of AES-256/SHA-256.
    #[arg(long)]
    pub legacy_pkcs12: bool,
    /// PKCS#12 KDF iterations (OpenSSL 3 default 2048).
    #[arg(long, default_value_t = 2048)]
    pub pkcs12_iterations: u32,
    /// Authority whose balance pays for the batch (`certmill authorities create`).
    #[arg(long)]
    pub authority: Option<i64>,
    /// Input bounds.
    #[command(flatten)]
    pub limits: InputLimitArgs,
}

/// Bounds on a batch's input (`certmill issue`, `certmill serve`); each is refused by name.
#[derive(Debug, Args)]
pub struct InputLimitArgs {
    /// Most devices in one batch (CSV records, CSRs, generated devices).
    #[arg(long, env = "CERTMILL_MAX_DEVICES", default_value_t = 10_000_000)]
    pub max_devices: u64,
    /// Longest CSV field, bytes.
    #[arg(long, env = "CERTMILL_MAX_CSV_FIELD_BYTES", default_value_t = 4 << 10)]
    pub max_csv_field_bytes: usize,
    /// Longest CSV record, bytes (the memory one row may take while the file streams).
    #[arg(long, env = "CERTMILL_MAX_CSV_RECORD_BYTES", default_value_t = 64 << 10)]
    pub max_csv_record_bytes: u64,
    /// Most CSRs in one bundle.
    #[arg(long, env = "CERTMILL_MAX_CSRS", default_value_t = 1_000_000)]
    pub max_csrs: usize,
    /// Largest single CSR (PEM or DER), bytes.
    #[arg(long, env = "CERTMILL_MAX_CSR_BYTES", default_value_t = 64 << 10)]
    pub max_csr_bytes: usize,
    /// Largest CSR bundle once uncompressed (the PEM file, or the sum of the ZIP entries), bytes.
    #[arg(long, env = "CERTMILL_MAX_CSR_TOTAL_BYTES", default_value_t = 1 << 30)]
    pub max_csr_total_bytes: u64,
    /// Largest uncompressed/compressed ratio of one ZIP entry (zip bombs).
    #[arg(long, env = "CERTMILL_MAX_ZIP_RATIO", default_value_t = 100)]
    pub max_zip_ratio: u64,
}

impl InputLimitArgs {
    /// The limits these flags set.
    pub fn limits(&self) -> crate::batch::InputLimits {
        crate::batch::InputLimits {
            max_devices: self.max_devices,
            max_csv_field_bytes: self.max_csv_field_bytes,
            max_csv_record_bytes: self.max_csv_record_bytes,
            csr: crate::csr::CsrLimits {
                max_entries: self.max_csrs,
                max_csr_bytes: self.max_csr_bytes,
                max_total_bytes: self.max_csr_total_bytes,
                max_compression_ratio: self.max_zip_ratio,
            },
        }
    }
}

/// `certmill preview`: the generator arguments of `certmill issue`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// Profile file or shipped profile name.
    #[arg(long)]
    pub profile: String,
    /// Generator: decimal (0), hex (1) or mac (2).
    #[arg(long)]
    pub generator: String,
    /// Devices in the batch (checked for overflow).
    #[arg(long, default_value_t = 1)]
    pub count: u64,
    /// Parameter NAME=VALUE (repeatable), as for `certmill issue`.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Ignored (accepted so an issue command line can be reused as is).
    #[arg(long, hide = true)]
    pub out: Option<PathBuf>,
    /// Ignored (accepted so an issue command line can be reused as is).
    #[arg(long, hide = true)]
    pub password_file: Option<PathBuf>,
}

/// `certmill ca ...`.
#[derive(Debug, Subcommand)]
pub enum CaCommand {
    /// Create an issuer: a root CA and its first signer (issuing CA), in the data directory.
    Init {
        /// Issuer name (profiles name it in `Issuer.name`); `default` serves profiles that
        /// name none.
        #[arg(long, default_value = crate::signers::DEFAULT_ISSUER)]
        name: String,
        /// Key algorithm: EC:P-256, EC:P-384, RSA:2048, RSA:3072, RSA:4096.
        #[arg(long, default_value = "EC:P-256")]
        algorithm: String,
        /// Organization name in the CA subjects.
        #[arg(long, default_value = "certmill development")]
        organization: String,
        /// Generate the keys in a PKCS#11 token through this module (e.g.
        /// /usr/lib/softhsm/libsofthsm2.so) instead of key files; needs --token and
        /// --key-label, and the PIN in CERTMILL_PKCS11_PIN_FILE or CERTMILL_PKCS11_PIN.
        #[arg(long, requires_all = ["token", "key_label"])]
        pkcs11_module: Option<PathBuf>,
        /// Label of the PKCS#11 token.
        #[arg(long, requires = "pkcs11_module")]
        token: Option<String>,
        /// Label of the issuing CA key pair in the token (the root's is `<label>-root`).
        #[arg(long, requires = "pkcs11_module")]
        key_label: Option<String>,
        /// The root is the maker's own, outside certmill: make only the signer's key and a CSR
        /// for the root to sign (`certmill ca install` takes the certificate).
        #[arg(long)]
        external_root: bool,
        /// With --external-root: also write the CSR to this file.
        #[arg(long, requires = "external_root")]
        csr_out: Option<PathBuf>,
    },
    /// Create an issuer from an existing issuing CA (certificate and key); its root is
    /// external, so a rotation makes a CSR for it.
    Import {
        /// Issuer name.
        #[arg(long, default_value = crate::signers::DEFAULT_ISSUER)]
        name: String,
        /// Issuing CA certificate (PEM).
        #[arg(long)]
        cert: PathBuf,
        /// Its private key (PKCS#8 PEM, encrypted or not); or give the token key with
        /// --pkcs11-module, --token and --key-label.
        #[arg(
            long,
            required_unless_present = "pkcs11_module",
            conflicts_with = "pkcs11_module"
        )]
        key: Option<PathBuf>,
        /// The key is already in a PKCS#11 token, through this module (the PIN in
        /// CERTMILL_PKCS11_PIN_FILE or CERTMILL_PKCS11_PIN).
        #[arg(long, requires_all = ["token", "key_label"])]
        pkcs11_module: Option<PathBuf>,
        /// Label of the PKCS#11 token.
        #[arg(long, requires = "pkcs11_module")]
        token: Option<String>,
        /// Label of the issuing CA's key pair in the token.
        #[arg(long, requires = "pkcs11_module")]
        key_label: Option<String>,
        /// The rest of the chain up to the root (PEM), optional.
        #[arg(long)]
        chain: Option<PathBuf>,
    },
    /// Describe an issuer's current signer.
    Show {
        /// Issuer name.
        #[arg(long, default_value = crate::signers::DEFAULT_ISSUER)]
        issuer: String,
    },
    /// List every issuer's signers: id, state, generation, key, validity, name.
    List {
        /// Only this issuer's.
        #[arg(long)]
        issuer: Option<String>,
    },
    /// Rotate an issuer: a new key and certificate become its ACTIVE signer, the previous one
    /// RETIRED (it keeps signing CRLs and OCSP for what it issued). With an external root the
    /// new signer waits (PENDING) with a CSR for `ca install`.
    Rotate {
        /// Issuer name.
        #[arg(long, default_value = crate::signers::DEFAULT_ISSUER)]
        issuer: String,
        /// The new signer's name (its commonName); by default the previous one's, numbered on.
        #[arg(long)]
        name: Option<String>,
        /// Key algorithm of the new signer; by default the previous one's.
        #[arg(long)]
        algorithm: Option<String>,
        /// Validity in years (default 10; never beyond the root).
        #[arg(long)]
        years: Option<u32>,
        /// Write the CSR (external root) to this file as well.
        #[arg(long)]
        csr_out: Option<PathBuf>,
    },
    /// Renew a signer: the same key in a new certificate (or a CSR for an external root).
    Renew {
        /// Issuer name.
        #[arg(long, default_value = crate::signers::DEFAULT_ISSUER)]
        issuer: String,
        /// Signer id, or `current`.
        #[arg(long, default_value = "current")]
        signer: String,
        /// Validity in years from now (default 10; never beyond the root).
        #[arg(long)]
        years: Option<u32>,
        /// Write the CSR (external root) to this file as well.
        #[arg(long)]
        csr_out: Option<PathBuf>,
    },
    /// Install the certificate an external root made from a signer's CSR (PEM, then its
    /// chain): a PENDING signer becomes ACTIVE, an ACTIVE or RETIRED one is renewed.
    Install {
        /// Issuer name.
        #[arg(long, default_value = crate::signers::DEFAULT_ISSUER)]
        issuer: String,
        /// Signer id, or `current`.
        #[arg(long)]
        signer: String,
        /// The certificate (PEM; further certificates are its chain).
        #[arg(long)]
        cert: PathBuf,
    },
    /// Revoke a signer: it signs nothing more (no batches, CRLs or OCSP answers).
    Revoke {
        /// Issuer name.
        #[arg(long, default_value = crate::signers::DEFAULT_ISSUER)]
        issuer: String,
        /// Signer id, or `current`.
        #[arg(long)]
        signer: String,
    },
    /// Delete a signer that is not ACTIVE once nothing it issued is still valid; its key
    /// files are removed.
    Delete {
        /// Issuer name.
        #[arg(long, default_value = crate::signers::DEFAULT_ISSUER)]
        issuer: String,
        /// Signer id.
        #[arg(long)]
        signer: String,
    },
    /// Print a signer's audit log.
    Events {
        /// Issuer name.
        #[arg(long, default_value = crate::signers::DEFAULT_ISSUER)]
        issuer: String,
        /// Signer id, or `current`.
        #[arg(long, default_value = "current")]
        signer: String,
    },
}

/// `certmill profile ...`.
#[derive(Debug, Subcommand)]
pub enum ProfileCommand {
    /// Compile a profile and print its parameters and CSV columns, or its errors; when the
    /// data directory has a signer for the profile's issuer, also bind the profile to it (a
    /// validity that would outlive the CA is refused as a batch would refuse it).
    Check {
        /// Profile JSON file or shipped profile name.
        file: String,
        /// Print JSON (seed 001 "Get Profile Parameters" shape) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List the shipped profiles.
    List,
}

/// `certmill certs ...`.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Find issued certificates by common name and/or serial number.
    Find {
        /// Exact common name.
        #[arg(long)]
        cn: Option<String>,
        /// Serial number in hex (colons and case ignored).
        #[arg(long)]
        serial: Option<String>,
        /// Also print each certificate as PEM.
        #[arg(long)]
        pem: bool,
    },
}

/// `certmill revoke`.
#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// What to revoke: exactly one of these.
    #[command(flatten)]
    pub target: RevokeTarget,
    /// RFC 5280 CRLReason, by name (keyCompromise, superseded, cessationOfOperation,
    /// affiliationChanged, certificateHold, removeFromCRL to release a hold, ...) or code.
    #[arg(long)]
    pub reason: String,
}

/// The certificates `certmill revoke` acts on.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct RevokeTarget {
    /// Serial number in hex (colons and case ignored).
    #[arg(long)]
    pub serial: Option<String>,
    /// Device id (a UUID, as in manifest.csv).
    #[arg(long)]
    pub device: Option<String>,
    /// Batch id: every certificate of a downloaded batch (the batch becomes Revoked).
    #[arg(long)]
    pub batch: Option<i64>,
}

/// `certmill crl ...`.
#[derive(Debug, Subcommand)]
pub enum CrlCommand {
    /// Show a signer's CRL state and its latest revocations.
    Show {
        /// Issuer name.
        #[arg(long, default_value = crate::signers::DEFAULT_ISSUER)]
        issuer: String,
        /// Signer id, or `current`.
        #[arg(long, default_value = "current")]
        signer: String,
        /// Also write the current CRL (DER) to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// How many of the latest revocations to list.
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
    /// Issue a signer's CRL now (a running `certmill serve` does this on schedule and after
    /// revocations).
    Issue {
        /// Issuer name.
        #[arg(long, default_value = crate::signers::DEFAULT_ISSUER)]
        issuer: String,
        /// Signer id, or `current`.
        #[arg(long, default_value = "current")]
        signer: String,
    },
}

/// `certmill ocsp ...`.
#[derive(Debug, Subcommand)]
pub enum OcspCommand {
    /// The status OCSP gives a serial number: good, revoked (time, reason), or unknown.
    Status {
        /// Serial number in hex (colons and case ignored).
        #[arg(long)]
        serial: String,
        /// Only this issuer's signers (by default every signer is asked).
        #[arg(long)]
        issuer: Option<String>,
    },
}

/// `certmill batches ...`.
#[derive(Debug, Subcommand)]
pub enum BatchesCommand {
    /// List batches, newest first.
    List,
    /// Show one batch (seed 001 "Get Batch" fields, status text, processing info) as JSON.
    Show {
        /// Batch id.
        id: i64,
    },
    /// Reject a batch (Ready For Download or Batch Issued Partly, before download): its
    /// balance is restored.
    Reject {
        /// Batch id.
        id: i64,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Print a batch's audit log (add --devices for the per-device log).
    Audit {
        /// Batch id.
        id: i64,
        /// The devices' log instead of the batch's.
        #[arg(long)]
        devices: bool,
    },
    /// Copy a batch's ZIP to a file; marks the batch downloaded and its devices COLLECTED.
    Download {
        /// Batch id.
        id: i64,
        /// Where to write the ZIP.
        #[arg(long)]
        out: PathBuf,
        /// The object store of a batch issued in chunks by a cluster's nodes (the nodes'
        /// --objects URL).
        #[arg(long, env = "CERTMILL_OBJECTS")]
        objects: Option<String>,
    },
}

/// `certmill authorities ...`.
#[derive(Debug, Subcommand)]
pub enum AuthoritiesCommand {
    /// Create an organization's authority for a profile with a balance of certificates.
    Create {
        /// Organization name (created if new).
        #[arg(long)]
        organization: String,
        /// Profile name or file.
        #[arg(long)]
        profile: String,
        /// Certificates it may order.
        #[arg(long)]
        balance: u64,
    },
    /// Add to an authority's balance.
    AddBalance {
        /// Authority id.
        id: i64,
        /// Units to add.
        units: u64,
    },
    /// Show an authority's balance.
    Show {
        /// Authority id.
        id: i64,
    },
}

/// `certmill audit ...`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain of the whole audit log.
    Verify,
}

/// `certmill users ...`.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user; the password comes from --password-file or is prompted twice, never from an
    /// argument.
    Add {
        /// Login name: letters, digits and . _ @ -, at most 64 characters.
        username: String,
        /// Organization name (default: "Default", created if missing).
        #[arg(long)]
        org: Option<String>,
        /// Role (repeatable; default USER).
        #[arg(long = "role", value_name = "ROLE",
              value_parser = ["USER", "ORG_ADMIN", "ECO_ADMIN", "ADMIN"])]
        roles: Vec<String>,
        /// Profile the user may issue under (repeatable; default: every profile).
        #[arg(long = "profile", value_name = "NAME")]
        profiles: Vec<String>,
        /// File whose first line is the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// List the users.
    List,
    /// Change a user's password; ends the user's refresh sessions.
    Passwd {
        /// Login name.
        username: String,
        /// File whose first line is the new password.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

/// `certmill orgs ...`.
#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Add an organization.
    Add {
        /// Its name (unique).
        name: String,
    },
    /// List the organizations.
    List,
}

/// `certmill serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, env = "CERTMILL_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Another directory of profile JSON files to serve (besides the shipped profiles and the
    /// profiles folder of the data directory).
    #[arg(long, env = "CERTMILL_PROFILES")]
    pub profiles: Option<PathBuf>,
    /// Largest JSON or text request body, bytes.
    #[arg(long, env = "CERTMILL_MAX_JSON_BYTES", default_value_t = 1 << 20)]
    pub max_json_bytes: u64,
    /// Largest upload (CSV or CSR multipart), bytes.
    #[arg(long, env = "CERTMILL_MAX_UPLOAD_BYTES", default_value_t = 512 << 20)]
    pub max_upload_bytes: u64,
    /// Seconds a client has to send complete request headers, counted from the connection's
    /// start or the end of its previous answer: slow senders and idle keep-alive connections
    /// are disconnected after it.
    #[arg(long, env = "CERTMILL_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    pub header_timeout_secs: u64,
    /// Seconds a request body may go without a byte before the request is answered 408 and the
    /// connection closed.
    #[arg(long, env = "CERTMILL_BODY_TIMEOUT_SECS", default_value_t = 30)]
    pub body_timeout_secs: u64,
    /// Most connections open at once; further clients wait in the listen backlog.
    #[arg(long, env = "CERTMILL_MAX_CONNECTIONS", default_value_t = crate::server::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Balance of each authority of the default organization, created on first start.
    #[arg(long, env = "CERTMILL_DEFAULT_BALANCE", default_value_t = crate::server::DEFAULT_BALANCE)]
    pub default_balance: u64,
    /// Seconds between two runs of the ZIP janitor.
    #[arg(long, env = "CERTMILL_JANITOR_INTERVAL_SECS", default_value_t = 3600)]
    pub janitor_interval_secs: u64,
    /// Keypair pool: ALGORITHM=CAPACITY entries such as RSA:2048=200,RSA:3072=20; 0 or empty
    /// for none (default: 64 keys per RSA algorithm the served profiles generate keys with).
    #[arg(long, env = "CERTMILL_KEYPAIR_QUEUE")]
    pub keypair_queue: Option<String>,
    /// SMTP relay for password reset mail: `smtps://user:pass@host:port` (TLS),
    /// `smtp://user:pass@host:port?tls=required` (STARTTLS), or `smtp://host:port` (plain, for a
    /// relay on loopback); the port may be left out. Without it, /auth/reset answers 503.
    #[arg(long, env = "CERTMILL_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Sender of password reset mail.
    #[arg(long, env = "CERTMILL_MAIL_FROM", default_value = crate::mail::DEFAULT_FROM)]
    pub mail_from: String,
    /// Object store that makes this server one node of several: batches are cut into chunks
    /// that every node sharing the store (`--store postgres://…`) and this object store issues;
    /// parts and ZIP tails go here. `file:///dir` or `s3://bucket/prefix?endpoint=…&region=…`
    /// (credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY). See docs/SCALE-OUT.md.
    #[arg(long, env = "CERTMILL_OBJECTS")]
    pub objects: Option<String>,
    /// This node's name in the chunk queue (default: host name and process id).
    #[arg(long, env = "CERTMILL_NODE")]
    pub node: Option<String>,
    /// Devices per chunk of the batches this node orders (with --objects).
    #[arg(long, env = "CERTMILL_CHUNK_SIZE", default_value_t = crate::batch::chunked::DEFAULT_CHUNK_SIZE)]
    pub chunk_size: u64,
    /// Seconds a node holds a chunk without renewing its lease; a node silent for longer is
    /// presumed dead and its chunk redone by another (with --objects).
    #[arg(long, env = "CERTMILL_LEASE_SECS", default_value_t = 60)]
    pub lease_secs: u64,
    /// Bounds on each batch's input.
    #[command(flatten)]
    pub input_limits: InputLimitArgs,
}
