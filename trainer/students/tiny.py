"""Tiny generative models built locally from a config, for tests and smoke runs (no downloads).

``build_tiny(kind, path)`` writes a randomly initialised T5 (seq2seq) or Llama (causal) with
d_model 32 and 2 layers, plus a character-level tokenizer trained on nothing (its vocabulary is
printable ASCII), to ``path`` with ``save_pretrained``. The students then load it through the
same ``from_pretrained`` code as a real HF id, so tests exercise the real loading path.
"""

from __future__ import annotations

import string
from pathlib import Path

SPECIALS = ("<pad>", "</s>", "<unk>", "<s>")


def char_tokenizer() -> object:
    """A PreTrainedTokenizerFast with one token per printable ASCII character."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    chars = [c for c in string.printable if c not in "\t\n\r\x0b\x0c"]
    vocab = {tok: i for i, tok in enumerate([*SPECIALS, *chars])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", vocab["</s>"])])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="</s>", unk_token="<unk>",
                                   bos_token="<s>", clean_up_tokenization_spaces=False)


def build_tiny(kind: str, path: str | Path, *, d_model: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny ``kind`` ("seq2seq" | "causal") model + tokenizer to ``path``; returns the path."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, T5Config, T5ForConditionalGeneration

    torch.manual_seed(seed)
    tok = char_tokenizer()
    vocab = len(tok)  # type: ignore[arg-type]
    if kind == "seq2seq":
        t5 = T5Config(vocab_size=vocab, d_model=d_model, d_kv=8, d_ff=2 * d_model, num_layers=layers,
                      num_decoder_layers=layers, num_heads=4, pad_token_id=0, eos_token_id=1)
        t5.decoder_start_token_id = 0  # set after: T5Config's typed signature does not list it
        model: object = T5ForConditionalGeneration(t5)
    elif kind == "causal":
        config = LlamaConfig(vocab_size=vocab, hidden_size=d_model, intermediate_size=2 * d_model,
                             num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=512, pad_token_id=0, eos_token_id=1, bos_token_id=3)
        model = LlamaForCausalLM(config)
    else:
        msg = f"no tiny model for {kind!r}; use seq2seq or causal"
        raise ValueError(msg)
    path = Path(path)
    model.save_pretrained(path)  # type: ignore[attr-defined]
    tok.save_pretrained(path)  # type: ignore[attr-defined]
    return path
