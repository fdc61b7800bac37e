"""Stage-2 training: 2 CPU processes against 1 (exact resume after SIGKILL: tests/test_resume.py).

On a machine without GPUs, `accelerate launch --multi_gpu --num_processes 2` starts two processes that train with
DDP over gloo on the CPU (`--cpu` would start a single process); the same command uses the GPUs where there are some.
"""
import json, os, shutil, signal, subprocess, sys, textwrap, time
from pathlib import Path
import pytest
import torch
from specdm.core import load_checkpoint, read_log, resolve_checkpoint
from specdm.prepare import prepare
from specdm.vae import AEConfig, VAEConfig, build_vae, save_vae

SCRIPT = textwrap.dedent('''
    import sys, torch
    from specdm.ddpm import UNetConfig
    from specdm.train import LDMTrainConfig, train_ldm
    torch.set_num_threads(1)
    vae, data, run, steps, bs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    unet = UNetConfig(in_channels=8, model_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2,), num_heads=1)
    train_ldm(vae, data, run, unet=unet, cfg=LDMTrainConfig(max_steps=steps, batch_size=bs, warmup_steps=2, ckpt_every=4,
              log_every=1, progress=False, cpu=True))
''')

@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("train")
    data = prepare("scenes", d/"data", n_scenes=2, scene_size=64, patch_size=32, val_fraction=0)
    torch.manual_seed(0)
    vae = build_vae(VAEConfig(in_bands=10, num_classes=7, image=AEConfig(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=4, attn_mid=False)))
    save_vae(vae, d/"vae")
    (d/"run.py").write_text(SCRIPT)
    return d, data

