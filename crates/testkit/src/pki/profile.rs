//! Certificate profiles: the subject, extensions and validity of each kind of certificate.
//!
//! Subjects follow X-Road's FI certificate profile, because that is the profile X-Road peers
//! (and Trembita's X-Road 6 core) know how to read a member or server identity from.

use std::net::{IpAddr, Ipv4Addr};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue,
    ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose, SanType,
};
use time::macros::datetime;
use time::OffsetDateTime;

use super::{PkiError, ServerSpec};

/// Fixed validity, so that checked-in test certificates neither expire nor change when unrelated
/// code is rebuilt: 2024-01-01 for 20 years.
pub const NOT_BEFORE: OffsetDateTime = datetime!(2024-01-01 0:00 UTC);
pub const NOT_AFTER: OffsetDateTime = datetime!(2044-01-01 0:00 UTC);

/// OID of the X.520 `serialNumber` attribute (2.5.4.5), which rcgen has no name for.
const SERIAL_NUMBER: &[u64] = &[2, 5, 4, 5];

pub(crate) const CA_ORGANIZATION: &str = "brama test PKI";
pub(crate) const COUNTRY: &str = "UA";

pub fn ca(name: &str) -> CertificateParams {
    let mut p = base();
    p.distinguished_name = dn(&[
        (DnType::CountryName, printable(COUNTRY)),
        (DnType::OrganizationName, CA_ORGANIZATION.into()),
        (DnType::CommonName, name.into()),
    ]);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

/// X-Road authentication certificate (FI profile): `serialNumber` = `instance/serverCode/ownerClass`,
/// `CN` = owner code. Also a TLS certificate in both directions between security servers.
pub fn auth(instance: &str, server: &ServerSpec) -> Result<CertificateParams, PkiError> {
    let mut p = end_entity();
    p.distinguished_name = dn(&[
        (DnType::CountryName, printable(COUNTRY)),
        (DnType::OrganizationName, server.owner_name.as_str().into()),
        (
            DnType::CustomDnType(SERIAL_NUMBER.to_vec()),
            printable(&format!(
                "{instance}/{}/{}",
                server.server_code, server.owner_class
            )),
        ),
        (DnType::CommonName, server.owner_code.as_str().into()),
    ]);
    p.subject_alt_names = sans(&[
        &server.server_code,
        &server.address,
        "localhost",
        &Ipv4Addr::LOCALHOST.to_string(),
    ])?;
    // keyAgreement alongside keyEncipherment keeps strict TLS stacks happy with ECDHE suites.
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyAgreement,
    ];
    p.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    Ok(p)
}

/// The HTTPS certificate a security server shows to information systems.
pub fn internal_tls(server: &ServerSpec) -> Result<CertificateParams, PkiError> {
    let mut p = end_entity();
    p.distinguished_name = dn(&[(DnType::CommonName, server.server_code.as_str().into())]);
    p.subject_alt_names = sans(&[
        "localhost",
        &Ipv4Addr::LOCALHOST.to_string(),
        &server.address,
    ])?;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    Ok(p)
}

/// Member signing certificate (FI profile): `serialNumber` = `instance/serverCode/memberClass`,
/// `CN` = member code. X-Road readers take the instance and class from the first and last
/// `serialNumber` parts and the code from `CN`; the middle part names the security server the
/// signing key lives on.
pub fn sign(
    instance: &str,
    server_code: &str,
    class: &str,
    code: &str,
    name: &str,
) -> CertificateParams {
    let mut p = end_entity();
    p.distinguished_name = dn(&[
        (DnType::CountryName, printable(COUNTRY)),
        (DnType::OrganizationName, name.into()),
        (
            DnType::CustomDnType(SERIAL_NUMBER.to_vec()),
            printable(&format!("{instance}/{server_code}/{class}")),
        ),
        (DnType::CommonName, code.into()),
    ]);
    // Signing keys only make signatures that are meant to be attributable to the member.
    p.key_usages = vec![KeyUsagePurpose::ContentCommitment];
    p
}

