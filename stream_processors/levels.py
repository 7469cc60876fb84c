"""BNPB's public warning levels, and the one place BMKG's products are mapped onto them.

Citizens are only ever shown ``waspada`` < ``siaga`` < ``awas``: CAP severity and earthquake
intensity are BMKG's vocabulary, not the public's.
"""

from __future__ import annotations

from schemas.events import LEVEL_RANK, Level, Severity

_BY_RANK = {rank: level for level, rank in LEVEL_RANK.items()}

CAP_LEVEL: dict[Severity, Level] = {
    Severity.UNKNOWN: Level.WASPADA,
    Severity.MINOR: Level.WASPADA,
    Severity.MODERATE: Level.WASPADA,
    Severity.SEVERE: Level.SIAGA,
    Severity.EXTREME: Level.AWAS,
}

#: Felt intensity (MMI) from which a quake is a public matter; below it, no incident.
QUAKE_FELT_MMI = 4
#: From MMI VI buildings are damaged: awas.
QUAKE_AWAS_MMI = 6


def level_of_cap(severity: Severity) -> Level:
    return CAP_LEVEL[severity]


def level_of_quake(mmi: float | None, tsunami: bool) -> Level | None:
    """MMI IV-V -> waspada; MMI VI or more, or tsunami potential -> awas; weaker: None."""
    if tsunami:
        return Level.AWAS
    if mmi is None:
        return None
    level = int(mmi + 0.5)  # nearest whole MMI level, as BMKG reports it
    if level >= QUAKE_AWAS_MMI:
        return Level.AWAS
    if level >= QUAKE_FELT_MMI:
        return Level.WASPADA
    return None


def shifted(level: Level, steps: int) -> Level:
    """``level`` moved ``steps`` up (or down), kept within waspada..awas."""
    rank = min(max(LEVEL_RANK[level] + steps, 1), len(_BY_RANK))
    return _BY_RANK[rank]


def highest(levels: list[Level]) -> Level | None:
    return max(levels, key=LEVEL_RANK.__getitem__) if levels else None
