"""The in-process Hugging Face transformers driver.

It runs a model in this process with PyTorch: a model directory (anything
``from_pretrained`` reads) or a single ``.gguf`` file, which transformers
dequantizes on load. Loading the weights, and the cache that spares a GGUF file's
second load the dequantizing, live in :mod:`repairllm_backends._hf_cache`.

torch, transformers, gguf and peft are imported inside the methods that need them,
never at module import, so ``import repairllm_backends.hf`` stays cheap and a
missing dependency fails with the install hint only when a model is loaded.

Example:
    >>> llm = HFBackend()  # the packaged SmolLM2-135M-Instruct  # doctest: +SKIP
    >>> llm.chat("Say hi", max_tokens=8, temperature=0).text  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from repairllm.backend import (
    Backend,
    ChatOptions,
    Chunk,
    Completion,
    Message,
    Messages,
    Usage,
    as_messages,
)
from repairllm.errors import (
    BackendError,
    BackendTimeout,
    ConfigError,
    InvalidInput,
    RepairLLMError,
)

from . import _hf_cache as _cache
from . import _hf_grammar as _grammar
from ._hf_cache import INSTALL_HINT, cache_entry, cache_root

if TYPE_CHECKING:
    import torch

__all__ = [
    "DEFAULT_MAX_NEW_TOKENS",
    "GRAMMAR_REPEAT_PENALTY",
    "HFBackend",
    "HFOptions",
    "cache_entry",
    "cache_root",
]

GRAMMAR_REPEAT_PENALTY = 1.1
GRAMMAR_ARRAY_DECAY = 1.0
DEFAULT_MAX_NEW_TOKENS = 512
"""Reply limit when neither the call, ``defaults`` nor ``generation_config`` sets one:
a CPU-bound model left to fill an 8k context would run for minutes."""

_PUNCT = ' {}[],:"\n\t'
_LITERALS = frozenset({"true", "false", "null"})
_SAMPLING_KEYS = ("temperature", "top_p", "top_k", "min_p", "typical_p")


class HFOptions(ChatOptions):
    """Per-call options of the hf driver: the common ones plus two sampling knobs."""

    top_k: int | None = Field(default=None, ge=0)
    repetition_penalty: float | None = Field(default=None, gt=0)
    """transformers' penalty on every token already in the sequence, prompt included."""
    repeat_penalty: float | None = Field(default=None, gt=0)
    """A penalty on tokens among the reply's last ``repeat_window`` tokens only, as
    llama.cpp's ``repeat_penalty`` does; the prompt is not penalised, so copying a value
    from it costs nothing. Under a grammar it defaults to
    :data:`GRAMMAR_REPEAT_PENALTY`: a constrained small model otherwise loops inside
    the value (the same array item or sentence until the token limit)."""
    repeat_window: int = Field(default=64, gt=0)
    array_decay: float = Field(default=GRAMMAR_ARRAY_DECAY, ge=0)
    """Under a grammar, the logit taken from "another item" per item an array already
    holds. A constrained small model rarely knows when a list ends and writes new
    items until the token limit; 0 turns it off."""


def _import_torch() -> None:
    """Import torch and transformers once, or fail with the install hint.

    Methods then ``import torch`` locally: cheap after the first time, and typed.
    """
    _cache.need("torch", "running models")
    _cache.need("transformers", "running models")
    try:
        import torch  # noqa: F401 - imported here so a broken install fails early
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            f"torch or transformers failed to import ({exc}); {INSTALL_HINT}"
        ) from exc


def _resolve_class(value: type[Any] | str | None, default: str) -> Any:
    """A class, a dotted name (``"pkg.mod.Class"``) or a name exported by transformers."""
    if value is None:
        value = default
    if not isinstance(value, str):
        return value
    module_name, _, attr = value.rpartition(".")
    try:
        module = importlib.import_module(module_name or "transformers")
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot find the class {value!r}: {exc}") from exc


