//! Parsing and validation of `lifecyclePolicyText`.
//!
//! The document is read as untyped JSON and walked by hand, so that every refusal carries the
//! message ECR gives. ECR checks the document against a JSON schema first (its messages are
//! those of a JSON-schema validator: "object has missing required properties", "instance value
//! (..) not found in enum", ...), then applies the cross-field rules of the user guide, with
//! messages such as "Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED.".

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::pattern::MAX_WILDCARDS;
use super::{Count, LifecycleError, LifecyclePolicy, Rule, Selection, TagStatus};

type Result<T> = std::result::Result<T, LifecycleError>;

const POLICY_KEYS: &[&str] = &["rules"];
const RULE_KEYS: &[&str] = &["rulePriority", "description", "selection", "action"];
const RULE_REQUIRED: &[&str] = &["rulePriority", "selection", "action"];
const SELECTION_KEYS: &[&str] =
    &["tagStatus", "tagPrefixList", "tagPatternList", "storageClass", "countType", "countUnit", "countNumber"];
const SELECTION_REQUIRED: &[&str] = &["tagStatus", "countType", "countNumber"];
const ACTION_KEYS: &[&str] = &["type", "targetStorageClass"];
const ACTION_REQUIRED: &[&str] = &["type"];

const TAG_STATUSES: &[&str] = &["any", "tagged", "untagged"];
const COUNT_TYPES: &[&str] = &["imageCountMoreThan", "sinceImagePulled", "sinceImagePushed", "sinceImageTransitioned"];
const COUNT_UNITS: &[&str] = &["days"];
const ACTION_TYPES: &[&str] = &["expire", "transition"];
const STORAGE_CLASSES: &[&str] = &["archive", "standard"];

pub(super) fn parse(text: &str) -> Result<LifecyclePolicy> {
    let Ok(Value::Object(doc)) = serde_json::from_str::<Value>(text) else {
        return Err(LifecycleError::new("Could not map policyString into LifecyclePolicy."));
    };
    check_keys(&doc, POLICY_KEYS, &["rules"])?;
    let rules = expect_array(field(&doc, "rules"))?;
    if rules.is_empty() {
        return Err(LifecycleError::new(
            "array is too short: must have at least 1 elements but instance has 0 elements",
        ));
    }
    let mut parsed = rules.iter().map(rule).collect::<Result<Vec<Rule>>>()?;
    parsed.sort_by_key(|r| r.priority);
    check_rule_set(&parsed)?;
    Ok(LifecyclePolicy { rules: parsed })
}

fn rule(value: &Value) -> Result<Rule> {
    let obj = expect_object(value)?;
    check_keys(obj, RULE_KEYS, RULE_REQUIRED)?;
    let priority = positive_u32(field(obj, "rulePriority"))?;
    let description = obj.get("description").map(|d| expect_string(d).map(str::to_owned)).transpose()?;
    action(field(obj, "action"))?;
    let selection = selection(field(obj, "selection"))?;
    Ok(Rule { priority, description, selection })
}

/// Checks the action; `expire` is the only one there is to represent.
fn action(value: &Value) -> Result<()> {
    let obj = expect_object(value)?;
    check_keys(obj, ACTION_KEYS, ACTION_REQUIRED)?;
    match enum_value(field(obj, "type"), ACTION_TYPES)? {
        "expire" => {}
        _ => {
            return Err(LifecycleError::new(
                "action type 'transition' is not supported: this registry has no archive storage \
                 class; the only supported action type is 'expire'.",
            ));
        }
    }
    if obj.contains_key("targetStorageClass") {
        return Err(LifecycleError::new(
            "targetStorageClass is only allowed with action type 'transition', which is not \
             supported.",
        ));
    }
    Ok(())
}

