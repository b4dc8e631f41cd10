# ruff: noqa: RUF001 (vLLM's DeepSeek tokens are written with full-width bars)
"""Tool-call formats of the tool parsers vLLM ships, written by hand from each parser's source.

A `Family` says how one model family writes a tool call (and its reasoning) as text, and which
tokens its tokenizer must hold as whole tokens. `tokenizer_for` builds a tiny byte-level
tokenizer with exactly those tokens (nothing is downloaded: every other character is one byte
token), cached per family. `model_output` writes a turn in the family's syntax.

The same text then goes through stock vLLM's chat completions and through the plugin
(``tests/support/stock_chat.py``); see ``tests/unit/test_formats.py``.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

Call = tuple[str, dict[str, Any]]  # a tool name and its arguments


def _json(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False)


def _py(arguments: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in arguments.items())


def _xml_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class Family:
    """One ``--tool-call-parser`` and how its models write calls."""

    tool_parser: str
    call: Callable[[int, str, dict[str, Any]], str]  # the index, name and arguments of one call
    wrap: Callable[[list[str]], str] = "".join  # a turn's calls, wrapped in their section
    tokens: tuple[str, ...] = ()  # whole tokens of the family's tokenizer
    reasoning_parser: str | None = None  # the reasoning parser the family pairs with
    think: tuple[str, str] = ("<think>", "</think>")  # how its reasoning is wrapped
    template_kwargs: dict[str, Any] | None = None  # chat_template_kwargs its parsers read

    @property
    def name(self) -> str:
        return self.tool_parser

    def calls(self, calls: list[Call]) -> str:
        return self.wrap([self.call(i, name, args) for i, (name, args) in enumerate(calls)])


def model_output(
    family: Family, calls: list[Call], before: str = "", after: str = "", reasoning: str = ""
) -> str:
    """A turn as the family's model writes it: reasoning, text, the calls, text."""
    thought = f"{family.think[0]}{reasoning}{family.think[1]}" if reasoning else ""
    return f"{thought}{before}{family.calls(calls)}{after}"


def _hermes(_: int, name: str, args: dict[str, Any]) -> str:
    return f'<tool_call>\n{{"name": "{name}", "arguments": {_json(args)}}}\n</tool_call>'


def _qwen3_xml(open_: str, close: str) -> Callable[[int, str, dict[str, Any]], str]:
    def call(_: int, name: str, args: dict[str, Any]) -> str:
        params = "".join(f"<parameter={k}>\n{_xml_value(v)}\n</parameter>\n" for k, v in args.items())
        return f"{open_}\n<function={name}>\n{params}</function>\n{close}"

    return call


def _deepseek_v3(_: int, name: str, args: dict[str, Any]) -> str:
    return (
        f"<｜tool▁call▁begin｜>function<｜tool▁sep｜>{name}\n```json\n{_json(args)}\n```<｜tool▁call▁end｜>"
    )


def _deepseek_v31(_: int, name: str, args: dict[str, Any]) -> str:
    return f"<｜tool▁call▁begin｜>{name}<｜tool▁sep｜>{_json(args)}<｜tool▁call▁end｜>"


def _dsml(_: int, name: str, args: dict[str, Any]) -> str:
    params = "".join(
        f'<｜DSML｜parameter name="{k}" string="{"true" if isinstance(v, str) else "false"}">'
        f"{_xml_value(v)}</｜DSML｜parameter>\n"
        for k, v in args.items()
    )
    return f'<｜DSML｜invoke name="{name}">\n{params}</｜DSML｜invoke>\n'


def _dsml_spaced(_: int, name: str, args: dict[str, Any]) -> str:
    """DeepSeek V4.1's DSML: a space after the marker."""
    return _dsml(_, name, args).replace("<｜DSML｜", "<｜DSML｜ ").replace("</｜DSML｜", "</｜DSML｜ ")