def _content_text(content: Any, index: int) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[str] = []
    for part in content:
        if isinstance(part, Mapping) and part.get("type") == "text":
            parts.append(str(part.get("text", "")))
        else:
            raise InvalidInput(
                f"message {index}: the hf driver takes text parts only, got {part!r}"
            )
    return "".join(parts)


def _translate(exc: BaseException, doing: str, path: str | None = None) -> RepairLLMError:
    """Map what torch, transformers or peft raised to our errors: the one place that does it."""
    if isinstance(exc, RepairLLMError):
        return exc
    name = type(exc).__name__
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    if name == "OutOfMemoryError" or isinstance(exc, MemoryError):
        return BackendError(
            f"out of memory while {doing}: use a smaller model, a smaller dtype "
            "('bfloat16'), fewer max_tokens, or another device",
            "hf",
        )
    where = f" {path}" if path else ""
    if isinstance(
        exc, FileNotFoundError | IsADirectoryError | NotADirectoryError | PermissionError
    ):
        return ConfigError(f"cannot read{where} while {doing}: {detail}")
    if isinstance(exc, OSError | ValueError | KeyError | TypeError | ImportError):
        if doing.startswith("load"):
            return ConfigError(f"cannot load{where}: {name}: {detail}")
        return ConfigError(f"bad generation settings while {doing}: {name}: {detail}")
    return BackendError(f"{name} while {doing}: {detail}", "hf")


