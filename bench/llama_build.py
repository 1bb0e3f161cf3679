"""Tokens per second of the installed (native) llama.cpp against a portable build, side by side.

A portable build (packaging/install_llama.sh with LIBRARIAN_LLAMA_BUILD=portable; what the bundle
ships) compiles llama.cpp's CPU backend once per instruction-set level and picks one at run time,
so one bundle runs on any x86-64 CPU. This measures what that costs on this machine: the same
model (the bundled SmolLM2 by default), prompt and greedy generation, loaded through Librarian's
own runtime, in child processes that alternate between the two builds (A B A B ...), reading
llama.cpp's own timings (llama_perf_context). The goal: the portable build within 5% of native.

    python bench/llama_build.py --portable-site DIR [--rounds 3] [--model FILE.gguf]

DIR holds the portable build's `llama_cpp` package (e.g. a `pip install --target DIR` of the
wheel, or its site-packages); it is put first on PYTHONPATH for the portable runs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROMPT = (
    "The library of Alexandria was one of the largest and most significant libraries of the "
    "ancient world. It was part of a larger research institution called the Mouseion, which "
    "was dedicated to the Muses, the nine goddesses of the arts. "
) * 6

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import llama_cpp
from app.llm.backends import ensure_backends, is_portable_build
from app.settings import ModelSettings, OffloadSettings
from app.llm.runtime import load_model
model_path, prompt, n_gen, threads = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
settings = ModelSettings(path=model_path or None, context_length=2048, threads=threads or None)
model = load_model(settings, OffloadSettings())
llm = model._llm
tokens = llm.tokenize(prompt.encode(), add_bos=True)
results = []
for _ in range(2):  # the first pass warms caches; the second is reported
    llm.reset()
    llama_cpp.llama_perf_context_reset(llm._ctx.ctx)
    llm.eval(tokens)
    for _ in range(n_gen):
        token = llm.sample(temp=0.0)
        llm.eval([token])
    perf = llama_cpp.llama_perf_context(llm._ctx.ctx)
    results.append({
        "prompt_tps": perf.n_p_eval / perf.t_p_eval_ms * 1000,
        "gen_tps": perf.n_eval / perf.t_eval_ms * 1000,
        "n_prompt": perf.n_p_eval, "n_gen": perf.n_eval,
    })
out = results[-1]
out["portable"] = is_portable_build()
out["backends"] = ensure_backends()
out["llama_cpp"] = llama_cpp.__file__
print(json.dumps(out))
"""


def run_child(site: str | None, model: str, n_gen: int, threads: int) -> dict:
    env = dict(os.environ)
    if site:
        env["PYTHONPATH"] = site + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(REPO), model, PROMPT, str(n_gen), str(threads)],
        env=env,
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"the child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--portable-site", required=True, help="folder holding a portable llama_cpp"
    )
    parser.add_argument("--model", default="", help="a GGUF (default: the bundled SmolLM2)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gen", type=int, default=128, help="tokens to generate")
    parser.add_argument("--threads", type=int, default=0, help="0: llama.cpp's default")
    args = parser.parse_args()
    native: list[dict] = []
    portable: list[dict] = []
    for round_ in range(args.rounds):
        native.append(run_child(None, args.model, args.gen, args.threads))
        portable.append(run_child(args.portable_site, args.model, args.gen, args.threads))
        print(
            f"round {round_ + 1}: native {native[-1]['prompt_tps']:.0f} / "
            f"{native[-1]['gen_tps']:.1f} tok/s, portable {portable[-1]['prompt_tps']:.0f} / "
            f"{portable[-1]['gen_tps']:.1f} tok/s (prompt / generation)",
            flush=True,
        )
    if native[0]["portable"] or not portable[0]["portable"]:
        print(
            "warning: the 'native' run found a portable build or the 'portable' one did not: "
            f"{native[0]['llama_cpp']} / {portable[0]['llama_cpp']}"
        )
    print(f"\nnative:   {native[0]['llama_cpp']}")
    print(f"portable: {portable[0]['llama_cpp']} (backends {', '.join(portable[0]['backends'])})")
    print(f"prompt {native[0]['n_prompt']} tokens, generation {native[0]['n_gen']} tokens\n")
    print("| build | prompt tok/s (median) | generation tok/s (median) |")
    print("|---|---|---|")
    rows = {}
    for name, runs in (("native", native), ("portable", portable)):
        prompt = statistics.median(r["prompt_tps"] for r in runs)
        gen = statistics.median(r["gen_tps"] for r in runs)
        rows[name] = (prompt, gen)
        print(f"| {name} | {prompt:.0f} | {gen:.1f} |")
    p_ratio = rows["portable"][0] / rows["native"][0]
    g_ratio = rows["portable"][1] / rows["native"][1]
    print(f"| portable / native | {p_ratio:.3f} | {g_ratio:.3f} |")
    ok = min(p_ratio, g_ratio) >= 0.95
    print(f"\ngoal (portable within 5% of native): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
