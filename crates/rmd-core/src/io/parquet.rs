//! Parquet, read record batch by record batch and converted to rows, and written from rows
//! with the layout's natural Arrow types.

use std::collections::VecDeque;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Float64Builder, GenericListArray,
    Int64Builder, ListArray, ListBuilder, OffsetSizeTrait, RecordBatch, StringArray,
    StringBuilder, StructArray, StructBuilder, UInt32Array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{
    DataType, Field as ArrowField, Fields, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, Schema, SchemaRef, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde_json::{Map, Value};

use super::error::{DataError, FieldError, RowProblem};
use super::layout::{ColumnInfo, ColumnKind, ColumnType};
use super::source::RawRow;

/// Rows per record batch, read and written. Bounds memory to a few hundred rows.
const BATCH_ROWS: usize = 512;
/// Rows per row group when writing: small enough to keep the writer's buffer modest.
const ROW_GROUP_ROWS: usize = 8192;

/// Streams the rows of a Parquet file.
pub(crate) struct ParquetRows {
    path: PathBuf,
    reader: ParquetRecordBatchReader,
    names: Vec<String>,
    pending: VecDeque<RawRow>,
    next_index: usize,
    done: bool,
    pub columns: Vec<ColumnInfo>,
    pub total_rows: u64,
}

impl ParquetRows {
    pub fn open(path: &Path) -> Result<Self, DataError> {
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(|e| DataError::parquet(path, e))?;
        let total_rows = builder.metadata().file_metadata().num_rows().max(0) as u64;
        let schema = builder.schema().clone();
        let reader = builder
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| DataError::parquet(path, e))?;
        let columns = schema
            .fields()
            .iter()
            .map(|f| ColumnInfo::new(f.name().clone(), kind_of(f.data_type())))
            .collect();
        let names = schema.fields().iter().map(|f| f.name().clone()).collect();
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            names,
            pending: VecDeque::new(),
            next_index: 0,
            done: false,
            columns,
            total_rows,
        })
    }

    fn load_batch(&mut self, batch: RecordBatch) -> Result<(), DataError> {
        let n = batch.num_rows();
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (name, array) in self.names.iter().zip(batch.columns()) {
            let converted = convert(array.as_ref())
                .map_err(|m| DataError::parquet(&self.path, format!("column `{name}`: {m}")))?;
            columns.push(converted);
        }
        for i in 0..n {
            let mut map = Map::with_capacity(columns.len());
            let mut bad = None;
            for (name, col) in self.names.iter().zip(columns.iter_mut()) {
                if let (None, Some(v)) = (&bad, col.non_finite[i]) {
                    bad = Some(FieldError::new(name.clone(), RowProblem::NonFinite(v)));
                }
                map.insert(name.clone(), std::mem::take(&mut col.values[i]));
            }
            let value = match bad {
                Some(e) => Err(e),
                None => Ok(map),
            };
            self.pending.push_back(RawRow {
                index: self.next_index,
                value,
            });
            self.next_index += 1;
        }
        Ok(())
    }
}

impl Iterator for ParquetRows {
    type Item = Result<RawRow, DataError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.pending.pop_front() {
                return Some(Ok(row));
            }
            if self.done {
                return None;
            }
            match self.reader.next() {
                None => self.done = true,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(DataError::parquet(&self.path, e)));
                }
                Some(Ok(batch)) => {
                    if let Err(e) = self.load_batch(batch) {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            }
        }
    }
}

/// The coarse kind of an Arrow type, for layout detection.
pub(crate) fn kind_of(ty: &DataType) -> ColumnKind {
    match ty {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => ColumnKind::Text,
        DataType::Dictionary(_, v) => kind_of(v),
        DataType::Boolean => ColumnKind::Bool,
        DataType::Null => ColumnKind::Null,
        t if t.is_numeric() => ColumnKind::Number,
        DataType::Struct(_) => ColumnKind::Object,
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            match kind_of(f.data_type()) {
                ColumnKind::Text => ColumnKind::TextList,
                ColumnKind::Object => ColumnKind::ObjectList,
                _ => ColumnKind::OtherList,
            }
        }
        _ => ColumnKind::Other,
    }
}

