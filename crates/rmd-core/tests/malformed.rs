//! Every malformed-row kind produces its typed error naming the file, row and field;
//! lenient mode skips and counts; file-level problems are typed too.

mod common;

use std::path::{Path, PathBuf};

use rmd_core::io::{
    read_all, read_best_of_n, read_judge_pairs, read_pairs, read_style_matrices, ErrorMode, Format,
    ReadOptions, RowErrorKind, RowProblem,
};
use rmd_core::{DataError, Layout, PreferencePair};

fn write_lines(dir: &Path, name: &str, lines: &[&str]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    path
}

/// Asserts `err` is a row error of `kind` at `row`/`field` and that its message says so.
fn assert_row_error(
    err: &DataError,
    path: &Path,
    row: usize,
    field: Option<&str>,
    kind: RowErrorKind,
) {
    let row_err = err
        .as_row()
        .unwrap_or_else(|| panic!("expected a row error, got {err}"));
    assert_eq!(row_err.kind(), kind, "{err}");
    assert_eq!(row_err.row, row, "{err}");
    assert_eq!(row_err.field.as_deref(), field, "{err}");
    assert_eq!(row_err.path, path);
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("row {row} (0-based)")), "{msg}");
    if let Some(f) = field {
        assert!(msg.contains(&format!("field `{f}`")), "{msg}");
    }
}

/// Reads pairs strictly and returns the first error.
fn first_pair_error(path: &Path, layout: Option<Layout>) -> DataError {
    let mut opts = ReadOptions::new();
    opts.layout = layout;
    let reader = read_pairs(path, &opts).unwrap_or_else(|e| panic!("open failed: {e}"));
    let mut yielded = 0;
    for r in reader {
        match r {
            Ok(_) => yielded += 1,
            Err(e) => return e,
        }
    }
    panic!("no error after {yielded} rows");
}

const GOOD: &str = r#"{"prompt": "p", "chosen": "c", "rejected": "r"}"#;

#[test]
fn explicit_row_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: [(&str, Option<&str>, RowErrorKind); 9] = [
        (
            r#"{"prompt": "p", "chosen": "c"}"#,
            Some("rejected"),
            RowErrorKind::MissingField,
        ),
        (
            r#"{"prompt": "p", "chosen": 5, "rejected": "r"}"#,
            Some("chosen"),
            RowErrorKind::WrongType,
        ),
        (
            r#"{"prompt": "p", "chosen": null, "rejected": "r"}"#,
            Some("chosen"),
            RowErrorKind::Null,
        ),
        (
            r#"{"prompt": " \n ", "chosen": "c", "rejected": "r"}"#,
            Some("prompt"),
            RowErrorKind::EmptyText,
        ),
        (
            r#"{"prompt": "p", "chosen": "c", "rejected": "r", "chosen_score": "9"}"#,
            Some("chosen_score"),
            RowErrorKind::WrongType,
        ),
        (
            r#"{"prompt": "p", "chosen": "c", "rejected": "r", "id": 1.5}"#,
            Some("id"),
            RowErrorKind::WrongType,
        ),
        (
            r#"{"prompt": "p", "chosen": "c", "rejected": "r", "metadata": [1]}"#,
            Some("metadata"),
            RowErrorKind::WrongType,
        ),
        (
            r#"{"prompt": "p", "chosen": "c", "rejected": "r", "metadata": {"x": 1}, "x": 2}"#,
            Some("x"),
            RowErrorKind::BadValue,
        ),
        (
            r#"{"prompt": "p", "chosen": "c", "rejected": "r", "chosen_score": 1e999}"#,
            None,
            RowErrorKind::InvalidJson,
        ),
    ];
    for (i, (line, field, kind)) in cases.into_iter().enumerate() {
        let path = write_lines(d, &format!("case{i}.jsonl"), &[GOOD, GOOD, line, GOOD]);
        let err = first_pair_error(&path, Some(Layout::Explicit));
        assert_row_error(&err, &path, 2, field, kind);
    }
}

