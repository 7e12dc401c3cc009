//! X-Road identifiers (reference §1.2): members, subsystems, services, security servers and groups.

use std::fmt;

/// Characters X-Road's identifier validation refuses besides those that do not print: the
/// separators of identifiers' text and path forms. (PR-MESS §2.7 recommends only letters, digits
/// and `'()+,-.=?`, but deployed Trembita codes such as `MIA_prod` use more, so the rule is the
/// one X-Road enforces, not the recommendation.)
const SEPARATORS: &[char] = &[':', ';', '/', '\\', '%'];

/// Longest identifier part accepted (X-Road stores them in 255-character columns).
pub(crate) const MAX_PART_CHARS: usize = 255;

/// Whether `part` is a legal identifier part: 1 to 255 characters, none of them whitespace, a
/// control or format character, or one of `: ; / \ %`.
pub fn is_valid_part(part: &str) -> bool {
    !part.is_empty()
        && part.chars().count() <= MAX_PART_CHARS
        && part.chars().all(|c| {
            !c.is_whitespace()
                && !c.is_control()
                && !SEPARATORS.contains(&c)
                && !matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{ffff}')
        })
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

    #[test]
    fn parts_as_x_road_validates_them() {
        for ok in [
            "SEVDEIR-TEST",
            "GOV",
            "00000001",
            "MIA_prod",
            "v0.1",
            "Дія",
            "a'()+,-.=?",
        ] {
            assert!(is_valid_part(ok), "{ok}");
        }
        for bad in [
            "",
            "a b",
            "a\nWARN",
            "a\t",
            "a:b",
            "a;b",
            "a/b",
            "a\\b",
            "a%0A",
            "a\u{0}",
            "a\u{85}",
            "a\u{202e}",
            "a\u{200b}",
        ] {
            assert!(!is_valid_part(bad), "{}", bad.escape_debug());
        }
        assert!(is_valid_part(&"x".repeat(255)));
        assert!(!is_valid_part(&"x".repeat(256)));
    }
}
