//! The subset of Kubernetes JSONPath used by printer columns and ManifestWork
//! feedback rules: `.a.b`, `.a['b.c']`, `.a\.b`, `[0]`, `[-1]`, `[1:3]`, `[*]`, `.*`,
//! filters such as `[?(@.type=="Ready")]` and an optional `{}` around the whole path.
//! Missing keys yield no results rather than errors (kubectl's `allowMissingKeys`).

use std::cmp::Ordering;

use serde_json::Value;

/// A parsed JSONPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    segments: Vec<Segment>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Field(String),
    Wildcard,
    Index(i64),
    Slice { start: Option<i64>, end: Option<i64>, step: Option<i64> },
    Filter(Filter),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Operand,
    /// `None` is an existence test: `[?(@.name)]`.
    comparison: Option<(CompareOp, Operand)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    /// A path relative to the current element (`@.a.b`).
    Current(Vec<Segment>),
    Literal(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl JsonPath {
    /// Parses an expression such as `.status.conditions[?(@.type=="Ready")].status`
    /// or `{.spec.hubAcceptsClient}`.
    pub fn parse(text: &str) -> Result<JsonPath, String> {
        let trimmed = text.trim();
        let inner = match trimmed.strip_prefix('{') {
            Some(rest) => rest.strip_suffix('}').ok_or_else(|| format!("unclosed action in JSONPath {text:?}"))?,
            None => trimmed,
        };
        let mut parser = Parser { chars: inner.trim().chars().collect(), pos: 0 };
        parser.skip_char('$');
        let segments = parser.segments(false)?;
        if !parser.at_end() {
            return Err(parser.error("unexpected character"));
        }
        Ok(JsonPath { segments })
    }

    /// Every value the path selects, in document order; empty when nothing matches.
    pub fn eval<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval_segments(&self.segments, vec![root])
    }

    /// The first value the path selects (what a printer column shows).
    pub fn first<'a>(&self, root: &'a Value) -> Option<&'a Value> {
        self.eval(root).into_iter().next()
    }
}

fn eval_segments<'a>(segments: &[Segment], mut current: Vec<&'a Value>) -> Vec<&'a Value> {
    for segment in segments {
        current = current.into_iter().flat_map(|value| step(segment, value)).collect();
        if current.is_empty() {
            break;
        }
    }
    current
}

fn step<'a>(segment: &Segment, value: &'a Value) -> Vec<&'a Value> {
    match segment {
        Segment::Field(name) => value.get(name.as_str()).into_iter().collect(),
        Segment::Wildcard => match value {
            Value::Array(items) => items.iter().collect(),
            Value::Object(map) => map.values().collect(),
            _ => Vec::new(),
        },
        Segment::Index(index) => value
            .as_array()
            .and_then(|items| resolve_index(*index, items.len()).and_then(|i| items.get(i)))
            .into_iter()
            .collect(),
        Segment::Slice { start, end, step } => {
            value.as_array().map(|items| slice(items, *start, *end, *step)).unwrap_or_default()
        }
        Segment::Filter(filter) => {
            value.as_array().map(|items| items.iter().filter(|item| filter.matches(item)).collect()).unwrap_or_default()
        }
    }
}

fn resolve_index(index: i64, len: usize) -> Option<usize> {
    let len = i64::try_from(len).ok()?;
    let resolved = if index < 0 { len + index } else { index };
    if (0..len).contains(&resolved) { usize::try_from(resolved).ok() } else { None }
}

fn slice(items: &[Value], start: Option<i64>, end: Option<i64>, step: Option<i64>) -> Vec<&Value> {
    let len = i64::try_from(items.len()).unwrap_or(i64::MAX);
    let clamp = |bound: i64| {
        if bound < 0 { (len + bound).max(0) } else { bound.min(len) }
    };
    let start = clamp(start.unwrap_or(0));
    let end = clamp(end.unwrap_or(len));
    let step = step.unwrap_or(1);
    if step <= 0 {
        return Vec::new();
    }
    let mut selected = Vec::new();
    let mut i = start;
    while i < end {
        if let Some(item) = usize::try_from(i).ok().and_then(|i| items.get(i)) {
            selected.push(item);
        }
        i += step;
    }
    selected
}

