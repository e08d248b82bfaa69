"""PyTorch side of the GPU step bench: the same step as `gpu_step` (P pairs = 2P reward rows + P
teacher rows of length L; margin-aware regression + SFT (prompt = first quarter masked); AdamW),
random-init Qwen2 shape, bf16, SDPA attention, fused AdamW. Prints ms/step (median, synchronised),
tokens/s and peak memory.

python3 torch_step.py --shape 0.5b --pairs 8 --len 1024 --steps 10 [--compile]
"""
import argparse, os, time, statistics
import torch
import torch.nn.functional as F
from transformers import Qwen2Config, Qwen2ForCausalLM

SHAPES = {"0.5b": (896, 4864, 24, 14, 2), "1.5b": (1536, 8960, 28, 12, 2)}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="0.5b"); ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--len", type=int, default=1024); ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3); ap.add_argument("--compile", action="store_true")
    ap.add_argument("--dtype", default="bf16")
    a = ap.parse_args()
    h, inter, layers, heads, kv = SHAPES[a.shape]
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    cfg = Qwen2Config(vocab_size=151936, hidden_size=h, intermediate_size=inter, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv, tie_word_embeddings=True,
                      attn_implementation="sdpa", torch_dtype=dtype)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).to("cuda", dtype)
    score = torch.nn.Linear(h, 1, bias=False).to("cuda", dtype)
    params = list(model.parameters()) + list(score.parameters())
    opt = torch.optim.AdamW(params, lr=1e-5, eps=1e-8, weight_decay=0.0, fused=True)
    P, L = a.pairs, a.len
    rows = 3 * P
    ids = torch.randint(5, 151926, (rows, L), device="cuda")
    gap = torch.tensor([1.0 + (i % 5) for i in range(P)], device="cuda")
    labels = ids[2 * P:].clone(); labels[:, : L // 4] = -100

    def step():
        out = model.model(input_ids=ids)
        hidden = out.last_hidden_state
        r = score(hidden[: 2 * P, -1]).squeeze(-1).float()
        reward = ((r[:P] - r[P:]) - gap).pow(2).mean()
        lm_h = hidden[2 * P:]
        logits = model.lm_head(lm_h[:, :-1]).float()
        sft = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1), ignore_index=-100)
        loss = reward + sft
        loss.backward()
        opt.step(); opt.zero_grad(set_to_none=True)
        return loss

    if a.compile:
        step = torch.compile(step)
    torch.cuda.reset_peak_memory_stats()
    times = []
    # RMD_STEP_PAUSE_MS: idle gap between steps, so a kernel trace (tools/cuda/trace) splits into steps.
    pause = float(os.environ.get("RMD_STEP_PAUSE_MS", "0")) / 1e3
    for i in range(a.warmup + a.steps):
        torch.cuda.synchronize(); time.sleep(pause); t = time.perf_counter()
        step()
        torch.cuda.synchronize(); dt = time.perf_counter() - t
        if i >= a.warmup:
            times.append(dt)
    ms = statistics.median(times) * 1e3
    peak = torch.cuda.max_memory_allocated() / 2**30
    # Reserved (the caching allocator's pool) is what nvidia-smi sees, as for burn's pools.
    reserved = torch.cuda.max_memory_reserved() / 2**30
    tag = "torch.compile" if a.compile else "eager"
    print(f"torch {tag} shape={a.shape} pairs={P} len={L} dtype={a.dtype}: {ms:.1f} ms/step, {rows * L / (ms / 1e3):.0f} tokens/s, peak {peak:.1f} GiB (reserved {reserved:.1f} GiB)")

if __name__ == "__main__":
    main()
