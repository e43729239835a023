"""The kinds of unit a round trains: its ticket and the controls that give the ticket meaning.

One registry holds everything about a kind: its name (the `kind` column of every table), its
seed code, its label and description in figures and generated text, its plot style and, for a
control, the function that gives its starting weights and masks. Tables and legends list kinds
in registration order, the ticket first. An unknown kind is refused, never read as another.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lthnb.controls import starts

Arrays = dict[str, np.ndarray]
# (ticket's starting weights, ticket's masks, draw_fresh, rng) -> (starting weights, masks):
# `draw_fresh` builds a newly initialised network, only for the controls that take fresh values.
ControlStart = Callable[
    [Mapping[str, np.ndarray], Mapping[str, np.ndarray], Callable[[], Arrays], np.random.Generator],
    tuple[Arrays, Arrays],
]


@dataclass(frozen=True)
class Kind:
    """A kind of unit; a control has a `start`, the ticket has none."""

    name: str
    seed_code: int  # part of the results (a unit's seed derives from it): never renumber
    label: str  # legends and table headers
    description: str
    style: Mapping[str, Any] = field(default_factory=dict)  # matplotlib dashes and marker
    start: ControlStart | None = None


TICKET = "ticket"
REINIT, RANDOM_MASK, RESHUFFLE, SAME_SIGN = "reinit", "random_mask", "reshuffle", "same_sign"

# Each kind's dashes and marker: where several runs share the axes, colour tells the runs
# apart, so the kind must be readable without it. The dense net is dotted.
REGISTRY: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            TICKET,
            1,
            "ticket",
            "the ticket: its mask, survivors rewound to theta0 (or theta_k)",
            {"linestyle": "-", "marker": "o"},
        ),
        Kind(
            REINIT,
            2,
            "random reinit",
            "the ticket's mask from a fresh random initialisation",
            {"linestyle": "--", "marker": "s"},
            starts.reinit_start,
        ),
        Kind(
            RANDOM_MASK,
            3,
            "random mask",
            "a random mask with the ticket's per-layer counts, from theta0 (or theta_k)",
            {"linestyle": "-.", "marker": "^"},
            starts.random_mask_start,
        ),
        Kind(
            RESHUFFLE,
            4,
            "reshuffled init",
            "the ticket's mask, its surviving initial values permuted within each layer",
            {"linestyle": (0, (3, 1, 1, 1, 1, 1)), "marker": "D"},
            starts.reshuffle_start,
        ),
        Kind(
            SAME_SIGN,
            5,
            "same-sign reinit",
            "the ticket's mask, fresh magnitudes with each survivor's original sign",
            {"linestyle": (0, (8, 2)), "marker": "v"},
            starts.same_sign_start,
        ),
    )
}
KINDS: tuple[str, ...] = tuple(REGISTRY)
CONTROLS: tuple[str, ...] = tuple(name for name, kind in REGISTRY.items() if kind.start)


def kind_of(name: str) -> Kind:
    """The registered kind called `name`; anything else is an error, never another kind."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown kind {name!r}; known kinds: {', '.join(KINDS)}") from None


def control_of(name: str) -> Kind:
    """The registered control called `name` (the ticket is no control of itself)."""
    found = kind_of(name)
    if found.start is None:
        raise ValueError(f"{name!r} is not a control; controls: {', '.join(CONTROLS)}")
    return found


def kind_label(name: str) -> str:
    return kind_of(name).label


def kind_sort_key(column):
    """A `sort_values` key: the `kind` column in registration order (ticket first)."""
    order = {name: position for position, name in enumerate(KINDS)}
    return column.map(order) if column.name == "kind" else column
