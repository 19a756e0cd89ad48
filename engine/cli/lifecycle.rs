//! `certmill batches show|reject|audit|download`, `certmill authorities ...`, `certmill audit
//! verify`: render what the store says; the rules live in the store.

use super::args::{AuthoritiesCommand, BatchesCommand};
use super::InvalidInput;
use crate::profile::{CompileOptions, Profile};
use crate::store::{AuthorityId, BatchId, BatchRow, Store, StoreError};
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

fn store_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::BatchNotFound { .. }
        | StoreError::InvalidTransition { .. }
        | StoreError::NotRejectable { .. }
        | StoreError::InsufficientBalance { .. } => anyhow!(InvalidInput(e.to_string())),
        other => anyhow!(other),
    }
}

/// The seed 001 "Get Batch" shape, plus status text and processing info.
fn batch_json(b: &BatchRow) -> serde_json::Value {
    let mut json = b.api_json();
    json["statusText"] = b.status.status_text().into();
    json["processingInfo"] = b.processing_info();
    json["kind"] = b.kind.clone().into();
    json["zip"] = b.output_path.clone().into();
    json
}

fn load(store: &Store, id: i64) -> Result<BatchRow> {
    store
        .batch(BatchId(id))?
        .ok_or_else(|| anyhow!(InvalidInput(format!("no batch {id}"))))
}

pub(super) fn batches(data: &Path, command: BatchesCommand) -> Result<()> {
    let store = Store::open(data)?;
    match command {
        BatchesCommand::List => super::batches_list(data)?,
        BatchesCommand::Show { id } => {
            let batch = load(&store, id)?;
            println!("{}", serde_json::to_string_pretty(&batch_json(&batch))?);
        }
        BatchesCommand::Reject { id, reason } => {
            if reason.trim().is_empty() {
                bail!(InvalidInput("--reason must say why".into()));
            }
            store
                .reject_batch(BatchId(id), &reason)
                .map_err(store_error)?;
            let batch = load(&store, id)?;
            println!("batch {id}: {}", batch.status.as_str());
        }
        BatchesCommand::Audit { id, devices } => {
            load(&store, id)?;
            let entries = if devices {
                store.device_audit_log(BatchId(id))?
            } else {
                store.audit_log(BatchId(id))?
            };
            for e in entries {
                println!(
                    "{:>8}  {}  {:<10} {:<16} {}{}",
                    e.id,
                    crate::batch::rfc3339(e.time),
                    e.actor,
                    e.kind.as_str(),
                    e.device_id
                        .map(|d| format!("device {d}: "))
                        .unwrap_or_default(),
                    e.message
                );
            }
        }
        BatchesCommand::Download { id, out, objects } => {
            let batch = load(&store, id)?;
            if !batch.downloadable {
                bail!(InvalidInput(format!(
                    "batch {id} is {}: {}",
                    batch.status.as_str(),
                    batch.status.status_text()
                )));
            }
            match store.chunked_layout(BatchId(id)).map_err(store_error)? {
                Some(layout) => {
                    let url = objects.ok_or_else(|| {
                        anyhow!(InvalidInput(format!(
                            "batch {id} was issued in chunks by a cluster's nodes: give their object store with --objects"
                        )))
                    })?;
                    download_stitched(&layout, &url, &out)?;
                }
                None => {
                    std::fs::copy(&batch.output_path, &out).with_context(|| {
                        format!("copying {} to {}", batch.output_path, out.display())
                    })?;
                }
            }
            store.mark_downloaded(BatchId(id)).map_err(store_error)?;
            println!("batch {id} -> {} (devices now COLLECTED)", out.display());
        }
    }
    Ok(())
}

/// Writes a chunked batch's stitched ZIP from the object store at `url` to `out` (through a
/// temporary file beside it, renamed when complete).
fn download_stitched(layout: &crate::store::ChunkedLayout, url: &str, out: &Path) -> Result<()> {
    let stitched = crate::batch::chunked::stitched(layout)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let objects = crate::objects::ObjectStore::open(url, runtime.handle().clone())?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    let mut temp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("a temporary file in {}", dir.display()))?;
    {
        let mut writer = std::io::BufWriter::new(temp.as_file_mut());
        objects
            .blocking()
            .write_stitched_range(&stitched, 0..stitched.len(), &mut writer)?;
        std::io::Write::flush(&mut writer)?;
    }
    temp.as_file().sync_all()?;
    temp.persist(out)
        .with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

pub(super) fn authorities(
    data: &Path,
    compile: &CompileOptions,
    command: AuthoritiesCommand,
) -> Result<()> {
    let store = Store::open(data)?;
    match command {
        AuthoritiesCommand::Create {
            organization,
            profile,
            balance,
        } => {
            let profile = Profile::load(&profile, compile)
                .map_err(|e| anyhow!(InvalidInput(e.to_string())))?;
            let signers =
                crate::signers::Signers::load(data, &store, super::ca_passphrase()?.as_ref())?;
            let issuer = signers
                .require_current(profile.issuer_name())
                .with_context(|| "an authority names its profile's issuer: create or import one first (certmill ca init|import --name)")?
                .issuer();
            // "created if new": an existing organization of that name is reused, so users
            // added with `--org NAME` and the authority share it.
            let org = match store.organization_by_name(&organization)? {
                Some(existing) => existing.id,
                None => store.create_organization(&organization)?,
            };
            let id = store.create_authority(org, profile.name(), issuer, balance)?;
            println!(
                "authority {} (organization {organization:?}, profile {:?}, balance {balance})",
                id.0,
                profile.name()
            );
        }
        AuthoritiesCommand::AddBalance { id, units } => {
            store
                .add_balance(AuthorityId(id), units)
                .map_err(store_error)?;
            show_authority(&store, id)?;
        }
        AuthoritiesCommand::Show { id } => show_authority(&store, id)?,
    }
    Ok(())
}

fn show_authority(store: &Store, id: i64) -> Result<()> {
    let a = store.authority(AuthorityId(id)).map_err(store_error)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "authorityId": a.id.0,
            "organizationId": a.organization.0,
            "profile": a.profile_name,
            "signerCertificateId": a.issuer.0,
            "balanceAvailable": a.balance_available,
            "balanceReserved": a.balance_reserved,
            "balanceUsed": a.balance_used,
        }))?
    );
    Ok(())
}

pub(super) fn audit_verify(data: &Path) -> Result<()> {
    let store = Store::open(data)?;
    let checked = store
        .verify_audit_chain()
        .map_err(|e| anyhow!("audit log: {e}"))?;
    println!("audit log intact: {checked} entries, hash chain verified");
    Ok(())
}
