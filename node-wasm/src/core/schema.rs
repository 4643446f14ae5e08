//! Versioned body schemas with defaults and validation, at parity with the
//! original's `task_v1`, `task_v2`, `proposal_v1` and `/schemas/validate`.
//!
//! A local caller (the JS API) hands in JSON; [`validate`] checks field types
//! and limits, fills defaults and reports every problem at once.
//! [`new_task_from_json`] then builds the typed op body, which the fold checks
//! again with the same rule (`tasks::validate_new_task`) when it folds the op —
//! the typed wire format is what peers exchange, so a peer's op is validated
//! by exactly the rule a local caller's is.
//!
//! Field types, as in the original: `string` (min/max length in characters),
//! `integer` (min/max; booleans and fractions refused), `list[string]`,
//! `object`, `enum`. Missing required fields are errors; `null` is accepted
//! where the default is `null`; extra fields are allowed.

use crate::core::op::{AuctionTerms, Funding, NewTask, TaskSchema};
use crate::core::reject::Reject;
use crate::core::tasks::validate_new_task;
use serde_json::{Map, Value, json};
use std::fmt;

/// A field's type and limits.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldType {
    Str { min: usize, max: usize },
    Int { min: Option<i64>, max: Option<i64> },
    ListStr,
    Object,
    Enum(&'static [&'static str]),
}

/// One field of a schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    pub required: bool,
    /// Filled in when the field is missing (`None`: no default).
    pub default: Option<Value>,
}

/// A named, versioned schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub name: &'static str,
    pub fields: Vec<Field>,
}

/// One validation problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for SchemaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

const TASK_V1_STATUS: &[&str] = &["open", "claimed", "in_progress", "completed"];
const TASK_V2_STATUS: &[&str] = &["open", "auction_open", "auction_closed", "claimed", "in_progress", "completed"];
const PROPOSAL_TYPES: &[&str] = &["generic", "config_change", "network_operation", "command", "code_upgrade"];

fn field(name: &'static str, ty: FieldType, required: bool, default: Option<Value>) -> Field {
    Field { name, ty, required, default }
}

fn title() -> Field {
    field("title", FieldType::Str { min: 1, max: 200 }, true, None)
}

fn description() -> Field {
    field("description", FieldType::Str { min: 0, max: 16 * 1024 }, false, Some(json!("")))
}

fn list(name: &'static str) -> Field {
    field(name, FieldType::ListStr, false, Some(json!([])))
}

/// The built-in schemas by name.
pub fn schema(name: &str) -> Option<Schema> {
    Some(match name {
        "task_v1" => Schema {
            name: "task_v1",
            fields: vec![
                title(),
                field("reward", FieldType::Int { min: Some(0), max: None }, false, Some(json!(0))),
                list("tags"),
                description(),
                field("assignee", FieldType::Str { min: 64, max: 64 }, false, Some(Value::Null)),
                field("status", FieldType::Enum(TASK_V1_STATUS), false, Some(json!("open"))),
                list("required_tools"),
            ],
        },
        "task_v2" => Schema {
            name: "task_v2",
            fields: vec![
                title(),
                list("tags"),
                description(),
                field("assignee", FieldType::Str { min: 64, max: 64 }, false, Some(Value::Null)),
                field("status", FieldType::Enum(TASK_V2_STATUS), false, Some(json!("open"))),
                list("required_tools"),
                field("auction", FieldType::Object, false, Some(Value::Null)),
            ],
        },
        "proposal_v1" => Schema {
            name: "proposal_v1",
            fields: vec![
                title(),
                description(),
                field("proposal_type", FieldType::Enum(PROPOSAL_TYPES), true, None),
                field("params", FieldType::Object, false, Some(json!({}))),
                field("command", FieldType::Object, false, Some(json!({}))),
                list("tags"),
            ],
        },
        _ => return None,
    })
}

/// Names of all built-in schemas.
pub const SCHEMAS: &[&str] = &["task_v1", "task_v2", "proposal_v1"];

