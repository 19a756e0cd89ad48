//! Integration tests: the `certmill` binary against tools we did not write (openssl, keytool,
//! Python `cryptography`, pkilint). One binary, themed modules (ripgrep's layout).

#[macro_use]
mod util;

mod access;
mod bench;
mod cli;
mod cluster;
mod console;
mod ecosystems;
mod fuzz_corpora;
mod hostile_http;
mod hsm;
mod identity;
mod input_limits;
mod interop;
mod kinds;
mod lifecycle;
mod organizations;
mod pool;
mod revocation;
mod server;
mod signers;
mod webdriver;
