"""The vLLM logits processor behind scripted model output: it forces each planned request's next
token and leaves other requests alone. The engine still runs its forward pass for every token;
only the choice of the next token is fixed.

A subclass says which requests are planned and what they write: ``plan(tokenizer, prompt_ids)``
returns the token ids a request must generate (end-of-turn token included), or None to leave it
alone. vLLM loads a processor by class path, so each use keeps a thin subclass of its own
(``benchmarks.scripted:ScriptedOutputs``, ``tests.support.scripted_formats:FormatOutputs``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

try:
    import torch
    from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor
    from vllm.v1.sample.logits_processor.builtin import process_dict_updates
except ImportError:  # pragma: no cover - the plan helpers beside the subclasses serve clients without vLLM
    pass
else:

    class ForcedOutputs(LogitsProcessor):
        """Force each planned request's next token; leave other requests alone."""

        plan: ClassVar[Callable[[Any, list[int]], list[int] | None]]

        def __init__(self, vllm_config: Any, device: Any, is_pin_memory: bool):
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(vllm_config.model_config.tokenizer)
            self.planned: dict[int, tuple[list[int], list[int]]] = {}  # row -> (ids, output so far)

        def is_argmax_invariant(self) -> bool:
            return False

        def _add(self, params: Any, prompt_ids: list[int] | None, output_ids: list[int]) -> Any:
            ids = type(self).plan(self.tokenizer, list(prompt_ids or []))
            return None if ids is None else (ids, output_ids)

        def update_state(self, batch_update: BatchUpdate | None) -> None:
            process_dict_updates(self.planned, batch_update, self._add)

        def apply(self, logits: torch.Tensor) -> torch.Tensor:
            rows, tokens = [], []
            for row, (ids, output) in self.planned.items():
                if len(output) < len(ids):
                    rows.append(row)
                    tokens.append(ids[len(output)])
            if rows:
                index = torch.tensor(rows, device=logits.device)
                logits[index] = float("-inf")
                logits[index, torch.tensor(tokens, device=logits.device)] = 0.0
            return logits