def _run(d, data, run, steps, bs, launcher=()):
    return subprocess.Popen([*launcher, str(d/"run.py"), str(d/"vae"), str(data), str(run), str(steps), str(bs)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

def _weights(run):
    _, sds = load_checkpoint(resolve_checkpoint(run/"ckpt"))
    return sds["model"], sds["ema"]

def test_two_processes_match_one(setup):
    d, data = setup
    one = _run(d, data, d/"one", 6, 8, (sys.executable,)); assert one.wait() == 0, one.stderr.read()
    acc = Path(sys.executable).parent/"accelerate"
    two = _run(d, data, d/"two", 6, 4, (str(acc), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                                         "--mixed_precision", "no", "--dynamo_backend", "no"))
    out = two.wait(); assert out == 0, two.stderr.read()
    l1, l2 = [r["loss"] for r in read_log(d/"one")], [r["loss"] for r in read_log(d/"two")]
    assert len(l1) == len(l2) == 6
    for x, y in zip(l1, l2): assert abs(x - y) <= 1e-4 * max(1.0, abs(x)), (l1, l2)
    (m1, _), (m2, _) = _weights(d/"one"), _weights(d/"two")
    assert max(float((m1[k] - m2[k]).abs().max()) for k in m1) < 1e-4

def test_configs_name_only_job_parameters():
    import yaml
    from dataclasses import fields
    from specdm.train import JobConfig
    names = {f.name for f in fields(JobConfig)}
    cfgs = sorted(f for f in (Path(__file__).parents[1]/"configs").glob("*.yaml") if not f.name.startswith("experiments_")) # those are 09_experiments' (tests/test_experiments.py)
    assert cfgs
    for f in cfgs:
        p = yaml.safe_load(f.read_text())
        assert set(p) <= names, (f.name, set(p) - names)
        JobConfig.from_params(p)  # types and choices check

def test_specdm_train_cli_smoke(tmp_path):
    "The console script runs the whole job (tiny), writes a checkpoint that sample_pairs reads, and resumes as a no-op."
    from specdm.sampling import sample_pairs
    exe = Path(sys.executable).parent/"specdm_train"
    args = [str(exe), "--run_dir", str(tmp_path/"run"), "--task", "change", "--n_scenes", "2", "--scene_size", "64",
            "--patch_size", "32", "--vae_ch", "8", "--vae_ch_mult", "1", "2", "--vae_steps", "3", "--vae_crop", "16",
            "--unet_channels", "16", "--unet_channel_mult", "1", "2", "--unet_attention", "2", "--ldm_steps", "3",
            "--ldm_batch_size", "4", "--warmup_steps", "1", "--parameterization", "eps", "--snr_gamma", "0"]
    r = subprocess.run(args, capture_output=True, text=True); assert r.returncode == 0, r.stderr
    assert "ldm:" in r.stdout and "figures:" in r.stdout
    assert (tmp_path/"run"/"figures"/"training.png").stat().st_size > 1000  # the training curves, beside the checkpoints
    assert "stage 1: step 3/3 (100%)" in r.stdout and "stage 2: step 3/3 (100%)" in r.stdout  # progress lines: stdout is not a terminal
    from specdm.sampling import load_ldm
    assert load_ldm(tmp_path/"run"/"ldm").diffusion.parameterization == "eps"  # the paper's objective (not the default) reaches the checkpoint; sampling reads it
    p = sample_pairs(tmp_path/"run"/"ldm", 3, steps=4, batch_size=2)
    assert p.images.shape == (3, 2, 10, 32, 32) and p.masks.shape == (3, 32, 32) and set(p.masks.unique().tolist()) <= {0, 1}
    _check_tensorboard(tmp_path/"run")
    r = subprocess.run(args, capture_output=True, text=True); assert r.returncode == 0, r.stderr
    bad = subprocess.run([str(exe), "--run_dir", str(tmp_path/"x"), "--task", "detect"], capture_output=True, text=True)
    assert bad.returncode != 0 and "task must be one of" in bad.stderr

def _check_tensorboard(run):
    "With tensorboard installed, both stages' log records reach TensorBoard too (Accelerate's tracker), with the same numbers as log.jsonl."
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    for stage, tag in (("vae", "train/loss"), ("ldm", "train/loss")):
        ev = EventAccumulator(str(run/stage/"tensorboard")).Reload()
        assert tag in ev.Tags()["scalars"], (stage, ev.Tags()["scalars"])
        logged = [r for r in read_log(run/stage) if r["split"] == "train"]
        assert [e.step for e in ev.Scalars(tag)] == [r["step"] for r in logged]
        assert [round(e.value, 4) for e in ev.Scalars(tag)] == [round(r["loss"], 4) for r in logged]

def _type_label(tp) -> str:
    "How the parameter cell should annotate a JobConfig field for papermill: list[int], str (choices), int..."
    import typing
    o, a = typing.get_origin(tp), typing.get_args(tp)
    if o is tuple: return f"list[{a[0].__name__}]"
    if o is typing.Literal: return type(a[0]).__name__
    return tp.__name__

def test_parameters_cell_is_jobconfig():
    "papermill --help-notebook lists every JobConfig field, with the field's type, its default and a description."
    import ast, papermill
    from specdm.core import field_types
    from specdm.train import JobConfig
    nb = Path(__file__).parents[1]/"nbs"/"05_train_ldm.ipynb"
    cells = [c for c in json.loads(nb.read_text())["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(cells) == 1
    assigned = [n.target.id for n in ast.parse("".join(cells[0]["source"])).body if isinstance(n, ast.AnnAssign)]
    seen = papermill.inspect_notebook(str(nb))  # what --help-notebook prints; a line it cannot parse is left out
    types = field_types(JobConfig)
    assert assigned == list(seen) == list(types), (set(types) ^ set(seen), set(assigned) ^ set(seen))
    defaults = {k: ast.literal_eval(p["default"]) for k, p in seen.items()}
    assert JobConfig.from_params(defaults) == JobConfig()  # the cell's defaults are the dataclass's
    for k, p in seen.items():
        assert p["help"], k
        assert p["inferred_type_name"] == _type_label(types[k]), (k, p["inferred_type_name"], types[k])

def test_specdm_train_help_describes_every_option():
    "`specdm_train --help`: each option with the parameter cell's description (JobConfig's docment), its default and its choices."
    import papermill
    from fastcore.docments import docments
    from specdm.train import JobConfig
    seen, docs = papermill.inspect_notebook(str(Path(__file__).parents[1]/"nbs"/"05_train_ldm.ipynb")), docments(JobConfig)
    assert {k: docs[k] for k in seen} == {k: p["help"] for k, p in seen.items()} # one wording for papermill and the shell
    r = subprocess.run([str(Path(sys.executable).parent/"specdm_train"), "--help"], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    h, d = " ".join(r.stdout.split()), JobConfig()
    for s in (f"--ldm_steps LDM_STEPS stage 2: optimizer steps (int; default: {d.ldm_steps})",
              f"--vae_ch_mult VAE_CH_MULT [VAE_CH_MULT ...] {docs['vae_ch_mult']} (tuple of int; default: {' '.join(map(str, d.vae_ch_mult))})",
              "--task {seg,change} built-in scenes only: \"seg\" (land cover) or \"change\" (two dates + change mask) (default: seg)",
              "--parameterization {eps,v}", "(default: v)", "--resume BOOL continue from the last checkpoints in run_dir (bool; default: True)",
              "--run_dir RUN_DIR checkpoints, logs and figures (figures/*.png) go here (str; default: runs/specdm)"):
        assert s in h, s
    for k in seen: assert f"--{k}" in h

@pytest.mark.parametrize("value,expected", [("[2]", (2,)), ("[1, 2]", (1, 2)), ("(1,2)", (1, 2)), ("1, 2", (1, 2)), ("2", (2,)),
                                            (2, (2,)), ([1, 2], (1, 2)), (["1", "2"], (1, 2))])
def test_list_parameters_as_papermill_passes_them(value, expected):
    from specdm.train import JobConfig
    cfg = JobConfig.from_params(dict(unet_attention=value, vae_ch_mult=value))
    cfg2 = JobConfig.from_params(dict(unet_channel_mult=value, unet_attention="[1]")) # a U-Net's attention must be at its own factors
    assert cfg.unet_attention == cfg.vae_ch_mult == cfg2.unet_channel_mult == expected

@pytest.mark.parametrize("params,message", [
    (dict(unet_attention="[2"), "unet_attention must be a tuple of int, got '[2'"),
    (dict(vae_ch_mult="[1, two]"), "vae_ch_mult must be a tuple of int"),
    (dict(vae_ch_mult="[1.5, 2]"), "vae_ch_mult must be a tuple of int"),
    (dict(resume="maybe"), "resume must be true or false, got 'maybe'"),
    (dict(patch_size="64px"), "patch_size must be an int"),
    (dict(mixed_precision="fp8"), "mixed_precision must be one of ('no', 'fp16', 'bf16'), got 'fp8'"),
    (dict(patch_szie=128), "unknown parameter 'patch_szie' (did you mean 'patch_size'?)"),
    (dict(data_dir="x", vae_stpes=2, colour="red"), "unknown parameters 'vae_stpes' (did you mean 'vae_steps'?), 'colour'"),
])
def test_bad_parameters_refused(params, message):
    from specdm.train import JobConfig
    with pytest.raises(ValueError) as e: JobConfig.from_params(params)
    assert message in str(e.value), str(e.value)

def test_scalars_and_yaml_values():
    "papermill -p gives 'false' and '4e-4' as strings, YAML 1.1 gives 4e-4 as a string; both are read as the field's type."
    import yaml
    from specdm.train import JobConfig
    cfg = JobConfig.from_params(dict(resume="false", vae_lr="4e-4", vae_steps="1e3", **yaml.safe_load("ldm_lr: 3e-4\nunet_attention: [2, 4]")))
    assert (cfg.resume, cfg.vae_lr, cfg.vae_steps, cfg.ldm_lr, cfg.unet_attention) == (False, 4e-4, 1000, 3e-4, (2, 4))

def test_bad_unet_refused_before_any_work(tmp_path):
    "A U-Net that cannot be built (attention at a factor it does not have) fails before the data is prepared or stage 1 trains."
    from specdm.train import JobConfig, run_job
    with pytest.raises(ValueError, match="attention_resolutions"):
        run_job(JobConfig(run_dir=str(tmp_path/"run"), unet_channel_mult=(1, 2), unet_attention=(8,)))
    assert not (tmp_path/"run").exists()

def test_notebook_params_refuses_typo_in_notebook(tmp_path):
    "papermill executes the notebook with a misspelt name: it fails at the parameter check, before anything is written."
    pm = Path(sys.executable).parent/"papermill"
    nb = Path(__file__).parents[1]/"nbs"/"05_train_ldm.ipynb"
    r = subprocess.run([str(pm), str(nb), str(tmp_path/"out.ipynb"), "--cwd", str(tmp_path), "-p", "run_dir", "run", "-p", "patch_szie", "128"],
                       capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode != 0 and "unknown parameter 'patch_szie' (did you mean 'patch_size'?)" in r.stdout + r.stderr
    assert not (tmp_path/"run").exists()

@pytest.mark.parametrize("asked", ["fp16", "bf16"])
def test_mixed_precision_on_cpu_records_what_ran(tmp_path, asked):
    "Asked fp16 or bf16 on this CPU, the job says what runs instead (when it differs) and both checkpoints record what ran."
    import warnings
    from specdm.train import runnable_precision
    with warnings.catch_warnings():
        warnings.simplefilter("ignore"); ran = runnable_precision(asked, "cpu")  # fp16 -> no; bf16 -> bf16 only with bf16 units
    exe = Path(sys.executable).parent/"specdm_train"
    r = subprocess.run([str(exe), "--run_dir", str(tmp_path/"run"), "--n_scenes", "2", "--scene_size", "64", "--patch_size", "32",
                        "--vae_ch", "8", "--vae_ch_mult", "[1, 2]", "--vae_steps", "2", "--vae_crop", "16", "--unet_channels", "16",
                        "--unet_channel_mult", "1", "2", "--unet_attention", "[2]", "--ldm_steps", "2", "--ldm_batch_size", "4",
                        "--warmup_steps", "1", "--mixed_precision", asked],
                       capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr
    ldm, _ = load_checkpoint(resolve_checkpoint(tmp_path/"run"/"ldm"/"ckpt"))
    vae, _ = load_checkpoint(resolve_checkpoint(tmp_path/"run"/"vae"/"ckpt"))
    assert ldm["train"]["mixed_precision"] == vae["train"]["mixed_precision"] == ran
    assert ldm["precision"] == dict(requested=asked, used=ran)
    if ran != asked:
        for stage in ("stage 1", "stage 2"):
            assert f"{stage}: mixed_precision={asked!r} cannot run on this CPU" in r.stderr and f"{stage} runs in fp32" in r.stderr, r.stderr
    else: assert "cannot run" not in r.stderr

def test_main_job_at_a_hyperspectral_sensor(tmp_path):
    "The main job on built-in scenes at AVIRIS's 200 bands, then synthetic GeoTIFFs that carry each band's wavelength."
    import numpy as np, warnings
    from specdm.data import PreparedDataset, file_bands
    from specdm.sampling import write_synthetic
    from specdm.train import JobConfig, run_job
    torch.set_num_threads(1)
    cfg = JobConfig(run_dir=str(tmp_path/"run"), sensor="aviris_indian_pines", n_scenes=3, scene_size=64, patch_size=32, vae_ch=8,
                    vae_ch_mult=(1, 2), vae_steps=3, vae_batch_size=4, vae_crop=0, unet_channels=16, unet_channel_mult=(1, 2),
                    unet_attention=(2,), ldm_steps=3, ldm_batch_size=4, warmup_steps=1, checkpoint_every=3, resume=False)
    with warnings.catch_warnings(): warnings.simplefilter("ignore"); res = run_job(cfg) # (the library-coverage warning of 13 bands)
    ds = PreparedDataset(res.data)
    assert len(ds.bands) == 200 and ds.bands[0].wavelength == pytest.approx(400.02) and ds.bands[-1].wavelength == pytest.approx(2489.11)
    out = write_synthetic(res.ldm, tmp_path/"syn", 2, steps=3, dtype="float32")
    f = json.loads((out/"manifest.json").read_text())["files"][0]["img"]
    sb = file_bands(out/f)
    np.testing.assert_allclose([b.wavelength for b in sb.bands], [b.wavelength for b in ds.bands], rtol=1e-6)

def test_resume_with_other_settings_warns(setup):
    "Stage 2 resumed with another learning rate says so (the saved optimizer and scheduler keep the old one); a longer run does not."
    import warnings
    from specdm.ddpm import UNetConfig
    from specdm.train import LDMTrainConfig, train_ldm
    d, data = setup
    unet = UNetConfig(in_channels=8, model_channels=16, channel_mult=(1, 2), num_res_blocks=1, attention_resolutions=(2,), num_heads=1)
    cfg = LDMTrainConfig(max_steps=2, batch_size=4, warmup_steps=1, ckpt_every=2, progress=False, cpu=True, threads=1)
    train_ldm(d/"vae", data, d/"warn", unet=unet, cfg=cfg)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning) # more steps only: no warning
        train_ldm(d/"vae", data, d/"warn", unet=unet, cfg=LDMTrainConfig(**{**cfg.__dict__, "max_steps": 3}))
    with pytest.warns(UserWarning, match=r"different training settings \['lr'\].*keep the learning rate"):
        train_ldm(d/"vae", data, d/"warn", unet=unet, cfg=LDMTrainConfig(**{**cfg.__dict__, "max_steps": 4, "lr": 1e-3}))

def test_job_refuses_scenes_prepared_otherwise(tmp_path):
    "The main job reuses run_dir/data only when it holds the built-in scenes it asks for; otherwise it says what differs."
    from specdm.train import JobConfig, job_data
    cfg = JobConfig(run_dir=str(tmp_path/"run"), n_scenes=2, scene_size=64, patch_size=32)
    first = job_data(cfg); assert job_data(cfg) == first # the same parameters: reused
    with pytest.raises(ValueError, match=r"prepared with n_scenes=2.*asks for n_scenes=3"):
        job_data(JobConfig(run_dir=str(tmp_path/"run"), n_scenes=3, scene_size=64, patch_size=32))
