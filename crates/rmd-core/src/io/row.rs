//! A format-neutral view of one row: a JSON object (parsed from JSON, or converted from
//! Arrow), with typed accessors that turn every malformed value into a [`FieldError`].
//!
//! Accessors *take* their column out of the row, so what remains after decoding is the
//! set of columns the layout does not know; decoders keep those in the record's metadata.

use serde_json::{Map, Value};

use crate::logprobs::{GeneratedToken, TeacherLogprobs, TokenLogprob};
use crate::message::{Message, Role};
use crate::pair::Metadata;

use super::error::{FieldError, RowProblem};

pub struct Row {
    map: Map<String, Value>,
}

/// The JSON type name of a value, for error messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "object",
    }
}

fn wrong(field: &str, expected: &'static str, v: &Value) -> FieldError {
    FieldError::new(
        field,
        RowProblem::WrongType {
            expected,
            found: type_name(v),
        },
    )
}

/// Requires non-blank text.
pub(crate) fn check_text(field: &str, s: String) -> Result<String, FieldError> {
    if s.trim().is_empty() {
        Err(FieldError::new(field, RowProblem::EmptyText))
    } else {
        Ok(s)
    }
}

impl Row {
    pub fn new(map: Map<String, Value>) -> Self {
        Self { map }
    }

    pub fn has(&self, column: &str) -> bool {
        self.map.contains_key(column)
    }

    /// Removes and returns a column's raw value (`None` when absent).
    pub fn take(&mut self, column: &str) -> Option<Value> {
        self.map.shift_remove(column)
    }

    /// The value of a required column: present and non-null.
    fn take_required(&mut self, column: &str, expected: &'static str) -> Result<Value, FieldError> {
        match self.take(column) {
            None => Err(FieldError::new(column, RowProblem::MissingField)),
            Some(Value::Null) => Err(FieldError::new(column, RowProblem::Null { expected })),
            Some(v) => Ok(v),
        }
    }

    /// The value of an optional column: absent and null both mean "no value".
    fn take_optional(&mut self, column: &str) -> Option<Value> {
        match self.take(column) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn text(&mut self, column: &str) -> Result<String, FieldError> {
        let v = self.take_required(column, "a string")?;
        text_value(column, v)
    }

    pub fn opt_text(&mut self, column: &str) -> Result<Option<String>, FieldError> {
        self.take_optional(column)
            .map(|v| text_value(column, v))
            .transpose()
    }

    /// An id: a non-blank string, or an integer (converted to its decimal string).
    pub fn id(&mut self, column: &str) -> Result<String, FieldError> {
        let v = self.take_required(column, "a string or integer id")?;
        match v {
            Value::String(s) => check_text(column, s),
            Value::Number(n) if !n.is_f64() => Ok(n.to_string()),
            other => Err(wrong(column, "a string or integer id", &other)),
        }
    }

    pub fn score(&mut self, column: &str) -> Result<f64, FieldError> {
        let v = self.take_required(column, "a number")?;
        number_value(column, v)
    }

    pub fn opt_score(&mut self, column: &str) -> Result<Option<f64>, FieldError> {
        self.take_optional(column)
            .map(|v| number_value(column, v))
            .transpose()
    }

    /// A non-negative integer.
    pub fn count(&mut self, column: &str) -> Result<usize, FieldError> {
        let v = self.take_required(column, "a non-negative integer")?;
        match &v {
            Value::Number(n) => match n.as_u64() {
                Some(u) => usize::try_from(u).map_err(|_| {
                    FieldError::new(column, RowProblem::BadValue(format!("{u} is too large")))
                }),
                None if n.is_i64() => Err(FieldError::new(
                    column,
                    RowProblem::BadValue(format!("{n} is negative; expected a count")),
                )),
                None => Err(wrong(column, "a non-negative integer", &v)),
            },
            _ => Err(wrong(column, "a non-negative integer", &v)),
        }
    }

    /// A list of non-blank strings.
    pub fn text_list(&mut self, column: &str) -> Result<Vec<String>, FieldError> {
        let v = self.take_required(column, "a list of strings")?;
        let Value::Array(items) = v else {
            return Err(wrong(column, "a list of strings", &v));
        };
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| text_value(&format!("{column}[{i}]"), item))
            .collect()
    }

