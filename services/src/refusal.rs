//! A refusal as a service's rules give it: its class, code, message and field. It
//! goes back in the event's response (a business outcome, not a gRPC error), and
//! the orchestrator adds the step and the service that make it the shopper's
//! `domain::Refusal`. One concept, one name: a refusal.

use domain::{FieldError, RefusalClass};
use proto::v1 as pb;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleRefusal {
    pub class: RefusalClass,
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl RuleRefusal {
    pub fn new(class: RefusalClass, code: &str, message: impl Into<String>, field: Option<&str>) -> Self {
        Self { class, code: code.to_owned(), message: message.into(), field: field.map(str::to_owned) }
    }

    pub fn fraud(code: &str, message: impl Into<String>, field: Option<&str>) -> Self {
        Self::new(RefusalClass::Fraud, code, message, field)
    }

    pub fn to_proto(&self) -> pb::Refusal {
        pb::Refusal {
            code: self.code.clone(),
            message: self.message.clone(),
            field: self.field.clone().unwrap_or_default(),
            class: pb::RefusalClass::from(self.class).into(),
        }
    }
}

impl From<FieldError> for RuleRefusal {
    fn from(error: FieldError) -> Self {
        Self { class: RefusalClass::Invalid, code: error.code, message: error.message, field: Some(error.field) }
    }
}
