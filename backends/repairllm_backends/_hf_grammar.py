"""Grammar-constrained decoding for the hf driver: llguidance masks the tokens.

A JSON Schema (or "any JSON") becomes an llguidance grammar; before each token a
matcher says which tokens may come next, and the others get ``-inf`` logits. The
reply is then valid JSON of the schema's shape by construction, which a 135M model
cannot manage on its own.

Costs, measured on SmolLM2-135M on 2 CPU cores: converting the tokenizer takes about
0.5 s, so it is cached per tokenizer; compiling a schema takes a few ms, cached per
schema; a mask takes well under 0.1 ms per token, next to tens of milliseconds for a
forward pass. The mask is applied with plain tensor operations: llguidance's own
torch kernel is ``torch.compile``-d, and its first call costs about 30 s on a CPU.

What the grammar leaves out stays with validation, repair and retry:

- ``format``: a grammar that enforces, say, ``email`` lets a small model open a
  string it then may never close (it wrote ``"example.com`` and spent every
  remaining token on digits);
- ``pattern``, when llguidance cannot compile it (its regex dialect has no
  look-around or back-references);
- whatever llguidance does not implement, when the strict compile fails (its
  ``lenient`` mode ignores unknown keywords).

Whitespace is fixed (``", "`` and ``": "``, no newlines): free whitespace lets a
small model loop on spaces and newlines until the token limit.

A grammar that cannot be built at all leaves generation unconstrained, with a note
that reaches the attempt; llguidance's errors never reach the caller.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from repairllm.schema import without_keywords

if TYPE_CHECKING:
    import torch
    from llguidance._lib import JsonCompileOptions

__all__ = ["GrammarMask", "available", "build_mask"]

_COMPILE_OPTIONS: dict[str, Any] = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
}
_LEFT_OUT_ALWAYS = frozenset({"format"})
_CACHE_SIZE = 128
# Formats whose every value has one short, fixed shape: a grammar can enforce them
# without letting a small model open a value it can never finish. email, uri and
# hostname are open-ended; a grammar for them let SmolLM2 write "example.com and
# then nothing it could close the string with.
_GRAMMAR_FORMATS = frozenset({"date", "time", "date-time", "uuid", "ipv4", "ipv6"})


def _fixed_shape_format(keyword: str, value: Any) -> bool:
    return keyword == "format" and value in _GRAMMAR_FORMATS


_lock = threading.Lock()
_tokenizers: dict[tuple[str, tuple[int, ...]], Any] = {}
_grammars: OrderedDict[tuple[str, tuple[int, ...], str], tuple[str | None, tuple[str, ...]]] = (
    OrderedDict()
)


def available() -> bool:
    """Whether llguidance is installed (it is part of the ``hf`` extra)."""
    return importlib.util.find_spec("llguidance") is not None


def _tokenizer_key(hf_tokenizer: Any) -> str:
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        return f"id:{id(hf_tokenizer)}"
    # The serialised tokenizer names it exactly; hashing it costs a few ms, next to
    # the half second a conversion takes.
    return hashlib.sha256(backend.to_str().encode()).hexdigest()


def _llg_tokenizer(hf_tokenizer: Any, key: str, eos: tuple[int, ...]) -> Any:
    """The llguidance tokenizer for an HF tokenizer, converted once per process."""
    with _lock:
        cached = _tokenizers.get((key, eos))
    if cached is not None:
        return cached
    import llguidance.hf

    converted = llguidance.hf.from_tokenizer(hf_tokenizer, eos_token=list(eos))
    with _lock:
        _tokenizers[(key, eos)] = converted
    return converted


def _compile(schema: Any, tokenizer: Any) -> tuple[str | None, tuple[str, ...]]:
    """The grammar for a schema (``None`` for any JSON object), and what it left out."""
    from llguidance import LLMatcher

    if schema is None:
        # JSON mode: any JSON object.
        schema = {"type": "object"}
    notes: list[str] = []
    base = without_keywords(schema, _LEFT_OUT_ALWAYS, keep=_fixed_shape_format)
    if base != schema:
        notes.append(
            "formats other than date, time, date-time, uuid, ipv4 and ipv6 are left out "
            "of the grammar and checked by validation"
        )
    tries: list[tuple[Any, dict[str, Any], str | None]] = [
        (base, {}, None),
        (
            without_keywords(base, frozenset({"pattern"})),
            {},
            "pattern is left out of the grammar (llguidance could not compile it)",
        ),
        (
            without_keywords(base, frozenset({"pattern"})),
            {"lenient": True},
            "keywords llguidance does not implement are left out of the grammar",
        ),
    ]
    last_error = ""
    seen: list[Any] = []
    for candidate, extra, note in tries:
        if (candidate, extra) in seen:
            continue
        seen.append((candidate, extra))
        try:
            options: JsonCompileOptions = {**_COMPILE_OPTIONS, **extra}  # type: ignore[typeddict-item, unused-ignore]
            grammar = LLMatcher.grammar_from_json_schema(candidate, overrides=options)
        except (ValueError, TypeError) as exc:
            last_error = str(exc)
            continue
        error = LLMatcher.validate_grammar(grammar, tokenizer)
        if not error or error.startswith("WARNING"):
            return grammar, (*notes, *([note] if note else []))
        last_error = error
    reason = last_error.strip().splitlines()[0] if last_error.strip() else "unknown"
    return None, (f"no grammar could be built from the schema ({reason[:200]}); unconstrained",)


@dataclass
class GrammarMask:
    """One generation's constraint: a matcher, fed each token, masking the next.

    Attributes:
        notes: what was left out of the grammar, or why there is none.
        active: whether the grammar constrains this generation.
    """

    matcher: Any
    vocab_size: int
    eos: tuple[int, ...]
    seen: int
    notes: list[str]
    active: bool = True

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """A transformers logits processor: feed the new tokens, mask the next one."""
        if not self.active:
            return scores
        new = input_ids[0, self.seen :].tolist()
        self.seen = int(input_ids.shape[-1])
        if new and not self.matcher.consume_tokens(new):
            self._give_up(f"the grammar refused a token ({self.matcher.get_error()[:200]})")
            return scores
        if self.matcher.is_error():
            self._give_up(f"the grammar failed ({self.matcher.get_error()[:200]})")
            return scores
        allowed = self._allowed(scores.shape[-1], scores.device)
        if not bool(allowed.any()):
            self._give_up("the grammar allows no token here")
            return scores
        return scores.masked_fill(~allowed, float("-inf"))

    def _allowed(self, width: int, device: torch.device) -> torch.Tensor:
        import numpy as np
        import torch

        if self.matcher.is_stopped():
            # The value is complete: only an end-of-sequence token may follow.
            bits = np.zeros(width, dtype=bool)
        else:
            raw = np.frombuffer(self.matcher.compute_bitmask(), dtype=np.uint8)
            bits = np.unpackbits(raw, bitorder="little").astype(bool)
            if bits.shape[0] >= width:
                bits = bits[:width].copy()
            else:  # the model's embedding is padded past the tokenizer's words
                bits = np.concatenate([bits, np.zeros(width - bits.shape[0], dtype=bool)])
        if self.matcher.is_accepting() or self.matcher.is_stopped():
            for token in self.eos:
                if token < width:
                    bits[token] = True
        return torch.from_numpy(bits).to(device).unsqueeze(0)

    def _give_up(self, why: str) -> None:
        self.active = False
        self.notes.append(f"{why}; the rest of the reply is unconstrained")


def build_mask(
    hf_tokenizer: Any,
    schema: Any,
    *,
    eos: Iterable[int],
    prompt_tokens: int,
    vocab_size: int,
    prefix: str = "",
) -> GrammarMask:
    """The logits processor for one generation under ``schema``.

    Args:
        hf_tokenizer: the model's (fast) tokenizer.
        schema: the JSON Schema to enforce, or ``None`` for any JSON object.
        eos: the ids that end the reply (the tokenizer's EOS and an end token).
        prompt_tokens: how many tokens the prompt has; the matcher is fed what follows.
        vocab_size: the model's output width.
        prefix: reply text already given (a continuation): the matcher consumes it
            first, so the grammar goes on where the reply stopped.
    """
    ends = tuple(sorted(set(eos)))
    key = _tokenizer_key(hf_tokenizer)
    try:
        tokenizer = _llg_tokenizer(hf_tokenizer, key, ends)
    except Exception as exc:  # llguidance's conversion: any failure means no grammar
        return GrammarMask(
            None,
            vocab_size,
            ends,
            prompt_tokens,
            [f"the tokenizer could not be converted for llguidance ({exc}); unconstrained"],
            active=False,
        )
    text = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS).decode()
    cache_key = (key, ends, text)
    with _lock:
        hit = _grammars.get(cache_key)
        if hit is not None:
            _grammars.move_to_end(cache_key)
    if hit is None:
        hit = _compile(schema, tokenizer)
        with _lock:
            _grammars[cache_key] = hit
            while len(_grammars) > _CACHE_SIZE:
                _grammars.popitem(last=False)
    grammar, notes = hit
    if grammar is None:
        return GrammarMask(None, vocab_size, ends, prompt_tokens, list(notes), active=False)
    from llguidance import LLMatcher

    matcher = LLMatcher(tokenizer, grammar, log_level=0)
    mask = GrammarMask(matcher, vocab_size, ends, prompt_tokens, list(notes))
    if prefix and not matcher.consume_tokens(tokenizer.tokenize_str(prefix)):
        mask.active = False
        mask.notes.append(
            "the reply so far does not fit the grammar; its continuation is unconstrained"
        )
    return mask
