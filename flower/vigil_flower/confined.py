"""A node's failures stay on the node. When a ClientApp raises, Flower sends the exception's
text to the server, and vigil's and this app's error messages name files, columns and the
cells that failed — the node's data. So a handler's failure is written in full to the node's
own ``errors.log`` (in its ``state-dir``, and to its SuperNode's log), and the server is told
only which kind of failure it was and where the node's operator finds why."""

from __future__ import annotations

import functools
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Mapping

from flwr.app import Context, Message


class NodeFailed(RuntimeError):
    """What the server learns of a node's failure: its kind, not its details."""


def confined(handler: Callable[[Message, Context], Message]) -> Callable[[Message, Context], Message]:
    @functools.wraps(handler)
    def run(msg: Message, context: Context) -> Message:
        try:
            return handler(msg, context)
        except Exception as failure:
            where = note_locally(context.node_config, traceback.format_exc())
            raise NodeFailed(
                f"{type(failure).__name__} in the node's {msg.metadata.message_type}; "
                f"its operator finds why in {where}"
            ) from None

    return run


def note_locally(node_config: Mapping[str, Any], detail: str) -> str:
    """Writes ``detail`` where the node's operator reads it; says where, without the path."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} {detail}", file=sys.stderr)
    state = node_config.get("state-dir")
    if not state:
        return "the SuperNode's log"
    try:
        folder = Path(str(state))
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / "errors.log", "a") as log:
            log.write(f"{stamp} {detail}\n")
    except OSError:
        return "the SuperNode's log"
    return "errors.log in its state-dir"
