//! The pipeline end to end with the embedded world teacher: refined pairs are minimal
//! edits that break the decoration cue, reconciliation adds up, and the file-based job
//! writes a dataset rmd-core reads back.

use std::collections::HashSet;
use std::path::Path;

use rmd_core::io::{read_all_pairs, write_pairs, ReadOptions};
use rmd_core::{Layout, PreferencePair};
use rmd_synth::{
    normalized_word_edit_distance, run_config, synthesize_world, DropReason, PipelineConfig, RowStatus, RunOptions,
    SynthConfig, WorldSynthConfig,
};
use rmd_synth::edit_distance;
use rmd_teacher::world::{decoration_features, is_correct, split_words, Question, Split, World, WorldConfig};
use rmd_teacher::EmbeddedConfig;

fn question_of(p: &PreferencePair) -> Question {
    Question::find_in(p.prompt.last_user_text().unwrap()).unwrap()
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

fn word_edits(a: &str, b: &str) -> usize {
    edit_distance(&split_words(a), &split_words(b))
}

fn decorated(s: &str) -> f64 {
    (decoration_features(s) > 0) as u8 as f64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refined_pairs_are_minimal_edits_that_break_the_cue() {
    let cfg = WorldSynthConfig { prompts: 150, ..WorldSynthConfig::default() };
    let data = synthesize_world(&cfg).await.unwrap();
    for route in [&data.raw, &data.refined] {
        let r = &route.report;
        assert!(r.reconciled && r.complete, "{}", r.summary());
        assert_eq!(r.input_rows, 150 * 6);
        assert_eq!(r.kept as usize, route.pairs.len());
        assert_eq!(r.dropped, r.dropped_by_reason.values().sum::<u64>());
        assert_eq!(route.outcomes.len() as u64, r.input_rows);
    }
    let (raw, refined) = (&data.raw.pairs, &data.refined.pairs);
    assert!(refined.len() > 300, "{}", data.refined.report.summary());

    // Raw pairs differ in much more than the answer; refined pairs differ by a small edit.
    let raw_dist = mean(raw.iter().map(|p| normalized_word_edit_distance(&p.chosen, &p.rejected)));
    let refined_mean = mean(refined.iter().map(|p| normalized_word_edit_distance(&p.chosen, &p.rejected)));
    assert!(refined_mean < 0.3 && refined_mean < 0.5 * raw_dist, "refined {refined_mean} vs raw {raw_dist}");
    // Exactly one word (the answer number) changed in every refined pair.
    assert!(refined.iter().all(|p| word_edits(&p.chosen, &p.rejected) == 1));

    for p in refined {
        let q = question_of(p);
        // The edit fixes what was wrong and keeps the style.
        assert!(is_correct(&q, &p.chosen), "{p:?}");
        assert!(!is_correct(&q, &p.rejected), "{p:?}");
        assert_eq!(decoration_features(&p.chosen), decoration_features(&p.rejected));
        assert!(p.chosen_score.unwrap() > p.rejected_score.unwrap());
        assert!(is_correct(&q, p.teacher_response.as_deref().unwrap()));
        assert!(p.metadata.contains_key("original_chosen"));
    }
    // The raw route inherits the pool's cue: chosen answers are decorated far more often.
    let raw_cue = mean(raw.iter().map(|p| decorated(&p.chosen))) - mean(raw.iter().map(|p| decorated(&p.rejected)));
    let refined_cue =
        mean(refined.iter().map(|p| decorated(&p.chosen))) - mean(refined.iter().map(|p| decorated(&p.rejected)));
    assert!(raw_cue > 0.3, "raw cue {raw_cue}");
    assert_eq!(refined_cue, 0.0);
    // Position bias 0.5 points, averaged over both orders, is measured back.
    let bias = data.raw.report.position.mean_first_minus_second;
    assert!((bias - 0.5).abs() < 0.1, "{bias}");
    // Every refined row comes from a raw-route row (same ids, same annotations).
    let raw_ids: HashSet<&str> = raw.iter().map(|p| p.id.as_str()).collect();
    assert!(refined.iter().all(|p| raw_ids.contains(p.id.as_str())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_errors_are_reasked_or_dropped_never_defaulted() {
    let cfg = WorldSynthConfig {
        prompts: 60,
        teacher: EmbeddedConfig { format_error_rate: 0.35, ..EmbeddedConfig::default() },
        ..WorldSynthConfig::default()
    };
    let data = synthesize_world(&cfg).await.unwrap();
    let rep = &data.refined.report;
    assert!(rep.reconciled && rep.complete, "{}", rep.summary());
    let stats = rep.teacher_this_run.as_ref().unwrap();
    assert!(stats.reasks > 0 && rep.teacher_total.parse_failures > 0);
    let unparseable: u64 = rep.dropped_by_reason.iter().filter(|(k, _)| k.ends_with(".unparseable")).map(|(_, v)| v).sum();
    assert!(unparseable > 0, "{}", rep.summary());
    for o in &data.refined.outcomes {
        match &o.outcome {
            RowStatus::Dropped { drop: DropReason::Unparseable { stage, .. } } => {
                // Three attempts (max_reasks = 2), all kept raw.
                let n: usize = o.raw.values().map(Vec::len).sum();
                assert!(n >= 3, "{stage:?} {:?}", o.raw);
            }
            RowStatus::Kept { pair } => {
                let q = question_of(pair);
                assert!(is_correct(&q, &pair.chosen));
                assert!(pair.chosen_score.unwrap() >= 1.0 && pair.chosen_score.unwrap() <= 10.0);
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_margin_ties_and_order_flips() {
    let base = WorldSynthConfig {
        prompts: 80,
        teacher: EmbeddedConfig { judge_noise: 0.0, position_bias: 0.0, ..EmbeddedConfig::default() },
        ..WorldSynthConfig::default()
    };
    // Noise-free judge: two correct (or equally wrong) candidates always tie.
    let plain = synthesize_world(&base).await.unwrap().raw.report;
    let ties = plain.dropped_by_reason["filter.tie"];
    assert!(ties > 0);
    let regraded = synthesize_world(&WorldSynthConfig {
        pipeline: PipelineConfig { regrade_ties: true, ..PipelineConfig::default() },
        ..base.clone()
    })
    .await
    .unwrap()
    .raw
    .report;
    let ties_left = regraded.dropped_by_reason.get("filter.tie").copied().unwrap_or(0);
    assert!(ties_left * 3 < ties, "{ties} -> {ties_left}");
    assert_eq!(regraded.kept, plain.kept + (ties - ties_left));

    let strict = synthesize_world(&WorldSynthConfig {
        pipeline: PipelineConfig { min_margin: 4.5, ..PipelineConfig::default() },
        ..base.clone()
    })
    .await
    .unwrap();
    // Gaps are exact quality differences: 9 vs <= 4 passes 4.5, wrong vs wrong does not.
    assert!(strict.raw.pairs.iter().all(|p| p.chosen_score.unwrap() - p.rejected_score.unwrap() > 4.5));
    assert!(strict.raw.report.dropped_by_reason["filter.below_margin"] > 0);

    let biased = WorldSynthConfig {
        teacher: EmbeddedConfig { judge_noise: 1.5, position_bias: 3.0, ..EmbeddedConfig::default() },
        pipeline: PipelineConfig { drop_order_flips: true, ..PipelineConfig::default() },
        ..base
    };
    let r = synthesize_world(&biased).await.unwrap().raw.report;
    assert!(r.position.order_flips > 0);
    assert_eq!(r.dropped_by_reason["filter.order_disagreement"], r.position.order_flips);
    assert!(r.reconciled);
}

fn write_config(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("synth.toml");
    std::fs::write(&path, body).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_job_writes_dataset_report_provenance_and_resumes_for_free() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = write_config(
        dir.path(),
        r#"
        [input]
        kind = "world"
        prompts = 40
        [output]
        path = "out/refined.parquet"
        [teacher]
        cache_dir = "cache"
        [teacher.backend]
        kind = "embedded"
        format_error_rate = 0.1
        "#,
    );
    let cfg = SynthConfig::load(&cfg_path).unwrap();
    let res = run_config(&cfg, &RunOptions::default()).await.unwrap();
    let rep = &res.report;
    assert!(rep.reconciled && rep.complete, "{}", rep.summary());
    assert_eq!((rep.input_rows, rep.output_rows), (240, Some(rep.kept)));

    let pairs = read_all_pairs(&res.output, &ReadOptions::new()).unwrap();
    assert_eq!(pairs.len() as u64, rep.kept);
    let ids: HashSet<&str> = pairs.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), pairs.len());
    for p in &pairs {
        assert_eq!(word_edits(&p.chosen, &p.rejected), 1);
        assert!(p.teacher_response.is_some() && p.chosen_score.is_some() && p.rejected_score.is_some());
        let raw = &p.metadata["synth"]["teacher_raw"];
        assert!(raw["refine"].as_array().is_some_and(|a| !a.is_empty()), "{raw}");
    }
    let dropped_lines = std::fs::read_to_string(&res.dropped).unwrap().lines().count() as u64;
    assert_eq!(dropped_lines, rep.dropped);
    let on_disk: serde_json::Value = serde_json::from_slice(&std::fs::read(&res.report_path).unwrap()).unwrap();
    assert_eq!(on_disk["kept"], rep.kept);
    let prov: serde_json::Value = serde_json::from_slice(&std::fs::read(&res.provenance).unwrap()).unwrap();
    assert_eq!(prov["teacher"]["backend"]["kind"], "embedded");
    assert_eq!(prov["prompts"]["hash"].as_str().unwrap().len(), 64);
    assert!(prov["prompts"]["templates"]["refine"].as_str().unwrap().contains("<Start of Non-Preferred Response>"));

    // Same config again: everything is final in the journal, nothing is redone.
    let again = run_config(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!((again.report.rows_this_run, again.report.rows_resumed), (0, 240));
    assert_eq!(read_all_pairs(&res.output, &ReadOptions::new()).unwrap(), pairs);
    assert_eq!(again.report.teacher_this_run.as_ref().unwrap().backend.requests, 0);

    // --restart: the journal is discarded but every request is answered by the cache.
    let restarted = run_config(&cfg, &RunOptions { restart: true, ..RunOptions::default() }).await.unwrap();
    let b = &restarted.report.teacher_this_run.as_ref().unwrap().backend;
    assert_eq!(b.requests, 0, "{b:?}");
    assert!(b.cache_hits > 0);
    assert_eq!(read_all_pairs(&res.output, &ReadOptions::new()).unwrap(), pairs);

    // A changed setting that alters the rows refuses to resume the old journal.
    let changed = SynthConfig::from_toml(
        &std::fs::read_to_string(&cfg_path).unwrap().replace("format_error_rate = 0.1", "format_error_rate = 0.2"),
        dir.path(),
        &cfg_path,
    )
    .unwrap();
    let err = run_config(&changed, &RunOptions::default()).await.unwrap_err();
    assert!(matches!(err, rmd_synth::SynthError::JournalMismatch { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labeled_pair_files_and_pool_files_as_input() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::new(WorldConfig::default()).unwrap();
    // 30 correct-over-wrong pairs, 10 reversed (teacher disagrees), 2 identical.
    let mut pairs = world.labeled_pairs(Split::Train, 40, 0.0);
    for p in pairs.iter_mut().skip(30) {
        std::mem::swap(&mut p.chosen, &mut p.rejected);
    }
    for i in 0..2 {
        let mut p = pairs[i].clone();
        p.id = format!("same-{i}");
        p.rejected = p.chosen.clone();
        pairs.push(p);
    }
    write_pairs(dir.path().join("pairs.jsonl"), Layout::Explicit, &pairs).unwrap();
    let cfg_path = write_config(
        dir.path(),
        r#"
        [input]
        kind = "pairs"
        path = "pairs.jsonl"
        [output]
        path = "annotated.jsonl"
        [teacher.backend]
        kind = "embedded"
        judge_noise = 0.0
        [pipeline]
        route = "annotate"
        "#,
    );
    let res = run_config(&SynthConfig::load(&cfg_path).unwrap(), &RunOptions::default()).await.unwrap();
    let r = &res.report;
    assert!(r.reconciled, "{}", r.summary());
    assert_eq!((r.input_rows, r.kept), (42, 30));
    assert_eq!(r.dropped_by_reason["filter.not_preferred"], 10);
    assert_eq!(r.dropped_by_reason["filter.identical_texts"], 2);
    let out = read_all_pairs(&res.output, &ReadOptions::new()).unwrap();
    assert_eq!(out.iter().map(|p| p.id.clone()).collect::<Vec<_>>(), pairs[..30].iter().map(|p| p.id.clone()).collect::<Vec<_>>());
    assert!(out.iter().all(|p| p.teacher_response.is_none() && p.chosen_score > p.rejected_score));

    // Pools: 3 prompts x 3 responses -> 9 unlabeled pairs oriented by the teacher.
    let pools = r#"{"id": "p1", "prompt": "What is 3 plus 4?", "responses": ["It is 7.", "Sure! It is 8.", "It is 70."]}
{"id": "p2", "prompt": "What is 9 minus 2?", "responses": ["7.", "The answer is 6.", "Great question! 9 minus 2 is 7."]}
{"id": "p3", "prompt": "What is 5 times 5?", "responses": ["25.", "It is 24.", "It is 26."]}
"#;
    std::fs::write(dir.path().join("pools.jsonl"), pools).unwrap();
    let cfg_path = write_config(
        dir.path(),
        r#"
        [input]
        kind = "pools"
        path = "pools.jsonl"
        [output]
        path = "pools_out.jsonl"
        [teacher.backend]
        kind = "embedded"
        judge_noise = 0.0
        "#,
    );
    let res = run_config(&SynthConfig::load(&cfg_path).unwrap(), &RunOptions::default()).await.unwrap();
    let r = &res.report;
    assert!(r.reconciled && r.input_rows == 9, "{}", r.summary());
    let out = read_all_pairs(&res.output, &ReadOptions::new()).unwrap();
    for p in &out {
        let q = question_of(p);
        assert!(is_correct(&q, &p.chosen) && !is_correct(&q, &p.rejected), "{p:?}");
        assert!(p.id.starts_with("p") && p.id.contains(':'));
    }
    // Equal-quality pairs tie and are dropped: p2 "7." vs "... is 7." and p3 "It is 24." vs "It is 26.".
    assert_eq!(r.dropped_by_reason.get("filter.tie"), Some(&2));
    assert_eq!(r.kept, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reference_logprobs_are_stored_on_the_pairs_and_resume_is_unaffected() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"
        [input]
        kind = "world"
        prompts = 12
        [output]
        path = "out/refined.jsonl"
        [teacher.backend]
        kind = "embedded"
        [teacher.settings]
        reference_top_logprobs = 4
        "#;
    let cfg_path = write_config(dir.path(), body);
    let cfg = SynthConfig::load(&cfg_path).unwrap();
    let res = run_config(&cfg, &RunOptions::default()).await.unwrap();
    assert!(res.report.reconciled && res.report.complete, "{}", res.report.summary());
    let pairs = read_all_pairs(&res.output, &ReadOptions::new()).unwrap();
    assert!(!pairs.is_empty());
    for p in &pairs {
        let y = p.teacher_response.as_deref().unwrap();
        let lp = p.teacher_logprobs.as_ref().unwrap_or_else(|| panic!("{}: no log-probs", p.id));
        // Token by token, the stored log-probs spell the stored answer.
        assert_eq!(lp.concatenated_bytes().unwrap(), y.as_bytes(), "{}", p.id);
        assert!(lp.tokens.iter().all(|t| (1..=4).contains(&t.top.len()) && t.token.logprob <= 0.0));
    }
    // The journal resumes everything; the output is unchanged.
    let again = run_config(&cfg, &RunOptions::default()).await.unwrap();
    assert_eq!(again.report.rows_this_run, 0);
    assert_eq!(read_all_pairs(&res.output, &ReadOptions::new()).unwrap(), pairs);

    // Without the setting: no log-probs, same answers, and the old journal is refused.
    let plain = SynthConfig::from_toml(&body.replace("reference_top_logprobs = 4", ""), dir.path(), &cfg_path).unwrap();
    let err = run_config(&plain, &RunOptions::default()).await.unwrap_err();
    assert!(matches!(err, rmd_synth::SynthError::JournalMismatch { .. }), "{err}");
    let plain_pairs = run_config(&plain, &RunOptions { restart: true, ..RunOptions::default() }).await.unwrap();
    let plain_pairs = read_all_pairs(&plain_pairs.output, &ReadOptions::new()).unwrap();
    assert_eq!(plain_pairs.len(), pairs.len());
    for (a, b) in plain_pairs.iter().zip(&pairs) {
        assert_eq!((a.teacher_logprobs.is_none(), &a.teacher_response), (true, &b.teacher_response));
    }
}
