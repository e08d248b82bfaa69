//! `rmd train` -> `rmd export` -> `rmd eval` on tiny models: the run learns the teacher's
//! margins, the exported checkpoint reproduces the trained model exactly, resuming is exact and
//! guarded, the KL teacher is wired to the student's own distribution, and bad input is refused.

mod common;

use std::path::{Path, PathBuf};

use rmd_cli::backend::{self, Backend};
use rmd_cli::cmd::{eval, export, train};
use rmd_core::{Conversation, PreferencePair};
use rmd_model::weights::SafetensorsSource;
use rmd_model::{load_pretrained, HeadRequest, LoadOptions, PaddingSide, ScoreOptions, Scorer, TextEncoder};
use serde_json::{json, Value};

const WORDS: &[&str] = &["what", "is", "the", "answer", "good", "bad", "fine", "poor", "it", "very", "a", "reply", "?", "."];

/// Chosen answers say "good"/"fine", rejected "bad"/"poor"; teacher gaps 6 (strong) and 3 (weak).
fn pairs(n: usize, offset: usize) -> Vec<PreferencePair> {
    (offset..offset + n)
        .map(|i| {
            let strong = i % 2 == 0;
            let mut p = PreferencePair::new(
                format!("p{i}"),
                Conversation::from_user(if i % 3 == 0 { "what is the answer ?" } else { "what is it ?" }),
                if strong { "a very good reply ." } else { "a fine reply ." },
                if strong { "a very bad reply ." } else { "a poor reply ." },
            );
            p.chosen_score = Some(if strong { 9.0 } else { 7.0 });
            p.rejected_score = Some(if strong { 3.0 } else { 4.0 });
            p.teacher_response = Some("the answer is a good reply .".into());
            p
        })
        .collect()
}

fn write_jsonl(path: &Path, pairs: &[PreferencePair]) -> PathBuf {
    rmd_core::io::write_pairs(path, rmd_core::io::Layout::Explicit, pairs).unwrap();
    path.to_path_buf()
}

fn train_args(model: &Path, data: &Path, eval_data: Option<&Path>, out: &Path) -> train::Args {
    train::Args {
        model: Some(model.to_path_buf()),
        data: Some(data.to_path_buf()),
        eval_data: eval_data.map(Path::to_path_buf),
        out: Some(out.to_path_buf()),
        lr: Some(2e-2),
        epochs: Some(50),
        batch_pairs: Some(4),
        accumulation: Some(2),
        max_length: Some(32),
        eval_every: eval_data.map(|_| 25),
        checkpoint_every: Some(30),
        ..Default::default()
    }
}

fn eval_args(model: &Path, data: &Path, out: &Path) -> eval::Args {
    eval::Args {
        model: Some(model.to_path_buf()),
        bench: Some(rmd_eval::BenchmarkKind::Pairs),
        data: Some(data.to_path_buf()),
        out: Some(out.to_path_buf()),
        batch_size: Some(3),
        ..Default::default()
    }
}

fn read_json(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))).unwrap()
}