fn selection(value: &Value) -> Result<Selection> {
    let obj = expect_object(value)?;
    check_keys(obj, SELECTION_KEYS, SELECTION_REQUIRED)?;

    let tag_status = match enum_value(field(obj, "tagStatus"), TAG_STATUSES)? {
        "tagged" => TagStatus::Tagged,
        "untagged" => TagStatus::Untagged,
        _ => TagStatus::Any,
    };
    let tag_prefixes = obj.get("tagPrefixList").map(string_list).transpose()?;
    let tag_patterns = obj.get("tagPatternList").map(string_list).transpose()?;
    if let Some(storage_class) = obj.get("storageClass")
        && enum_value(storage_class, STORAGE_CLASSES)? == "archive"
    {
        return Err(LifecycleError::new(
            "storageClass 'archive' is not supported: this registry has no archive storage \
             class; omit storageClass or use 'standard'.",
        ));
    }
    let count_type = enum_value(field(obj, "countType"), COUNT_TYPES)?;
    let count_unit = obj.get("countUnit").map(|u| enum_value(u, COUNT_UNITS)).transpose()?;
    let count_number = positive_u32(field(obj, "countNumber"))?;

    match tag_status {
        TagStatus::Tagged => {
            if tag_prefixes.is_none() && tag_patterns.is_none() {
                return Err(LifecycleError::new("Must specify tagPrefixList or tagPatternList when tagStatus=TAGGED."));
            }
            if tag_prefixes.is_some() && tag_patterns.is_some() {
                return Err(LifecycleError::new(
                    "Cannot specify both tagPrefixList and tagPatternList in the same rule.",
                ));
            }
        }
        TagStatus::Untagged | TagStatus::Any => {
            if tag_prefixes.is_some() || tag_patterns.is_some() {
                let status = if tag_status == TagStatus::Untagged { "UNTAGGED" } else { "ANY" };
                return Err(LifecycleError::new(format!(
                    "tagPrefixList and tagPatternList are only allowed when tagStatus=TAGGED, \
                     not when tagStatus={status}."
                )));
            }
        }
    }
    if let Some(pattern) = tag_patterns.iter().flatten().find(|p| p.matches('*').count() > MAX_WILDCARDS) {
        return Err(LifecycleError::new(format!(
            "tagPatternList entry \"{pattern}\" has {} wildcards (*); at most {MAX_WILDCARDS} are \
             allowed per pattern.",
            pattern.matches('*').count()
        )));
    }

    let count = match count_type {
        "imageCountMoreThan" => {
            if count_unit.is_some() {
                return Err(LifecycleError::new(
                    "countUnit is only allowed when countType is sinceImagePushed or \
                     sinceImagePulled, not imageCountMoreThan.",
                ));
            }
            Count::MoreThan(count_number)
        }
        "sinceImagePushed" | "sinceImagePulled" => {
            if count_unit.is_none() {
                return Err(LifecycleError::new(format!(
                    "countUnit is required when countType is {count_type}; its only value is \
                     \"days\"."
                )));
            }
            if count_type == "sinceImagePushed" {
                Count::SincePushedDays(count_number)
            } else {
                Count::SincePulledDays(count_number)
            }
        }
        _ => {
            return Err(LifecycleError::new(
                "countType 'sinceImageTransitioned' is not supported: this registry has no \
                 archive storage class.",
            ));
        }
    };

    Ok(Selection {
        tag_status,
        tag_prefixes: tag_prefixes.unwrap_or_default(),
        tag_patterns: tag_patterns.unwrap_or_default(),
        count,
    })
}

/// The rules that concern the rule set as a whole. `rules` is sorted by priority.
fn check_rule_set(rules: &[Rule]) -> Result<()> {
    if let Some(pair) = rules.windows(2).find(|w| w[0].priority == w[1].priority) {
        return Err(LifecycleError::new(format!(
            "rulePriority must be unique: {} is used by more than one rule.",
            pair[0].priority
        )));
    }
    let untagged = rules.iter().filter(|r| r.selection.tag_status == TagStatus::Untagged).count();
    if untagged > 1 {
        return Err(LifecycleError::new("Only one rule can select Untagged images."));
    }
    // ECR's wording: "lowest priority" is the highest rulePriority number, applied last.
    let last = rules.len() - 1;
    if rules[..last].iter().any(|r| r.selection.tag_status == TagStatus::Any) {
        return Err(LifecycleError::new("Rule for tagStatus=ANY must have the lowest priority."));
    }
    Ok(())
}

