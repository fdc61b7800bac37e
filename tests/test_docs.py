"The documentation notebooks are committed executed, with light outputs (tools/execute_docs.py; issue 15)."
import importlib.util, json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("execute_docs", ROOT/"tools"/"execute_docs.py")
docs = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(docs)

# notebooks whose executed outputs hold figures (index prints a shape, it draws nothing)
WITH_FIGURES = {"01_data.ipynb", "01a_scenes.ipynb", "03_vae.ipynb", "04_ddpm.ipynb", "06_sampling.ipynb", "07a_report.ipynb",
                "09_experiments.ipynb", "10_tutorial.ipynb"}

def test_docs_notebooks_show_outputs():
    for name in docs.DOCS:
        nb = json.loads((ROOT/"nbs"/name).read_text())
        outs = [o for c in nb["cells"] for o in c.get("outputs", [])]
        assert outs, f"{name}: committed without outputs; run python tools/execute_docs.py nbs/{name}"
        if name in WITH_FIGURES: assert docs.figures(nb), f"{name}: no figure in its outputs"

def test_docs_outputs_light_and_clean():
    assert docs.check([ROOT/"nbs"/n for n in docs.DOCS]) == []

def test_check_finds_heavy_figures_and_errors(tmp_path):
    import base64
    nb = dict(cells=[dict(cell_type="code", source="", metadata={}, outputs=[
        dict(output_type="display_data", metadata={}, data={"image/png": base64.b64encode(b"x" * (docs.MAX_FIGURE + 1)).decode()}),
        dict(output_type="error", ename="ValueError", evalue="", traceback=[])])])
    p = tmp_path/"heavy.ipynb"; p.write_text(json.dumps(nb))
    problems = docs.check([p, tmp_path/"missing.ipynb"])
    assert any("figure is" in m for m in problems) and any("holds an error" in m for m in problems) and any("missing" in m for m in problems)

def test_tutorial_parameters_typed_and_described():
    "papermill --help-notebook gives every tutorial parameter a type and a description (lists as list[int], as -p passes them)."
    import papermill
    seen = papermill.inspect_notebook(str(ROOT/"nbs"/"10_tutorial.ipynb"))
    assert {"data_dir", "class_names", "work_dir", "seeds", "ratios"} <= set(seen)
    for k, p in seen.items(): assert p["help"] and p["inferred_type_name"] not in ("None", "", None), (k, p)
    assert seen["seeds"]["inferred_type_name"] == "list[int]"
