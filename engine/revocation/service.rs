//! The revocation service of a data directory (being written).