/// A column converted to JSON values. Non-finite floats cannot be JSON numbers: they become
/// null and are flagged per row, so the row is rejected naming the column.
struct Converted {
    values: Vec<Value>,
    non_finite: Vec<Option<f64>>,
}

fn convert(array: &dyn Array) -> Result<Converted, String> {
    let n = array.len();
    let mut non_finite = vec![None; n];
    let cell =
        |i: usize, f: &dyn Fn(usize) -> Value| if array.is_null(i) { Value::Null } else { f(i) };
    macro_rules! ints {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            (0..n)
                .map(|i| cell(i, &|i| Value::from(a.value(i))))
                .collect()
        }};
    }
    macro_rules! floats {
        ($t:ty) => {{
            let a = array.as_primitive::<$t>();
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                if array.is_null(i) {
                    out.push(Value::Null);
                    continue;
                }
                let v = f64::from(a.value(i));
                match serde_json::Number::from_f64(v) {
                    Some(num) => out.push(Value::Number(num)),
                    None => {
                        non_finite[i] = Some(v);
                        out.push(Value::Null);
                    }
                }
            }
            out
        }};
    }
    let values: Vec<Value> = match array.data_type() {
        DataType::Null => vec![Value::Null; n],
        DataType::Boolean => {
            let a: &BooleanArray = array.as_boolean();
            (0..n)
                .map(|i| cell(i, &|i| Value::Bool(a.value(i))))
                .collect()
        }
        DataType::Int8 => ints!(Int8Type),
        DataType::Int16 => ints!(Int16Type),
        DataType::Int32 => ints!(Int32Type),
        DataType::Int64 => ints!(Int64Type),
        DataType::UInt8 => ints!(UInt8Type),
        DataType::UInt16 => ints!(UInt16Type),
        DataType::UInt32 => ints!(UInt32Type),
        DataType::UInt64 => ints!(UInt64Type),
        DataType::Float32 => floats!(Float32Type),
        DataType::Float64 => floats!(Float64Type),
        DataType::Float16 => {
            let wide =
                arrow::compute::cast(array, &DataType::Float64).map_err(|e| e.to_string())?;
            return convert(wide.as_ref());
        }
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            (0..n)
                .map(|i| cell(i, &|i| Value::String(a.value(i).to_string())))
                .collect()
        }
        DataType::LargeUtf8 => {
            let a = array.as_string::<i64>();
            (0..n)
                .map(|i| cell(i, &|i| Value::String(a.value(i).to_string())))
                .collect()
        }
        DataType::Utf8View => {
            let a = array.as_string_view();
            (0..n)
                .map(|i| cell(i, &|i| Value::String(a.value(i).to_string())))
                .collect()
        }
        DataType::List(_) => return convert_list(array.as_list::<i32>()),
        DataType::LargeList(_) => return convert_list(array.as_list::<i64>()),
        DataType::FixedSizeList(_, len) => {
            let a = array.as_fixed_size_list();
            let len = *len as usize;
            let mut child = convert(a.values().as_ref())?;
            let ranges = (0..n).map(|i| {
                let start = a.value_offset_at(i);
                start..start + len
            });
            return Ok(gather(array, ranges, &mut child));
        }
        DataType::Struct(_) => {
            let a = array.as_struct();
            let mut children: Vec<(String, Converted)> = Vec::new();
            for (field, col) in a.fields().iter().zip(a.columns()) {
                children.push((field.name().clone(), convert(col.as_ref())?));
            }
            let mut out = Vec::with_capacity(n);
            for (i, flag) in non_finite.iter_mut().enumerate() {
                if array.is_null(i) {
                    out.push(Value::Null);
                    continue;
                }
                let mut obj = Map::with_capacity(children.len());
                for (name, child) in children.iter_mut() {
                    if flag.is_none() {
                        *flag = child.non_finite[i];
                    }
                    obj.insert(name.clone(), std::mem::take(&mut child.values[i]));
                }
                out.push(Value::Object(obj));
            }
            out
        }
        DataType::Dictionary(_, _) => {
            let a = array.as_any_dictionary();
            let dict = convert(a.values().as_ref())?;
            let keys = a.normalized_keys();
            let mut out = Vec::with_capacity(n);
            for (i, key) in keys.iter().enumerate().take(n) {
                if array.is_null(i) {
                    out.push(Value::Null);
                } else {
                    non_finite[i] = dict.non_finite[*key];
                    out.push(dict.values[*key].clone());
                }
            }
            out
        }
        // Everything else (timestamps, decimals, binary...) can only be metadata for us:
        // keep Arrow's display form rather than fail on a column nobody asked for.
        _ => {
            let fmt = ArrayFormatter::try_new(array, &FormatOptions::default())
                .map_err(|e| e.to_string())?;
            (0..n)
                .map(|i| cell(i, &|i| Value::String(fmt.value(i).to_string())))
                .collect()
        }
    };
    Ok(Converted { values, non_finite })
}

