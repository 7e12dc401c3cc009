//! PKCS#11 tokens (being written).
