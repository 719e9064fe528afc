"""Memories into a frozen LLM, end to end and offline: read path, consolidation into LoRA, adapter by name.

What it does, on SmolLM2-135M-Instruct by default (``--model tiny`` is the in-project test model):

1. writes a few fictional facts into a T4DM store (nothing a base model can know);
2. asks about each one with no memory (B0) and with the store's hits packed into the prompt (B1);
3. consolidates the facts into a LoRA adapter under the base-task drift guard (the same guard the
   evaluation harness uses: base facts the model knows plus held-out perplexity) and asks again
   with no memory (B3);
4. saves the adapter with its provenance (which memories, which store), loads it by name onto a
   fresh base model and checks that it answers exactly as before saving.

Run it from the repository root: ``HF_HUB_OFFLINE=1 .venv/bin/python examples/memory_into_llm.py``
(about two minutes on 2 cores with SmolLM2). ``--embedder hashing`` swaps the MiniLM store
embedder for the deterministic test one. The store and the adapter live in a temporary directory
unless ``--workdir`` is given.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import t4dm_core
from t4dm_core import Memory
from t4dm_core.learning.llm import (
    MemoryPacker,
    consolidate,
    load_adapter,
    load_base_model,
    read_manifest,
    save_adapter,
)
from t4dm_core.learning.llm.evaluation.base_task import (
    GENERAL_FACTS,
    HELD_OUT_TEXTS,
    build_guard_task,
    tiny_candidates,
)
from t4dm_core.learning.llm.evaluation.consolidated import budget_for
from t4dm_core.learning.llm.evaluation.embedders import EMBEDDERS, make_embedder
from t4dm_core.learning.llm.evaluation.prompting import build_prompt, extract_answer

FACTS = (
    ("boat", "Orla Venmarsh keeps her red sailing boat in Port Quillan.", "Where does Orla Venmarsh keep her boat?",
     "Port Quillan"),
    ("keys", "Tobin Arkwell left the workshop keys in Dusk Hollow.", "Where did Tobin Arkwell leave the keys?",
     "Dusk Hollow"),
    ("piano", "Mira Solberg tunes the old piano in Vessmoor every spring.", "Where does Mira Solberg tune the piano?",
     "Vessmoor"),
)
VOCABULARY = tuple(answer for *_, answer in FACTS)


def ask(model: object, tokenizer: object, question: str, memory_block: str) -> str:
    """Greedy answer of ``model`` to ``question`` with ``memory_block`` in the prompt ("" = no memory)."""
    import torch

    prompt = build_prompt(tokenizer, question, memory_block, "where")
    ids = torch.tensor([tokenizer.encode(prompt, add_special_tokens=False)])  # type: ignore[attr-defined]
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=16,  # type: ignore[attr-defined]
                             do_sample=False, pad_token_id=tokenizer.pad_token_id)  # type: ignore[attr-defined]
    reply = tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)  # type: ignore[attr-defined]
    return extract_answer(str(reply), VOCABULARY)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2", help="'smollm2' (default), 'tiny' or a local model path")
    parser.add_argument("--embedder", choices=EMBEDDERS, default="minilm")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the store and adapter here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="t4dm-llm-demo-") as tmp:
        work = args.workdir or Path(tmp)
        base = load_base_model(args.model)
        print(f"base model: {base.source} ({base.parameter_count:,} parameters, frozen)")
        with t4dm_core.open(work / "store", embedder=make_embedder(args.embedder)) as store:
            for fact_id, text, question, answer in FACTS:
                cue = build_prompt(base.tokenizer, question, "", "where")
                store.put(Memory(id=fact_id, text=text, metadata={"cue": cue, "answer": answer}))

            packer = MemoryPacker(base.tokenizer, 128)
            report: dict[str, object] = {"B0": {}, "B1": {}, "B3": {}}
            print("\nquestion | gold | B0 (no memory) | B1 (memory on)")
            for fact_id, _text, question, answer in FACTS:
                b0 = ask(base.model, base.tokenizer, question, "")
                b1 = ask(base.model, base.tokenizer, question, packer.pack(store.search(question, k=2)).text)
                report["B0"][fact_id], report["B1"][fact_id] = b0, b1  # type: ignore[index]
                print(f"{question} | {answer} | {b0 or '-'} | {b1 or '-'}")

            facts, texts = tiny_candidates() if args.model == "tiny" else (GENERAL_FACTS, HELD_OUT_TEXTS)
            guard = build_guard_task(base.model, base.tokenizer, facts, texts)
            budget = budget_for(args.model)
            policy = dataclasses.replace(budget.policy, max_steps=40)
            print(f"\nconsolidating {len(FACTS)} memories into LoRA (drift guard on {len(guard.facts)} base facts "
                  f"and {len(guard.held_out)} held-out texts) ...")
            result = consolidate(store, args.model, base_task=guard.base_task(), policy=policy, adapter="lora",
                                 quantization="none", k=len(FACTS), lr=budget.lr, lora_spec=budget.lora)
            trained = result.attachment
            print(f"  {result.steps} steps, stop: {result.stop_reason}, rolled back: {result.rolled_back}, "
                  f"objective {result.initial_loss:.3f} -> {result.final_loss:.3f}")
            print("\nquestion | B3 (after consolidation, no memory)")
            for fact_id, _text, question, _answer in FACTS:
                b3 = ask(trained.model, trained.tokenizer, question, "")
                report["B3"][fact_id] = b3  # type: ignore[index]
                print(f"{question} | {b3 or '-'}")

            save_adapter(work / "adapters", "demo-facts", trained, provenance=result.provenance())
            manifest = read_manifest(work / "adapters", "demo-facts")
            trained.remove()
        reloaded = load_adapter(work / "adapters", "demo-facts", args.model)
        try:
            same = all(ask(reloaded.model, reloaded.tokenizer, q, "") == report["B3"][f]  # type: ignore[index]
                       for f, _t, q, _a in FACTS)
        finally:
            reloaded.remove()
        memories = [m["id"] for m in manifest["provenance"]["memories"]]
        print(f"\nsaved adapter 'demo-facts' trained on memories {memories}; reloaded by name, same answers: {same}")
        report["reload_matches"] = same
        report["provenance_memories"] = memories
        return report


if __name__ == "__main__":
    main()
