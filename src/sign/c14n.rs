//! Canonical XML (being written).
