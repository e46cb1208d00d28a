//! The video access decision: one function, used by REST and signaling.
//!
//! | Organization | Therapist | Result  | Reason                |
//! |--------------|-----------|---------|-----------------------|
//! | enabled      | enabled   | allowed | `enabled`             |
//! | enabled      | disabled  | blocked | `therapist_disabled`  |
//! | disabled     | enabled   | blocked | `organization_disabled` |
//! | disabled     | disabled  | blocked | `organization_disabled` |
//!
//! Organizations that are not theraptrack-controlled use the organization level only.

use serde::Serialize;

use crate::denial::Denial;

/// Why video sessions are or are not available.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccessReason {
    /// Both levels allow video.
    Enabled,
    /// The organization switched video off (wins over the therapist level).
    OrganizationDisabled,
    /// The organization allows video but switched it off for this therapist.
    TherapistDisabled,
}

impl AccessReason {
    /// The stable code, also used as the error code when access is refused.
    pub fn code(self) -> &'static str {
        match self {
            AccessReason::Enabled => "enabled",
            AccessReason::OrganizationDisabled => "organization_disabled",
            AccessReason::TherapistDisabled => "therapist_disabled",
        }
    }

    /// The sentence shown to the user (seed wording).
    pub fn message(self) -> &'static str {
        match self {
            AccessReason::Enabled => "Video sessions are enabled.",
            AccessReason::OrganizationDisabled => ORGANIZATION_DISABLED_MESSAGE,
            AccessReason::TherapistDisabled => THERAPIST_DISABLED_MESSAGE,
        }
    }
}

/// The outcome of [`decide`], as returned by the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AccessDecision {
    /// True when video sessions may be created and joined.
    pub is_enabled: bool,
    /// Which level decided.
    pub reason: AccessReason,
    /// A sentence to show to the user.
    pub message: &'static str,
}

/// The inputs of the decision: the two switches and whether the organization is
/// theraptrack-controlled (only then does the therapist switch count).
#[derive(Debug, Clone, Copy)]
pub struct AccessInputs {
    /// Organization-level switch.
    pub organization_enabled: bool,
    /// Whether per-therapist switches apply.
    pub theraptrack_controlled: bool,
    /// Therapist-level switch.
    pub therapist_enabled: bool,
}

/// Message shown to a therapist whose own access is off (the wording practices know).
pub const THERAPIST_DISABLED_MESSAGE: &str =
    "Video sessions are not enabled for your account. Please contact your organization administrator.";
/// Message shown when the whole organization has video off.
pub const ORGANIZATION_DISABLED_MESSAGE: &str =
    "Video sessions are not enabled for your organization. Please contact your organization administrator.";

/// The one video access decision function.
pub fn decide(inputs: AccessInputs) -> AccessDecision {
    let reason = if !inputs.organization_enabled {
        AccessReason::OrganizationDisabled
    } else if inputs.theraptrack_controlled && !inputs.therapist_enabled {
        AccessReason::TherapistDisabled
    } else {
        AccessReason::Enabled
    };
    AccessDecision {
        is_enabled: reason == AccessReason::Enabled,
        reason,
        message: reason.message(),
    }
}

impl AccessDecision {
    /// Ok when enabled, otherwise the denial carrying the reason (its code is the
    /// reason's code).
    pub fn require(&self) -> Result<(), Denial> {
        if self.is_enabled {
            Ok(())
        } else {
            Err(Denial::VideoAccess(self.reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(org: bool, controlled: bool, therapist: bool) -> AccessReason {
        decide(AccessInputs {
            organization_enabled: org,
            theraptrack_controlled: controlled,
            therapist_enabled: therapist,
        })
        .reason
    }

    #[test]
    fn decision_matrix_for_theraptrack_controlled() {
        assert_eq!(run(true, true, true), AccessReason::Enabled);
        assert_eq!(run(true, true, false), AccessReason::TherapistDisabled);
        assert_eq!(run(false, true, true), AccessReason::OrganizationDisabled);
        assert_eq!(run(false, true, false), AccessReason::OrganizationDisabled);
    }

    #[test]
    fn non_controlled_uses_organization_level_only() {
        assert_eq!(run(true, false, false), AccessReason::Enabled);
        assert_eq!(run(false, false, true), AccessReason::OrganizationDisabled);
    }

    #[test]
    fn refusal_carries_reason_code() {
        let err = decide(AccessInputs {
            organization_enabled: true,
            theraptrack_controlled: true,
            therapist_enabled: false,
        })
        .require()
        .unwrap_err();
        assert_eq!(err.code(), "therapist_disabled");
        assert_eq!(err.message(), THERAPIST_DISABLED_MESSAGE);
    }
}