#[test]
fn invalid_json_line_and_non_object_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_lines(
        dir.path(),
        "bad.jsonl",
        &[GOOD, r#"{"prompt": "p", "chosen": "#, GOOD],
    );
    let err = first_pair_error(&path, None);
    assert_row_error(&err, &path, 1, None, RowErrorKind::InvalidJson);
    assert!(err.to_string().contains("invalid JSON"), "{err}");

    let path = write_lines(dir.path(), "array_row.jsonl", &[GOOD, "[1, 2]"]);
    let err = first_pair_error(&path, None);
    assert_row_error(&err, &path, 1, None, RowErrorKind::WrongType);

    // Blank lines hold no row but keep the line numbering.
    let path = write_lines(
        dir.path(),
        "blank.jsonl",
        &[
            GOOD,
            "",
            "   ",
            r#"{"prompt": "p", "chosen": "c", "rejected": null}"#,
        ],
    );
    let err = first_pair_error(&path, None);
    assert_row_error(&err, &path, 3, Some("rejected"), RowErrorKind::Null);
}

#[test]
fn hh_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go"}"#;
    let cases: [(&str, &str, RowErrorKind); 5] = [
        (
            r#"{"chosen": "no markers here", "rejected": "\n\nHuman: hi\n\nAssistant: go"}"#,
            "chosen",
            RowErrorKind::BadHh,
        ),
        (
            r#"{"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: hi"}"#,
            "rejected",
            RowErrorKind::BadHh,
        ),
        (
            r#"{"chosen": "\n\nHuman: hi\n\nAssistant: a", "rejected": "\n\nHuman: bye\n\nAssistant: b"}"#,
            "rejected",
            RowErrorKind::PrefixMismatch,
        ),
        (
            r#"{"chosen": "\n\nHuman: hi\n\nAssistant: ", "rejected": "\n\nHuman: hi\n\nAssistant: b"}"#,
            "chosen",
            RowErrorKind::EmptyText,
        ),
        (
            r#"{"chosen": "\n\nAssistant: a", "rejected": "\n\nAssistant: b"}"#,
            "chosen",
            RowErrorKind::BadHh,
        ),
    ];
    for (i, (line, field, kind)) in cases.into_iter().enumerate() {
        let path = write_lines(dir.path(), &format!("hh{i}.jsonl"), &[good, line]);
        let err = first_pair_error(&path, None);
        assert_row_error(&err, &path, 1, Some(field), kind);
    }
}

#[test]
fn trl_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}"#;
    let cases: [(&str, &str, RowErrorKind); 6] = [
        // Prompts differ.
        (
            r#"{"chosen": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "b"}]}"#,
            "rejected",
            RowErrorKind::PrefixMismatch,
        ),
        // Final turn is not the assistant's.
        (
            r#"{"chosen": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}], "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}"#,
            "chosen[1].role",
            RowErrorKind::BadValue,
        ),
        // Unknown role.
        (
            r#"{"chosen": [{"role": "wizard", "content": "q"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}"#,
            "chosen[0].role",
            RowErrorKind::BadValue,
        ),
        // Missing content.
        (
            r#"{"chosen": [{"role": "user"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}"#,
            "chosen[0].content",
            RowErrorKind::MissingField,
        ),
        // No prompt at all.
        (
            r#"{"chosen": [{"role": "assistant", "content": "a"}], "rejected": [{"role": "assistant", "content": "b"}]}"#,
            "chosen",
            RowErrorKind::WrongLength,
        ),
        // A message key we would lose.
        (
            r#"{"chosen": [{"role": "user", "content": "q", "name": "bob"}, {"role": "assistant", "content": "a"}], "rejected": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}]}"#,
            "chosen[0].name",
            RowErrorKind::BadValue,
        ),
    ];
    for (i, (line, field, kind)) in cases.into_iter().enumerate() {
        let path = write_lines(dir.path(), &format!("trl{i}.jsonl"), &[good, line]);
        let err = first_pair_error(&path, None);
        assert_row_error(&err, &path, 1, Some(field), kind);
    }
    // Explicit prompt list: completions must be a single message.
    let line = r#"{"prompt": [{"role": "user", "content": "q"}], "chosen": [{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "a2"}], "rejected": [{"role": "assistant", "content": "b"}]}"#;
    let path = write_lines(dir.path(), "trl_explicit.jsonl", &[line]);
    let err = first_pair_error(&path, None);
    assert_row_error(&err, &path, 0, Some("chosen"), RowErrorKind::WrongLength);
}