class HFBackend(Backend):
    """Run a transformers model in this process.

    Args:
        model: a model directory, a ``.gguf`` file, or a Hub id (read from the local Hub
            cache); ``None`` takes the packaged SmolLM2-135M-Instruct GGUF.
        model_cls: the model class, or its dotted name (``AutoModelForCausalLM``).
        tokenizer_cls: the tokenizer class, or its dotted name (``AutoTokenizer``).
        generation_config: default keyword arguments for ``generate`` (``max_new_tokens``,
            ``repetition_penalty`` ...); call options win over them.
        chat_template: a Jinja chat template that replaces the tokenizer's.
        end_token: a marker that ends the reply: the text is cut at its first
            occurrence and generation stops there (``finish_reason`` ``"stop"``).
        include_end: keep ``end_token`` at the end of the cut text.
        lora_path: a PEFT adapter directory, applied and merged into the weights.
        device: a torch device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).
        dtype: a torch dtype or its name (``"bfloat16"``); default float32 on CPU,
            bfloat16 (or float16) on GPUs.
        threads: CPU threads for torch (``torch.set_num_threads``, process-wide); default
            every core this process may use, at most 8 (SmolLM2-135M on 2 cores: 17
            tokens/s on one thread, 26 on two). On a CPU shared with other work, pass
            fewer: more threads than free cores is several times slower.
        cache_dir: where converted GGUF files are cached (see
            :func:`~repairllm_backends._hf_cache.cache_root`).
        context_length: the context window; default the config's
            ``max_position_embeddings``.
        defaults: option values for calls that do not give them.
        timeout: a default per-call ``timeout`` in seconds.

    Attributes:
        loaded_from_cache: whether a GGUF was read from the conversion cache.
        load_seconds: how long loading took.
        cache_path: the cache entry of a GGUF model (``None`` for a model directory).

    Raises:
        ConfigError: for a missing dependency, file or adapter, or an unusable setting.
    """

    name: ClassVar[str] = "hf"
    # Set per instance: grammar-constrained decoding needs llguidance (in the hf extra).
    supports_json_schema: bool = False
    supports_json_mode: bool = False
    continues_reply: ClassVar[bool] = True
    supports_streaming: ClassVar[bool] = True
    options_cls: ClassVar[type[ChatOptions]] = HFOptions

    # Any: transformers' annotations put ``generate`` on no base class and type
    # ``decode`` as returning ``str | list[str]``, so precise types would need casts
    # at every use.
    tokenizer: Any
    hf_model: Any

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        model_cls: type[Any] | str | None = None,
        tokenizer_cls: type[Any] | str | None = None,
        generation_config: Mapping[str, Any] | None = None,
        chat_template: str | None = None,
        end_token: str | None = None,
        include_end: bool = False,
        lora_path: str | os.PathLike[str] | None = None,
        device: str = "cpu",
        dtype: str | torch.dtype | None = None,
        threads: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        context_length: int | None = None,
        defaults: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> None:
        if model is None:
            from repairllm.default_model import default_gguf

            model = default_gguf()
        self.path = Path(model).expanduser()
        self.model = str(model)
        if end_token == "":
            raise ConfigError("end_token must be a non-empty string or None")
        self.end_token = end_token
        self.include_end = include_end
        self.chat_template = chat_template
        self.generation_config: dict[str, Any] = dict(generation_config or {})
        self.defaults = dict(defaults or {})
        if timeout is not None:
            self.defaults.setdefault("timeout", timeout)
        self.options()  # fail now, not on the first call, when defaults hold a bad option
        self.supports_json_schema = self.supports_json_mode = _grammar.available()
        self.loaded_from_cache = False
        self.cache_path: Path | None = None
        self._lock = threading.Lock()

        _import_torch()
        import torch

        try:
            self.device = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ConfigError(f"unknown device {device!r}: {exc}") from exc
        self.dtype = self._dtype(dtype)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        self.threads = threads if threads is not None else min(8, max(1, cores or 1))
        if self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")
        torch.set_num_threads(self.threads)
        model_class = _resolve_class(model_cls, "AutoModelForCausalLM")
        tokenizer_class = _resolve_class(tokenizer_cls, "AutoTokenizer")

        start = time.perf_counter()
        with _cache.LOAD_LOCK, _cache.quiet_progress():
            self.tokenizer, self.hf_model = self._load(
                model_class, tokenizer_class, cache_dir, lora_path
            )
        self.load_seconds = time.perf_counter() - start
        if chat_template is not None:
            self.tokenizer.chat_template = chat_template

        config = self.hf_model.config
        self.context_length = context_length or getattr(config, "max_position_embeddings", None)
        self._eos_ids = self._eos_token_ids()
        self._end_token_id = self._special_token_id(end_token)

    # -- loading ------------------------------------------------------------------------

    def _dtype(self, dtype: str | torch.dtype | None) -> torch.dtype:
        import torch

        if dtype is None:
            if self.device.type == "cuda":
                return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
            return torch.float32
        if isinstance(dtype, str):
            value = getattr(torch, dtype.removeprefix("torch."), None)
            if not isinstance(value, torch.dtype):
                raise ConfigError(
                    f"unknown dtype {dtype!r}; use 'float32', 'bfloat16' or 'float16'"
                )
            return value
        return dtype

    def _load(
        self,
        model_class: Any,
        tokenizer_class: Any,
        cache_dir: str | os.PathLike[str] | None,
        lora_path: str | os.PathLike[str] | None,
    ) -> tuple[Any, Any]:
        path = self.path
        is_gguf = path.suffix.lower() == ".gguf"
        looks_local = is_gguf or path.is_absolute() or self.model.startswith((".", "~"))
        if looks_local and not path.exists():
            raise ConfigError(f"the model {path} does not exist; pass a model directory or a .gguf")
        try:
            weights = _cache.load_weights(
                self.model,
                path,
                model_class,
                tokenizer_class,
                dtype=self.dtype,
                device=self.device,
                cache_dir=cache_dir,
            )
        except Exception as exc:
            raise _translate(exc, "loading the model", str(path)) from exc
        self.cache_path = weights.cache_path
        self.loaded_from_cache = weights.from_cache
        model = weights.model
        if lora_path is not None:
            lora = Path(lora_path).expanduser()
            try:
                model = _cache.apply_lora(model, lora)
            except RepairLLMError:
                raise  # no adapter there, or no peft: already ours, as it stands
            except Exception as exc:
                raise _translate(exc, "loading the LoRA adapter", str(lora)) from exc
        model.eval()
        return weights.tokenizer, model

    def _eos_token_ids(self) -> set[int]:
        eos = self.hf_model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        if eos is None:
            return set()
        return {int(eos)} if isinstance(eos, int) else {int(i) for i in eos}

    def _token_texts(self) -> list[str]:
        """Each token id's text on its own (cached): for the grammar-time processors."""
        cached: list[str] | None = getattr(self, "_texts", None)
        if cached is None:
            size = int(self.hf_model.config.vocab_size)
            cached = self.tokenizer.batch_decode([[i] for i in range(size)])
            self._texts = cached
        return cached

    def _comma_classes(self) -> dict[str, Any]:
        """Token ids that write a separating comma, by the closers before it (cached).

        ``""``: the token starts with the comma (after spaces); ``'"}'``: it closes a
        string and an object first; and so on.
        """
        cached: dict[str, Any] | None = getattr(self, "_commas", None)
        if cached is None:
            import torch

            found: dict[str, list[int]] = {}
            for i, text in enumerate(self._token_texts()):
                head, comma, _ = text.partition(",")
                closers = head.replace(" ", "")
                # At most one quote, and only first: it closes the string the comma follows.
                if (
                    comma
                    and len(closers) <= 4
                    and not closers.strip('"}]')
                    and '"' not in closers[1:]
                ):
                    found.setdefault(closers, []).append(i)
            cached = {k: torch.tensor(v, dtype=torch.long) for k, v in found.items()}
            self._commas = cached
        return cached

    def _structural_tokens(self) -> frozenset[int]:
        """Ids of the tokens that are only JSON punctuation, spaces or a literal (cached)."""
        cached: frozenset[int] | None = getattr(self, "_structural", None)
        if cached is None:
            cached = frozenset(
                i
                for i, text in enumerate(self._token_texts())
                if text and (not text.strip(_PUNCT) or text.strip(_PUNCT) in _LITERALS)
            )
            self._structural = cached
        return cached

    def _special_token_id(self, token: str | None) -> int | None:
        """The id of ``token`` when it is one special token, which decoding would drop."""
        if token is None or token not in self.tokenizer.all_special_tokens:
            return None
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        return token_id if isinstance(token_id, int) else None

    # -- the contract -------------------------------------------------------------------

    def count_tokens(self, text: Messages) -> int:
        """Tokens in a text, or in messages rendered through the chat template."""
        self._require_open()
        if isinstance(text, str):
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        return int(self._encode(as_messages(text))["input_ids"].shape[-1])

    def _require_open(self) -> None:
        if not hasattr(self, "hf_model"):
            raise ConfigError("this hf backend was closed; create a new one")

    def _encode(self, messages: list[Message]) -> Any:
        self._require_open()
        conversation = [
            {**m, "content": _content_text(m.get("content"), i)} for i, m in enumerate(messages)
        ]
        # A trailing assistant message is a reply to continue (after finish_reason
        # "length"), not a finished turn.
        continuing = conversation[-1]["role"] == "assistant"
        if not self.tokenizer.chat_template:
            raise ConfigError(
                f"the tokenizer of {self.model} has no chat template; pass chat_template=..."
            )
        try:
            return self.tokenizer.apply_chat_template(
                conversation,
                add_generation_prompt=not continuing,
                continue_final_message=continuing,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
            )
        except Exception as exc:
            raise ConfigError(f"the chat template failed on these messages: {exc}") from exc

    def _chat(self, messages: list[Message], options: ChatOptions) -> Completion:
        run = _Run(self, messages, options)
        with self._lock, run.seeded():
            try:
                output = self.hf_model.generate(**run.kwargs)
            except Exception as exc:
                raise _translate(exc, "generating") from exc
        generated = output[0, run.prompt_tokens :].tolist()
        text = self.tokenizer.decode(generated, skip_special_tokens=True)
        text, finish = run.finish(text, generated)
        usage = Usage(run.prompt_tokens, len(generated))
        return Completion(text, finish, usage, raw=generated, notes=run.notes())

    def _stream(self, messages: list[Message], options: ChatOptions) -> Iterator[Chunk]:
        from transformers import TextIteratorStreamer

        run = _Run(self, messages, options)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                with self._lock, run.seeded():
                    result["output"] = self.hf_model.generate(**run.kwargs, streamer=streamer)
            except BaseException as exc:  # re-raised in the caller's thread
                result["error"] = exc
                # generate may fail before the streamer's end: unblock the reader.
                streamer.end()  # type: ignore[no-untyped-call, unused-ignore]

        thread = threading.Thread(target=work, name="repairllm-hf-generate", daemon=True)
        thread.start()
        if run.grammar is not None and run.grammar.notes:
            # What the grammar left out is known before the first token.
            yield Chunk("", notes=tuple(run.grammar.notes))
        emitted = 0
        cut = False
        text = ""
        try:
            for piece in streamer:
                text += piece
                end, cut = run.cut_at(text)
                if cut:
                    run.cancel.set()  # the rest would be thrown away
                    if end > emitted:
                        yield Chunk(text[emitted:end])
                    emitted = end
                    break
                # Hold back what could be the start of a stop string split across pieces.
                safe = len(text) - run.holdback
                if safe > emitted:
                    yield Chunk(text[emitted:safe])
                    emitted = safe
        finally:
            run.cancel.set()  # a consumer that stops early stops generation too
            thread.join()
        if "error" in result:
            raise _translate(result["error"], "generating") from result["error"]
        generated = result["output"][0, run.prompt_tokens :].tolist()
        final, finish = (text[:emitted], "stop") if cut else run.finish(text, generated)
        yield Chunk(final[emitted:], finish, Usage(run.prompt_tokens, len(generated)))

    def close(self) -> None:
        """Drop the model and tokenizer so their memory can be freed. Safe to call twice."""
        for attr in ("hf_model", "tokenizer"):
            if hasattr(self, attr):
                delattr(self, attr)
        if getattr(self, "device", None) is not None and self.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()


