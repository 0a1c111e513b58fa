"""Logits processors for the qwen3 engine's ``generate()`` calls (both checkpoint layouts).

* :func:`confidence_recorder` keeps the best token's log-probability at every step (greedy decoding), so each
  clip gets a confidence without asking ``generate()`` for its scores, and notes the rows whose scores held a NaN
  (reported on GPUs for short clips in mixed-length batches, whose output then decodes as ``!!!!``).
* :func:`generated_only_penalty` is a repetition penalty that looks only at the tokens generated so far. The
  stock ``repetition_penalty=`` of ``generate()`` also penalises every token of the prompt, and the prompt holds
  the hotword context: a retry with the penalty would then steer the model away from exactly the terms the
  context asks for.
"""

from __future__ import annotations

from typing import Any


def confidence_recorder() -> Any:
    """A fresh recorder for one ``generate()`` call (``.confidence(row, length)`` and ``.nan_rows()`` after it)."""
    import torch
    from transformers import LogitsProcessor

    class _Recorder(LogitsProcessor):
        def __init__(self) -> None:
            self.steps: list[torch.Tensor] = []
            self._table: torch.Tensor | None = None
            self._nan: torch.Tensor | None = None

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            self.steps.append(torch.log_softmax(scores.float(), dim=-1).max(dim=-1).values)
            nan = torch.isnan(scores).any(dim=-1)
            self._nan = nan if self._nan is None else self._nan | nan
            return scores

        def nan_rows(self) -> list[int]:
            """Rows whose scores held a NaN at some step: their output means nothing."""
            return [] if self._nan is None else [int(i) for i in torch.nonzero(self._nan).flatten().tolist()]

        def confidence(self, row: int, length: int) -> float | None:
            if not self.steps or length == 0:
                return None
            if self._table is None:
                self._table = torch.stack(self.steps, dim=1).cpu()
            return round(float(torch.exp(self._table[row, :length].mean())), 4)

    return _Recorder()


def generated_only_penalty(penalty: float, prompt_length: int | None = None) -> Any:
    """A repetition penalty (CTRL-style: positive logits divided, negative ones multiplied by ``penalty``) on the
    tokens generated after the prompt only.

    ``prompt_length`` is the (padded) prompt length of the batch; left out, it is taken from the first call, which
    ``generate()`` makes before any token is generated. Make one per ``generate()`` call.
    """
    import torch
    from transformers import LogitsProcessor

    if penalty <= 0:
        raise ValueError(f"repetition penalty must be positive, got {penalty}")

    class _GeneratedOnlyPenalty(LogitsProcessor):
        def __init__(self) -> None:
            self.penalty = float(penalty)
            self.prompt_length = prompt_length

        def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
            if self.prompt_length is None:
                self.prompt_length = int(input_ids.shape[1])
            generated = input_ids[:, self.prompt_length :]
            if generated.shape[1] == 0:
                return scores
            picked = torch.gather(scores, 1, generated)
            picked = torch.where(picked < 0, picked * self.penalty, picked / self.penalty)
            return scores.scatter(1, generated, picked)

    return _GeneratedOnlyPenalty()