#[test]
fn benchmark_kinds() {
    let dir = tempfile::tempdir().unwrap();
    // JudgeBench: a tie label is an error naming the field.
    let jb = |label: &str| {
        format!(
            r#"{{"pair_id": "x", "original_id": "o", "source": "s", "question": "q", "response_model": "m", "response_A": "a", "response_B": "b", "label": "{label}"}}"#
        )
    };
    let path = write_lines(
        dir.path(),
        "jb.jsonl",
        &[&jb("A>B"), &jb("B>A"), &jb("A=B")],
    );
    let reader = read_judge_pairs(&path, &ReadOptions::default()).unwrap();
    assert_eq!(reader.layout(), Layout::JudgeBench);
    let err = reader.filter_map(Result::err).next().expect("an error");
    assert_row_error(&err, &path, 2, Some("label"), RowErrorKind::BadLabel);
    assert!(err.to_string().contains("\"A=B\""), "{err}");

    // RM-Bench: exactly 3 variants.
    let path = write_lines(
        dir.path(),
        "rmb.jsonl",
        &[
            r#"{"id": 1, "prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["x", "y", "z"], "domain": "chat"}"#,
            r#"{"id": 2, "prompt": "p", "chosen": ["a", "b"], "rejected": ["x", "y", "z"], "domain": "chat"}"#,
        ],
    );
    let reader = read_style_matrices(&path, &ReadOptions::default()).unwrap();
    let err = reader.filter_map(Result::err).next().expect("an error");
    assert_row_error(&err, &path, 1, Some("chosen"), RowErrorKind::WrongLength);
    assert!(err.to_string().contains("found 2"), "{err}");

    // RewardBench 2: num_correct beyond the chosen list; a non-string completion.
    let path = write_lines(
        dir.path(),
        "rb2.jsonl",
        &[
            r#"{"id": "1", "prompt": "p", "chosen": ["a"], "rejected": ["x"], "num_correct": 1, "subset": "Math"}"#,
            r#"{"id": "2", "prompt": "p", "chosen": ["a"], "rejected": ["x"], "num_correct": 2, "subset": "Math"}"#,
            r#"{"id": "3", "prompt": "p", "chosen": ["a"], "rejected": ["x", 4], "num_correct": 1, "subset": "Math"}"#,
            r#"{"id": "4", "prompt": "p", "chosen": ["a"], "rejected": ["x"], "num_correct": -1, "subset": "Math"}"#,
        ],
    );
    let errors: Vec<DataError> = read_best_of_n(&path, &ReadOptions::default().lenient())
        .unwrap()
        .filter_map(Result::err)
        .collect();
    assert!(errors.is_empty(), "lenient mode yields no errors");
    let mut reader = read_best_of_n(&path, &ReadOptions::default().lenient()).unwrap();
    assert_eq!(reader.by_ref().filter_map(Result::ok).count(), 1);
    let report = reader.report();
    assert_eq!(report.skipped(RowErrorKind::WrongLength), 1);
    assert_eq!(report.skipped(RowErrorKind::WrongType), 1);
    assert_eq!(report.skipped(RowErrorKind::BadValue), 1);
    assert!(
        report.first_errors()[1].contains("field `rejected[1]`"),
        "{:?}",
        report.first_errors()
    );
}

#[test]
fn non_finite_score_in_parquet() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/nan_score.parquet");
    let err = first_pair_error(&path, None);
    assert_row_error(
        &err,
        &path,
        1,
        Some("chosen_score"),
        RowErrorKind::NonFinite,
    );
    assert!(matches!(err.as_row().unwrap().problem, RowProblem::NonFinite(v) if v.is_nan()));
}

