"""Downstream experiments (09_experiments): the GPU configs name only notebook parameters, and a small experiment
writes its results table and resumes without training finished runs again."""
import ast, json
from dataclasses import fields
from pathlib import Path
import pytest
import yaml
from specdm.core import load_json
from specdm.data import PreparedDataset
from specdm.experiments import ExperimentConfig, paper_table, ratio_table, run_experiment
from specdm.prepare import prepare
from specdm.sampling import write_synthetic, write_test_checkpoint

ROOT = Path(__file__).parents[1]

def _notebook_parameters() -> dict:
    "Names and values of the papermill parameter cell of nbs/09_experiments.ipynb."
    nb = json.loads((ROOT/"nbs"/"09_experiments.ipynb").read_text())
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    tree = ast.parse("".join(cells[0]["source"]))
    return {n.target.id: ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.AnnAssign)}

def test_notebook_parameters_are_the_config_fields():
    params = _notebook_parameters()
    assert set(params) == {f.name for f in fields(ExperimentConfig)}
    assert ExperimentConfig.from_params(params) == ExperimentConfig() # the notebook's defaults are the dataclass's

def test_help_notebook_lists_every_parameter():
    "papermill --help-notebook parses every line of the parameter cell: each field with a type and a description."
    import papermill
    seen = papermill.inspect_notebook(str(ROOT/"nbs"/"09_experiments.ipynb"))
    assert list(seen) == [f.name for f in fields(ExperimentConfig)]
    assert all(p["help"] for p in seen.values())
    assert {k: seen[k]["inferred_type_name"] for k in ("ratios", "seeds", "models", "generators")} == \
           dict(ratios="list[int]", seeds="list[int]", models="list[str]", generators="list[str]")

@pytest.mark.parametrize("params,expected", [
    (dict(ratios="[1, 3]"), dict(ratios=(1, 3))), (dict(seeds="(0,1)"), dict(seeds=(0, 1))), (dict(seeds=4), dict(seeds=(4,))),
    (dict(models='["segformer-cpu"]'), dict(models=("segformer-cpu",))), (dict(models="segformer-cpu"), dict(models=("segformer-cpu",))),
    (dict(generators="two_stream"), dict(generators=("two_stream",))), (dict(equal_steps="false", lr="2e-4"), dict(equal_steps=False, lr=2e-4)),
])
def test_papermill_strings_read_as_field_types(params, expected):
    "papermill -p passes lists as strings ('[1, 3]'); each is read as its field's type, never split into characters."
    cfg = ExperimentConfig.from_params(params)
    assert {k: getattr(cfg, k) for k in expected} == expected

@pytest.mark.parametrize("params,message", [(dict(ratio=[1]), "unknown parameter 'ratio' (did you mean 'ratios'?)"),
                                            (dict(seeds="[0, 1"), "seeds must be a tuple of int"), (dict(sampler="euler"), "sampler must be one of")])
def test_bad_parameters_refused(params, message):
    with pytest.raises(ValueError) as e: ExperimentConfig.from_params(params)
    assert message in str(e.value), str(e.value)

@pytest.mark.parametrize("name", ["experiments_seg_gpu.yaml", "experiments_oscd_gpu.yaml"])
def test_gpu_configs_name_only_notebook_parameters(name):
    p = yaml.safe_load((ROOT/"configs"/name).read_text())
    assert set(p) <= set(_notebook_parameters()), set(p) - set(_notebook_parameters())
    cfg = ExperimentConfig.from_params(p) # values checked: task, models for the task, sampler...
    assert cfg.seeds == (0, 1, 2) and cfg.ratios == (1, 2, 3, 4, 5)
    assert cfg.n_real == {"seg": 2000, "change": 100}[cfg.task] # the paper's limited real sets

@pytest.fixture(scope="module")
def standins(tmp_path_factory):
    "Two tiny untrained checkpoints for the generators, and a third one's samples prepared as the 'real' data."
    d = tmp_path_factory.mktemp("exp")
    real = prepare("folder", d/"real", src=write_synthetic(write_test_checkpoint(d/"ck_real", "seg", 32, seed=9), d/"raw", 12, steps=3),
                   bands="rgbn", patch_size=32, val_fraction=0.5, class_names="water,land,road")
    return d, dict(task="seg", data=str(real), two_stream=str(write_test_checkpoint(d/"two", "seg", 32, seed=1)),
                   single_stream=str(write_test_checkpoint(d/"single", "seg", 32, seed=2)), n_real=2, ratios=[1, 2], seeds=[0, 1],
                   models=["segformer-tiny"], epochs=1, batch_size=2, sample_steps=3, sample_batch_size=8)

def test_smoke_experiment_writes_results_and_resumes(standins):
    d, p = standins; out = d/"out"
    # 1. SpecDM only (as when the baseline's checkpoint is not trained yet): real, synthetic only, ×1, ×2; 2 seeds
    first = run_experiment(ExperimentConfig(**p, generators=["two_stream"], out_dir=str(out)))
    assert len(first.trained) == len(first.rows) == 4*2
    assert len(load_json(out/"results.json")) == 8
    # 2. both generators: the finished runs are read back, only the baseline's six are trained
    full = run_experiment(ExperimentConfig(**p, out_dir=str(out)))
    assert len(full.rows) == 7*2 and len(full.trained) == 3*2
    assert all("single_stream" in t for t in full.trained), full.trained
    rows = load_json(out/"results.json"); assert len(rows) == 14 and {"mIoU", "mF1", "OA", "seed", "condition"} <= set(rows[0])
    table = paper_table(rows, "seg", "segformer-tiny")
    assert "real only" in table and "real + SpecDM ×2" in table and "LDM synthetic only ×1" in table
    assert ratio_table(rows, "seg", "segformer-tiny").count("\n") == 4 # header, rule, ratios 0, 1, 2
    # 3. again: nothing trained, same numbers
    again = run_experiment(ExperimentConfig(**p, out_dir=str(out)))
    assert again.trained == [] and [r["mIoU"] for r in again.rows] == [r["mIoU"] for r in full.rows]
    # 4. a run whose result is lost (killed before writing it) is trained again, and only that one
    lost = out/"runs"/"segformer-tiny"/"mix_two_stream_x2"/"seed_1"/"result.json"; lost.unlink()
    assert run_experiment(ExperimentConfig(**p, out_dir=str(out))).trained == ["runs/segformer-tiny/mix_two_stream_x2/seed_1"]
    assert lost.is_file()
    # 5. other settings in the same out_dir are refused, naming the run folder, not overwritten
    with pytest.raises(ValueError, match="other settings"): run_experiment(ExperimentConfig(**{**p, "epochs": 2}, out_dir=str(out)))
