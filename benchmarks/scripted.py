"""Scripted model output for benchmarks: a vLLM logits processor that makes any model (random
weights included) write a planned tool-calling conversation, token for token.

The engine does its full forward pass for every token; only the choice of the next token is
fixed, so engine time is the model's real cost and every variant of a benchmark gets the same
tokens. A request opts in with a plan in its user message::

    [[plan calls=1,1,1,1 tool=add args={"a":1,"b":2} json=spaced text=0]]

``calls``: tool calls per model turn (then a final answer); ``tool``: the name the model calls
(or names, comma-separated, taken in turn by the calls of a turn); ``args``: its arguments (a
JSON list: one object per name); ``json``: ``spaced`` writes them as the chat template renders JSON,
``compact`` without spaces (as many models do, which a full re-render then re-spells);
``text``: words of the final answer (0: "Done."). The turn follows from the tool results
already in the prompt (not from its assistant turns: LiteLLM's streaming follow-ups leave those
out). Requests without a plan are left alone.

Serve with ``--logits-processors benchmarks.scripted:ScriptedOutputs`` (the repository root on
``PYTHONPATH``). Written for the tiny model's chat template (`<|im_start|>assistant` turns,
hermes `<tool_call>` blocks).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

PLAN = re.compile(r"\[\[plan (.*?)\]\](?!\])")
TOOL_RESULT = "<tool_response>"


@dataclass(frozen=True)
class Plan:
    calls: tuple[int, ...] = (1,)
    tool: str = "add"
    args: str = '{"a":1,"b":2}'
    json_style: str = "spaced"
    text: int = 0

    def marker(self) -> str:
        calls = ",".join(str(n) for n in self.calls)
        return f"[[plan calls={calls} tool={self.tool} args={self.args} json={self.json_style} text={self.text}]]"

    def arguments(self, i: int = 0) -> dict[str, Any]:
        args = json.loads(self.args)
        return args[i % len(args)] if isinstance(args, list) else args

    def tool_name(self, i: int = 0) -> str:
        names = self.tool.split(",")
        return names[i % len(names)]

    def completion(self, turn: int) -> str:
        """What the model writes in turn ``turn`` (without its end-of-turn token)."""
        if turn < len(self.calls):
            first = sum(self.calls[:turn])  # calls are numbered across turns: a list of args cycles
            return "\n".join(self._call(first + i) for i in range(self.calls[turn]))
        return " ".join(["ok"] * self.text) if self.text else "Done."

    def turn_after(self, results: int) -> int:
        """The turn whose prompt holds ``results`` tool results."""
        done = 0
        for turn, calls in enumerate(self.calls):
            if done >= results:
                return turn
            done += calls
        return len(self.calls)

    def final_text(self) -> str:
        return self.completion(len(self.calls))

    def _call(self, i: int) -> str:
        name, args = self.tool_name(i), self.arguments(i)
        if self.json_style == "compact":
            body = json.dumps({"name": name, "arguments": args}, separators=(",", ":"))
        else:
            body = f'{{"name": "{name}", "arguments": {json.dumps(args)}}}'
        return f"<tool_call>\n{body}\n</tool_call>"


def parse_plan(text: str) -> Plan | None:
    match = PLAN.search(text)
    if match is None:
        return None
    fields = dict(part.split("=", 1) for part in match.group(1).split())
    return Plan(
        calls=tuple(int(n) for n in fields.get("calls", "1").split(",") if n),
        tool=fields.get("tool", "add"),
        args=fields.get("args", '{"a":1,"b":2}'),
        json_style=fields.get("json", "spaced"),
        text=int(fields.get("text", "0")),
    )


def planned_ids(tokenizer: Any, prompt_ids: list[int]) -> list[int] | None:
    """The token ids a planned request must generate, end-of-turn token included."""
    prompt = tokenizer.decode(prompt_ids, skip_special_tokens=False)
    plan = parse_plan(prompt)
    if plan is None:
        return None
    turn = plan.turn_after(prompt.count(TOOL_RESULT))
    return [*tokenizer.encode(plan.completion(turn), add_special_tokens=False), tokenizer.eos_token_id]


try:
    from tests.support.forced_outputs import ForcedOutputs
except ImportError:  # the plan helpers above are used by clients without vLLM
    pass
else:

    class ScriptedOutputs(ForcedOutputs):
        """Force each planned request's next token; leave other requests alone."""

        plan = staticmethod(planned_ids)
