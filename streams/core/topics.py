"""Topic names: the one place that knows them. Every name is ``<prefix><role>``.

>>> t = Topics(prefix="prod.")
>>> t.responses, t.alerts
('prod.responses', 'prod.alerts')
>>> Topics(prefix="", responses_override="chat-logs").responses
'chat-logs'
"""

from __future__ import annotations

from dataclasses import dataclass

ROLES = ("prompts", "responses", "classified", "entropy", "alerts", "deadletter", "late")


@dataclass(frozen=True)
class Topics:
    """Names of the pipeline's topics, built from a prefix; the input topic may be overridden."""

    prefix: str = "valuedrift."
    responses_override: str | None = None

    def name(self, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown topic role {role!r}; roles are {', '.join(ROLES)}")
        if role == "responses" and self.responses_override:
            return self.responses_override
        return f"{self.prefix}{role}"

    @property
    def prompts(self) -> str:
        return self.name("prompts")

    @property
    def responses(self) -> str:
        return self.name("responses")

    @property
    def classified(self) -> str:
        return self.name("classified")

    @property
    def entropy(self) -> str:
        return self.name("entropy")

    @property
    def alerts(self) -> str:
        return self.name("alerts")

    @property
    def deadletter(self) -> str:
        return self.name("deadletter")

    @property
    def late(self) -> str:
        return self.name("late")

    def all(self) -> list[str]:
        return [self.name(r) for r in ROLES]
