//! Roles and permissions: what each kind of token holder may do (the table is in the parent
//! module's doc and in `docs/api.md`).

use serde::{Deserialize, Serialize};

/// What a token holder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads incidents and devices (wall screens, other departments).
    Viewer,
    /// Command-centre operator: reads, runs the incident lifecycle, silences, dispatches.
    Operator,
    /// Field crew: sees and answers its own dispatches only (token name = crew id).
    Crew,
    /// Detection engineer: reads, pipelines and replay.
    Engineer,
    /// Everything, including token administration.
    Admin,
}

/// What a request wants to do, for role checks (see the table in the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read incidents, their history, devices and the live views.
    Read,
    /// Incident lifecycle (ack, on scene, resolve, close, reopen, merge), silences, dispatch.
    Operate,
    /// Work on dispatches: crews their own ([`Principal::crew_id`]), operators any.
    CrewDispatch,
    /// Pipelines and replay.
    Engineer,
    /// Token administration.
    Admin,
    /// Read the API description.
    Describe,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Viewer,
        Role::Operator,
        Role::Crew,
        Role::Engineer,
        Role::Admin,
    ];

    /// The name used in token files.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Crew => "crew",
            Role::Engineer => "engineer",
            Role::Admin => "admin",
        }
    }

    /// Parses a token-file role name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may do `permission`.
    pub fn allows(self, permission: Permission) -> bool {
        use Role::*;
        match permission {
            Permission::Read => matches!(self, Viewer | Operator | Engineer | Admin),
            Permission::Operate => matches!(self, Operator | Admin),
            Permission::CrewDispatch => matches!(self, Crew | Operator | Admin),
            Permission::Engineer => matches!(self, Engineer | Admin),
            Permission::Admin => self == Admin,
            Permission::Describe => true,
        }
    }
}
