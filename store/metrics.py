"""Prometheus text exposition format, for regend's textfile-collector file and regen's fleet view (pure).

node_exporter's textfile collector reads `*.prom` files in this format (version 0.0.4): per
family a `# HELP` and a `# TYPE` line, then `name{label="value"} number` samples. Label values
are escaped (backslash, double quote, newline), so hostile host names or paths cannot forge
samples. Shared by regen.daemon and regen.manager, which may not import each other.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    help: str
    type: str = "gauge"  # gauge | counter
    samples: Sequence[tuple[Mapping[str, str], float]] = field(default_factory=tuple)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(int(v)) if float(v).is_integer() and abs(v) < 1 << 53 else repr(float(v))


def exposition(families: Iterable[Family]) -> str:
    """The families as one text document; families without samples are left out."""
    lines: list[str] = []
    for f in families:
        if not f.samples:
            continue
        lines.append(f"# HELP {f.name} {f.help.replace(chr(92), chr(92) * 2).replace(chr(10), ' ')}")
        lines.append(f"# TYPE {f.name} {f.type}")
        for labels, value in f.samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{f.name}{{{text}}} {_number(value)}" if text else f"{f.name} {_number(value)}")
    return "\n".join(lines) + "\n" if lines else ""
