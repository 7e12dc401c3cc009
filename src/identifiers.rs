//! X-Road identifiers (reference §1.2): members, subsystems, services, security servers and groups.

use std::fmt;

/// Characters X-Road allows in identifier parts (PR-MESS §2.7), besides ASCII letters and digits.
const EXTRA_ALLOWED: &[u8] = b"'()+,-.=?";

/// Whether `part` is a legal identifier part: non-empty, letters, digits and `'()+,-.=?` only.
pub fn is_valid_part(part: &str) -> bool {
    !part.is_empty()
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || EXTRA_ALLOWED.contains(&b))
}

/// A member (`subsystem == None`) or one of its subsystems.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId {
    pub instance: String,
    pub member_class: String,
    pub member_code: String,
    pub subsystem: Option<String>,
}

impl ClientId {
    pub fn member(instance: &str, class: &str, code: &str) -> Self {
        ClientId {
            instance: instance.into(),
            member_class: class.into(),
            member_code: code.into(),
            subsystem: None,
        }
    }

    pub fn subsystem(instance: &str, class: &str, code: &str, subsystem: &str) -> Self {
        ClientId {
            subsystem: Some(subsystem.into()),
            ..ClientId::member(instance, class, code)
        }
    }

    /// The member this client belongs to (itself when it is a member).
    pub fn member_id(&self) -> ClientId {
        ClientId {
            subsystem: None,
            ..self.clone()
        }
    }

    pub fn object_type(&self) -> &'static str {
        if self.subsystem.is_some() {
            "SUBSYSTEM"
        } else {
            "MEMBER"
        }
    }

    /// Parses `INSTANCE/CLASS/CODE[/SUBSYSTEM]`.
    pub fn parse_path(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [i, c, m] => Ok(ClientId::member(i, c, m)),
            [i, c, m, s] => Ok(ClientId::subsystem(i, c, m, s)),
            _ => Err(format!(
                "'{s}' is not a client identifier (INSTANCE/CLASS/CODE[/SUBSYSTEM])"
            )),
        }
        .and_then(|id| id.validated())
    }

    fn validated(self) -> Result<Self, String> {
        let mut parts = vec![&self.instance, &self.member_class, &self.member_code];
        parts.extend(self.subsystem.as_ref());
        match parts.into_iter().find(|p| !is_valid_part(p)) {
            Some(bad) => Err(format!("identifier part '{bad}' has illegal characters")),
            None => Ok(self),
        }
    }
}

/// Path form `INSTANCE/CLASS/CODE[/SUBSYSTEM]`.
impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.instance, self.member_class, self.member_code
        )?;
        if let Some(s) = &self.subsystem {
            write!(f, "/{s}")?;
        }
        Ok(())
    }
}

/// A service: the provider (member or subsystem), its code and optional version.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId {
    pub provider: ClientId,
    pub service_code: String,
    pub service_version: Option<String>,
}

impl ServiceId {
    pub fn new(provider: ClientId, code: &str, version: Option<&str>) -> Self {
        ServiceId {
            provider,
            service_code: code.into(),
            service_version: version.map(Into::into),
        }
    }

    /// Parses `INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE[/VERSION]`; the subsystem is required in this form.
    pub fn parse_path(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split('/').collect();
        let (client, code, version) = match parts.as_slice() {
            [i, c, m, sub, code] => (ClientId::subsystem(i, c, m, sub), *code, None),
            [i, c, m, sub, code, v] => (ClientId::subsystem(i, c, m, sub), *code, Some(*v)),
            _ => {
                return Err(format!(
                    "'{s}' is not a service identifier (INSTANCE/CLASS/CODE/SUBSYSTEM/SERVICE[/VERSION])"
                ))
            }
        };
        let client = client.validated()?;
        if !is_valid_part(code) || version.is_some_and(|v| !is_valid_part(v)) {
            return Err(format!(
                "service code or version in '{s}' has illegal characters"
            ));
        }
        Ok(ServiceId::new(client, code, version))
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.service_code)?;
        if let Some(v) = &self.service_version {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A security server: its owner member and server code.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecurityServerId {
    pub owner: ClientId,
    pub server_code: String,
}

impl SecurityServerId {
    /// Parses `INSTANCE/CLASS/CODE/SERVERCODE`.
    pub fn parse_path(s: &str) -> Result<Self, String> {
        match s.rsplit_once('/') {
            Some((owner, code)) if is_valid_part(code) => {
                let owner = ClientId::parse_path(owner)?;
                if owner.subsystem.is_some() {
                    return Err(format!("'{s}' has too many parts for a security server"));
                }
                Ok(SecurityServerId {
                    owner,
                    server_code: code.into(),
                })
            }
            _ => Err(format!(
                "'{s}' is not a security server identifier (INSTANCE/CLASS/CODE/SERVER)"
            )),
        }
    }
}

impl fmt::Display for SecurityServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.owner, self.server_code)
    }
}

/// A global group of the global configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GlobalGroupId {
    pub instance: String,
    pub group_code: String,
}

impl fmt::Display for GlobalGroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.instance, self.group_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_paths() {
        let c = ClientId::parse_path("SEVDEIR-TEST/GOV/00000001/DIIA").unwrap();
        assert_eq!(c.subsystem.as_deref(), Some("DIIA"));
        assert_eq!(c.to_string(), "SEVDEIR-TEST/GOV/00000001/DIIA");
        assert_eq!(c.member_id().to_string(), "SEVDEIR-TEST/GOV/00000001");
        let s = ServiceId::parse_path("SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1").unwrap();
        assert_eq!(s.service_version.as_deref(), Some("v1"));
        assert_eq!(
            s.to_string(),
            "SEVDEIR-TEST/GOV/00000002/DRACS/getBirthRecord/v1"
        );
        let ss = SecurityServerId::parse_path("SEVDEIR-TEST/GOV/00000001/ss1").unwrap();
        assert_eq!(ss.server_code, "ss1");
    }

    #[test]
    fn refuses_bad_paths() {
        assert!(ClientId::parse_path("A/B").is_err());
        assert!(ClientId::parse_path("A/B/C/D/E").is_err());
        assert!(ClientId::parse_path("A/B/C d").is_err());
        assert!(ServiceId::parse_path("A/B/C/getX").is_err());
        assert!(SecurityServerId::parse_path("A/B/C/D/E").is_err());
    }
}
