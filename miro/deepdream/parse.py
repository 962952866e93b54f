"""Objectives written as a line of text, for command lines and configs.

The grammar is a Python expression of the objectives in ``miro.deepdream.objectives``, with
numbers, ``+``, ``-``, ``*`` and ``/``; layer names need no quotes (``inception4c.branch2``
reads as one name), phrases with spaces do::

    layer(inception4c)
    0.7 * layer(inception4c) + 0.3 * text('red star')
    channel(inception4c, 12) - 0.5 * neuron(relu4_3, 7)
    guide(inception4c)                 # needs guide_image

Layers are checked against the model, ``text`` uses the model's text model and ``guide`` the
guide image's activations at that layer. Nothing is evaluated: the text is parsed with ``ast``.

Example::

    objective = parse_objective("0.7*layer(inception4c) + 0.3*text(star)", model)
"""

import ast

import torch

from miro.deepdream import objectives
from miro.deepdream.models import DreamModel
from miro.deepdream.objectives import Objective
from miro.deepdream.text_space import model_text_vector

FUNCTIONS = ("layer", "channel", "neuron", "guide", "text")


def parse_objective(
    spec: str | None, model: DreamModel, guide_image: torch.Tensor | None = None
) -> Objective:
    """The objective that ``spec`` writes (see the module docstring) for ``model``; an empty
    spec is ``layer(model.default_layer)``.

    Args:
        guide_image: ``(1, 3, H, W)`` in [0, 1], for ``guide(...)`` terms.

    Raises ``ValueError`` saying what is wrong and what is allowed.
    """
    if spec is None or not spec.strip():
        return objectives.layer(model.default_layer)
    try:
        tree = ast.parse(spec.strip(), mode="eval")
    except SyntaxError as err:
        raise ValueError(f"objective {spec!r} does not parse: {err.msg}") from err
    objective = _Builder(spec, model, guide_image).build(tree.body)
    if not isinstance(objective, Objective):
        raise ValueError(f"objective {spec!r} is a number, not an objective such as layer(NAME)")
    model.check_layers(objective.layers)
    return objective


class _Builder:
    def __init__(self, spec: str, model: DreamModel, guide_image: torch.Tensor | None):
        self.spec, self.model, self.guide_image = spec, model, guide_image

    def fail(self, what: str) -> ValueError:
        return ValueError(
            f"objective {self.spec!r}: {what}. Write terms such as layer(NAME), "
            "channel(NAME, K), neuron(NAME, K), guide(NAME), text('words'), combined with "
            "numbers, +, -, * and /"
        )

    def build(self, node: ast.AST) -> Objective | float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            value = self.build(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult):
            left, right = self.build(node.left), self.build(node.right)
            if isinstance(node.op, ast.Add | ast.Sub) and (
                isinstance(left, Objective) != isinstance(right, Objective)
            ):
                raise self.fail("adding a number to an objective changes nothing; scale it")
            if isinstance(node.op, ast.Mult):
                if isinstance(left, Objective) and isinstance(right, Objective):
                    raise self.fail("two objectives cannot be multiplied")
                return left * right
            return left + right if isinstance(node.op, ast.Add) else left - right
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            left, right = self.build(node.left), self.build(node.right)
            if isinstance(right, Objective):
                raise self.fail("an objective can only be divided by a number")
            return left / right
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.fail(f"cannot read {ast.unparse(node)!r}")

    def call(self, node: ast.Call) -> Objective:
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name not in FUNCTIONS or node.keywords:
            raise self.fail(f"unknown term {ast.unparse(node)!r}")
        args = [self.argument(arg) for arg in node.args]
        if name == "text":
            if len(args) != 1 or not isinstance(args[0], str):
                raise self.fail("text takes one phrase: text(star) or text('red star')")
            return objectives.text(model_text_vector(self.model, args[0]))
        if not args or not isinstance(args[0], str):
            raise self.fail(f"{name} takes a layer name first")
        self.model.check_layers([args[0]])
        if name == "layer" and len(args) == 1:
            return objectives.layer(args[0])
        if name in ("channel", "neuron") and len(args) == 2 and isinstance(args[1], int):
            return getattr(objectives, name)(args[0], args[1])
        if name == "guide" and len(args) == 1:
            if self.guide_image is None:
                raise self.fail("guide(NAME) needs a guide image")
            features = objectives.guide_features(self.model, self.guide_image, args[0])
            return objectives.guide(args[0], features)
        raise self.fail(f"wrong arguments in {ast.unparse(node)!r}")

    def argument(self, node: ast.AST) -> str | int | float:
        """A layer name (bare, dotted or quoted), a phrase or a number."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float):
            return node.value
        if isinstance(node, ast.Name | ast.Attribute):
            return ast.unparse(node)
        raise self.fail(f"cannot read the argument {ast.unparse(node)!r}")
