//! Every layout x format: write -> read (layout detected) -> equal. Plus writer refusals and
//! atomicity.

mod common;

use std::path::Path;

use common::*;
use rmd_core::io::{
    read_all, read_all_pairs, write_records, ColumnMap, Field, Format, PairWriter, ReadOptions,
    Record, RecordWriter, WriteOptions,
};
use rmd_core::{Conversation, DataError, Layout, Message, PreferencePair};

fn roundtrip<R: Record + PartialEq + std::fmt::Debug>(dir: &Path, layout: Layout, records: &[R]) {
    for format in Format::ALL {
        let path = dir.join(format!("{}.{}", layout.name(), format.extension()));
        let n = write_records(&path, layout, records)
            .unwrap_or_else(|e| panic!("{layout} {format}: {e}"));
        assert_eq!(n, records.len() as u64);
        // Detected layout, default options.
        let mut reader = rmd_core::io::read_records::<R>(&path, &ReadOptions::default())
            .unwrap_or_else(|e| panic!("{layout} {format}: {e}"));
        assert_eq!(reader.layout(), layout, "{format}: detected layout");
        assert_eq!(reader.format(), format);
        let back: Vec<R> = reader
            .by_ref()
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{layout} {format}: {e}"));
        assert_eq!(
            back, records,
            "{layout} {format}: records differ after the round trip"
        );
        assert_eq!(reader.report().rows_read(), records.len() as u64);
        assert_eq!(reader.report().rows_yielded(), records.len() as u64);
        assert!(reader.report().is_clean());
        // The explicit layout reads the same.
        let (again, _) = read_all::<R>(&path, &ReadOptions::new().with_layout(layout)).unwrap();
        assert_eq!(again, records);
    }
}

#[test]
fn every_pair_layout_roundtrips_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    roundtrip(dir.path(), Layout::Explicit, &explicit_pairs());
    roundtrip(dir.path(), Layout::RmDistiller, &rm_distiller_pairs());
    roundtrip(dir.path(), Layout::RewardBench, &reward_bench_pairs());
    roundtrip(dir.path(), Layout::TrlConversational, &trl_pairs());
    roundtrip(dir.path(), Layout::AnthropicHh, &hh_pairs());
}

#[test]
fn benchmark_layouts_roundtrip_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    roundtrip(dir.path(), Layout::RewardBench2, &best_of_n());
    roundtrip(dir.path(), Layout::RmBench, &style_matrices());
    roundtrip(dir.path(), Layout::JudgeBench, &judge_pairs());
}

#[test]
fn empty_files_roundtrip_with_a_named_layout() {
    let dir = tempfile::tempdir().unwrap();
    for format in Format::ALL {
        let path = dir.path().join(format!("empty.{}", format.extension()));
        assert_eq!(
            write_records::<PreferencePair>(&path, Layout::Explicit, &[]).unwrap(),
            0
        );
        let back =
            read_all_pairs(&path, &ReadOptions::new().with_layout(Layout::Explicit)).unwrap();
        assert!(back.is_empty(), "{format}");
    }
    // Parquet keeps its schema, so even an empty file detects.
    let path = dir.path().join("empty.parquet");
    assert_eq!(
        rmd_core::io::detect_layout(&path, &ReadOptions::default()).unwrap(),
        Layout::Explicit
    );
    // An empty JSONL file has no columns to detect from.
    let err = rmd_core::io::detect_layout(dir.path().join("empty.jsonl"), &ReadOptions::default())
        .unwrap_err();
    assert!(
        matches!(err, DataError::UnknownLayout { ref columns, .. } if columns.is_empty()),
        "{err}"
    );
}

#[test]
fn renamed_columns_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let cols = ColumnMap::new()
        .prompt("instruction")
        .chosen("good")
        .with(Field::Rejected, "bad");
    let pairs = explicit_pairs();
    for format in Format::ALL {
        let path = dir.path().join(format!("renamed.{}", format.extension()));
        let mut w = PairWriter::create_with(
            &path,
            Layout::Explicit,
            &WriteOptions::new().with_columns(cols.clone()),
        )
        .unwrap();
        for p in &pairs {
            w.write(p).unwrap();
        }
        w.finish().unwrap();
        // Without the map, the file fits no layout.
        let err = rmd_core::io::read_pairs(&path, &ReadOptions::default()).unwrap_err();
        assert!(
            matches!(err, DataError::UnknownLayout { .. }),
            "{format}: {err}"
        );
        assert!(err.to_string().contains("instruction: string"), "{err}");
        let back = read_all_pairs(&path, &ReadOptions::new().with_columns(cols.clone())).unwrap();
        assert_eq!(back, pairs, "{format}");
    }
}