fn check(ty: &FieldType, v: &Value) -> Result<(), String> {
    match ty {
        FieldType::Str { min, max } => {
            let s = v.as_str().ok_or("must be a string")?;
            let n = s.chars().count();
            if n < *min || n > *max {
                return Err(format!("must be {min} to {max} characters, it has {n}"));
            }
        }
        FieldType::Int { min, max } => {
            // serde_json keeps booleans and fractions apart from integers.
            let n = v.as_i64().ok_or("must be an integer")?;
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                return Err(format!(
                    "must be between {} and {}",
                    min.map_or("-inf".into(), |m| m.to_string()),
                    max.map_or("+inf".into(), |m| m.to_string())
                ));
            }
        }
        FieldType::ListStr => {
            let items = v.as_array().ok_or("must be a list of strings")?;
            if items.iter().any(|i| !i.is_string()) {
                return Err("must be a list of strings".into());
            }
        }
        FieldType::Object => {
            if !v.is_object() {
                return Err("must be an object".into());
            }
        }
        FieldType::Enum(values) => {
            let s = v.as_str().ok_or("must be a string")?;
            if !values.contains(&s) {
                return Err(format!("must be one of {}", values.join(", ")));
            }
        }
    }
    Ok(())
}

/// Validates `data` (a JSON object) against `schema` and returns it with
/// defaults filled in, or every problem found.
pub fn validate(schema: &Schema, data: &Value) -> Result<Value, Vec<SchemaError>> {
    let Some(obj) = data.as_object() else {
        return Err(vec![SchemaError { field: String::new(), message: "must be an object".into() }]);
    };
    let mut out: Map<String, Value> = obj.clone();
    let mut errors = Vec::new();
    for f in &schema.fields {
        match obj.get(f.name) {
            None => match (&f.default, f.required) {
                (_, true) => errors.push(SchemaError { field: f.name.into(), message: "is required".into() }),
                (Some(d), false) => {
                    out.insert(f.name.into(), d.clone());
                }
                (None, false) => {}
            },
            Some(Value::Null) if f.default == Some(Value::Null) => {}
            Some(v) => {
                if let Err(message) = check(&f.ty, v) {
                    errors.push(SchemaError { field: f.name.into(), message });
                }
            }
        }
    }
    if errors.is_empty() { Ok(Value::Object(out)) } else { Err(errors) }
}

/// Why a task could not be built from JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskInputError {
    UnknownSchema(String),
    Invalid(Vec<SchemaError>),
    Rule(Reject),
}

impl fmt::Display for TaskInputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskInputError::UnknownSchema(s) => write!(f, "unknown schema {s:?}"),
            TaskInputError::Invalid(errs) => {
                let parts: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
                write!(f, "invalid task: {}", parts.join("; "))
            }
            TaskInputError::Rule(r) => write!(f, "{r}"),
        }
    }
}

impl std::error::Error for TaskInputError {}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

