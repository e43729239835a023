"""The kinds of unit a round trains: its ticket and the controls that give the ticket meaning.

One place for the names (the `kind` column of every table), their order in tables and legends,
their seed codes and the words that describe them in figures and generated text.
"""

from __future__ import annotations

TICKET = "ticket"
REINIT, RANDOM_MASK, RESHUFFLE, SAME_SIGN = "reinit", "random_mask", "reshuffle", "same_sign"
CONTROLS: tuple[str, ...] = (REINIT, RANDOM_MASK, RESHUFFLE, SAME_SIGN)
KINDS: tuple[str, ...] = (TICKET, *CONTROLS)

# Seed codes are part of the results (a unit's seed derives from its code): never renumber.
KIND_CODES = {TICKET: 1, REINIT: 2, RANDOM_MASK: 3, RESHUFFLE: 4, SAME_SIGN: 5}
# Order within a round, in tables and legends: the ticket first, then the controls.
KIND_ORDER = {kind: position for position, kind in enumerate(KINDS)}

DESCRIPTIONS = {
    TICKET: "the ticket: its mask, survivors rewound to theta0 (or theta_k)",
    REINIT: "the ticket's mask from a fresh random initialisation",
    RANDOM_MASK: "a random mask with the ticket's per-layer counts, from theta0 (or theta_k)",
    RESHUFFLE: "the ticket's mask, its surviving initial values permuted within each layer",
    SAME_SIGN: "the ticket's mask, fresh magnitudes with each survivor's original sign",
}
# Short names for legends and table headers.
LABELS = {
    TICKET: "ticket",
    REINIT: "random reinit",
    RANDOM_MASK: "random mask",
    RESHUFFLE: "reshuffled init",
    SAME_SIGN: "same-sign reinit",
}


def kind_sort_key(column):
    """A `sort_values` key: the `kind` column in KIND_ORDER (ticket first), others as they are."""
    return column.map(KIND_ORDER) if column.name == "kind" else column