    /// A list of `{role, content}` messages, every content non-blank.
    pub fn messages(&mut self, column: &str) -> Result<Vec<Message>, FieldError> {
        let v = self.take_required(column, "a list of messages")?;
        messages_value(column, v)
    }

    /// Like [`Row::messages`], but a string is returned as is (some datasets store the
    /// prompt of a conversational pair as plain text).
    pub fn opt_messages_or_text(
        &mut self,
        column: &str,
    ) -> Result<Option<MessagesOrText>, FieldError> {
        match self.take(column) {
            None => Ok(None),
            Some(Value::Null) => Err(FieldError::new(
                column,
                RowProblem::Null {
                    expected: "a list of messages",
                },
            )),
            Some(Value::String(s)) => Ok(Some(MessagesOrText::Text(check_text(column, s)?))),
            Some(v) => Ok(Some(MessagesOrText::Messages(messages_value(column, v)?))),
        }
    }

    /// The `metadata` column: a JSON object, or (Parquet) a string holding one. Absent or
    /// null is empty metadata.
    pub fn metadata(&mut self, column: &str) -> Result<Metadata, FieldError> {
        match self.take_optional(column) {
            None => Ok(Metadata::new()),
            Some(Value::Object(m)) => Ok(m),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(&s) {
                Ok(Value::Object(m)) => Ok(m),
                Ok(other) => Err(FieldError::new(
                    column,
                    RowProblem::WrongType {
                        expected: "a JSON object",
                        found: type_name(&other),
                    },
                )),
                Err(e) => Err(FieldError::new(
                    column,
                    RowProblem::InvalidJson(format!("metadata string is not JSON: {e}")),
                )),
            },
            Some(other) => Err(wrong(column, "a JSON object", &other)),
        }
    }

    /// The optional `teacher_logprobs` column: a list of token objects, or (some Parquet
    /// writers) a string holding that list as JSON. Absent or null is no log-probs.
    pub fn opt_teacher_logprobs(&mut self, column: &str) -> Result<Option<TeacherLogprobs>, FieldError> {
        let v = match self.take_optional(column) {
            None => return Ok(None),
            Some(Value::String(s)) => serde_json::from_str::<Value>(&s).map_err(|e| {
                FieldError::new(column, RowProblem::InvalidJson(format!("teacher_logprobs string is not JSON: {e}")))
            })?,
            Some(v) => v,
        };
        let Value::Array(items) = v else {
            return Err(wrong(column, "a list of token log-prob objects", &v));
        };
        let mut tokens = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let at = format!("{column}[{i}]");
            let Value::Object(mut obj) = item else {
                return Err(wrong(&at, "a token log-prob object", &item));
            };
            let top = match obj.shift_remove("top") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(alts)) => alts
                    .into_iter()
                    .enumerate()
                    .map(|(j, alt)| {
                        let at = format!("{at}.top[{j}]");
                        match alt {
                            Value::Object(o) => token_logprob(&at, o),
                            other => Err(wrong(&at, "a token log-prob object", &other)),
                        }
                    })
                    .collect::<Result<_, _>>()?,
                Some(other) => return Err(wrong(&format!("{at}.top"), "a list", &other)),
            };
            tokens.push(GeneratedToken { token: token_logprob(&at, obj)?, top });
        }
        let lp = TeacherLogprobs::new(tokens);
        lp.validate().map_err(|e| FieldError::new(format!("{column}{}", e.path), RowProblem::BadValue(e.message)))?;
        Ok(Some(lp))
    }

    /// The remaining (unconsumed) columns.
    pub fn into_rest(self) -> Map<String, Value> {
        self.map
    }
}

pub enum MessagesOrText {
    Messages(Vec<Message>),
    Text(String),
}

fn text_value(field: &str, v: Value) -> Result<String, FieldError> {
    match v {
        Value::String(s) => check_text(field, s),
        Value::Null => Err(FieldError::new(
            field,
            RowProblem::Null {
                expected: "a string",
            },
        )),
        other => Err(wrong(field, "a string", &other)),
    }
}

