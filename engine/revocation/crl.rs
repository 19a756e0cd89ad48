//! X.509 v2 CRLs streamed from the store (being written).
