"""Downstream experiments (09_experiments): the GPU configs name only notebook parameters, a small experiment
writes its results table and resumes without training finished runs again, and the protocol options (sampling mode,
guidance, conditions, protocol, generator data) run end to end, name their runs apart and never reuse a stale set."""
import ast, hashlib, json
from dataclasses import fields
from pathlib import Path
import numpy as np
import pytest
import torch
import yaml
from specdm.core import TrainingRun, load_checkpoint, load_json, save_json, seed_everything
from specdm.data import PreparedDataset, SegmentationDataset
from specdm.experiments import (Condition, ExperimentConfig, build_model, limited_dataset, limited_subset, paper_table, ratio_table, run_experiment,
                                subset_patches, synthetic_conditions, synthetic_set, training_set, weights_sha256)
from specdm.layouts import mask_layouts
from specdm.prepare import prepare
from specdm.sampling import write_synthetic
from specdm.testing import write_test_checkpoint

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

def test_command_line_help_is_the_parameter_cell():
    "`python -m specdm.experiments --help` gives each option the parameter cell's words (the field's docment), its default and choices."
    import os, papermill, subprocess, sys
    from fastcore.docments import docments
    seen, docs = papermill.inspect_notebook(str(ROOT/"nbs"/"09_experiments.ipynb")), docments(ExperimentConfig)
    assert {k: docs[k] for k in seen} == {k: p["help"] for k, p in seen.items()} # one wording for papermill and the shell
    r = subprocess.run([sys.executable, "-m", "specdm.experiments", "--help"], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    h = " ".join(r.stdout.split()); assert r.returncode == 0, r.stderr
    for s in ("--protocol {mixed,pretrain_finetune,real_share}", "(synthetic, then real) or \"real_share\" (default: mixed)",
              "--seeds SEEDS [SEEDS ...] training seeds (initial weights, data order, augmentation) (tuple of int; default: 0 1 2)",
              "--epochs EPOCHS maximum training epochs (int; default: 8)"): assert s in h, s

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


# The protocol options (issue 12, item 5), on the same stand-ins: SpecDM only, one seed, one epoch.

@pytest.fixture(scope="module")
def options(standins):
    "The stand-ins' parameters with a per-part SpecDM stand-in (every mode, guidance), SpecDM only, ratio 1 and one seed."
    d, p = standins
    pp = write_test_checkpoint(d/"two_pp", "seg", 32, seed=1, per_part=True)
    return d, {**p, "two_stream": str(pp), "generators": ["two_stream"], "ratios": [1], "seeds": [0]}

def _limited(p:dict, n:int|None=None) -> tuple[PreparedDataset, np.ndarray]:
    "The real data and its limited set's patch indices, as run_experiment draws them."
    data = PreparedDataset(p["data"])
    return data, subset_patches(limited_subset(SegmentationDataset(data, "train"), n or p["n_real"], 0))

@pytest.fixture(scope="module")
def protocol_runs(options):
    "The three protocols in one out_dir, checkpoints kept."
    d, p = options; out = d/"protocols"
    return out, {pr: run_experiment(ExperimentConfig(**p, protocol=pr, keep_checkpoints=True, out_dir=str(out))) for pr in ("mixed", "pretrain_finetune", "real_share")}

def test_each_protocol_runs_in_its_own_folder(protocol_runs):
    out, runs = protocol_runs
    assert sorted(runs["mixed"].trained) == [f"runs/segformer-tiny/{c}/seed_0" for c in ("mix_two_stream_x1", "real", "syn_two_stream_x1")]
    # real only and synthetic only do not depend on the protocol: read back, only the real + synthetic run trains
    assert runs["pretrain_finetune"].trained == ["runs/segformer-tiny/mix_two_stream_x1-pretrain_finetune/seed_0"]
    assert runs["real_share"].trained == ["runs/segformer-tiny/mix_two_stream_x1-share0.5/seed_0"]
    rows = load_json(out/"results.json"); mixed = {r["protocol"]: r for r in rows if r["kind"] == "mixed"}
    assert len(rows) == 5 and set(mixed) == {"mixed", "pretrain_finetune", "real_share"} # every protocol's row, once
    assert (mixed["pretrain_finetune"]["pretrain_epochs_run"], mixed["pretrain_finetune"]["epochs_run"]) == (1, 1) # both stages
    assert mixed["mixed"]["pretrain_epochs_run"] is None and mixed["real_share"]["real_share"] == 0.5
    assert {r["mode"] for r in rows if r["kind"] != "real"} == {"joint"}
    spec = lambda c: load_json(out/"runs"/"segformer-tiny"/c/"seed_0"/"result.json")["spec"]
    assert spec("mix_two_stream_x1-pretrain_finetune")["protocol"] == "pretrain_finetune"
    assert (spec("mix_two_stream_x1-share0.5")["protocol"], spec("mix_two_stream_x1-share0.5")["real_share"]) == ("real_share", 0.5)
    assert "protocol" not in spec("mix_two_stream_x1") # the paper's protocol: specs as before the options
    assert "mode" not in load_json(out/"synthetic"/"two_stream"/"synthetic.json") # and so is its synthetic set's record
    table = paper_table(rows, "seg", "segformer-tiny")
    assert all(f"| {l} |" in table for l in ("real + SpecDM ×1", "real + SpecDM ×1 (pretrain→finetune)", "real + SpecDM ×1 (real share 0.5)")), table
    assert ratio_table(rows, "seg", "segformer-tiny").splitlines()[0].count("| real + SpecDM") == 3

def test_finetuning_starts_from_the_pretrained_weights(protocol_runs, standins):
    out, _ = protocol_runs; run = out/"runs"/"segformer-tiny"/"mix_two_stream_x1-pretrain_finetune"/"seed_0"
    r = load_json(run/"result.json")
    best = TrainingRun(run/"pretrain").best()
    assert r["finetune_start_sha256"] == weights_sha256(load_checkpoint(best)[1]["model"]) # the pre-training's best epoch, read back from disk
    seed_everything(0, rank=0); fresh = build_model("segformer-tiny", "seg", 4, 3) # what the run would start from without pre-training
    assert r["finetune_start_sha256"] != weights_sha256(fresh.state_dict())
    assert len(r["pretrain"]["history"]) == r["pretrain"]["epochs_run"] == 1 and len(r["history"]) == 1

@pytest.mark.parametrize("share,epoch_size,real_items", [(0.25, 12, 3), (0.5, 12, 6), (0.75, 12, 9), (0.5, None, 3)])
def test_real_share_composes_the_epoch(standins, share, epoch_size, real_items):
    d, p = standins; data, _ = _limited(p)
    train = SegmentationDataset(data, "train"); real = limited_subset(train, 3)
    ts = training_set(Condition("mixed", "two_stream", 1, "real_share", share), real, {"two_stream": SegmentationDataset(data, None)}, epoch_size=epoch_size)
    got = [i for piece in ts.datasets if piece.dataset is train for i in piece.indices] # the real items of the epoch
    assert len(ts) == (epoch_size or 6) and len(got) == real_items
    assert sorted(np.unique(got, return_counts=True)[1].tolist()) == [real_items // 3] * 3 # each real item equally often

def test_conditions_come_only_from_the_limited_set(options):
    d, p = options; out = d/"m2i"; p = {**p, "ratios": [2]} # 4 synthetic pairs from 2 real items
    res = run_experiment(ExperimentConfig(**p, sample_mode="mask_to_image", guidance_scale=2.0, out_dir=str(out)))
    data, idx = _limited(p)
    syn = out/"synthetic"/"two_stream-mask_to_image-s2"
    man, rec = load_json(syn/"raw"/"manifest.json")["conditions"], load_json(syn/"synthetic.json")["conditions"]
    h = hashlib.sha256(np.ascontiguousarray(data.images[idx], np.float32).tobytes()); h.update(np.asarray(data.masks[idx]).astype(np.int64).tobytes())
    assert man["sha256"] == rec["sha256"] == h.hexdigest() # the limited set's images and masks, nothing else
    assert (man["count"], man["rows"]) == (2, [0, 1, 0, 1]) # cycled
    assert (np.asarray(PreparedDataset(syn/"prepared").masks) == np.asarray(data.masks[idx])[[0, 1, 0, 1]]).all()
    assert {(r["mode"], r["guidance_scale"], r["conditions"]) for r in res.rows if r["kind"] != "real"} == {("mask_to_image", 2.0, "limited")}
    assert "mix_two_stream_x2-mask_to_image-s2" in {r["condition"] for r in res.rows}
    # layouts: new masks made from the limited set's masks only
    lay = run_experiment(ExperimentConfig(**p, sample_mode="mask_to_image", conditions="layouts", out_dir=str(out)))
    assert sorted(t.split("/")[2] for t in lay.trained) == ["mix_two_stream_x2-mask_to_image-layouts", "syn_two_stream_x1-mask_to_image-layouts"]
    want = mask_layouts(torch.from_numpy(np.asarray(data.masks[idx])).long(), 4, seed=0).masks.numpy()
    assert (np.asarray(PreparedDataset(out/"synthetic"/"two_stream-mask_to_image-layouts"/"prepared").masks) == want).all()

def test_a_changed_sampling_setting_never_reuses_a_set(options):
    d, p = options; data, idx = _limited(p); out = d/"cache"
    same = dict(like=data, steps=3, mode="mask_to_image", guidance_scale=2.0, conditions=synthetic_conditions(data, idx))
    synthetic_set(p["two_stream"], out, 2, **same); t0 = (out/"synthetic.json").stat().st_mtime_ns
    synthetic_set(p["two_stream"], out, 2, **same); assert (out/"synthetic.json").stat().st_mtime_ns == t0 # reused
    for other in (dict(mode="joint", guidance_scale=1.0, conditions=None), dict(guidance_scale=3.0), dict(mode="joint_then_image", conditions=None),
                  dict(conditions=synthetic_conditions(data, idx[::-1].copy())), dict(conditions=synthetic_conditions(data, idx, "layouts", n=2))):
        with pytest.raises(FileExistsError, match="other settings"): synthetic_set(p["two_stream"], out, 2, **{**same, **other})

def test_generator_data_limited_is_checked_and_labelled(options):
    d, p = options; data, idx = _limited(p)
    lim = limited_dataset(data, p["n_real"], 0, d/"limited")
    assert len(lim) == 2 and lim.meta["limited"]["indices"] == idx.tolist() and lim.meta["splits"]["val"] == 0
    assert (np.asarray(lim.images) == np.asarray(data.images[idx])).all()
    ck = write_test_checkpoint(d/"two_limited", "seg", 32, seed=4); c = load_json(ck/"config.json")
    save_json({**c, "data": {**c["data"], "source": str(lim.path)}}, ck/"config.json") # as `specdm_train --data_dir <lim>` records it
    q = {**p, "two_stream": str(ck)}; out = d/"genlim"
    res = run_experiment(ExperimentConfig(**q, generator_data="limited", out_dir=str(out)))
    assert {r["generator_data"] for r in res.rows if r["kind"] != "real"} == {"limited"}
    assert "| real + SpecDM ×1 (generator on the limited set) |" in paper_table(res.rows, "seg", "segformer-tiny")
    assert load_json(out/"runs"/"segformer-tiny"/"mix_two_stream_x1-genlimited"/"seed_0"/"result.json")["spec"]["generator_data"] == "limited"
    with pytest.raises(ValueError, match="set generator_data='limited'"): run_experiment(ExperimentConfig(**q, out_dir=str(out)))
    with pytest.raises(ValueError, match="another limited set"): # 3 real patches: not the set the generator saw
        run_experiment(ExperimentConfig(**{**q, "n_real": 3}, generator_data="limited", out_dir=str(d/"genlim3")))
