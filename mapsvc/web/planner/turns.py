"""Turn lists and the planner page's texts in the user's language."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from mapsvc.core.directions import Step

#: Unnamed ways are described by their kind (OSM ``highway``); other kinds are "an unnamed street".
_UNNAMED = {
    "footway": _l("a footpath"),
    "path": _l("a path"),
    "pedestrian": _l("a pedestrian street"),
    "steps": _l("steps"),
    "service": _l("a service road"),
    "cycleway": _l("a cycle path"),
    "track": _l("a track"),
    "living_street": _l("a living street"),
}


def street_of(step: Step) -> str:
    """Return the step's street: its OSM name, or what kind of way it is."""
    return step.name or str(_UNNAMED.get(step.highway, _l("an unnamed street")))


def describe(step: Step) -> str:
    """Return one line of the turn list, e.g. "Turn left onto Istedgade"."""
    street = street_of(step)
    # flask_babel has no type hints: the annotation says what its gettext returns.
    texts: dict[str, str] = {
        "depart": _("Start on %(street)s", street=street),
        "straight": _("Continue on %(street)s", street=street),
        "slight_left": _("Bear left onto %(street)s", street=street),
        "slight_right": _("Bear right onto %(street)s", street=street),
        "left": _("Turn left onto %(street)s", street=street),
        "right": _("Turn right onto %(street)s", street=street),
        "sharp_left": _("Turn sharp left onto %(street)s", street=street),
        "sharp_right": _("Turn sharp right onto %(street)s", street=street),
        "u_turn": _("Turn back onto %(street)s", street=street),
    }
    return texts.get(step.turn, texts["straight"])


#: Texts the planner page's script shows; placeholders in braces are filled in by the script.
PLANNER_STRINGS = {
    "pick_start": _l("Tap the map where the session starts."),
    "pick_more": _l("Tap the map to add stops. The last point is where the session ends."),
    "planning": _l("Planning…"),
    "no_network": _l("No street network is imported yet: ask the administrator to run mapsvc roads import."),
    "failed": _l("Could not plan: {error}"),
    "too_many": _l("At most {n} stops."),
    "start": _l("Start"),
    "stop": _l("Stop {n}"),
    "end": _l("End"),
    "shortest": _l("Shortest"),
    "safest": _l("Safest"),
    "summary": _l("{km} km, {min} min, {danger} m in danger, highest danger {peak}"),
    "replanned": _l("The danger changed: the routes were planned again."),
    "order": _l("Visit the stops in this order: {order}"),
    "remove": _l("Remove"),
}
