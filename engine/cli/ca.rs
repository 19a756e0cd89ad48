//! `certmill ca ...`: issuers and their signers (seed 004's lifecycle) from the command line.
//! Every change goes through [`crate::signers`], which records it in the store with the actor
//! `cli`; a running `certmill serve` picks it up within a second.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::args::CaCommand;
use super::{ca_passphrase, InvalidInput};
use crate::ca::{CaInitOptions, IssuingCa, Pkcs11Config, Pkcs11Pin};
use crate::keys::KeyAlgorithm;
use crate::signers::{self, ImportedKey, RotateOptions, SignerError, Signers};
use crate::store::{IssuerId, SignerRow, Store};

/// The actor the signers' audit log records for the command line.
const CLI_ACTOR: &str = "cli";

/// Refusals caused by the input (exit code 3) rather than a fault.
fn refused(e: SignerError) -> anyhow::Error {
    use crate::store::StoreError;
    match e {
        SignerError::InvalidName(_)
        | SignerError::IssuerExists(_)
        | SignerError::NotFound { .. }
        | SignerError::NoCurrentSigner(_)
        | SignerError::Store(
            StoreError::SignerInUse { .. }
            | StoreError::SignerState { .. }
            | StoreError::SignerNotFound { .. },
        ) => anyhow!(InvalidInput(e.to_string())),
        other => anyhow!(other),
    }
}

fn algorithm(text: &str) -> Result<KeyAlgorithm> {
    KeyAlgorithm::from_syntax(text).ok_or_else(|| {
        anyhow!(InvalidInput(format!(
            "--algorithm {text:?}: expected EC:P-256, EC:P-384, RSA:2048, RSA:3072 or RSA:4096"
        )))
    })
}

fn describe(row: &SignerRow) -> String {
    format!(
        "{}  {:<8} gen {}  {:<8}  until {}  {}",
        row.id,
        row.state.as_str(),
        row.generation,
        row.algorithm,
        row.not_after
            .map_or_else(|| "-".to_owned(), crate::batch::rfc3339),
        row.name
    )
}

/// Writes `csr` to `out` when asked, and says where it is.
fn hand_out_csr(csr: &str, out: Option<&Path>, data: &Path, row: &SignerRow) -> Result<()> {
    if let Some(out) = out {
        std::fs::write(out, csr).with_context(|| format!("writing {}", out.display()))?;
        println!("CSR written to {}", out.display());
    }
    println!(
        "CSR: {} (take it to the root, then `certmill ca install --issuer {} --signer {} --cert <certificate.pem>`)",
        data.join(&row.key_dir).join("issuing.csr").display(),
        row.issuer_name,
        row.id
    );
    Ok(())
}