fn read_jsonl(p: &Path) -> Vec<Value> {
    std::fs::read_to_string(p).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Rewards of `(chosen, rejected)` per pair straight from the library, one text per batch.
fn direct_rewards(model_dir: &Path, pairs: &[PreferencePair]) -> Vec<(f32, f32)> {
    let device = backend::device();
    let opts = LoadOptions { head: HeadRequest::Checkpoint, seed: 0, lm_head: false };
    let ck = load_pretrained::<Backend>(model_dir, opts, &device).unwrap();
    let enc = TextEncoder::from_dir(model_dir).unwrap();
    let so = ScoreOptions { batch_size: 1, max_length: 64, padding_side: PaddingSide::Right };
    let s = Scorer::new(&ck.model, &enc, so, ck.hf.pad_token_id, device).unwrap();
    s.score_pairs(pairs, &mut |_| {}).unwrap().0
}

fn tensors(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(dir.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<(String, Vec<u8>)> = st.tensors().into_iter().map(|(n, t)| (n, t.data().to_vec())).collect();
    v.sort();
    v
}

#[test]
fn train_export_eval_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let base = common::word_model(tmp.path(), WORDS);
    let train_set = pairs(16, 0);
    let eval_set = pairs(12, 100);
    let data = write_jsonl(&tmp.path().join("train.jsonl"), &train_set);
    let eval_data = write_jsonl(&tmp.path().join("eval.jsonl"), &eval_set);
    let out = tmp.path().join("run");

    train::run(train_args(&base, &data, Some(&eval_data), &out)).unwrap();

    // 16 pairs / 8 per step x 50 epochs = 100 steps; one metrics line each.
    let metrics = read_jsonl(&out.join("metrics.jsonl"));
    assert_eq!(metrics.len(), 100);
    assert_eq!(metrics.iter().filter(|m| m.get("eval/accuracy").is_some()).count(), 4, "eval every 25 steps");
    let first = metrics[0]["loss"].as_f64().unwrap();
    let last = metrics[99]["loss"].as_f64().unwrap();
    assert!(last < 0.05 * first, "loss {first} -> {last}");

    let summary = read_json(&out.join("summary.json"));
    assert_eq!(summary["steps"], 100);
    assert_eq!(summary["eval"]["accuracy"], 1.0, "{summary}");
    let run = read_json(&out.join("run.json"));
    assert_eq!(run["base_model"], json!(base.canonicalize().unwrap()));
    assert_eq!(run["head"], json!({"type": "linear"}));
    assert_eq!(run["fresh_head"], false, "the base checkpoint's own head was trained");
    let final_dir = out.join("final");
    let cfg = read_json(&final_dir.join("config.json"));
    assert_eq!(cfg["architectures"], json!(["Qwen2ForSequenceClassification"]));
    assert_eq!((cfg["num_labels"].clone(), cfg["pad_token_id"].clone(), cfg["torch_dtype"].clone()), (json!(1), json!(0), json!("float32")));
    for f in ["tokenizer.json", "tokenizer_config.json"] {
        assert!(final_dir.join(f).exists(), "{f} copied");
    }
    let svg = std::fs::read_to_string(out.join("curves.svg")).unwrap();
    assert!(svg.contains("data-series=\"loss\"") && svg.contains("data-series=\"loss/margin_mse\""), "{svg}");
    assert!(std::fs::read_to_string(out.join("eval_curves.svg")).unwrap().contains("data-series=\"eval/accuracy\""));

    // The trained model regresses the teacher's gaps: 6 for strong pairs, 3 for weak ones.
    let direct = direct_rewards(&final_dir, &eval_set);
    for (p, (c, r)) in eval_set.iter().zip(&direct) {
        let gap = p.chosen_score.unwrap() - p.rejected_score.unwrap();
        assert!(((c - r) as f64 - gap).abs() < 0.1, "pair {}: reward gap {} vs teacher gap {gap}", p.id, c - r);
    }

    // rmd eval on the final model: report + per-row scores equal to the library's rewards.
    let ev = tmp.path().join("eval-final");
    eval::run(eval_args(&final_dir, &eval_data, &ev)).unwrap();
    let report = read_json(&ev.join("report.json"));
    assert_eq!(report["score"], 1.0);
    assert_eq!(report["n_rows"], 12);
    let scores = read_jsonl(&ev.join("scores.jsonl"));
    for (row, (c, r)) in scores.iter().zip(&direct) {
        assert!((row["chosen"].as_f64().unwrap() - *c as f64).abs() < 1e-4, "{row} vs {c}");
        assert!((row["rejected"].as_f64().unwrap() - *r as f64).abs() < 1e-4, "{row} vs {r}");
    }
    for f in ["report.md", "rewards.svg", "length_bias.svg"] {
        assert!(ev.join(f).exists(), "{f}");
    }
    assert!(!ev.join("scores.journal.jsonl").exists(), "journal removed after success");

    // A config listing several benchmarks: one subdirectory each, per-entry options applied.
    let eval_cfg = tmp.path().join("eval.toml");
    std::fs::write(
        &eval_cfg,
        format!(
            "model = {:?}\nout = \"multi\"\nbatch_size = 4\n[[benchmarks]]\nkind = \"pairs\"\ndata = \"eval.jsonl\"\nname = \"all\"\n\
             [[benchmarks]]\nkind = \"pairs\"\ndata = \"eval.jsonl\"\nname = \"first5\"\nlimit = 5\n",
            final_dir.to_str().unwrap()
        ),
    )
    .unwrap();
    eval::run(eval::Args { config: Some(eval_cfg), ..Default::default() }).unwrap();
    assert_eq!(read_json(&tmp.path().join("multi/all/report.json"))["n_rows"], 12);
    let first5 = read_json(&tmp.path().join("multi/first5/report.json"));
    assert_eq!(first5["n_rows"], 5);
    assert!(first5["warnings"].to_string().contains("first 5 rows"), "{first5}");

    // rmd export --run: the latest checkpoint (step 100, written at the end) is the final model.
    let exp = tmp.path().join("export");
    export::run(export::Args { run: Some(out.clone()), step: None, model: None, out: exp.clone(), dtype: export::DtypeArg::Auto }).unwrap();
    assert_eq!(tensors(&exp), tensors(&final_dir), "exported weights are bit-identical to the final model");
    assert_eq!(read_json(&exp.join("config.json")), cfg);
    // An earlier checkpoint differs (step 90; 30 and 60 were pruned, keep_checkpoints = 2).
    let exp90 = tmp.path().join("export90");
    export::run(export::Args { run: Some(out.clone()), step: Some(90), model: None, out: exp90.clone(), dtype: export::DtypeArg::Auto }).unwrap();
    assert_ne!(tensors(&exp90), tensors(&final_dir));
    let e = export::run(export::Args { run: Some(out.clone()), step: Some(30), model: None, out: tmp.path().join("x"), dtype: export::DtypeArg::Auto })
        .unwrap_err();
    assert!(format!("{e:#}").contains("no checkpoint of step 30"), "{e:#}");

    // Re-export in bf16: dtype recorded, weights rounded, rewards close and still ordered.
    let bf = tmp.path().join("bf16");
    export::run(export::Args { run: None, step: None, model: Some(final_dir.clone()), out: bf.clone(), dtype: export::DtypeArg::Bf16 }).unwrap();
    assert_eq!(read_json(&bf.join("config.json"))["torch_dtype"], "bfloat16");
    let src = SafetensorsSource::open(&bf).unwrap();
    assert_eq!(src.info("score.weight").unwrap().0, safetensors::Dtype::BF16);
    for ((c, r), (bc, br)) in direct.iter().zip(direct_rewards(&bf, &eval_set)) {
        assert!((c - bc).abs() < 0.05 * c.abs().max(1.0) && (r - br).abs() < 0.05 * r.abs().max(1.0), "{c},{r} vs {bc},{br}");
        assert!(bc > br);
    }

    // Rerunning the same command resumes at the end: no new steps, the same final weights.
    let before = tensors(&final_dir);
    train::run(train_args(&base, &data, Some(&eval_data), &out)).unwrap();
    assert_eq!(read_jsonl(&out.join("metrics.jsonl")).len(), 100);
    assert_eq!(tensors(&final_dir), before);
    // Other settings on the same run directory are refused, not mixed in.
    let mut other = train_args(&base, &data, Some(&eval_data), &out);
    other.lr = Some(0.5);
    let e = format!("{:#}", train::run(other).unwrap_err());
    assert!(e.contains("different config"), "{e}");
    let mut other = train_args(&base, &data, Some(&eval_data), &out);
    other.fresh_head = true;
    let e = format!("{:#}", train::run(other).unwrap_err());
    assert!(e.contains("use a new --out"), "{e}");
}

#[test]
fn causal_lm_with_mlp_head_sft_and_kl_teacher() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../rmd-model/tests/fixtures/models/llama_tied");
    let data = write_jsonl(&tmp.path().join("train.jsonl"), &pairs(4, 0));
    let out = tmp.path().join("run");
    let args = train::Args {
        model: Some(fixture.clone()),
        data: Some(data),
        out: Some(out.clone()),
        objective: Some("bt".into()),
        head: Some(train::HeadArg::Mlp),
        sft_weight: Some(0.5),
        kl_weight: Some(1.0),
        kl_teacher: Some(fixture.clone()),
        lr: Some(1e-3),
        batch_pairs: Some(2),
        accumulation: Some(1),
        max_steps: Some(2),
        max_length: Some(64),
        ..Default::default()
    };
    train::run(args).unwrap();
    let m = read_jsonl(&out.join("metrics.jsonl"));
    assert_eq!(m.len(), 2);
    // Step 1: the student is still the teacher, so the token-level KL is zero; after one
    // update it is not.
    let kl0 = m[0]["loss/kl"].as_f64().unwrap();
    let kl1 = m[1]["loss/kl"].as_f64().unwrap();
    assert!(kl0.abs() < 1e-6, "KL at step 1 = {kl0}");
    assert!(kl1 > 0.0, "KL at step 2 = {kl1}");
    assert!(m[0]["loss/sft"].as_f64().unwrap() > 0.0);

    let run = read_json(&out.join("run.json"));
    assert_eq!(run["head"], json!({"type": "mlp", "hidden": 1024, "dropout": 0.1}));
    let final_dir = out.join("final");
    let cfg = read_json(&final_dir.join("config.json"));
    assert_eq!(cfg["architectures"], json!(["LlamaForSequenceClassification"]));
    assert_eq!((cfg["vhead_layer_type"].clone(), cfg["vhead_num_neurons"].clone()), (json!("mlp"), json!(1024)));
    assert!(final_dir.join("chat_template.jinja").exists() || final_dir.join("tokenizer_config.json").exists());
    let ck = load_pretrained::<Backend>(&final_dir, LoadOptions { head: HeadRequest::Checkpoint, seed: 0, lm_head: false }, &backend::device()).unwrap();
    assert_eq!(ck.model.head_kind().name(), "mlp");

    let exp = tmp.path().join("export");
    export::run(export::Args { run: Some(out), step: None, model: None, out: exp.clone(), dtype: export::DtypeArg::F32 }).unwrap();
    assert_eq!(tensors(&exp), tensors(&final_dir));

    // A causal LM has no value head to evaluate.
    let e = eval::run(eval_args(&fixture, &tmp.path().join("train.jsonl"), &tmp.path().join("ev"))).unwrap_err();
    assert!(format!("{e:#}").contains("no value head"), "{e:#}");
}