#[test]
fn a_json_file_holding_json_lines_is_read_as_lines() {
    let dir = tempfile::tempdir().unwrap();
    let lines = dir.path().join("lines.jsonl");
    write_records(&lines, Layout::Explicit, &explicit_pairs()).unwrap();
    // What `datasets.Dataset.to_json` produces: JSON Lines under a .json name.
    let json = dir.path().join("lines.json");
    std::fs::copy(&lines, &json).unwrap();
    // Ids are stored, so the different file stem does not matter.
    assert_eq!(
        read_all_pairs(&json, &ReadOptions::default()).unwrap(),
        explicit_pairs()
    );
}

fn refusal(layout: Layout, pair: &PreferencePair) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.jsonl");
    let mut w = PairWriter::create(&path, layout).unwrap();
    match w.write(pair).unwrap_err() {
        DataError::Unrepresentable {
            field,
            reason,
            id,
            layout: l,
            record,
            ..
        } => {
            assert_eq!(id, pair.id);
            assert_eq!(l, layout);
            assert_eq!(record, 0);
            // The writer stays usable and wrote nothing for the refused record.
            assert_eq!(w.written(), 0);
            (field, reason)
        }
        other => panic!("expected Unrepresentable, got {other}"),
    }
}

#[test]
fn writers_refuse_what_their_layout_cannot_represent() {
    let mut multi = explicit_pairs().remove(1);
    multi.prompt = Conversation::new(vec![
        Message::user("a"),
        Message::assistant("b"),
        Message::user("c"),
    ]);
    for layout in [Layout::Explicit, Layout::RmDistiller, Layout::RewardBench] {
        let (field, reason) = refusal(layout, &multi);
        assert_eq!(field, "prompt");
        assert!(reason.contains("3 message(s)"), "{reason}");
    }

    let mut system = explicit_pairs().remove(1);
    system.prompt = Conversation::new(vec![Message::system("s"), Message::user("u")]);
    let (field, reason) = refusal(Layout::AnthropicHh, &system);
    assert_eq!(field, "chosen");
    assert!(reason.contains("system"), "{reason}");

    let mut marker = explicit_pairs().remove(1);
    marker.chosen = "fine\n\nHuman: injected".into();
    assert_eq!(refusal(Layout::AnthropicHh, &marker).0, "chosen");

    // RM-Distiller requires scores and the teacher response, and has no margin column.
    let (field, _) = refusal(Layout::RmDistiller, &explicit_pairs().remove(1));
    assert_eq!(field, "chosen_score");
    let mut with_margin = rm_distiller_pairs().remove(0);
    with_margin.margin = Some(1.0);
    assert_eq!(refusal(Layout::RmDistiller, &with_margin).0, "margin");

    // RewardBench needs the subset, as a string.
    let (field, _) = refusal(Layout::RewardBench, &explicit_pairs().remove(1));
    assert_eq!(field, "subset");
    let mut bad_subset = reward_bench_pairs().remove(0);
    bad_subset
        .metadata
        .insert("subset".into(), serde_json::json!(3));
    assert_eq!(
        refusal(Layout::RewardBench, &bad_subset).0,
        "metadata.subset"
    );

    // What the reader would reject is refused too.
    let mut nan = explicit_pairs().remove(0);
    nan.chosen_score = Some(f64::NAN);
    let (field, reason) = refusal(Layout::Explicit, &nan);
    assert_eq!(field, "chosen_score");
    assert!(reason.contains("non-finite"), "{reason}");
    let mut blank = explicit_pairs().remove(0);
    blank.rejected = "  \n".into();
    assert_eq!(refusal(Layout::Explicit, &blank).0, "rejected");
    let mut empty_id = explicit_pairs().remove(0);
    empty_id.id = String::new();
    assert_eq!(refusal(Layout::Explicit, &empty_id).0, "id");

    // Teacher log-probs: only where the layout has the column, only with a teacher response,
    // and only valid values.
    let mut rb = reward_bench_pairs().remove(0);
    rb.teacher_response = Some("t".into());
    rb.teacher_logprobs = Some(sample_logprobs());
    let (field, reason) = refusal(Layout::RewardBench, &rb);
    assert_eq!(field, "teacher_logprobs");
    assert!(reason.contains("no teacher_logprobs column"), "{reason}");
    let mut orphan = explicit_pairs().remove(0);
    orphan.teacher_response = None;
    assert_eq!(refusal(Layout::Explicit, &orphan).0, "teacher_logprobs");
    let mut positive = explicit_pairs().remove(0);
    positive.teacher_logprobs.as_mut().unwrap().tokens[0].top[1].logprob = 0.5;
    let (field, reason) = refusal(Layout::Explicit, &positive);
    assert_eq!(field, "teacher_logprobs[0].top[1].logprob");
    assert!(reason.contains("positive"), "{reason}");
    let mut empty = explicit_pairs().remove(0);
    empty.teacher_logprobs = Some(Default::default());
    assert_eq!(refusal(Layout::Explicit, &empty).0, "teacher_logprobs");
}