#[test]
fn lenient_mode_counts_every_skip_by_reason() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        GOOD,                                                  // 0 ok
        r#"{"prompt": "p", "chosen": "c"}"#,                   // 1 missing
        "{not json",                                           // 2 invalid
        GOOD,                                                  // 3 ok
        r#"{"prompt": "p", "chosen": null, "rejected": "r"}"#, // 4 null
        "[]",                                                  // 5 wrong type (row)
        r#"{"prompt": "", "chosen": "c", "rejected": "r"}"#,   // 6 empty
        "{\"truncated\": ",                                    // 7 invalid
        GOOD,                                                  // 8 ok
    ];
    let path = write_lines(dir.path(), "mixed.jsonl", &lines);
    let mut reader = read_pairs(
        &path,
        &ReadOptions::new().with_layout(Layout::Explicit).lenient(),
    )
    .unwrap();
    let pairs: Vec<PreferencePair> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    // Generated ids keep the row index of the file, so skipped rows leave gaps.
    let ids: Vec<&str> = pairs.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["mixed:0", "mixed:3", "mixed:8"]);
    let r = reader.report();
    assert_eq!(
        (r.rows_read(), r.rows_yielded(), r.skipped_total()),
        (9, 3, 6)
    );
    assert_eq!(r.skipped(RowErrorKind::MissingField), 1);
    assert_eq!(r.skipped(RowErrorKind::InvalidJson), 2);
    assert_eq!(r.skipped(RowErrorKind::Null), 1);
    assert_eq!(r.skipped(RowErrorKind::WrongType), 1);
    assert_eq!(r.skipped(RowErrorKind::EmptyText), 1);
    assert_eq!(r.first_errors().len(), 6);
    assert!(
        r.first_errors()[0].contains("row 1 (0-based), field `rejected`"),
        "{}",
        r.first_errors()[0]
    );
    assert_eq!(r.to_string(), "read 9 rows, yielded 3, skipped 6 (missing_field: 1, wrong_type: 1, null: 1, empty_text: 1, invalid_json: 2)");

    // Strict mode stops at row 1.
    let mut strict = read_pairs(&path, &ReadOptions::new().with_layout(Layout::Explicit)).unwrap();
    assert!(strict.next().unwrap().is_ok());
    assert_row_error(
        &strict.next().unwrap().unwrap_err(),
        &path,
        1,
        Some("rejected"),
        RowErrorKind::MissingField,
    );
    assert!(strict.next().is_none(), "strict mode ends after the error");
    assert_eq!(strict.report().rows_read(), 2);
    assert_eq!(ReadOptions::default().mode, ErrorMode::Strict);
}

