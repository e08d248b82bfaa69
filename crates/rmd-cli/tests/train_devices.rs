//! `rmd train --devices N` (and `[train] devices`): on the ndarray build, N data-parallel
//! replicas share the CPU. The run must log the same curve as a one-device run (to float
//! rounding), resume, and refuse a device count of zero.

mod common;

use std::path::Path;
use std::sync::Mutex;

use rmd_cli::cmd::train;
use rmd_core::{Conversation, PreferencePair};
use serde_json::Value;

/// burn's local collective serves one group per process at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const WORDS: &[&str] = &["what", "is", "the", "answer", "good", "bad", "fine", "poor", "it", "very", "a", "reply", "?", "."];

fn pairs(n: usize) -> Vec<PreferencePair> {
    (0..n)
        .map(|i| {
            let strong = i % 2 == 0;
            let mut p = PreferencePair::new(
                format!("p{i}"),
                Conversation::from_user(if i % 3 == 0 { "what is the answer ?" } else { "what is it ?" }),
                if strong { "a very good reply ." } else { "a fine reply ." },
                if strong { "a very bad reply ." } else { "a poor reply . it is poor ." },
            );
            p.chosen_score = Some(if strong { 9.0 } else { 7.0 });
            p.rejected_score = Some(if strong { 3.0 } else { 4.0 });
            p.teacher_response = Some("the answer is a good reply .".into());
            p
        })
        .collect()
}

fn losses(out: &Path) -> Vec<(f64, f64, u64)> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["loss"].as_f64().unwrap(), v["grad_norm"].as_f64().unwrap(), v["tokens"].as_u64().unwrap())
        })
        .collect()
}

fn args(model: &Path, data: &Path, out: &Path, devices: Option<usize>) -> train::Args {
    train::Args {
        model: Some(model.to_path_buf()),
        data: Some(data.to_path_buf()),
        out: Some(out.to_path_buf()),
        lr: Some(1e-3),
        epochs: Some(2),
        batch_pairs: Some(3),
        accumulation: Some(2),
        max_length: Some(32),
        sft_weight: Some(0.5),
        checkpoint_every: Some(2),
        devices,
        ..Default::default()
    }
}

#[test]
fn devices_flag_and_config_key_train_the_single_device_curve() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let model = common::word_model(tmp.path(), WORDS);
    let data = tmp.path().join("train.jsonl");
    // 14 pairs, 6 per step: steps of 6, 6 and 2 pairs; micro-batches of 3 split 2+1 on two devices.
    rmd_core::io::write_pairs(&data, rmd_core::io::Layout::Explicit, &pairs(14)).unwrap();

    let one = tmp.path().join("one");
    train::run(args(&model, &data, &one, None)).unwrap();
    let two = tmp.path().join("two");
    train::run(args(&model, &data, &two, Some(2))).unwrap();
    let (a, b) = (losses(&one), losses(&two));
    assert_eq!(a.len(), 6);
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.2, y.2, "tokens are summed over devices");
        assert!((x.0 - y.0).abs() <= 1e-4 * x.0.abs(), "loss {} vs {}", x.0, y.0);
        assert!((x.1 - y.1).abs() <= 1e-4 * x.1.abs(), "grad norm {} vs {}", x.1, y.1);
    }
    assert!(two.join("final").join("model.safetensors").exists());

    // `[train] devices = 3` from a config file; rerunning the finished 2-device run on 3
    // devices resumes it (the device count is not part of the run's identity) and adds nothing.
    let cfg = tmp.path().join("train.toml");
    std::fs::write(&cfg, "[train]\ndevices = 3\n").unwrap();
    let mut a3 = args(&model, &data, &two, None);
    a3.config = Some(cfg);
    train::run(a3).unwrap();
    assert_eq!(losses(&two).len(), 6);
    let summary: Value = serde_json::from_str(&std::fs::read_to_string(two.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["resumed_from_step"], 6);
}

#[test]
fn zero_devices_is_refused() {
    let err = train::training_devices(0).unwrap_err();
    assert!(err.to_string().contains("--devices must be >= 1"), "{err}");
    let cpu = train::training_devices(3).unwrap();
    assert_eq!(cpu.len(), 3, "ndarray: N replicas on the CPU");
}