def _step3(_: int, name: str, args: dict[str, Any]) -> str:
    params = "".join(
        f'<steptml:parameter name="{k}">{_xml_value(v)}</steptml:parameter>' for k, v in args.items()
    )
    invoke = f'<steptml:invoke name="{name}">{params}</steptml:invoke>'
    return f"<｜tool_call_begin｜>function<｜tool_sep｜>{invoke}<｜tool_call_end｜>"


MINIMAX_M3 = "]<]minimax[>["


def _minimax_m3(_: int, name: str, args: dict[str, Any]) -> str:
    m = MINIMAX_M3
    params = "".join(f"{m}<{k}>{_xml_value(v)}{m}</{k}>\n" for k, v in args.items())
    return f'{m}<invoke name="{name}">\n{params}{m}</invoke>\n'


def _functiongemma(_: int, name: str, args: dict[str, Any]) -> str:
    params = ",".join(f"{k}:<escape>{_xml_value(v)}<escape>" for k, v in args.items())
    return f"<start_function_call>call:{name}{{{params}}}<end_function_call>"


def _mimo(_: int, name: str, args: dict[str, Any]) -> str:
    params = "".join(f"<parameter={k}>{_xml_value(v)}</parameter>" for k, v in args.items())
    return f"<tool_call><function={name}>{params}</function></tool_call>"


def _dots(_: int, name: str, args: dict[str, Any]) -> str:
    params = "".join(f'<parameter name="{k}">{_xml_value(v)}</parameter>' for k, v in args.items())
    return f'<dots_function_call><invoke name="{name}">{params}</invoke></dots_function_call>'


def _kimi_k2(index: int, name: str, args: dict[str, Any]) -> str:
    return f"<|tool_call_begin|>functions.{name}:{index}<|tool_call_argument_begin|>{_json(args)}<|tool_call_end|>"


def _glm(newlines: bool) -> Callable[[int, str, dict[str, Any]], str]:
    sep = "\n" if newlines else ""

    def call(_: int, name: str, args: dict[str, Any]) -> str:
        pairs = "".join(
            f"{sep}<arg_key>{k}</arg_key>{sep}<arg_value>{_xml_value(v)}</arg_value>" for k, v in args.items()
        )
        return f"<tool_call>{name}{pairs}{sep}</tool_call>"

    return call


def _minimax(_: int, name: str, args: dict[str, Any]) -> str:
    params = "".join(f'<parameter name="{k}">{_xml_value(v)}</parameter>\n' for k, v in args.items())
    return f'<invoke name="{name}">\n{params}</invoke>\n'


def _json_object(key: str) -> Callable[[int, str, dict[str, Any]], str]:
    return lambda _, name, args: f'{{"name": "{name}", "{key}": {_json(args)}}}'


def _array(prefix: str = "", suffix: str = "") -> Callable[[list[str]], str]:
    return lambda calls: f"{prefix}[{', '.join(calls)}]{suffix}"


def _section(begin: str, end: str, sep: str = "") -> Callable[[list[str]], str]:
    return lambda calls: f"{begin}{sep.join(calls)}{end}"


QWEN_TOKENS = ("<tool_call>", "</tool_call>", "<think>", "</think>", "<|im_start|>", "<|im_end|>")
DEEPSEEK_TOKENS = (
    "<｜tool▁calls▁begin｜>",
    "<｜tool▁calls▁end｜>",
    "<｜tool▁call▁begin｜>",
    "<｜tool▁call▁end｜>",
    "<｜tool▁sep｜>",
    "<think>",
    "</think>",
)
KIMI_TOKENS = (
    "<|tool_calls_section_begin|>",
    "<|tool_calls_section_end|>",
    "<|tool_call_begin|>",
    "<|tool_call_argument_begin|>",
    "<|tool_call_end|>",
    "<think>",
    "</think>",
)