#[test]
fn benchmark_writers_refuse_invalid_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut bon = best_of_n().remove(0);
    bon.num_correct = 2; // only one chosen
    let mut w = RecordWriter::create(dir.path().join("b.parquet"), Layout::RewardBench2).unwrap();
    let err = w.write(&bon).unwrap_err();
    assert!(
        matches!(err, DataError::Unrepresentable { ref field, .. } if field == "num_correct"),
        "{err}"
    );

    let mut jp = judge_pairs().remove(0);
    jp.prompt = Conversation::new(vec![Message::system("s"), Message::user("u")]);
    let mut w = RecordWriter::create(dir.path().join("j.json"), Layout::JudgeBench).unwrap();
    let err = w.write(&jp).unwrap_err();
    assert!(
        matches!(err, DataError::Unrepresentable { ref field, .. } if field == "prompt"),
        "{err}"
    );

    // A writer for the wrong record type is refused up front.
    let err = PairWriter::create(dir.path().join("x.jsonl"), Layout::RmBench).unwrap_err();
    assert!(matches!(err, DataError::WrongRecordKind { .. }), "{err}");
}

#[test]
fn writes_are_atomic() {
    let dir = tempfile::tempdir().unwrap();
    for format in Format::ALL {
        let path = dir.path().join(format!("atomic.{}", format.extension()));
        write_records(&path, Layout::Explicit, &explicit_pairs()[..1]).unwrap();
        let before = std::fs::read(&path).unwrap();
        {
            let mut w = PairWriter::create(&path, Layout::Explicit).unwrap();
            for p in explicit_pairs() {
                w.write(&p).unwrap();
            }
            // Dropped without finish: the old file stays, the temporary file is gone.
        }
        assert_eq!(std::fs::read(&path).unwrap(), before, "{format}");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        // Finishing replaces it.
        write_records(&path, Layout::Explicit, &explicit_pairs()).unwrap();
        assert_eq!(
            read_all_pairs(&path, &ReadOptions::default())
                .unwrap()
                .len(),
            3
        );
    }
    // Missing parent directories are created.
    let nested = dir.path().join("a/b/c.jsonl");
    write_records(&nested, Layout::Explicit, &explicit_pairs()).unwrap();
    assert!(nested.exists());
}

#[test]
fn written_json_has_the_documented_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shape.json");
    write_records(&path, Layout::RmDistiller, &rm_distiller_pairs()).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let rows = v.as_array().expect("a JSON array");
    assert_eq!(rows.len(), 3);
    let keys: Vec<&str> = rows[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "prompt",
            "chosen",
            "rejected",
            "chosen_score",
            "rejected_score",
            "teacher_response",
            "teacher_logprobs",
            "metadata"
        ]
    );
    assert_eq!(rows[0]["teacher_logprobs"], serde_json::to_value(sample_logprobs()).unwrap());
    assert_eq!(rows[1]["teacher_logprobs"], serde_json::Value::Null);
    assert_eq!(
        rows[0]["prompt"],
        serde_json::json!(format!("Question 0: {TRICKY}"))
    );
    assert_eq!(rows[0]["chosen_score"], serde_json::json!(8.0));
    assert_eq!(rows[1]["metadata"], serde_json::Value::Null);

    // TRL: explicit prompt list, completions as one assistant message.
    let path = dir.path().join("trl.jsonl");
    write_records(&path, Layout::TrlConversational, &trl_pairs()).unwrap();
    let first: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["prompt"].as_array().unwrap().len(), 3);
    assert_eq!(
        first["chosen"],
        serde_json::json!([{"role": "assistant", "content": "Good answer 0"}])
    );
}

#[test]
fn readers_and_writers_move_across_threads() {
    fn send<T: Send>() {}
    send::<rmd_core::io::PairReader>();
    send::<rmd_core::io::JudgePairReader>();
    send::<PairWriter>();
    send::<DataError>();
}
