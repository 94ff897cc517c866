"""Structured output heads: an edit as tensors, and tensors back into an edit that is valid by construction.

Heads on a sentence embedding:
* tools: 3 logits (sigmoid) — is adjust / selective_adjust / filter used;
* adjust: 14 values (tanh, ×100) + 14 "changed" gate logits; selective_adjust: 24 + 24;
* filter: logits over the 28 catalogue names + intensity (sigmoid, ×100).

``kind="direction"`` (``HeadKind``) splits each adjust / selective value into a 3-way class
(down / none / up, cross-entropy) and a magnitude (sigmoid, ×100): the class picks the sign, the
magnitude the size. A regression pulls "unsure between +30 and −30" and "one clause up, another
down" towards 0, i.e. an edit that barely moves the photo; a class picks one side (issue 12). The
head still returns the same seven tensors (``adj`` = sign × magnitude, ``adj_gate`` = the log-odds
of "changed" from the class logits), so ``decode`` and the ONNX graph read both kinds alike.
Decoding only ever emits catalogue names and integers inside the contract ranges, so every
prediction passes ``schemas.validate_edit`` without repair.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from schemas.edit import ADJUST_PARAMS, COLOUR_RANGES, HSL_CHANNELS, TOOLS, Edit, adjust_vector, selective_vector
from schemas.filters import FILTER_NAMES
from schemas.validation import validate_edit

N_ADJ, N_SEL, N_FILT = len(ADJUST_PARAMS), len(COLOUR_RANGES) * len(HSL_CHANNELS), len(FILTER_NAMES)
_SCALE = 100.0
IGNORE = -100  # cross-entropy ignore index for rows without a filter
HeadKind = Literal["regress", "direction"]
DEFAULT_HEADS: HeadKind = "direction"  # +18 and +27 real requests over "regress" (docs/benchmarks.md)
DOWN, NONE, UP = 0, 1, 2  # class order of the "direction" heads
# The sign is tanh(k · (up − down logit)), not a hard ±1: at 60 / 40 between up and down it is
# already ±0.92, while a near tie gives a small step instead of a full-size flip, so the graph stays
# continuous and int8 rounding cannot turn a borderline value round at full size
# (tests/test_serving_ort.py: raw int8 outputs within 0.25 of fp32).
SIGN_SHARPNESS = 4.0


def encode_targets(edits: Sequence[Edit]) -> dict[str, Any]:
    """Targets for a batch of reference edits (torch tensors)."""
    import torch

    tools, adj, sel, cls, inten = [], [], [], [], []
    for edit in edits:
        used = edit.canonical_dict()
        tools.append([float(t in used) for t in TOOLS])
        adj.append([v / _SCALE for v in adjust_vector(edit)])
        sel.append([v / _SCALE for v in selective_vector(edit)])
        if "filter" in used:
            assert edit.filter is not None
            cls.append(FILTER_NAMES.index(edit.filter.name))
            inten.append(edit.filter.intensity / _SCALE)
        else:
            cls.append(IGNORE)
            inten.append(0.0)
    adj_t, sel_t = torch.tensor(adj), torch.tensor(sel)
    return {"tools": torch.tensor(tools), "adj": adj_t, "adj_gate": (adj_t != 0).float(), "sel": sel_t,
            "sel_gate": (sel_t != 0).float(), "filter": torch.tensor(cls), "intensity": torch.tensor(inten)}


def _direction(magnitude: Any, logits: Any) -> tuple[Any, Any, Any, Any]:
    """Magnitude logits (batch × n) and class logits (batch × n × 3) → signed values, gate log-odds,
    class logits and magnitudes (each batch × n but the logits)."""
    import torch

    mag = magnitude.sigmoid()
    sign = torch.tanh(SIGN_SHARPNESS * (logits[..., UP] - logits[..., DOWN]))
    gate = torch.logsumexp(logits[..., [DOWN, UP]], -1) - logits[..., NONE]
    return sign * mag, gate, logits, mag


def _direction_values(raw: Any, n: int) -> tuple[Any, Any, Any, Any]:
    """``_direction`` of one output vector per request (batch × 4n: n magnitudes, then n × 3 class logits)."""
    return _direction(raw[:, :n], raw[:, n:].reshape(raw.shape[0], n, 3))


def build_heads(hidden: int, width: int = 256, dropout: float = 0.1, kind: HeadKind = DEFAULT_HEADS,
                per_value: bool = False) -> Any:
    """The head module: one shared hidden layer, then one linear layer per output group.

    ``per_value``: the input is batch × (N_ADJ + N_SEL + 1) × ``hidden`` (``labelwise`` pooling),
    one vector per adjust / selective value and a last one for the tools and filter heads. Each
    value goes through one hidden layer shared by all values (plus a bias of its own) and then its
    own output layer, so a value is predicted from its own pooled vector only.
    """
    import math

    import torch
    from torch import nn

    per_out = 4 if kind == "direction" else 2  # magnitude + 3 class logits, or value + gate logit
    n_values = N_ADJ + N_SEL

    def values_out(name: str, raw: Any, n: int) -> dict[str, Any]:
        if kind == "direction":
            value, gate, logits, mag = _direction_values(raw, n)
            return {name: value, f"{name}_gate": gate, f"{name}_dir": logits, f"{name}_mag": mag}
        return {name: raw[:, :n].tanh(), f"{name}_gate": raw[:, n:]}

    class _Heads(nn.Module):
        """What both head shapes share: the trunk and the tools / filter heads (their attribute names
        are the saved weights' names, so students saved before the shapes split still load)."""

        def __init__(self) -> None:
            super().__init__()
            self.kind = kind
            self.trunk = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, width), nn.GELU(), nn.Dropout(dropout))
            self.tools = nn.Linear(width, len(TOOLS))
            self.filter = nn.Linear(width, N_FILT + 1)

        def global_out(self, x: Any) -> tuple[Any, dict[str, Any]]:
            h = self.trunk(x)
            filt = self.filter(h)
            return h, {"tools": self.tools(h), "filter": filt[:, :N_FILT], "intensity": filt[:, N_FILT].sigmoid()}

    class EditHeads(_Heads):
        def __init__(self) -> None:
            super().__init__()
            self.adj = nn.Linear(width, per_out * N_ADJ)
            self.sel = nn.Linear(width, per_out * N_SEL)

        def forward(self, x: Any) -> dict[str, Any]:
            h, out = self.global_out(x)
            return out | values_out("adj", self.adj(h), N_ADJ) | values_out("sel", self.sel(h), N_SEL)

    class PerValueHeads(_Heads):
        def __init__(self) -> None:
            super().__init__()
            self.value_in = nn.Linear(hidden, width)
            self.value_bias = nn.Parameter(torch.zeros(n_values, width))
            self.drop = nn.Dropout(dropout)
            bound = 1 / math.sqrt(width)  # nn.Linear's default initialisation, per value
            self.value_w = nn.Parameter(torch.empty(n_values, width, per_out).uniform_(-bound, bound))
            self.value_b = nn.Parameter(torch.empty(n_values, per_out).uniform_(-bound, bound))

        def forward(self, x: Any, states: Any = None, mean: Any = None) -> dict[str, Any]:
            """``x``: the label-wise pooler's vectors (batch × values + 1 × ``hidden``); or, with
            ``states`` and ``mean`` given, its weights over ``states`` (``from_tokens``). Called as
            the module either way, so an ONNX export names the nodes ``/heads/...``."""
            if states is not None:
                return self.from_tokens(x, states, mean)
            _, out = self.global_out(x[:, -1])
            x = self.drop(x[:, :n_values])
            # the input is [value's own pooled vector ; the mean], and the mean is the same for every
            # value: its half of value_in runs once per request, not once per value (same maths,
            # half the MACs of the head's largest product on the serving path)
            own = hidden // 2
            weight = self.value_in.weight
            h = (x[..., :own] @ weight[:, :own].T + (x[:, :1, own:] @ weight[:, own:].T + self.value_in.bias))
            return out | self._values(h)

        def from_tokens(self, weights: Any, states: Any, mean: Any) -> dict[str, Any]:
            """``forward`` of the label-wise pooler's output, from what it pools
            (``weights, mean = pooler.weights(states, mask)``, ``trainer/students/minilm.py``); for
            inference (dropout off).

            A value's own pooled vector is ``weights_v @ states``, so its product with ``value_in`` is
            ``weights_v @ (states @ W_own)``: the projection runs once per token instead of once per
            value (a 6-token prompt: 6 rows instead of 38), and the pooled vectors themselves are
            only needed for the tools and filter heads' last query. Same values as ``forward``
            (tests/test_trainer_students.py); ~0.1 ms less of a 1 ms ONNX run (docs/benchmarks.md).
            """
            if self.training:
                msg = "from_tokens is the inference path (no dropout); train through forward"
                raise RuntimeError(msg)
            own = hidden // 2
            weight = self.value_in.weight
            last = torch.matmul(weights[:, -1:], states)[:, 0]  # the tools and filter heads' pooled vector
            _, out = self.global_out(torch.cat([last, mean], -1))
            h = (torch.matmul(weights[:, :n_values], states @ weight[:, :own].T)
                 + (mean @ weight[:, own:].T + self.value_in.bias).unsqueeze(1))
            return out | self._values(h)

        def _values(self, h: Any) -> dict[str, Any]:
            """The adjust and selective values from ``value_in``'s output (batch × values × width)."""
            v = self.drop(nn.functional.gelu(h + self.value_bias))
            # each value's own (width × per_out) product as a broadcast Mul and a sum over the last,
            # contiguous axis: in ONNX Runtime 1-3% of the whole int8 run below the batched MatMul
            # (values × batch × width @ values × width × per_out) it replaces, whose transposes and
            # 38 tiny products cost more than the maths; an Einsum cost several times either
            # (docs/benchmarks.md, issue 14 round 13)
            o = (v.unsqueeze(-2) * self.value_w.transpose(1, 2)).sum(-1) + self.value_b
            if kind == "regress":
                return {"adj": o[:, :N_ADJ, 0].tanh(), "adj_gate": o[:, :N_ADJ, 1],
                        "sel": o[:, N_ADJ:, 0].tanh(), "sel_gate": o[:, N_ADJ:, 1]}
            # every value's direction in one pass on the per-value layout, then split into the two
            # tools; no flatten into the one-vector layout and reshape back (29 fewer nodes in the
            # ONNX graph, same outputs)
            parts = _direction(o[..., 0], o[..., 1:])
            return {f"{name}{suffix}": part[:, cut]
                    for name, cut in (("adj", slice(None, N_ADJ)), ("sel", slice(N_ADJ, None)))
                    for suffix, part in zip(("", "_gate", "_dir", "_mag"), parts)}

    return PerValueHeads() if per_value else EditHeads()