#[test]
fn config_file_paths_are_relative_to_it_and_flags_override() {
    let tmp = tempfile::tempdir().unwrap();
    common::word_model(tmp.path(), WORDS);
    write_jsonl(&tmp.path().join("train.jsonl"), &pairs(8, 0));
    let cfg = tmp.path().join("train.toml");
    std::fs::write(
        &cfg,
        r#"
[model]
path = "base"
head = "linear"

[data]
train = "train.jsonl"

[output]
dir = "run"
dtype = "bf16"

[train]
objective = { kind = "bt" }
pairs_per_micro_batch = 4
accumulation_steps = 1
epochs = 3
max_length = 32
progress_bar = false

[train.optimizer]
lr = 0.001
beta1 = 0.9
beta2 = 0.999
eps = 1e-8
weight_decay = 0.0
warmup_ratio = 0.0
min_lr_ratio = 0.0
max_grad_norm = 1.0
"#,
    )
    .unwrap();
    // The working directory (the crate) is not the file's: its relative paths must resolve against the file.
    train::run(train::Args { config: Some(cfg.clone()), epochs: Some(2), ..Default::default() }).unwrap();
    let out = tmp.path().join("run");
    assert_eq!(read_jsonl(&out.join("metrics.jsonl")).len(), 4, "8 pairs / 4 per step x 2 epochs (flag over file)");
    assert_eq!(read_json(&out.join("final/config.json"))["torch_dtype"], "bfloat16");
    assert!(read_jsonl(&out.join("metrics.jsonl"))[0].get("loss/bt").is_some());

    // The shipped example configs parse.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let t: train::TrainFile = toml::from_str(&std::fs::read_to_string(root.join("examples/train.toml")).unwrap()).unwrap();
    t.train.validate().unwrap();
    let _: eval::EvalFile = toml::from_str(&std::fs::read_to_string(root.join("examples/eval.toml")).unwrap()).unwrap();
    let _: rmd_cli::cmd::serve::ServeFile = toml::from_str(&std::fs::read_to_string(root.join("examples/serve.toml")).unwrap()).unwrap();

    // Unknown keys are errors, not silently ignored.
    std::fs::write(&cfg, "[train]\nlearning_rate = 0.1\n").unwrap();
    let e = format!("{:#}", train::run(train::Args { config: Some(cfg), ..Default::default() }).unwrap_err());
    assert!(e.contains("learning_rate"), "{e}");
}