#[test]
fn json_array_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A bad element is a row error and can be skipped: the scanner resynchronises at the comma.
    let path = d.join("arr.json");
    std::fs::write(
        &path,
        format!("[{GOOD},\n {{\"prompt\": tru}},\n {GOOD} , 17]"),
    )
    .unwrap();
    let err = first_pair_error(&path, None);
    assert_row_error(&err, &path, 1, None, RowErrorKind::InvalidJson);
    let (pairs, report) = read_all::<PreferencePair>(&path, &ReadOptions::new().lenient()).unwrap();
    assert_eq!(pairs.len(), 2);
    assert_eq!(pairs[1].id, "arr:2");
    assert_eq!(report.skipped(RowErrorKind::InvalidJson), 1);
    assert_eq!(report.skipped(RowErrorKind::WrongType), 1);

    // Structure errors are fatal, even in lenient mode.
    let fatal = [
        (format!("[{GOOD}, {GOOD}"), 1, "not closed"),
        (format!("[{GOOD}, ]"), 1, "trailing comma"),
        (format!("[{GOOD},, {GOOD}]"), 1, "empty element"),
        (format!("[{GOOD}] extra"), 1, "after the closing"),
        (GOOD.to_string(), 0, "expected `[`"),
    ];
    for (i, (text, row, needle)) in fatal.into_iter().enumerate() {
        let path = d.join(format!("fatal{i}.json"));
        std::fs::write(&path, &text).unwrap();
        let opts = ReadOptions::new().with_layout(Layout::Explicit).lenient();
        // A single-object `.json` file is JSON Lines by its first byte; force the array reader.
        let opts = if i == 4 {
            opts.with_format(Format::Json)
        } else {
            opts
        };
        let result = read_all::<PreferencePair>(&path, &opts);
        match result {
            Err(DataError::MalformedJsonArray {
                row: r,
                ref message,
                ..
            }) if i != 4 => {
                assert_eq!(r, row, "{text}");
                assert!(message.contains(needle), "{message}");
            }
            Ok((pairs, _)) if i == 4 => assert_eq!(pairs.len(), 1, "read as one JSON line"),
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn file_level_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Unsupported extension.
    let csv = d.join("data.csv");
    std::fs::write(&csv, "a,b\n").unwrap();
    let err = read_pairs(&csv, &ReadOptions::default()).err().unwrap();
    assert!(matches!(err, DataError::UnsupportedFormat { .. }), "{err}");
    assert!(err.to_string().contains("data.csv"), "{err}");
    assert!(Format::from_path("x.tar.gz").is_err());
    assert_eq!(Format::from_path("X.JSONL").unwrap(), Format::Jsonl);

    // Unknown layout lists the columns seen.
    let path = write_lines(d, "unknown.jsonl", &[r#"{"question": "q", "answer": 3}"#]);
    let err = read_pairs(&path, &ReadOptions::default()).err().unwrap();
    assert!(matches!(err, DataError::UnknownLayout { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("[question: string, answer: number]"),
        "{err}"
    );

    // Ambiguous: both RewardBench 2 and RM-Bench columns.
    let path = write_lines(
        d,
        "ambiguous.jsonl",
        &[
            r#"{"id": 1, "prompt": "p", "chosen": ["a"], "rejected": ["b"], "num_correct": 1, "subset": "s", "domain": "d"}"#,
        ],
    );
    let err = read_best_of_n(&path, &ReadOptions::default())
        .err()
        .unwrap();
    match &err {
        DataError::AmbiguousLayout { candidates, .. } => {
            assert_eq!(candidates, &[Layout::RewardBench2, Layout::RmBench])
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("domain: string"), "{err}");

    // Asking for the wrong record type.
    let path = write_lines(
        d,
        "rmb.jsonl",
        &[
            r#"{"id": 1, "prompt": "p", "chosen": ["a", "b", "c"], "rejected": ["x", "y", "z"], "domain": "chat"}"#,
        ],
    );
    let err = read_pairs(&path, &ReadOptions::default()).err().unwrap();
    assert!(
        matches!(
            err,
            DataError::WrongRecordKind {
                layout: Layout::RmBench,
                ..
            }
        ),
        "{err}"
    );

    // A Parquet schema without a required column fails at open.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hf_hh.parquet");
    let err = read_pairs(&fixture, &ReadOptions::new().with_layout(Layout::Explicit))
        .err()
        .unwrap();
    match &err {
        DataError::MissingColumn { column, .. } => assert_eq!(column, "prompt"),
        other => panic!("{other}"),
    }

    // Missing file.
    let err = read_pairs(d.join("nope.jsonl"), &ReadOptions::default())
        .err()
        .unwrap();
    assert!(matches!(err, DataError::Io { .. }), "{err}");

    // Not a Parquet file.
    let fake = d.join("fake.parquet");
    std::fs::write(&fake, "hello").unwrap();
    let err = read_pairs(&fake, &ReadOptions::default()).err().unwrap();
    assert!(matches!(err, DataError::Parquet { .. }), "{err}");

    // Two fields on one column.
    let cols = rmd_core::ColumnMap::new().chosen("x").rejected("x");
    let path = write_lines(d, "ok.jsonl", &[GOOD]);
    let err = read_pairs(
        &path,
        &ReadOptions::new()
            .with_layout(Layout::Explicit)
            .with_columns(cols),
    )
    .err()
    .unwrap();
    assert!(matches!(err, DataError::InvalidOption(_)), "{err}");
}

#[test]
fn ids() {
    let dir = tempfile::tempdir().unwrap();
    // Integer ids become strings; rows of a file without ids are named <stem>:<row>.
    let path = write_lines(
        dir.path(),
        "with_ids.jsonl",
        &[
            r#"{"id": 42, "prompt": "p", "chosen": "c", "rejected": "r"}"#,
            r#"{"id": "abc", "prompt": "p", "chosen": "c", "rejected": "r"}"#,
            r#"{"prompt": "p", "chosen": "c", "rejected": "r"}"#,
        ],
    );
    let mut reader = read_pairs(&path, &ReadOptions::default()).unwrap();
    assert_eq!(reader.next().unwrap().unwrap().id, "42");
    assert_eq!(reader.next().unwrap().unwrap().id, "abc");
    // The file has an id column, so a row without one is malformed, not renamed.
    assert_row_error(
        &reader.next().unwrap().unwrap_err(),
        &path,
        2,
        Some("id"),
        RowErrorKind::MissingField,
    );

    let path = write_lines(dir.path(), "train-00000.jsonl", &[GOOD, GOOD]);
    let ids: Vec<String> = read_pairs(&path, &ReadOptions::default())
        .unwrap()
        .map(|p| p.unwrap().id)
        .collect();
    assert_eq!(ids, ["train-00000:0", "train-00000:1"]);
}

#[test]
fn teacher_logprobs_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let base = r#""prompt": "p", "chosen": "c", "rejected": "r", "teacher_response": "t""#;
    let cases: [(String, &str, RowErrorKind); 11] = [
        (format!(r#"{{{base}, "teacher_logprobs": {{"text": "t"}}}}"#), "teacher_logprobs", RowErrorKind::WrongType),
        (format!(r#"{{{base}, "teacher_logprobs": []}}"#), "teacher_logprobs", RowErrorKind::BadValue),
        (format!(r#"{{{base}, "teacher_logprobs": [1]}}"#), "teacher_logprobs[0]", RowErrorKind::WrongType),
        (format!(r#"{{{base}, "teacher_logprobs": [{{"text": "t"}}]}}"#), "teacher_logprobs[0].logprob", RowErrorKind::MissingField),
        (format!(r#"{{{base}, "teacher_logprobs": [{{"text": "t", "logprob": "-1"}}]}}"#), "teacher_logprobs[0].logprob", RowErrorKind::WrongType),
        (format!(r#"{{{base}, "teacher_logprobs": [{{"text": "t", "logprob": 0.5}}]}}"#), "teacher_logprobs[0].logprob", RowErrorKind::BadValue),
        (format!(r#"{{{base}, "teacher_logprobs": [{{"logprob": -1}}]}}"#), "teacher_logprobs[0]", RowErrorKind::BadValue),
        (format!(r#"{{{base}, "teacher_logprobs": [{{"id": -3, "logprob": -1}}]}}"#), "teacher_logprobs[0].id", RowErrorKind::BadValue),
        (
            format!(r#"{{{base}, "teacher_logprobs": [{{"text": "t", "logprob": -1, "top": [{{"text": "u", "logprob": -1, "bytes": [300]}}]}}]}}"#),
            "teacher_logprobs[0].top[0].bytes[0]",
            RowErrorKind::BadValue,
        ),
        (
            format!(r#"{{{base}, "teacher_logprobs": [{{"text": "t", "logprob": -1, "top": [{{"text": "u", "logprob": -1, "rank": 1}}]}}]}}"#),
            "teacher_logprobs[0].top[0].rank",
            RowErrorKind::BadValue,
        ),
        (
            r#"{"prompt": "p", "chosen": "c", "rejected": "r", "teacher_logprobs": [{"text": "t", "logprob": -1}]}"#.to_string(),
            "teacher_logprobs",
            RowErrorKind::BadValue,
        ),
    ];
    for (i, (line, field, kind)) in cases.into_iter().enumerate() {
        let path = write_lines(d, &format!("lp{i}.jsonl"), &[GOOD, line.as_str(), GOOD]);
        let err = first_pair_error(&path, Some(Layout::Explicit));
        assert_row_error(&err, &path, 1, Some(field), kind);
    }
    // A JSON string holding the list (how some Parquet writers store nested data) reads too.
    let ok = format!(r#"{{{base}, "teacher_logprobs": "[{{\"text\": \"t\", \"logprob\": -0.5, \"top\": []}}]"}}"#);
    let path = write_lines(d, "lp_string.jsonl", &[ok.as_str()]);
    let pairs = rmd_core::io::read_all_pairs(&path, &ReadOptions::new().with_layout(Layout::Explicit)).unwrap();
    assert_eq!(pairs[0].teacher_logprobs.as_ref().unwrap().tokens[0].token.logprob, -0.5);
}