fn uint(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// Builds a task-creation body from a local caller's JSON (the original's
/// `CreateTaskPayload`): `schema_name` (default `task_v2`), `title`,
/// `reward` (default 0), `tags`, `description`, `required_tools`,
/// `funded_by` (`"user"` default, or `"treasury"`), and for an auction
/// `enable_auction: true`, `max_reward` and `auction_deadline_ms` (op time).
/// Runs the schema, then the fold's own rule at `now_ms`.
pub fn new_task_from_json(data: &Value, now_ms: u64) -> Result<NewTask, TaskInputError> {
    let name = data.get("schema_name").and_then(Value::as_str).unwrap_or("task_v2");
    let sch = schema(name).ok_or_else(|| TaskInputError::UnknownSchema(name.to_owned()))?;
    let v = validate(&sch, data).map_err(TaskInputError::Invalid)?;
    let schema = if name == "task_v1" { TaskSchema::TaskV1 } else { TaskSchema::TaskV2 };
    let bad = |field: &str, message: &str| {
        TaskInputError::Invalid(vec![SchemaError { field: field.into(), message: message.into() }])
    };
    let reward = match v.get("reward") {
        None | Some(Value::Null) => 0,
        Some(r) => r.as_u64().ok_or_else(|| bad("reward", "must be an integer >= 0"))?,
    };
    let funding = match v.get("funded_by").and_then(Value::as_str).unwrap_or("user") {
        "user" => Funding::Creator,
        "treasury" => Funding::Treasury,
        _ => return Err(bad("funded_by", "must be user or treasury")),
    };
    let auction = if v.get("enable_auction").and_then(Value::as_bool) == Some(true) {
        Some(AuctionTerms {
            max_reward: uint(&v, "max_reward").ok_or_else(|| bad("max_reward", "must be > 0"))?,
            deadline_ms: uint(&v, "auction_deadline_ms")
                .ok_or_else(|| bad("auction_deadline_ms", "is required for an auction"))?,
        })
    } else {
        None
    };
    let task = NewTask {
        schema,
        title: v.get("title").and_then(Value::as_str).unwrap_or("").to_owned(),
        description: v.get("description").and_then(Value::as_str).unwrap_or("").to_owned(),
        reward,
        tags: strings(&v, "tags"),
        required_tools: strings(&v, "required_tools"),
        funding,
        auction,
    };
    validate_new_task(&task, now_ms).map_err(TaskInputError::Rule)?;
    Ok(task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_task_v1_applies_defaults() {
        let s = schema("task_v1").unwrap();
        let v = validate(&s, &json!({"title": "Fix"})).unwrap();
        assert_eq!(v["reward"], json!(0));
        assert_eq!(v["tags"], json!([]));
        assert_eq!(v["description"], json!(""));
        assert_eq!(v["status"], json!("open"));
        assert_eq!(v["assignee"], Value::Null);
        assert_eq!(v["required_tools"], json!([]));
    }

    #[test]
    fn schema_validation_reports_every_problem() {
        let s = schema("task_v1").unwrap();
        let errs = validate(&s, &json!({"reward": true, "tags": [1], "status": "done", "extra": 1})).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["title", "reward", "tags", "status"]);
        let errs = validate(&s, &json!({"title": "", "reward": -1})).unwrap_err();
        assert_eq!(errs.len(), 2);
        let errs = validate(&s, &json!({"title": "x".repeat(201), "reward": 1.5})).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(validate(&s, &json!([1])).is_err());
    }

    #[test]
    fn schema_proposal_v1_requires_type_and_accepts_code_upgrade() {
        let s = schema("proposal_v1").unwrap();
        assert!(validate(&s, &json!({"title": "t"})).is_err());
        let v = validate(&s, &json!({"title": "t", "proposal_type": "code_upgrade"})).unwrap();
        assert_eq!(v["params"], json!({}));
        assert!(validate(&s, &json!({"title": "t", "proposal_type": "coup"})).is_err());
    }

    #[test]
    fn schema_task_v2_has_no_reward_but_an_auction_object() {
        let s = schema("task_v2").unwrap();
        assert!(!s.fields.iter().any(|f| f.name == "reward"));
        assert!(validate(&s, &json!({"title": "t", "auction": 3})).is_err());
        assert!(validate(&s, &json!({"title": "t", "status": "auction_open"})).is_ok());
        assert!(schema("task_v9").is_none());
    }

    #[test]
    fn new_task_from_json_builds_the_op_body_and_keeps_required_tools() {
        let t = new_task_from_json(
            &json!({"schema_name": "task_v1", "title": "Fix", "reward": 10,
                    "tags": ["rust"], "required_tools": ["gh"]}),
            0,
        )
        .unwrap();
        assert_eq!(t.reward, 10);
        assert_eq!(t.schema, TaskSchema::TaskV1);
        // The original dropped required_tools at creation; we keep them.
        assert_eq!(t.required_tools, vec!["gh".to_string()]);
        let a = new_task_from_json(
            &json!({"title": "A", "enable_auction": true, "max_reward": 50,
                    "auction_deadline_ms": 1000}),
            10,
        )
        .unwrap();
        assert_eq!(a.auction.unwrap().max_reward, 50);
        assert!(matches!(
            new_task_from_json(
                &json!({"title": "A", "enable_auction": true, "max_reward": 50,
                                        "auction_deadline_ms": 5}),
                10
            ),
            Err(TaskInputError::Rule(Reject::BadDeadline))
        ));
        assert!(matches!(
            new_task_from_json(&json!({"title": "A", "tags": ["x", "x"]}), 0),
            Err(TaskInputError::Rule(Reject::DuplicateTag(_)))
        ));
        assert!(matches!(
            new_task_from_json(&json!({"schema_name": "nope", "title": "A"}), 0),
            Err(TaskInputError::UnknownSchema(_))
        ));
    }
}
