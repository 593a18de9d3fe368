"""The alert policy: turns the rules' per-window signals into drift episodes (pure, no Kafka).

Each rule (``valuedrift.streams.core.alerting``) emits an ``info`` alert when it fires: a *signal*. The policy
decides when signals amount to drift worth a page, and emits one ``drift`` alert per episode:

- **combine**: ``any`` (one signal rule fired) or ``k_of_n`` (at least ``k`` distinct signal rules
  fired within the key's last ``n`` windows);
- **hysteresis**: an open episode absorbs further signals; it closes (with an ``info``
  ``drift_resolved`` alert) only after ``clear_windows`` consecutive windows without any signal;
- **cooldown**: after an episode opens, no new one opens for ``cooldown_windows`` windows;
- **severity**: ``critical`` when at least two distinct rules agree within the last ``n`` windows,
  else ``warning``;
- **many keys**: ``family_size`` m (the number of monitored keys) tightens the z thresholds of the
  ``delta_z`` and ``trend`` rules to a Bonferroni level p/m (see ``AlertPolicy.adjusted_z``), so the
  expected false alarms summed over m keys stay near those of one key. The Page-Hinkley threshold is
  not adjusted (0.2 false alarms per 1,000 windows per key, measured).

>>> cfg = PolicyConfig(combine="k_of_n", k=2, n=5)
>>> st = PolicyState()
>>> [a for a in step(st, cfg, 0, {"trend"})]
[]
>>> [(a[0], a[1]) for a in step(st, cfg, 1, {"page_hinkley"})]
[('drift', 'critical')]
>>> [(a[0], a[1]) for a in step(st, cfg, 2, {"trend"})]  # the open episode absorbs it
[]
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

COMBINE_MODES = ("any", "k_of_n")
DEFAULT_SIGNALS = ("delta_z", "trend", "page_hinkley")


@dataclass(frozen=True)
class PolicyConfig:
    """How signals combine into drift episodes; the defaults are those measured by ``bench detectors``."""

    signals: tuple[str, ...] = DEFAULT_SIGNALS
    combine: str = "any"
    k: int = 2
    n: int = 10
    clear_windows: int = 10
    cooldown_windows: int = 0

    def __post_init__(self) -> None:
        if self.combine not in COMBINE_MODES:
            raise ValueError(f"combine must be one of {', '.join(COMBINE_MODES)}, got {self.combine!r}")
        if self.n < 1 or (self.combine == "k_of_n" and not 1 <= self.k <= len(self.signals)):
            raise ValueError(f"k_of_n needs 1 <= k <= number of signal rules ({len(self.signals)}) and n >= 1, "
                             f"got k={self.k}, n={self.n}")
        if self.clear_windows < 1 or self.cooldown_windows < 0:
            raise ValueError(f"clear_windows must be >= 1 and cooldown_windows >= 0, got {self.clear_windows} "
                             f"and {self.cooldown_windows}")


class PolicyState:
    """Per-key memory of the policy; plain JSON through ``to_dict``/``from_dict``."""

    __slots__ = ("recent", "open_since", "quiet", "last_open")

    def __init__(self) -> None:
        self.recent: list[tuple[int, list[str]]] = []  # (window index, signal rules fired), last n windows
        self.open_since: int | None = None  # window index where the open episode began
        self.quiet = 0  # consecutive windows without a signal
        self.last_open: int | None = None

    def to_dict(self) -> dict:
        return {"recent": [[i, r] for i, r in self.recent], "open_since": self.open_since,
                "quiet": self.quiet, "last_open": self.last_open}

    @classmethod
    def from_dict(cls, d: dict | None) -> PolicyState:
        st = cls()
        if d:
            st.open_since, st.quiet, st.last_open = d["open_since"], d["quiet"], d["last_open"]
            st.recent = [(int(i), list(r)) for i, r in d["recent"]]
        return st


def step(state: PolicyState, cfg: PolicyConfig, index: int, fired: set[str]
         ) -> Iterator[tuple[str, str, dict]]:
    """Advance one window (``index``: the key's window count so far); yield ``(rule, severity, evidence)``
    for the policy alerts it raises."""
    signals = sorted(r for r in fired if r in cfg.signals)
    if signals:
        state.recent.append((index, signals))
    state.recent = [(i, r) for i, r in state.recent if i > index - cfg.n]
    distinct = sorted({r for _, rules in state.recent for r in rules})
    state.quiet = 0 if signals else state.quiet + 1
    if state.open_since is not None:
        if state.quiet >= cfg.clear_windows:
            began, state.open_since = state.open_since, None
            yield "drift_resolved", "info", {"episode_windows": index - began + 1, "quiet_windows": state.quiet}
        return
    if not signals:
        return
    met = len(distinct) >= cfg.k if cfg.combine == "k_of_n" else True
    cooling = state.last_open is not None and index - state.last_open < cfg.cooldown_windows
    if met and not cooling:
        state.open_since = state.last_open = index
        severity = "critical" if len(distinct) >= 2 else "warning"
        yield "drift", severity, {"rules": distinct, "signals_now": signals, "lookback_windows": cfg.n,
                                  "combine": cfg.combine if cfg.combine == "any" else f"{cfg.k}_of_{cfg.n}"}
