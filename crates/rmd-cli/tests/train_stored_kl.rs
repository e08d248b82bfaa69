//! `rmd train --kl-source stored`: the KL regularizer on the teacher's top-k log-probs stored
//! in the dataset (`teacher_logprobs`, as `rmd synth` writes them), from flags and from a
//! config file, and the combinations it refuses.

mod common;

use std::path::Path;

use rmd_cli::backend;
use rmd_cli::cmd::train;
use rmd_core::{Conversation, GeneratedToken, PreferencePair, TeacherLogprobs, TokenLogprob};
use rmd_model::text::word_level::{vocab_size, word_level_encoder};
use rmd_model::{DecoderConfig, Family, HeadKind, RewardModel, RewardModelConfig};
use serde_json::Value;

const WORDS: &[&str] = &["what", "is", "the", "answer", "good", "bad", "fine", "great", "poor", "it", "very", "a", "reply", "?", "."];

fn tok(text: &str, p: f64, top: &[(&str, f64)]) -> GeneratedToken {
    GeneratedToken { token: TokenLogprob::text(text, p.ln()), top: top.iter().map(|(t, q)| TokenLogprob::text(*t, q.ln())).collect() }
}

/// Pairs whose teacher answer "the answer is a good reply ." carries top-k log-probs.
fn pairs(n: usize) -> Vec<PreferencePair> {
    (0..n)
        .map(|i| {
            let strong = i % 2 == 0;
            let mut p = PreferencePair::new(
                format!("p{i}"),
                Conversation::from_user(if i % 3 == 0 { "what is the answer ?" } else { "what is it ?" }),
                if strong { "a very good reply ." } else { "a fine reply ." },
                if strong { "a very bad reply ." } else { "a poor reply ." },
            );
            p.teacher_response = Some("the answer is a good reply .".into());
            p.teacher_logprobs = Some(TeacherLogprobs::new(vec![
                tok("the", 0.9, &[("the", 0.9), ("it", 0.05)]),
                tok(" answer", 0.6, &[(" answer", 0.6), (" reply", 0.3)]),
                tok(" is", 0.8, &[(" is", 0.8), (" very", 0.1)]),
                tok(" a", 0.7, &[(" a", 0.7), (" the", 0.2)]),
                tok(" good", 0.5, &[(" good", 0.5), (" fine", 0.3), (" great", 0.15)]),
                tok(" reply", 0.95, &[(" reply", 0.95)]),
                tok(" .", 0.6, &[(" .", 0.6), (" ?", 0.2)]),
            ]));
            p
        })
        .collect()
}

fn read_jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn args(model: &Path, data: &Path, out: &Path) -> train::Args {
    train::Args {
        model: Some(model.to_path_buf()),
        data: Some(data.to_path_buf()),
        out: Some(out.to_path_buf()),
        objective: Some("bt".into()),
        lr: Some(2e-2),
        epochs: Some(15),
        batch_pairs: Some(4),
        accumulation: Some(2),
        max_length: Some(32),
        kl_weight: Some(1.0),
        kl_source: Some(train::KlSourceArg::Stored),
        ..Default::default()
    }
}

#[test]
fn stored_topk_kl_trains_from_a_parquet_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let base = common::word_model(tmp.path(), WORDS);
    let data = tmp.path().join("synth.parquet");
    rmd_core::io::write_pairs(&data, rmd_core::io::Layout::Explicit, &pairs(16)).unwrap();
    let out = tmp.path().join("run");
    train::run(args(&base, &data, &out)).unwrap();
    let m = read_jsonl(&out.join("metrics.jsonl"));
    assert_eq!(m.len(), 30, "16 pairs / 8 per step x 15 epochs");
    let kl: Vec<f64> = m.iter().map(|r| r["loss/kl"].as_f64().unwrap()).collect();
    assert!(kl.iter().all(|v| v.is_finite() && *v >= 0.0), "{kl:?}");
    assert!(kl[29] < 0.5 * kl[0], "kl {} -> {}", kl[0], kl[29]);
    assert!(out.join("final/model.safetensors").exists());

    // The same run from a config file: `[train] kl_source = "stored"`.
    let cfg = tmp.path().join("train.toml");
    let toml = format!(
        "[model]\npath = {:?}\n[data]\ntrain = {:?}\n[output]\ndir = \"run2\"\n[train]\nobjective = {{ kind = \"bt\" }}\nkl_source = \"stored\"\nmax_steps = 2\npairs_per_micro_batch = 4\n[train.weights]\nreward = 1.0\nkl = 0.5\n",
        base, data
    );
    std::fs::write(&cfg, toml).unwrap();
    train::run(train::Args { config: Some(cfg), ..Default::default() }).unwrap();
    let m2 = read_jsonl(&tmp.path().join("run2/metrics.jsonl"));
    assert_eq!(m2.len(), 2);
    assert!(m2[0]["loss/kl"].as_f64().unwrap() > 0.0);
}

