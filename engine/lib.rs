//! certmill: a batch X.509 certificate issuance engine for IoT device provisioning.
//!
//! A profile (seed 001's `rawProfileConfig`) is compiled once into a DER template; a batch of
//! devices (CSV rows) is issued by rayon workers (key, template, signature, PKCS#12) and
//! streamed by one writer into a ZIP with a manifest, while an embedded SQLite store records
//! every certificate. See `DESIGN.md` for the map and `docs/ISSUANCE.md` for the steps.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod asn1;
pub mod auth;
pub mod batch;
pub mod bench;
pub mod ca;
pub mod cli;
pub mod csr;
pub mod filter;
#[doc(hidden)]
pub mod fuzz_check;
pub mod generator;
pub mod keys;
pub mod mail;
pub mod objects;
pub mod pkcs12;
pub mod profile;
pub mod revocation;
pub mod server;
pub mod signers;
pub mod store;
pub mod template;

// The common entry points.
pub use batch::{issue_csv, BatchError, BatchOptions, BatchReport};
pub use ca::IssuingCa;
pub use profile::{CompileOptions, Profile};
