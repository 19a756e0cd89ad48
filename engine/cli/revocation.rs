//! `certmill revoke`, `certmill crl show|issue`, `certmill ocsp status`: parse, call the store
//! and the revocation service, render. The rules live in `store` and `revocation`.

use super::args::{CrlCommand, OcspCommand, RevokeArgs};
use super::InvalidInput;
use crate::profile::CompileOptions;
use crate::revocation::service::{self, CrlSchedule};
use crate::revocation::RevocationReason;
use crate::store::{BatchId, RevokeOutcome, RevokedCertificate, SerialStatus, Store, StoreError};
use anyhow::{anyhow, Context, Result};
use std::path::Path;

/// The actor the audit log records for the command line.
const CLI_ACTOR: &str = "cli";

fn refused(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::BatchNotFound { .. }
        | StoreError::CertificateNotFound { .. }
        | StoreError::InvalidSerialQuery { .. }
        | StoreError::NotRevocable { .. }
        | StoreError::NotOnHold { .. }
        | StoreError::BatchReasonRefused { .. } => anyhow!(InvalidInput(e.to_string())),
        other => anyhow!(other),
    }
}

fn reason(text: &str) -> Result<RevocationReason> {
    RevocationReason::parse(text).ok_or_else(|| {
        let names: Vec<&str> = RevocationReason::ALL.iter().map(|r| r.name()).collect();
        anyhow!(InvalidInput(format!(
            "--reason {text:?}: not an RFC 5280 CRLReason; one of {} (or its code, 0 to 10 \
             except 7)",
            names.join(", ")
        )))
    })
}

fn date(unix: i64) -> String {
    crate::batch::rfc3339(unix)
}

fn describe(change: &RevokedCertificate) -> String {
    let what = format!(
        "serial {} (device {}, batch {})",
        change.serial_hex, change.device_id, change.batch_id
    );
    let reason = change.reason.map_or("-", RevocationReason::name);
    let at = change.revoked_at.map(date).unwrap_or_default();
    match change.outcome {
        RevokeOutcome::Revoked => format!("revoked {what}: {reason} at {at}"),
        RevokeOutcome::AlreadyRevoked => {
            format!("already revoked {what}: {reason} at {at} (unchanged)")
        }
        RevokeOutcome::ReasonChanged { from } => {
            format!(
                "{what}: reason changed from {} to {reason} (revoked at {at})",
                from.name()
            )
        }
        RevokeOutcome::Released => format!("released {what} from hold: valid again"),
    }
}

/// `certmill revoke --serial S | --device D | --batch B --reason R`.
pub(super) fn revoke(data: &Path, args: RevokeArgs) -> Result<()> {
    let reason = reason(&args.reason)?;
    let store = Store::open(data)?;
    let target = args.target;
    if let Some(batch) = target.batch {
        if store.batch(BatchId(batch))?.is_none() {
            return Err(anyhow!(InvalidInput(format!("no batch {batch}"))));
        }
        let changed = store
            .revoke_batch(BatchId(batch), reason, CLI_ACTOR)
            .map_err(refused)?;
        println!(
            "batch {batch} Revoked: {changed} certificates revoked ({})",
            reason.name()
        );
    } else {
        let device = match (&target.serial, &target.device) {
            (Some(serial), _) => {
                let found = store
                    .find_certificates(None, Some(serial))
                    .map_err(refused)?;
                match found.as_slice() {
                    [] => {
                        return Err(anyhow!(InvalidInput(format!(
                            "no certificate with serial number {serial}"
                        ))))
                    }
                    [one] => one.device_id.clone(),
                    several => {
                        let devices: Vec<&str> =
                            several.iter().map(|c| c.device_id.as_str()).collect();
                        return Err(anyhow!(InvalidInput(format!(
                            "serial number {serial} was issued by several CAs; revoke by \
                             --device: {}",
                            devices.join(", ")
                        ))));
                    }
                }
            }
            (None, Some(device)) => device.trim().to_owned(),
            // clap's group makes one target present; this answers if that ever changes.
            (None, None) => {
                return Err(anyhow!(InvalidInput(
                    "give one of --serial, --device or --batch".to_owned()
                )))
            }
        };
        let uuid = uuid::Uuid::parse_str(&device).map_err(|_| {
            anyhow!(InvalidInput(format!(
                "--device {device:?}: not a device id (a UUID)"
            )))
        })?;
        let changes = store
            .revoke_devices(&[*uuid.as_bytes()], reason, CLI_ACTOR)
            .map_err(refused)?;
        for change in &changes {
            println!("{}", describe(change));
        }
    }
    println!(
        "(a running `certmill serve` publishes the new CRL within seconds; otherwise run `certmill crl issue`)"
    );
    Ok(())
}

