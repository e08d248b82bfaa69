//! Setup shared by the `rmd train` integration tests.

use std::path::{Path, PathBuf};

use rmd_cli::backend::{self, Backend};
use rmd_model::text::word_level::{vocab_size, word_level_encoder, SIMPLE_CHAT_TEMPLATE};
use rmd_model::{save_pretrained, DecoderConfig, Family, HeadKind, RewardModel, RewardModelConfig, SaveDtype, SaveOptions};
use serde_json::json;

/// A word-level Qwen2 reward model over `words`, saved under `dir/base` as an HF checkpoint with
/// its tokenizer files (seeded, so every test starts from the same weights).
pub fn word_model(dir: &Path, words: &[&str]) -> PathBuf {
    let dir = dir.join("base");
    std::fs::create_dir_all(&dir).unwrap();
    let enc = word_level_encoder(words.iter().copied(), true).unwrap();
    enc.tokenizer().save(dir.join("tokenizer.json"), false).unwrap();
    let tok_cfg = json!({"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>", "chat_template": SIMPLE_CHAT_TEMPLATE});
    std::fs::write(dir.join("tokenizer_config.json"), tok_cfg.to_string()).unwrap();
    let dec = DecoderConfig::preset(Family::Qwen2, vocab_size(&enc), 16, 32, 1, 2, 1);
    let model = RewardModel::<Backend>::init(&RewardModelConfig::new(dec, HeadKind::Linear), 7, &backend::device()).unwrap();
    let base = json!({"bos_token_id": 2, "eos_token_id": 3, "torch_dtype": "float32"});
    let opts = SaveOptions { dtype: SaveDtype::F32, pad_token_id: 0, base_config: base.as_object().cloned() };
    save_pretrained(&model, &dir, &opts).unwrap();
    dir
}