fn convert_list<O: OffsetSizeTrait>(a: &GenericListArray<O>) -> Result<Converted, String> {
    let mut child = convert(a.values().as_ref())?;
    let offsets = a.value_offsets();
    let ranges = (0..a.len()).map(|i| offsets[i].as_usize()..offsets[i + 1].as_usize());
    Ok(gather(a, ranges, &mut child))
}

/// Builds list values from a converted child and each row's range of child indices.
fn gather(
    array: &dyn Array,
    ranges: impl Iterator<Item = std::ops::Range<usize>>,
    child: &mut Converted,
) -> Converted {
    let mut values = Vec::with_capacity(array.len());
    let mut non_finite = vec![None; array.len()];
    for (i, range) in ranges.enumerate() {
        if array.is_null(i) {
            values.push(Value::Null);
            continue;
        }
        non_finite[i] = child.non_finite[range.clone()].iter().find_map(|x| *x);
        // List ranges do not overlap, so each child value is moved out once.
        values.push(Value::Array(
            range
                .map(|j| std::mem::take(&mut child.values[j]))
                .collect(),
        ));
    }
    Converted { values, non_finite }
}

/// The Arrow type a layout column is written with.
fn arrow_type(ty: ColumnType) -> DataType {
    match ty {
        ColumnType::Text | ColumnType::Id | ColumnType::Json => DataType::Utf8,
        ColumnType::Float => DataType::Float64,
        ColumnType::Int => DataType::Int64,
        ColumnType::TextList => {
            DataType::List(Arc::new(ArrowField::new_list_field(DataType::Utf8, true)))
        }
        ColumnType::Messages => DataType::List(Arc::new(message_item_field())),
        ColumnType::TokenLogprobs => DataType::List(Arc::new(token_item_field(true))),
    }
}

/// `{id, text, bytes, logprob}` (+ `top`, a list of the same without `top`).
fn token_fields(with_top: bool) -> Fields {
    let mut f = vec![
        ArrowField::new("id", DataType::UInt32, true),
        ArrowField::new("text", DataType::Utf8, true),
        ArrowField::new(
            "bytes",
            DataType::List(Arc::new(ArrowField::new_list_field(DataType::UInt8, true))),
            true,
        ),
        ArrowField::new("logprob", DataType::Float64, false),
    ];
    if with_top {
        f.push(ArrowField::new(
            "top",
            DataType::List(Arc::new(token_item_field(false))),
            false,
        ));
    }
    Fields::from(f)
}

fn token_item_field(with_top: bool) -> ArrowField {
    ArrowField::new_list_field(DataType::Struct(token_fields(with_top)), true)
}

/// Column buffers of token log-prob objects (as serde writes [`crate::TokenLogprob`]).
#[derive(Default)]
struct TokenColumns {
    id: Vec<Option<u32>>,
    text: Vec<Option<String>>,
    bytes: Vec<Option<Vec<Option<u8>>>>,
    logprob: Vec<f64>,
}