/// `certmill ca ...`.
pub(super) fn ca(data: &Path, command: CaCommand) -> Result<()> {
    let passphrase = ca_passphrase()?;
    let store = Store::open(data)?;
    match command {
        CaCommand::Init {
            name,
            algorithm: algorithm_text,
            organization,
            pkcs11_module,
            token,
            key_label,
            external_root,
            csr_out,
        } => {
            let pkcs11 = match (pkcs11_module, token, key_label) {
                (Some(module), Some(token), Some(key_label)) => Some((
                    Pkcs11Config {
                        module,
                        token,
                        key_label,
                    },
                    Pkcs11Pin::from_env()?,
                )),
                _ => None,
            };
            let options = CaInitOptions {
                algorithm: algorithm(&algorithm_text)?,
                organization,
                passphrase,
                pkcs11,
                ..CaInitOptions::default()
            };
            if external_root {
                let done = signers::request_issuer(data, &store, &name, &options, CLI_ACTOR)
                    .map_err(refused)?;
                println!("{}", describe(&done.signer));
                if let Some(csr) = &done.csr {
                    hand_out_csr(csr, csr_out.as_deref(), data, &done.signer)?;
                }
                return Ok(());
            }
            let (row, ca) =
                signers::init_issuer(data, &store, &name, &options, CLI_ACTOR).map_err(refused)?;
            println!("created issuer {name}: {}", ca.describe());
            println!("signer: {}", row.id);
            println!(
                "chain:  {}",
                data.join(&row.key_dir).join("chain.pem").display()
            );
        }
        CaCommand::Import {
            name,
            cert,
            key,
            pkcs11_module,
            token,
            key_label,
            chain,
        } => {
            let pin;
            let key = match (key.as_deref(), pkcs11_module, token, key_label) {
                (Some(key), _, _, _) => ImportedKey::File(key),
                (None, Some(module), Some(token), Some(key_label)) => {
                    pin = Pkcs11Pin::from_env()?;
                    ImportedKey::Pkcs11(
                        Pkcs11Config {
                            module,
                            token,
                            key_label,
                        },
                        &pin,
                    )
                }
                _ => bail!(InvalidInput(
                    "give --key, or --pkcs11-module with --token and --key-label".to_owned()
                )),
            };
            let (row, ca) = signers::import_issuer(
                data,
                &store,
                &name,
                signers::Imported {
                    cert: &cert,
                    key,
                    chain: chain.as_deref(),
                },
                passphrase.as_ref(),
                CLI_ACTOR,
            )
            .map_err(refused)?;
            println!("imported issuer {name}: {}", ca.describe());
            println!("signer: {}", row.id);
        }
        CaCommand::Show { issuer } => {
            let loaded = Signers::load(data, &store, passphrase.as_ref())?;
            let current = loaded.require_current(&issuer).map_err(refused)?;
            println!("{}", current.ca.describe());
            println!("signer: {}", describe(&current.row));
        }
        CaCommand::List { issuer } => {
            signers::adopt_legacy(data, &store, passphrase.as_ref())?;
            let rows = store.signers(issuer.as_deref())?;
            if rows.is_empty() {
                println!("no issuer yet (`certmill ca init`)");
            }
            let mut last: Option<&str> = None;
            for row in &rows {
                if last != Some(row.issuer_name.as_str()) {
                    println!("issuer {}:", row.issuer_name);
                    last = Some(&row.issuer_name);
                }
                println!("  {}", describe(row));
            }
        }
        CaCommand::Rotate {
            issuer,
            name,
            algorithm: algorithm_text,
            years,
            csr_out,
        } => {
            let options = RotateOptions {
                name,
                algorithm: algorithm_text.as_deref().map(algorithm).transpose()?,
                years,
            };
            let done = signers::rotate(
                data,
                &store,
                &issuer,
                &options,
                passphrase.as_ref(),
                CLI_ACTOR,
            )
            .map_err(refused)?;
            println!("{}", describe(&done.signer));
            match &done.csr {
                Some(csr) => hand_out_csr(csr, csr_out.as_deref(), data, &done.signer)?,
                None => println!(
                    "issuer {issuer} now signs with {}; the previous signer is RETIRED",
                    done.signer.id
                ),
            }
        }
        CaCommand::Renew {
            issuer,
            signer,
            years,
            csr_out,
        } => {
            let row = signers::resolve(&store, &issuer, &signer).map_err(refused)?;
            let done = signers::renew(data, &store, &row, years, passphrase.as_ref(), CLI_ACTOR)
                .map_err(refused)?;
            println!("{}", describe(&done.signer));
            if let Some(csr) = &done.csr {
                hand_out_csr(csr, csr_out.as_deref(), data, &done.signer)?;
            }
        }
        CaCommand::Install {
            issuer,
            signer,
            cert,
        } => {
            let row = signers::resolve(&store, &issuer, &signer).map_err(refused)?;
            let pem = std::fs::read_to_string(&cert)
                .with_context(|| format!("reading {}", cert.display()))?;
            let row = signers::install(data, &store, &row, &pem, passphrase.as_ref(), CLI_ACTOR)
                .map_err(refused)?;
            println!("{}", describe(&row));
        }
        CaCommand::Revoke { issuer, signer } => {
            let row = signers::resolve(&store, &issuer, &signer).map_err(refused)?;
            let row = signers::revoke(&store, &row, CLI_ACTOR).map_err(refused)?;
            println!("{}", describe(&row));
        }
        CaCommand::Delete { issuer, signer } => {
            let row = signers::resolve(&store, &issuer, &signer).map_err(refused)?;
            let row = signers::delete(data, &store, &row, CLI_ACTOR).map_err(refused)?;
            println!("{}", describe(&row));
        }
        CaCommand::Events { issuer, signer } => {
            let row = signers::resolve(&store, &issuer, &signer).map_err(refused)?;
            for event in store.signer_events(&row.id)? {
                println!(
                    "{}  {:<9} {:<8} {}",
                    crate::batch::rfc3339(event.time),
                    event.kind,
                    event.actor,
                    event.message
                );
            }
        }
    }
    Ok(())
}

/// The signer `spec` of `issuer`, loaded (CRLs and OCSP of a RETIRED signer too).
pub(super) fn load_signer(
    data: &Path,
    store: &Store,
    issuer: &str,
    spec: &str,
) -> Result<(SignerRow, IssuingCa, IssuerId)> {
    let passphrase = ca_passphrase()?;
    signers::adopt_legacy(data, store, passphrase.as_ref())?;
    let row = signers::resolve(store, issuer, spec).map_err(refused)?;
    let Some(id) = row.issuer else {
        bail!(InvalidInput(format!(
            "signer {} has no certificate yet (its CSR waits for the external root)",
            row.id
        )));
    };
    let ca = IssuingCa::load_from(&data.join(&row.key_dir), passphrase.as_ref())
        .with_context(|| format!("loading signer {}", row.id))?;
    Ok((row, ca, id))
}
