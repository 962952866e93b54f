"""Sweeps as users run them: a Hydra multirun, an Optuna study, submitit (local, and SLURM's
configuration), and a W&B sweep's command line. Real CLI, real plugins, tiny training."""

import csv
import itertools
import json
import subprocess
from datetime import datetime
from pathlib import Path

import optuna
import pytest
import yaml
from conftest import CONF, compose_config, run_module, wandb_run_records
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import OmegaConf
from submitit.slurm.slurm import SlurmExecutor, _make_sbatch_string
from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

from miro.sweeps import JobResult, markdown

ROOT = Path(__file__).resolve().parents[1]
# Two training batches and one validation batch at 32 px, no test pass: sweeps are under test.
TINY = [
    "data.image_size=32",
    "data.batch_size=16",
    "data.num_workers=0",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "+trainer.num_sanity_val_steps=0",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
    "test=false",
]


@pytest.fixture(scope="module")
def text_cache(tmp_path_factory) -> Path:
    """One text-model cache for this module's runs: each topic count is fitted once."""
    return tmp_path_factory.mktemp("text_cache")


def run_train(*args: str) -> subprocess.CompletedProcess:
    """``python -m miro.train ARGS`` as a user types it; it must succeed."""
    result = run_module("miro.train", *args)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def sweep_dir(root: Path) -> Path:
    (found,) = (root / "outputs" / "instagram_text" / "multirun").glob("*/*")
    return found


def read_summary(directory: Path) -> list[dict[str, str]]:
    with (directory / "summary.csv").open(newline="") as file:
        return list(csv.DictReader(file))


def test_multirun_runs_each_job_as_its_own_wandb_run_and_summarizes(
    synthetic_dataset, text_cache, tmp_path
):
    result = run_train(
        "-m",
        "+experiment=instagram_text",
        "text.num_topics=4,6",
        "loss=sigmoid_ce,infonce",
        f"data.dataset_dir={synthetic_dataset}",
        f"paths.root_dir={tmp_path}",
        f"paths.cache_dir={text_cache}",
        "logger.wandb.offline=true",
        *TINY,
    )
    sweep = sweep_dir(tmp_path)
    jobs = [sweep / str(num) for num in range(4)]
    expected = [("4", "sigmoid_ce"), ("4", "infonce"), ("6", "sigmoid_ce"), ("6", "infonce")]

    runs = []
    for job in jobs:
        (run_file,) = (job / "wandb").glob("offline-run-*/run-*.wandb")
        records = wandb_run_records(run_file)
        (run,) = [r["run"] for r in records if r["type"] == "run"]
        history = [r["history"]["item"] for r in records if r["type"] == "history"]
        assert any("val/map" in item for item in history)
        assert [r["exit"].get("exit_code", 0) for r in records if r["type"] == "exit"] == [0]
        start = datetime.fromisoformat(run["start_time"]).timestamp()
        end = max(item["_timestamp"] for item in history)
        runs.append((run["run_id"], start, end))
    assert len({run_id for run_id, _, _ in runs}) == 4
    for (_, _, end), (_, next_start, _) in itertools.pairwise(runs):
        assert end < next_start, "a job's W&B run was still open when the next one started"

    rows = read_summary(sweep)
    assert [(row["text.num_topics"], row["loss"]) for row in rows] == expected
    for row, job in zip(rows, jobs, strict=True):
        metrics = json.loads((job / "metrics.json").read_text())
        assert float(row["val/map"]) == pytest.approx(metrics["val/map"], rel=1e-3)
        assert row["+experiment"] == "instagram_text"
    table = (sweep / "summary.md").read_text()
    assert "| job | text.num_topics | loss | val/map |" in table
    assert "Best val/map (max): job " in table
    assert table.strip() in result.stdout


def test_optuna_study_searches_and_records_the_best_params(synthetic_dataset, text_cache, tmp_path):
    run_train(
        "+experiment=instagram_text",
        "+hparams_search=text_optuna",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweeper.storage=sqlite:///{tmp_path / 'optuna.db'}",  # resumable, as documented
        "text.num_topics=choice(4,6)",  # the file's range, shrunk to stay tiny
        f"data.dataset_dir={synthetic_dataset}",
        f"paths.root_dir={tmp_path}",
        f"paths.cache_dir={text_cache}",
        "logger=none",
        *TINY,
    )
    sweep = sweep_dir(tmp_path)
    trials = {}
    for num in range(2):
        overrides = OmegaConf.load(sweep / str(num) / ".hydra" / "overrides.yaml")
        params = dict(str(o).split("=", 1) for o in overrides)
        metrics = json.loads((sweep / str(num) / "metrics.json").read_text())
        trials[num] = (params, metrics["val/map"])
        assert 1e-4 <= float(params["optim.optimizer.lr"]) <= 1e-2
        assert params["text.num_topics"] in ("4", "6")
        assert params["loss"] in ("sigmoid_ce", "infonce", "cosine")

    result = OmegaConf.load(sweep / "optimization_results.yaml")
    best_params, best_value = max(trials.values(), key=lambda trial: trial[1])
    assert result.best_value == pytest.approx(best_value)
    assert set(result.best_params) == {"optim.optimizer.lr", "text.num_topics", "loss"}
    assert {k: str(v) for k, v in result.best_params.items()} == {
        k: best_params[k] for k in result.best_params
    }
    assert len(read_summary(sweep)) == 2
    study = optuna.load_study(study_name="text", storage=f"sqlite:///{tmp_path / 'optuna.db'}")
    assert [trial.value for trial in study.trials] == [trials[0][1], trials[1][1]]