#[test]
fn unusable_inputs_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let base = common::word_model(tmp.path(), WORDS);
    let mut unscored = pairs(4, 0);
    unscored[2].chosen_score = None;
    let data = write_jsonl(&tmp.path().join("unscored.jsonl"), &unscored);
    let out = tmp.path().join("run");

    // margin-mse (the default objective) needs teacher scores on every pair.
    let e = format!("{:#}", train::run(train_args(&base, &data, None, &out)).unwrap_err());
    assert!(e.contains("p2") && e.contains("teacher scores"), "{e}");

    let mut a = train_args(&base, &data, None, &out);
    a.objective = Some("bt".into());
    a.kl_weight = Some(0.1);
    let e = format!("{:#}", train::run(a).unwrap_err());
    assert!(e.contains("--kl-teacher"), "{e}");

    let mut a = train_args(&base, &data, None, &out);
    a.objective = Some("hinge".into());
    let e = format!("{:#}", train::run(a).unwrap_err());
    assert!(e.contains("unknown objective"), "{e}");

    // A KL teacher with another vocabulary.
    let mut a = train_args(&base, &data, None, &out);
    a.objective = Some("bt".into());
    a.kl_weight = Some(0.1);
    a.kl_teacher = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../rmd-model/tests/fixtures/models/llama_tied"));
    let e = format!("{:#}", train::run(a).unwrap_err());
    assert!(e.contains("vocabulary"), "{e}");

    let e = format!("{:#}", train::run(train::Args { data: Some(data.clone()), ..Default::default() }).unwrap_err());
    assert!(e.contains("missing --model"), "{e}");

    let e = format!(
        "{:#}",
        export::run(export::Args { run: Some(tmp.path().to_path_buf()), step: None, model: None, out: tmp.path().join("x"), dtype: export::DtypeArg::Auto })
            .unwrap_err()
    );
    assert!(e.contains("not a training run directory"), "{e}");
}