FAMILIES: tuple[Family, ...] = (
    Family("hermes", _hermes, "\n".join, QWEN_TOKENS, "qwen3"),
    Family("qwen3_json", _hermes, "\n".join, QWEN_TOKENS, "qwen3"),
    Family("granite4", _hermes, "\n".join, ("<tool_call>", "</tool_call>")),
    Family("qwen3_coder", _qwen3_xml("<tool_call>", "</tool_call>"), "\n".join, QWEN_TOKENS, "qwen3"),
    Family("qwen3_xml", _qwen3_xml("<tool_call>", "</tool_call>"), "\n".join, QWEN_TOKENS, "qwen3"),
    Family(
        "seed_oss",
        _qwen3_xml("<seed:tool_call>", "</seed:tool_call>"),
        "\n".join,
        (
            "<seed:tool_call>",
            "</seed:tool_call>",
            "<seed:think>",
            "</seed:think>",
            "<seed:bos>",
            "<seed:eos>",
        ),
        "seed_oss",
        ("<seed:think>", "</seed:think>"),
    ),
    Family(
        "llama3_json",
        _json_object("parameters"),
        lambda calls: "<|python_tag|>" + "; ".join(calls),
        ("<|python_tag|>",),
    ),
    Family(
        "llama4_json",
        _json_object("parameters"),
        lambda calls: "<|python_tag|>" + "; ".join(calls),
        ("<|python_tag|>",),
    ),
    Family("pythonic", lambda _, name, args: f"{name}({_py(args)})", _array()),
    Family("llama4_pythonic", lambda _, name, args: f"{name}({_py(args)})", _array()),
    Family(
        "olmo3",
        lambda _, name, args: f"{name}({_py(args)})",
        _section("<function_calls>", "</function_calls>", "\n"),
    ),
    Family("mistral", _json_object("arguments"), _array("[TOOL_CALLS]"), ("[TOOL_CALLS]",)),
    Family(
        "deepseek_v3",
        _deepseek_v3,
        _section("<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "\n"),
        DEEPSEEK_TOKENS,
        "deepseek_r1",
    ),
    Family(
        "deepseek_v31",
        _deepseek_v31,
        _section("<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"),
        DEEPSEEK_TOKENS,
        "deepseek_v3",
    ),
    Family(
        "deepseek_v32",
        _dsml,
        _section("<｜DSML｜function_calls>\n", "</｜DSML｜function_calls>"),
        DEEPSEEK_TOKENS,
        "deepseek_v3",
    ),
    Family(
        "deepseek_v4",
        _dsml,
        _section("<｜DSML｜tool_calls>\n", "</｜DSML｜tool_calls>"),
        DEEPSEEK_TOKENS,
        "deepseek_v4",
    ),
    Family(
        "deepseek_v41",
        _dsml_spaced,
        _section("<｜DSML｜ calls>\n", "</｜DSML｜ calls>"),
        DEEPSEEK_TOKENS,
        "deepseek_v41",
    ),
    Family(
        "step3",
        _step3,
        _section("<｜tool_calls_begin｜>", "<｜tool_calls_end｜>"),
        (
            "<｜tool_calls_begin｜>",
            "<｜tool_calls_end｜>",
            "<｜tool_call_begin｜>",
            "<｜tool_call_end｜>",
            "<｜tool_sep｜>",
        ),
    ),
    Family(
        "minimax_m3",
        _minimax_m3,
        _section(f"{MINIMAX_M3}<tool_call>\n", f"{MINIMAX_M3}</tool_call>"),
        ("<mm:think>", "</mm:think>"),
        "minimax_m3",
        ("<mm:think>", "</mm:think>"),
    ),
    Family(
        "lfm2",
        lambda _, name, args: f"{name}({_py(args)})",
        _array("<|tool_call_start|>", "<|tool_call_end|>"),
        ("<|tool_call_start|>", "<|tool_call_end|>"),
    ),
    Family(
        "apertus",
        lambda _, name, args: json.dumps({name: args}),
        _array("<|tools_prefix|>", "<|tools_suffix|>"),
        ("<|tools_prefix|>", "<|tools_suffix|>"),
    ),
    Family("ling3", _glm(False), "".join, ("<tool_call>", "</tool_call>", "<think>", "</think>")),
    Family("poolside_v1", _glm(True), "\n".join, ("<tool_call>", "</tool_call>")),
    Family(
        "functiongemma",
        _functiongemma,
        "".join,
        ("<start_function_call>", "<end_function_call>", "<escape>"),
    ),
    Family(
        "gigachat3",
        lambda _, name, args: "<|function_call|>" + _json_object("arguments")(0, name, args),
        "".join,
        ("<|function_call|>", "<|message_sep|>", "<|role_sep|>"),
    ),
    Family("mimo", _mimo, "\n".join, QWEN_TOKENS, "mimo"),
    Family("step3p5", _qwen3_xml("<tool_call>", "</tool_call>"), "\n".join, QWEN_TOKENS, "step3p5"),
    Family("dots", _dots, "\n".join, ("<dots_function_call>", "</dots_function_call>")),
    Family(
        "kimi_k2",
        _kimi_k2,
        _section("<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"),
        KIMI_TOKENS,
        "kimi_k2",
    ),
    Family("glm45", _glm(True), "\n".join, ("<tool_call>", "</tool_call>", "<think>", "</think>"), "glm45"),
    Family("glm47", _glm(False), "".join, ("<tool_call>", "</tool_call>", "<think>", "</think>"), "glm45"),
    Family(
        "minimax_m2",
        _minimax,
        _section("<minimax:tool_call>\n", "</minimax:tool_call>"),
        ("<minimax:tool_call>", "</minimax:tool_call>", "<think>", "</think>"),
        "minimax_m2",
    ),
    Family("granite", _json_object("arguments"), _array("<|tool_call|>"), ("<|tool_call|>",)),
    Family(
        "granite-20b-fc",
        lambda _, name, args: f"<function_call> {_json_object('arguments')(0, name, args)}",
        "\n".join,
    ),
    Family("xlam", _json_object("arguments"), _array()),
    Family("phi4_mini_json", _json_object("arguments"), _array("functools")),
    Family(
        "jamba",
        _json_object("arguments"),
        _array("<tool_calls>", "</tool_calls>"),
        ("<tool_calls>", "</tool_calls>"),
    ),
    Family("hunyuan_a13b", _json_object("arguments"), _array("<tool_calls>", "</tool_calls>")),
    Family(
        "internlm",
        lambda _, name, args: (
            f"<|action_start|><|plugin|>\n{_json_object('parameters')(0, name, args)}<|action_end|>"
        ),
        "\n".join,
        ("<|action_start|>", "<|plugin|>", "<|action_end|>"),
    ),
    Family(
        "longcat",
        lambda _, name, args: (
            f"<longcat_tool_call>{_json_object('arguments')(0, name, args)}</longcat_tool_call>"
        ),
        "\n".join,
        ("<longcat_tool_call>", "</longcat_tool_call>"),
    ),
)

BY_NAME = {family.name: family for family in FAMILIES}

EOS = "<|eos|>"


@cache
def tokenizer_dir(tokens: tuple[str, ...]) -> str:
    """A tokenizer saved to a temporary folder: one token per byte, plus ``tokens`` whole."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    bpe = Tokenizer(models.BPE(vocab={char: i for i, char in enumerate(alphabet)}, merges=[]))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    bpe.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS)
    fast.add_special_tokens({"additional_special_tokens": list(tokens)})
    folder = tempfile.mkdtemp(prefix="formats-tokenizer-")
    fast.save_pretrained(folder)
    # vLLM reads the model's config beside a tokenizer; without one it retries with a pause.
    Path(folder, "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    return folder


def tokenizer_for(family: Family) -> Any:
    """The family's tokenizer as vLLM's API server holds it."""
    return _tokenizer(family.tokens)


@cache
def _tokenizer(tokens: tuple[str, ...]) -> Any:
    from vllm.tokenizers import get_tokenizer

    return get_tokenizer(tokenizer_dir(tokens))