/// Refuses unknown keys first, then missing required ones, each listed in sorted order as a
/// JSON array, as ECR's schema validator does.
fn check_keys(obj: &Map<String, Value>, allowed: &[&str], required: &[&str]) -> Result<()> {
    let unknown: BTreeSet<&str> = obj.keys().map(String::as_str).filter(|k| !allowed.contains(k)).collect();
    if !unknown.is_empty() {
        return Err(LifecycleError::new(format!(
            "object instance has properties which are not allowed by the schema: ({})",
            json_list(unknown)
        )));
    }
    let missing: BTreeSet<&str> = required.iter().copied().filter(|k| !obj.contains_key(*k)).collect();
    if !missing.is_empty() {
        return Err(LifecycleError::new(format!("object has missing required properties ({})", json_list(missing))));
    }
    Ok(())
}

/// A field whose presence [`check_keys`] has established; `null` if it is absent after all.
fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a Value {
    obj.get(key).unwrap_or(&Value::Null)
}

fn json_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<&str> = items.into_iter().collect();
    serde_json::to_string(&items).unwrap_or_default()
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn wrong_type(value: &Value, allowed: &str) -> LifecycleError {
    LifecycleError::new(format!(
        "instance type ({}) does not match any allowed primitive type (allowed: [\"{allowed}\"])",
        type_name(value)
    ))
}

fn expect_object(value: &Value) -> Result<&Map<String, Value>> {
    value.as_object().ok_or_else(|| wrong_type(value, "object"))
}

fn expect_array(value: &Value) -> Result<&Vec<Value>> {
    value.as_array().ok_or_else(|| wrong_type(value, "array"))
}

fn expect_string(value: &Value) -> Result<&str> {
    value.as_str().ok_or_else(|| wrong_type(value, "string"))
}

fn enum_value<'a>(value: &'a Value, allowed: &[&str]) -> Result<&'a str> {
    let s = expect_string(value)?;
    if allowed.contains(&s) {
        Ok(s)
    } else {
        Err(LifecycleError::new(format!(
            "instance value ({}) not found in enum (possible values: {})",
            Value::from(s),
            json_list(allowed.iter().copied())
        )))
    }
}

/// An integer from 1 to `u32::MAX` (`rulePriority`, `countNumber`).
fn positive_u32(value: &Value) -> Result<u32> {
    let Value::Number(n) = value else {
        return Err(wrong_type(value, "integer"));
    };
    if let Some(v) = n.as_u64() {
        return match u32::try_from(v) {
            Ok(0) => Err(below_minimum(n)),
            Ok(v) => Ok(v),
            Err(_) => Err(LifecycleError::new(format!(
                "numeric instance is greater than the required maximum (maximum: {}, found: {n})",
                u32::MAX
            ))),
        };
    }
    if n.is_i64() {
        return Err(below_minimum(n));
    }
    Err(wrong_type(value, "integer"))
}

fn below_minimum(n: &serde_json::Number) -> LifecycleError {
    LifecycleError::new(format!("numeric instance is lower than the required minimum (minimum: 1, found: {n})"))
}

/// A non-empty list of strings (`tagPrefixList`, `tagPatternList`). Duplicates are kept: they
/// change nothing, since every entry must match some tag.
fn string_list(value: &Value) -> Result<Vec<String>> {
    let items = expect_array(value)?;
    if items.is_empty() {
        return Err(LifecycleError::new(
            "array is too short: must have at least 1 elements but instance has 0 elements",
        ));
    }
    items.iter().map(|v| expect_string(v).map(str::to_owned)).collect()
}