/// `certmill crl show|issue`.
pub(super) fn crl(data: &Path, compile: &CompileOptions, command: CrlCommand) -> Result<()> {
    let store = Store::open(data)?;
    let (issuer_name, spec) = match &command {
        CrlCommand::Issue { issuer, signer } | CrlCommand::Show { issuer, signer, .. } => {
            (issuer.as_str(), signer.as_str())
        }
    };
    let (_, ca, issuer) = super::ca::load_signer(data, &store, issuer_name, spec)?;
    let path = service::crl_path(data, issuer);
    match command {
        CrlCommand::Issue { .. } => {
            let profiles = crate::server::load_profiles(data, None, compile)?;
            let schedule = CrlSchedule::from_profiles(profiles.iter().map(|p| &p.profile));
            let issued =
                service::issue_crl(data, &store, &ca, issuer, &schedule, service::now_unix())?;
            println!(
                "issued CRL number {} of {}: {} entries, {} bytes, thisUpdate {}, nextUpdate {}",
                issued.number,
                ca.describe(),
                issued.entries,
                issued.bytes,
                date(issued.this_update),
                date(issued.next_update)
            );
            println!("{}", issued.path.display());
        }
        CrlCommand::Show { out, limit, .. } => {
            let state = store.crl_state(issuer)?;
            println!("issuer:       {}", ca.describe());
            match (state.this_update, state.next_update) {
                (Some(this), Some(next)) if path.exists() => {
                    println!("CRL number:   {}", state.crl_number);
                    println!("thisUpdate:   {}", date(this));
                    println!("nextUpdate:   {}", date(next));
                    println!("file:         {}", path.display());
                    println!(
                        "current:      {}",
                        if state.is_stale() {
                            "no: revocations since; the next CRL lists them"
                        } else {
                            "yes"
                        }
                    );
                }
                _ => println!("CRL:          none issued yet (`certmill crl issue`)"),
            }
            let rows = store.revocations(issuer, limit)?;
            println!("latest revocations ({} shown):", rows.len());
            for row in rows {
                println!(
                    "  {}  {:<21} {}  device {}  batch {}  by {}",
                    row.serial_hex,
                    row.reason.name(),
                    date(row.revoked_at),
                    row.device_id,
                    row.batch_id,
                    row.actor
                );
            }
            if let Some(out) = out {
                if !path.exists() {
                    return Err(anyhow!(InvalidInput(
                        "no CRL issued yet: run `certmill crl issue` first".to_owned()
                    )));
                }
                std::fs::copy(&path, &out)
                    .with_context(|| format!("copying the CRL to {}", out.display()))?;
                println!("wrote {}", out.display());
            }
        }
    }
    Ok(())
}

/// `certmill ocsp status --serial S [--issuer N]`: the answer of the signer that assigned the
/// serial (every signer with a certificate is asked; a serial no signer assigned is unknown).
pub(super) fn ocsp(data: &Path, command: OcspCommand) -> Result<()> {
    let OcspCommand::Status { serial, issuer } = command;
    let store = Store::open(data)?;
    crate::signers::adopt_legacy(data, &store, super::ca_passphrase()?.as_ref())?;
    let octets = Store::parse_serial(&serial).map_err(refused)?;
    let signers = store.signers(issuer.as_deref())?;
    let mut answer = None;
    for row in &signers {
        let Some(id) = row.issuer else { continue };
        let status = store.serial_status(id, &octets)?;
        if status != SerialStatus::Unknown {
            answer = Some((row, status));
            break;
        }
    }
    let Some((row, status)) = answer else {
        println!("{serial}: unknown (no signer assigned it)");
        return Ok(());
    };
    let by = format!("signer {} of issuer {}", row.id, row.issuer_name);
    match status {
        SerialStatus::Good { not_after } => {
            println!("{serial}: good (valid until {}; {by})", date(not_after));
        }
        SerialStatus::Revoked {
            revoked_at, reason, ..
        } => println!(
            "{serial}: revoked at {}, reason {} ({}; {by})",
            date(revoked_at),
            reason.name(),
            reason.code()
        ),
        SerialStatus::Pending => {
            println!("{serial}: unknown (a batch still issuing holds it; {by})");
        }
        SerialStatus::Voided => println!(
            "{serial}: revoked (never issued: reserved by a batch that ended without it; \
             RFC 6960 extended revoked; {by})"
        ),
        SerialStatus::Unknown => println!("{serial}: unknown (no signer assigned it)"),
    }
    Ok(())
}