/// The CA's OCSP responder: issued by the CA with id-kp-OCSPSigning, which is what authorises
/// it to answer for the CA's certificates (RFC 6960 §4.2.2.2; X-Road also accepts it so).
pub fn ocsp_responder(ca_name: &str) -> CertificateParams {
    let mut p = end_entity();
    p.distinguished_name = dn(&[
        (DnType::CountryName, printable(COUNTRY)),
        (DnType::OrganizationName, CA_ORGANIZATION.into()),
        (
            DnType::CommonName,
            format!("{ca_name} OCSP Responder").into(),
        ),
    ]);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    p
}

/// The CA's time-stamping authority: issued by the CA with the extended key usage
/// id-kp-timeStamping, critical and alone, as RFC 3161 §2.3 requires (openssl's `ts -verify`
/// checks it).
pub fn tsa(ca_name: &str) -> CertificateParams {
    let mut p = end_entity();
    p.distinguished_name = dn(&[
        (DnType::CountryName, printable(COUNTRY)),
        (DnType::OrganizationName, CA_ORGANIZATION.into()),
        (DnType::CommonName, format!("{ca_name} TSA").into()),
    ]);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    // SEQUENCE { OID 1.3.6.1.5.5.7.3.8 }
    let eku = [
        0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08,
    ];
    let mut ext = rcgen::CustomExtension::from_oid_content(&[2, 5, 29, 37], eku.to_vec());
    ext.set_criticality(true);
    p.custom_extensions.push(ext);
    p
}

/// TLS client certificate of an information system (pinned by hash for SSLAUTH).
pub fn client(name: &str) -> CertificateParams {
    let mut p = end_entity();
    p.distinguished_name = dn(&[(DnType::CommonName, name.into())]);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p
}

fn base() -> CertificateParams {
    let mut p = CertificateParams::default();
    p.not_before = NOT_BEFORE;
    p.not_after = NOT_AFTER;
    p
}

fn end_entity() -> CertificateParams {
    let mut p = base();
    // No BasicConstraints at all: rcgen's explicit `cA FALSE` encodes a DEFAULT value, which
    // DER forbids and strict parsers (Python's `cryptography`) refuse. The authority key
    // identifier keeps chain building unambiguous when several test CAs share a name.
    p.is_ca = IsCa::NoCa;
    p.use_authority_key_identifier_extension = true;
    p
}

fn dn(entries: &[(DnType, DnValue)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (ty, value) in entries {
        // X.520 strings may not be empty: a nameless owner simply gets no O attribute.
        if matches!(value, DnValue::Utf8String(s) if s.trim().is_empty()) {
            continue;
        }
        dn.push(ty.clone(), value.clone());
    }
    dn
}

/// PrintableString where the value allows it (X.520 wants it for countryName and serialNumber),
/// UTF8String otherwise.
fn printable(s: &str) -> DnValue {
    match rcgen::PrintableString::try_from(s) {
        Ok(p) => DnValue::PrintableString(p),
        Err(_) => DnValue::Utf8String(s.to_owned()),
    }
}

/// Subject alternative names, IP addresses recognised, duplicates dropped.
fn sans(hosts: &[&str]) -> Result<Vec<SanType>, PkiError> {
    let mut out: Vec<SanType> = Vec::new();
    for host in hosts {
        let host = bare_host(host);
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName((*host).try_into().map_err(|_| {
                PkiError::InvalidSpec(format!("{host:?} is not a host name or IP address"))
            })?),
        };
        if !out.contains(&san) {
            out.push(san);
        }
    }
    Ok(out)
}

/// `address` without the brackets of a bracketed IPv6 literal (`[::1]`).
pub(crate) fn bare_host(address: &str) -> &str {
    address
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
        .unwrap_or(address)
}
