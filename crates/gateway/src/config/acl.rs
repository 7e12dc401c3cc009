//! Access-right subjects as written in the configuration.

use brama_xroad::identifiers::{ClientId, GlobalGroupId};

/// Who an access right is given to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A member or a subsystem; a member's right does not extend to its subsystems.
    Client(ClientId),
    GlobalGroup(GlobalGroupId),
    /// A group defined under the providing client.
    LocalGroup(String),
}

impl Subject {
    /// Parses `MEMBER:I/C/M`, `SUBSYSTEM:I/C/M/S`, `GLOBALGROUP:I/CODE` or `LOCALGROUP:CODE`.
    pub fn parse(s: &str) -> Result<Subject, String> {
        let (kind, rest) = s.split_once(':').ok_or_else(|| {
            format!("'{s}' lacks its type (MEMBER:, SUBSYSTEM:, GLOBALGROUP: or LOCALGROUP:)")
        })?;
        match kind {
            "MEMBER" | "SUBSYSTEM" => {
                let id = ClientId::parse_path(rest)?;
                if (kind == "MEMBER") != id.subsystem.is_none() {
                    return Err(format!(
                        "'{s}': the identifier does not match its type {kind}"
                    ));
                }
                Ok(Subject::Client(id))
            }
            "GLOBALGROUP" => match rest.split_once('/') {
                Some((instance, code))
                    if !instance.is_empty() && !code.is_empty() && !code.contains('/') =>
                {
                    Ok(Subject::GlobalGroup(GlobalGroupId {
                        instance: instance.into(),
                        group_code: code.into(),
                    }))
                }
                _ => Err(format!(
                    "'{s}': a global group is GLOBALGROUP:INSTANCE/CODE"
                )),
            },
            "LOCALGROUP" if !rest.is_empty() && !rest.contains('/') => {
                Ok(Subject::LocalGroup(rest.into()))
            }
            _ => Err(format!("'{s}' is not a valid access subject")),
        }
    }
}

/// One granted right: a subject may call a service code (any version) at an endpoint (SOAP
/// and the base endpoint: any method, any path).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessRight {
    pub service_code: String,
    pub subject: Subject,
    pub endpoint: crate::rest::acl::Endpoint,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_subjects() {
        assert!(
            matches!(Subject::parse("SUBSYSTEM:A/B/C/D"), Ok(Subject::Client(c)) if c.subsystem.is_some())
        );
        assert!(
            matches!(Subject::parse("MEMBER:A/B/C"), Ok(Subject::Client(c)) if c.subsystem.is_none())
        );
        assert!(Subject::parse("MEMBER:A/B/C/D").is_err());
        assert!(matches!(
            Subject::parse("GLOBALGROUP:A/g"),
            Ok(Subject::GlobalGroup(_))
        ));
        assert_eq!(
            Subject::parse("LOCALGROUP:x"),
            Ok(Subject::LocalGroup("x".into()))
        );
        assert!(Subject::parse("A/B/C").is_err());
    }
}
