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
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::fmt;

/// A field's type and limits.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldType {
    Str { min: usize, max: usize },
    Int { min: Option<i64>, max: Option<i64> },
    ListStr,
    Object,
    Enum(Vec<String>),
}

/// One field of a schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    pub required: bool,
    /// Filled in when the field is missing (`None`: no default).
    pub default: Option<Value>,
}

/// A named, versioned schema.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    pub name: String,
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

fn field(name: &str, ty: FieldType, required: bool, default: Option<Value>) -> Field {
    Field { name: name.to_owned(), ty, required, default }
}

fn one_of(values: &[&str]) -> FieldType {
    FieldType::Enum(values.iter().map(|v| (*v).to_owned()).collect())
}

fn title() -> Field {
    field("title", FieldType::Str { min: 1, max: 200 }, true, None)
}

fn description() -> Field {
    field("description", FieldType::Str { min: 0, max: 16 * 1024 }, false, Some(json!("")))
}

fn list(name: &str) -> Field {
    field(name, FieldType::ListStr, false, Some(json!([])))
}

/// The built-in schemas by name.
pub fn schema(name: &str) -> Option<Schema> {
    Some(match name {
        "task_v1" => Schema {
            name: "task_v1".into(),
            fields: vec![
                title(),
                field("reward", FieldType::Int { min: Some(0), max: None }, false, Some(json!(0))),
                list("tags"),
                description(),
                field("assignee", FieldType::Str { min: 64, max: 64 }, false, Some(Value::Null)),
                field("status", one_of(TASK_V1_STATUS), false, Some(json!("open"))),
                list("required_tools"),
            ],
        },
        "task_v2" => Schema {
            name: "task_v2".into(),
            fields: vec![
                title(),
                list("tags"),
                description(),
                field("assignee", FieldType::Str { min: 64, max: 64 }, false, Some(Value::Null)),
                field("status", one_of(TASK_V2_STATUS), false, Some(json!("open"))),
                list("required_tools"),
                field("auction", FieldType::Object, false, Some(Value::Null)),
            ],
        },
        "proposal_v1" => Schema {
            name: "proposal_v1".into(),
            fields: vec![
                title(),
                description(),
                field("proposal_type", one_of(PROPOSAL_TYPES), true, None),
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
            if !values.iter().any(|x| x == s) {
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
        match obj.get(&f.name) {
            None => match (&f.default, f.required) {
                (_, true) => errors.push(SchemaError { field: f.name.clone(), message: "is required".into() }),
                (Some(d), false) => {
                    out.insert(f.name.clone(), d.clone());
                }
                (None, false) => {}
            },
            Some(Value::Null) if f.default == Some(Value::Null) => {}
            Some(v) => {
                if let Err(message) = check(&f.ty, v) {
                    errors.push(SchemaError { field: f.name.clone(), message });
                }
            }
        }
    }
    if errors.is_empty() { Ok(Value::Object(out)) } else { Err(errors) }
}

/// Longest string a custom schema's `string` field accepts when it sets no
/// `max` (the op's description limit).
const DEFAULT_MAX_CHARS: usize = 16 * 1024;

/// Parses a schema installed by governance (`update_schema`): the
/// definition's `fields` is an object `{field: spec}` or a list of specs with
/// a `name`; a spec is `{"type": "string" | "integer" | "list[string]" |
/// "object" | "enum", "required"?: bool, "default"?: value, "min"?: int,
/// "max"?: int, "values"?: [string]}` (`min`/`max`: characters for strings,
/// bounds for integers; `values` for an enum). Errors are sentences naming
/// the field.
pub fn parse_definition(name: &str, definition: &str) -> Result<Schema, String> {
    let v: Value = serde_json::from_str(definition).map_err(|_| "the definition is not valid JSON".to_owned())?;
    let specs: Vec<(String, &Value)> = match v.get("fields") {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|f| {
                let n = f.get("name").and_then(Value::as_str).ok_or("every field in the list needs a \"name\"")?;
                Ok((n.to_owned(), f))
            })
            .collect::<Result<_, &str>>()?,
        _ => return Err("\"fields\" must be an object or a list".to_owned()),
    };
    let mut fields = Vec::with_capacity(specs.len());
    for (fname, spec) in specs {
        let bad = |m: &str| format!("field {fname:?}: {m}");
        let int = |k: &str| -> Result<Option<i64>, String> {
            match spec.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(x) => x.as_i64().map(Some).ok_or_else(|| bad(&format!("\"{k}\" must be an integer"))),
            }
        };
        let (min, max) = (int("min")?, int("max")?);
        let ty = match spec.get("type").and_then(Value::as_str) {
            Some("string") => {
                let to_len = |x: Option<i64>, d: usize| {
                    x.map_or(Ok(d), |n| usize::try_from(n).map_err(|_| bad("lengths must be ≥ 0")))
                };
                FieldType::Str { min: to_len(min, 0)?, max: to_len(max, DEFAULT_MAX_CHARS)? }
            }
            Some("integer") => FieldType::Int { min, max },
            Some("list[string]") => FieldType::ListStr,
            Some("object") => FieldType::Object,
            Some("enum") => {
                let values = spec
                    .get("values")
                    .and_then(Value::as_array)
                    .filter(|a| !a.is_empty() && a.iter().all(Value::is_string))
                    .ok_or_else(|| bad("an enum needs \"values\", a non-empty list of strings"))?;
                FieldType::Enum(values.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
            }
            Some(t) => return Err(bad(&format!("unknown type {t:?}"))),
            None => return Err(bad("\"type\" is missing")),
        };
        let required = spec.get("required").and_then(Value::as_bool).unwrap_or(false);
        let default = spec.get("default").cloned();
        if let Some(d) = &default
            && !(d.is_null() || check(&ty, d).is_ok())
        {
            return Err(bad("its default does not fit its own type"));
        }
        fields.push(Field { name: fname, ty, required, default });
    }
    Ok(Schema { name: name.to_owned(), fields })
}

/// One field as the JS API lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FieldInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: &'static str,
    pub required: bool,
    pub default: Option<Value>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub values: Option<Vec<String>>,
}

/// One schema as the JS API lists it (`schemas()`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SchemaInfo {
    pub name: String,
    /// 1 for the built-in ones; governance updates count up from 1.
    pub version: u64,
    /// `built_in` or `governance`.
    pub source: &'static str,
    pub fields: Vec<FieldInfo>,
    /// Why a governance definition cannot be used for validation, if so.
    pub error: Option<String>,
}

fn describe(s: &Schema) -> Vec<FieldInfo> {
    s.fields
        .iter()
        .map(|f| {
            let (ty, min, max, values) = match &f.ty {
                FieldType::Str { min, max } => ("string", Some(*min as i64), Some(*max as i64), None),
                FieldType::Int { min, max } => ("integer", *min, *max, None),
                FieldType::ListStr => ("list[string]", None, None, None),
                FieldType::Object => ("object", None, None, None),
                FieldType::Enum(v) => ("enum", None, None, Some(v.clone())),
            };
            FieldInfo { name: f.name.clone(), ty, required: f.required, default: f.default.clone(), min, max, values }
        })
        .collect()
}

/// A schema installed by governance, as `catalogue` and `lookup` take it:
/// `(name, version, definition JSON)` (from `state.gov.schemas`; taken as
/// plain values so this module does not depend on governance).
pub type Installed<'a> = (&'a str, u64, &'a str);

/// Every schema a caller can validate against: the built-in ones, and
/// those installed by governance (`update_schema`), which take precedence
/// under the same name (the newest version is the one in force).
pub fn catalogue(custom: &[Installed<'_>]) -> Vec<SchemaInfo> {
    let mut out: Vec<SchemaInfo> = Vec::new();
    for name in SCHEMAS {
        if custom.iter().any(|(n, _, _)| n == name) {
            continue;
        }
        if let Some(s) = schema(name) {
            out.push(SchemaInfo {
                name: s.name.clone(),
                version: 1,
                source: "built_in",
                fields: describe(&s),
                error: None,
            });
        }
    }
    for (name, version, definition) in custom {
        let (fields, error) = match parse_definition(name, definition) {
            Ok(s) => (describe(&s), None),
            Err(e) => (Vec::new(), Some(e)),
        };
        out.push(SchemaInfo { name: (*name).to_owned(), version: *version, source: "governance", fields, error });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The schema in force under `name` (a governance version first), or why
/// there is none usable.
pub fn lookup(name: &str, custom: &[Installed<'_>]) -> Result<Schema, String> {
    if let Some((_, version, definition)) = custom.iter().find(|(n, _, _)| *n == name) {
        return parse_definition(name, definition)
            .map_err(|e| format!("schema {name:?} (version {version}) cannot be used: {e}"));
    }
    schema(name).ok_or_else(|| format!("unknown schema {name:?}"))
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
    fn governance_schemas_parse_validate_and_list() {
        let def = r#"{"schema_name": "bug_v1", "fields": {
            "title": {"type": "string", "required": true, "min": 1, "max": 80},
            "severity": {"type": "enum", "values": ["low", "high"], "default": "low"},
            "count": {"type": "integer", "min": 0},
            "labels": {"type": "list[string]", "default": []}}}"#;
        let s = parse_definition("bug_v1", def).unwrap();
        let v = validate(&s, &json!({"title": "crash"})).unwrap();
        assert_eq!(v["severity"], json!("low"));
        assert_eq!(v["labels"], json!([]));
        let errs = validate(&s, &json!({"severity": "mid", "count": -1})).unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["count", "severity", "title"], "fields in name order, every problem at once");
        for (bad, why) in [
            (r#"{"fields": 3}"#, "must be an object or a list"),
            (r#"{"fields": {"x": {"type": "date"}}}"#, "unknown type \"date\""),
            (r#"{"fields": {"x": {"type": "enum"}}}"#, "needs \"values\""),
            (r#"{"fields": {"x": {"type": "integer", "default": "no"}}}"#, "default does not fit"),
            (r#"{"fields": [{"type": "object"}]}"#, "needs a \"name\""),
            ("nope", "not valid JSON"),
        ] {
            let e = parse_definition("x", bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let custom: Vec<Installed<'_>> = vec![("bug_v1", 2, def), ("task_v1", 1, "{}")];
        let list = catalogue(&custom);
        let names: Vec<(&str, &str)> = list.iter().map(|s| (s.name.as_str(), s.source)).collect();
        assert_eq!(
            names,
            [("bug_v1", "governance"), ("proposal_v1", "built_in"), ("task_v1", "governance"), ("task_v2", "built_in")]
        );
        assert!(list[2].error.as_deref().is_some_and(|e| e.contains("must be an object or a list")));
        assert!(lookup("task_v1", &custom).unwrap_err().contains("cannot be used"));
        assert_eq!(lookup("task_v2", &custom).unwrap().name, "task_v2");
        assert_eq!(lookup("nope", &custom).unwrap_err(), "unknown schema \"nope\"");
    }

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
