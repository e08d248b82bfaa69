//! Logical fields and the user's column-name overrides.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::DataError;
use super::layout::Layout;

/// A logical field of a layout. Each layout stores a field under a default column name
/// ([`Layout::default_column`]); a [`ColumnMap`] can point a field at another column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Id,
    Prompt,
    Chosen,
    Rejected,
    ChosenScore,
    RejectedScore,
    Margin,
    TeacherResponse,
    TeacherLogprobs,
    Metadata,
    Subset,
    ChosenModel,
    RejectedModel,
    NumCorrect,
    Domain,
    Source,
    OriginalId,
    ResponseModel,
    ResponseA,
    ResponseB,
    Label,
}

impl Field {
    pub const ALL: [Field; 21] = [
        Field::Id,
        Field::Prompt,
        Field::Chosen,
        Field::Rejected,
        Field::ChosenScore,
        Field::RejectedScore,
        Field::Margin,
        Field::TeacherResponse,
        Field::TeacherLogprobs,
        Field::Metadata,
        Field::Subset,
        Field::ChosenModel,
        Field::RejectedModel,
        Field::NumCorrect,
        Field::Domain,
        Field::Source,
        Field::OriginalId,
        Field::ResponseModel,
        Field::ResponseA,
        Field::ResponseB,
        Field::Label,
    ];

    /// The field's name: used in column-map specs (`prompt=question`) and, for fields that
    /// live in a record's metadata (`subset`, `chosen_model`...), as the metadata key.
    pub fn key(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Prompt => "prompt",
            Field::Chosen => "chosen",
            Field::Rejected => "rejected",
            Field::ChosenScore => "chosen_score",
            Field::RejectedScore => "rejected_score",
            Field::Margin => "margin",
            Field::TeacherResponse => "teacher_response",
            Field::TeacherLogprobs => "teacher_logprobs",
            Field::Metadata => "metadata",
            Field::Subset => "subset",
            Field::ChosenModel => "chosen_model",
            Field::RejectedModel => "rejected_model",
            Field::NumCorrect => "num_correct",
            Field::Domain => "domain",
            Field::Source => "source",
            Field::OriginalId => "original_id",
            Field::ResponseModel => "response_model",
            Field::ResponseA => "response_a",
            Field::ResponseB => "response_b",
            Field::Label => "label",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl FromStr for Field {
    type Err = DataError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Field::ALL
            .into_iter()
            .find(|f| f.key().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                DataError::InvalidOption(format!(
                    "unknown field {s:?}; known fields: {}",
                    Field::ALL.map(|f| f.key()).join(", ")
                ))
            })
    }
}

/// Column-name overrides: which column of the file holds which logical field.
/// Fields without an override use the layout's default name.
///
/// ```
/// use rmd_core::io::{ColumnMap, Field};
/// let cols = ColumnMap::new().prompt("instruction").with(Field::ChosenScore, "score_chosen");
/// let same = ColumnMap::parse("prompt=instruction, chosen_score=score_chosen").unwrap();
/// assert_eq!(cols, same);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ColumnMap {
    overrides: BTreeMap<Field, String>,
}

impl ColumnMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads `field` from (and writes it to) `column`.
    pub fn with(mut self, field: Field, column: impl Into<String>) -> Self {
        self.overrides.insert(field, column.into());
        self
    }

    pub fn id(self, column: impl Into<String>) -> Self {
        self.with(Field::Id, column)
    }
    pub fn prompt(self, column: impl Into<String>) -> Self {
        self.with(Field::Prompt, column)
    }
    pub fn chosen(self, column: impl Into<String>) -> Self {
        self.with(Field::Chosen, column)
    }
    pub fn rejected(self, column: impl Into<String>) -> Self {
        self.with(Field::Rejected, column)
    }
    pub fn chosen_score(self, column: impl Into<String>) -> Self {
        self.with(Field::ChosenScore, column)
    }
    pub fn rejected_score(self, column: impl Into<String>) -> Self {
        self.with(Field::RejectedScore, column)
    }
    pub fn margin(self, column: impl Into<String>) -> Self {
        self.with(Field::Margin, column)
    }
    pub fn teacher_response(self, column: impl Into<String>) -> Self {
        self.with(Field::TeacherResponse, column)
    }
    pub fn teacher_logprobs(self, column: impl Into<String>) -> Self {
        self.with(Field::TeacherLogprobs, column)
    }

    /// Parses `field=column` assignments separated by commas (the CLI's `--columns`).
    pub fn parse(spec: &str) -> Result<Self, DataError> {
        let mut map = ColumnMap::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (field, column) = part.split_once('=').ok_or_else(|| {
                DataError::InvalidOption(format!("column mapping {part:?} is not `field=column`"))
            })?;
            let field: Field = field.parse()?;
            let column = column.trim();
            if column.is_empty() {
                return Err(DataError::InvalidOption(format!(
                    "column mapping {part:?} has no column"
                )));
            }
            if map.overrides.contains_key(&field) {
                return Err(DataError::InvalidOption(format!(
                    "field `{field}` is mapped twice"
                )));
            }
            map.overrides.insert(field, column.to_string());
        }
        Ok(map)
    }

    /// The column that holds `field` in `layout`.
    pub fn column(&self, layout: Layout, field: Field) -> &str {
        self.overrides
            .get(&field)
            .map(String::as_str)
            .unwrap_or_else(|| layout.default_column(field))
    }

    /// The explicit overrides.
    pub fn overrides(&self) -> impl Iterator<Item = (Field, &str)> {
        self.overrides.iter().map(|(f, c)| (*f, c.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.overrides.is_empty()
    }

    /// Checks that no two fields of `layout` resolve to the same column.
    pub(crate) fn check(&self, layout: Layout) -> Result<(), DataError> {
        let mut seen: BTreeMap<&str, Field> = BTreeMap::new();
        for spec in layout.columns() {
            let col = self.column(layout, spec.field);
            if let Some(prev) = seen.insert(col, spec.field) {
                return Err(DataError::InvalidOption(format!(
                    "fields `{prev}` and `{}` of layout `{}` both map to column `{col}`",
                    spec.field,
                    layout.name()
                )));
            }
        }
        Ok(())
    }
}
