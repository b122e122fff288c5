"""`availableActions`: what is valid in a Wukong's state AND permitted to the caller, so a UI shows exactly the
buttons that will work."""

from __future__ import annotations

import enum

from server.auth import Caller
from server.wukongs.status import DerivedStatus, PowerState


class Action(enum.Enum):
    START = "START"
    STOP = "STOP"
    RESTART = "RESTART"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    UPDATE = "UPDATE"
    DELETE = "DELETE"
    CONSOLE = "CONSOLE"


PERMISSION = {
    Action.START: "vm:start",
    Action.STOP: "vm:stop",
    Action.RESTART: "vm:restart",
    Action.PAUSE: "vm:pause",
    Action.RESUME: "vm:pause",
    Action.UPDATE: "vm:update",
    Action.DELETE: "vm:delete",
    Action.CONSOLE: "vm:console:access",
}
_GUEST_UP = frozenset({PowerState.RUNNING, PowerState.PAUSED, PowerState.MIGRATING})


def valid(status: DerivedStatus) -> tuple[Action, ...]:
    """Start/stop follow the durable intent (a Wukong meant to run can be stopped, whatever phase it is in);
    restart, pause, resume and console need a guest."""
    state = status.power_state
    if state is PowerState.DELETING:
        return ()
    actions = [Action.STOP if status.wants_running else Action.START]
    if state in (PowerState.RUNNING, PowerState.PAUSED):
        actions.append(Action.RESTART)
    if state is PowerState.RUNNING:
        actions.append(Action.PAUSE)
    if state is PowerState.PAUSED:
        actions.append(Action.RESUME)
    actions += [Action.UPDATE, Action.DELETE]
    if state in _GUEST_UP:
        actions.append(Action.CONSOLE)
    return tuple(actions)


# What a task in progress on the VM leaves available (a forced stop is still accepted, see StopWukong).
_WHILE_BUSY = frozenset({Action.UPDATE, Action.DELETE, Action.CONSOLE})


def available(status: DerivedStatus, caller: Caller, *, busy: bool = False) -> tuple[Action, ...]:
    """`busy`: a task (start, stop, ...) is in progress on the VM, so no second power operation is offered."""
    return tuple(
        action for action in valid(status) if caller.may(PERMISSION[action]) and (not busy or action in _WHILE_BUSY)
    )
