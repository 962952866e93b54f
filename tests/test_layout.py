"""The layering rules of docs/architecture.md, checked on the imports a fresh interpreter makes."""

import subprocess
import sys

# Library packages a notebook uses without a trainer or a config system.
WITHOUT_LIGHTNING_OR_HYDRA = [
    "miro.models.checkpoints",
    "miro.retrieval.build",
    "miro.retrieval.evaluation",
    "miro.retrieval.probe",
    "miro.retrieval.retriever",
    "miro.deepdream",
    "miro.style.run",
    "miro.style.export",
    "miro.text.words",
    "miro.text.lda",
    "miro.text.word2vec",
    "miro.report.sheets",
    "miro.images",
]


def imported_modules(*modules: str) -> set[str]:
    """Every module that importing ``modules`` loads in a fresh interpreter."""
    code = f"import sys, {', '.join(modules)}; print('\\n'.join(sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_library_packages_import_neither_lightning_nor_hydra():
    loaded = imported_modules(*WITHOUT_LIGHTNING_OR_HYDRA)
    assert "torch" in loaded  # the check sees what the packages import
    assert not {"pytorch_lightning", "lightning", "hydra"} & loaded


def test_the_data_pipeline_reads_manifests_without_torch():
    assert "torch" not in imported_modules("data_pipeline.manifest")