class _Run:
    """One generation: its ``generate`` arguments, stop handling and finish reason."""

    def __init__(self, backend: HFBackend, messages: list[Message], options: ChatOptions) -> None:
        assert isinstance(options, HFOptions)
        structured = options.json_schema is not None or options.json_mode
        if structured and not backend.supports_json_schema:
            raise ConfigError(
                "grammar-constrained decoding (json_schema/json_mode) needs llguidance: "
                f"{INSTALL_HINT}; or leave them unset and let repairllm repair the reply"
            )
        self.backend = backend
        self.options = options
        encoded = backend._encode(messages)
        self.prompt_tokens = int(encoded["input_ids"].shape[-1])
        self.grammar: _grammar.GrammarMask | None = None
        self.stops = [s for s in options.stop or [] if s]
        self.cancel = threading.Event()
        self.deadline = time.monotonic() + options.timeout if options.timeout else None
        self.timed_out = False
        markers = [*self.stops, *([backend.end_token] if backend.end_token else [])]
        self.holdback = max((len(s) for s in markers), default=1) - 1
        self.markers = markers

        kwargs = dict(backend.generation_config)
        limit = options.max_tokens or kwargs.pop("max_new_tokens", None) or DEFAULT_MAX_NEW_TOKENS
        kwargs.pop("max_length", None)  # max_new_tokens says it; both would conflict
        if backend.context_length is not None and options.max_tokens is None:
            limit = max(1, min(limit, backend.context_length - self.prompt_tokens))
        self.max_new_tokens = int(limit)
        temperature = options.temperature
        if temperature is None:
            # Unset: generation_config decides; sampling there without a temperature
            # means transformers' default of 1.0.
            temperature = kwargs.get("temperature", 1.0) if kwargs.get("do_sample") else 0.0
        if not temperature:
            # Greedy: sampling knobs would only draw "ignored flag" warnings.
            kwargs["do_sample"] = False
            for key in _SAMPLING_KEYS:
                kwargs.pop(key, None)
        else:
            kwargs.update(do_sample=True, temperature=temperature)
            if options.top_p is not None:
                kwargs["top_p"] = options.top_p
            if options.top_k is not None:
                kwargs["top_k"] = options.top_k
        if options.repetition_penalty is not None:
            kwargs["repetition_penalty"] = options.repetition_penalty
        eos = set(backend._eos_ids)
        if backend._end_token_id is not None:
            eos.add(backend._end_token_id)
        if eos:
            kwargs["eos_token_id"] = sorted(eos)
        if (
            kwargs.get("pad_token_id") is None
            and backend.hf_model.generation_config.pad_token_id is None
        ):
            kwargs["pad_token_id"] = min(eos) if eos else 0
        kwargs.update(
            encoded.to(backend.device),
            max_new_tokens=self.max_new_tokens,
            stopping_criteria=_criteria(self),
        )
        if structured:
            last = messages[-1]
            # A trailing assistant message is the reply so far (a continuation): the
            # grammar picks up where it stopped.
            prefix = _content_text(last.get("content"), 0) if last["role"] == "assistant" else ""
            self.grammar = _grammar.build_mask(
                backend.tokenizer,
                options.json_schema,
                eos=eos,
                prompt_tokens=self.prompt_tokens,
                vocab_size=int(backend.hf_model.config.vocab_size),
                prefix=prefix,
            )
        penalty = options.repeat_penalty
        if penalty is None and self.grammar is not None and self.grammar.active:
            penalty = GRAMMAR_REPEAT_PENALTY
        processors: list[Callable[[Any, Any], Any]] = []
        if penalty is not None and penalty != 1.0:
            processors.append(
                _recent_repetition(
                    self.prompt_tokens,
                    penalty,
                    options.repeat_window,
                    backend._structural_tokens() if self.grammar is not None else frozenset(),
                )
            )
        if self.grammar is not None and self.grammar.active:
            if options.array_decay:
                processors.append(_ArrayLength(backend, self.prompt_tokens, options.array_decay))
            processors.append(self.grammar)
        if processors:
            kwargs["logits_processor"] = _processors(processors)
        self.kwargs = kwargs

    def notes(self) -> tuple[str, ...]:
        return tuple(self.grammar.notes) if self.grammar is not None else ()

    @contextlib.contextmanager
    def seeded(self) -> Iterator[None]:
        """Seed sampling for this call without disturbing the caller's global RNG."""
        if self.options.seed is None:
            yield
            return
        import torch

        devices = [self.backend.device] if self.backend.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.options.seed)
            yield

    def cut_at(self, text: str) -> tuple[int, bool]:
        """Where the reply ends: the first stop string (cut before) or end token."""
        best = len(text)
        hit = False
        for marker in self.markers:
            index = text.find(marker)
            if index < 0:
                continue
            end = index
            if marker == self.backend.end_token and self.backend.include_end:
                end += len(marker)
            if not hit or index < best or (index == best and end > best):
                best, hit = end, True
        return best, hit

    def should_stop(self, generated: Sequence[int]) -> bool:
        """Checked after each token: cancelled, past the deadline, or a marker appeared."""
        if self.cancel.is_set():
            return True
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.timed_out = True
            return True
        if not self.markers:
            return False
        # A token is at least one character or a piece of one (at most four bytes), so
        # this window always covers the longest marker plus a token of slack.
        window = list(generated[-(4 * (self.holdback + 1) + 4) :])
        tail = self.backend.tokenizer.decode(window, skip_special_tokens=True)
        return any(marker in tail for marker in self.markers)

    def finish(self, text: str, generated: list[int]) -> tuple[str, str]:
        """Cut the text at stop markers and name why generation ended.

        Raises:
            BackendTimeout: when the call's ``timeout`` ran out first.
        """
        end, hit = self.cut_at(text)
        if hit:
            return text[:end], "stop"
        last = generated[-1] if generated else None
        backend = self.backend
        if last is not None and last == backend._end_token_id:
            return (text + (backend.end_token or "") if backend.include_end else text), "stop"
        if last is not None and last in backend._eos_ids:
            return text, "stop"
        if self.timed_out:
            raise BackendTimeout(
                f"no complete reply within {self.options.timeout} s "
                f"({len(generated)} tokens generated); raise timeout or lower max_tokens",
                "hf",
            )
        if len(generated) >= self.max_new_tokens:
            return text, "length"
        return text, "stop"