impl TokenColumns {
    fn push(&mut self, v: &Value) -> Result<(), String> {
        let bad = || format!("internal: unexpected token log-prob value {v}");
        let obj = v.as_object().ok_or_else(bad)?;
        self.id.push(match obj.get("id") {
            None | Some(Value::Null) => None,
            Some(x) => Some(x.as_u64().and_then(|x| u32::try_from(x).ok()).ok_or_else(bad)?),
        });
        self.text.push(match obj.get("text") {
            None | Some(Value::Null) => None,
            Some(x) => Some(x.as_str().ok_or_else(bad)?.to_string()),
        });
        self.bytes.push(match obj.get("bytes") {
            None | Some(Value::Null) => None,
            Some(Value::Array(b)) => Some(
                b.iter()
                    .map(|x| x.as_u64().and_then(|x| u8::try_from(x).ok()).map(Some).ok_or_else(bad))
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => return Err(bad()),
        });
        self.logprob.push(obj.get("logprob").and_then(Value::as_f64).ok_or_else(bad)?);
        Ok(())
    }

    fn into_arrays(self) -> Vec<ArrayRef> {
        vec![
            Arc::new(UInt32Array::from(self.id)),
            Arc::new(StringArray::from(self.text)),
            Arc::new(ListArray::from_iter_primitive::<UInt8Type, _, _>(self.bytes)),
            Arc::new(Float64Array::from(self.logprob)),
        ]
    }
}

/// A `teacher_logprobs` column: per row null or a list of generated tokens, each with its
/// list of alternatives. Built bottom-up from flat buffers and offsets.
fn build_logprobs(values: &[Value]) -> Result<ArrayRef, String> {
    let (mut tokens, mut tops) = (TokenColumns::default(), TokenColumns::default());
    let (mut row_lens, mut row_valid, mut top_lens) = (Vec::new(), Vec::new(), Vec::new());
    for v in values {
        match v {
            Value::Null => {
                row_lens.push(0);
                row_valid.push(false);
            }
            Value::Array(items) => {
                for item in items {
                    tokens.push(item)?;
                    let alts = match item.get("top") {
                        None | Some(Value::Null) => &[][..],
                        Some(Value::Array(a)) => a.as_slice(),
                        Some(other) => return Err(format!("internal: unexpected `top` value {other}")),
                    };
                    top_lens.push(alts.len());
                    for alt in alts {
                        tops.push(alt)?;
                    }
                }
                row_lens.push(items.len());
                row_valid.push(true);
            }
            other => return Err(format!("internal: unexpected value {other} for a token log-probs column")),
        }
    }
    let err = |e: arrow::error::ArrowError| e.to_string();
    let top_struct = StructArray::try_new(token_fields(false), tops.into_arrays(), None).map_err(err)?;
    let top_list = ListArray::try_new(
        Arc::new(token_item_field(false)),
        OffsetBuffer::from_lengths(top_lens),
        Arc::new(top_struct),
        None,
    )
    .map_err(err)?;
    let mut arrays = tokens.into_arrays();
    arrays.push(Arc::new(top_list));
    let token_struct = StructArray::try_new(token_fields(true), arrays, None).map_err(err)?;
    let list = ListArray::try_new(
        Arc::new(token_item_field(true)),
        OffsetBuffer::from_lengths(row_lens),
        Arc::new(token_struct),
        Some(NullBuffer::from(row_valid)),
    )
    .map_err(err)?;
    Ok(Arc::new(list))
}

fn message_fields() -> Fields {
    Fields::from(vec![
        ArrowField::new("role", DataType::Utf8, false),
        ArrowField::new("content", DataType::Utf8, false),
    ])
}

fn message_item_field() -> ArrowField {
    ArrowField::new_list_field(DataType::Struct(message_fields()), true)
}

/// Writes rows as Parquet (zstd), one record batch per [`BATCH_ROWS`] rows.
pub(crate) struct ParquetSink {
    writer: ArrowWriter<File>,
    schema: SchemaRef,
    columns: Vec<(String, ColumnType)>,
    buffer: Vec<Vec<Value>>,
}

impl ParquetSink {
    /// `columns`: name, type and whether the column may hold nulls.
    pub fn new(file: File, columns: Vec<(String, ColumnType, bool)>) -> Result<Self, String> {
        let fields: Vec<ArrowField> = columns
            .iter()
            .map(|(name, ty, nullable)| ArrowField::new(name, arrow_type(*ty), *nullable))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(3).map_err(|e| e.to_string())?,
            ))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer =
            ArrowWriter::try_new(file, schema.clone(), Some(props)).map_err(|e| e.to_string())?;
        let buffer = columns
            .iter()
            .map(|_| Vec::with_capacity(BATCH_ROWS))
            .collect();
        let columns = columns.into_iter().map(|(n, t, _)| (n, t)).collect();
        Ok(Self {
            writer,
            schema,
            columns,
            buffer,
        })
    }

    pub fn write_row(&mut self, mut row: Map<String, Value>) -> Result<(), String> {
        for ((name, _), buf) in self.columns.iter().zip(self.buffer.iter_mut()) {
            buf.push(row.shift_remove(name).unwrap_or(Value::Null));
        }
        if self.buffer[0].len() >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), String> {
        if self.buffer.first().is_none_or(|b| b.is_empty()) {
            return Ok(());
        }
        let mut arrays = Vec::with_capacity(self.columns.len());
        for ((name, ty), buf) in self.columns.iter().zip(self.buffer.iter_mut()) {
            let values = std::mem::take(buf);
            arrays.push(build_array(*ty, &values).map_err(|m| format!("column `{name}`: {m}"))?);
        }
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| e.to_string())?;
        self.writer.write(&batch).map_err(|e| e.to_string())
    }

    pub fn finish(mut self) -> Result<File, String> {
        self.flush()?;
        self.writer.into_inner().map_err(|e| e.to_string())
    }
}

