"""Requests one pane sends to another, kept apart from the screens so importing one is cheap."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EditorRequest:
    """A request to open a config: a stored experiment by ``exp_id``, or ``None`` for a new one."""

    exp_id: str | None = None

    @classmethod
    def new(cls) -> EditorRequest:
        return cls(None)

    @classmethod
    def edit(cls, exp_id: str) -> EditorRequest:
        return cls(exp_id)
