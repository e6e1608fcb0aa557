"""Who may do what in which chat: one table, read by every rule.

A chat is one of five sorts: an open ``manual`` chat, a ``closed`` manual chat (only admins
invite and change it), a ``direct`` chat of two people, a ``system`` chat the roster made,
and a ``journal`` chat a teacher made from the journal. Non-members may do nothing.
"""

from __future__ import annotations

from typing import Final, Literal

Sort = Literal["manual", "closed", "direct", "system", "journal"]
Action = Literal[
    "post",
    "edit_own",
    "delete_own",
    "delete_any",
    "react",
    "pin",
    "vote",
    "close_any_poll",
    "add_member",
    "invite",
    "remove_member",
    "set_role",
    "rename",
    "set_closed",
    "leave",
    "clear",
    "mute",
    "report",
    "resolve_report",
]

ALL: Final = frozenset({"owner", "admin", "member"})
MANAGERS: Final = frozenset({"owner", "admin"})
NOBODY: Final[frozenset[str]] = frozenset()
SORTS: Final[tuple[Sort, ...]] = ("manual", "closed", "direct", "system", "journal")


def _everywhere(roles: frozenset[str]) -> dict[Sort, frozenset[str]]:
    return dict.fromkeys(SORTS, roles)


def _editable(open_roles: frozenset[str]) -> dict[Sort, frozenset[str]]:
    """Chats whose members people manage themselves: manual ones only."""
    return {
        "manual": open_roles,
        "closed": MANAGERS,
        "direct": NOBODY,
        "system": NOBODY,
        "journal": NOBODY,
    }


RULES: Final[dict[Action, dict[Sort, frozenset[str]]]] = {
    "post": _everywhere(ALL),
    "edit_own": _everywhere(ALL),
    "delete_own": _everywhere(ALL),
    "delete_any": _everywhere(MANAGERS),
    "react": _everywhere(ALL),
    "pin": {**_everywhere(MANAGERS), "direct": ALL},
    "vote": _everywhere(ALL),
    "close_any_poll": _everywhere(MANAGERS),
    # In an open chat anyone brings people in and changes its name; in a closed one admins.
    "add_member": _editable(ALL),
    "invite": _editable(ALL),
    "rename": _editable(ALL),
    "remove_member": _editable(MANAGERS),
    "set_role": _editable(MANAGERS),
    "set_closed": _editable(MANAGERS),
    # Members of roster and journal chats follow the journal: they do not leave by hand.
    "leave": {**_everywhere(ALL), "system": NOBODY, "journal": NOBODY},
    "clear": _everywhere(ALL),
    "mute": _everywhere(ALL),
    "report": _everywhere(ALL),
    "resolve_report": _everywhere(MANAGERS),
}


def allowed(role: str, sort: Sort, action: Action) -> bool:
    return role in RULES[action][sort]