impl Filter {
    fn matches(&self, item: &Value) -> bool {
        let lefts = self.left.resolve(item);
        let Some((op, right)) = &self.comparison else {
            return !lefts.is_empty();
        };
        let rights = right.resolve(item);
        // As in Kubernetes: an element without the compared field never matches.
        match (lefts.as_slice(), rights.as_slice()) {
            ([left], [right]) => compare(left, *op, right),
            _ => false,
        }
    }
}

impl Operand {
    fn resolve<'a>(&'a self, item: &'a Value) -> Vec<&'a Value> {
        match self {
            Operand::Current(segments) => eval_segments(segments, vec![item]),
            Operand::Literal(value) => vec![value],
        }
    }
}

fn compare(left: &Value, op: CompareOp, right: &Value) -> bool {
    let ordering = match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        // Values of different kinds are not comparable: nothing matches.
        _ => None,
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_char(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn consume(&mut self, c: char) -> Result<(), String> {
        if self.skip_char(c) { Ok(()) } else { Err(self.error(&format!("expected '{c}'"))) }
    }

    fn error(&self, what: &str) -> String {
        let text: String = self.chars.iter().collect();
        format!("invalid JSONPath {text:?}: {what} at position {}", self.pos)
    }

    /// Segments up to the end, or inside a filter up to an operator or ')'.
    fn segments(&mut self, in_filter: bool) -> Result<Vec<Segment>, String> {
        let mut segments = Vec::new();
        loop {
            match self.peek() {
                Some('.') => {
                    self.pos += 1;
                    if let Some(segment) = self.dot_segment()? {
                        segments.push(segment);
                    }
                }
                Some('[') => {
                    self.pos += 1;
                    segments.push(self.bracket_segment()?);
                }
                None => return Ok(segments),
                Some(_) if in_filter => return Ok(segments),
                Some(_) => return Err(self.error("expected '.' or '['")),
            }
        }
    }

    /// After '.': a field name, `*`, or nothing (a lone `.` selects the current value).
    fn dot_segment(&mut self) -> Result<Option<Segment>, String> {
        if self.peek() == Some('.') {
            return Err(self.error("recursive descent '..' is not supported"));
        }
        if self.skip_char('*') {
            return Ok(Some(Segment::Wildcard));
        }
        let name = self.field_name();
        Ok(if name.is_empty() { None } else { Some(Segment::Field(name)) })
    }

    /// A field name runs to the next unescaped '.', '[' or filter syntax; `\.` is a dot.
    fn field_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            match c {
                '\\' => {
                    self.pos += 1;
                    if let Some(escaped) = self.peek() {
                        name.push(escaped);
                        self.pos += 1;
                    }
                }
                '.' | '[' | ']' | ')' | '=' | '!' | '<' | '>' | ' ' => break,
                _ => {
                    name.push(c);
                    self.pos += 1;
                }
            }
        }
        name
    }

    fn bracket_segment(&mut self) -> Result<Segment, String> {
        self.skip_spaces();
        let segment = match self.peek() {
            Some('*') => {
                self.pos += 1;
                Segment::Wildcard
            }
            Some('\'' | '"') => Segment::Field(self.quoted()?),
            Some('?') => {
                self.pos += 1;
                Segment::Filter(self.filter()?)
            }
            _ => self.index_or_slice()?,
        };
        self.skip_spaces();
        self.consume(']')?;
        Ok(segment)
    }

    fn quoted(&mut self) -> Result<String, String> {
        let Some(quote) = self.peek() else {
            return Err(self.error("expected a quoted string"));
        };
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some('\\') => {
                    self.pos += 1;
                    if let Some(c) = self.peek() {
                        text.push(c);
                        self.pos += 1;
                    }
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(text);
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn index_or_slice(&mut self) -> Result<Segment, String> {
        let first = self.optional_int()?;
        if !self.skip_char(':') {
            return first.map(Segment::Index).ok_or_else(|| self.error("expected an index"));
        }
        let end = self.optional_int()?;
        let step = if self.skip_char(':') { self.optional_int()? } else { None };
        Ok(Segment::Slice { start: first, end, step })
    }

    fn optional_int(&mut self) -> Result<Option<i64>, String> {
        self.skip_spaces();
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        if self.pos == start {
            return Ok(None);
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        let value = text.parse::<i64>().map_err(|_| self.error("invalid index"))?;
        self.skip_spaces();
        Ok(Some(value))
    }

    /// After '?': `(left [op right])`.
    fn filter(&mut self) -> Result<Filter, String> {
        self.consume('(')?;
        self.skip_spaces();
        let left = self.operand()?;
        self.skip_spaces();
        let comparison = match self.compare_op() {
            Some(op) => {
                self.skip_spaces();
                Some((op, self.operand()?))
            }
            None => None,
        };
        self.skip_spaces();
        self.consume(')')?;
        Ok(Filter { left, comparison })
    }

    fn compare_op(&mut self) -> Option<CompareOp> {
        let two: String = self.chars.iter().skip(self.pos).take(2).collect();
        let (op, len) = match two.as_str() {
            "==" => (CompareOp::Eq, 2),
            "!=" => (CompareOp::Ne, 2),
            "<=" => (CompareOp::Le, 2),
            ">=" => (CompareOp::Ge, 2),
            _ if two.starts_with('<') => (CompareOp::Lt, 1),
            _ if two.starts_with('>') => (CompareOp::Gt, 1),
            _ => return None,
        };
        self.pos += len;
        Some(op)
    }

    fn operand(&mut self) -> Result<Operand, String> {
        match self.peek() {
            Some('@') => {
                self.pos += 1;
                Ok(Operand::Current(self.segments(true)?))
            }
            Some('\'' | '"') => Ok(Operand::Literal(Value::String(self.quoted()?))),
            _ => self.literal(),
        }
    }

    fn literal(&mut self) -> Result<Operand, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.')) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        let value = match text.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            "null" | "nil" => Value::Null,
            _ => serde_json::from_str::<serde_json::Number>(&text)
                .map(Value::Number)
                .map_err(|_| self.error("expected '@', a quoted string, a number or a boolean"))?,
        };
        Ok(Operand::Literal(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster() -> Value {
        json!({
            "metadata": {"name": "c1", "labels": {"kubernetes.io/os": "linux", "a.b": "dotted"}},
            "spec": {"hubAcceptsClient": true, "taints": []},
            "status": {
                "version": {"kubernetes": "v1.30.0"},
                "allocatable": {"cpu": "4"},
                "conditions": [
                    {"type": "HubAcceptedManagedCluster", "status": "True"},
                    {"type": "ManagedClusterConditionAvailable", "status": "Unknown", "priority": 2},
                    {"type": "ManagedClusterJoined", "status": "True", "priority": 1}
                ],
                "counts": [1, 2, 3, 4, 5]
            }
        })
    }

    fn eval(path: &str, root: &Value) -> Vec<Value> {
        match JsonPath::parse(path) {
            Ok(p) => p.eval(root).into_iter().cloned().collect(),
            Err(e) => panic!("{path}: {e}"),
        }
    }

    #[test]
    fn fields_and_braces() {
        let obj = cluster();
        assert_eq!(eval(".metadata.name", &obj), vec![json!("c1")]);
        assert_eq!(eval("{.spec.hubAcceptsClient}", &obj), vec![json!(true)]);
        assert_eq!(eval("$.status.version.kubernetes", &obj), vec![json!("v1.30.0")]);
        assert_eq!(eval("{ .metadata.name }", &obj), vec![json!("c1")]);
        assert_eq!(eval(".", &obj), vec![obj.clone()]);
    }

    #[test]
    fn quoted_and_escaped_keys() {
        let obj = cluster();
        assert_eq!(eval(".metadata.labels['kubernetes.io/os']", &obj), vec![json!("linux")]);
        assert_eq!(eval(".metadata.labels[\"a.b\"]", &obj), vec![json!("dotted")]);
        assert_eq!(eval(".metadata.labels.kubernetes\\.io/os", &obj), vec![json!("linux")]);
    }

    #[test]
    fn missing_keys_yield_nothing() {
        let obj = cluster();
        assert!(eval(".status.nope.deeper", &obj).is_empty());
        assert!(eval(".metadata.name.sub", &obj).is_empty());
        assert!(eval(".status.conditions.type", &obj).is_empty());
        assert!(eval(".status.counts[10]", &obj).is_empty());
        assert!(eval(".spec.taints[0]", &obj).is_empty());
    }

    #[test]
    fn indexes_slices_and_wildcards() {
        let obj = cluster();
        assert_eq!(eval(".status.counts[0]", &obj), vec![json!(1)]);
        assert_eq!(eval(".status.counts[-1]", &obj), vec![json!(5)]);
        assert_eq!(eval(".status.counts[1:3]", &obj), vec![json!(2), json!(3)]);
        assert_eq!(eval(".status.counts[-2:]", &obj), vec![json!(4), json!(5)]);
        assert_eq!(eval(".status.counts[::2]", &obj), vec![json!(1), json!(3), json!(5)]);
        assert_eq!(eval(".status.counts[*]", &obj).len(), 5);
        assert_eq!(
            eval(".status.conditions[*].type", &obj),
            vec![
                json!("HubAcceptedManagedCluster"),
                json!("ManagedClusterConditionAvailable"),
                json!("ManagedClusterJoined")
            ]
        );
        assert_eq!(eval(".status.allocatable.*", &obj), vec![json!("4")]);
    }

    #[test]
    fn filters() {
        let obj = cluster();
        assert_eq!(eval(".status.conditions[?(@.type==\"ManagedClusterJoined\")].status", &obj), vec![json!("True")]);
        assert_eq!(
            eval(".status.conditions[?(@.type=='ManagedClusterConditionAvailable')].status", &obj),
            vec![json!("Unknown")]
        );
        assert_eq!(eval(".status.conditions[?(@.status != \"True\")].type", &obj).len(), 1);
        assert_eq!(eval(".status.conditions[?(@.priority)].type", &obj).len(), 2);
        assert_eq!(eval(".status.conditions[?(@.priority>=2)].type", &obj).len(), 1);
        assert_eq!(eval(".status.conditions[?(@.priority < 2)].type", &obj).len(), 1);
        assert_eq!(eval(".status.conditions[?(@.priority == 1.0)].type", &obj).len(), 1);
        // A field missing from an element never matches, even with !=.
        assert_eq!(eval(".status.conditions[?(@.priority != 1)].type", &obj).len(), 1);
        // Different kinds never compare equal.
        assert!(eval(".status.conditions[?(@.priority == \"1\")]", &obj).is_empty());
        assert!(eval(".spec[?(@.x == 1)]", &obj).is_empty());
        let nested = json!({"items": [{"a": {"b": true}}, {"a": {"b": false}}]});
        assert_eq!(eval(".items[?(@.a.b == true)].a", &nested), vec![json!({"b": true})]);
    }

    #[test]
    fn parse_errors() {
        for bad in ["{.a", ".a[", ".a[x]", ".a['b]", ".a..b", ".a[?(@.b == )]", ".a[?@.b]", "a.b", ".a[?(@.b == \"x\"]"]
        {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn first_result() {
        let obj = cluster();
        let path = JsonPath::parse(".status.conditions[*].status");
        assert_eq!(path.map(|p| p.first(&obj).cloned()), Ok(Some(json!("True"))));
    }
}