#[test]
fn kl_source_combinations_that_cannot_work_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let base = common::word_model(tmp.path(), WORDS);
    let mut bare = pairs(4);
    bare[1].teacher_logprobs = None;
    let data = tmp.path().join("bare.jsonl");
    rmd_core::io::write_pairs(&data, rmd_core::io::Layout::Explicit, &bare).unwrap();
    let out = tmp.path().join("run");

    // A pair without stored log-probs is named.
    let e = format!("{:#}", train::run(args(&base, &data, &out)).unwrap_err());
    assert!(e.contains("pair `p1` (row 1)") && e.contains("teacher_logprobs"), "{e}");

    // No source for the KL at all: both ways out are named.
    let mut a = args(&base, &data, &out);
    a.kl_source = None;
    let e = format!("{:#}", train::run(a).unwrap_err());
    assert!(e.contains("--kl-teacher") && e.contains("--kl-source stored"), "{e}");

    // Stored and a frozen teacher at once.
    let mut a = args(&base, &data, &out);
    a.kl_teacher = Some(base.clone());
    let e = format!("{:#}", train::run(a).unwrap_err());
    assert!(e.contains("exclude each other"), "{e}");

    // Teacher tokens the student splits differently: the pair and the position are named.
    let mut split = pairs(4);
    split[3].teacher_logprobs.as_mut().unwrap().tokens[4] = tok(" great", 0.5, &[]);
    let data = tmp.path().join("split.jsonl");
    rmd_core::io::write_pairs(&data, rmd_core::io::Layout::Explicit, &split).unwrap();
    let e = format!("{:#}", train::run(args(&base, &data, &out)).unwrap_err());
    assert!(e.contains("pair `p3` (row 3)") && e.contains("at token 4"), "{e}");
}

/// The whole route in memory: the embedded teacher records log-probs during synthesis, and
/// a word-level student (the demo's tokenizer) accepts them token for token and trains on them.
#[test]
fn embedded_teacher_logprobs_align_with_a_word_level_student() {
    use rmd_model::text::word_level::whitespace_words;
    use rmd_synth::world_run::{synthesize_world_blocking, WorldSynthConfig};
    use rmd_teacher::world::{Op, WorldConfig};
    use rmd_teacher::TeacherSettings;
    use rmd_train::trainer::TokenSpec;
    use rmd_train::{EncodeOptions, EncodedSet, KlSource, LossWeights, StepControl, TrainConfig, Trainer};

    let cfg = WorldSynthConfig {
        world: WorldConfig { max_operand: 6, ops: vec![Op::Plus, Op::Minus], ..WorldConfig::default() },
        prompts: 12,
        settings: TeacherSettings { reference_top_logprobs: Some(5), ..TeacherSettings::default() },
        ..WorldSynthConfig::default()
    };
    let data = synthesize_world_blocking(&cfg).unwrap();
    let pairs = &data.refined.pairs;
    assert!(pairs.len() >= 8, "{}", data.refined.report.summary());
    let mut words: Vec<String> = data.world.vocabulary();
    for p in pairs {
        for t in [p.prompt.to_plain_text(), p.chosen.clone(), p.rejected.clone(), p.teacher_response.clone().unwrap()] {
            words.extend(whitespace_words(&t).into_iter().map(String::from));
        }
    }
    words.sort();
    words.dedup();
    let enc = word_level_encoder(words.iter().map(String::as_str), true).unwrap();
    let set = EncodedSet::encode_with(pairs, &enc, EncodeOptions { need_scores: true, need_teacher: true, stored_kl: true }).unwrap();
    for (e, p) in set.pairs.iter().zip(pairs) {
        let s = e.stored_topk.as_ref().unwrap();
        assert_eq!(s.len(), p.teacher_logprobs.as_ref().unwrap().len());
        assert_eq!(s.start + s.len(), e.teacher.as_ref().unwrap().ids.len(), "y_T ends the row in this template");
    }

    let dec = DecoderConfig::preset(Family::Qwen2, vocab_size(&enc), 16, 32, 1, 2, 1);
    let model = RewardModel::<backend::AutodiffBackend>::init(&RewardModelConfig::new(dec, HeadKind::Linear), 3, &backend::device()).unwrap();
    let mut tc = TrainConfig {
        weights: LossWeights { reward: 0.0, sft: 0.0, kl: 1.0 },
        kl_source: KlSource::Stored,
        pairs_per_micro_batch: 8,
        accumulation_steps: 1,
        epochs: 200,
        max_steps: Some(80),
        max_length: 64,
        progress_bar: false,
        ..TrainConfig::default()
    };
    tc.optimizer.lr = 1e-2;
    let dir = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(model, tc, TokenSpec { bos: Some(2), pad: 0 }, set, None, None, dir.path(), backend::device()).unwrap();
    let mut kl = Vec::new();
    t.fit(&mut |r| {
        kl.push(r.components.iter().find(|(n, _)| n == "kl").unwrap().1);
        StepControl::Continue
    })
    .unwrap();
    assert_eq!(kl.len(), 80);
    assert!(kl[79] < 0.5 * kl[0], "kl {} -> {}", kl[0], kl[79]);
}