def test_slurm_launcher_takes_its_resources_from_the_trainer(tmp_path):
    overrides = [
        "+experiment=instagram_text",
        "trainer=ddp",
        "trainer.devices=4",
        "trainer.num_nodes=2",
        "hydra/launcher=slurm",
        "hydra.launcher.partition=gpu",
        "hydra.launcher.timeout_min=720",
        "hydra.launcher.setup=['source .venv/bin/activate']",
    ]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    HydraConfig().set_config(cfg)  # as a multirun has it when it builds the launcher
    launcher = instantiate(cfg.hydra.launcher)  # the plugin's SlurmLauncher resolves its params
    assert type(launcher).__name__ == "SlurmLauncher"
    params = launcher.params
    assert (params["nodes"], params["gpus_per_node"], params["tasks_per_node"]) == (2, 4, 4)

    # What submitit makes of them: generic names map to sbatch's, the others pass as they are.
    rename = SlurmExecutor._equivalence_dict()
    sbatch_params = {
        rename.get(key, key): value
        for key, value in params.items()
        if key not in {"submitit_folder", "max_num_timeout", "_target_"}
    }
    sbatch = _make_sbatch_string(command="python -m miro.train", folder=tmp_path, **sbatch_params)
    for line in [
        "#SBATCH --nodes=2",
        "#SBATCH --gpus-per-node=4",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --partition=gpu",
        "#SBATCH --time=720",
        "#SBATCH --cpus-per-task=8",
        "source .venv/bin/activate",
    ]:
        assert line in sbatch.splitlines()


def test_submitit_local_runs_a_two_job_sweep(synthetic_dataset, text_cache, tmp_path):
    run_train(
        "-m",
        "+experiment=instagram_text",
        "hydra/launcher=submitit_local",
        "text.num_topics=4,6",
        f"data.dataset_dir={synthetic_dataset}",
        f"paths.root_dir={tmp_path}",
        f"paths.cache_dir={text_cache}",
        "logger=none",
        *TINY,
    )
    sweep = sweep_dir(tmp_path)
    for num in range(2):
        assert 0 <= json.loads((sweep / str(num) / "metrics.json").read_text())["val/map"] <= 1
    # submitit ran them: its own job folders hold each job's pickled result
    assert len(list((sweep / ".submitit").glob("*/*_result.pkl"))) == 2
    assert [row["text.num_topics"] for row in read_summary(sweep)] == ["4", "6"]


def agent_command(sweep_file: Path, sampled: dict) -> list[str]:
    """The command line a ``wandb agent`` runs for one sampled parameter set of the sweep, put
    together by W&B's own sweep helpers as the agent does (``wandb/wandb_agent.py``)."""
    sweep = yaml.safe_load(sweep_file.read_text())
    macros = create_sweep_command_args({"args": {k: {"value": v} for k, v in sampled.items()}})
    macros |= {"env": ["/usr/bin/env"], "interpreter": ["python"], "program": [sweep["program"]]}
    command = []
    for part in map(str, create_sweep_command(sweep["command"])):
        if part.startswith("${") and part.endswith("}"):
            command += macros.get(part[2:-1]) or []
        else:
            command.append(part)
    return command


def test_wandb_sweep_file_drives_the_hydra_cli(tmp_path):
    sweep_file = ROOT / "experiments" / "sweeps" / "text.yaml"
    sweep = yaml.safe_load(sweep_file.read_text())
    assert sweep["metric"] == {"name": "val/map", "goal": "maximize"}
    sampled = {"optim.optimizer.lr": 2.5e-05, "text.num_topics": 80, "loss": "infonce"}
    assert set(sampled) == set(sweep["parameters"])

    command = agent_command(sweep_file, sampled)
    assert command[:4] == ["/usr/bin/env", "python", "-m", "miro.train"]
    cfg = compose_config("train", command[4:], tmp_path)
    assert cfg.optim.optimizer.lr == pytest.approx(2.5e-05)
    assert cfg.text.num_topics == 80 and cfg.model.embed_dim == 80
    assert cfg.loss._target_ == "miro.losses.InfoNCE"
    assert cfg.task_name == "instagram_text"


def test_summary_names_failed_jobs_and_the_best():
    jobs = [
        JobResult(0, Path("0"), {"+experiment": "x", "loss": "a"}, {"val/map": 0.25}),
        JobResult(1, Path("1"), {"+experiment": "x", "loss": "b"}, {}),
        JobResult(2, Path("2"), {"+experiment": "x", "loss": "c"}, {"val/map": 0.5}),
    ]
    text = markdown(jobs, objective="val/map")
    assert "Every job: `+experiment=x`" in text
    assert "| 1 | b | – |" in text
    assert "No metrics (failed or still running): jobs [1]" in text
    assert "Best val/map (max): job 2, 0.5, `loss=c`" in text
    assert "job 0" in markdown(jobs, objective="val/map", mode="min")