def _recent_repetition(
    prompt: int, penalty: float, window: int, exempt: frozenset[int] = frozenset()
) -> Callable[[Any, Any], Any]:
    """Penalise tokens among the reply's last ``window`` tokens (the prompt excluded).

    ``exempt`` tokens (JSON punctuation, under a grammar) are never penalised: the
    structure of a value repeats by nature, and penalising it closes objects early.
    """
    import torch

    def apply(input_ids: Any, scores: Any) -> Any:
        recent = input_ids[:, prompt:][:, -window:]
        if exempt:
            kept = [t for t in recent[0].tolist() if t not in exempt]
            recent = torch.tensor([kept], dtype=input_ids.dtype, device=input_ids.device)
        if recent.shape[-1] == 0:
            return scores
        picked = scores.gather(1, recent)
        # Positive logits are divided, negative multiplied: both make the token less likely.
        picked = torch.where(picked > 0, picked / penalty, picked * penalty)
        return scores.scatter(1, recent, picked)

    return apply


class _ArrayLength:
    """Make "one more item" less likely the longer the array it would extend.

    A small scanner follows the reply's JSON (strings, escapes, nesting) as tokens
    arrive. A token that writes a comma, perhaps after closing a string and a few
    containers first (``", "``, ``"}, {"``, ``], [``), is weighed against the array that
    comma would land in: it loses ``decay`` logits per item that array already holds.
    The grammar already decides where a comma may stand; this only makes the model
    say when a list is done.
    """

    def __init__(self, backend: HFBackend, prompt: int, decay: float) -> None:
        self.texts = backend._token_texts()
        self.classes = backend._comma_classes()
        self.seen = prompt
        self.decay = decay
        self.in_string = False
        self.escaped = False
        # One [is_array, items] per open container.
        self.stack: list[list[Any]] = []

    def _feed(self, text: str) -> None:
        for ch in text:
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif ch == "\\":
                    self.escaped = True
                elif ch == '"':
                    self.in_string = False
            elif ch == '"':
                self.in_string = True
            elif ch in "[{":
                self.stack.append([ch == "[", 0])
            elif ch in "]}":
                if self.stack:
                    self.stack.pop()
            elif ch == "," and self.stack:
                self.stack[-1][1] += 1

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        for token in input_ids[0, self.seen :].tolist():
            if token < len(self.texts):
                self._feed(self.texts[token])
        self.seen = int(input_ids.shape[-1])
        out = scores
        for closers, ids in self.classes.items():
            if closers.startswith('"') != self.in_string:
                continue
            pops = len(closers) - self.in_string
            if pops >= len(self.stack):
                continue
            is_array, items = self.stack[len(self.stack) - 1 - pops]
            if is_array:
                if out is scores:
                    out = scores.clone()
                out[0, ids] -= self.decay * (items + 1)
        return out


def _processors(steps: Sequence[Callable[[Any, Any], Any]]) -> Any:
    """A transformers LogitsProcessorList that runs ``steps`` in order."""
    from transformers import LogitsProcessor, LogitsProcessorList

    class _Step(LogitsProcessor):  # type: ignore[misc, unused-ignore]
        def __init__(self, step: Callable[[Any, Any], Any]) -> None:
            self.step = step

        def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> Any:
            return self.step(input_ids, scores)

    return LogitsProcessorList([_Step(step) for step in steps])


def _criteria(run: _Run) -> Any:
    """A transformers StoppingCriteriaList that asks ``run`` after every token."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    prompt = run.prompt_tokens

    class _Watch(StoppingCriteria):  # type: ignore[misc, unused-ignore]
        def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> Any:
            stop = run.should_stop(input_ids[0, prompt:].tolist())
            return torch.full(
                (input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device
            )

    return StoppingCriteriaList([_Watch()])