fn build_array(ty: ColumnType, values: &[Value]) -> Result<ArrayRef, String> {
    let bad = |v: &Value| format!("internal: unexpected value {v} for a {ty:?} column");
    Ok(match ty {
        ColumnType::TokenLogprobs => return build_logprobs(values),
        ColumnType::Text | ColumnType::Id | ColumnType::Json => {
            let mut b = StringBuilder::new();
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::String(s) => b.append_value(s),
                    Value::Object(_) if ty == ColumnType::Json => b.append_value(v.to_string()),
                    Value::Number(n) if ty == ColumnType::Id => b.append_value(n.to_string()),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Float => {
            let mut b = Float64Builder::new();
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::Number(n) => b.append_value(n.as_f64().ok_or_else(|| bad(v))?),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Int => {
            let mut b = Int64Builder::new();
            for v in values {
                match v {
                    Value::Null => b.append_null(),
                    Value::Number(n) => b.append_value(n.as_i64().ok_or_else(|| bad(v))?),
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::TextList => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for v in values {
                match v {
                    Value::Null => b.append(false),
                    Value::Array(items) => {
                        for item in items {
                            b.values()
                                .append_value(item.as_str().ok_or_else(|| bad(item))?);
                        }
                        b.append(true);
                    }
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
        ColumnType::Messages => {
            let fields = message_fields();
            let inner = StructBuilder::new(
                fields,
                vec![
                    Box::new(StringBuilder::new()),
                    Box::new(StringBuilder::new()),
                ],
            );
            let mut b = ListBuilder::new(inner).with_field(Arc::new(message_item_field()));
            for v in values {
                match v {
                    Value::Null => b.append(false),
                    Value::Array(items) => {
                        for item in items {
                            let role = item
                                .get("role")
                                .and_then(Value::as_str)
                                .ok_or_else(|| bad(item))?;
                            let content = item
                                .get("content")
                                .and_then(Value::as_str)
                                .ok_or_else(|| bad(item))?;
                            let s = b.values();
                            s.field_builder::<StringBuilder>(0)
                                .expect("role builder")
                                .append_value(role);
                            s.field_builder::<StringBuilder>(1)
                                .expect("content builder")
                                .append_value(content);
                            s.append(true);
                        }
                        b.append(true);
                    }
                    other => return Err(bad(other)),
                }
            }
            Arc::new(b.finish())
        }
    })
}
