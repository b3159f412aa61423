//! Label and field selectors as Kubernetes parses and matches them
//! (`k8s.io/apimachinery/pkg/labels`, `.../fields` and `metav1.LabelSelector`).
//!
//! Error texts follow Kubernetes' own so clients that show them read as they would
//! against a real API server.

use crate::names::{label_value_errors, qualified_name_errors};
use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value, json};

use crate::status::{CauseType, FieldError};

/// How a label requirement relates a key to its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    In,
    NotIn,
    /// `key=value`
    Equals,
    /// `key==value`
    DoubleEquals,
    /// `key!=value`
    NotEquals,
    /// `key`
    Exists,
    /// `!key`
    DoesNotExist,
    /// `key>N` (integer comparison)
    GreaterThan,
    /// `key<N` (integer comparison)
    LessThan,
}

/// One requirement of a label selector: a key, an operator and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub key: String,
    pub operator: Operator,
    pub values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement with Kubernetes' checks (`labels.NewRequirement`): a valid
    /// qualified key, the right number of values for the operator, valid label values,
    /// and integers for `>`/`<`.
    pub fn new(key: impl Into<String>, operator: Operator, values: Vec<String>) -> Result<Self, String> {
        let key = key.into();
        let mut errors = Vec::new();
        let detail = qualified_name_errors(&key);
        if !detail.is_empty() {
            errors.push(field_invalid("key", &key, &detail.join("; ")));
        }
        errors.extend(operator_value_errors(operator, &values));
        for (i, value) in values.iter().enumerate() {
            let detail = label_value_errors(value);
            if !detail.is_empty() {
                errors.push(field_invalid(&format!("values[{i}][{key}]"), value, &detail.join("; ")));
            }
        }
        if errors.is_empty() { Ok(Requirement { key, operator, values }) } else { Err(aggregate(errors)) }
    }

    /// Whether the labels (looked up by `lookup`) satisfy this requirement.
    pub fn matches_with<'a, F: Fn(&str) -> Option<&'a str>>(&self, lookup: F) -> bool {
        let value = lookup(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.values.iter().any(|x| x == v))
            }
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.values.iter().any(|x| x == v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => self.compare_integer(value),
        }
    }

    /// `>`/`<`: both the label and the requirement must parse as integers.
    fn compare_integer(&self, value: Option<&str>) -> bool {
        let (Some(label), [bound]) = (value.and_then(|v| v.parse::<i64>().ok()), self.values.as_slice()) else {
            return false;
        };
        let Ok(bound) = bound.parse::<i64>() else {
            return false;
        };
        if self.operator == Operator::GreaterThan { label > bound } else { label < bound }
    }
}

