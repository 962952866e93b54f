"""Apply a trained N-style stylizer: ``python -m miro.stylize``.

- ``checkpoint``: read the stylizer out of a training checkpoint.
- ``styles``: turn ``style=`` / ``mix=`` into style-weight vectors.
- ``apply``: stylize a batch (padding, strength, colour preservation); ``tiling``: big images.
- ``images``: find, read and write image files; ``run``: a file or folder into an output folder.
- ``export``: TorchScript and ONNX files that run without this package.
"""