SIGN_MARGIN = 0.1  # 10 parameter points: below that a change barely shows on a photo


def head_loss(out: dict[str, Any], tgt: dict[str, Any], sign_weight: float = 0.0) -> Any:
    """Sum of the per-head losses; gates and values count only where they are defined.

    Gates are trained only on rows whose reference uses the tool (elsewhere the tool head already
    says "unused"); values only where the reference changed that parameter, so the regression
    never learns to shrink towards 0 because of the many unchanged parameters.

    ``sign_weight`` > 0 adds a hinge on the direction of every changed value: 0 when the prediction
    has the reference's sign by at least ``SIGN_MARGIN`` (or the reference's own size, if smaller),
    growing linearly otherwise. The regression alone pays as much for 25 → 5 as for 25 → -15, yet
    only the second moves the photo the wrong way (issue 12: "decrease brightness" → +29).
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    loss = F.binary_cross_entropy_with_logits(out["tools"], tgt["tools"])
    for name, col in (("adj", 0), ("sel", 1)):
        rows = tgt["tools"][:, col:col + 1].expand_as(tgt[f"{name}_gate"])
        if f"{name}_dir" in out:
            loss = loss + _direction_loss(out, tgt, name, rows)
            continue
        if rows.sum() > 0:
            gate = F.binary_cross_entropy_with_logits(out[f"{name}_gate"], tgt[f"{name}_gate"], reduction="none")
            loss = loss + (gate * rows).sum() / rows.sum()
        mask = tgt[f"{name}_gate"]
        if mask.sum() > 0:
            err = F.smooth_l1_loss(out[name], tgt[name], reduction="none", beta=0.1)
            loss = loss + 4.0 * (err * mask).sum() / mask.sum()  # ×4: values are the quality score
            if sign_weight:
                margin = tgt[name].abs().clamp(max=SIGN_MARGIN)
                hinge = F.relu(margin - out[name] * tgt[name].sign())
                loss = loss + sign_weight * (hinge * mask).sum() / mask.sum()
    has_filter = tgt["filter"] != IGNORE
    if has_filter.any():
        loss = loss + F.cross_entropy(out["filter"][has_filter], tgt["filter"][has_filter])
        loss = loss + F.mse_loss(out["intensity"][has_filter], tgt["intensity"][has_filter])
    return loss + torch.zeros(())  # a tensor even when every optional term is absent


def _direction_loss(out: dict[str, Any], tgt: dict[str, Any], name: str, rows: Any) -> Any:
    """The "direction" heads' terms: the 3-way class on rows that use the tool, the sign (up vs
    down alone) and the magnitude on the changed values.

    The sign term counts each changed value once more: in the 3-way term it is one of many mostly
    "none" entries, yet it alone decides whether the photo moves the asked way.
    """
    import torch
    import torch.nn.functional as F  # noqa: N812

    logits, value, mask = out[f"{name}_dir"], tgt[name], tgt[f"{name}_gate"]
    cls = torch.where(value > 0, UP, torch.where(value < 0, DOWN, NONE))
    loss = torch.zeros((), device=value.device)
    if rows.sum() > 0:
        ce = F.cross_entropy(logits.reshape(-1, 3), cls.reshape(-1), reduction="none").reshape(cls.shape)
        loss = loss + (ce * rows).sum() / rows.sum()
    if mask.sum() > 0:
        sign = F.binary_cross_entropy_with_logits(logits[..., UP] - logits[..., DOWN], (value > 0).float(),
                                                  reduction="none")
        loss = loss + (sign * mask).sum() / mask.sum()
        err = F.smooth_l1_loss(out[f"{name}_mag"], value.abs(), reduction="none", beta=0.1)
        loss = loss + 4.0 * (err * mask).sum() / mask.sum()  # ×4 as for the regression heads
    return loss


def _params(values: list[float], gates: list[float], names: list[str]) -> dict[str, int]:
    picked = {n: v for n, v, g in zip(names, values, gates, strict=True) if g > 0}
    if not picked:  # the tool head says "used": keep its most confident parameter rather than drop the tool
        best = max(range(len(gates)), key=gates.__getitem__)
        picked = {names[best]: values[best]}
    out = {}
    for name, v in picked.items():
        number = max(-100, min(100, round(v * _SCALE)))
        if number == 0:  # a "changed" parameter that rounds to 0: keep the smallest visible step
            number = 1 if v >= 0 else -1
        out[name] = number
    return out


_SEL_NAMES = [f"{r}.{c}" for r in COLOUR_RANGES for c in HSL_CHANNELS]


def decode(out: dict[str, Any]) -> list[Edit]:
    """Head outputs (a batch of torch tensors or numpy arrays) → valid Edits. Thresholds: sigmoid > 0.5 ⇔ logit > 0."""
    tools = out["tools"].tolist()
    adj, adj_gate = out["adj"].tolist(), out["adj_gate"].tolist()
    sel, sel_gate = out["sel"].tolist(), out["sel_gate"].tolist()
    names = out["filter"].argmax(-1).tolist()  # positional: torch tensors and numpy arrays (ONNX student) alike
    inten = out["intensity"].tolist()
    edits = []
    for i, used in enumerate(tools):
        edit: dict[str, Any] = {}
        if used[0] > 0:
            edit["adjust"] = _params(adj[i], adj_gate[i], list(ADJUST_PARAMS))
        if used[1] > 0:
            ranges: dict[str, dict[str, int]] = {}
            for key, value in _params(sel[i], sel_gate[i], _SEL_NAMES).items():
                colour, channel = key.split(".")
                ranges.setdefault(colour, {})[channel] = value
            edit["selective_adjust"] = ranges
        if used[2] > 0:
            edit["filter"] = {"name": FILTER_NAMES[names[i]], "intensity": max(1, min(100, round(inten[i] * _SCALE)))}
        edits.append(validate_edit(edit))
    return edits