fn operator_value_errors(operator: Operator, values: &[String]) -> Vec<String> {
    let shown = || Value::from(values.to_vec());
    match operator {
        Operator::In | Operator::NotIn if values.is_empty() => {
            vec![field_invalid_json("values", &shown(), "for 'in', 'notin' operators, values set can't be empty")]
        }
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
            vec![field_invalid_json("values", &shown(), "exact-match compatibility requires one single value")]
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
            vec![field_invalid_json("values", &shown(), "values set must be empty for exists and does not exist")]
        }
        Operator::GreaterThan | Operator::LessThan => {
            let mut errors = Vec::new();
            if values.len() != 1 {
                errors.push(field_invalid_json(
                    "values",
                    &shown(),
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errors.push(field_invalid(
                        &format!("values[{i}]"),
                        v,
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
            errors
        }
        _ => Vec::new(),
    }
}

impl fmt::Display for Requirement {
    /// Kubernetes' canonical form: `!k`, `k`, `k=v`, `k in (a,b)` (values sorted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            Operator::DoesNotExist => return write!(f, "!{}", self.key),
            Operator::Exists => return write!(f, "{}", self.key),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
        };
        let mut values = self.values.clone();
        values.sort();
        let joined = values.join(",");
        match self.operator {
            Operator::In | Operator::NotIn => write!(f, "{}{op}({joined})", self.key),
            _ => write!(f, "{}{op}{joined}", self.key),
        }
    }
}

/// A label selector: the AND of its requirements. Empty selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// The selector that matches every set of labels.
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// Builds a selector from requirements (kept sorted by key, as Kubernetes does).
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector { requirements }
    }

    /// Parses the string syntax of `?labelSelector=` and `kubectl -l`:
    /// `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, `a>1`, `a<1`,
    /// joined by commas. The empty string selects everything.
    pub fn parse(selector: &str) -> Result<Self, String> {
        let tokens = lex(selector);
        let requirements = Parser { tokens, position: 0 }.parse()?;
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// Reads a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`)
    /// with Kubernetes' validation. `null` (an absent selector) is treated as empty,
    /// so it selects everything; callers that need "nothing" for absent selectors
    /// check for `null` themselves.
    pub fn from_object(selector: &Value) -> Result<Self, String> {
        if selector.is_null() {
            return Ok(LabelSelector::everything());
        }
        let errors = LabelSelector::validate_object(selector, "");
        if !errors.is_empty() {
            return Err(aggregate(errors.iter().map(FieldError::to_message).collect()));
        }
        let mut requirements = Vec::new();
        if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
            for (key, value) in labels {
                let value = value.as_str().unwrap_or_default().to_string();
                requirements.push(Requirement::new(key.clone(), Operator::Equals, vec![value])?);
            }
        }
        for expr in selector.get("matchExpressions").and_then(Value::as_array).into_iter().flatten() {
            requirements.push(expression_requirement(expr)?);
        }
        Ok(LabelSelector::from_requirements(requirements))
    }

    /// Validates a `metav1.LabelSelector` object as `ValidateLabelSelector` does,
    /// reporting each problem under `field` (for example `spec.selector`).
    pub fn validate_object(selector: &Value, field: &str) -> Vec<FieldError> {
        let Some(obj) = selector.as_object() else {
            if selector.is_null() {
                return Vec::new();
            }
            return vec![FieldError::type_invalid(field, selector, "object")];
        };
        let mut errors = Vec::new();
        if let Some(labels) = obj.get("matchLabels").filter(|v| !v.is_null()) {
            errors.extend(validate_match_labels(labels, &child(field, "matchLabels")));
        }
        match obj.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(exprs)) => {
                for (i, expr) in exprs.iter().enumerate() {
                    let path = format!("{}[{i}]", child(field, "matchExpressions"));
                    errors.extend(validate_expression(expr, &path));
                }
            }
            Some(other) => errors.push(FieldError::type_invalid(child(field, "matchExpressions"), other, "array")),
        }
        errors
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when the selector does not restrict anything.
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Matches an object's labels (a JSON map of strings; non-string values count as absent).
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        self.matches_with(|k| labels.get(k).and_then(Value::as_str))
    }

    /// Matches an object by its `metadata.labels`; an object without labels has none.
    pub fn matches_object(&self, obj: &Value) -> bool {
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object);
        self.matches_with(|k| labels.and_then(|l| l.get(k)).and_then(Value::as_str))
    }

    /// Matches a plain map, such as an OCM cluster's claims (name -> value).
    pub fn matches_map(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(|k| labels.get(k).map(String::as_str))
    }

    /// Matches whatever `lookup` answers for each key (absent keys answer `None`).
    pub fn matches_with<'a, F: Fn(&str) -> Option<&'a str>>(&self, lookup: F) -> bool {
        self.requirements.iter().all(|r| r.matches_with(&lookup))
    }

    /// The single value the selector demands for `key` (`key=v`, `key==v` or
    /// `key in (v)`), which lets a server narrow a list before matching.
    pub fn requires_exact_match(&self, key: &str) -> Option<&str> {
        let r = self.requirements.iter().find(|r| r.key == key)?;
        match (r.operator, r.values.as_slice()) {
            (Operator::Equals | Operator::DoubleEquals | Operator::In, [v]) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(Requirement::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

fn expression_requirement(expr: &Value) -> Result<Requirement, String> {
    let key = expr.get("key").and_then(Value::as_str).unwrap_or_default();
    let operator = match expr.get("operator").and_then(Value::as_str).unwrap_or_default() {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        other => return Err(format!("{other:?} is not a valid label selector operator")),
    };
    let values = string_list(expr.get("values"));
    Requirement::new(key, operator, values)
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|vs| vs.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default()
}

fn validate_match_labels(labels: &Value, field: &str) -> Vec<FieldError> {
    let Some(labels) = labels.as_object() else {
        return vec![FieldError::type_invalid(field, labels, "object")];
    };
    let mut errors = Vec::new();
    for (key, value) in labels {
        for msg in qualified_name_errors(key) {
            errors.push(FieldError::invalid(field, &json!(key), msg));
        }
        match value.as_str() {
            Some(v) => {
                for msg in label_value_errors(v) {
                    errors.push(FieldError::invalid(field, value, msg));
                }
            }
            None => errors.push(FieldError::type_invalid(format!("{field}.{key}"), value, "string")),
        }
    }
    errors
}

fn validate_expression(expr: &Value, field: &str) -> Vec<FieldError> {
    if !expr.is_object() {
        return vec![FieldError::type_invalid(field, expr, "object")];
    }
    let mut errors = Vec::new();
    let values_field = child(field, "values");
    let values = match expr.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(vs)) => vs.clone(),
        Some(other) => {
            errors.push(FieldError::type_invalid(&values_field, other, "array"));
            Vec::new()
        }
    };
    let operator = expr.get("operator").cloned().unwrap_or(Value::Null);
    match operator.as_str().unwrap_or_default() {
        "In" | "NotIn" if values.is_empty() => errors.push(FieldError::new(
            CauseType::FieldValueRequired,
            &values_field,
            "Required value: must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => errors.push(FieldError::forbidden(
            &values_field,
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
        _ => errors.push(FieldError::invalid(child(field, "operator"), &operator, "not a valid selector operator")),
    }
    match expr.get("key") {
        Some(Value::String(key)) => {
            for msg in qualified_name_errors(key) {
                errors.push(FieldError::invalid(child(field, "key"), &json!(key), msg));
            }
        }
        other => errors.push(FieldError::type_invalid(child(field, "key"), other.unwrap_or(&Value::Null), "string")),
    }
    for (i, value) in values.iter().enumerate() {
        let path = format!("{values_field}[{i}]");
        match value.as_str() {
            Some(v) => {
                for msg in label_value_errors(v) {
                    errors.push(FieldError::invalid(&path, value, msg));
                }
            }
            None => errors.push(FieldError::type_invalid(&path, value, "string")),
        }
    }
    errors
}

fn child(field: &str, name: &str) -> String {
    if field.is_empty() { name.to_string() } else { format!("{field}.{name}") }
}

// ---------------------------------------------------------------------------
// Lexer and parser, following k8s.io/apimachinery/pkg/labels/selector.go.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// Tokens that `in`/`notin` may also stand for: inside values they are plain words.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn symbol_token(s: &str) -> Option<Token> {
    Some(match s {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

/// Splits the selector into tokens; the list always ends with `EndOfString`.
fn lex(input: &str) -> Vec<(Token, String)> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && is_whitespace(chars[i]) {
            i += 1;
        }
        let Some(&c) = chars.get(i) else {
            tokens.push((Token::EndOfString, String::new()));
            return tokens;
        };
        let (token, literal, next) = if is_special(c) { lex_symbol(&chars, i) } else { lex_word(&chars, i) };
        tokens.push((token, literal));
        i = next;
    }
}

/// The longest run of special characters that still forms an operator.
fn lex_symbol(chars: &[char], start: usize) -> (Token, String, usize) {
    let mut best = None;
    let mut end = start;
    while end < chars.len() && is_special(chars[end]) {
        let candidate: String = chars[start..=end].iter().collect();
        match symbol_token(&candidate) {
            Some(token) => best = Some((token, candidate, end + 1)),
            None if best.is_some() => break,
            None => {}
        }
        end += 1;
    }
    // Every single special character is an operator, so `best` is always set.
    best.unwrap_or((Token::Identifier, chars[start].to_string(), start + 1))
}

fn lex_word(chars: &[char], start: usize) -> (Token, String, usize) {
    let mut end = start;
    while end < chars.len() && !is_special(chars[end]) && !is_whitespace(chars[end]) {
        end += 1;
    }
    let word: String = chars[start..end].iter().collect();
    let token = match word.as_str() {
        "in" => Token::In,
        "notin" => Token::NotIn,
        _ => Token::Identifier,
    };
    (token, word, end)
}

struct Parser {
    tokens: Vec<(Token, String)>,
    position: usize,
}

impl Parser {
    fn token_at(&self, index: usize, context: Context) -> (Token, String) {
        let (token, literal) = self.tokens.get(index).cloned().unwrap_or((Token::EndOfString, String::new()));
        let token = match token {
            Token::In | Token::NotIn if context == Context::Values => Token::Identifier,
            other => other,
        };
        (token, literal)
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        self.token_at(self.position, context)
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let item = self.token_at(self.position, context);
        self.position += 1;
        item
    }

    fn parse(mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let r = self.parse_requirement().map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(r);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(format!("found '{literal}', expected: identifier after ','"));
                            }
                        }
                        _ => return Err(format!("found '{literal}', expected: ',' or 'end of string'")),
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => return Err(format!("found '{literal}', expected: !, identifier, or 'end of string'")),
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(operator) = inferred {
            return Requirement::new(key, operator, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(key, operator, values)
    }

    /// Reads `[!]key`; `Exists`/`DoesNotExist` are inferred when no operator follows.
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let (mut token, mut literal) = self.consume(Context::Values);
        let negated = token == Token::DoesNotExist;
        if negated {
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        let detail = qualified_name_errors(&literal);
        if !detail.is_empty() {
            return Err(field_invalid("key", &literal, &detail.join("; ")));
        }
        let (next, _) = self.lookahead(Context::Values);
        let inferred = if negated {
            Some(Operator::DoesNotExist)
        } else if next == Token::EndOfString || next == Token::Comma {
            Some(Operator::Exists)
        } else {
            None
        };
        Ok((literal, inferred))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => return Err(format!("found '{literal}', expected: in, notin, =, ==, !=, gt, lt")),
        })
    }

    /// `(a,b,c)`; empty members (`(a,,b)`, `()`) stand for the empty value.
    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                let (token, _) = self.consume(Context::Values);
                if token != Token::ClosedPar {
                    return Err(format!("found '{literal}', expected: ')'"));
                }
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{literal}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut values: Vec<String> = Vec::new();
        let insert = |values: &mut Vec<String>, v: String| {
            if !values.contains(&v) {
                values.push(v);
            }
        };
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    insert(&mut values, literal);
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => break,
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        insert(&mut values, String::new());
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        insert(&mut values, String::new());
                        break;
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        insert(&mut values, String::new());
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
        values.sort();
        Ok(values)
    }

    /// The value after `=`, `==`, `!=`, `>` or `<`; nothing at all means "".
    fn parse_exact_value(&mut self) -> Result<Vec<String>, String> {
        let (next, _) = self.lookahead(Context::Values);
        if next == Token::EndOfString || next == Token::Comma {
            return Ok(vec![String::new()]);
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(vec![literal])
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

// ---------------------------------------------------------------------------
// Field selectors, following k8s.io/apimachinery/pkg/fields/selector.go.

/// How a field requirement compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOperator {
    /// `field=value`
    Equals,
    /// `field==value`
    DoubleEquals,
    /// `field!=value`
    NotEquals,
}

/// One `field<op>value` term of a field selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRequirement {
    /// A dotted path into the object, such as `metadata.name` or `spec.nodeName`.
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl FieldRequirement {
    fn matches(&self, obj: &Value) -> bool {
        let equal = FieldSelector::field_value(obj, &self.field).is_some_and(|v| v == self.value);
        match self.operator {
            FieldOperator::Equals | FieldOperator::DoubleEquals => equal,
            FieldOperator::NotEquals => !equal,
        }
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = if self.operator == FieldOperator::NotEquals { "!=" } else { "=" };
        write!(f, "{}{op}{}", self.field, escape_field_value(&self.value))
    }
}

/// A field selector: the AND of its terms. Empty selects everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector {
    requirements: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// Parses `a.b=c`, `a.b==c`, `a.b!=c` terms joined by commas. Values may escape
    /// `\,`, `\=` and `\\`. Whitespace around field names is ignored.
    pub fn parse(selector: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for term in split_terms(selector) {
            if term.trim().is_empty() {
                continue;
            }
            let not_understood = || format!("invalid selector: '{selector}'; can't understand '{term}'");
            let (field, operator, raw) = split_term(&term).ok_or_else(not_understood)?;
            let field = field.trim();
            if field.is_empty() {
                return Err(not_understood());
            }
            let value = unescape_field_value(raw)?;
            requirements.push(FieldRequirement { field: field.to_string(), operator, value });
        }
        requirements.sort_by(|a, b| a.field.cmp(&b.field));
        Ok(FieldSelector { requirements })
    }

    pub fn requirements(&self) -> &[FieldRequirement] {
        &self.requirements
    }

    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// Whether every term holds for the object. A missing field reads as "".
    pub fn matches(&self, obj: &Value) -> bool {
        self.requirements.iter().all(|r| r.matches(obj))
    }

    /// The value demanded for `field` by an `=`/`==` term, so a server can narrow
    /// a list (for example `metadata.name=x` is a single get).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.requirements
            .iter()
            .find(|r| r.field == field && r.operator != FieldOperator::NotEquals)
            .map(|r| r.value.as_str())
    }

    /// The string a field selector compares for `path` in `obj`: strings as they
    /// are, numbers and booleans in their JSON form, missing or null fields as "".
    /// Objects and arrays have no string form (`None`), so they equal no value.
    pub fn field_value(obj: &Value, path: &str) -> Option<String> {
        let mut current = obj;
        for part in path.split('.') {
            match current.get(part) {
                Some(next) => current = next,
                None => return Some(String::new()),
            }
        }
        match current {
            Value::Null => Some(String::new()),
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            Value::Array(_) | Value::Object(_) => None,
        }
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(FieldRequirement::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

/// Splits on commas that are not escaped with a backslash, keeping escapes intact.
fn split_terms(selector: &str) -> Vec<String> {
    let mut terms = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for c in selector.chars() {
        if escaped {
            current.push(c);
            escaped = false;
        } else if c == '\\' {
            current.push(c);
            escaped = true;
        } else if c == ',' {
            terms.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    terms.push(current);
    terms
}

/// The first operator in the term, trying `!=`, `==` and `=` at each position.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    const OPERATORS: [(&str, FieldOperator); 3] =
        [("!=", FieldOperator::NotEquals), ("==", FieldOperator::DoubleEquals), ("=", FieldOperator::Equals)];
    for (i, _) in term.char_indices() {
        for (symbol, op) in OPERATORS {
            if term[i..].starts_with(symbol) {
                return Some((&term[..i], op, &term[i + symbol.len()..]));
            }
        }
    }
    None
}

fn unescape_field_value(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(e @ ('\\' | ',' | '=')) => out.push(e),
                Some(e) => return Err(format!("invalid field selector: invalid escape sequence: \\{e}")),
                None => return Err("invalid field selector: invalid escape sequence: \\".to_string()),
            },
            ',' | '=' => return Err(format!("invalid field selector: unescaped character '{c}'")),
            _ => out.push(c),
        }
    }
    Ok(out)
}

fn escape_field_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `field: Invalid value: "v": detail`, the text of Kubernetes' `field.Invalid`.
fn field_invalid(field: &str, value: &str, detail: &str) -> String {
    field_invalid_json(field, &Value::String(value.to_string()), detail)
}

fn field_invalid_json(field: &str, value: &Value, detail: &str) -> String {
    format!("{field}: Invalid value: {value}: {detail}")
}

/// Joins several errors as Kubernetes' aggregate error does: `[a, b]`.
fn aggregate(mut errors: Vec<String>) -> String {
    if errors.len() == 1 { errors.remove(0) } else { format!("[{}]", errors.join(", ")) }
}

#[cfg(test)]
mod tests;
