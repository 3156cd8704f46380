"""The ClientApp every SuperNode runs: it trains and detects on the node's own data through
vigil's Python package, and replies with named tensors and counts only.

Per round (the server's strategy, ``strategies``, sends the messages):

- ``mtad-fl`` (LGF-PKT): *train* — the node trains its Local model further and replies with the
  hidden layers (``vigil.federated.HIDDEN_LAYERS``); *evaluate* — it receives the hidden layers
  of the peer nearest to it, loads them into its Transfer model, trains that and detects with
  it, replying with the detection's precision, recall, F1 and MCC.
- ``fedavg`` / ``fedtl``: *train* — the node loads the global model into the shared network,
  trains it and replies with every tensor; *evaluate* — it detects with the global model
  (``fedtl``: after fine-tuning it on its own data).
"""

from __future__ import annotations

import json
from typing import Callable

from flwr.app import Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from vigil.federated import HIDDEN_LAYERS

from .confined import confined, note_locally
from .node import Node
from .tensors import array_record, tensors_of

# The detection measures a node reports to the server: aggregates of its alarms, no step's.
REPORTED = ("precision", "recall", "f1", "mcc")


def record_sent(msg: Message, context: Context, call_next: Callable[[Message, Context], Message]) -> Message:
    """Flower mod: appends what the node sends back — every array's name, shape and type, every
    metric and config entry — to the JSON lines file ``sent-log`` of ``--node-config``, when set:
    what an operator audits to see what left the site."""
    path = context.node_config.get("sent-log")
    try:
        reply = call_next(msg, context)
    except Exception as failure:
        # Flower sends the failure's text to the server: note it as sent, then let it go.
        if path:
            _append(str(path), {"type": msg.metadata.message_type, "error": str(failure)}, context.node_config)
        raise
    if path and not reply.has_error():
        content = reply.content
        entry = {
            "type": msg.metadata.message_type,
            "arrays": {
                f"{key}/{name}": {"shape": list(array.shape), "dtype": array.dtype}
                for key, record in content.array_records.items()
                for name, array in record.items()
            },
            "metrics": {f"{key}/{k}": v for key, record in content.metric_records.items() for k, v in record.items()},
            "configs": {f"{key}/{k}": v for key, record in content.config_records.items() for k, v in record.items()},
        }
        _append(str(path), entry, context.node_config)
    return reply


def _append(path: str, entry: dict, node_config) -> None:
    # The audit must not turn a good reply into a failure, nor send its own error's text (which
    # names the file) to the server: a write that fails is noted on the node instead.
    try:
        with open(path, "a") as log:
            log.write(json.dumps(entry) + "\n")
    except OSError as failure:
        note_locally(node_config, f"sent-log {path} could not be written: {failure}")


app = ClientApp(mods=[record_sent])


@app.train()
@confined
def train(msg: Message, context: Context) -> Message:
    node, server_round = _begin(msg, context, "train")
    if node.settings.method == "mtad-fl":
        local = node.state.latest("local", server_round) or node.shared_network("mtad-local")
        local = node.trained(local, server_round, "local")
        node.state.save("local", server_round, local)
        sent = local.export_tensors(HIDDEN_LAYERS)
    else:
        model = _with_global(node, msg)
        sent = node.trained(model, server_round, "local").export_tensors()
    content = RecordDict(
        {"arrays": array_record(sent), "metrics": MetricRecord({"num-examples": node.examples})}
    )
    return Message(content=content, reply_to=msg)


@app.evaluate()
@confined
def evaluate(msg: Message, context: Context) -> Message:
    node, server_round = _begin(msg, context, "evaluate")
    if node.settings.method == "mtad-fl":
        transfer = node.state.latest("transfer", server_round) or node.shared_network("mtad-transfer")
        transfer = transfer.with_tensors(tensors_of(msg.content["arrays"]))
        detector = node.trained(transfer, server_round, "transfer")
        node.state.save("transfer", server_round, detector)
    else:
        detector = _with_global(node, msg)
        if node.settings.method == "fedtl":
            detector = node.trained(detector, server_round, "fine-tune", node.settings.fine_tune_epochs())
    results = node.detection_results(detector)
    node.state.record(server_round, {"node": node.name, "round": server_round, **results})
    reported = {k: float(results[k]) for k in REPORTED}
    content = RecordDict({"metrics": MetricRecord({**reported, "num-examples": results["test_steps"]})})
    return Message(content=content, reply_to=msg)


def _begin(msg: Message, context: Context, phase: str) -> tuple[Node, int]:
    """The node, and the round the message is of, with the phase noted as begun."""
    node = Node.of(context.node_config, context.run_config, context.run_id)
    server_round = int(msg.content["config"]["server-round"])
    node.state.begin(phase, server_round)
    return node, server_round


def _with_global(node: Node, msg: Message):
    """The shared network with the server's global model loaded (round 1's is empty: the shared
    network itself)."""
    model = node.shared_network("mtad-local")
    tensors = tensors_of(msg.content["arrays"]) if "arrays" in msg.content.array_records else {}
    return model.with_tensors(tensors) if tensors else model