fn number_value(field: &str, v: Value) -> Result<f64, FieldError> {
    match &v {
        Value::Number(n) => {
            let x = n.as_f64().ok_or_else(|| wrong(field, "a number", &v))?;
            if x.is_finite() {
                Ok(x)
            } else {
                Err(FieldError::new(field, RowProblem::NonFinite(x)))
            }
        }
        _ => Err(wrong(field, "a number", &v)),
    }
}

/// One `{id?, text?, bytes?, logprob}` object; null members count as absent, unknown
/// members are refused (they would be lost).
fn token_logprob(at: &str, mut obj: Map<String, Value>) -> Result<TokenLogprob, FieldError> {
    let id = match obj.shift_remove("id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .ok_or_else(|| match &v {
                    Value::Number(_) => FieldError::new(format!("{at}.id"), RowProblem::BadValue(format!("token id {v} is not in 0..=4294967295"))),
                    other => wrong(&format!("{at}.id"), "a token id (non-negative integer)", other),
                })?,
        ),
    };
    let text = match obj.shift_remove("text") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => return Err(wrong(&format!("{at}.text"), "a string", &other)),
    };
    let bytes = match obj.shift_remove("bytes") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .enumerate()
                .map(|(k, b)| {
                    b.as_u64().and_then(|x| u8::try_from(x).ok()).ok_or_else(|| {
                        FieldError::new(format!("{at}.bytes[{k}]"), RowProblem::BadValue(format!("{b} is not a byte (0..=255)")))
                    })
                })
                .collect::<Result<Vec<u8>, _>>()?,
        ),
        Some(other) => return Err(wrong(&format!("{at}.bytes"), "a list of bytes", &other)),
    };
    let logprob = match obj.shift_remove("logprob") {
        None => return Err(FieldError::new(format!("{at}.logprob"), RowProblem::MissingField)),
        Some(Value::Null) => return Err(FieldError::new(format!("{at}.logprob"), RowProblem::Null { expected: "a number" })),
        Some(v) => number_value(&format!("{at}.logprob"), v)?,
    };
    if let Some((key, _)) = obj.iter().find(|(_, v)| !v.is_null()) {
        return Err(FieldError::new(
            format!("{at}.{key}"),
            RowProblem::BadValue(format!("token key `{key}` is not supported (id, text, bytes, logprob, top)")),
        ));
    }
    Ok(TokenLogprob { id, text, bytes, logprob })
}

fn messages_value(column: &str, v: Value) -> Result<Vec<Message>, FieldError> {
    let Value::Array(items) = v else {
        return Err(wrong(column, "a list of messages", &v));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("{column}[{i}]");
        let Value::Object(mut obj) = item else {
            return Err(wrong(&at, "a {role, content} object", &item));
        };
        let role = match obj.shift_remove("role") {
            None => {
                return Err(FieldError::new(
                    format!("{at}.role"),
                    RowProblem::MissingField,
                ))
            }
            Some(Value::String(r)) => Role::parse(&r).ok_or_else(|| {
                FieldError::new(
                    format!("{at}.role"),
                    RowProblem::BadValue(format!(
                        "unknown role {r:?}; expected system, user, assistant or tool"
                    )),
                )
            })?,
            Some(other) => return Err(wrong(&format!("{at}.role"), "a string", &other)),
        };
        let content = match obj.shift_remove("content") {
            None => {
                return Err(FieldError::new(
                    format!("{at}.content"),
                    RowProblem::MissingField,
                ))
            }
            Some(v) => text_value(&format!("{at}.content"), v)?,
        };
        // Other keys (tool calls, names...) would be lost: refuse them unless they are null.
        if let Some((key, _)) = obj.iter().find(|(_, v)| !v.is_null()) {
            return Err(FieldError::new(
                format!("{at}.{key}"),
                RowProblem::BadValue(format!(
                    "message key `{key}` is not supported (only role and content)"
                )),
            ));
        }
        out.push(Message { role, content });
    }
    Ok(out)
}
