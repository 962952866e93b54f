"""Accented words on the command line (`words=étoile`, `queries.star=[star,étoile]`): quoted
for Hydra by `miro.cli.quote_non_ascii`, so they reach the commands as typed."""

import json

import pytest
from conftest import run_module
from hydra.core.override_parser.overrides_parser import OverridesParser

from miro.cli import hydra_quoted, quote_non_ascii

PARSER = OverridesParser.create()


def parsed(override: str):
    return PARSER.parse_override(override).value()


@pytest.mark.parametrize(
    ("typed", "value"),
    [
        ("words=étoile", "étoile"),
        ("words=œil", "œil"),
        ("words=échelle rouge", "échelle rouge"),
        ("words=l'œil", "l'œil"),
        ('words=say "l\'œil"', 'say "l\'œil"'),
        ("words=a\\,é", "a,é"),  # Hydra's escaped comma, unescaped inside the quotes
        ("queries.star=[star, étoile]", ["star", "étoile"]),
        ("d={a:é,b:[x,ñ]}", {"a": "é", "b": ["x", "ñ"]}),
        ("+words=pájaro", "pájaro"),
        ("~words=pájaro", "pájaro"),
        ("hydra.run.dir=/tmp/josé/run", "/tmp/josé/run"),
        ("words='étoile'", "étoile"),  # already quoted: as it is
    ],
)
def test_non_ascii_values_are_quoted_into_what_was_typed(typed, value):
    (rewritten,) = quote_non_ascii([typed])
    assert rewritten.split("=", 1)[0] == typed.split("=", 1)[0]
    assert parsed(rewritten) == value


def test_sweeps_flags_and_ascii_pass_through_with_their_meaning():
    arguments = ["query", "-m", "words=étoile,lune", "k=3", "--help", "~words", "-cn", "x=é"]
    rewritten = quote_non_ascii(arguments)
    assert rewritten == [
        "query",
        "-m",
        "words='étoile',lune",
        "k=3",
        "--help",
        "~words",
        "-cn",
        "x=é",
    ]
    jobs = PARSER.parse_override(rewritten[2]).sweep_string_iterator()  # as -m splits it
    assert [parsed(f"words={job}") for job in jobs] == ["étoile", "lune"]
    assert parsed(quote_non_ascii(["w=choice(é,a)"])[0]).list == ["é", "a"]
    # A key Hydra cannot read stays as typed, so Hydra's own message names it.
    assert quote_non_ascii(["queries.étoile=[x]"]) == ["queries.étoile=[x]"]


@pytest.mark.parametrize("text", ["", "'", '"', "\\", "a\\'b", "both ' and \" \\", "x\\\\"])
def test_hydra_quoted_parses_back_exactly(text):
    assert parsed(f"k={hydra_quoted(text)}") == text


def test_retrieve_takes_accented_words(encoder_checkpoint, synthetic_dataset, tmp_path):
    where = [
        "query",
        f"ckpt={encoder_checkpoint[0]}",
        f"dataset_dir={synthetic_dataset}",
        "split=test",
        f"index_dir={tmp_path / 'index'}",
        "build_if_missing=true",
        "image_size=32",
        "num_workers=0",
        "progress=false",
        f"output={tmp_path}",
        f"hydra.run.dir={tmp_path}",
    ]
    unknown = run_module("miro.retrieve", *where, "words=étoile")
    assert unknown.returncode != 0
    assert "error: the text model knows none of the words of words='étoile'" in unknown.stderr
    assert "Traceback" not in unknown.stderr and "Lexer" not in unknown.stderr

    found = run_module("miro.retrieve", *where, "text=star étoile", "k=2")
    assert found.returncode == 0, found.stderr[-3000:]
    assert "words='star étoile': top 2" in found.stdout
    assert "unknown words, left out: étoile" in found.stdout


def test_evaluate_takes_accented_query_words(encoder_checkpoint, synthetic_dataset, tmp_path):
    output = tmp_path / "evaluation.json"
    result = run_module(
        "miro.evaluate",
        f"ckpt={encoder_checkpoint[0]}",
        f"dataset_dir={synthetic_dataset}",
        "queries.star.fr=étoiles",  # label: {language: word}
        "+queries.sky=[sky,cél]",  # label: [words]
        "image_size=32",
        "num_workers=0",
        "progress=false",
        f"output={output}",
        f"hydra.run.dir={tmp_path}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(output.read_text(encoding="utf-8"))
    assert {"étoiles", "cél"} <= set(report["unknown_words"])  # arrived whole; English captions
    assert "star" in [row["word"] for row in report["queries"]]


def test_dream_takes_accented_words(encoder_checkpoint, tmp_path):
    tiny = ["size=48", "settings.octaves=1", "settings.steps=1", "progress=false"]
    dream = [f"ckpt={encoder_checkpoint[0]}", "objective=text", f"hydra.run.dir={tmp_path}"]
    unknown = run_module("miro.dream", *dream, "words=échelle", f"output={tmp_path}", *tiny)
    assert unknown.returncode != 0
    assert "error: the text model does not know 'échelle'" in unknown.stderr
    assert "Traceback" not in unknown.stderr

    accented = tmp_path / "rêve"  # an accented output folder is quoted too
    done = run_module("miro.dream", *dream, "words=star", f"output={accented}", *tiny)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((accented / "dream.json").read_text())["objective"].startswith("text(")
