//! OCSP requests and responses (being written).
